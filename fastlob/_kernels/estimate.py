"""The counts and exposures behind the calibration of a market to LOBSTER data, in one pass.

The messages go through an engine book exactly as in the replay (the same event code, the same
trust in the visible window), so that the book before each message is known order by order.
Before each message the pass adds, for each side and each distance i = 1..D ticks from the
opposite best, the number of orders resting there times the time since the previous message
(the time-integrated queue in orders, the exposure of the cancellation rate theta(i)); then it
classifies the message: a submission at distance i counts towards lambda(i), a deletion at
distance i towards theta(i); what falls outside (aggressive or beyond the window, partial
cancellations, hidden executions, cross trades, halts) is counted apart.

The book before the first message is known only as levels; each level is loaded as orders of
``unit`` lots (the typical order size) so that its order count is an estimate, not 1.
"""

from __future__ import annotations

import math

from fastlob._kernels.book import _level, limit_order
from fastlob._kernels.book_layout import ASK, BID, EMPTY_PRICE, NO_SLOT
from fastlob._kernels.replay import (
    COL_DIRECTION,
    COL_PRICE,
    COL_TYPE,
    EVENT_CANCEL,
    EVENT_DELETE,
    EVENT_SUBMIT,
    SYNTHETIC_ID_BASE,
    replay_message,
)
from fastlob._numba import njit

# Columns of the counters the pass fills (beside the replay's own).
#: submissions at or through the opposite best (marketable or inside the spread)
C_AGGRESSIVE_SUBMISSIONS = 0
#: submissions farther than D ticks from the opposite best, or beyond the data's view
C_SUBMISSIONS_BEYOND = 1
#: deletions farther than D ticks from the opposite best, or beyond the data's view
C_DELETIONS_OUTSIDE = 2
#: partial cancellations (type 2)
C_PARTIAL_CANCELS = 3
#: executions of hidden orders (type 5)
C_HIDDEN_EXECUTIONS = 4
#: cross trades (type 6)
C_CROSS_TRADES = 5
#: trading-halt messages (type 7)
C_HALTS = 6
#: submissions and deletions while the opposite side was empty
C_NO_OPPOSITE = 7
#: rows where the book differed from the file (then taken from the file, as the replay does)
C_MISMATCHED_ROWS = 8
#: number of counters
NUM_ESTIMATE_COUNTERS = 9


@njit
def _orders_at(s, side, price):
    """Orders resting at ``price`` on ``side`` of book 0 (0 if another price holds the level)."""
    lvl = _level(s, price)
    if s.level_qty[0, side, lvl] <= 0:
        return 0
    slot = s.level_head[0, side, lvl]
    if s.order_price[0, slot] != price:
        return 0
    count = 0
    while slot != NO_SLOT:
        count += 1
        slot = s.order_next[0, slot]
    return count


@njit
def _distance(s, side, price):
    """Ticks from the opposite best to ``price`` on ``side`` (positive: behind it), or 0 when the
    opposite side is empty (as ``EMPTY_PRICE`` is never a best, callers test for it first)."""
    opposite = s.best[0, 1 - side]
    if side == BID:
        return opposite - price
    return price - opposite


@njit
def _load_split_row(s, row, unit, next_synthetic):
    """Load a LOBSTER row int64 (levels, 4) as synthetic orders of ``unit`` lots (the last of a
    level takes the remainder); returns the next synthetic id."""
    for k in range(row.shape[0]):
        for side, col in ((ASK, 0), (BID, 2)):
            left = row[k, col + 1]
            direction = 1 if side == BID else -1
            while left > 0:
                qty = unit if left >= 2 * unit else left
                limit_order(s, 0, direction, row[k, col], qty, next_synthetic)
                next_synthetic += 1
                left -= qty
    return next_synthetic


@njit
def _window_span(row, side):
    """Ticks from the opposite best to the deepest level the row shows on ``side`` when the
    row's levels are all full (deeper orders exist but are hidden), else a span that covers
    every distance (the whole side is in view); 0 when the opposite side is empty."""
    levels = row.shape[0]
    col = 2 if side == BID else 0
    opposite = row[0, 2 - col]
    if row[0, 3 - col] <= 0:
        return 0
    if row[levels - 1, col + 1] <= 0:
        return 1 << 40
    deepest = row[levels - 1, col]
    return opposite - deepest if side == BID else deepest - opposite


@njit
def flow_exposures(
    s, initial_row, messages, times, rows, unit, limit_counts, cancel_counts, exposure,
    visible, counters, replay_counters, scratch_row,
):  # fmt: skip
    """One pass over a LOBSTER day (see the module docstring).

    A distance counts only while the data show it: before each message, distance i of a side
    is in view if the book's row reaches at least i ticks from the opposite best on that side
    (a level-k file logs only the events of its k visible levels); its submissions and
    deletions are counted, and its time and order-seconds added, only then.

    Parameters
    ----------
    s : BookState
        One empty book; mutated.
    initial_row : ndarray[int64], shape (levels, 4)
        The visible book before the first message (prices in ticks).
    messages : ndarray[int64], shape (M, 5)
        ``[type, order_id, size, price_ticks, direction]``.
    times : ndarray[float64], shape (M,)
    rows : ndarray[int64], shape (M, levels, 4)
        The orderbook file in ticks.
    unit : int
        Size of the orders the initial levels are split into.
    limit_counts, cancel_counts : ndarray[int64], shape (2, D)
        Incremented: submissions and deletions by side (BID, ASK) and distance 1..D, in view.
    exposure : ndarray[float64], shape (2, D)
        Incremented: order-seconds resting at each side and distance, in view.
    visible : ndarray[float64], shape (2, D)
        Incremented: seconds each side and distance was in view.
    counters : ndarray[int64], shape (NUM_ESTIMATE_COUNTERS,)
    replay_counters : ndarray[int64], shape (replay.NUM_COUNTERS,)
        The replay's counters (levels taken from the file, forgotten, ...).
    scratch_row : ndarray[int64], shape (levels, 4)
        Working space for the book's window.
    """
    depth = limit_counts.shape[1]
    next_synthetic = _load_split_row(s, initial_row, unit, SYNTHETIC_ID_BASE)
    previous = times[0] if times.shape[0] > 0 else 0.0
    for m in range(messages.shape[0]):
        before = initial_row if m == 0 else rows[m - 1]
        span = times[m] - previous
        previous = times[m]
        for side in (BID, ASK):
            if s.best[0, 1 - side] == EMPTY_PRICE:
                continue
            step = -1 if side == BID else 1
            reach = min(depth, _window_span(before, side))
            for i in range(1, reach + 1):
                price = s.best[0, 1 - side] + step * i
                if price >= 1:
                    visible[side, i - 1] += span
                    exposure[side, i - 1] += span * _orders_at(s, side, price)
        kind = messages[m, COL_TYPE]
        if kind == EVENT_SUBMIT or kind == EVENT_DELETE:
            side = BID if messages[m, COL_DIRECTION] == 1 else ASK
            if s.best[0, 1 - side] == EMPTY_PRICE:
                counters[C_NO_OPPOSITE] += 1
            else:
                i = _distance(s, side, messages[m, COL_PRICE])
                in_view = 1 <= i <= min(depth, _window_span(before, side))
                if in_view and kind == EVENT_SUBMIT:
                    limit_counts[side, i - 1] += 1
                elif in_view:
                    cancel_counts[side, i - 1] += 1
                elif kind == EVENT_DELETE:
                    counters[C_DELETIONS_OUTSIDE] += 1
                elif i < 1:
                    counters[C_AGGRESSIVE_SUBMISSIONS] += 1
                else:
                    counters[C_SUBMISSIONS_BEYOND] += 1
        elif kind == EVENT_CANCEL:
            counters[C_PARTIAL_CANCELS] += 1
        elif kind == 5:
            counters[C_HIDDEN_EXECUTIONS] += 1
        elif kind == 6:
            counters[C_CROSS_TRADES] += 1
        elif kind == 7:
            counters[C_HALTS] += 1
        next_synthetic, matched = replay_message(
            s, messages[m], rows[m], next_synthetic, replay_counters, scratch_row
        )
        if not matched:
            counters[C_MISMATCHED_ROWS] += 1


@njit
def hawkes_log_likelihood(times, horizon, baseline, alpha, beta):
    """Log-likelihood of event times ``times`` (float64 (n,), sorted, within ``[0, horizon]``)
    under the intensity ``baseline + alpha * sum_j exp(-beta (t - t_j))`` over past events
    (Ogata's recursion: O(n)); ``-inf`` where the intensity is not positive."""
    total = 0.0
    excitation = 0.0
    for i in range(times.shape[0]):
        if i > 0:
            excitation = math.exp(-beta * (times[i] - times[i - 1])) * (1.0 + excitation)
        intensity = baseline + alpha * excitation
        if intensity <= 0.0:
            return -math.inf
        total += math.log(intensity)
    compensator = baseline * horizon
    if alpha != 0.0:
        for i in range(times.shape[0]):
            compensator += alpha / beta * (1.0 - math.exp(-beta * (horizon - times[i])))
    return total - compensator
