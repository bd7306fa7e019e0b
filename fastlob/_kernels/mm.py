"""The market-making step of one env: its book, its background flow and one market maker.

One step of env ``n`` (length ``dt`` seconds), in this order:

1. The action is read (clipped to the action space by the caller's row clip): bid and ask offsets
   in ticks from the other traders' mid now (:func:`others_mid2`: the market maker's own quotes
   left out, so that a quote alone at the touch does not move the price its next quote is set
   from), sizes in lots (rounded half up), an inventory target. The quote prices are fixed now:
   ``bid = floor(mid - bid_offset)``, ``ask = ceil(mid + ask_offset)`` (a bid below 1 tick is
   posted at 1).
2. The background flow runs for ``latency`` seconds (the quotes are on their way).
3. Both quotes reach the book as one update, whose outcome does not depend on the order of the
   sides. The other traders' best prices are read first (the market maker's own quotes left out).
   With ``post_only`` a quote that would cross the other traders' opposite best is re-priced one
   tick behind it (counted), as an exchange's post-only order slides; it never slides against the
   market maker's own quote. Each size is cut to what the position limit allows from the inventory
   now (``max_inventory - inventory`` for the bid, ``max_inventory + inventory`` for the ask; every
   cut is counted). Self-trade rule: the market maker never trades with itself, so a pair whose bid
   would reach its ask is netted lot for lot (the crossing lots are withdrawn from both sides: no
   trade, no fee; counted in lots), as an exchange's decrement-and-cancel self-trade prevention
   does. Then, per side: if the live quote has the same price and either the same requested size or
   at least as many lots left as are now allowed, it stays where it is in the queue (cut to them if
   it has more: a size decrease keeps priority, as on an exchange); otherwise it is cancelled, and
   once both sides' cancellations are done a new limit order of the allowed size goes to the back
   of its level. A new quote that crosses the other traders' opposite best trades as a taker
   (without ``post_only``); the two sides take from disjoint sides of the book, and their fills are
   accounted together after the update. Size 0 withdraws the side.
4. The flow runs for the rest of the step, ``dt - latency``.
5. Markouts that fell due are taken, the signals, metrics, reward and observation are written,
   and the episode ends if it reached ``episode_steps`` or a risk limit; both are reported as
   ``terminated`` (the time left is in the observation, so the horizon is part of the problem,
   not a cut of it).

Every fill is accounted the moment it happens, at its execution price (the resting order's),
from the book's trade buffer, which is drained after every event: cash (float64) moves by
``price * tick_size * qty * lot_size``, a fee of ``maker_fee`` or ``taker_fee`` times that
notional is paid (a negative fee is a rebate), and the mark-to-market PnL is
``cash + inventory * lot_size * mid * tick_size`` (cash starts at 0). The liquidation mark values
the inventory instead by trading it against the other traders' book now (a long position sold
into their bids level by level, a short one bought from their asks), the taker fee paid; lots
beyond their book are valued at the deepest price reached and counted. It is taken at the end of
every step when the reward uses it (``RewardConfig.mark``) and at the end of every episode.

The market maker's quotes are order ids 0 (bid) and 1 (ask); the flow never cancels them (see
``flow.FIRST_FLOW_ID``). The simulator tracks its quotes' slots and remaining lots itself
(``quote_slot``, ``quote_left``), from its own operations and the fills, so that it never looks
them up: they enter the book through ``book.tracked_limit_order`` and leave it by slot. The
flow's orders are never looked up by id either, so the owner sets the books' ``index_limit`` to
0 and no id enters the id table (no probe, insert or backward-shift delete on any order).

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
    _away_step,
    _crosses,
    _level,
    _next_level,
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
    KIND_MARKET,
    apply_event,
    begin_span,
    draw_event,
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
    FILL_REFERENCE_MID,
    FILL_SIDE,
    FILL_TAKER,
    M_ADVERSE_FILLS,
    M_FEES,
    M_FILL_LOG_DROPPED,
    M_FILLED_QTY,
    M_FILLED_QUOTE_INTERVALS,
    M_FILLS,
    M_INVENTORY_SQ,
    M_INVENTORY_SUM,
    M_LIQUIDATION_BEYOND,
    M_MAKER_QTY,
    M_MARKOUT,
    M_MARKOUT_DROPPED,
    M_MARKOUT_FILLS,
    M_MARKOUT_QTY,
    M_MAX_DRAWDOWN,
    M_PNL_STEP_SQ,
    M_PNL_STEP_SUM,
    M_POST_ONLY_REPRICED,
    M_QUOTE_INTERVALS,
    M_QUOTE_REDUCED,
    M_QUOTED_QTY,
    M_REJECTED_QUOTES,
    M_RETURN,
    M_SELF_CROSS_LOTS,
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


@njit(inline="always")
def _others_best(s, m, n, side):
    """The best price of ``side`` held by an order that is not the market maker's quote, or
    EMPTY_PRICE. Differs from the book's best only when the quote rests alone at the best."""
    best = s.best[n, side]
    if best == EMPTY_PRICE or m.quote_slot[n, side] == NO_SLOT or m.quote_price[n, side] != best:
        return best
    if s.level_qty[n, side, _level(s, best)] != m.quote_left[n, side]:
        return best  # others queue at the quote's price too
    return _next_level(s, n, side, best, s.worst[n, side], _away_step(side))


@njit
def others_mid2(s, m, n):
    """Twice the mid of the other traders' book: the market maker's quotes left out (a side
    where only the quote rests counts at the quote's price; an empty side at its last best)."""
    total = 0
    for side in (BID, ASK):
        price = _others_best(s, m, n, side)
        if price == EMPTY_PRICE:
            price = s.best[n, side]
        if price == EMPTY_PRICE:
            price = m.last_best[n, side]
        total += price
    return total


@njit
def others_mids(s, m, out):
    """Write ``out`` (float64 (N,)): each env's other traders' mid in ticks (:func:`others_mid2`
    halved). Reads the state only."""
    for n in range(out.shape[0]):
        out[n] = 0.5 * others_mid2(s, m, n)


@njit
def _liquidation_value(s, m, p, n, count):
    """Money the inventory of env ``n`` would fetch traded now against the other traders'
    book (a long position sold into their bids level by level from the best, a short one bought
    from their asks), the taker fee paid: the proceeds of a sale, minus the cost of a purchase.
    Lots beyond their book are valued at the deepest price reached (the last best if none) and,
    when ``count``, added to ``M_LIQUIDATION_BEYOND``."""
    q = m.inventory[n]
    if q == 0:
        return 0.0
    side = BID if q > 0 else ASK
    remaining = abs(q)
    ticks = 0.0  # sum of price x lots taken
    last = m.last_best[n, side]
    price = s.best[n, side]
    worst = s.worst[n, side]
    away = _away_step(side)
    own_price = m.quote_price[n, side] if m.quote_slot[n, side] != NO_SLOT else EMPTY_PRICE
    while remaining > 0 and price != EMPTY_PRICE:
        available = s.level_qty[n, side, _level(s, price)]
        if price == own_price:
            available -= m.quote_left[n, side]
        if available > 0:
            take = min(remaining, available)
            ticks += price * take
            remaining -= take
            last = price
        if price == worst:
            break
        price += away
    if remaining > 0:
        ticks += last * remaining
        if count:
            m.metrics[n, M_LIQUIDATION_BEYOND] += remaining
    notional = ticks * p.tick_size * p.lot_size
    fee = p.taker_fee * notional
    return notional - fee if q > 0 else -(notional + fee)


# ---------------------------------------------------------------------------------------------
# fills
# ---------------------------------------------------------------------------------------------


@njit(inline="always")
def _next_markout_slot(m, n):
    """The ring entry env ``n``'s next pending fill takes (the one after the newest)."""
    return (m.markout_head[n] + m.markout_pending[n]) % MARKOUT_CAPACITY


@njit
def _push_markout(m, p, n, signed_qty, reference_mid2, price):
    if m.markout_pending[n] == MARKOUT_CAPACITY:
        m.metrics[n, M_MARKOUT_DROPPED] += 1.0
        return
    slot = _next_markout_slot(m, n)
    # the fill happens during step m.step + 1 (1-based); it is marked at the end of the step
    # markout_steps later, as fastlob.metrics.markouts counts horizons
    m.markouts[n, slot, MARKOUT_DUE] = m.step[n] + 1 + p.markout_steps
    m.markouts[n, slot, MARKOUT_QTY] = signed_qty
    m.markouts[n, slot, MARKOUT_MID2] = reference_mid2
    m.markouts[n, slot, MARKOUT_PRICE] = price
    m.markout_pending[n] += 1


@njit
def _log_fill(m, n, sign, price, qty, mid2_before, markout_mid2, taker):
    k = m.fill_count[n]
    if k == FILL_LOG_CAPACITY:
        m.metrics[n, M_FILL_LOG_DROPPED] += 1.0
        return
    m.fill_log[n, k, FILL_SIDE] = sign
    m.fill_log[n, k, FILL_PRICE] = price
    m.fill_log[n, k, FILL_QTY] = qty
    m.fill_log[n, k, FILL_MID] = 0.5 * mid2_before
    m.fill_log[n, k, FILL_TAKER] = 1.0 if taker else 0.0
    m.fill_log[n, k, FILL_REFERENCE_MID] = 0.5 * markout_mid2
    m.fill_count[n] = k + 1


@njit(inline="always")
def _agent_fill(m, p, n, sign, price, qty, fee_rate, mid2_before, markout_mid2, taker):
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
    _push_markout(m, p, n, sign * qty, markout_mid2, price)
    _log_fill(m, n, sign, price, qty, mid2_before, markout_mid2, taker)


@njit
def _forget_quote(m, n, side):
    m.quote_price[n, side] = EMPTY_PRICE
    m.quote_size[n, side] = 0
    m.quote_slot[n, side] = NO_SLOT
    m.quote_left[n, side] = 0


@njit(inline="always")
def account_trades(s, m, p, n, mid2_before, markout_mid2):
    """Account every fill in book ``n``'s trade buffer, then empty it.

    ``mid2_before`` is twice the mid just before the event that made the fills (the reference
    of spread captured), ``markout_mid2`` twice the other traders' mid the fills are marked
    out from (``MARKOUT_MID2``).
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
            m.quote_hit[n, side] = True
            if m.quote_left[n, side] == 0:
                _forget_quote(m, n, side)
            sign = 1 if side == BID else -1
            _agent_fill(m, p, n, sign, price, qty, p.maker_fee, mid2_before, markout_mid2, False)
        elif 0 <= taker < FIRST_FLOW_ID:
            _agent_fill(
                m, p, n, taker_side, price, qty, p.taker_fee, mid2_before, markout_mid2, True
            )
    s.trade_count[n] = 0


# ---------------------------------------------------------------------------------------------
# flow and quotes
# ---------------------------------------------------------------------------------------------


@njit(inline="always")
def run_flow(s, m, model, totals, p, n, duration, account):
    """Run book ``n``'s background flow (:class:`flow.FlowModel` ``model``) for ``duration``
    seconds, accounting the market maker's fills after every event (or only emptying the trade
    buffer when ``account`` is False).

    Only a market order trades (the flow's limit orders are placed behind the opposite best),
    so the mids a fill is referred to are read before market orders only.

    ``totals`` is ``flow.rate_totals(model)``, computed once by the caller for all its envs (the
    loop over the rate curves is not hoisted by the compiler: the stores of a step might alias
    the rate arrays as far as it knows)."""
    begin_span(model, m, n, duration)  # m holds the flow's state (flow.FlowState's fields)
    t = 0.0
    before = 0
    others_before = 0
    while True:
        t, kind, direction, price, size, slot = draw_event(s, n, model, m, totals, t, duration)
        if t < 0.0:
            return
        if account and kind == KIND_MARKET:
            before = mid2(s, m, n)
            others_before = others_mid2(s, m, n)
        apply_event(s, n, m, kind, direction, price, size, slot)
        if s.trade_count[n] > 0:
            if account:
                account_trades(s, m, p, n, before, others_before)
            else:
                s.trade_count[n] = 0


@njit
def warm_up(s, m, model, p, n):
    """``warmup`` seconds of flow with no market maker (a real call: reset is not hot)."""
    run_flow(s, m, model, rate_totals(model), p, n, p.warmup, False)


@njit
def _post_only_price(s, m, n, side, price):
    """The post-only rule: a quote that would cross the other traders' opposite best is
    re-priced one tick behind it (counted), so that it rests and every fill is a maker fill."""
    opposite = _others_best(s, m, n, 1 - side)
    if opposite == EMPTY_PRICE or not _crosses(side, price, opposite):
        return price
    m.metrics[n, M_POST_ONLY_REPRICED] += 1.0
    return opposite - 1 if side == BID else opposite + 1


@njit(inline="always")
def _within_limit(m, n, size, cap):
    """``size`` lots cut to ``cap``, the lots the position limit allows (the cut counted)."""
    if size > cap:
        m.metrics[n, M_QUOTE_REDUCED] += 1.0
        m.quote_reduced[n] += 1
        return cap
    return size


@njit(inline="always")
def _close_quote_intervals(m, n):
    """Count the quote intervals that end now (a side's quote rested since the last update),
    and those in which the quote was filled."""
    for side in (BID, ASK):
        if m.quote_rested[n, side]:
            m.metrics[n, M_QUOTE_INTERVALS] += 1.0
            if m.quote_hit[n, side]:
                m.metrics[n, M_FILLED_QUOTE_INTERVALS] += 1.0
        m.quote_rested[n, side] = False
        m.quote_hit[n, side] = False


@njit(inline="always")
def _keep_or_cancel(s, m, n, side, price, size, lots):
    """The live ``side`` quote stays in its place if it has the same price and either the same
    requested size or at least ``lots`` left (a size decrease keeps priority, as on an
    exchange): cut to ``lots`` if it has more left, withdrawn if ``lots`` is 0; returns True
    then. Otherwise it is cancelled (if there is one) and False is returned: a new quote goes
    in."""
    slot = m.quote_slot[n, side]
    if slot == NO_SLOT:
        return False
    left = m.quote_left[n, side]
    if m.quote_price[n, side] == price and (m.quote_size[n, side] == size or lots <= left):
        m.quote_size[n, side] = size
        if left > lots:
            if lots <= 0:
                _remove(s, n, slot)
                _forget_quote(m, n, side)
            else:
                _reduce(s, n, slot, left - lots)  # keeps priority
                m.quote_left[n, side] = lots
        return True
    _remove(s, n, slot)  # by slot: no id lookup
    _forget_quote(m, n, side)
    return False


@njit(inline="always")
def _submit_quote(s, m, n, side, price, size, lots, indexed):
    """A new ``side`` quote of ``lots`` lots at ``price`` (``size`` the requested lots); its
    fills as a taker stay in the trade buffer. ``indexed``: the book keeps the quote's id in its
    id table (a book whose other orders are looked up by id, as the historical market's)."""
    if lots <= 0:
        return
    order_id = MM_BID_ID if side == BID else MM_ASK_ID
    direction = 1 if side == BID else -1
    if indexed:
        status = limit_order(s, n, direction, price, lots, order_id)
    else:
        status = tracked_limit_order(s, n, direction, price, lots, order_id)
    if status != OK:
        m.metrics[n, M_REJECTED_QUOTES] += 1.0
        return
    m.metrics[n, M_QUOTED_QTY] += lots
    # a remainder that rests is the newest entry of the list of resting orders
    resting = s.side_orders[n, BID] + s.side_orders[n, ASK]
    slot = s.live_slot[n, resting - 1] if resting > 0 else NO_SLOT
    if slot != NO_SLOT and s.order_id[n, slot] == order_id:
        m.quote_price[n, side] = price
        m.quote_size[n, side] = size
        m.quote_slot[n, side] = slot
        m.quote_left[n, side] = s.order_qty[n, slot]


@njit(inline="always")
def place_quotes(s, m, p, n, bid, ask, bid_size, ask_size, indexed):
    """Bring both of the market maker's quotes to (``bid``, ``bid_size``) and (``ask``,
    ``ask_size``) as one update (step 3 of the module docstring); accounts any taker fills.
    ``indexed`` as :func:`_submit_quote`."""
    _close_quote_intervals(m, n)
    before = mid2(s, m, n)
    if p.post_only:  # both read the other traders' book before either quote moves
        bid = _post_only_price(s, m, n, BID, bid)
        ask = _post_only_price(s, m, n, ASK, ask)
    q = m.inventory[n]
    bid_lots = _within_limit(m, n, bid_size, p.max_inventory - q)
    ask_lots = _within_limit(m, n, ask_size, p.max_inventory + q)
    if bid_lots > 0 and ask_lots > 0 and bid >= ask:
        netted = min(bid_lots, ask_lots)
        bid_lots -= netted
        ask_lots -= netted
        m.metrics[n, M_SELF_CROSS_LOTS] += netted
    keep_bid = _keep_or_cancel(s, m, n, BID, bid, bid_size, bid_lots)
    keep_ask = _keep_or_cancel(s, m, n, ASK, ask, ask_size, ask_lots)
    if not keep_bid:
        _submit_quote(s, m, n, BID, bid, bid_size, bid_lots, indexed)
    if not keep_ask:
        _submit_quote(s, m, n, ASK, ask, ask_size, ask_lots, indexed)
    if s.trade_count[n] > 0:
        # the quotes traded as takers: marked out from the other traders' mid after the update,
        # so that the market maker's own impact is not counted as the market's move
        account_trades(s, m, p, n, before, others_mid2(s, m, n))
    for side in (BID, ASK):
        m.quote_rested[n, side] = m.quote_slot[n, side] != NO_SLOT


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
    :func:`quote_prices` from the other traders' mid now and sized by :func:`lots_of`. Writes
    ``out`` (int64 (N, 4)): bid price, ask price (ticks), bid lots, ask lots. Reads the state
    only."""
    for n in range(actions.shape[0]):
        bid, ask = quote_prices(
            others_mid2(s, m, n),
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
def _take_markouts(s, m, n, everything):
    """Mark out the pending fills that are due (all of them if ``everything``) at the other
    traders' mid now."""
    if m.markout_pending[n] == 0:
        return
    if not everything and m.markouts[n, m.markout_head[n], MARKOUT_DUE] > m.step[n]:
        return
    now = others_mid2(s, m, n)
    while m.markout_pending[n] > 0:
        slot = m.markout_head[n]
        if not everything and m.markouts[n, slot, MARKOUT_DUE] > m.step[n]:
            return
        signed = m.markouts[n, slot, MARKOUT_QTY]
        sign = 1 if signed > 0 else -1
        m.metrics[n, M_MARKOUT] += signed * (0.5 * now - m.markouts[n, slot, MARKOUT_PRICE])
        m.metrics[n, M_MARKOUT_FILLS] += 1.0
        m.metrics[n, M_MARKOUT_QTY] += abs(signed)
        if sign * (now - m.markouts[n, slot, MARKOUT_MID2]) < 0:
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
def write_obs(s, m, p, n, obs):
    """Write env ``n``'s observation row (see the OBS_* columns). Prices are given from the
    other traders' mid (:func:`others_mid2`), the reference the actions are priced from."""
    mid2_now = others_mid2(s, m, n)
    obs[n, OBS_INVENTORY] = m.inventory[n] / p.max_inventory
    pnl = m.liquidation_pnl[n] if p.liquidation_mark else m.pnl[n]
    obs[n, OBS_PNL] = pnl / (p.tick_size * p.lot_size * p.max_inventory)
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
    m.liquidation_pnl[n] = 0.0
    m.peak_pnl[n] = 0.0
    m.step[n] = 0
    m.prev_done[n] = False
    m.alpha[n] = 0.0
    m.signed_flow[n] = 0.0
    m.step_flow[n] = 0
    m.metrics[n, :] = 0.0
    m.markout_head[n] = 0
    m.markout_pending[n] = 0
    for side in (BID, ASK):
        m.quote_rested[n, side] = False
        m.quote_hit[n, side] = False
    now = mid2(s, m, n)
    m.prev_mid2[n] = now
    write_obs(s, m, p, n, obs)


@njit(inline="always")
def _end_of_step(s, m, p, n):
    """Step 5 of the module docstring up to the reward: markouts, signals, PnL and its metrics.

    Returns (twice the mid, PnL change, drawdown, inventory)."""
    now = mid2(s, m, n)
    m.step[n] += 1
    _take_markouts(s, m, n, False)
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
    other traders' mid now. Returns (bid price, ask price, bid lots, ask lots, inventory target
    in lots, spread captured so far); empties the step's fill log."""
    bid, ask = quote_prices(
        others_mid2(s, m, n), float(action[ACT_BID_OFFSET]), float(action[ACT_ASK_OFFSET])
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
            place_quotes(s, m, p, n, bid, ask, bid_size, ask_size, False)
    finish_step(s, m, p, n, target, captured_before, out)


@njit(inline="always")
def finish_step(s, m, p, n, target, captured_before, out):
    """The end of env ``n``'s step once its market has run: markouts, signals, PnL, reward,
    the episode's end and the observation (step 5 of the module docstring). ``target`` is the
    inventory target in lots, ``captured_before`` the spread captured before the step."""
    _, change, drawdown, q = _end_of_step(s, m, p, n)
    breach = drawdown > p.max_drawdown or (
        p.terminate_on_max_inventory and abs(q) >= p.max_inventory
    )
    done = breach or m.step[n] >= p.episode_steps
    if p.liquidation_mark or done:
        wealth = m.cash[n] + _liquidation_value(s, m, p, n, done)
        if p.liquidation_mark:
            change = wealth - m.liquidation_pnl[n]
        m.liquidation_pnl[n] = wealth
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
    out.terminated[n] = done
    out.truncated[n] = False
    m.prev_done[n] = done
    if done:
        _take_markouts(s, m, n, True)
        _close_quote_intervals(m, n)
    write_obs(s, m, p, n, out.obs)
