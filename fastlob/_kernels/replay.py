"""LOBSTER replay kernel: apply a message file through the engine and check the visible window.

A level-k LOBSTER file shows only the k best levels of each side, so the replay trusts only that
window: after every message it forgets any level that slid out (it could change unseen) and takes
from the orderbook row any level that slid in from below (it was never announced), as one
aggregate "synthetic" order per level. Everything else, every add, cancel and execution, goes
through the matching kernels, and the window is then compared with the file's row.

Orders that rested before the sample starts are unknown by id; cancels of such orders reduce the
synthetic orders at their price, and an execution fills, for its size, the orders resting at its
price in their queue's order (whatever is at the front of the queue; never an order at a better
price, which the file did not trade).

The same functions, for any book ``n`` and with an order the file does not know (a market
maker's quote, ``own_slot``) in the book, run the historical market (``historical``).
"""

from __future__ import annotations

from fastlob._kernels.book import (
    _away_step,
    _level,
    _record_trade,
    _reduce,
    _reject,
    _remove,
    depth_into,
    find_slot,
    limit_order,
    side_of,
    tracked_limit_order,
)
from fastlob._kernels.book_layout import (
    ASK,
    AUTO_ID,
    BID,
    EMPTY_PRICE,
    NO_SLOT,
    OK,
    REJECT_TRADE_BUFFER_FULL,
    TRADE_MAKER_ID,
    TRADE_QTY,
)
from fastlob._numba import njit

#: ids at and above this are synthetic orders that stand for a level's unknown orders
SYNTHETIC_ID_BASE = 2**61

# LOBSTER event types
#: new limit order
EVENT_SUBMIT = 1
#: partial cancellation
EVENT_CANCEL = 2
#: full deletion
EVENT_DELETE = 3
#: execution of a visible order
EVENT_EXECUTE = 4
#: execution of a hidden order (no visible change)
EVENT_HIDDEN = 5
#: cross trade (no visible change)
EVENT_CROSS = 6
#: trading halt indicator (no visible change)
EVENT_HALT = 7

# Columns of the message array given to the kernel.
#: event type column
COL_TYPE = 0
#: order id column
COL_ID = 1
#: size column
COL_SIZE = 2
#: price column (ticks)
COL_PRICE = 3
#: direction column (+1 buy order, -1 sell order)
COL_DIRECTION = 4

# Indices of the counters the kernel fills.
#: rows whose visible window differed from the file (and rows whose window could not be kept:
#: a level whose total and queue disagree, which the window rule stops at)
CTR_MISMATCHED_ROWS = 0
#: levels that entered the window from below and were taken from the file
CTR_LEVELS_TAKEN = 1
#: levels that left the window and were forgotten
CTR_LEVELS_FORGOTTEN = 2
#: executions of a known order that filled another order first
CTR_EXEC_OTHER_MAKER = 3
#: quantity cancelled from unknown orders that no synthetic order could cover, within the
#: book's window
CTR_UNEXPLAINED_CANCEL_QTY = 4
#: submissions the engine rejected
CTR_REJECTED = 5
#: deletions whose size differed from the order's remaining size
CTR_DELETE_SIZE_DIFFERS = 6
#: fills recorded by executions
CTR_FILLS = 7
#: quantity of executions that found nothing to fill at their price
CTR_EXEC_MISSING_QTY = 8
#: quantity of submissions that traded on arrival (the file's limit orders never do)
CTR_SUBMIT_TRADED_QTY = 9
#: messages applied
CTR_MESSAGES = 10
#: quantity cancelled at prices beyond the book's window (orders the window rule forgot)
CTR_CANCEL_BEYOND_QTY = 11
#: number of counters
NUM_COUNTERS = 12

#: the counters by name, in index order (the names ``replay_lobster`` reports)
COUNTER_NAMES = (
    "mismatched_rows",
    "levels_taken_from_file",
    "levels_forgotten",
    "executions_filling_another_order",
    "unexplained_cancel_qty",
    "rejected_submissions",
    "deletes_with_other_size",
    "fills",
    "execution_missing_qty",
    "submission_traded_qty",
    "messages",
    "cancel_beyond_window_qty",
)


@njit
def _load_level(s, n, side, price, qty, next_synthetic):
    """Rest a synthetic order standing for ``qty`` unknown lots at ``price``; returns next id."""
    direction = 1 if side == BID else -1
    limit_order(s, n, direction, price, qty, next_synthetic)
    return next_synthetic + 1


@njit
def load_row(s, n, row, next_synthetic):
    """Load every level of a LOBSTER row int64 (levels, 4) into book ``n`` as synthetic orders;
    returns the next synthetic id."""
    for k in range(row.shape[0]):
        if row[k, 1] > 0:
            next_synthetic = _load_level(s, n, ASK, row[k, 0], row[k, 1], next_synthetic)
        if row[k, 3] > 0:
            next_synthetic = _load_level(s, n, BID, row[k, 2], row[k, 3], next_synthetic)
    return next_synthetic


@njit
def _clear_side(s, n, side):
    while s.best[n, side] != EMPTY_PRICE:
        _remove(s, n, s.level_head[n, side, _level(s, s.best[n, side])])


@njit
def _reduce_unknown(s, n, side, price, qty):
    """Cancel ``qty`` lots of orders unknown by id at ``price``: taken from the synthetic orders
    of that level, oldest first. Returns the quantity no synthetic order could cover."""
    slot = s.level_head[n, side, _level(s, price)]
    while qty > 0 and slot != NO_SLOT:
        nxt = s.order_next[n, slot]
        # the price check guards against a ring level that holds another price (far outside)
        if s.order_id[n, slot] >= SYNTHETIC_ID_BASE and s.order_price[n, slot] == price:
            take = min(qty, s.order_qty[n, slot])
            if take == s.order_qty[n, slot]:
                _remove(s, n, slot)
            else:
                _reduce(s, n, slot, take)
            qty -= take
        slot = nxt
    return qty


@njit
def _execute_at_price(s, n, side, price, qty):
    """An execution of ``qty`` lots against the orders resting at exactly ``price`` on
    ``side``, in their queue's order: better-priced orders are not touched (the file traded at
    ``price``, not better). Returns the quantity it could not fill (all of it if its fills would
    not fit the trade buffer)."""
    head = s.level_head[n, side, _level(s, price)]
    # the price check guards against a ring level that holds another price (far outside)
    if head == NO_SLOT or s.order_price[n, head] != price:
        return qty
    fills = 0
    remaining = qty
    slot = head
    while remaining > 0 and slot != NO_SLOT:
        remaining -= min(remaining, s.order_qty[n, slot])
        fills += 1
        slot = s.order_next[n, slot]
    if s.trade_count[n] + fills > s.trades.shape[1]:
        _reject(s, n, REJECT_TRADE_BUFFER_FULL)
        return qty
    remaining = qty
    while remaining > 0:
        slot = s.level_head[n, side, _level(s, price)]
        if slot == NO_SLOT:
            break
        maker_qty = s.order_qty[n, slot]
        take = min(remaining, maker_qty)
        _record_trade(s, n, s.order_id[n, slot], AUTO_ID, 1 - side, price, take)
        remaining -= take
        if take == maker_qty:
            _remove(s, n, slot)
        else:
            _reduce(s, n, slot, take)
    return remaining


@njit
def _traded_qty(s, n, first):
    total = 0
    for t in range(first, s.trade_count[n]):
        total += s.trades[n, t, TRADE_QTY]
    return total


@njit(inline="always")
def apply_data_event(s, n, msg, counters):
    """Apply one LOBSTER message (``[type, order_id, size, price_ticks, direction]``) to book
    ``n``, counting into ``counters`` (int64 (NUM_COUNTERS,)). Its fills stay in the book's
    trade buffer for the caller.

    A submission is a limit order with the file's id; a cancellation or deletion finds the order
    by id, or else takes the quantity from the synthetic orders at its price; an execution is
    the aggressor's order: immediate-or-cancel for ``size`` at the execution price, so that the
    queue decides which orders it fills."""
    kind = msg[COL_TYPE]
    order_id = msg[COL_ID]
    size = msg[COL_SIZE]
    price = msg[COL_PRICE]
    direction = msg[COL_DIRECTION]
    side = BID if direction == 1 else ASK
    counters[CTR_MESSAGES] += 1
    first = s.trade_count[n]
    if kind == EVENT_SUBMIT:
        if limit_order(s, n, direction, price, size, order_id) != OK:
            counters[CTR_REJECTED] += 1
        elif s.trade_count[n] > first:
            counters[CTR_SUBMIT_TRADED_QTY] += _traded_qty(s, n, first)
    elif kind == EVENT_CANCEL or kind == EVENT_DELETE:
        slot = find_slot(s, n, order_id)
        if slot == NO_SLOT:
            left = _reduce_unknown(s, n, side, price, size)
            worst = s.worst[n, side]
            if worst == EMPTY_PRICE or (price - worst) * _away_step(side) > 0:
                counters[CTR_CANCEL_BEYOND_QTY] += left
            else:
                counters[CTR_UNEXPLAINED_CANCEL_QTY] += left
        else:
            if kind == EVENT_DELETE and s.order_qty[n, slot] != size:
                counters[CTR_DELETE_SIZE_DIFFERS] += 1
            if kind == EVENT_DELETE or size >= s.order_qty[n, slot]:
                _remove(s, n, slot)
            else:
                _reduce(s, n, slot, size)
    elif kind == EVENT_EXECUTE:
        # the resting order was hit by an incoming order of the other direction, at its price
        counters[CTR_EXEC_MISSING_QTY] += _execute_at_price(s, n, side, price, size)
        known = order_id < SYNTHETIC_ID_BASE
        for t in range(first, s.trade_count[n]):
            if known and s.trades[n, t, TRADE_MAKER_ID] != order_id:
                counters[CTR_EXEC_OTHER_MAKER] += 1
                break
        counters[CTR_FILLS] += s.trade_count[n] - first


@njit(inline="always")
def _data_qty(s, n, side, price, own_slot):
    """Lots of the file's orders at ``price``: the level's total less the order in ``own_slot``
    (an order the file does not know, NO_SLOT for none) when it rests there."""
    qty = s.level_qty[n, side, _level(s, price)]
    if own_slot != NO_SLOT and s.order_price[n, own_slot] == price:
        qty -= s.order_qty[n, own_slot]
    return qty


@njit
def _forget_level(s, n, side, price, own_slot):
    """Remove every order at ``price`` but ``own_slot``'s; returns whether any was removed."""
    slot = s.level_head[n, side, _level(s, price)]
    removed = False
    while slot != NO_SLOT:
        nxt = s.order_next[n, slot]
        if slot != own_slot:
            _remove(s, n, slot)
            removed = True
        slot = nxt
    return removed


@njit
def _forget_beyond(s, n, side, deepest, own_slot, counters):
    """Forget every level of the file's orders worse than ``deepest`` (the order in
    ``own_slot`` stays where it is)."""
    step = _away_step(side)
    while s.worst[n, side] != EMPTY_PRICE and (s.worst[n, side] - deepest) * step > 0:
        worst = s.worst[n, side]
        if (
            own_slot != NO_SLOT
            and s.level_head[n, side, _level(s, worst)] == own_slot
            and (s.order_next[n, own_slot] == NO_SLOT)
        ):
            # only the own order at the worst price: forget the levels between it and deepest
            price = worst - step
            while (price - deepest) * step > 0:
                if s.level_qty[n, side, _level(s, price)] > 0:
                    counters[CTR_LEVELS_FORGOTTEN] += 1
                    _forget_level(s, n, side, price, own_slot)
                price -= step
            return
        counters[CTR_LEVELS_FORGOTTEN] += 1
        if not _forget_level(s, n, side, worst, own_slot):
            # the worst level holds no order to remove (its total and its queue disagree): the
            # worst price would never move; count the row as one the window could not match
            counters[CTR_MISMATCHED_ROWS] += 1
            return


@njit
def _worst_file_price(s, n, side, own_slot):
    """The worst price of ``side`` holding the file's orders (not only ``own_slot``'s), or
    EMPTY_PRICE."""
    price = s.worst[n, side]
    if price == EMPTY_PRICE or _data_qty(s, n, side, price, own_slot) > 0:
        return price
    best = s.best[n, side]
    step = _away_step(side)
    while (price - best) * step > 0:
        price -= step
        if _data_qty(s, n, side, price, own_slot) > 0:
            return price
    return EMPTY_PRICE


@njit
def _requeue_behind(s, n, own_slot):
    """Put the order in ``own_slot`` back at the end of its level's queue; returns its slot."""
    side = side_of(s, n, own_slot)
    price = s.order_price[n, own_slot]
    qty = s.order_qty[n, own_slot]
    order_id = s.order_id[n, own_slot]
    _remove(s, n, own_slot)
    direction = 1 if side == BID else -1
    if order_id < s.index_limit[n]:
        limit_order(s, n, direction, price, qty, order_id)
    else:
        tracked_limit_order(s, n, direction, price, qty, order_id)
    return s.live_slot[n, s.side_orders[n, BID] + s.side_orders[n, ASK] - 1]


@njit
def sync_side(s, n, side, row, col, next_synthetic, counters, own_slot):
    """Trust only the visible window of ``side`` of book ``n``: when ``row`` shows all its
    levels, forget the file's orders at prices worse than its deepest; take the row's levels
    worse than every price holding the file's orders (they entered the window from below). The
    order in ``own_slot`` (one the file does not know, or NO_SLOT) is neither counted nor
    forgotten, and a level taken at its price is queued ahead of it. Returns (the next synthetic
    id, own_slot's slot)."""
    levels = row.shape[0]
    shown = 0
    while shown < levels and row[shown, col + 1] > 0:
        shown += 1
    if shown == levels:
        _forget_beyond(s, n, side, row[levels - 1, col], own_slot, counters)
    last = _worst_file_price(s, n, side, own_slot)
    step = _away_step(side)
    for k in range(shown):
        px = row[k, col]
        if last != EMPTY_PRICE and (px - last) * step <= 0:
            continue  # within the known window: a real difference, left for the comparison
        next_synthetic = _load_level(s, n, side, px, row[k, col + 1], next_synthetic)
        if own_slot != NO_SLOT and s.order_price[n, own_slot] == px:
            own_slot = _requeue_behind(s, n, own_slot)  # the file's orders were there first
        counters[CTR_LEVELS_TAKEN] += 1
        last = px
    return next_synthetic, own_slot


@njit
def replay_message(s, msg, row, next_synthetic, counters, scratch_row):
    """One message of the replay on book 0: apply it, keep the window, compare with ``row``
    (after a mismatch, counted, the book restarts from ``row``). The window is left in
    ``scratch_row``; returns (the next synthetic id, whether the window matched)."""
    apply_data_event(s, 0, msg, counters)
    s.trade_count[0] = 0
    next_synthetic, _ = sync_side(s, 0, ASK, row, 0, next_synthetic, counters, NO_SLOT)
    next_synthetic, _ = sync_side(s, 0, BID, row, 2, next_synthetic, counters, NO_SLOT)
    depth_into(s, 0, scratch_row)
    matched = _rows_equal(scratch_row, row)
    if not matched:
        # count the row, then start the next one from the file so rows are judged one by one
        counters[CTR_MISMATCHED_ROWS] += 1
        _clear_side(s, 0, ASK)
        _clear_side(s, 0, BID)
        next_synthetic = load_row(s, 0, row, next_synthetic)
    return next_synthetic, matched


@njit
def _rows_equal(a, b):
    for k in range(a.shape[0]):
        for col in (0, 2):
            if a[k, col + 1] != b[k, col + 1]:
                return False
            if a[k, col + 1] > 0 and a[k, col] != b[k, col]:
                return False
    return True


@njit
def replay_lobster_kernel(s, initial_row, messages, rows, out_rows, out_matched, counters):
    """Replay LOBSTER messages through book 0 of ``s`` and compare with the file after each one.

    Parameters
    ----------
    s : BookState
        A batch of one empty book; mutated in place.
    initial_row : ndarray[int64], shape (levels, 4)
        The visible book before the first message, LOBSTER layout, prices in ticks.
    messages : ndarray[int64], shape (M, 5)
        ``[type, order_id, size, price_ticks, direction]`` per message.
    rows : ndarray[int64], shape (M, levels, 4)
        The file's orderbook rows (prices in ticks; a level with size 0 is empty).
    out_rows : ndarray[int64], shape (M, levels, 4)
        Written with the engine's visible window after each message.
    out_matched : ndarray[bool], shape (M,)
        Written with whether that window equals the file's row.
    counters : ndarray[int64], shape (NUM_COUNTERS,)
        Incremented (see ``CTR_*``).
    """
    next_synthetic = load_row(s, 0, initial_row, SYNTHETIC_ID_BASE)
    for m in range(messages.shape[0]):
        next_synthetic, out_matched[m] = replay_message(
            s, messages[m], rows[m], next_synthetic, counters, out_rows[m]
        )
