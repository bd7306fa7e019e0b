"""Matching kernels: add, cancel, modify and match on one book row ``n`` of a :class:`BookState`.

Every public kernel takes the state first, then the book index ``n``, then its inputs; it mutates
the state in place and returns a status code (``book_layout.OK`` or a rejection). A rejected
operation changes nothing but ``status_count``: every check runs before the first write.

Matching is continuous, price-time priority: an incoming order trades against the best opposite
level first, and within a level against the oldest order first, each fill at the resting order's
price. See ``book_layout`` for the data layout.

Compilation choices (the docs' architecture page gives the measurements):
- every call that passes the state tuple copies its 23 arrays' descriptors, so the per-message
  path must not make real calls: the dispatcher, the four operations and the sweep are inlined at
  Numba-IR level (``inline="always"``); LLVM inlines the smaller helpers by itself (inlining
  everything at IR level bought no speed for a much longer compilation).
- the batched driver hands each book's whole message loop to ``apply_book_messages``, a plain
  kernel, instead of looping inside the ``prange`` body (see ``apply_messages``).
"""

from __future__ import annotations

from fastlob._kernels.book_layout import (
    ASK,
    AUTO_ID,
    BID,
    EMPTY_KEY,
    EMPTY_PRICE,
    MAX_ORDER_ID,
    MAX_ORDER_QTY,
    MAX_PRICE,
    MSG_CANCEL,
    MSG_ID,
    MSG_KIND,
    MSG_LIMIT,
    MSG_MARKET,
    MSG_MODIFY,
    MSG_NOOP,
    MSG_PRICE,
    MSG_QTY,
    MSG_SIDE,
    NO_SLOT,
    OK,
    REJECT_DUPLICATE_ID,
    REJECT_INVALID,
    REJECT_OUTSIDE_LADDER,
    REJECT_POOL_FULL,
    REJECT_TRADE_BUFFER_FULL,
    TRADE_MAKER_ID,
    TRADE_PRICE,
    TRADE_QTY,
    TRADE_TAKER_ID,
    TRADE_TAKER_SIDE,
    UNKNOWN_ORDER,
)
from fastlob._numba import njit, prange

# ---------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------


@njit
def side_index(direction):
    """Side index (BID 0, ASK 1) of a LOBSTER direction (+1 buy, -1 sell)."""
    return (1 - direction) >> 1


@njit
def _is_better(side, price_a, price_b):
    """True if ``price_a`` is strictly more aggressive than ``price_b`` on ``side``."""
    if side == BID:
        return price_a > price_b
    return price_a < price_b


@njit
def _crosses(taker_side, limit_price, resting_price):
    """True if an order on ``taker_side`` with ``limit_price`` trades at ``resting_price``."""
    if taker_side == BID:
        return limit_price >= resting_price
    return limit_price <= resting_price


@njit
def _away_step(side):
    """Tick step from the best price towards worse prices on ``side``."""
    if side == BID:
        return -1
    return 1


@njit
def _level(s, price):
    """Ladder index of ``price`` (ring of L levels, L a power of two)."""
    return price & (s.level_qty.shape[2] - 1)


@njit
def _reject(s, n, status):
    s.status_count[n, status] += 1
    return status


# ---------------------------------------------------------------------------------------------
# id -> slot hash table (linear probing, backward-shift deletion)
# ---------------------------------------------------------------------------------------------


@njit
def _home_bucket(order_id, mask):
    # xor-folding keeps every bit of the id in play without multiplication, so the same
    # arithmetic holds in plain Python (NUMBA_DISABLE_JIT=1) with no overflow.
    h = order_id ^ (order_id >> 17) ^ (order_id >> 31) ^ (order_id >> 47)
    return (h ^ (h >> 9)) & mask


@njit
def _probe(s, n, order_id):
    """Bucket holding ``order_id``, or the empty bucket where it would be inserted."""
    mask = s.id_keys.shape[1] - 1
    i = _home_bucket(order_id, mask)
    while True:
        key = s.id_keys[n, i]
        if key == order_id or key == EMPTY_KEY:
            return i
        i = (i + 1) & mask


@njit
def find_slot(s, n, order_id):
    """Pool slot of resting order ``order_id`` in book ``n``, or NO_SLOT.

    Parameters
    ----------
    s : BookState
    n : int
        Book index.
    order_id : int64
        Order id (non-negative).

    Returns
    -------
    int
        Slot index in ``0..K-1`` or ``NO_SLOT`` (-1).
    """
    if order_id >= s.index_limit[n]:
        return _scan_for(s, n, order_id)
    # an empty bucket stores NO_SLOT, so the probe's answer needs no second test
    return s.id_slots[n, _probe(s, n, order_id)]


@njit
def _scan_for(s, n, order_id):
    """Slot of resting ``order_id`` by a pass over the resting orders (ids the table does not
    hold: at or above ``index_limit``), or NO_SLOT."""
    for position in range(s.side_orders[n, BID] + s.side_orders[n, ASK]):
        slot = s.live_slot[n, position]
        if s.order_id[n, slot] == order_id:
            return slot
    return NO_SLOT


@njit
def _free_bucket(s, n, order_id):
    """The empty id-table bucket where ``order_id`` goes, or 0 (unused) if the table does not
    hold it (at or above ``index_limit``)."""
    if order_id >= s.index_limit[n]:
        return 0
    return _probe(s, n, order_id)


@njit
def _hash_insert(s, n, order_id, slot, bucket):
    """Store ``order_id -> slot`` in ``bucket``, the empty bucket ``_probe`` returned."""
    s.id_keys[n, bucket] = order_id
    s.id_slots[n, bucket] = slot


@njit
def _hash_delete(s, n, order_id):
    mask = s.id_keys.shape[1] - 1
    i = _home_bucket(order_id, mask)
    while s.id_keys[n, i] != order_id:
        i = (i + 1) & mask
    # Backward-shift: pull later entries of the probe run into the hole unless their home lies
    # cyclically in (hole, j], so that every remaining key stays reachable without tombstones.
    j = i
    while True:
        j = (j + 1) & mask
        key = s.id_keys[n, j]
        if key == EMPTY_KEY:
            break
        home = _home_bucket(key, mask)
        if i <= j:
            stays = i < home <= j
        else:
            stays = home > i or home <= j
        if not stays:
            s.id_keys[n, i] = key
            s.id_slots[n, i] = s.id_slots[n, j]
            i = j
    s.id_keys[n, i] = EMPTY_KEY
    s.id_slots[n, i] = NO_SLOT


# ---------------------------------------------------------------------------------------------
# resting orders: link into a level, unlink, keep best/worst
# ---------------------------------------------------------------------------------------------


@njit
def _next_level(s, n, side, price, stop, step):
    """First price from ``price + step`` to ``stop`` (inclusive) with a resting order, or
    EMPTY_PRICE."""
    p = price
    while p != stop:
        p += step
        if s.level_qty[n, side, _level(s, p)] > 0:
            return p
    return EMPTY_PRICE


@njit
def _on_level_emptied(s, n, side, price):
    """Restore ``best``/``worst`` of ``side`` after the level at ``price`` became empty."""
    best = s.best[n, side]
    worst = s.worst[n, side]
    if best == worst:
        s.best[n, side] = EMPTY_PRICE
        s.worst[n, side] = EMPTY_PRICE
    elif price == best:
        s.best[n, side] = _next_level(s, n, side, price, worst, _away_step(side))
    elif price == worst:
        s.worst[n, side] = _next_level(s, n, side, price, best, -_away_step(side))


@njit(inline="always")
def side_of(s, n, slot):
    """Side index of the resting order in ``slot``. Not stored: the book is never crossed, so
    every resting bid is at or below the best bid and every resting ask above it."""
    best_bid = s.best[n, BID]
    return BID if best_bid != EMPTY_PRICE and s.order_price[n, slot] <= best_bid else ASK


@njit
def _rest(s, n, side, price, qty, order_id, bucket):
    """Put a new order at the back of its level's queue (capacity already checked); ``bucket``
    is the empty id-table bucket that ``_probe`` found for ``order_id``."""
    slot = s.free_head[n]
    s.free_head[n] = s.order_next[n, slot]
    s.order_id[n, slot] = order_id
    s.order_qty[n, slot] = qty
    s.order_price[n, slot] = price
    lvl = _level(s, price)
    tail = s.level_tail[n, side, lvl]
    s.order_prev[n, slot] = tail
    s.order_next[n, slot] = NO_SLOT
    if tail == NO_SLOT:
        s.level_head[n, side, lvl] = slot
    else:
        s.order_next[n, tail] = slot
    s.level_tail[n, side, lvl] = slot
    s.level_qty[n, side, lvl] += qty
    if order_id < s.index_limit[n]:
        _hash_insert(s, n, order_id, slot, bucket)
    total = s.side_orders[n, BID] + s.side_orders[n, ASK]
    s.live_slot[n, total] = slot
    s.live_pos[n, slot] = total
    s.side_orders[n, side] += 1
    best = s.best[n, side]
    if best == EMPTY_PRICE:
        s.best[n, side] = price
        s.worst[n, side] = price
    elif _is_better(side, price, best):
        s.best[n, side] = price
    elif _is_better(side, s.worst[n, side], price):
        s.worst[n, side] = price


@njit
def _remove(s, n, slot):
    """Take the order in ``slot`` out of the book and free the slot."""
    side = side_of(s, n, slot)
    price = s.order_price[n, slot]
    lvl = _level(s, price)
    prev = s.order_prev[n, slot]
    nxt = s.order_next[n, slot]
    if prev == NO_SLOT:
        s.level_head[n, side, lvl] = nxt
    else:
        s.order_next[n, prev] = nxt
    if nxt == NO_SLOT:
        s.level_tail[n, side, lvl] = prev
    else:
        s.order_prev[n, nxt] = prev
    s.level_qty[n, side, lvl] -= s.order_qty[n, slot]
    if s.order_id[n, slot] < s.index_limit[n]:
        _hash_delete(s, n, s.order_id[n, slot])
    s.order_id[n, slot] = EMPTY_KEY
    s.order_qty[n, slot] = 0
    s.order_prev[n, slot] = NO_SLOT
    s.order_next[n, slot] = s.free_head[n]
    s.free_head[n] = slot
    # swap-with-last removal from the dense list of resting orders
    last = s.live_slot[n, s.side_orders[n, BID] + s.side_orders[n, ASK] - 1]
    position = s.live_pos[n, slot]
    s.live_slot[n, position] = last
    s.live_pos[n, last] = position
    s.side_orders[n, side] -= 1
    if s.level_qty[n, side, lvl] == 0:  # every resting order holds at least one lot
        _on_level_emptied(s, n, side, price)


@njit
def _reduce(s, n, slot, qty):
    """Take ``qty`` (less than the remaining quantity) off the order in ``slot``; keeps priority."""
    s.order_qty[n, slot] -= qty
    s.level_qty[n, side_of(s, n, slot), _level(s, s.order_price[n, slot])] -= qty


# ---------------------------------------------------------------------------------------------
# matching
# ---------------------------------------------------------------------------------------------


@njit
def _plan_sweep(s, n, taker_side, limit_price, qty):
    """What a sweep would do, without doing it.

    Returns
    -------
    remainder : int64
        Quantity left unfilled after the sweep.
    fills : int64
        Number of fill records the sweep would write.
    """
    opp = 1 - taker_side
    remaining = qty
    fills = 0
    price = s.best[n, opp]
    if price == EMPTY_PRICE:
        return remaining, fills
    worst = s.worst[n, opp]
    step = _away_step(opp)
    while remaining > 0 and _crosses(taker_side, limit_price, price):
        lvl = _level(s, price)
        if s.level_qty[n, opp, lvl] > 0:
            # one fill per order taken: walk the queue (the sweep reads the same orders next)
            slot = s.level_head[n, opp, lvl]
            while remaining > 0 and slot != NO_SLOT:
                remaining -= min(remaining, s.order_qty[n, slot])
                fills += 1
                slot = s.order_next[n, slot]
        if price == worst:
            break
        price += step
    return remaining, fills


@njit
def _record_trade(s, n, maker_id, taker_id, taker_side, price, qty):
    t = s.trade_count[n]
    s.trades[n, t, TRADE_MAKER_ID] = maker_id
    s.trades[n, t, TRADE_TAKER_ID] = taker_id
    s.trades[n, t, TRADE_TAKER_SIDE] = 1 - 2 * taker_side
    s.trades[n, t, TRADE_PRICE] = price
    s.trades[n, t, TRADE_QTY] = qty
    s.trade_count[n] = t + 1


@njit(inline="always")
def _sweep(s, n, taker_side, limit_price, qty, taker_id):
    """Match an incoming order against the opposite side; returns the unfilled quantity."""
    opp = 1 - taker_side
    remaining = qty
    while remaining > 0:
        price = s.best[n, opp]
        if price == EMPTY_PRICE or not _crosses(taker_side, limit_price, price):
            break
        slot = s.level_head[n, opp, _level(s, price)]
        maker_qty = s.order_qty[n, slot]
        take = min(remaining, maker_qty)
        _record_trade(s, n, s.order_id[n, slot], taker_id, taker_side, price, take)
        remaining -= take
        if take == maker_qty:
            _remove(s, n, slot)
        else:
            _reduce(s, n, slot, take)
    return remaining


@njit
def _fits_ladder(s, n, side, price, same_best, same_worst):
    """Could an order rest at ``price`` on ``side`` once it has swept everything it crosses?

    ``same_best``/``same_worst`` describe the resting range of ``side`` (EMPTY_PRICE if none);
    the opposite side keeps only what ``price`` does not cross.
    """
    low = price
    high = price
    if same_best != EMPTY_PRICE:
        low = min(low, same_best, same_worst)
        high = max(high, same_best, same_worst)
    opp = 1 - side
    opp_worst = s.worst[n, opp]
    if opp_worst != EMPTY_PRICE and not _crosses(side, price, opp_worst):
        low = min(low, opp_worst)
        high = max(high, opp_worst)
    return high - low < s.level_qty.shape[2]


@njit
def _check_order(s, n, side, price, qty, same_best, same_worst, needs_slot):
    """Every pre-trade check of a limit order; OK or the rejection status (not yet counted)."""
    remainder, fills = _plan_sweep(s, n, side, price, qty)
    if s.trade_count[n] + fills > s.trades.shape[1]:
        return REJECT_TRADE_BUFFER_FULL
    if remainder > 0:
        resting = s.side_orders[n, BID] + s.side_orders[n, ASK]
        if needs_slot and resting >= s.order_qty.shape[1]:
            return REJECT_POOL_FULL
        if not _fits_ladder(s, n, side, price, same_best, same_worst):
            return REJECT_OUTSIDE_LADDER
    return OK


@njit
def _next_free_id(s, n):
    # From index_limit up no id needs looking up: those ids are only ever assigned, in
    # increasing order (an explicit one is rejected), so all that rest are below next_auto_id.
    order_id = s.next_auto_id[n]
    while order_id < s.index_limit[n] and find_slot(s, n, order_id) != NO_SLOT:
        order_id += 1
    return order_id


# ---------------------------------------------------------------------------------------------
# public operations on one book
# ---------------------------------------------------------------------------------------------


@njit
def _bad_qty(qty):
    """Is an order's quantity outside 1..MAX_ORDER_QTY (the bound that keeps totals in int64)?"""
    return qty < 1 or qty > MAX_ORDER_QTY


@njit
def _malformed(direction, price, qty):
    """Is a limit order's direction, price (1..MAX_PRICE) or quantity out of range?"""
    return (direction != 1 and direction != -1) or _bad_qty(qty) or price < 1 or price > MAX_PRICE


@njit(inline="always")
def limit_order(s, n, direction, price, qty, order_id):
    """Submit a limit order to book ``n``; it trades what it crosses and rests the remainder.

    Parameters
    ----------
    s : BookState
        Mutated in place.
    n : int
        Book index.
    direction : int
        +1 buy, -1 sell.
    price : int64
        Limit price in ticks, 1..MAX_PRICE.
    qty : int64
        Lots, 1..MAX_ORDER_QTY.
    order_id : int64
        Non-negative id not resting in this book, or AUTO_ID to assign the lowest free id at or
        above ``next_auto_id`` (REJECT_INVALID once none is left up to MAX_ORDER_ID). The id
        used is stored in ``last_order_id[n]``.

    Returns
    -------
    int
        OK, or REJECT_DUPLICATE_ID / REJECT_TRADE_BUFFER_FULL / REJECT_POOL_FULL /
        REJECT_OUTSIDE_LADDER / REJECT_INVALID, in which case nothing but ``status_count`` changed.
    """
    if _malformed(direction, price, qty):
        return _reject(s, n, REJECT_INVALID)
    if order_id < AUTO_ID or order_id > MAX_ORDER_ID:
        return _reject(s, n, REJECT_INVALID)
    side = side_index(direction)
    if order_id == AUTO_ID:
        order_id = _next_free_id(s, n)
        if order_id > MAX_ORDER_ID:
            return _reject(s, n, REJECT_INVALID)  # every id up to MAX_ORDER_ID is taken
    elif order_id >= s.index_limit[n]:
        return _reject(s, n, REJECT_INVALID)  # reserved for assigned ids
    bucket = _free_bucket(s, n, order_id)
    if order_id < s.index_limit[n] and s.id_keys[n, bucket] != EMPTY_KEY:
        return _reject(s, n, REJECT_DUPLICATE_ID)
    return _submit(s, n, side, price, qty, order_id, bucket)


@njit(inline="always")
def _submit(s, n, side, price, qty, order_id, bucket):
    """The pre-trade checks, the sweep and the rest of a limit order whose id is settled."""
    status = _check_order(s, n, side, price, qty, s.best[n, side], s.worst[n, side], True)
    if status != OK:
        return _reject(s, n, status)
    if order_id >= s.next_auto_id[n]:
        s.next_auto_id[n] = order_id + 1
    s.last_order_id[n] = order_id
    remaining = _sweep(s, n, side, price, qty, order_id)
    if remaining > 0:
        # the sweep may have deleted ids (backward shift moves entries): probe again
        if remaining < qty:
            bucket = _free_bucket(s, n, order_id)
        _rest(s, n, side, price, remaining, order_id, bucket)
    return OK


@njit(inline="always")
def tracked_limit_order(s, n, direction, price, qty, order_id):
    """A limit order from an owner that tracks its orders by slot and keeps their ids unique:
    the id is never looked up, so it stays out of the id table (book ``n``'s ``index_limit``
    must not exceed ``order_id``). Otherwise as :func:`limit_order` with an explicit id; when
    it rests (part of it), it is the last entry of the book's list of resting orders.

    Parameters
    ----------
    s, n, direction, price, qty
        As :func:`limit_order`.
    order_id : int64
        An id from ``index_limit[n]`` to MAX_ORDER_ID that no resting order of book ``n`` has
        (not checked: the caller keeps it unique).

    Returns
    -------
    int
        OK, or REJECT_TRADE_BUFFER_FULL / REJECT_POOL_FULL / REJECT_OUTSIDE_LADDER /
        REJECT_INVALID, in which case nothing but ``status_count`` changed.
    """
    if _malformed(direction, price, qty):
        return _reject(s, n, REJECT_INVALID)
    if order_id < 0 or order_id > MAX_ORDER_ID or order_id < s.index_limit[n]:
        return _reject(s, n, REJECT_INVALID)
    return _submit(s, n, side_index(direction), price, qty, order_id, 0)


@njit(inline="always")
def market_order(s, n, direction, qty, taker_id):
    """Submit a market order (immediate-or-cancel): it sweeps the opposite side and never rests.

    Parameters
    ----------
    s : BookState
        Mutated in place.
    n : int
        Book index.
    direction : int
        +1 buy, -1 sell.
    qty : int64
        Lots, 1..MAX_ORDER_QTY. What the opposite side cannot fill is dropped (the fills say how
        much).
    taker_id : int64
        Id written as the taker of each fill (AUTO_ID for anonymous).

    Returns
    -------
    int
        OK, REJECT_TRADE_BUFFER_FULL or REJECT_INVALID.
    """
    if (direction != 1 and direction != -1) or _bad_qty(qty):
        return _reject(s, n, REJECT_INVALID)
    side = side_index(direction)
    limit_price = MAX_PRICE if side == BID else 0
    _, fills = _plan_sweep(s, n, side, limit_price, qty)
    if s.trade_count[n] + fills > s.trades.shape[1]:
        return _reject(s, n, REJECT_TRADE_BUFFER_FULL)
    _sweep(s, n, side, limit_price, qty, taker_id)
    return OK


@njit(inline="always")
def cancel_order(s, n, order_id, qty):
    """Cancel ``qty`` lots of a resting order (all of it if ``qty <= 0`` or ``qty >=`` remaining).

    A partial cancel keeps the order's queue priority.

    Returns
    -------
    int
        OK, or UNKNOWN_ORDER if ``order_id`` is not resting (a normal race; nothing changes).
    """
    slot = NO_SLOT if order_id < 0 else find_slot(s, n, order_id)
    if slot == NO_SLOT:
        return _reject(s, n, UNKNOWN_ORDER)
    if qty <= 0 or qty >= s.order_qty[n, slot]:
        _remove(s, n, slot)
    else:
        _reduce(s, n, slot, qty)
    return OK


@njit
def _side_range_without(s, n, side, slot):
    """(best, worst) of ``side`` if the order in ``slot`` were not there."""
    best = s.best[n, side]
    worst = s.worst[n, side]
    price = s.order_price[n, slot]
    if s.level_qty[n, side, _level(s, price)] > s.order_qty[n, slot]:  # others rest there too
        return best, worst
    if best == worst:
        return EMPTY_PRICE, EMPTY_PRICE
    if price == best:
        return _next_level(s, n, side, price, worst, _away_step(side)), worst
    if price == worst:
        return best, _next_level(s, n, side, price, best, -_away_step(side))
    return best, worst


@njit(inline="always")
def modify_order(s, n, order_id, new_price, new_qty):
    """Change the price and/or quantity of a resting order, keeping its id.

    A size decrease at the same price keeps queue priority. A price change or a size increase
    loses it: the order leaves its queue and re-enters as a new limit order (trading first if the
    new price crosses, then resting at the back of its new level).

    Parameters
    ----------
    new_price : int64
        New limit price in ticks, or <= 0 to keep the current one.
    new_qty : int64
        New remaining quantity in lots (at most MAX_ORDER_QTY), or <= 0 to keep the current one.

    Returns
    -------
    int
        OK, UNKNOWN_ORDER, REJECT_TRADE_BUFFER_FULL, REJECT_OUTSIDE_LADDER or REJECT_INVALID; on
        anything but OK the order is exactly as it was.
    """
    slot = NO_SLOT if order_id < 0 else find_slot(s, n, order_id)
    if slot == NO_SLOT:
        return _reject(s, n, UNKNOWN_ORDER)
    old_price = s.order_price[n, slot]
    old_qty = s.order_qty[n, slot]
    price = old_price if new_price <= 0 else new_price
    qty = old_qty if new_qty <= 0 else new_qty
    if price > MAX_PRICE or qty > MAX_ORDER_QTY:
        return _reject(s, n, REJECT_INVALID)
    if price == old_price and qty <= old_qty:
        if qty < old_qty:
            _reduce(s, n, slot, old_qty - qty)
        return OK
    side = side_of(s, n, slot)
    same_best, same_worst = _side_range_without(s, n, side, slot)
    status = _check_order(s, n, side, price, qty, same_best, same_worst, False)
    if status != OK:
        return _reject(s, n, status)
    _remove(s, n, slot)
    remaining = _sweep(s, n, side, price, qty, order_id)
    if remaining > 0:
        _rest(s, n, side, price, remaining, order_id, _free_bucket(s, n, order_id))
    return OK


@njit(inline="always")
def apply_message(s, n, kind, direction, price, qty, order_id):
    """Apply one message row (see ``MSG_*`` in ``book_layout``) to book ``n``; returns status."""
    if kind == MSG_LIMIT:
        return limit_order(s, n, direction, price, qty, order_id)
    if kind == MSG_MARKET:
        return market_order(s, n, direction, qty, order_id)
    if kind == MSG_CANCEL:
        return cancel_order(s, n, order_id, qty)
    if kind == MSG_MODIFY:
        return modify_order(s, n, order_id, price, qty)
    if kind == MSG_NOOP:
        return OK
    return _reject(s, n, REJECT_INVALID)


@njit
def apply_book_messages(s, n, messages, count, out_status):
    """Apply the first ``count`` message rows ``messages`` (int64 (M, 5)) to book ``n`` in order,
    writing each status into ``out_status`` (int8 (M,))."""
    for m in range(count):
        out_status[m] = apply_message(
            s,
            n,
            messages[m, MSG_KIND],
            messages[m, MSG_SIDE],
            messages[m, MSG_PRICE],
            messages[m, MSG_QTY],
            messages[m, MSG_ID],
        )


@njit(parallel=True)
def apply_messages(s, messages, message_count, out_status):
    """Apply a batch of messages to N books, one book per thread.

    Parameters
    ----------
    s : BookState
        N books, mutated in place.
    messages : ndarray[int64], shape (N, M, 5)
        Message rows ``[kind, side, price, qty, order_id]`` for each book, applied in order.
    message_count : ndarray[int64], shape (N,)
        Rows of ``messages[n]`` to apply (at most M).
    out_status : ndarray[int8], shape (N, M)
        Written with each applied message's status code.
    """
    # Each book's loop runs in its own (non-parallel) kernel: there the state's arrays are plain
    # arguments, whereas inside the parallel loop body they live in memory that every store might
    # alias, and LLVM reloads their pointers and strides after each write.
    for n in prange(messages.shape[0]):
        apply_book_messages(s, n, messages[n], message_count[n], out_status[n])


@njit
def clear_book(s, n):
    """Empty book ``n`` (every level, the pool, the id table and the trade buffer), as
    ``allocate_book_state`` leaves it; ``status_count`` keeps counting. Mutates in place."""
    s.level_qty[n, :, :] = 0
    s.level_head[n, :, :] = NO_SLOT
    s.level_tail[n, :, :] = NO_SLOT
    s.best[n, :] = EMPTY_PRICE
    s.worst[n, :] = EMPTY_PRICE
    capacity = s.order_id.shape[1]
    for slot in range(capacity):
        s.order_id[n, slot] = EMPTY_KEY
        s.order_qty[n, slot] = 0
        s.order_price[n, slot] = 0
        s.order_next[n, slot] = slot + 1
        s.order_prev[n, slot] = NO_SLOT
    s.order_next[n, capacity - 1] = NO_SLOT
    s.free_head[n] = 0
    s.side_orders[n, :] = 0
    s.live_slot[n, :] = 0
    s.live_pos[n, :] = 0
    s.id_keys[n, :] = EMPTY_KEY
    s.id_slots[n, :] = NO_SLOT
    s.next_auto_id[n] = 0
    s.last_order_id[n] = AUTO_ID
    s.trade_count[n] = 0


# ---------------------------------------------------------------------------------------------
# queries
# ---------------------------------------------------------------------------------------------


@njit
def depth_into(s, n, out):
    """Write the top ``out.shape[0]`` levels of book ``n`` in LOBSTER layout.

    Parameters
    ----------
    out : ndarray[int64], shape (levels, 4)
        Row k becomes ``[ask_px, ask_qty, bid_px, bid_qty]`` of the k-th best ask and bid level;
        a missing level is written as price 0, quantity 0.
    """
    out[:] = 0
    for side in (ASK, BID):
        col = 0 if side == ASK else 2
        price = s.best[n, side]
        worst = s.worst[n, side]
        step = _away_step(side)
        k = 0
        while price != EMPTY_PRICE and k < out.shape[0]:
            lvl = _level(s, price)
            if s.level_qty[n, side, lvl] > 0:
                out[k, col] = price
                out[k, col + 1] = s.level_qty[n, side, lvl]
                k += 1
            if price == worst:
                break
            price += step


@njit(parallel=True)
def depth_batch(s, out):
    """Top levels of every book: ``out`` int64 (N, levels, 4), as :func:`depth_into`."""
    for n in prange(out.shape[0]):
        depth_into(s, n, out[n])


@njit
def queue_ahead(s, n, order_id):
    """Quantity resting ahead of ``order_id`` in its level's queue, or -1 if it is not resting."""
    slot = NO_SLOT if order_id < 0 else find_slot(s, n, order_id)
    if slot == NO_SLOT:
        return -1
    return queue_ahead_of_slot(s, n, slot)


@njit
def queue_ahead_of_slot(s, n, slot):
    """Quantity resting ahead of the order in ``slot`` (a resting order) in its level's queue."""
    ahead = 0
    prev = s.order_prev[n, slot]
    while prev != NO_SLOT:
        ahead += s.order_qty[n, prev]
        prev = s.order_prev[n, prev]
    return ahead
