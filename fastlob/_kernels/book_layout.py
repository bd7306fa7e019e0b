"""Data layout of N independent limit order books (struct of arrays, leading book axis).

Every array has the book index ``n`` first, so that the batched driver can give each book to one
thread with no cross-book writes. Prices are integer ticks (``int64``, 1..``MAX_PRICE``),
quantities integer lots (``int64``, an order's 1..``MAX_ORDER_QTY``, so that no total overflows).
Side index 0 is the bid side, 1 the ask side.

The price ladder
----------------
Each side is a dense ladder of ``L`` levels (``L`` a power of two) used as a ring: the level of
price ``p`` is ``p & (L - 1)``. The region of interest is therefore implicit and re-centres by
itself as the price walks: the only rule is that every resting price of the book, both sides
together, lies within a span of fewer than ``L`` ticks. An order whose remainder would break that
rule is rejected (``REJECT_OUTSIDE_LADDER``) and counted; nothing is ever wrapped onto another
price or overwritten.

Each level keeps its total quantity and the head and tail of an exact FIFO queue of orders (a
doubly linked list through the order pool), so queue position is a fact. A level holds orders
exactly when its quantity is positive (every resting order holds at least one lot), so no order
count is kept: one array fewer to touch on every insert and removal. Level quantities are
``int64``, or ``int32`` for an owner that bounds them (``allocate_book_state``): the
market-making simulator's books, whose step then touches half the lines of them.

The order pool
--------------
``K`` order slots per book. Free slots form a singly linked free list through ``order_next``.
An order's side is not stored: the book is never crossed, so a resting order is a bid exactly
when its price is at or below the best bid (``book.side_of``), one array fewer to touch per
order.
An owner whose books outgrow the caches can ask for order records (``allocate_book_state(...,
order_records=True)``, the market-making simulator does): the fields an operation on one order
reads and writes together (id, quantity, price, queue links) are then interleaved, one 32-byte
record per slot (``ORDER_RECORD_FIELDS``), ``order_id``, ``order_qty``, ``order_price``,
``order_next`` and ``order_prev`` being (N, K) views with a 32-byte stride into one
cache-aligned buffer, so that an order touched costs one cache line, not five. The kernels index
them as any other array (Numba compiles a second, strided variant of each kernel that gets
them); ``live_pos`` stays a separate array. The strided variant computes every
address with a multiply by the stride (the plain variant shifts), which costs the engine's
books, whose working set stays in the caches, more than it saves: plain arrays are the
default.
Order ids are non-negative ``int64`` chosen by the caller (or assigned from ``next_auto_id``); an
open-addressing hash table (linear probing, backward-shift deletion, ``2K`` rounded up to a power of
two buckets, so it is never more than half full) maps id to slot. Ids at or above a book's
``index_limit`` (``MAX_ORDER_ID + 1`` unless its owner lowers it) are reserved for assigned ids
and kept out of the table: a book whose orders nobody looks up by id (the market-making
simulator's books, where no order is looked up: ``index_limit`` 0) skips its probes, inserts and
deletions, and a lookup of such an id (cancel, modify, queue position) scans the resting orders
instead. An owner that tracks its own orders by slot places them with an explicit id it keeps
unique through ``book.tracked_limit_order``, which never looks the id up.

Resting orders are also listed densely: ``live_slot[n, :total]`` holds the slot of every resting
order (``total`` = both sides' ``side_orders``) in an order kept by swap-with-last removal, and
``live_pos`` the position of each slot in that list, so that a uniformly random resting order can
be drawn in O(1) (the background flow's cancellations do).

The trade buffer
----------------
Every fill appends one record (maker id, taker id, taker side, price, quantity: one 40-byte row
of ``trades``, the ``TRADE_*`` columns, so that writing or reading a fill touches one or two cache
lines, not five) to a per-book buffer of ``T`` records that the caller drains (reads, then sets
``trade_count`` to 0). An order whose fills would not fit is rejected before it touches the book
(``REJECT_TRADE_BUFFER_FULL``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

#: side index of bids (LOBSTER direction +1, buy)
BID = 0
#: side index of asks (LOBSTER direction -1, sell)
ASK = 1

#: value of ``best``/``worst`` when a side holds no order
EMPTY_PRICE = -1
#: null link in the order pool and in level heads/tails
NO_SLOT = -1
#: empty bucket in the id hash table
EMPTY_KEY = -1
#: order id that asks the kernel to assign the next free id
AUTO_ID = -1
#: highest price (in ticks) the engine accepts; also the limit of a market buy
MAX_PRICE = 2**53
#: highest order id (ids are 0 .. MAX_ORDER_ID)
MAX_ORDER_ID = 2**62
#: largest quantity of one order, in lots: a book holds at most 2**30 orders (``BookBatch``'s
#: bound on ``order_capacity``), so no level's, side's or book's total passes 2**62 < 2**63
MAX_ORDER_QTY = 2**32

# Message kinds of the batched driver (column MSG_KIND of a message row).
#: padding, does nothing
MSG_NOOP = 0
#: limit order: side, price, qty, order id (AUTO_ID to assign)
MSG_LIMIT = 1
#: market order (immediate-or-cancel, never rests): side, qty, taker id or AUTO_ID
MSG_MARKET = 2
#: cancel by id: qty lots (qty <= 0 or >= remaining cancels the whole order)
MSG_CANCEL = 3
#: modify by id: new price (<= 0 keeps it), new qty (<= 0 keeps it)
MSG_MODIFY = 4

# Columns of a message row, shape (..., 5) int64.
#: column of the message kind
MSG_KIND = 0
#: column of the side, +1 buy, -1 sell (LOBSTER direction)
MSG_SIDE = 1
#: column of the price in ticks
MSG_PRICE = 2
#: column of the quantity in lots
MSG_QTY = 3
#: column of the order id
MSG_ID = 4
#: number of columns of a message row
MSG_WIDTH = 5

# Columns of a trade record, ``trades[n, k]`` int64 (TRADE_WIDTH,).
#: id of the resting order
TRADE_MAKER_ID = 0
#: id of the incoming order (AUTO_ID for an anonymous one)
TRADE_TAKER_ID = 1
#: incoming side, +1 buy or -1 sell
TRADE_TAKER_SIDE = 2
#: execution price in ticks (the resting order's)
TRADE_PRICE = 3
#: executed lots
TRADE_QTY = 4
#: number of columns of a trade record
TRADE_WIDTH = 5

# Status codes returned by every operation (and counted per book in ``status_count``).
#: the operation was carried out
OK = 0
#: the remainder would rest but the order pool is full
REJECT_POOL_FULL = 1
#: the remainder would rest outside the ladder's span
REJECT_OUTSIDE_LADDER = 2
#: a limit order reused the id of a resting order
REJECT_DUPLICATE_ID = 3
#: the order's fills would overflow the trade buffer (drain it and resubmit)
REJECT_TRADE_BUFFER_FULL = 4
#: cancel or modify of an id that is not resting (unknown, filled or cancelled): a normal race
UNKNOWN_ORDER = 5
#: a field is out of its range (side not +-1, qty outside 1..MAX_ORDER_QTY, price outside
#: 1..MAX_PRICE, unknown kind, an explicit order id at or above the book's ``index_limit``, no
#: id left to assign)
REJECT_INVALID = 6
#: number of status codes
NUM_STATUS = 7

STATUS_NAMES = (
    "ok",
    "pool_full",
    "outside_ladder",
    "duplicate_id",
    "trade_buffer_full",
    "unknown_order",
    "invalid",
)


class BookParams(NamedTuple):
    """Capacities of a batch of books (frozen; fixed at allocation)."""

    #: ladder levels per side, a power of two; resting prices span fewer than this many ticks
    ladder_levels: int = 1024
    #: order slots per book
    order_capacity: int = 4096
    #: trade records per book between two drains
    trade_capacity: int = 4096


class BookState(NamedTuple):
    """State of N books. Shapes use N books, L ladder levels, K order slots, H hash buckets, T
    trade records; every array is mutated in place by the kernels and C-contiguous, but for the
    five fields of the order records and the level heads and tails when the books keep them
    interleaved (strided views into one buffer, see ``order_record_views`` and
    ``level_link_views``)."""

    level_qty: np.ndarray  #: int64 or int32 (N, 2, L) resting quantity at each level
    level_head: np.ndarray  #: int32 (N, 2, L) first slot of the level's FIFO queue, or NO_SLOT
    level_tail: np.ndarray  #: int32 (N, 2, L) last slot of the level's FIFO queue, or NO_SLOT
    best: np.ndarray  #: int64 (N, 2) best bid and best ask price, or EMPTY_PRICE
    worst: np.ndarray  #: int64 (N, 2) lowest bid and highest ask price, or EMPTY_PRICE
    order_id: np.ndarray  #: int64 (N, K) id of the order in each slot
    order_qty: np.ndarray  #: int64 (N, K) remaining quantity (0 for a free slot)
    order_price: np.ndarray  #: int64 (N, K) price in ticks
    order_next: np.ndarray  #: int32 (N, K) next slot in the queue (or in the free list)
    order_prev: np.ndarray  #: int32 (N, K) previous slot in the queue
    free_head: np.ndarray  #: int32 (N,) first free slot, or NO_SLOT
    side_orders: np.ndarray  #: int64 (N, 2) resting orders per side (their sum: the book's)
    live_slot: np.ndarray  #: int32 (N, K) slots of the resting orders, first side_orders.sum()
    live_pos: np.ndarray  #: int32 (N, K) position of each resting order's slot in live_slot
    id_keys: np.ndarray  #: int64 (N, H) order id in each bucket, or EMPTY_KEY
    id_slots: np.ndarray  #: int32 (N, H) slot of that order
    next_auto_id: np.ndarray  #: int64 (N,) lowest candidate for an assigned id
    index_limit: (
        np.ndarray
    )  #: int64 (N,) ids at or above this are assigned only, not in the id table
    last_order_id: np.ndarray  #: int64 (N,) id of the last accepted limit order
    trades: np.ndarray  #: int64 (N, T, TRADE_WIDTH) fill records (TRADE_* columns)
    trade_count: np.ndarray  #: int64 (N,) records in the buffer
    status_count: np.ndarray  #: int64 (N, NUM_STATUS) operations per status code


#: bytes per cache line (x86-64)
CACHE_LINE = 64


def aligned_zeros(shape, dtype, alignment: int = CACHE_LINE) -> np.ndarray:
    """A C-contiguous zeroed array whose first byte starts a cache line (numpy only promises
    16 bytes): records whose size divides 64 (the markouts' 32 bytes) then never straddle two
    lines, and the first record of every row whose size is a multiple of 64 starts one."""
    dtype = np.dtype(dtype)
    count = int(np.prod(shape))
    raw = np.zeros(count * dtype.itemsize + alignment, np.uint8)
    start = -raw.ctypes.data % alignment
    return raw[start : start + count * dtype.itemsize].view(dtype).reshape(shape)


def hash_buckets(order_capacity: int) -> int:
    """Buckets of the id table: a power of two at least twice the order capacity."""
    return 1 << max(1, int(2 * order_capacity - 1).bit_length())


#: the order pool's fields kept together in order records, one 32-byte record per slot: (name,
#: dtype, byte offset). A simulator step touches about two orders per env: one line each, not
#: five
ORDER_RECORD_FIELDS = (
    ("order_id", np.int64, 0),
    ("order_qty", np.int64, 8),
    ("order_price", np.int64, 16),
    ("order_next", np.int32, 24),
    ("order_prev", np.int32, 28),
)
#: bytes of one order record
ORDER_RECORD_BYTES = 32


def order_record_views(num_books: int, order_capacity: int) -> dict[str, np.ndarray]:
    """The interleaved fields of the order pool: views, each (N, K) with a 32-byte stride
    along K, into one cache-aligned buffer, so that every field of an order lies in one line."""
    raw = aligned_zeros((num_books, order_capacity, ORDER_RECORD_BYTES), np.uint8)
    views = {}
    for name, dtype, offset in ORDER_RECORD_FIELDS:
        words = raw.view(dtype)
        size = np.dtype(dtype).itemsize
        views[name] = words[:, :, offset // size]
    return views


def has_order_records(state: BookState) -> bool:
    """Do ``state``'s books keep their orders as records (one buffer) or as five arrays?"""
    return np.may_share_memory(state.order_id, state.order_qty)


def level_link_views(num_books: int, ladder_levels: int) -> tuple[np.ndarray, np.ndarray]:
    """Each level's queue head and tail side by side: two (N, 2, L) int32 views with an 8-byte
    stride along L into one cache-aligned buffer, set to NO_SLOT. A level whose queue changes at
    both ends (it empties, or its first order arrives) then costs one line, not two, and a line
    holds the links of eight levels (sixteen heads or tails as two arrays)."""
    links = aligned_zeros((num_books, 2, ladder_levels, 2), np.int32)
    links[...] = NO_SLOT
    return links[..., 0], links[..., 1]


def has_level_links(state: BookState) -> bool:
    """Do ``state``'s books keep each level's head and tail side by side (one buffer)?"""
    return np.may_share_memory(state.level_head, state.level_tail)


def _level_links(num_books: int, ladder_levels: int, interleaved: bool):
    """The ladder's queue heads and tails, NO_SLOT: views into one buffer or two arrays."""
    if interleaved:
        return level_link_views(num_books, ladder_levels)
    shape = (num_books, 2, ladder_levels)
    return np.full(shape, NO_SLOT, np.int32), np.full(shape, NO_SLOT, np.int32)


def _order_fields(num_books: int, order_capacity: int, records: bool) -> dict[str, np.ndarray]:
    """The five record fields of the order pool, zeroed: views into one buffer or arrays."""
    if records:
        return order_record_views(num_books, order_capacity)
    return {
        name: np.zeros((num_books, order_capacity), dtype) for name, dtype, _ in ORDER_RECORD_FIELDS
    }


def allocate_book_state(
    num_books: int,
    params: BookParams,
    order_records: bool = False,
    level_qty_dtype: type = np.int64,
    level_links: bool = False,
) -> BookState:
    """Allocate N empty books, with the order pool's id, quantity, price and links as 32-byte
    records (``order_records``) or as five arrays, each level's total quantity as
    ``level_qty_dtype``: ``np.int64`` (the engine's range) or ``np.int32`` (half the ladder's
    cache lines, for an owner that guarantees no level ever holds 2**31 lots or more: the
    market-making simulator checks ``order_capacity`` times its largest order size), and each
    level's queue head and tail side by side (``level_links``, see ``level_link_views``) or as
    two arrays. Arguments are assumed valid (owners check them)."""
    n, lv, k, t = num_books, params.ladder_levels, params.order_capacity, params.trade_capacity
    h = hash_buckets(k)
    records = _order_fields(n, k, order_records)
    records["order_id"][:] = EMPTY_KEY
    records["order_next"][:, :-1] = np.arange(1, k, dtype=np.int32)
    records["order_next"][:, -1] = NO_SLOT
    records["order_prev"][:] = NO_SLOT
    head, tail = _level_links(n, lv, level_links)
    return BookState(
        level_qty=np.zeros((n, 2, lv), level_qty_dtype),
        level_head=head,
        level_tail=tail,
        best=np.full((n, 2), EMPTY_PRICE, np.int64),
        worst=np.full((n, 2), EMPTY_PRICE, np.int64),
        order_id=records["order_id"],
        order_qty=records["order_qty"],
        order_price=records["order_price"],
        order_next=records["order_next"],
        order_prev=records["order_prev"],
        free_head=np.zeros(n, np.int32),
        side_orders=np.zeros((n, 2), np.int64),
        live_slot=np.zeros((n, k), np.int32),
        live_pos=np.zeros((n, k), np.int32),
        id_keys=np.full((n, h), EMPTY_KEY, np.int64),
        id_slots=np.full((n, h), NO_SLOT, np.int32),
        next_auto_id=np.zeros(n, np.int64),
        index_limit=np.full(n, MAX_ORDER_ID + 1, np.int64),
        last_order_id=np.full(n, AUTO_ID, np.int64),
        trades=aligned_zeros((n, t, TRADE_WIDTH), np.int64),
        trade_count=np.zeros(n, np.int64),
        status_count=np.zeros((n, NUM_STATUS), np.int64),
    )


def bytes_per_book(params: BookParams, level_qty_dtype: type = np.int64) -> int:
    """Bytes of state one book of ``params`` holds (what ``allocate_book_state`` allocates per
    book, less the alignment padding): owners check a batch fits in memory before allocating."""
    lv, k, t = params.ladder_levels, params.order_capacity, params.trade_capacity
    ladder = 2 * lv * (np.dtype(level_qty_dtype).itemsize + 4 + 4)  # quantity, head, tail
    pool = k * (ORDER_RECORD_BYTES + 4 + 4)  # the five record fields, live_slot, live_pos
    ids = hash_buckets(k) * (8 + 4)
    trades = t * TRADE_WIDTH * 8
    scalars = 8 * (2 + 2 + 2 + 1 + 1 + 1 + 1 + NUM_STATUS) + 4  # best .. status_count, free_head
    return ladder + pool + ids + trades + scalars


def state_nbytes(state: BookState) -> int:
    """Bytes held by all arrays of ``state``."""
    return sum(a.nbytes for a in state)


def copy_state(state: BookState) -> BookState:
    """A deep copy (every array copied; order records stay records, level links stay side by
    side)."""
    n, k = state.order_id.shape
    views = _order_fields(n, k, has_order_records(state))
    head, tail = _level_links(n, state.level_head.shape[2], has_level_links(state))
    views.update(level_head=head, level_tail=tail)
    for name, view in views.items():
        view[...] = getattr(state, name)
    return BookState(*(views.get(name, a.copy()) for name, a in state._asdict().items()))
