"""LOBSTER message and orderbook files: read them (polars), replay them through the engine.

Message file, one row per event: ``time, type, order_id, size, price, direction`` (price in
dollars x 10000; direction +1 buy order, -1 sell order). Orderbook file, row k = the visible book
after message k: ``ask_price_1, ask_size_1, bid_price_1, bid_size_1, ...`` for each level.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from fastlob._checks import check_int
from fastlob._kernels import replay as _r
from fastlob._kernels.book_layout import MAX_ORDER_QTY, MAX_PRICE, allocate_book_state
from fastlob.book import check_book_params

MESSAGE_COLUMNS = ("time", "type", "order_id", "size", "price", "direction")
EVENT_TYPES = (1, 2, 3, 4, 5, 6, 7)


class LobsterFormatError(ValueError):
    """A malformed LOBSTER file; the message names the file, the 1-based line and the field."""

    def __init__(self, path, line: int, field: str, detail: str):
        self.path, self.line, self.field = str(path), line, field
        super().__init__(f"{path}, line {line}, field {field}: {detail}")


def orderbook_columns(levels: int) -> tuple[str, ...]:
    """Column names of a LOBSTER orderbook file with ``levels`` levels."""
    names = []
    for k in range(1, levels + 1):
        names += [f"ask_price_{k}", f"ask_size_{k}", f"bid_price_{k}", f"bid_size_{k}"]
    return tuple(names)


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------

#: an integer field: an optional minus sign and digits (no spaces, plus signs, underscores,
#: decimal points or exponents)
INTEGER_PATTERN = r"^-?[0-9]+$"
#: the time field: seconds after midnight, digits with an optional decimal part
TIME_PATTERN = r"^[0-9]+(\.[0-9]+)?$"
#: order ids of the file must stay below the replay's synthetic ids, with room for the
#: historical market's shift (``historical.FIRST_DATA_ID``)
MAX_FILE_ORDER_ID = _r.SYNTHETIC_ID_BASE - 3
#: event types whose order goes through the book (submit, cancel, delete, visible execution)
BOOK_EVENTS = (1, 2, 3, 4)
#: the halt indicator's price: -1 halt, 0 quoting, 1 resumed
HALT_PRICES = (-1, 0, 1)


def _file_bytes(path, field_name) -> tuple[Path, bytes]:
    """The file's bytes, after the checks every LOBSTER file needs: it exists, it is not empty,
    it is UTF-8 text without quotes or blank lines (so that row k of the table is line k + 1).
    ``field_name(k)`` names the 0-based column k in errors."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"LOBSTER file not found: {path}")
    data = path.read_bytes()
    if not data.strip():
        raise LobsterFormatError(path, 1, field_name(0), "the file is empty")

    def error_at(offset: int, detail: str) -> LobsterFormatError:
        line_start = data.rfind(b"\n", 0, offset) + 1
        line = data.count(b"\n", 0, offset) + 1
        return LobsterFormatError(
            path, line, field_name(data.count(b",", line_start, offset)), detail
        )

    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise error_at(err.start, f"byte {data[err.start]:#04x} is not UTF-8 text") from None
    quote = data.find(b'"')
    if quote >= 0:
        raise error_at(quote, "a quote character: LOBSTER fields are bare numbers")
    blank = data.find(b"\n\n")
    if blank >= 0:
        raise error_at(blank + 1, "a blank line: every line is a row")
    return path, data


def _message_field(k: int) -> str:
    return MESSAGE_COLUMNS[k] if k < len(MESSAGE_COLUMNS) else MESSAGE_COLUMNS[-1]


def _orderbook_field(k: int) -> str:
    return orderbook_columns(k // 4 + 1)[k]


def _column_count_error(path, data: bytes, names) -> LobsterFormatError:
    """The first line whose number of fields is not ``len(names)`` (a ragged file)."""
    for line_no, line in enumerate(data.decode("utf-8").splitlines(), start=1):
        found = len(line.split(","))
        if found != len(names):
            return LobsterFormatError(
                path,
                line_no,
                names[min(found, len(names)) - 1],
                f"expected {len(names)} comma-separated columns, found {found}",
            )
    return LobsterFormatError(path, 1, names[0], "could not be read as comma-separated values")


def _read_text_table(path, data: bytes, names) -> pl.DataFrame:
    """Every field as a string column named by ``names`` (one row per line)."""
    try:
        raw = pl.read_csv(io.BytesIO(data), has_header=False, infer_schema=False)
    except pl.exceptions.PolarsError:
        raise _column_count_error(path, data, names) from None
    if raw.width != len(names):
        raise _column_count_error(path, data, names)
    raw.columns = list(names)
    return raw


def _integer(name: str) -> pl.Expr:
    return pl.col(name).cast(pl.Int64, strict=False)


def _text_rules(names, integer_names) -> list:
    """(field, bad-row expression, message) for what a field's text must look like: present,
    an integer or a time, within int64."""
    rules = []
    for name in names:
        text = pl.col(name)
        rules.append((name, text.is_null() | (text == ""), "missing value"))
        if name in integer_names:
            rules.append((name, ~text.str.contains(INTEGER_PATTERN), "is not an integer"))
            rules.append((name, _integer(name).is_null(), "does not fit a 64-bit integer"))
        else:
            rules.append(
                (name, ~text.str.contains(TIME_PATTERN), "is not a time in seconds (digits, "
                 "optionally a point and more digits)")
            )  # fmt: skip
    return rules


def _first_error(path, table: pl.DataFrame, rules) -> LobsterFormatError | None:
    """The error of the first line that breaks a rule (the first rule it breaks), or None."""
    flags = table.select(
        [bad.fill_null(True).alias(f"rule{i}") for i, (_, bad, _) in enumerate(rules)]
    )
    broken = flags.select(pl.any_horizontal(pl.all()).arg_true().first()).item()
    if broken is None:
        return None
    row = flags.row(broken)
    rule = next(i for i, hit in enumerate(row) if hit)
    name, _, message = rules[rule]
    value = table[name][broken]
    if value is None or value == "":
        message = f"missing value: a row has {table.width} comma-separated columns"
        return LobsterFormatError(path, broken + 1, name, message)
    return LobsterFormatError(path, broken + 1, name, f"{value!r} {message}")


def read_messages(path) -> pl.DataFrame:
    """Read a LOBSTER message file into a DataFrame with columns ``MESSAGE_COLUMNS`` (time
    float64, the rest int64).

    Every field is checked: a time (non-negative decimal seconds, never earlier than the line
    before), integers elsewhere, a known event type, an order id in ``0..MAX_FILE_ORDER_ID``, a
    size in ``0..MAX_ORDER_QTY`` (at least 1 for events that reach the book), a positive price
    (the halt indicator's -1, 0 or 1 for type 7) and a direction of +1 or -1. Raises
    :class:`LobsterFormatError` naming the file, the first bad line (1-based) and its field.
    """
    names = MESSAGE_COLUMNS
    path, data = _file_bytes(path, _message_field)
    text = _read_text_table(path, data, names)
    error = _first_error(path, text, _text_rules(names, names[1:]))
    if error is not None:
        raise error
    df = text.select(pl.col("time").cast(pl.Float64), *(_integer(c) for c in names[1:]))
    kind, size, price = pl.col("type"), pl.col("size"), pl.col("price")
    order_event = kind.is_in(BOOK_EVENTS)
    rules = [
        ("time", (pl.col("time") < pl.col("time").shift(1)).fill_null(False),
         "is earlier than the line before"),
        ("type", ~kind.is_in(EVENT_TYPES), "is an unknown event type (allowed 1..7)"),
        ("order_id", (pl.col("order_id") < 0) | (pl.col("order_id") > MAX_FILE_ORDER_ID),
         f"is not an order id (allowed 0..{MAX_FILE_ORDER_ID})"),
        ("size", size < 0, "is a negative size"),
        ("size", order_event & (size < 1), "is not a size: an order event moves at least 1"),
        ("size", size > MAX_ORDER_QTY, f"exceeds the largest order size, {MAX_ORDER_QTY}"),
        ("price", (kind != 7) & (price < 1), "is not a price: prices are positive"),
        ("price", (kind == 7) & ~price.is_in(HALT_PRICES),
         "is not a halt indicator (-1 halt, 0 quoting, 1 resumed)"),
        ("direction", ~pl.col("direction").is_in((1, -1)), "is not a direction (+1 or -1)"),
    ]  # fmt: skip
    error = _first_error(path, df, rules)
    if error is not None:
        raise error
    return df


def read_orderbook(path) -> pl.DataFrame:
    """Read a LOBSTER orderbook file (any number of levels) into a DataFrame of int64 columns
    named by :func:`orderbook_columns`.

    Every field is an integer; sizes lie in ``0..MAX_ORDER_QTY``; a level with a positive size
    has a positive price (an empty level's price is a placeholder and may be anything). Raises
    :class:`LobsterFormatError` like :func:`read_messages`.
    """
    path, data = _file_bytes(path, _orderbook_field)
    width = len(data.split(b"\n", 1)[0].split(b","))
    if width % 4 != 0:
        raise LobsterFormatError(
            path, 1, "ask_price_1", f"{width} columns: an orderbook file has 4 per level"
        )
    names = orderbook_columns(width // 4)
    text = _read_text_table(path, data, names)
    error = _first_error(path, text, _text_rules(names, names))
    if error is not None:
        raise error
    df = text.select(_integer(c) for c in names)
    rules = []
    for price_name, size_name in zip(names[0::2], names[1::2], strict=True):
        size = pl.col(size_name)
        rules.append((price_name, (size > 0) & (pl.col(price_name) < 1),
                      "is not a price: a level with orders has a positive price"))  # fmt: skip
        rules.append((size_name, size < 0, "is a negative size"))
        rules.append((size_name, size > MAX_ORDER_QTY,
                      f"exceeds the largest order size, {MAX_ORDER_QTY}"))  # fmt: skip
    error = _first_error(path, df, rules)
    if error is not None:
        raise error
    return df


# ---------------------------------------------------------------------------------------------
# replay
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplayResult:
    """What a replay found. Prices in ``rows`` are in the file's units (dollars x 10000)."""

    rows: np.ndarray  #: int64 (messages, levels, 4) the engine's visible window after each message
    matched: np.ndarray  #: bool (messages,) whether that window equals the file's row
    counters: dict  #: kernel counters (levels taken from the file, forgotten, executions, ...)
    messages: int  #: messages replayed
    seconds: float  #: median time of one replay in the kernel (files already read, JIT warm)

    @property
    def rows_compared(self) -> int:
        return int(self.matched.size)

    @property
    def rows_matched(self) -> int:
        return int(self.matched.sum())

    @property
    def messages_per_second(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else float("inf")


def _to_ticks(values: np.ndarray, tick_size: int, path, field_of, line_of) -> np.ndarray:
    """Prices in the file's units as ticks; a price off the grid or beyond ``MAX_PRICE`` ticks
    is a :class:`LobsterFormatError` naming its line and field."""
    for bad, detail in (
        (values % tick_size != 0, f"is not a multiple of tick_size {tick_size}"),
        (values // tick_size > MAX_PRICE, f"is more than {MAX_PRICE} ticks of {tick_size}"),
    ):
        where = np.flatnonzero(bad)
        if where.size:
            i = where[0]
            raise LobsterFormatError(
                path, line_of(i), field_of(i), f"price {values.flat[i]} {detail}"
            )
    return values // tick_size


def _book_rows(orderbook: pl.DataFrame, levels: int) -> np.ndarray:
    return orderbook.to_numpy().astype(np.int64).reshape(orderbook.height, levels, 4)


def _initial_row(first_row: np.ndarray, first_message: np.ndarray) -> np.ndarray:
    """The visible book before message 0: the file's row 0 with message 0 undone."""
    row = first_row.copy()
    kind, _, size, price, direction = (int(x) for x in first_message)
    col = 2 if direction == 1 else 0
    delta = {1: -size, 2: size, 3: size, 4: size}.get(kind, 0)
    if delta == 0:
        return row
    hit = np.flatnonzero((row[:, col] == price) & (row[:, col + 1] > 0))
    if hit.size:
        k = hit[0]
        row[k, col + 1] += delta
        if row[k, col + 1] == 0:  # the first message created this level: remove it
            row[k:-1, col : col + 2] = row[k + 1 :, col : col + 2].copy()
            row[-1, col : col + 2] = 0
    return row


@dataclass(frozen=True)
class LobsterDay:
    """A LOBSTER pair in the engine's units: prices in ticks, sizes as written (shares), times in
    seconds after midnight.

    ``messages`` rows are ``[type, order_id, size, price_ticks, direction]`` (the price 0 for
    events that carry none: hidden executions, cross trades, halts); ``rows`` the orderbook
    file, an empty level price 0 and size 0; ``initial_row`` the visible book before the first
    message."""

    times: np.ndarray  #: float64 (M,)
    messages: np.ndarray  #: int64 (M, 5)
    rows: np.ndarray  #: int64 (M, levels, 4), LOBSTER layout
    initial_row: np.ndarray  #: int64 (levels, 4)
    tick_units: int  #: price units (dollars x 10000) per tick

    @property
    def levels(self) -> int:
        return int(self.rows.shape[1])

    @property
    def seconds(self) -> float:
        """The span of the messages' times."""
        return float(self.times[-1] - self.times[0]) if self.times.size else 0.0


def check_not_crossed(day: LobsterDay, orderbook_path) -> None:
    """A :class:`LobsterFormatError` naming the first orderbook row (its line) whose best bid
    is at or above its best ask, both sides present: a book no exchange shows, which a replay
    would report as a divergence and a fit would take as data."""
    best = day.rows[:, 0, :]  # (M, 4): ask price, ask size, bid price, bid size
    crossed = (best[:, 1] > 0) & (best[:, 3] > 0) & (best[:, 2] >= best[:, 0])
    if crossed.any():
        row = int(np.flatnonzero(crossed)[0])
        raise LobsterFormatError(
            orderbook_path, row + 1, "bid_price_1",
            f"crossed book: best bid {best[row, 2]} >= best ask {best[row, 0]} (ticks)",
        )  # fmt: skip


def _read_pair(message_path, orderbook_path) -> tuple[pl.DataFrame, pl.DataFrame]:
    msgs_df = read_messages(message_path)
    book_df = read_orderbook(orderbook_path)
    if msgs_df.height != book_df.height:
        shorter = orderbook_path if book_df.height < msgs_df.height else message_path
        raise LobsterFormatError(
            shorter,
            min(msgs_df.height, book_df.height) + 1,
            "?",
            f"missing: {message_path} has {msgs_df.height} rows and {orderbook_path} "
            f"{book_df.height}, and a LOBSTER pair has one orderbook row per message",
        )
    return msgs_df, book_df


def infer_tick_units(messages: np.ndarray, book: np.ndarray) -> int:
    """The tick in price units: the greatest common divisor of every price that the messages
    (submissions, cancellations, executions) and the non-empty levels carry."""
    priced = np.isin(messages[:, 0], (1, 2, 3, 4))
    prices = np.concatenate(
        [messages[priced, 3], book[:, :, [0, 2]][book[:, :, [1, 3]] > 0]]
    ).astype(np.int64)
    tick = int(np.gcd.reduce(prices)) if prices.size else 0
    return max(tick, 1)


def _convert(msgs_df, book_df, tick_size, message_path, orderbook_path):
    """(initial row, messages, rows, tick) in ticks; ``tick_size`` None: inferred."""
    levels = book_df.width // 4
    names = orderbook_columns(levels)
    raw = msgs_df.select(MESSAGE_COLUMNS[1:]).to_numpy().astype(np.int64)
    messages = raw[:, [0, 1, 2, 3, 4]].copy()  # type, id, size, price, direction
    book = _book_rows(book_df, levels)
    if tick_size is None:
        tick_size = infer_tick_units(messages, book)
    tick_size = check_int("tick_size", tick_size, 1, 2**40)
    priced = np.isin(messages[:, 0], (1, 2, 3, 4))
    messages[:, 3] = np.where(priced, messages[:, 3], 0)
    messages[:, 3] = _to_ticks(
        messages[:, 3], tick_size, message_path, lambda i: "price", lambda i: i + 1
    )
    sizes = book[:, :, [1, 3]]
    prices = np.where(sizes > 0, book[:, :, [0, 2]], 0)
    prices = _to_ticks(
        prices,
        tick_size,
        orderbook_path,
        lambda i: names[(i % (levels * 2)) // 2 * 4 + (i % 2) * 2],
        lambda i: i // (levels * 2) + 1,
    )
    rows = np.empty_like(book)
    rows[:, :, [0, 2]] = prices
    rows[:, :, [1, 3]] = sizes
    return _initial_row(rows[0], messages[0]), messages, rows, tick_size


def prepare_replay(message_path, orderbook_path, *, tick_size: int = 100):
    """Read and check a LOBSTER pair and convert it to the replay kernel's inputs.

    Returns
    -------
    initial_row : ndarray[int64], shape (levels, 4)
        The visible book before the first message (prices in ticks).
    messages : ndarray[int64], shape (M, 5)
        ``[type, order_id, size, price_ticks, direction]``.
    rows : ndarray[int64], shape (M, levels, 4)
        The orderbook file in ticks (an empty level has price 0, size 0).
    """
    tick_size = check_int("tick_size", tick_size, 1, 2**40)
    msgs_df, book_df = _read_pair(message_path, orderbook_path)
    initial, messages, rows, _ = _convert(msgs_df, book_df, tick_size, message_path, orderbook_path)
    return initial, messages, rows


def read_day(message_path, orderbook_path, *, tick_size: int | None = None) -> LobsterDay:
    """Read and check a LOBSTER pair (any number of levels) as a :class:`LobsterDay`;
    ``tick_size`` (price units per tick) is inferred from the prices when not given."""
    msgs_df, book_df = _read_pair(message_path, orderbook_path)
    initial, messages, rows, tick = _convert(
        msgs_df, book_df, tick_size, message_path, orderbook_path
    )
    times = msgs_df["time"].to_numpy().astype(np.float64)
    return LobsterDay(times, messages, rows, initial, tick)


#: the price LOBSTER writes for an empty ask level and an empty bid level
EMPTY_ASK_PRICE, EMPTY_BID_PRICE = 9_999_999_999, -9_999_999_999


def write_day(day: LobsterDay, folder, ticker: str = "SIM", date: str = "2026-01-02"):
    """Write ``day`` as a LOBSTER pair in ``folder`` (created), named as LOBSTER names its files
    (``{ticker}_{date}_{start}_{end}_message_{levels}.csv`` and ``..._orderbook_...``), prices
    in units of ``day.tick_units`` per tick, an empty level at LOBSTER's placeholder prices.
    Each file is written whole or not at all. Returns (message path, orderbook path)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    start = int(day.times[0] * 1000) if day.times.size else 0
    end = int(np.ceil(day.times[-1] * 1000)) if day.times.size else 0
    stem = f"{ticker}_{date}_{start}_{end}"
    message_path = folder / f"{stem}_message_{day.levels}.csv"
    orderbook_path = folder / f"{stem}_orderbook_{day.levels}.csv"
    messages = day.messages.copy()
    messages[:, 3] *= day.tick_units
    frame = pl.DataFrame(
        {
            "time": day.times,
            **{name: messages[:, i] for i, name in enumerate(MESSAGE_COLUMNS[1:])},
        }
    )
    book = day.rows.copy()
    for price, size, empty in ((0, 1, EMPTY_ASK_PRICE), (2, 3, EMPTY_BID_PRICE)):
        book[:, :, price] = np.where(
            book[:, :, size] > 0, book[:, :, price] * day.tick_units, empty
        )
    names = orderbook_columns(day.levels)
    rows = pl.DataFrame(book.reshape(len(book), -1), schema=list(names), orient="row")
    for path, table in ((message_path, frame), (orderbook_path, rows)):
        tmp = path.with_name(path.name + ".tmp")
        table.write_csv(tmp, include_header=False, float_precision=9)
        tmp.replace(path)
    return message_path, orderbook_path


def replay_lobster(
    message_path,
    orderbook_path,
    *,
    tick_size: int = 100,
    ladder_levels: int = 4096,
    repeat: int = 3,
) -> ReplayResult:
    """Replay a LOBSTER message file through the engine and compare with its orderbook file.

    Parameters
    ----------
    message_path, orderbook_path : path-like
        The pair of files of one LOBSTER sample (same number of rows).
    tick_size : int
        Price units per tick (LOBSTER writes dollars x 10000; one cent is 100).
    ladder_levels : int
        Ladder width of the engine's book (a power of two).
    repeat : int
        Timed replays (after one untimed warm-up); ``seconds`` is their median.

    Returns
    -------
    ReplayResult
        ``rows`` has shape (messages, levels, 4) in LOBSTER layout and units.
    """
    repeat = check_int("repeat", repeat, 1, 10**6)
    params = check_book_params(ladder_levels, 1 << 16, 1 << 16)
    initial, messages, rows = prepare_replay(message_path, orderbook_path, tick_size=tick_size)
    out_rows = np.zeros_like(rows)
    matched = np.zeros(len(rows), np.bool_)
    # The first full-size call in a process pays a one-off cost (compilation or cache load, and
    # more): run once untimed, then time `repeat` runs, each on a fresh book, and keep the median.
    timings = []
    for run in range(repeat + 1):
        counters = np.zeros(_r.NUM_COUNTERS, np.int64)
        state = allocate_book_state(1, params)
        start = time.perf_counter()
        _r.replay_lobster_kernel(state, initial, messages, rows, out_rows, matched, counters)
        if run:
            timings.append(time.perf_counter() - start)
    seconds = float(np.median(timings))

    out_rows[:, :, [0, 2]] *= tick_size
    return ReplayResult(
        rows=out_rows,
        matched=matched,
        counters={k: int(v) for k, v in zip(_r.COUNTER_NAMES, counters, strict=True)},
        messages=len(messages),
        seconds=seconds,
    )


def reconstruct_rows(message_path, orderbook_path, **kwargs) -> np.ndarray:
    """The engine's visible window after each message, int64 (rows, levels, 4), LOBSTER layout
    ``[ask_px, ask_qty, bid_px, bid_qty]`` per level, prices in the file's units."""
    return replay_lobster(message_path, orderbook_path, **kwargs).rows
