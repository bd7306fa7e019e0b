"""Kernels of the market-making simulator: N envs, each one limit order book with its background
flow and one market maker, advanced by one parallel call.

One step of env ``n`` (length ``dt`` seconds), in this order:

1. The action is read (clipped to the action space by the caller's row clip): bid and ask offsets
   in ticks from the mid now, sizes in lots (rounded half up), an inventory target. The quote
   prices are fixed now: ``bid = floor(mid - bid_offset)``, ``ask = ceil(mid + ask_offset)``
   (a bid below 1 tick is posted at 1).
2. The background flow runs for ``latency`` seconds (the quotes are on their way).
3. The quotes reach the book, bid first. For each side: if the live quote has the same price and
   the same requested size, it stays where it is in the queue (if the position limit now allows
   less than it has left, it is reduced, which keeps priority); otherwise the live quote is
   cancelled and a new limit order of the requested size, cut to what the position limit allows
   (``max_inventory - inventory`` for a bid, ``max_inventory + inventory`` for an ask; every cut
   is counted), goes to the back of its level. A new quote that crosses the market maker's own
   resting opposite quote first cancels that quote (self-trade prevention, counted); one that
   crosses anyone else's trades as a taker. Size 0 withdraws the side.
4. The flow runs for the rest of the step, ``dt - latency``.
5. Markouts that fell due are taken, the signals, metrics, reward and observation are written,
   and the episode ends if it reached ``episode_steps`` (truncated) or a risk limit
   (terminated).

Every fill is accounted the moment it happens, at its execution price (the resting order's),
from the book's trade buffer, which is drained after every event: cash (float64) moves by
``price * tick_size * qty * lot_size``, a fee of ``maker_fee`` or ``taker_fee`` times that
notional is paid (a negative fee is a rebate), and the mark-to-market PnL is
``cash + inventory * lot_size * mid * tick_size`` (cash starts at 0). The market maker's quotes
are order ids 0 (bid) and 1 (ask); the flow never cancels them (see ``flow.FIRST_FLOW_ID``). The
simulator tracks its quotes' slots and remaining lots itself (``quote_slot``, ``quote_left``),
from its own operations and the fills, so that it never looks them up: they enter the book
through ``book.tracked_limit_order`` and leave it by slot. The flow's orders are never looked up
by id either, so the owner sets the books' ``index_limit`` to 0 and no id enters the id table
(no probe, insert or backward-shift delete on any order).

The batched step prefetches: while it steps env ``n`` it asks for the cache lines env
``n + 2 * PREFETCH_DISTANCE`` will touch that can be found without running it (``_prefetch_env``),
then, for env ``n + PREFETCH_DISTANCE``, whose levels have arrived by then, for the orders those
levels point to (``_prefetch_heads``), so that at thousands of envs, whose state outgrows the
caches, those lines arrive while other work runs instead of stalling the step one after another.
A hint only: no value changes.

Autoreset is next-step: on the step after an episode ended (``prev_done``) the env ignores its
action, starts a new episode (an empty book seeded with ``initial_depth`` one-lot orders at each
of the flow's D levels on each side of ``initial_price``, then ``warmup`` seconds of flow) and
returns reward 0.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from fastlob._kernels.actions import clip_row, first_non_finite
from fastlob._kernels.book import (
    _away_step,
    _level,
    _reduce,
    _remove,
    clear_book,
    limit_order,
    queue_ahead_of_slot,
    tracked_limit_order,
)
from fastlob._kernels.book_layout import (
    ASK,
    AUTO_ID,
    BID,
    CACHE_LINE,
    EMPTY_PRICE,
    NO_SLOT,
    OK,
    TRADE_MAKER_ID,
    TRADE_PRICE,
    TRADE_QTY,
    TRADE_TAKER_ID,
    TRADE_TAKER_SIDE,
    aligned_zeros,
)
from fastlob._kernels.flow import (
    EXCITATION,
    FAIR_LEVEL,
    FAIR_VALUE,
    FIRST_FLOW_ID,
    begin_span,
    next_event,
    rate_totals,
)
from fastlob._numba import njit, prange, prefetch

#: order id of the market maker's bid quote
MM_BID_ID = 0
#: order id of the market maker's ask quote
MM_ASK_ID = 1

# Action columns.
#: ticks below the mid at which to bid
ACT_BID_OFFSET = 0
#: ticks above the mid at which to offer
ACT_ASK_OFFSET = 1
#: lots to bid (rounded half up; 0 withdraws the bid)
ACT_BID_SIZE = 2
#: lots to offer (rounded half up; 0 withdraws the ask)
ACT_ASK_SIZE = 3
#: inventory target as a fraction of max_inventory (used by the reward's tracking term)
ACT_INVENTORY_TARGET = 4
#: action width
ACT_DIM = 5

# Observation columns (float32); see the owner's docstring for scales.
#: inventory / max_inventory
OBS_INVENTORY = 0
#: PnL / (tick_size * lot_size * max_inventory): PnL in ticks of a full position
OBS_PNL = 1
#: (bid qty - ask qty) / (bid qty + ask qty) at the touch, 0 if both are empty
OBS_IMBALANCE = 2
#: best ask - best bid in ticks
OBS_SPREAD = 3
#: lots ahead of the market maker's bid in its queue / depth_scale, -1 without a live bid
OBS_BID_QUEUE = 4
#: lots ahead of the market maker's ask in its queue / depth_scale, -1 without a live ask
OBS_ASK_QUEUE = 5
#: mid - live bid price in ticks, 0 without a live bid
OBS_BID_DISTANCE = 6
#: live ask price - mid in ticks, 0 without a live ask
OBS_ASK_DISTANCE = 7
#: short-term alpha: exponential average of the mid's change per step, in ticks
OBS_ALPHA = 8
#: exponential average of signed traded volume per step (buyer- minus seller-initiated lots)
#: / depth_scale
OBS_SIGNED_FLOW = 9
#: first of 5 columns: price - mid in ticks of the 5 best bid levels (then 5 sizes)
OBS_BID_LEVELS = 10
#: first of 5 columns: price - mid in ticks of the 5 best ask levels (then 5 sizes)
OBS_ASK_LEVELS = 20
#: levels per side in the observation
OBS_LEVELS = 5
#: fraction of the episode left, 1 at reset, 0 at the last step
OBS_TIME_LEFT = 30
#: observation width
OBS_DIM = 31

# Per-episode metric columns (float64, ``metrics[n, column]``), accumulated in the kernel.
#: sum of rewards
M_RETURN = 0
#: fills (trade records with the market maker on one side)
M_FILLS = 1
#: lots filled
M_FILLED_QTY = 2
#: lots filled as maker
M_MAKER_QTY = 3
#: lots filled as taker
M_TAKER_QTY = 4
#: lots quoted (sizes of the quotes that reached the book)
M_QUOTED_QTY = 5
#: spread captured: sum of side * (mid - price) * qty over fills, ticks x lots
M_SPREAD_CAPTURED = 6
#: markout: sum of side * (mid at horizon - price) * qty, ticks x lots
M_MARKOUT = 7
#: fills marked out
M_MARKOUT_FILLS = 8
#: lots marked out
M_MARKOUT_QTY = 9
#: fills followed by an unfavourable mid move at the horizon (side * move < 0)
M_ADVERSE_FILLS = 10
#: sum over steps of the inventory (lots)
M_INVENTORY_SUM = 11
#: sum over steps of the squared inventory
M_INVENTORY_SQ = 12
#: sum over steps of the PnL change (money)
M_PNL_STEP_SUM = 13
#: sum over steps of the squared PnL change
M_PNL_STEP_SQ = 14
#: largest fall of the PnL from its running peak (money)
M_MAX_DRAWDOWN = 15
#: fees paid, net of rebates (money)
M_FEES = 16
#: quotes cut by the position limit
M_QUOTE_REDUCED = 17
#: own quotes cancelled to prevent a self-trade
M_SELF_TRADE_CANCELS = 18
#: quotes the book rejected (outside the ladder, pool full)
M_REJECTED_QUOTES = 19
#: fills not marked out because the markout buffer was full
M_MARKOUT_DROPPED = 20
#: steps with a live quote at the best price of its side (bid or ask counted separately)
M_TOUCH_STEPS = 21
#: fills not written to the per-step fill log because it was full
M_FILL_LOG_DROPPED = 22
#: number of metric columns
NUM_METRICS = 23

#: pending markouts per env (a fill beyond this many outstanding ones is counted, not marked)
MARKOUT_CAPACITY = 64

# Columns of a pending markout (int64 (N, MARKOUT_CAPACITY, MARKOUT_WIDTH)): one 32-byte record
# per fill, so that pushing, checking and taking one touches one cache line, not four.
#: step at which the fill is marked
MARKOUT_DUE = 0
#: signed lots (+ bought)
MARKOUT_QTY = 1
#: twice the mid just before the fill (ticks)
MARKOUT_MID2 = 2
#: execution price (ticks)
MARKOUT_PRICE = 3
#: width of a markout record
MARKOUT_WIDTH = 4
#: fills of one step kept in the per-step fill log (beyond: counted in M_FILL_LOG_DROPPED)
FILL_LOG_CAPACITY = 32

# Columns of the fill log (float64 (N, FILL_LOG_CAPACITY, FILL_LOG_WIDTH)).
#: +1 the market maker bought, -1 sold
FILL_SIDE = 0
#: execution price (ticks)
FILL_PRICE = 1
#: lots
FILL_QTY = 2
#: mid just before the fill (ticks)
FILL_MID = 3
#: 1 if the market maker was the taker
FILL_TAKER = 4
#: width of a fill-log row
FILL_LOG_WIDTH = 5


class MMParams(NamedTuple):
    """Scalar parameters of the market-making simulator (the owner validates them)."""

    dt: float
    episode_steps: int
    latency: float
    tick_size: float
    lot_size: float
    initial_price: int
    initial_depth: int
    warmup: float
    max_inventory: int
    maker_fee: float
    taker_fee: float
    max_drawdown: float
    terminate_on_max_inventory: bool
    markout_steps: int
    signal_decay: float
    depth_scale: float
    reward_scale: float
    inventory_penalty: float
    target_penalty: float
    spread_capture: float


class MMState(NamedTuple):
    """Per-env state besides the book (float64 money, int64 ticks and lots)."""

    rng: np.ndarray  #: uint64 (N,) generator state
    last_best: np.ndarray  #: int64 (N, 2) last known best bid and ask
    flow_state: np.ndarray  #: float64 (N, 3) fair value, its level, Hawkes excitation
    events: np.ndarray  #: int64 (N, NUM_EVENTS) background events, ever
    intensity_integral: np.ndarray  #: float64 (N, NUM_INTEGRALS) compensators of the counts, ever
    cash: np.ndarray  #: float64 (N,) money
    inventory: np.ndarray  #: int64 (N,) lots
    pnl: np.ndarray  #: float64 (N,) cash + inventory * lot_size * mid * tick_size
    peak_pnl: np.ndarray  #: float64 (N,) running maximum of the PnL this episode
    quote_price: np.ndarray  #: int64 (N, 2) price of the live quote per side, or EMPTY_PRICE
    quote_size: np.ndarray  #: int64 (N, 2) requested size of that quote (before any cut)
    quote_slot: np.ndarray  #: int64 (N, 2) its slot in the order pool, or NO_SLOT
    quote_left: np.ndarray  #: int64 (N, 2) its remaining lots
    step: np.ndarray  #: int64 (N,) steps taken this episode
    prev_done: np.ndarray  #: bool (N,) the last step ended the episode
    prev_mid2: np.ndarray  #: int64 (N,) twice the mid at the end of the last step
    alpha: np.ndarray  #: float64 (N,) EMA of the mid change per step (ticks)
    signed_flow: np.ndarray  #: float64 (N,) EMA of signed traded lots per step
    step_flow: np.ndarray  #: int64 (N,) signed traded lots so far this step
    metrics: np.ndarray  #: float64 (N, NUM_METRICS) this episode's accumulators
    markouts: np.ndarray  #: int64 (N, F, MARKOUT_WIDTH) ring of pending fills (MARKOUT_* columns)
    markout_head: np.ndarray  #: int64 (N,) oldest pending entry of the ring
    markout_pending: np.ndarray  #: int64 (N,) pending entries
    quote_reduced: np.ndarray  #: int64 (N,) quotes cut by the position limit, ever
    fill_log: np.ndarray  #: float64 (N, FILL_LOG_CAPACITY, FILL_LOG_WIDTH) this step's fills
    fill_count: np.ndarray  #: int64 (N,) rows of fill_log written this step


def allocate_mm_state(
    num_envs: int, flow_state_width: int, num_events: int, num_integrals: int
) -> MMState:
    n, f = num_envs, MARKOUT_CAPACITY
    return MMState(
        rng=np.ones(n, np.uint64),
        last_best=np.zeros((n, 2), np.int64),
        flow_state=np.zeros((n, flow_state_width)),
        events=np.zeros((n, num_events), np.int64),
        intensity_integral=np.zeros((n, num_integrals)),
        cash=np.zeros(n),
        inventory=np.zeros(n, np.int64),
        pnl=np.zeros(n),
        peak_pnl=np.zeros(n),
        quote_price=np.full((n, 2), EMPTY_PRICE, np.int64),
        quote_size=np.zeros((n, 2), np.int64),
        quote_slot=np.full((n, 2), NO_SLOT, np.int64),
        quote_left=np.zeros((n, 2), np.int64),
        step=np.zeros(n, np.int64),
        prev_done=np.zeros(n, np.bool_),
        prev_mid2=np.zeros(n, np.int64),
        alpha=np.zeros(n),
        signed_flow=np.zeros(n),
        step_flow=np.zeros(n, np.int64),
        metrics=np.zeros((n, NUM_METRICS)),
        markouts=aligned_zeros((n, f, MARKOUT_WIDTH), np.int64),
        markout_head=np.zeros(n, np.int64),
        markout_pending=np.zeros(n, np.int64),
        quote_reduced=np.zeros(n, np.int64),
        fill_log=np.zeros((n, FILL_LOG_CAPACITY, FILL_LOG_WIDTH)),
        fill_count=np.zeros(n, np.int64),
    )


# ---------------------------------------------------------------------------------------------
# market data
# ---------------------------------------------------------------------------------------------


@njit(inline="always")
def mid2(s, m, n):
    """Twice the mid price of book ``n`` in ticks (an empty side counts at its last best)."""
    bid = s.best[n, BID]
    ask = s.best[n, ASK]
    if bid == EMPTY_PRICE:
        bid = m.last_best[n, BID]
    if ask == EMPTY_PRICE:
        ask = m.last_best[n, ASK]
    return bid + ask


@njit
def _mark_to_market(m, p, n, mid2_now):
    return m.cash[n] + m.inventory[n] * p.lot_size * (0.5 * mid2_now * p.tick_size)


# ---------------------------------------------------------------------------------------------
# fills
# ---------------------------------------------------------------------------------------------


@njit(inline="always")
def _next_markout_slot(m, n):
    """The ring entry env ``n``'s next pending fill takes (the one after the newest)."""
    return (m.markout_head[n] + m.markout_pending[n]) % MARKOUT_CAPACITY


@njit
def _push_markout(m, p, n, signed_qty, mid2_before, price):
    if m.markout_pending[n] == MARKOUT_CAPACITY:
        m.metrics[n, M_MARKOUT_DROPPED] += 1.0
        return
    slot = _next_markout_slot(m, n)
    # the fill happens during step m.step + 1 (1-based); it is marked at the end of the step
    # markout_steps later, as fastlob.metrics.markouts counts horizons
    m.markouts[n, slot, MARKOUT_DUE] = m.step[n] + 1 + p.markout_steps
    m.markouts[n, slot, MARKOUT_QTY] = signed_qty
    m.markouts[n, slot, MARKOUT_MID2] = mid2_before
    m.markouts[n, slot, MARKOUT_PRICE] = price
    m.markout_pending[n] += 1


@njit
def _log_fill(m, n, sign, price, qty, mid2_before, taker):
    k = m.fill_count[n]
    if k == FILL_LOG_CAPACITY:
        m.metrics[n, M_FILL_LOG_DROPPED] += 1.0
        return
    m.fill_log[n, k, FILL_SIDE] = sign
    m.fill_log[n, k, FILL_PRICE] = price
    m.fill_log[n, k, FILL_QTY] = qty
    m.fill_log[n, k, FILL_MID] = 0.5 * mid2_before
    m.fill_log[n, k, FILL_TAKER] = 1.0 if taker else 0.0
    m.fill_count[n] = k + 1


@njit(inline="always")
def _agent_fill(m, p, n, sign, price, qty, fee_rate, mid2_before, taker):
    """Account one fill of the market maker: ``sign`` +1 bought, -1 sold."""
    notional = price * p.tick_size * (qty * p.lot_size)
    fee = fee_rate * notional
    m.inventory[n] += sign * qty
    m.cash[n] -= sign * notional + fee
    row = m.metrics
    row[n, M_FEES] += fee
    row[n, M_FILLS] += 1.0
    row[n, M_FILLED_QTY] += qty
    row[n, M_TAKER_QTY if taker else M_MAKER_QTY] += qty
    row[n, M_SPREAD_CAPTURED] += sign * (0.5 * mid2_before - price) * qty
    _push_markout(m, p, n, sign * qty, mid2_before, price)
    _log_fill(m, n, sign, price, qty, mid2_before, taker)


@njit
def _forget_quote(m, n, side):
    m.quote_price[n, side] = EMPTY_PRICE
    m.quote_size[n, side] = 0
    m.quote_slot[n, side] = NO_SLOT
    m.quote_left[n, side] = 0


@njit(inline="always")
def account_trades(s, m, p, n, mid2_before):
    """Account every fill in book ``n``'s trade buffer, then empty it.

    ``mid2_before`` is twice the mid just before the event that made the fills (the reference of
    spread captured and of the markout's mid move).
    """
    for k in range(s.trade_count[n]):
        qty = s.trades[n, k, TRADE_QTY]
        taker_side = s.trades[n, k, TRADE_TAKER_SIDE]
        price = s.trades[n, k, TRADE_PRICE]
        m.step_flow[n] += taker_side * qty
        maker = s.trades[n, k, TRADE_MAKER_ID]
        taker = s.trades[n, k, TRADE_TAKER_ID]
        if maker < FIRST_FLOW_ID:
            side = BID if maker == MM_BID_ID else ASK
            m.quote_left[n, side] -= qty
            if m.quote_left[n, side] == 0:
                _forget_quote(m, n, side)
            sign = 1 if side == BID else -1
            _agent_fill(m, p, n, sign, price, qty, p.maker_fee, mid2_before, False)
        elif 0 <= taker < FIRST_FLOW_ID:
            _agent_fill(m, p, n, taker_side, price, qty, p.taker_fee, mid2_before, True)
    s.trade_count[n] = 0


# ---------------------------------------------------------------------------------------------
# flow and quotes
# ---------------------------------------------------------------------------------------------


@njit(inline="always")
def run_flow(s, m, fp, limit_rates, cancel_rates, totals, p, n, duration, account):
    """Run book ``n``'s background flow for ``duration`` seconds, accounting the market maker's
    fills after every event (or only emptying the trade buffer when ``account`` is False).

    ``totals`` is ``flow.rate_totals(limit_rates, cancel_rates)``, computed once by the caller
    for all its envs (the loop over the rate curves is not hoisted by the compiler: the stores
    of a step might alias the rate arrays as far as it knows)."""
    begin_span(m.rng, n, fp, m.flow_state, duration)
    side_limit, cancel_max = totals
    t = 0.0
    while True:
        before = mid2(s, m, n)
        t = next_event(
            s,
            n,
            m.rng,
            fp,
            limit_rates,
            cancel_rates,
            side_limit,
            cancel_max,
            t,
            duration,
            m.last_best,
            m.flow_state,
            m.events,
            m.intensity_integral,
        )
        if t < 0.0:
            return
        if s.trade_count[n] > 0:
            if account:
                account_trades(s, m, p, n, before)
            else:
                s.trade_count[n] = 0


@njit
def warm_up(s, m, fp, limit_rates, cancel_rates, p, n):
    """``warmup`` seconds of flow with no market maker (a real call: reset is not hot)."""
    totals = rate_totals(limit_rates, cancel_rates)
    run_flow(s, m, fp, limit_rates, cancel_rates, totals, p, n, p.warmup, False)


@njit
def _crosses(side, price, other_price):
    """Would a ``side`` order at ``price`` trade with an opposite order at ``other_price``?"""
    if side == BID:
        return price >= other_price
    return price <= other_price


@njit(inline="always")
def place_quote(s, m, p, n, side, price, size):
    """Bring the market maker's ``side`` quote to (``price``, ``size``) as described in the
    module docstring (keep, reduce, or cancel and replace); accounts any taker fills."""
    order_id = MM_BID_ID if side == BID else MM_ASK_ID
    cap = p.max_inventory - m.inventory[n] if side == BID else p.max_inventory + m.inventory[n]
    wanted = size
    if wanted > cap:
        wanted = cap
        m.metrics[n, M_QUOTE_REDUCED] += 1.0
        m.quote_reduced[n] += 1
    live = m.quote_slot[n, side] != NO_SLOT
    if live and m.quote_price[n, side] == price and m.quote_size[n, side] == size:
        left = m.quote_left[n, side]
        if left > wanted:
            if wanted <= 0:
                _remove(s, n, m.quote_slot[n, side])
                _forget_quote(m, n, side)
            else:
                _reduce(s, n, m.quote_slot[n, side], left - wanted)  # keeps priority
                m.quote_left[n, side] = wanted
        return
    if live:
        _remove(s, n, m.quote_slot[n, side])  # by slot: no id lookup
        _forget_quote(m, n, side)
    if wanted <= 0:
        return
    other = 1 - side
    if m.quote_slot[n, other] != NO_SLOT and _crosses(side, price, m.quote_price[n, other]):
        _remove(s, n, m.quote_slot[n, other])
        _forget_quote(m, n, other)
        m.metrics[n, M_SELF_TRADE_CANCELS] += 1.0
    before = mid2(s, m, n)
    if tracked_limit_order(s, n, 1 if side == BID else -1, price, wanted, order_id) != OK:
        m.metrics[n, M_REJECTED_QUOTES] += 1.0
        return
    m.metrics[n, M_QUOTED_QTY] += wanted
    if s.trade_count[n] > 0:
        account_trades(s, m, p, n, before)  # it traded as a taker first
    # a remainder that rests is the newest entry of the list of resting orders
    resting = s.side_orders[n, BID] + s.side_orders[n, ASK]
    slot = s.live_slot[n, resting - 1] if resting > 0 else NO_SLOT
    if slot != NO_SLOT and s.order_id[n, slot] == order_id:
        m.quote_price[n, side] = price
        m.quote_size[n, side] = size
        m.quote_slot[n, side] = slot
        m.quote_left[n, side] = s.order_qty[n, slot]


@njit
def quote_prices(mid2_now, bid_offset, ask_offset):
    """(bid, ask) prices in ticks of quotes ``bid_offset`` / ``ask_offset`` ticks from the mid."""
    half = 0.5 * mid2_now
    bid = math.floor(half - bid_offset)
    ask = math.ceil(half + ask_offset)
    return max(bid, 1), max(ask, 1)


@njit
def lots_of(value):
    """Lots of a size action (rounded half up; the action space keeps it >= 0)."""
    return math.floor(value + 0.5)


@njit
def quotes_for(s, m, actions, low, high, out):
    """Where each env's next step would quote ``actions`` (float (N, ACT_DIM)): clipped into
    ``[low, high]`` and rounded to float32 as the step's clip does, then priced by
    :func:`quote_prices` from the mid now and sized by :func:`lots_of`. Writes ``out`` (int64
    (N, 4)): bid price, ask price (ticks), bid lots, ask lots. Reads the state only."""
    for n in range(actions.shape[0]):
        bid, ask = quote_prices(
            mid2(s, m, n),
            _as_clipped(actions, n, ACT_BID_OFFSET, low, high),
            _as_clipped(actions, n, ACT_ASK_OFFSET, low, high),
        )
        out[n, 0] = bid
        out[n, 1] = ask
        out[n, 2] = lots_of(_as_clipped(actions, n, ACT_BID_SIZE, low, high))
        out[n, 3] = lots_of(_as_clipped(actions, n, ACT_ASK_SIZE, low, high))


@njit
def _as_clipped(actions, n, column, low, high):
    """``actions[n, column]`` clipped and stored as float32, as ``actions.clip_row`` leaves it."""
    return float(np.float32(min(max(actions[n, column], low[column]), high[column])))


# ---------------------------------------------------------------------------------------------
# end of step: markouts, signals, observation
# ---------------------------------------------------------------------------------------------


@njit(inline="always")
def _take_markouts(m, n, mid2_now, everything):
    """Mark out the pending fills that are due (all of them if ``everything``)."""
    while m.markout_pending[n] > 0:
        slot = m.markout_head[n]
        if not everything and m.markouts[n, slot, MARKOUT_DUE] > m.step[n]:
            return
        signed = m.markouts[n, slot, MARKOUT_QTY]
        sign = 1 if signed > 0 else -1
        m.metrics[n, M_MARKOUT] += signed * (0.5 * mid2_now - m.markouts[n, slot, MARKOUT_PRICE])
        m.metrics[n, M_MARKOUT_FILLS] += 1.0
        m.metrics[n, M_MARKOUT_QTY] += abs(signed)
        if sign * (mid2_now - m.markouts[n, slot, MARKOUT_MID2]) < 0:
            m.metrics[n, M_ADVERSE_FILLS] += 1.0
        m.markout_head[n] = (slot + 1) % MARKOUT_CAPACITY
        m.markout_pending[n] -= 1


@njit(inline="always")
def _write_levels(s, m, p, n, side, mid2_now, obs, column):
    """Price - mid (ticks) and size / depth_scale of the side's 5 best levels; a missing level
    continues one tick beyond the last with size 0."""
    step = -1 if side == BID else 1
    price = s.best[n, side]
    worst = s.worst[n, side]
    last = m.last_best[n, side] - step
    k = 0
    while price != EMPTY_PRICE and k < OBS_LEVELS:
        qty = s.level_qty[n, side, _level(s, price)]
        # written whether or not the level holds orders, and kept (k moves on) only if it does:
        # a branch on a level's emptiness is as unpredictable as the book
        obs[n, column + k] = price - 0.5 * mid2_now
        obs[n, column + OBS_LEVELS + k] = qty / p.depth_scale
        holds_orders = qty > 0
        last = price if holds_orders else last
        k += holds_orders
        if price == worst:
            break
        price += step
    while k < OBS_LEVELS:
        last += step
        obs[n, column + k] = last - 0.5 * mid2_now
        obs[n, column + OBS_LEVELS + k] = 0.0
        k += 1


@njit(inline="always")
def _write_quote_features(s, m, p, n, side, mid2_now, obs):
    slot = m.quote_slot[n, side]
    queue_col = OBS_BID_QUEUE if side == BID else OBS_ASK_QUEUE
    distance_col = OBS_BID_DISTANCE if side == BID else OBS_ASK_DISTANCE
    if slot == NO_SLOT:
        obs[n, queue_col] = -1.0
        obs[n, distance_col] = 0.0
        return
    price = s.order_price[n, slot]
    obs[n, queue_col] = queue_ahead_of_slot(s, n, slot) / p.depth_scale
    if side == BID:
        obs[n, distance_col] = 0.5 * mid2_now - price
    else:
        obs[n, distance_col] = price - 0.5 * mid2_now
    if price == s.best[n, side]:
        m.metrics[n, M_TOUCH_STEPS] += 1.0


@njit(inline="always")
def write_obs(s, m, p, n, mid2_now, obs):
    """Write env ``n``'s observation row (see the OBS_* columns)."""
    obs[n, OBS_INVENTORY] = m.inventory[n] / p.max_inventory
    obs[n, OBS_PNL] = m.pnl[n] / (p.tick_size * p.lot_size * p.max_inventory)
    bid_qty = 0
    ask_qty = 0
    if s.best[n, BID] != EMPTY_PRICE:
        bid_qty = s.level_qty[n, BID, _level(s, s.best[n, BID])]
    if s.best[n, ASK] != EMPTY_PRICE:
        ask_qty = s.level_qty[n, ASK, _level(s, s.best[n, ASK])]
    touch = bid_qty + ask_qty
    obs[n, OBS_IMBALANCE] = 0.0 if touch == 0 else (bid_qty - ask_qty) / touch
    bid = s.best[n, BID] if s.best[n, BID] != EMPTY_PRICE else m.last_best[n, BID]
    ask = s.best[n, ASK] if s.best[n, ASK] != EMPTY_PRICE else m.last_best[n, ASK]
    obs[n, OBS_SPREAD] = ask - bid
    _write_quote_features(s, m, p, n, BID, mid2_now, obs)
    _write_quote_features(s, m, p, n, ASK, mid2_now, obs)
    obs[n, OBS_ALPHA] = m.alpha[n]
    obs[n, OBS_SIGNED_FLOW] = m.signed_flow[n] / p.depth_scale
    _write_levels(s, m, p, n, BID, mid2_now, obs, OBS_BID_LEVELS)
    _write_levels(s, m, p, n, ASK, mid2_now, obs, OBS_ASK_LEVELS)
    obs[n, OBS_TIME_LEFT] = (p.episode_steps - m.step[n]) / p.episode_steps


# ---------------------------------------------------------------------------------------------
# reset and step of one env
# ---------------------------------------------------------------------------------------------


@njit
def reset_env(s, m, fp, limit_rates, cancel_rates, p, n, obs):
    """Start a new episode in env ``n`` (see the module docstring); writes ``obs[n]``."""
    clear_book(s, n)
    for side in (BID, ASK):
        _forget_quote(m, n, side)  # before the warm-up: the flow reads where quotes rest
    s.next_auto_id[n] = FIRST_FLOW_ID
    for distance in range(1, limit_rates.shape[0] + 1):
        for _ in range(p.initial_depth):
            limit_order(s, n, 1, p.initial_price - distance, 1, AUTO_ID)
            limit_order(s, n, -1, p.initial_price + distance, 1, AUTO_ID)
    m.last_best[n, BID] = p.initial_price - 1
    m.last_best[n, ASK] = p.initial_price + 1
    m.flow_state[n, FAIR_VALUE] = p.initial_price
    m.flow_state[n, FAIR_LEVEL] = p.initial_price
    m.flow_state[n, EXCITATION] = 0.0
    if p.warmup > 0.0:
        warm_up(s, m, fp, limit_rates, cancel_rates, p, n)
    m.cash[n] = 0.0
    m.inventory[n] = 0
    m.pnl[n] = 0.0
    m.peak_pnl[n] = 0.0
    m.step[n] = 0
    m.prev_done[n] = False
    m.alpha[n] = 0.0
    m.signed_flow[n] = 0.0
    m.step_flow[n] = 0
    m.metrics[n, :] = 0.0
    m.markout_head[n] = 0
    m.markout_pending[n] = 0
    now = mid2(s, m, n)
    m.prev_mid2[n] = now
    write_obs(s, m, p, n, now, obs)


@njit(inline="always")
def _end_of_step(s, m, p, n):
    """Step 5 of the module docstring up to the reward: markouts, signals, PnL and its metrics.

    Returns (twice the mid, PnL change, drawdown, inventory)."""
    now = mid2(s, m, n)
    m.step[n] += 1
    _take_markouts(m, n, now, False)
    decay = p.signal_decay
    m.alpha[n] = decay * m.alpha[n] + (1.0 - decay) * (0.5 * (now - m.prev_mid2[n]))
    m.signed_flow[n] = decay * m.signed_flow[n] + (1.0 - decay) * m.step_flow[n]
    m.step_flow[n] = 0
    m.prev_mid2[n] = now
    pnl_before = m.pnl[n]
    pnl = _mark_to_market(m, p, n, now)
    m.pnl[n] = pnl
    change = pnl - pnl_before
    q = m.inventory[n]
    row = m.metrics
    row[n, M_INVENTORY_SUM] += q
    row[n, M_INVENTORY_SQ] += q * q
    row[n, M_PNL_STEP_SUM] += change
    row[n, M_PNL_STEP_SQ] += change * change
    if pnl > m.peak_pnl[n]:
        m.peak_pnl[n] = pnl
    drawdown = m.peak_pnl[n] - pnl
    if drawdown > row[n, M_MAX_DRAWDOWN]:
        row[n, M_MAX_DRAWDOWN] = drawdown
    return now, change, drawdown, q


@njit(inline="always")
def step_env(
    s, m, fp, limit_rates, cancel_rates, totals, p, n, action, obs, reward, terminated, truncated
):
    """Advance env ``n`` by one step (see the module docstring); writes its outputs.

    ``action`` is env ``n``'s clipped row, float32 (ACT_DIM,); ``totals`` is
    ``flow.rate_totals(limit_rates, cancel_rates)``.

    Inlined into the driver's loop: a call passes every array of both state tuples as
    flattened arguments (about 4 KB of descriptors written to the stack per env), which cost
    more than a third of a step at ~1 event per step.
    """
    if m.prev_done[n]:
        reset_env(s, m, fp, limit_rates, cancel_rates, p, n, obs)
        m.fill_count[n] = 0
        reward[n] = 0.0
        terminated[n] = False
        truncated[n] = False
        return
    bid, ask = quote_prices(
        mid2(s, m, n), float(action[ACT_BID_OFFSET]), float(action[ACT_ASK_OFFSET])
    )
    bid_size = lots_of(float(action[ACT_BID_SIZE]))
    ask_size = lots_of(float(action[ACT_ASK_SIZE]))
    target = float(action[ACT_INVENTORY_TARGET]) * p.max_inventory
    captured_before = m.metrics[n, M_SPREAD_CAPTURED]
    m.fill_count[n] = 0  # the log holds this step's fills only
    # one call site for the flow, so that its inlined body is compiled once
    for phase in range(2):
        duration = p.latency if phase == 0 else p.dt - p.latency
        run_flow(s, m, fp, limit_rates, cancel_rates, totals, p, n, duration, True)
        if phase == 0:
            place_quote(s, m, p, n, BID, bid, bid_size)
            place_quote(s, m, p, n, ASK, ask, ask_size)
    now, change, drawdown, q = _end_of_step(s, m, p, n)
    tick_value = p.tick_size * p.lot_size
    miss = q - target
    r = p.reward_scale * (
        change / tick_value
        - p.inventory_penalty * q * q
        - p.target_penalty * miss * miss
        + p.spread_capture * (m.metrics[n, M_SPREAD_CAPTURED] - captured_before)
    )
    m.metrics[n, M_RETURN] += r
    reward[n] = r
    breach = drawdown > p.max_drawdown or (
        p.terminate_on_max_inventory and abs(q) >= p.max_inventory
    )
    done_by_time = m.step[n] >= p.episode_steps
    terminated[n] = breach
    truncated[n] = done_by_time and not breach
    m.prev_done[n] = breach or done_by_time
    if m.prev_done[n]:
        _take_markouts(m, n, now, True)
    write_obs(s, m, p, n, now, obs)


# ---------------------------------------------------------------------------------------------
# parallel drivers
# ---------------------------------------------------------------------------------------------

#: envs per chunk of the parallel loop (each chunk's loop runs in a plain kernel)
CHUNK = 64


#: envs between the one being stepped and the one whose orders are asked for (``_prefetch_heads``);
#: the lines known without reading the book (``_prefetch_env``) are asked for twice as far ahead,
#: so that the level heads the second stage reads have arrived. 4 to 8 measured alike, a step at
#: ~1 event per step taking about 1 us per thread
PREFETCH_DISTANCE = 4
#: fewest envs at which the step prefetches: below, the lines a step touches (about 3 KB per
#: env) stay in the caches between steps and the hints only cost their instructions (3-8%
#: slower at N = 64 and 256, alike at 1024, 10-25% faster at 4096: the commit says how measured)
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
    from its scalars alone: its metrics row (23 float64, up to 4 lines), the head of its
    markout ring and the record the next fill would take, the first rows of its fill log and
    trade buffer, the last entry of its live-order list (moved on every removal), on each side
    the level at the best, the line of levels behind it (the observation reads five a side), the
    lines at the middle and at the worst level (a removal at the worst walks back from it), the
    level just inside the opposite best (where the flow's limit orders arrive), the level of the
    new quote (its price from the mid and the clipped action), the current quote's order and
    level (a moved quote is unlinked there) and the free slot (a new quote takes it). The flow's
    own events (random by construction) are not predicted. Reads a few of env ``n``'s scalars,
    writes nothing."""
    prefetch(m.metrics, (n, 0))
    words_per_line = CACHE_LINE // m.metrics.itemsize
    prefetch(m.metrics, (n, words_per_line))
    prefetch(m.metrics, (n, 2 * words_per_line))
    prefetch(m.metrics, (n, NUM_METRICS - 1))
    prefetch(m.markouts, (n, m.markout_head[n], 0))
    prefetch(m.markouts, (n, _next_markout_slot(m, n), 0))
    prefetch(m.fill_log, (n, 0, 0))
    prefetch(s.trades, (n, 0, 0))
    prefetch(s.live_slot, (n, s.side_orders[n, BID] + s.side_orders[n, ASK] - 1))
    mask = s.level_qty.shape[2] - 1
    new_quotes = quote_prices(
        mid2(s, m, n),
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
def _reset_range(s, m, fp, limit_rates, cancel_rates, p, mask, obs, start, stop):
    for n in range(start, stop):
        if mask[n]:
            reset_env(s, m, fp, limit_rates, cancel_rates, p, n, obs)


@njit(parallel=True)
def reset_envs(s, m, fp, limit_rates, cancel_rates, p, mask, obs):
    """Start a new episode in every env with ``mask[n]`` (bool (N,)); writes ``obs[n]``."""
    num_envs = mask.shape[0]
    for chunk in prange((num_envs + CHUNK - 1) // CHUNK):
        start = chunk * CHUNK
        _reset_range(
            s, m, fp, limit_rates, cancel_rates, p, mask, obs, start, min(start + CHUNK, num_envs)
        )


@njit
def _step_range(
    s,
    m,
    fp,
    limit_rates,
    cancel_rates,
    p,
    actions,
    low,
    high,
    clipped_actions,
    clipped,
    clip_count,
    obs,
    reward,
    terminated,
    truncated,
    start,
    stop,
):
    totals = rate_totals(limit_rates, cancel_rates)
    num_envs = actions.shape[0]
    prefetching = num_envs >= PREFETCH_MIN_ENVS
    for n in range(start, stop):
        # into the next chunk too: harmless if another thread steps it
        if prefetching and n + 2 * PREFETCH_DISTANCE < num_envs:
            _prefetch_env(s, m, n + 2 * PREFETCH_DISTANCE, actions, low, high)
        if prefetching and n + PREFETCH_DISTANCE < num_envs:
            _prefetch_heads(s, n + PREFETCH_DISTANCE)
        clip_row(actions, n, low, high, clipped_actions, clipped, clip_count)
        step_env(
            s,
            m,
            fp,
            limit_rates,
            cancel_rates,
            totals,
            p,
            n,
            clipped_actions[n],
            obs,
            reward,
            terminated,
            truncated,
        )


@njit(parallel=True)
def step_envs(
    s,
    m,
    fp,
    limit_rates,
    cancel_rates,
    p,
    actions,
    low,
    high,
    clipped_actions,
    clipped,
    clip_count,
    obs,
    reward,
    terminated,
    truncated,
):
    """Check, clip and advance every env by one step.

    Parameters
    ----------
    s : BookState
        N books, mutated in place.
    m : MMState
        Mutated in place.
    fp : FlowParams
    limit_rates, cancel_rates : ndarray[float64], shape (D,)
    p : MMParams
    actions : ndarray[float32 or float64], shape (N, ACT_DIM)
        As the caller gave them.
    low, high : ndarray[float32], shape (ACT_DIM,)
        Bounds of the action space.
    clipped_actions : ndarray[float32], shape (N, ACT_DIM)
        Written: the actions after clipping (what the envs used).
    clipped : ndarray[bool], shape (N,)
        Written: whether env n's action was clipped.
    clip_count : ndarray[int64], shape (N,)
        Incremented for each clipped action.
    obs : ndarray[float32], shape (N, OBS_DIM)
        Written.
    reward : ndarray[float32], shape (N,)
        Written.
    terminated, truncated : ndarray[bool], shape (N,)
        Written.

    Returns
    -------
    int
        -1, or the flat index of the first NaN/inf in ``actions`` (then nothing was written).
    """
    bad = first_non_finite(actions)
    if bad >= 0:
        return bad
    num_envs = actions.shape[0]
    for chunk in prange((num_envs + CHUNK - 1) // CHUNK):
        start = chunk * CHUNK
        _step_range(
            s,
            m,
            fp,
            limit_rates,
            cancel_rates,
            p,
            actions,
            low,
            high,
            clipped_actions,
            clipped,
            clip_count,
            obs,
            reward,
            terminated,
            truncated,
            start,
            min(start + CHUNK, num_envs),
        )
    return -1
