"""Historical order flow as a market of the simulator: a LOBSTER day (or any span) loaded once and
shared read-only by every env that trades against it.

``HistoricalMarket(message_csv, orderbook_csv)`` reads and checks the pair, converts it to the
engine's units (prices in ticks of the file's grid, sizes in shares), replays it once to learn
what a book needs to hold it, and splits its time into a ``train`` part (the first
``train_fraction`` of the span) and an ``eval`` part (the rest), so that an evaluation never
sees the hours an agent trained on. ``MarketMakingVectorEnv(N, config, market=market)`` then
replays, in each env, a window of ``config.episode_steps * config.dt`` seconds drawn from the
part ``config.lobster_part`` (the step: ``fastlob._kernels.historical``).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from fastlob._checks import check_choice, check_int, check_real, shown
from fastlob._kernels import historical as _h
from fastlob._kernels import replay as _r
from fastlob._kernels.book_layout import BookParams, allocate_book_state
from fastlob.data.lobster import LobsterFormatError, check_not_crossed, read_day

__all__ = ["PARTS", "WINDOWS", "HistoricalMarket", "load_market"]

#: the parts of a market's time an env can draw its windows from
PARTS = ("train", "eval", "all")

#: how an env's window is placed in its part (``MarketMakingConfig.lobster_windows``)
WINDOWS = ("random", "tiled")

#: price units of a LOBSTER file per currency unit (it writes dollars x 10000)
PRICE_UNITS_PER_CURRENCY = 10_000


def _check_episode_seconds(value) -> float:
    """An episode's length in seconds: a finite real > 0 (a window of 0 s, or of none, holds no
    episode)."""
    try:
        return check_real("episode_seconds", value, 0.0, math.inf, low_open=True)
    except ValueError:
        raise ValueError(f"episode_seconds must be finite and > 0, got {value}") from None


def _power_of_two_at_least(value: int) -> int:
    return 1 << max(4, math.ceil(math.log2(max(value, 1))))


class HistoricalMarket:
    """A LOBSTER pair as a market to trade against (see the module docstring).

    Parameters
    ----------
    message_csv, orderbook_csv : path-like
        The pair (any level count); read strictly (``LobsterFormatError`` names the file, line
        and field of the first problem).
    tick_size : int or None
        Price units of the file per tick (LOBSTER writes dollars x 10000: a cent is 100); None
        to infer it from the prices.
    train_fraction : float
        Share of the data's time span in the ``train`` part, in (0, 1).
    lot_size : int
        Shares per lot: the data's sizes are divided by it (each must be a multiple of it) and
        the market maker quotes in lots of it (1: quantities are the data's shares).

    Attributes
    ----------
    data : HistData
        The file in the engine's units (arrays shared by every env; never written).
    tick_units : int
        Price units per tick; ``tick_size`` the currency per tick.
    order_capacity : int
        Order slots a book needs to hold a window of this data and two quotes (from one replay
        of the whole file).
    price_span : int
        The widest span of resting prices in ticks (both sides) in that replay.
    replay_mismatches : int
        Rows whose window the replay could not reproduce (0 for a consistent file).
    """

    def __init__(
        self,
        message_csv,
        orderbook_csv,
        *,
        tick_size: int | None = None,
        train_fraction: float = 0.75,
        lot_size: int = 1,
    ):
        self.lot_size = check_int("lot_size", lot_size, 1, 10**9)
        self.train_fraction = check_real("train_fraction", train_fraction, 0.0, 1.0)
        if not 0.0 < self.train_fraction < 1.0:
            raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
        for name, value in (("message_csv", message_csv), ("orderbook_csv", orderbook_csv)):
            if not isinstance(value, (str, os.PathLike)):
                raise TypeError(f"{name} must be a path (str or os.PathLike), got {shown(value)}")
        self.message_csv, self.orderbook_csv = Path(message_csv), Path(orderbook_csv)
        day = read_day(message_csv, orderbook_csv, tick_size=tick_size)
        check_not_crossed(day, orderbook_csv)
        if day.messages.shape[0] < 2:
            raise LobsterFormatError(
                message_csv, day.messages.shape[0] + 1, "time",
                "missing: a historical market needs at least two messages",
            )  # fmt: skip
        messages = day.messages.copy()
        messages[:, _r.COL_ID] += _h.FIRST_DATA_ID
        rows = day.rows.copy()
        if self.lot_size > 1:
            self._in_lots(messages, rows)
        self.data = _h.HistData(
            times=day.times,
            messages=messages,
            rows=rows,
            deepest=_h.deepest_prices(rows),
        )
        for array in self.data:
            array.flags.writeable = False
        self.tick_units = int(day.tick_units)
        self.tick_size = self.tick_units / PRICE_UNITS_PER_CURRENCY
        self.levels = day.levels
        self._initial_row = day.initial_row.copy()
        self._initial_row[:, [1, 3]] //= self.lot_size
        self._measure_extent()
        self.split_time = day.times[0] + self.train_fraction * day.seconds

    def _in_lots(self, messages: np.ndarray, rows: np.ndarray) -> None:
        """Divide the sizes by the lot in place; a size that is not a multiple of it is a
        ``LobsterFormatError`` naming its line and field."""
        lot = self.lot_size
        for path, sizes, field_of in (
            (self.message_csv, messages[:, _r.COL_SIZE], lambda i: "size"),
            (
                self.orderbook_csv,
                rows[:, :, [1, 3]].reshape(len(rows), -1),
                lambda i: f"{'ask' if i % 2 == 0 else 'bid'}_size_{i // 2 + 1}",
            ),
        ):
            bad = np.argwhere(sizes % lot != 0)
            if bad.size:
                line, column = (bad[0, 0], 0) if sizes.ndim == 1 else bad[0]
                raise LobsterFormatError(
                    path, int(line) + 1, field_of(int(column)),
                    f"size {int(sizes[tuple(bad[0])])} is not a multiple of the lot "
                    f"({lot} shares)",
                )  # fmt: skip
        messages[:, _r.COL_SIZE] //= lot
        rows[:, :, [1, 3]] //= lot

    def _measure_extent(self) -> None:
        d = self.data
        params = BookParams(ladder_levels=1 << 20, order_capacity=1 << 20, trade_capacity=1 << 16)
        book = allocate_book_state(1, params)
        extent = np.zeros(3, np.int64)
        scratch = np.zeros((self.levels, 4), np.int64)
        counters = np.zeros(_r.NUM_COUNTERS, np.int64)
        _h.replay_extent(book, self._initial_row, d.messages, d.rows, scratch, counters, extent)
        most_orders, self.price_span, self.replay_mismatches = (int(x) for x in extent)
        # windows start from aggregates (one order per level), and the quotes add two orders
        self.order_capacity = _power_of_two_at_least(most_orders + 2 * self.levels + 2)

    def ladder_levels(self, max_offset: float) -> int:
        """Ladder levels a book needs to hold the data's widest book and quotes up to
        ``max_offset`` ticks from the mid beyond it (a power of two)."""
        return _power_of_two_at_least(self.price_span + 2 * math.ceil(max_offset) + 4)

    # -- parts -----------------------------------------------------------------------------------
    @property
    def seconds(self) -> float:
        """The data's time span (first to last message)."""
        return float(self.data.times[-1] - self.data.times[0])

    def part_rows(self, part: str) -> tuple[int, int]:
        """(first row, one past the last row) of ``part`` (one of :data:`PARTS`)."""
        if part not in PARTS:
            raise ValueError(f"part must be one of {', '.join(PARTS)}, got {part!r}")
        times = self.data.times
        split = int(np.searchsorted(times, self.split_time, side="right"))
        return {"train": (0, split), "eval": (split, len(times)), "all": (0, len(times))}[part]

    def part_seconds(self, part: str) -> tuple[float, float]:
        """(start, end) of ``part`` in seconds after midnight: its first and last message."""
        first, stop = self.part_rows(part)
        if stop <= first:
            return (self.split_time, self.split_time)
        return float(self.data.times[first]), float(self.data.times[stop - 1])

    def window_params(
        self, part: str, episode_seconds: float, windows: str = "random"
    ) -> _h.HistParams:
        """The kernel's description of ``part`` for windows of ``episode_seconds``, drawn at
        random (``windows="random"``) or tiled without overlap (``"tiled"``: env n plays the
        (n mod k)-th of the part's k = :meth:`independent_windows` windows); a ``ValueError``
        naming the part when it holds no such window."""
        check_choice("windows", windows, WINDOWS)
        episode_seconds = _check_episode_seconds(episode_seconds)
        first, stop = self.part_rows(part)
        start, end = self.part_seconds(part)
        if stop - first < 1 or end - start < episode_seconds:
            raise ValueError(
                f"the {part!r} part of {self.message_csv} spans {end - start:.6g} s "
                f"({stop - first} messages), shorter than one episode "
                f"(config.episode_steps * config.dt = {episode_seconds:.6g} s): shorten the "
                f"episode, or give the part more of the data (train_fraction)"
            )
        if windows == "tiled":
            tiles = self.independent_windows(part, episode_seconds)
            return _h.HistParams(first, stop, start, end - episode_seconds, tiles, episode_seconds)
        return _h.HistParams(first, stop, start, end - episode_seconds)

    def independent_windows(self, part: str, episode_seconds: float) -> int:
        """How many non-overlapping windows of ``episode_seconds`` fit in ``part``: the number
        of independent episodes it holds (``episode_seconds`` > 0)."""
        episode_seconds = _check_episode_seconds(episode_seconds)
        start, end = self.part_seconds(part)
        return int((end - start) // episode_seconds)

    @property
    def nbytes(self) -> int:
        """Bytes of the data every env shares (held once)."""
        return sum(a.nbytes for a in self.data)

    def __repr__(self) -> str:
        return (
            f"HistoricalMarket({str(self.message_csv)!r}, {str(self.orderbook_csv)!r}, "
            f"{len(self.data.times)} messages, {self.levels} levels, {self.seconds:.6g} s, "
            f"tick {self.tick_units})"
        )


_LOADED: dict[tuple, HistoricalMarket] = {}


def load_market(
    message_csv,
    orderbook_csv,
    *,
    tick_size: int | None = None,
    train_fraction: float = 0.75,
    lot_size: int = 1,
) -> HistoricalMarket:
    """A :class:`HistoricalMarket`, loaded once per process for the same files (by path, size
    and modification time) and arguments, so that every env built from a config shares it."""
    key = (tick_size, float(train_fraction), lot_size)
    for path in (message_csv, orderbook_csv):
        try:
            stat = os.stat(path)
        except OSError as err:
            raise ValueError(f"{path}: cannot read ({err.strerror})") from None
        key += (os.path.realpath(path), stat.st_size, stat.st_mtime_ns)
    if key not in _LOADED:
        _LOADED[key] = HistoricalMarket(
            message_csv,
            orderbook_csv,
            tick_size=tick_size,
            train_fraction=train_fraction,
            lot_size=lot_size,
        )
    return _LOADED[key]
