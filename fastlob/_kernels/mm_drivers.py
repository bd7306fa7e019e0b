"""Parallel drivers of the market-making simulator: reset and step N envs in one call, in chunks
of ``CHUNK`` envs per thread (the per-env step is ``mm.step_env``).

The batched step prefetches: while it steps env ``n`` it asks for the cache lines env
``n + 2 * PREFETCH_DISTANCE`` will touch that can be found without running it (``_prefetch_env``),
then, for env ``n + PREFETCH_DISTANCE``, whose levels have arrived by then, for the orders those
levels point to (``_prefetch_heads``), so that at thousands of envs, whose state outgrows the
caches, those lines arrive while other work runs instead of stalling the step one after another.
A hint only: no value changes.
"""

from __future__ import annotations

from fastlob._kernels.actions import clip_row, first_non_finite
from fastlob._kernels.book import _away_step, _level
from fastlob._kernels.book_layout import ASK, BID, CACHE_LINE, EMPTY_PRICE, NO_SLOT
from fastlob._kernels.flow import FlowModel, rate_totals
from fastlob._kernels.mm import (
    _next_markout_slot,
    others_mid2,
    quote_prices,
    reset_env,
    step_env,
)
from fastlob._kernels.mm_layout import ACT_ASK_OFFSET, ACT_BID_OFFSET, NUM_METRICS
from fastlob._numba import njit, prange, prefetch

#: envs per chunk of the parallel loop (each chunk's loop runs in a plain kernel)
CHUNK = 64


#: envs between the one being stepped and the one whose orders are asked for (``_prefetch_heads``);
#: the lines known without reading the book (``_prefetch_env``) are asked for twice as far ahead,
#: so that the level heads the second stage reads have arrived
PREFETCH_DISTANCE = 4
#: fewest envs at which the step prefetches: below, the lines a step touches stay in the caches
#: between steps and the hints only cost their instructions
PREFETCH_MIN_ENVS = 2048


@njit(inline="always")
def _prefetch_order(s, n, slot):
    """The lines of the order in ``slot``: its record (id, quantity, price and queue links lie
    in one line, see ``book_layout.ORDER_RECORD_FIELDS``; its side is not stored, see
    ``book.side_of``) and its list position."""
    prefetch(s.order_id, (n, slot))
    prefetch(s.live_pos, (n, slot))


@njit(inline="always")
def _prefetch_level(s, n, side, price):
    """The lines of the level of ``price``: its quantity and its queue's ends."""
    level = _level(s, price)
    prefetch(s.level_qty, (n, side, level))
    prefetch(s.level_head, (n, side, level))
    prefetch(s.level_tail, (n, side, level))


@njit(inline="always")
def _clipped_offset(actions, n, column, low, high):
    """Env ``n``'s quote offset in ``column`` as its step will clip it (before it does)."""
    return float(min(max(actions[n, column], low[column]), high[column]))


@njit(inline="always")
def _prefetch_env(s, m, n, actions, low, high):
    """Ask for the cache lines of env ``n`` that its next step touches and that can be found
    from its scalars alone: its metrics row (27 float64, up to 5 lines), the head of its
    markout ring and the record the next fill would take, the first rows of its fill log and
    trade buffer, the last entry of its live-order list (moved on every removal), on each side
    the level at the best, the line of levels behind it (the observation reads five a side), the
    lines at the middle and at the worst level (a removal at the worst walks back from it), the
    level just inside the opposite best (where the flow's limit orders arrive), the level of the
    new quote (its price from the mid and the clipped action), the current quote's order and
    level (a moved quote is unlinked there) and the free slot (a new quote takes it). The flow's
    own events (random by construction) are not predicted. Reads a few of env ``n``'s scalars,
    writes nothing."""
    words_per_line = CACHE_LINE // m.metrics.itemsize
    for word in range(0, NUM_METRICS, words_per_line):
        prefetch(m.metrics, (n, word))
    prefetch(m.metrics, (n, NUM_METRICS - 1))
    prefetch(m.markouts, (n, m.markout_head[n], 0))
    prefetch(m.markouts, (n, _next_markout_slot(m, n), 0))
    prefetch(m.fill_log, (n, 0, 0))
    prefetch(s.trades, (n, 0, 0))
    prefetch(s.live_slot, (n, s.side_orders[n, BID] + s.side_orders[n, ASK] - 1))
    mask = s.level_qty.shape[2] - 1
    new_quotes = quote_prices(
        others_mid2(s, m, n),
        _clipped_offset(actions, n, ACT_BID_OFFSET, low, high),
        _clipped_offset(actions, n, ACT_ASK_OFFSET, low, high),
    )
    for side in (BID, ASK):
        away = _away_step(side)
        best = s.best[n, side]
        if best != EMPTY_PRICE:
            worst = s.worst[n, side]
            _prefetch_level(s, n, side, best)
            behind = best + away * (CACHE_LINE // s.level_qty.itemsize)
            prefetch(s.level_qty, (n, side, behind & mask))
            prefetch(s.level_qty, (n, side, _level(s, (best + worst) >> 1)))
            prefetch(s.level_qty, (n, side, _level(s, worst)))
        opposite = s.best[n, 1 - side]
        if opposite != EMPTY_PRICE:
            _prefetch_level(s, n, side, opposite + away)
        _prefetch_level(s, n, side, new_quotes[side])
        slot = m.quote_slot[n, side]
        if slot != NO_SLOT:
            _prefetch_order(s, n, slot)
            _prefetch_level(s, n, side, m.quote_price[n, side])
    if s.free_head[n] != NO_SLOT:
        _prefetch_order(s, n, s.free_head[n])


@njit(inline="always")
def _prefetch_heads(s, n):
    """The second stage, for an env whose best levels ``_prefetch_env`` asked for earlier: the
    order at the head of each best level, which a market order or a crossing quote takes first
    (its id, quantity and links are read, and it is removed when it fills)."""
    for side in (BID, ASK):
        best = s.best[n, side]
        if best != EMPTY_PRICE:
            head = s.level_head[n, side, _level(s, best)]
            if head != NO_SLOT:
                _prefetch_order(s, n, head)


@njit
def _reset_range(s, m, fp, lr, cr, lc, mc, p, mask, obs, start, stop):
    model = FlowModel(fp, lr, cr, lc, mc)
    for n in range(start, stop):
        if mask[n]:
            reset_env(s, m, model, p, n, obs)


@njit
def reset_envs(s, m, model, p, mask, obs):
    """Start a new episode in every env with ``mask[n]`` (bool (N,)); writes ``obs[n]``
    (float32 (N, OBS_DIM))."""
    # a parallel kernel cannot take a tuple holding a tuple: the model goes in by its parts
    fp, lr, cr, lc, mc = model
    _reset_all(s, m, fp, lr, cr, lc, mc, p, mask, obs)


@njit(parallel=True)
def _reset_all(s, m, fp, lr, cr, lc, mc, p, mask, obs):
    num_envs = mask.shape[0]
    for chunk in prange((num_envs + CHUNK - 1) // CHUNK):
        start = chunk * CHUNK
        stop = min(start + CHUNK, num_envs)
        _reset_range(s, m, fp, lr, cr, lc, mc, p, mask, obs, start, stop)


@njit
def _step_range(s, m, fp, lr, cr, lc, mc, p, actions, bounds, out, start, stop):
    model = FlowModel(fp, lr, cr, lc, mc)
    totals = rate_totals(model)
    low, high = bounds.low, bounds.high
    num_envs = actions.shape[0]
    prefetching = num_envs >= PREFETCH_MIN_ENVS
    for n in range(start, stop):
        # into the next chunk too: harmless if another thread steps it
        if prefetching and n + 2 * PREFETCH_DISTANCE < num_envs:
            _prefetch_env(s, m, n + 2 * PREFETCH_DISTANCE, actions, low, high)
        if prefetching and n + PREFETCH_DISTANCE < num_envs:
            _prefetch_heads(s, n + PREFETCH_DISTANCE)
        clip_row(actions, n, low, high, bounds.clipped_actions, bounds.clipped, bounds.clip_count)
        step_env(s, m, model, totals, p, n, bounds.clipped_actions[n], out)


@njit
def step_envs(s, m, model, p, actions, bounds, out):
    """Check, clip and advance every env by one step.

    Parameters
    ----------
    s : BookState
        N books, mutated in place.
    m : MMState
        Mutated in place.
    model : FlowModel
        The background flow's parameters, rate curves and size distributions.
    p : MMParams
    actions : ndarray[float32 or float64], shape (N, ACT_DIM)
        As the caller gave them.
    bounds : ActionBuffers
        The action space's bounds, and the clipped actions, clip flags and clip counts the step
        writes.
    out : StepOutputs
        Written: observation, reward, terminated, truncated.

    Returns
    -------
    int
        -1, or the flat index of the first NaN/inf in ``actions`` (then nothing was written).
    """
    bad = first_non_finite(actions)
    if bad >= 0:
        return bad
    # a parallel kernel cannot take a tuple holding a tuple: the model goes in by its parts
    fp, lr, cr, lc, mc = model
    _step_all(s, m, fp, lr, cr, lc, mc, p, actions, bounds, out)
    return -1


@njit(parallel=True)
def _step_all(s, m, fp, lr, cr, lc, mc, p, actions, bounds, out):
    num_envs = actions.shape[0]
    for chunk in prange((num_envs + CHUNK - 1) // CHUNK):
        start = chunk * CHUNK
        stop = min(start + CHUNK, num_envs)
        _step_range(s, m, fp, lr, cr, lc, mc, p, actions, bounds, out, start, stop)
