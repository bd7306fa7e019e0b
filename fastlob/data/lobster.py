"""LOBSTER message and orderbook files: read them (polars), replay them through the engine.

Message file, one row per event: ``time, type, order_id, size, price, direction`` (price in
dollars x 10000; direction +1 buy order, -1 sell order). Orderbook file, row k = the visible book
after message k: ``ask_price_1, ask_size_1, bid_price_1, bid_size_1, ...`` for each level.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import numpy as np
import polars as pl

from fastlob._kernels import replay as _r
from fastlob._kernels.book_layout import allocate_book_state
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


def _scan_for_error(path, names, check_value) -> NoReturn:
    """Walk the file line by line and raise at the first bad line/field (slow path, errors only).

    Always raises: if no line is at fault, the error says the file could not be parsed."""
    with open(path) as fh:
        for line_no, line in enumerate(fh, start=1):
            fields = line.rstrip("\r\n").split(",")
            if len(fields) != len(names):
                raise LobsterFormatError(
                    path,
                    line_no,
                    names[min(len(fields), len(names)) - 1],
                    f"expected {len(names)} comma-separated columns, found {len(fields)}",
                )
            for name, text in zip(names, fields, strict=True):
                check_value(path, line_no, name, text.strip())
    raise LobsterFormatError(path, 0, "?", "could not be parsed")  # pragma: no cover


def _check_message_value(path, line, name, text):
    try:
        value = float(text) if name == "time" else int(text)
    except ValueError:
        raise LobsterFormatError(path, line, name, f"{text!r} is not a number") from None
    if name == "type" and value not in EVENT_TYPES:
        raise LobsterFormatError(path, line, name, f"unknown event type {value} (allowed 1..7)")
    if name == "direction" and value not in (1, -1):
        raise LobsterFormatError(path, line, name, f"direction {value} is not +1 or -1")
    if name == "size" and value < 0:
        raise LobsterFormatError(path, line, name, f"negative size {value}")


def _check_orderbook_value(path, line, name, text):
    try:
        value = int(text)
    except ValueError:
        raise LobsterFormatError(path, line, name, f"{text!r} is not an integer") from None
    if "size" in name and value < 0:
        raise LobsterFormatError(path, line, name, f"negative size {value}")


def _read_strings(path, width):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"LOBSTER file not found: {path}")
    try:
        df = pl.read_csv(path, has_header=False, infer_schema=False)
    except pl.exceptions.PolarsError:
        return None
    if df.width != width:
        return None
    return df


def read_messages(path) -> pl.DataFrame:
    """Read a LOBSTER message file into a DataFrame with columns ``MESSAGE_COLUMNS``.

    Raises :class:`LobsterFormatError` naming the line and field of the first malformed value.
    """
    names = MESSAGE_COLUMNS
    raw = _read_strings(path, len(names))
    if raw is not None:
        raw.columns = list(names)
        df = raw.select(
            pl.col("time").cast(pl.Float64, strict=False),
            *(pl.col(c).cast(pl.Int64, strict=False) for c in names[1:]),
        )
        bad = (
            pl.any_horizontal(pl.all().is_null())
            | ~pl.col("type").is_in(EVENT_TYPES)
            | ~pl.col("direction").is_in((1, -1))
            | (pl.col("size") < 0)
        )
        if not df.select(bad.any()).item():
            return df
    _scan_for_error(path, names, _check_message_value)


def read_orderbook(path) -> pl.DataFrame:
    """Read a LOBSTER orderbook file (any number of levels) into a DataFrame of int64 columns
    named by :func:`orderbook_columns`. Raises :class:`LobsterFormatError` like
    :func:`read_messages`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"LOBSTER file not found: {path}")
    with open(path) as fh:
        first = fh.readline()
    width = len(first.split(","))
    if width % 4 != 0:
        raise LobsterFormatError(
            path, 1, "ask_price_1", f"{width} columns: an orderbook file has 4 per level"
        )
    names = orderbook_columns(width // 4)
    raw = _read_strings(path, width)
    if raw is not None:
        raw.columns = list(names)
        df = raw.select(pl.all().cast(pl.Int64, strict=False))
        sizes = [c for c in names if "size" in c]
        bad = pl.any_horizontal(pl.all().is_null()) | pl.any_horizontal(
            [pl.col(c) < 0 for c in sizes]
        )
        if not df.select(bad.any()).item():
            return df
    _scan_for_error(path, names, _check_orderbook_value)


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
    bad = np.flatnonzero(values % tick_size)
    if bad.size:
        i = bad[0]
        raise LobsterFormatError(
            path,
            line_of(i),
            field_of(i),
            f"price {values.flat[i]} is not a multiple of tick_size {tick_size}",
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
    msgs_df = read_messages(message_path)
    book_df = read_orderbook(orderbook_path)
    if msgs_df.height != book_df.height:
        raise ValueError(
            f"{message_path} has {msgs_df.height} rows but {orderbook_path} has "
            f"{book_df.height}: a LOBSTER pair has one orderbook row per message"
        )
    if msgs_df.height == 0:
        raise ValueError(f"{message_path} holds no messages")
    levels = book_df.width // 4
    names = orderbook_columns(levels)

    raw = msgs_df.select(MESSAGE_COLUMNS[1:]).to_numpy().astype(np.int64)
    messages = raw[:, [0, 1, 2, 3, 4]].copy()  # type, id, size, price, direction
    priced = np.isin(messages[:, 0], (1, 2, 3, 4))
    messages[:, 3] = np.where(priced, messages[:, 3], 0)
    messages[:, 3] = _to_ticks(
        messages[:, 3], tick_size, message_path, lambda i: "price", lambda i: i + 1
    )

    book = _book_rows(book_df, levels)
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

    return _initial_row(rows[0], messages[0]), messages, rows


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
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
        raise ValueError(f"repeat must be an integer >= 1, got {repeat!r}")
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
    names_ctr = (
        "mismatched_rows",
        "levels_taken_from_file",
        "levels_forgotten",
        "executions_filling_another_order",
        "unexplained_cancel_qty",
        "rejected_submissions",
        "deletes_with_other_size",
        "fills",
    )
    return ReplayResult(
        rows=out_rows,
        matched=matched,
        counters={k: int(v) for k, v in zip(names_ctr, counters, strict=True)},
        messages=len(messages),
        seconds=seconds,
    )


def reconstruct_rows(message_path, orderbook_path, **kwargs) -> np.ndarray:
    """The engine's visible window after each message, int64 (rows, levels, 4), LOBSTER layout
    ``[ask_px, ask_qty, bid_px, bid_qty]`` per level, prices in the file's units."""
    return replay_lobster(message_path, orderbook_path, **kwargs).rows
