"""The market-making step of one env: its book, its background flow and one market maker.

One step of env ``n`` (length ``dt`` seconds), in this order:

1. The action is read (clipped to the action space by the caller's row clip): bid and ask offsets
   in ticks from the mid now, sizes in lots (rounded half up), an inventory target. The quote
   prices are fixed now: ``bid = floor(mid - bid_offset)``, ``ask = ceil(mid + ask_offset)``
   (a bid below 1 tick is posted at 1).
2. The background flow runs for ``latency`` seconds (the quotes are on their way).
3. The quotes reach the book, bid first. With ``post_only`` a quote that would cross the
   opposite best (anyone's, the market maker's own included) is first re-priced one tick
   behind it (counted), as an exchange's post-only order slides. For each side: if the live
   quote has the same price and the same requested size, it stays where it is in the queue
   (if the position limit now allows less than it has left, it is reduced, which keeps
   priority); otherwise the live quote is cancelled and a new limit order of the requested
   size, cut to what the position limit allows (``max_inventory - inventory`` for a bid,
   ``max_inventory + inventory`` for an ask; every cut is counted), goes to the back of its
   level. A new quote that crosses the market maker's own resting opposite quote first cancels
   that quote (self-trade prevention, counted); one that crosses anyone else's trades as a
   taker. Size 0 withdraws the side.
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

The data layout is ``mm_layout``; the parallel drivers that reset and step N envs in one call
are ``mm_drivers``.

Autoreset is next-step: on the step after an episode ended (``prev_done``) the env ignores its
action, starts a new episode (an empty book seeded with ``initial_depth`` one-lot orders at each
of the flow's D levels on each side of ``initial_price``, then ``warmup`` seconds of flow) and
returns reward 0.
"""

from __future__ import annotations

import math

import numpy as np

from fastlob._kernels.book import (
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
    EMPTY_PRICE,
    NO_SLOT,
    OK,
    TRADE_MAKER_ID,
    TRADE_PRICE,
    TRADE_QTY,
    TRADE_TAKER_ID,
    TRADE_TAKER_SIDE,
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
from fastlob._kernels.mm_layout import (
    ACT_ASK_OFFSET,
    ACT_ASK_SIZE,
    ACT_BID_OFFSET,
    ACT_BID_SIZE,
    ACT_INVENTORY_TARGET,
    FILL_LOG_CAPACITY,
    FILL_MID,
    FILL_PRICE,
    FILL_QTY,
    FILL_SIDE,
    FILL_TAKER,
    M_ADVERSE_FILLS,
    M_FEES,
    M_FILL_LOG_DROPPED,
    M_FILLED_QTY,
    M_FILLS,
    M_INVENTORY_SQ,
    M_INVENTORY_SUM,
    M_MAKER_QTY,
    M_MARKOUT,
    M_MARKOUT_DROPPED,
    M_MARKOUT_FILLS,
    M_MARKOUT_QTY,
    M_MAX_DRAWDOWN,
    M_PNL_STEP_SQ,
    M_PNL_STEP_SUM,
    M_POST_ONLY_REPRICED,
    M_QUOTE_REDUCED,
    M_QUOTED_QTY,
    M_REJECTED_QUOTES,
    M_RETURN,
    M_SELF_TRADE_CANCELS,
    M_SPREAD_CAPTURED,
    M_TAKER_QTY,
    M_TOUCH_STEPS,
    MARKOUT_CAPACITY,
    MARKOUT_DUE,
    MARKOUT_MID2,
    MARKOUT_PRICE,
    MARKOUT_QTY,
    MM_ASK_ID,
    MM_BID_ID,
    OBS_ALPHA,
    OBS_ASK_DISTANCE,
    OBS_ASK_LEVELS,
    OBS_ASK_QUEUE,
    OBS_BID_DISTANCE,
    OBS_BID_LEVELS,
    OBS_BID_QUEUE,
    OBS_IMBALANCE,
    OBS_INVENTORY,
    OBS_LEVELS,
    OBS_PNL,
    OBS_SIGNED_FLOW,
    OBS_SPREAD,
    OBS_TIME_LEFT,
)
from fastlob._numba import njit

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
def run_flow(s, m, model, totals, p, n, duration, account):
    """Run book ``n``'s background flow (:class:`flow.FlowModel` ``model``) for ``duration``
    seconds, accounting the market maker's fills after every event (or only emptying the trade
    buffer when ``account`` is False).

    ``totals`` is ``flow.rate_totals(model)``, computed once by the caller for all its envs (the
    loop over the rate curves is not hoisted by the compiler: the stores of a step might alias
    the rate arrays as far as it knows)."""
    begin_span(model, m, n, duration)  # m holds the flow's state (flow.FlowState's fields)
    t = 0.0
    while True:
        before = mid2(s, m, n)
        t = next_event(s, n, model, m, totals, t, duration)
        if t < 0.0:
            return
        if s.trade_count[n] > 0:
            if account:
                account_trades(s, m, p, n, before)
            else:
                s.trade_count[n] = 0


@njit
def warm_up(s, m, model, p, n):
    """``warmup`` seconds of flow with no market maker (a real call: reset is not hot)."""
    run_flow(s, m, model, rate_totals(model), p, n, p.warmup, False)


@njit
def _crosses(side, price, other_price):
    """Would a ``side`` order at ``price`` trade with an opposite order at ``other_price``?"""
    if side == BID:
        return price >= other_price
    return price <= other_price


@njit
def _post_only_price(s, m, n, side, price):
    """The post-only rule: a quote that would cross the opposite best is re-priced one tick
    behind it (counted), so that it rests and every fill is a maker fill."""
    opposite = s.best[n, 1 - side]
    if opposite == EMPTY_PRICE or not _crosses(side, price, opposite):
        return price
    m.metrics[n, M_POST_ONLY_REPRICED] += 1.0
    return opposite - 1 if side == BID else opposite + 1


@njit(inline="always")
def place_quote(s, m, p, n, side, price, size, indexed):
    """Bring the market maker's ``side`` quote to (``price``, ``size``) as described in the
    module docstring (keep, reduce, or cancel and replace); accounts any taker fills.
    ``indexed``: the book keeps the quote's id in its id table (a book whose other orders are
    looked up by id, as the historical market's); False for the simulator's own books."""
    order_id = MM_BID_ID if side == BID else MM_ASK_ID
    if p.post_only:
        price = _post_only_price(s, m, n, side, price)
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
    direction = 1 if side == BID else -1
    if indexed:
        status = limit_order(s, n, direction, price, wanted, order_id)
    else:
        status = tracked_limit_order(s, n, direction, price, wanted, order_id)
    if status != OK:
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
def reset_env(s, m, model, p, n, obs):
    """Start a new episode in env ``n`` (see the module docstring); writes ``obs[n]``."""
    clear_book(s, n)
    for side in (BID, ASK):
        _forget_quote(m, n, side)  # before the warm-up: the flow reads where quotes rest
    s.next_auto_id[n] = FIRST_FLOW_ID
    for distance in range(1, model.limit_rates.shape[0] + 1):
        for _ in range(p.initial_depth):
            limit_order(s, n, 1, p.initial_price - distance, 1, AUTO_ID)
            limit_order(s, n, -1, p.initial_price + distance, 1, AUTO_ID)
    m.last_best[n, BID] = p.initial_price - 1
    m.last_best[n, ASK] = p.initial_price + 1
    m.flow_state[n, FAIR_VALUE] = p.initial_price
    m.flow_state[n, FAIR_LEVEL] = p.initial_price
    m.flow_state[n, EXCITATION] = 0.0
    if p.warmup > 0.0:
        warm_up(s, m, model, p, n)
    start_episode(s, m, p, n, obs)


@njit
def start_episode(s, m, p, n, obs):
    """Zero env ``n``'s account, signals and metrics for a new episode on the book as it is
    now, and write ``obs[n]``."""
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
def begin_step(s, m, p, n, action):
    """Step 1 of the module docstring: env ``n``'s quotes from its clipped ``action`` and the
    mid now. Returns (bid price, ask price, bid lots, ask lots, inventory target in lots, spread
    captured so far); empties the step's fill log."""
    bid, ask = quote_prices(
        mid2(s, m, n), float(action[ACT_BID_OFFSET]), float(action[ACT_ASK_OFFSET])
    )
    bid_size = lots_of(float(action[ACT_BID_SIZE]))
    ask_size = lots_of(float(action[ACT_ASK_SIZE]))
    target = float(action[ACT_INVENTORY_TARGET]) * p.max_inventory
    m.fill_count[n] = 0  # the log holds this step's fills only
    return bid, ask, bid_size, ask_size, target, m.metrics[n, M_SPREAD_CAPTURED]


@njit(inline="always")
def autoreset_outputs(m, n, out):
    """The outputs of env ``n``'s autoreset step (its action ignored): no fills, reward 0,
    neither flag; the observation is the reset's."""
    m.fill_count[n] = 0
    out.reward[n] = 0.0
    out.terminated[n] = False
    out.truncated[n] = False


@njit(inline="always")
def step_env(s, m, model, totals, p, n, action, out):
    """Advance env ``n`` by one step (see the module docstring); writes its outputs into
    ``out`` (:class:`mm_layout.StepOutputs`).

    ``action`` is env ``n``'s clipped row, float32 (ACT_DIM,); ``totals`` is
    ``flow.rate_totals(model)``.

    Inlined into the driver's loop: a call passes every array of both state tuples as
    flattened arguments (about 4 KB of descriptors written to the stack per env), a large share
    of a step at ~1 event per step.
    """
    if m.prev_done[n]:
        reset_env(s, m, model, p, n, out.obs)
        autoreset_outputs(m, n, out)
        return
    bid, ask, bid_size, ask_size, target, captured_before = begin_step(s, m, p, n, action)
    # one call site for the flow, so that its inlined body is compiled once
    for phase in range(2):
        duration = p.latency if phase == 0 else p.dt - p.latency
        run_flow(s, m, model, totals, p, n, duration, True)
        if phase == 0:
            place_quote(s, m, p, n, BID, bid, bid_size, False)
            place_quote(s, m, p, n, ASK, ask, ask_size, False)
    finish_step(s, m, p, n, target, captured_before, out)


@njit(inline="always")
def finish_step(s, m, p, n, target, captured_before, out):
    """The end of env ``n``'s step once its market has run: markouts, signals, PnL, reward,
    the episode's end and the observation (step 5 of the module docstring). ``target`` is the
    inventory target in lots, ``captured_before`` the spread captured before the step."""
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
    out.reward[n] = r
    breach = drawdown > p.max_drawdown or (
        p.terminate_on_max_inventory and abs(q) >= p.max_inventory
    )
    done_by_time = m.step[n] >= p.episode_steps
    out.terminated[n] = breach
    out.truncated[n] = done_by_time and not breach
    m.prev_done[n] = breach or done_by_time
    if m.prev_done[n]:
        _take_markouts(m, n, now, True)
    write_obs(s, m, p, n, now, out.obs)
