"""LOBSTER replay kernel: apply a message file through the engine and check the visible window.

A level-k LOBSTER file shows only the k best levels of each side, so the replay trusts only that
window: after every message it forgets any level that slid out (it could change unseen) and takes
from the orderbook row any level that slid in from below (it was never announced), as one
aggregate "synthetic" order per level. Everything else, every add, cancel and execution, goes
through the matching kernels, and the window is then compared with the file's row.

Orders that rested before the sample starts are unknown by id; cancels of such orders reduce the
synthetic orders at their price, and executions of them are market orders that hit whatever
is at the front of the queue.
"""

from __future__ import annotations

from fastlob._kernels.book import (
    _away_step,
    _level,
    _remove,
    cancel_order,
    depth_into,
    find_slot,
    limit_order,
    market_order,
)
from fastlob._kernels.book_layout import ASK, AUTO_ID, BID, EMPTY_PRICE, NO_SLOT, OK, TRADE_MAKER_ID
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
#: rows whose visible window differed from the file
CTR_MISMATCHED_ROWS = 0
#: levels that entered the window from below and were taken from the file
CTR_LEVELS_TAKEN = 1
#: levels that left the window and were forgotten
CTR_LEVELS_FORGOTTEN = 2
#: executions of a known order that filled another order first
CTR_EXEC_OTHER_MAKER = 3
#: quantity cancelled from unknown orders that no synthetic order could cover
CTR_UNEXPLAINED_CANCEL_QTY = 4
#: submissions the engine rejected
CTR_REJECTED = 5
#: deletions whose size differed from the order's remaining size
CTR_DELETE_SIZE_DIFFERS = 6
#: fills recorded by executions
CTR_FILLS = 7
#: number of counters
NUM_COUNTERS = 8


@njit
def _load_level(s, side, price, qty, next_synthetic):
    """Rest a synthetic order standing for ``qty`` unknown lots at ``price``; returns next id."""
    direction = 1 if side == BID else -1
    limit_order(s, 0, direction, price, qty, next_synthetic)
    return next_synthetic + 1


@njit
def _load_row(s, row, next_synthetic):
    """Load every level of a LOBSTER row int64 (levels, 4) as synthetic orders."""
    for k in range(row.shape[0]):
        if row[k, 1] > 0:
            next_synthetic = _load_level(s, ASK, row[k, 0], row[k, 1], next_synthetic)
        if row[k, 3] > 0:
            next_synthetic = _load_level(s, BID, row[k, 2], row[k, 3], next_synthetic)
    return next_synthetic


@njit
def _clear_side(s, side):
    while s.best[0, side] != EMPTY_PRICE:
        _remove(s, 0, s.level_head[0, side, _level(s, s.best[0, side])])


@njit
def _reduce_unknown(s, side, price, qty):
    """Cancel ``qty`` lots of orders unknown by id at ``price``: taken from the synthetic orders
    of that level, oldest first. Returns the quantity no synthetic order could cover."""
    slot = s.level_head[0, side, _level(s, price)]
    while qty > 0 and slot != NO_SLOT:
        nxt = s.order_next[0, slot]
        # the price check guards against a ring level that holds another price (far outside)
        if s.order_id[0, slot] >= SYNTHETIC_ID_BASE and s.order_price[0, slot] == price:
            take = min(qty, s.order_qty[0, slot])
            cancel_order(s, 0, s.order_id[0, slot], take)
            qty -= take
        slot = nxt
    return qty


@njit
def _apply_event(s, msg, counters):
    kind = msg[COL_TYPE]
    order_id = msg[COL_ID]
    size = msg[COL_SIZE]
    price = msg[COL_PRICE]
    direction = msg[COL_DIRECTION]
    side = BID if direction == 1 else ASK
    if kind == EVENT_SUBMIT:
        if limit_order(s, 0, direction, price, size, order_id) != OK:
            counters[CTR_REJECTED] += 1
    elif kind == EVENT_CANCEL or kind == EVENT_DELETE:
        slot = find_slot(s, 0, order_id)
        if slot == NO_SLOT:
            counters[CTR_UNEXPLAINED_CANCEL_QTY] += _reduce_unknown(s, side, price, size)
        else:
            if kind == EVENT_DELETE and s.order_qty[0, slot] != size:
                counters[CTR_DELETE_SIZE_DIFFERS] += 1
            cancel_order(s, 0, order_id, size if kind == EVENT_CANCEL else 0)
    elif kind == EVENT_EXECUTE:
        # The resting order was hit by an incoming order of the other direction.
        first = s.trade_count[0]
        market_order(s, 0, -direction, size, AUTO_ID)
        known = order_id < SYNTHETIC_ID_BASE and first < s.trade_count[0]
        for t in range(first, s.trade_count[0]):
            if known and s.trades[0, t, TRADE_MAKER_ID] != order_id:
                counters[CTR_EXEC_OTHER_MAKER] += 1
                break
        counters[CTR_FILLS] += s.trade_count[0] - first
        s.trade_count[0] = 0


@njit
def _sync_side(s, side, row, col, next_synthetic, counters):
    """Trust only the visible window of ``side``: forget levels beyond ``row``'s depth, take the
    levels that entered from below. Returns the next synthetic id."""
    levels = row.shape[0]
    price = s.best[0, side]
    step = _away_step(side)
    seen = 0
    last = EMPTY_PRICE
    while price != EMPTY_PRICE and seen < levels:
        if s.level_qty[0, side, _level(s, price)] > 0:
            seen += 1
            last = price
        if price == s.worst[0, side]:
            break
        price += step
    # forget what slid out of the window (every level worse than the last visible one)
    if seen == levels:
        while s.worst[0, side] != last:
            counters[CTR_LEVELS_FORGOTTEN] += 1
            lvl = _level(s, s.worst[0, side])
            while s.level_qty[0, side, lvl] > 0 and s.worst[0, side] != last:
                _remove(s, 0, s.level_head[0, side, lvl])
    # take what slid in from below: levels the engine could not know, worse than all it has
    for k in range(seen, levels):
        qty = row[k, col + 1]
        if qty <= 0:
            break
        px = row[k, col]
        if last != EMPTY_PRICE and (px - last) * step <= 0:
            break  # not below the known window: a real difference, left for the comparison
        next_synthetic = _load_level(s, side, px, qty, next_synthetic)
        counters[CTR_LEVELS_TAKEN] += 1
        last = px
    return next_synthetic


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
    next_synthetic = _load_row(s, initial_row, SYNTHETIC_ID_BASE)
    for m in range(messages.shape[0]):
        _apply_event(s, messages[m], counters)
        next_synthetic = _sync_side(s, ASK, rows[m], 0, next_synthetic, counters)
        next_synthetic = _sync_side(s, BID, rows[m], 2, next_synthetic, counters)
        depth_into(s, 0, out_rows[m])
        out_matched[m] = _rows_equal(out_rows[m], rows[m])
        if not out_matched[m]:
            # Count the row, then start the next one from the file so rows are judged one by one.
            counters[CTR_MISMATCHED_ROWS] += 1
            _clear_side(s, ASK)
            _clear_side(s, BID)
            next_synthetic = _load_row(s, rows[m], next_synthetic)
