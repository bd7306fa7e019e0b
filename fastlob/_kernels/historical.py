"""The market-making step against historical order flow: each env's book replays its own window
of a LOBSTER file, with the market maker's quotes as real orders in it.

A step of env ``n`` has the anatomy of the simulated market's (``mm``): the action is priced at
the mid now; the file's messages with times in ``(t, t + latency]`` go through the book; the
quotes reach it; the messages in ``(t + latency, t + dt]``; then the markouts, reward and
observation. A message is applied as the replay applies it (``replay.apply_data_event``): a
submission rests at the back of its level's queue (behind the market maker's quote if that
came first), an execution fills the orders resting at the file's price for the file's size, in
their queue's order, so the queue decides whether it reaches the quote (a quote at a better price
than the file traded at is not filled by it). The file cannot react to the market maker, so a
message that finds less than the file says (an order the market maker's trades removed or
changed) is applied as far as it can be and counted (``replay.CTR_*``, per env, this episode).
After each message the visible window follows the file's row (``replay.sync_side``); the test
that it needs doing at all compares one number per side (``HistData.deepest``).

At reset env ``n`` draws its window's start ``t0`` uniformly in ``[earliest_start,
latest_start]`` from its own generator, or, with ``tiles > 0``, takes the ``(n mod tiles)``-th
of the part's non-overlapping windows, ``t0 = earliest_start + (n mod tiles) * window`` (for an
evaluation whose episodes must be independent); its book is the orderbook row of the last
message at or before ``t0`` (each level one synthetic order), and the step ``k`` spans
``(t0 + k dt, t0 + (k + 1) dt]``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from fastlob._kernels.actions import clip_row, first_non_finite
from fastlob._kernels.book import _level, clear_book
from fastlob._kernels.book_layout import ASK, BID, EMPTY_PRICE, NO_SLOT
from fastlob._kernels.mm import (
    _forget_quote,
    account_trades,
    autoreset_outputs,
    begin_step,
    finish_step,
    mid2,
    others_mid2,
    place_quotes,
    start_episode,
)
from fastlob._kernels.mm_drivers import CHUNK
from fastlob._kernels.replay import (
    COL_TYPE,
    EVENT_EXECUTE,
    EVENT_SUBMIT,
    NUM_COUNTERS,
    SYNTHETIC_ID_BASE,
    apply_data_event,
    load_row,
    replay_message,
    sync_side,
)
from fastlob._kernels.rng import uniform
from fastlob._numba import njit, prange

#: the file's order ids are shifted by this much, so that they never meet the market maker's
#: quotes (ids 0 and 1) and count as the flow's (``flow.FIRST_FLOW_ID``)
FIRST_DATA_ID = 2


class HistData(NamedTuple):
    """The file, in the engine's units, shared read-only by every env."""

    #: float64 (M,): seconds after midnight of each message
    times: np.ndarray
    #: int64 (M, 5): ``[type, order_id + FIRST_DATA_ID, size, price_ticks, direction]``
    messages: np.ndarray
    #: int64 (M, levels, 4): the orderbook file, prices in ticks (LOBSTER layout)
    rows: np.ndarray
    #: int64 (M, 2): price of the deepest level each row shows per side (BID, ASK), or
    #: EMPTY_PRICE
    deepest: np.ndarray


class HistParams(NamedTuple):
    """The part of the file the envs draw their windows from."""

    #: the part's first row
    first_row: int
    #: one past its last row
    stop_row: int
    #: earliest start of a window (seconds after midnight)
    earliest_start: float
    #: latest start of a window (a window of episode_steps * dt seconds ends in the part)
    latest_start: float
    #: 0: each window's start is drawn; else the number of non-overlapping windows of the part,
    #: env n playing the (n mod tiles)-th
    tiles: int = 0
    #: the length of a window (seconds): the step between tiled windows' starts
    window: float = 0.0


class HistState(NamedTuple):
    """Per-env state of the replay."""

    #: int64 (N,): the next row to apply
    next_row: np.ndarray
    #: float64 (N,): the window's start
    window_start: np.ndarray
    #: int64 (N,): the next id of a synthetic order
    next_synthetic: np.ndarray
    #: int64 (N, replay.NUM_COUNTERS): this episode's counters
    counters: np.ndarray


def allocate_hist_state(num_envs: int) -> HistState:
    """The replay state of ``num_envs`` envs (no row applied: ``next_row`` 0)."""
    return HistState(
        next_row=np.zeros(num_envs, np.int64),
        window_start=np.zeros(num_envs),
        next_synthetic=np.full(num_envs, SYNTHETIC_ID_BASE, np.int64),
        counters=np.zeros((num_envs, NUM_COUNTERS), np.int64),
    )


def deepest_prices(rows: np.ndarray) -> np.ndarray:
    """int64 (M, 2): the price of the deepest non-empty level of each row per side (BID, ASK),
    EMPTY_PRICE where the side is empty."""
    out = np.full((rows.shape[0], 2), EMPTY_PRICE, np.int64)
    for side, col in ((BID, 2), (ASK, 0)):
        shown = (rows[:, :, col + 1] > 0).sum(axis=1)
        has = shown > 0
        out[has, side] = rows[has, shown[has] - 1, col]
    return out


@njit
def _remember_best(s, m, n):
    for side in (BID, ASK):
        if s.best[n, side] != EMPTY_PRICE:
            m.last_best[n, side] = s.best[n, side]


@njit
def _row_at_or_before(times, first, stop, t):
    """The last row in ``[first, stop)`` whose time is at or before ``t`` (``first`` if none)."""
    lo, hi = first, stop  # invariant: times[lo] <= t (or lo == first), times[hi] > t
    while hi - lo > 1:
        mid = (lo + hi) >> 1
        if times[mid] <= t:
            lo = mid
        else:
            hi = mid
    return lo


@njit
def reset_hist_env(s, m, d, hp, h, p, n, obs):
    """Start a new episode in env ``n``: draw its window, load the row there, zero its account;
    writes ``obs[n]``."""
    clear_book(s, n)
    for side in (BID, ASK):
        _forget_quote(m, n, side)
    if hp.tiles > 0:
        t0 = hp.earliest_start + (n % hp.tiles) * hp.window
    else:
        t0 = hp.earliest_start + uniform(m.rng, n) * (hp.latest_start - hp.earliest_start)
    row = _row_at_or_before(d.times, hp.first_row, hp.stop_row, t0)
    h.next_synthetic[n] = load_row(s, n, d.rows[row], SYNTHETIC_ID_BASE)
    h.next_row[n] = row + 1
    h.window_start[n] = t0
    h.counters[n, :] = 0
    _remember_best(s, m, n)
    start_episode(s, m, p, n, obs)


@njit(inline="always")
def _window_moved(s, m, n, side, deepest):
    """Could ``side``'s window differ from the row whose deepest price is ``deepest``? Not when
    the book's worst price is that one and holds the file's orders (``replay.sync_side`` would
    then forget and take nothing)."""
    if s.worst[n, side] != deepest:
        return True
    slot = m.quote_slot[n, side]
    return (
        slot != NO_SLOT
        and s.order_price[n, slot] == deepest
        and (s.level_qty[n, side, _level(s, deepest)] == s.order_qty[n, slot])
    )


@njit(inline="always")
def run_data(s, m, d, hp, h, p, n, until):
    """Apply env ``n``'s messages up to time ``until`` (within the part), accounting the market
    maker's fills after each and keeping the visible window."""
    r = h.next_row[n]
    before = 0
    others_before = 0
    while r < hp.stop_row and d.times[r] <= until:
        kind = d.messages[r, COL_TYPE]
        if kind == EVENT_SUBMIT or kind == EVENT_EXECUTE:  # the messages that can trade
            before = mid2(s, m, n)
            others_before = others_mid2(s, m, n)
        apply_data_event(s, n, d.messages[r], h.counters[n])
        if s.trade_count[n] > 0:
            account_trades(s, m, p, n, before, others_before)
        for side in (BID, ASK):
            if _window_moved(s, m, n, side, d.deepest[r, side]):
                col = 2 if side == BID else 0
                sync_before = mid2(s, m, n)
                sync_others_before = others_mid2(s, m, n)
                next_synthetic, own_slot = sync_side(
                    s, n, side, d.rows[r], col, h.next_synthetic[n], h.counters[n],
                    m.quote_slot[n, side],
                )  # fmt: skip
                h.next_synthetic[n] = next_synthetic
                m.quote_slot[n, side] = own_slot
                if s.trade_count[n] > 0:
                    # a level taken from the row crossed the other side's orders (the book
                    # diverged from the file): account its fills now, so that a quote it
                    # filled is forgotten before the other side's sync or the quote update
                    # reads its slot (a stale slot would be unlinked a second time)
                    account_trades(s, m, p, n, sync_before, sync_others_before)
        _remember_best(s, m, n)
        r += 1
    h.next_row[n] = r


@njit(inline="always")
def step_hist_env(s, m, d, hp, h, p, n, action, out):
    """Advance env ``n`` by one step (see the module docstring); ``action`` its clipped row,
    float32 (ACT_DIM,); writes its outputs into ``out`` (``mm_layout.StepOutputs``)."""
    if m.prev_done[n]:
        reset_hist_env(s, m, d, hp, h, p, n, out.obs)
        autoreset_outputs(m, n, out)
        return
    bid, ask, bid_size, ask_size, target, captured_before = begin_step(s, m, p, n, action)
    start = h.window_start[n] + m.step[n] * p.dt
    for phase in range(2):  # one call site: its inlined body is compiled once
        until = start + p.latency if phase == 0 else start + p.dt
        run_data(s, m, d, hp, h, p, n, until)
        if phase == 0:
            place_quotes(s, m, p, n, bid, ask, bid_size, ask_size, True)
    finish_step(s, m, p, n, target, captured_before, out)


@njit
def _reset_range(s, m, d, hp, h, p, mask, obs, start, stop):
    for n in range(start, stop):
        if mask[n]:
            reset_hist_env(s, m, d, hp, h, p, n, obs)


@njit(parallel=True)
def reset_hist_envs(s, m, d, hp, h, p, mask, obs):
    """Start a new episode in every env with ``mask[n]`` (bool (N,)); writes ``obs[n]``
    (float32 (N, OBS_DIM))."""
    num_envs = mask.shape[0]
    for chunk in prange((num_envs + CHUNK - 1) // CHUNK):
        start = chunk * CHUNK
        _reset_range(s, m, d, hp, h, p, mask, obs, start, min(start + CHUNK, num_envs))


@njit
def _step_range(s, m, d, hp, h, p, actions, bounds, out, start, stop):
    low, high = bounds.low, bounds.high
    for n in range(start, stop):
        clip_row(actions, n, low, high, bounds.clipped_actions, bounds.clipped, bounds.clip_count)
        step_hist_env(s, m, d, hp, h, p, n, bounds.clipped_actions[n], out)


@njit
def step_hist_envs(s, m, d, hp, h, p, actions, bounds, out):
    """Check, clip and advance every env by one step.

    Parameters
    ----------
    s : BookState
        N books, mutated in place.
    m : MMState
        Mutated in place.
    d : HistData
        The file (read only).
    hp : HistParams
    h : HistState
        Mutated in place.
    p : MMParams
    actions : ndarray[float32 or float64], shape (N, ACT_DIM)
    bounds : ActionBuffers
    out : StepOutputs

    Returns
    -------
    int
        -1, or the flat index of the first NaN/inf in ``actions`` (then nothing was written).
    """
    bad = first_non_finite(actions)
    if bad >= 0:
        return bad
    _step_all(s, m, d, hp, h, p, actions, bounds, out)
    return -1


@njit(parallel=True)
def _step_all(s, m, d, hp, h, p, actions, bounds, out):
    num_envs = actions.shape[0]
    for chunk in prange((num_envs + CHUNK - 1) // CHUNK):
        start = chunk * CHUNK
        _step_range(s, m, d, hp, h, p, actions, bounds, out, start, min(start + CHUNK, num_envs))


@njit
def _book_span(s):
    """Ticks from book 0's lowest to its highest resting price (0 if empty)."""
    low = EMPTY_PRICE
    high = EMPTY_PRICE
    for side in (BID, ASK):
        for price in (s.best[0, side], s.worst[0, side]):
            if price != EMPTY_PRICE:
                low = price if low == EMPTY_PRICE else min(low, price)
                high = max(high, price)
    return 0 if low == EMPTY_PRICE else high - low


@njit
def replay_extent(s, initial_row, messages, rows, scratch_row, counters, out):
    """Replay the whole file on book 0 (as ``replay.replay_lobster_kernel``) and write what a
    book needs to hold it: ``out`` int64 (3,) = the most resting orders at once, the widest
    span of resting prices in ticks (both sides), rows that did not match the file;
    ``counters`` int64 (NUM_COUNTERS,) are the replay's."""
    next_synthetic = load_row(s, 0, initial_row, SYNTHETIC_ID_BASE)
    out[:] = 0
    for k in range(messages.shape[0]):
        next_synthetic, matched = replay_message(
            s, messages[k], rows[k], next_synthetic, counters, scratch_row
        )
        out[0] = max(out[0], s.side_orders[0, BID] + s.side_orders[0, ASK])
        out[1] = max(out[1], _book_span(s))
        out[2] += 0 if matched else 1
