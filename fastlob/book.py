"""Owners of order-book state: :class:`BookBatch` (N books) and :class:`OrderBook` (one book).

Both allocate a :class:`~fastlob._kernels.book_layout.BookState`, check every argument at the
Python boundary and call the same kernels; ``OrderBook`` is a batch of one. Nothing in a rejected
call touches the book: bad input raises before any kernel runs, and capacity rejections are
decided by the kernel before its first write.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np

from fastlob._checks import check_fits_memory, check_int
from fastlob._kernels import book as _k
from fastlob._kernels.book_layout import (
    AUTO_ID,
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
    MSG_WIDTH,
    OK,
    STATUS_NAMES,
    TRADE_MAKER_ID,
    TRADE_PRICE,
    TRADE_QTY,
    TRADE_TAKER_ID,
    TRADE_TAKER_SIDE,
    UNKNOWN_ORDER,
    BookParams,
    BookState,
    allocate_book_state,
    bytes_per_book,
    state_nbytes,
)

__all__ = ["BookBatch", "OrderBook", "OrderRejected", "Trades"]


class OrderRejected(RuntimeError):
    """An order the book could not take (capacity or ladder span); the book is unchanged.

    Attributes
    ----------
    status : int
        The kernel's status code (``fastlob.REJECT_*``).
    reason : str
        Its name, e.g. ``"pool_full"``.
    """

    def __init__(self, status: int, detail: str):
        self.status = int(status)
        self.reason = STATUS_NAMES[self.status]
        super().__init__(f"order rejected ({self.reason}): {detail}")


class Trades(NamedTuple):
    """Fills drained from a batch of books, in execution order within each book (1-D arrays)."""

    book: np.ndarray  #: int64, book index
    maker_id: np.ndarray  #: int64, resting order's id
    taker_id: np.ndarray  #: int64, incoming order's id (-1: anonymous market order)
    taker_side: np.ndarray  #: int8, +1 buy, -1 sell
    price: np.ndarray  #: int64, ticks (the resting order's price)
    qty: np.ndarray  #: int64, lots


# ---------------------------------------------------------------------------------------------
# argument checks (shared by both owners)
# ---------------------------------------------------------------------------------------------


def _check_side(side) -> int:
    if isinstance(side, bool) or not isinstance(side, numbers.Integral) or int(side) not in (1, -1):
        raise ValueError(f"side must be +1 (buy) or -1 (sell), got {side!r}")
    return int(side)


def check_book_params(ladder_levels, order_capacity, trade_capacity) -> BookParams:
    ladder_levels = check_int("ladder_levels", ladder_levels, 2, 2**24)
    if ladder_levels & (ladder_levels - 1):
        raise ValueError(f"ladder_levels must be a power of two, got {ladder_levels}")
    order_capacity = check_int("order_capacity", order_capacity, 1, 2**30)
    trade_capacity = check_int("trade_capacity", trade_capacity, 1, 2**30)
    return BookParams(ladder_levels, order_capacity, trade_capacity)


_FIELD_NAMES = ("kind", "side", "price", "qty", "order_id")  # the MSG_* columns, in order


def check_messages(messages) -> np.ndarray:
    """Validate a message batch (see ``MSG_*``); returns it as int64 (N, M, 5) C-contiguous.

    Raises ``TypeError``/``ValueError`` naming the first offending row and field. A quantity
    above ``MAX_ORDER_QTY`` is not an error here: the book rejects that one order
    (``REJECT_INVALID``, counted), as an exchange refuses an order over its size limit.
    """
    arr = np.asarray(messages)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"messages must be an integer array, got dtype {arr.dtype}")
    if arr.ndim != 3 or arr.shape[2] != MSG_WIDTH:
        raise ValueError(f"messages must have shape (num_books, M, {MSG_WIDTH}), got {arr.shape}")
    if arr.dtype.kind == "u" and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
        n, m, col = np.argwhere(arr > np.iinfo(np.int64).max)[0]
        raise ValueError(
            f"messages[{n}, {m}] field {_FIELD_NAMES[col]} = {arr[n, m, col]} is invalid: "
            f"it does not fit int64"
        )
    arr = np.ascontiguousarray(arr, dtype=np.int64)
    kind = arr[..., MSG_KIND]
    side = arr[..., MSG_SIDE]
    price = arr[..., MSG_PRICE]
    qty = arr[..., MSG_QTY]
    order_id = arr[..., MSG_ID]
    is_limit = kind == MSG_LIMIT
    is_market = kind == MSG_MARKET
    is_modify = kind == MSG_MODIFY
    checks = (
        (
            "kind",
            ~np.isin(kind, (MSG_NOOP, MSG_LIMIT, MSG_MARKET, MSG_CANCEL, MSG_MODIFY)),
            "0 (noop), 1 (limit), 2 (market), 3 (cancel) or 4 (modify)",
        ),
        ("side", (is_limit | is_market) & (side != 1) & (side != -1), "+1 or -1"),
        ("price", is_limit & ((price < 1) | (price > MAX_PRICE)), f"1..{MAX_PRICE} for a limit"),
        ("price", is_modify & (price > MAX_PRICE), f"<= {MAX_PRICE} (<= 0 keeps it)"),
        ("qty", (is_limit | is_market) & (qty < 1), ">= 1 for a limit or market order"),
        (
            "order_id",
            (order_id < AUTO_ID) | (order_id > MAX_ORDER_ID),
            f"-1 (assign) or 0..{MAX_ORDER_ID}",
        ),
    )
    for field, bad, allowed in checks:
        if bad.any():
            n, m = np.argwhere(bad)[0]
            raise ValueError(
                f"messages[{n}, {m}] field {field} = {arr[n, m]} is invalid: allowed {allowed}"
            )
    return arr


# ---------------------------------------------------------------------------------------------
# N books
# ---------------------------------------------------------------------------------------------


class BookBatch:
    """N independent order books advanced together by the parallel driver.

    Parameters
    ----------
    num_books : int
        Number of books N (>= 1).
    ladder_levels : int
        Ladder levels per side, a power of two; all resting prices of a book must span fewer ticks.
    order_capacity : int
        Order slots per book.
    trade_capacity : int
        Fill records per book between two :meth:`drain_trades`.
    """

    def __init__(
        self,
        num_books: int,
        *,
        ladder_levels: int = 1024,
        order_capacity: int = 4096,
        trade_capacity: int = 4096,
    ):
        self.num_books = check_int("num_books", num_books, 1, 2**24)
        self.params = check_book_params(ladder_levels, order_capacity, trade_capacity)
        check_fits_memory("num_books", self.num_books, bytes_per_book(self.params), "book state")
        self.state: BookState = allocate_book_state(self.num_books, self.params)

    @property
    def nbytes(self) -> int:
        """Bytes of state held by all books."""
        return state_nbytes(self.state)

    def apply(self, messages, counts=None) -> np.ndarray:
        """Apply ``messages`` (int (N, M, 5), rows ``[kind, side, price, qty, order_id]``).

        ``counts`` (int (N,), default M) says how many rows of each book to apply. Returns the
        status of every applied row, int8 (N, M) (unapplied rows are 0). Invalid input raises
        before any book changes; an order of more than ``MAX_ORDER_QTY`` lots is rejected on its
        own (status ``REJECT_INVALID``, counted in :meth:`status_counts`).
        """
        msgs = check_messages(messages)
        if msgs.shape[0] != self.num_books:
            raise ValueError(
                f"messages has {msgs.shape[0]} books along axis 0, this batch has {self.num_books}"
            )
        if counts is None:
            counts = np.full(self.num_books, msgs.shape[1], np.int64)
        else:
            counts = np.asarray(counts)
            if counts.dtype.kind not in "iu":
                raise TypeError(f"counts must be an integer array, got dtype {counts.dtype}")
            counts = np.ascontiguousarray(counts, dtype=np.int64)
            if (
                counts.shape != (self.num_books,)
                or (counts < 0).any()
                or (counts > msgs.shape[1]).any()
            ):
                raise ValueError(f"counts must be int (num_books,) in [0, {msgs.shape[1]}]")
        status = np.zeros(msgs.shape[:2], np.int8)
        _k.apply_messages(self.state, msgs, counts, status)
        return status

    def depth(self, levels: int = 10) -> np.ndarray:
        """Top ``levels`` of every book as int64 (N, levels, 4).

        Each row is ``[ask_px, ask_qty, bid_px, bid_qty]``; a missing level reads 0, 0.
        """
        levels = check_int("levels", levels, 1, self.params.ladder_levels)
        out = np.zeros((self.num_books, levels, 4), np.int64)
        _k.depth_batch(self.state, out)
        return out

    def status_counts(self) -> dict[str, np.ndarray]:
        """Per-book count of every non-OK status so far, as ``{name: int64 (N,)}``."""
        counts = self.state.status_count
        return {name: counts[:, i].copy() for i, name in enumerate(STATUS_NAMES) if i != OK}

    def drain_trades(self) -> Trades:
        """Return every recorded fill and empty the trade buffers."""
        s = self.state
        counts = s.trade_count
        books = np.repeat(np.arange(self.num_books, dtype=np.int64), counts)
        mask = np.arange(s.trades.shape[1])[None, :] < counts[:, None]
        records = s.trades[mask]  # (fills, TRADE_WIDTH), book by book, in fill order
        trades = Trades(
            book=books,
            maker_id=records[:, TRADE_MAKER_ID].copy(),
            taker_id=records[:, TRADE_TAKER_ID].copy(),
            taker_side=records[:, TRADE_TAKER_SIDE].astype(np.int8),
            price=records[:, TRADE_PRICE].copy(),
            qty=records[:, TRADE_QTY].copy(),
        )
        counts[:] = 0
        return trades


# ---------------------------------------------------------------------------------------------
# one book
# ---------------------------------------------------------------------------------------------


class OrderBook:
    """One limit order book with exact price-time priority (a :class:`BookBatch` of one).

    Sides are +1 (buy) and -1 (sell), prices integer ticks in 1..2**53, quantities integer lots
    in 1..2**32 (``MAX_ORDER_QTY``: no level or book total can then overflow), order ids
    integers in 0..2**62. Fills come back as int64 arrays of shape
    (k, 3): ``(maker_order_id, price, qty)`` in execution order.

    Parameters
    ----------
    ladder_levels : int
        Ladder levels per side (power of two): every resting price must lie within a span of
        fewer ticks. An order whose remainder would not raises :class:`OrderRejected`.
    order_capacity : int
        Maximum resting orders; one more raises :class:`OrderRejected`.
    """

    def __init__(self, *, ladder_levels: int = 1024, order_capacity: int = 4096):
        # A trade buffer as large as the pool can never overflow: one order fills at most every
        # resting order, and the facade drains after every call.
        self._batch = BookBatch(
            1,
            ladder_levels=ladder_levels,
            order_capacity=order_capacity,
            trade_capacity=check_int("order_capacity", order_capacity, 1, 2**30),
        )
        self.state = self._batch.state

    # -- helpers -------------------------------------------------------------------------------
    def _fills(self) -> np.ndarray:
        s = self.state
        k = int(s.trade_count[0])
        fills = np.empty((k, 3), np.int64)
        fills[:, 0] = s.trades[0, :k, TRADE_MAKER_ID]
        fills[:, 1] = s.trades[0, :k, TRADE_PRICE]
        fills[:, 2] = s.trades[0, :k, TRADE_QTY]
        s.trade_count[0] = 0
        return fills

    def _raise_rejected(self, status: int, what: str):
        if status != OK:
            raise OrderRejected(status, what)

    def _check_order_id(self, order_id) -> int:
        return check_int("order_id", order_id, 0, MAX_ORDER_ID)

    # -- orders --------------------------------------------------------------------------------
    def limit(self, side, price, qty, order_id=None) -> np.ndarray:
        """Submit a limit order; returns its fills (maker id, price, qty) as int64 (k, 3).

        What does not trade rests at the back of its level. With ``order_id=None`` the book
        assigns the lowest free id at or above every id it has seen; read it from
        :attr:`last_order_id`.
        """
        side = _check_side(side)
        price = check_int("price", price, 1, MAX_PRICE)
        qty = check_int("qty", qty, 1, MAX_ORDER_QTY)
        if order_id is None:
            if int(self.state.next_auto_id[0]) > MAX_ORDER_ID:
                raise ValueError(
                    f"order_id: no id left to assign (ids above {MAX_ORDER_ID} do not exist and "
                    f"the book has used {MAX_ORDER_ID}); pass an explicit free order_id"
                )
            oid = AUTO_ID
        else:
            oid = self._check_order_id(order_id)
            if _k.find_slot(self.state, 0, oid) >= 0:
                raise ValueError(f"order_id {oid} is already resting in this book (duplicate)")
        status = _k.limit_order(self.state, 0, side, price, qty, oid)
        self._raise_rejected(status, f"limit side={side} price={price} qty={qty}")
        return self._fills()

    def market(self, side, qty) -> np.ndarray:
        """Submit a market order (never rests); returns its fills as int64 (k, 3).

        The unfilled part (if the opposite side runs dry) is dropped; the fills show what traded.
        """
        side = _check_side(side)
        qty = check_int("qty", qty, 1, MAX_ORDER_QTY)
        status = _k.market_order(self.state, 0, side, qty, AUTO_ID)
        self._raise_rejected(status, f"market side={side} qty={qty}")
        return self._fills()

    def cancel(self, order_id, qty=None) -> bool:
        """Cancel a resting order, or ``qty`` lots of it (keeping its priority).

        Returns False if the order is not resting (unknown, filled or cancelled: a normal race).
        """
        oid = self._check_order_id(order_id)
        amount = 0 if qty is None else check_int("qty", qty, 1, MAX_ORDER_QTY)
        return _k.cancel_order(self.state, 0, oid, amount) == OK

    def modify(self, order_id, price=None, qty=None):
        """Change a resting order's price and/or remaining quantity, keeping its id.

        A size decrease at the same price keeps queue priority; a price change or a size increase
        sends it to the back (and, if the new price crosses, it trades first). Returns the fills
        as int64 (k, 3), or None if the order is not resting (a normal race, like cancel).
        """
        oid = self._check_order_id(order_id)
        new_price = 0 if price is None else check_int("price", price, 1, MAX_PRICE)
        new_qty = 0 if qty is None else check_int("qty", qty, 1, MAX_ORDER_QTY)
        status = _k.modify_order(self.state, 0, oid, new_price, new_qty)
        if status == UNKNOWN_ORDER:
            return None
        self._raise_rejected(status, f"modify order_id={oid} price={price} qty={qty}")
        return self._fills()

    # -- queries -------------------------------------------------------------------------------
    def best_bid(self) -> int | None:
        """Best bid price in ticks, or None if there is no bid."""
        price = int(self.state.best[0, 0])
        return None if price == EMPTY_PRICE else price

    def best_ask(self) -> int | None:
        """Best ask price in ticks, or None if there is no ask."""
        price = int(self.state.best[0, 1])
        return None if price == EMPTY_PRICE else price

    def depth(self, levels: int = 10) -> np.ndarray:
        """Top ``levels`` as int64 (levels, 4): ``[ask_px, ask_qty, bid_px, bid_qty]`` per row;
        a missing level reads price 0, qty 0."""
        return self._batch.depth(levels)[0]

    def queue_ahead(self, order_id) -> int:
        """Quantity resting ahead of ``order_id`` at its level (0 at the front).

        Raises KeyError if the order is not resting.
        """
        oid = self._check_order_id(order_id)
        ahead = _k.queue_ahead(self.state, 0, oid)
        if ahead < 0:
            raise KeyError(f"order_id {oid} is not resting in this book")
        return int(ahead)

    def remaining(self, order_id) -> int:
        """Remaining quantity of a resting order, 0 if it is not resting."""
        oid = self._check_order_id(order_id)
        slot = _k.find_slot(self.state, 0, oid)
        return 0 if slot < 0 else int(self.state.order_qty[0, slot])

    def __contains__(self, order_id) -> bool:
        return (
            isinstance(order_id, numbers.Integral)
            and 0 <= int(order_id) <= MAX_ORDER_ID
            and _k.find_slot(self.state, 0, int(order_id)) >= 0
        )

    def __len__(self) -> int:
        """Number of resting orders."""
        return int(self.state.side_orders[0].sum())

    @property
    def last_order_id(self) -> int:
        """Id of the last accepted limit order (the assigned one when ``order_id=None``)."""
        return int(self.state.last_order_id[0])

    def status_counts(self) -> dict[str, int]:
        """How many operations ended with each non-OK status (rejections, unknown ids)."""
        return {k: int(v[0]) for k, v in self._batch.status_counts().items()}

    def __repr__(self) -> str:
        return (
            f"OrderBook(best_bid={self.best_bid()}, best_ask={self.best_ask()}, "
            f"orders={len(self)}, ladder_levels={self._batch.params.ladder_levels})"
        )
