"""A simulated market as LOBSTER data: one book of a ``MarketMakingConfig``'s market, its
background flow alone (no market maker), logged as the messages and orderbook rows LOBSTER
would write for it (``fastlob simulate``; see ``fastlob._kernels.export``).

This is what makes a calibration checkable: simulate with known parameters, write the pair,
calibrate the files, and compare with the truth. The book starts empty, receives the market's
``initial_depth`` one-lot orders at each of its levels on each side of ``initial_price`` (the
first messages, all at the start time), and the flow then runs in spans of ``dt`` seconds (the
informed flow's fair value moves at each span's start, as in the simulator's steps). Prices are
written in units of 0.0001 currency (LOBSTER's dollars x 10000), so ``tick_size`` must be a
whole number of them; sizes in shares, ``lot_size`` per lot.
"""

from __future__ import annotations

import math

import numpy as np

from fastlob._checks import check_fits_memory, check_int, check_real
from fastlob._kernels import export as _export
from fastlob._kernels import flow as _flow
from fastlob._kernels import replay as _replay
from fastlob._kernels.book import depth_into
from fastlob._kernels.book_layout import (
    ASK,
    AUTO_ID,
    BID,
    EMPTY_PRICE,
    MSG_LIMIT,
    MSG_MARKET,
    OK,
    STATUS_NAMES,
    allocate_book_state,
    bytes_per_book,
    copy_state,
)
from fastlob._kernels.flow import (
    EXCITATION,
    FAIR_LEVEL,
    FAIR_VALUE,
    FIRST_FLOW_ID,
    allocate_flow_state,
)
from fastlob._kernels.rng import seed_states
from fastlob.book import BookBatch
from fastlob.data.lobster import LobsterDay
from fastlob.env import MarketMakingConfig, candidate_rate, check_config

#: LOBSTER's price unit in currency (prices are written in dollars x 10000)
PRICE_UNIT = 1e-4
#: the time of the first message, in seconds after midnight (09:30)
START_TIME = 34_200.0
#: spans simulated per kernel call (the message buffer is sized for them, and grown if not)
SPANS_PER_CALL = 256
#: the most candidate events a simulated day (its warm-up included) may draw: about a minute of
#: flow kernel on one core
MAX_SIMULATED_EVENTS = 1e9


def price_units_per_tick(config: MarketMakingConfig) -> int:
    """``config.tick_size`` in LOBSTER's price units; ``ValueError`` naming the field unless it
    is a whole number of them."""
    units = config.tick_size / PRICE_UNIT
    if abs(units - round(units)) > 1e-9 * max(1.0, units) or round(units) < 1:
        raise ValueError(
            f"config.tick_size must be a whole multiple of {PRICE_UNIT} (LOBSTER writes prices "
            f"in dollars x 10000), got {config.tick_size}"
        )
    return round(units)


def simulate_day(
    config: MarketMakingConfig,
    seconds: float,
    seed: int = 0,
    levels: int = 10,
    start_time: float = START_TIME,
    warmup: float = 0.0,
) -> LobsterDay:
    """``seconds`` of the market of ``config`` as LOBSTER data (see the module docstring).

    Parameters
    ----------
    config : MarketMakingConfig
        The market (its flow, levels, book capacities, tick and lot sizes).
    seconds : float
        How long the flow runs (whole spans of ``config.dt``: rounded up).
    seed : int
        Seed of the book's generator (the book is env 0 of ``seed``).
    levels : int
        Levels of the orderbook rows.
    start_time : float
        Time of the first message, seconds after midnight.
    warmup : float
        Seconds of flow run before the first message is logged (0: the data start from the
        seeding of the empty book; else they start from the book the warm-up left, which the
        first orderbook row shows).
    """
    _, model, book_params = check_config(config)
    seconds = check_real("seconds", seconds, 0.0, 30 * 86_400.0, low_open=True)
    seed = check_int("seed", seed, 0, 2**63 - 1)
    levels = check_int("levels", levels, 1, book_params.ladder_levels)
    tick_units = price_units_per_tick(config)
    lot = float(config.lot_size)
    if abs(lot - round(lot)) > 1e-9 or round(lot) < 1:
        raise ValueError(f"config.lot_size must be a whole number of shares, got {lot}")
    check_fits_memory("book", 1, bytes_per_book(book_params), "book state")
    books = allocate_book_state(1, book_params)
    books.next_auto_id[:] = FIRST_FLOW_ID  # the flow's ids, as in the simulator's books
    fs = allocate_flow_state(1)
    fs.rng[:] = seed_states(seed, np.arange(1))
    fs.last_best[0] = (config.initial_price - 1, config.initial_price + 1)
    fs.flow_state[0, FAIR_VALUE] = fs.flow_state[0, FAIR_LEVEL] = config.initial_price
    fs.flow_state[0, EXCITATION] = 0.0

    warmup = check_real("warmup", warmup, 0.0, 30 * 86_400.0)
    rate = candidate_rate(
        model.params, model.limit_rates, model.cancel_rates, book_params.order_capacity
    )
    if rate * (seconds + warmup) > MAX_SIMULATED_EVENTS:
        raise ValueError(
            f"seconds + warmup = {seconds + warmup:g} s of a flow drawing up to {rate:.3g} "
            f"candidate events per second is {rate * (seconds + warmup):.3g} events, more than "
            f"the {MAX_SIMULATED_EVENTS:.0e} a simulated day may draw (shorten it)"
        )
    capacity = 4096 + 2 * config.flow_levels * config.initial_depth
    times = np.zeros(capacity)
    messages = np.zeros((capacity, 5), np.int64)
    count = _export.seed_messages(
        books, config.initial_price, config.initial_depth, config.flow_levels, start_time,
        times, messages, 0,
    )  # fmt: skip
    if warmup > 0:  # run the flow unlogged (its messages counted past a buffer of none)
        _export.flow_messages(
            books, model, fs, config.dt, math.ceil(warmup / config.dt - 1e-9), start_time,
            times[:0], messages[:0], 0,
        )  # fmt: skip
        count = 0
    first = copy_state(books)
    spans = math.ceil(seconds / config.dt - 1e-9)
    done = 0
    while done < spans:
        batch = min(SPANS_PER_CALL, spans - done)
        saved = copy_state(books), [a.copy() for a in fs]
        while True:
            start = start_time + done * config.dt
            written = _export.flow_messages(
                books, model, fs, config.dt, batch, start, times, messages, count
            )
            if written <= len(times):
                break
            # the buffer overflowed: grow it and run the same spans again from their start
            books = saved[0]
            fs = type(fs)(*saved[1])
            saved = copy_state(books), [a.copy() for a in fs]
            times = np.concatenate([times, np.zeros(written + len(times))])
            messages = np.concatenate([messages, np.zeros((written + len(messages), 5), np.int64)])
        count = written
        done += batch
        if len(times) - count < capacity // 2:  # keep room for the next call
            times = np.concatenate([times, np.zeros(len(times))])
            messages = np.concatenate([messages, np.zeros_like(messages)])
    times, messages = times[:count].copy(), messages[:count].copy()
    initial = np.zeros((levels, 4), np.int64)
    if warmup > 0:
        depth_into(first, 0, initial)
    else:  # the seeding's own messages build the book from empty
        first = allocate_book_state(1, book_params)
    rows = np.zeros((len(messages), levels, 4), np.int64)
    _export.book_rows(first, messages, np.zeros(_replay.NUM_COUNTERS, np.int64), rows)
    messages[:, _replay.COL_SIZE] *= round(lot)
    rows[:, :, [1, 3]] *= round(lot)
    initial[:, [1, 3]] *= round(lot)
    return LobsterDay(times, messages, rows, initial, tick_units)


class FlowBooks:
    """``num_envs`` books of a simulated market driven by its background flow alone (no market
    maker), each set up as the simulator resets an env: the ``initial_depth`` one-lot orders at
    each of the flow's levels on each side of ``initial_price``, and the flow's state (generator
    ``(seed, book)``, fair value at the initial price). A tool for experiments on the flow
    (:func:`push_response`): apply orders with ``books.apply`` (ids 0 and 1 are the market
    maker's, which the flow never cancels), then :meth:`remember_best`, and run the flow with
    :meth:`run`.

    Parameters
    ----------
    config : MarketMakingConfig
        A simulated market.
    num_envs : int
        Number of books.
    seed : int
        Seed of the books' generators.
    trade_capacity : int
        Fills each book can record between two runs (at least 1024).

    Attributes
    ----------
    books : BookBatch
        The books (their ids from ``flow.FIRST_FLOW_ID`` up, as the simulator's).
    flow : FlowState
        The flow's per-book state (generators, last known best, fair value, counters).
    model : FlowModel
        The market's flow, as ``check_config`` builds it.
    num_envs : int
        Number of books.
    """

    def __init__(self, config, num_envs: int, seed: int = 0, trade_capacity: int = 1024):
        _, self.model, book_params = check_config(config)
        if config.lobster:
            raise ValueError("config must be a simulated market (config.lobster is set)")
        num_envs = check_int("num_envs", num_envs, 1, 2**20)
        seed = check_int("seed", seed, 0, 2**63 - 1)
        trade_capacity = check_int("trade_capacity", trade_capacity, 1, 2**24)
        self.books = BookBatch(
            num_envs,
            ladder_levels=book_params.ladder_levels,
            order_capacity=book_params.order_capacity,
            trade_capacity=max(1024, 4 * book_params.trade_capacity, trade_capacity),
        )
        s = self.books.state
        s.next_auto_id[:] = _flow.FIRST_FLOW_ID
        price = config.initial_price
        rows = [
            [MSG_LIMIT, side, price - side * d, 1, AUTO_ID]
            for d in range(1, config.flow_levels + 1)
            for _ in range(config.initial_depth)
            for side in (1, -1)
        ]
        if rows:
            self.books.apply(np.tile(np.array(rows, np.int64), (num_envs, 1, 1)))
        self.flow = fs = _flow.allocate_flow_state(num_envs)
        fs.rng[:] = seed_states(seed, np.arange(num_envs))
        fs.last_best[:] = (price - 1, price + 1)
        fs.flow_state[:, _flow.FAIR_VALUE] = fs.flow_state[:, _flow.FAIR_LEVEL] = price
        self._applied = np.zeros(num_envs, np.int64)
        self.num_envs = num_envs

    def run(self, seconds: float, span: float | None = None) -> None:
        """Run the flow of every book for ``seconds``, in spans of ``span`` seconds (default:
        one span; the fair value moves at each span's start), forgetting the fills."""
        seconds = check_real("seconds", seconds, 0.0, 30 * 86_400.0)
        if span is not None:
            span = check_real("span", span, 0.0, 30 * 86_400.0, low_open=True)
        span = seconds if span is None else span
        left = seconds
        while left > 1e-12:
            step = min(span, left)
            _flow.advance_flow_batch(self.books.state, self.model, self.flow, step, self._applied)
            self.books.state.trade_count[:] = 0
            left -= step

    def remember_best(self) -> None:
        """After orders applied from outside the flow: record the best prices of the sides
        that are not empty as their last known best (as the flow does after its events)."""
        s, last = self.books.state, self.flow.last_best
        for side in (BID, ASK):
            present = s.best[:, side] != EMPTY_PRICE
            last[present, side] = s.best[present, side]

    def push(self, lots: int) -> int:
        """A market buy of ``lots`` lots in every book, sweeping its asks (ids from
        ``FIRST_FLOW_ID`` up), then :meth:`remember_best`. A book whose ask side it empties
        keeps the push's last fill as its last known ask. Returns the number of such books.

        A push whose fills the books' trade buffer cannot hold is refused by the books it would
        overflow (they stay as they were): a ``ValueError`` naming ``lots`` and the buffer."""
        lots = check_int("lots", lots, 1, 2**31 - 1)
        status = self.books.apply(
            np.tile(np.array([[MSG_MARKET, 1, 0, lots, AUTO_ID]]), (self.num_envs, 1, 1))
        )
        refused = status[:, 0] != OK
        if refused.any():
            first = int(np.flatnonzero(refused)[0])
            reason = STATUS_NAMES[int(status[first, 0])]
            raise ValueError(
                f"lots = {lots}: the push was refused by {int(refused.sum())} of "
                f"{self.num_envs} books ({reason}, book {first}; those books are unchanged): "
                f"its fills would not fit their trade buffer ({self.books.params.trade_capacity} "
                f"fills, less any not yet drained); give FlowBooks a larger trade_capacity"
            )
        trades = self.books.drain_trades()
        last_fill = np.zeros(self.num_envs, np.int64)
        np.maximum.at(last_fill, trades.book, trades.price)
        self.remember_best()
        emptied = (self.books.state.best[:, ASK] == EMPTY_PRICE) & (last_fill > 0)
        self.flow.last_best[emptied, ASK] = last_fill[emptied]
        return int(emptied.sum())

    def mids(self) -> np.ndarray:
        """float64 (N,): every book's mid (ticks), from the last known best of an empty side."""
        s = self.books.state
        best = np.where(s.best == EMPTY_PRICE, self.flow.last_best, s.best)
        return 0.5 * (best[:, 0] + best[:, 1])
