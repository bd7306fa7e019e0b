"""The OrderBook facade: hand-worked examples, bad input, rejections leave the book unchanged."""

from __future__ import annotations

import math

import numpy as np
import pytest
from support import states_equal

import fastlob
from fastlob import OrderBook, OrderRejected
from fastlob._kernels.book_layout import copy_state

BUY, SELL = 1, -1


def book_with_asks():
    book = OrderBook(ladder_levels=64, order_capacity=16)
    book.limit(SELL, 101, 5, order_id=1)
    book.limit(SELL, 101, 3, order_id=2)
    book.limit(SELL, 102, 4, order_id=3)
    book.limit(SELL, 104, 6, order_id=4)
    book.limit(BUY, 99, 7, order_id=5)
    return book


def test_crossing_limit_sweeps_levels_in_price_time_order_and_rests_remainder():
    book = book_with_asks()
    fills = book.limit(BUY, 102, 15, order_id=10)
    assert fills.tolist() == [[1, 101, 5], [2, 101, 3], [3, 102, 4]]
    assert book.best_bid() == 102 and book.best_ask() == 104
    assert book.remaining(10) == 3 and book.queue_ahead(10) == 0
    assert book.depth(2).tolist() == [[104, 6, 102, 3], [0, 0, 99, 7]]


def test_market_order_sweeps_and_never_rests():
    book = book_with_asks()
    fills = book.market(BUY, 100)
    assert fills[:, 2].sum() == 18 and fills[-1].tolist() == [4, 104, 6]
    assert book.best_ask() is None and book.best_bid() == 99 and len(book) == 1


def test_cancel_partial_keeps_priority_and_unknown_returns_false():
    book = book_with_asks()
    assert book.cancel(1, qty=2)
    assert book.queue_ahead(2) == 3 and book.remaining(1) == 3
    assert book.cancel(1)
    assert not book.cancel(1)
    assert not book.cancel(999)
    assert book.queue_ahead(2) == 0
    assert book.status_counts()["unknown_order"] == 2


def test_modify_decrease_keeps_priority_increase_and_reprice_lose_it():
    book = book_with_asks()
    assert book.modify(1, qty=4).shape == (0, 3)
    assert book.queue_ahead(1) == 0 and book.queue_ahead(2) == 4
    book.modify(1, qty=6)  # increase: back of the queue
    assert book.queue_ahead(2) == 0 and book.queue_ahead(1) == 3
    book.modify(2, price=102)  # reprice: back of the 102 queue
    assert book.queue_ahead(2) == 4 and book.depth(1)[0, :2].tolist() == [101, 6]
    assert book.modify(12345, qty=1) is None


def test_modify_to_a_crossing_price_trades_first():
    book = book_with_asks()
    fills = book.modify(5, price=101)  # bid 7 @ 99 -> 101 crosses the asks at 101
    assert fills.tolist() == [[1, 101, 5], [2, 101, 2]]
    assert 5 not in book and book.remaining(2) == 1


def test_auto_ids_skip_ids_in_use():
    book = OrderBook()
    book.limit(BUY, 10, 1, order_id=0)
    book.limit(BUY, 10, 1)
    assert book.last_order_id == 1
    book.limit(BUY, 10, 1, order_id=7)
    book.limit(BUY, 10, 1)
    assert book.last_order_id == 8


@pytest.mark.parametrize(
    ("call", "exc", "word"),
    [
        (lambda b: b.limit(BUY, 100, 0), ValueError, "qty"),
        (lambda b: b.limit(BUY, 100, -3), ValueError, "qty"),
        (lambda b: b.limit(BUY, 100.5, 1), TypeError, "price"),
        (lambda b: b.limit(BUY, math.nan, 1), ValueError, "price"),
        (lambda b: b.limit(BUY, 0, 1), ValueError, "price"),
        (lambda b: b.limit(BUY, 2**60, 1), ValueError, "price"),
        (lambda b: b.limit(0, 100, 1), ValueError, "side"),
        (lambda b: b.limit(2, 100, 1), ValueError, "side"),
        (lambda b: b.limit(BUY, 100, 1, order_id=1), ValueError, "duplicate"),
        (lambda b: b.limit(BUY, 100, 1, order_id=-5), ValueError, "order_id"),
        (lambda b: b.market(SELL, math.nan), ValueError, "qty"),
        (lambda b: b.market(SELL, 1.0), TypeError, "qty"),
        (lambda b: b.modify(1, price=-1), ValueError, "price"),
        (lambda b: b.cancel(1, qty=0), ValueError, "qty"),
        (lambda b: b.depth(0), ValueError, "levels"),
    ],
)
def test_bad_input_raises_naming_the_argument_and_leaves_book_unchanged(call, exc, word):
    book = book_with_asks()
    before = copy_state(book.state)
    with pytest.raises(exc, match=word):
        call(book)
    assert states_equal(book.state, before)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="ladder_levels"):
        OrderBook(ladder_levels=100)
    with pytest.raises(ValueError, match="order_capacity"):
        OrderBook(order_capacity=0)


def assert_unchanged_but_counter(book, before, reason):
    after = copy_state(book.state)
    assert book.status_counts()[reason] == 1
    after.status_count[:] = before.status_count
    assert states_equal(after, before)


def test_pool_full_raises_and_only_counts():
    book = OrderBook(ladder_levels=16, order_capacity=2)
    book.limit(BUY, 100, 1, order_id=1)
    book.limit(SELL, 110, 1, order_id=2)
    before = copy_state(book.state)
    with pytest.raises(OrderRejected, match="pool_full") as info:
        book.limit(BUY, 101, 1, order_id=3)
    assert info.value.status == fastlob.REJECT_POOL_FULL
    assert_unchanged_but_counter(book, before, "pool_full")
    assert book.limit(SELL, 100, 1).tolist() == [[1, 100, 1]]  # a fully filled order needs no slot


def test_outside_ladder_raises_and_only_counts():
    book = OrderBook(ladder_levels=16, order_capacity=8)
    book.limit(BUY, 100, 1, order_id=1)
    before = copy_state(book.state)
    with pytest.raises(OrderRejected, match="outside_ladder") as info:
        book.limit(SELL, 116, 1, order_id=2)  # span 16 ticks: one too many
    assert info.value.status == fastlob.REJECT_OUTSIDE_LADDER
    assert_unchanged_but_counter(book, before, "outside_ladder")
    book.limit(SELL, 115, 1, order_id=2)  # span 15 fits
    assert book.depth(1).tolist() == [[115, 1, 100, 1]]


def test_crossing_order_beyond_the_ladder_is_fine_when_nothing_rests_out_of_span():
    book = OrderBook(ladder_levels=16, order_capacity=8)
    book.limit(SELL, 100, 5, order_id=1)
    fills = book.limit(BUY, 10_000, 5, order_id=2)  # fully filled: nothing rests at 10 000
    assert fills.tolist() == [[1, 100, 5]]
    assert len(book) == 0


def test_ladder_recentres_as_the_price_walks():
    book = OrderBook(ladder_levels=16, order_capacity=8)
    for step in range(200):  # walk the market 200 ticks up, far beyond 16 levels
        book.limit(BUY, 100 + step, 1, order_id=2 * step)
        book.limit(SELL, 105 + step, 1, order_id=2 * step + 1)
        book.cancel(2 * step)
        book.cancel(2 * step + 1)
    book.limit(BUY, 400, 2)
    book.limit(SELL, 410, 3)
    assert book.depth(1).tolist() == [[410, 3, 400, 2]]
    assert book.status_counts()["outside_ladder"] == 0


def test_depth_layout_and_empty_levels():
    book = book_with_asks()
    depth = book.depth(4)
    assert depth.dtype == np.int64 and depth.shape == (4, 4)
    assert depth.tolist() == [[101, 8, 99, 7], [102, 4, 0, 0], [104, 6, 0, 0], [0, 0, 0, 0]]


def test_queue_ahead_unknown_raises_keyerror():
    with pytest.raises(KeyError, match="order_id 3"):
        OrderBook().queue_ahead(3)


def _record_layout(state):
    """Each order-record field's strides and its byte offset from the start of ``order_id``."""
    from fastlob._kernels.book_layout import ORDER_RECORD_FIELDS

    start = state.order_id.ctypes.data
    return {
        name: (getattr(state, name).strides, getattr(state, name).ctypes.data - start)
        for name, _, _ in ORDER_RECORD_FIELDS
    }


def test_an_orders_record_fields_lie_in_one_cache_line_and_copies_keep_that_layout():
    from fastlob._kernels.book_layout import (
        ORDER_RECORD_BYTES,
        ORDER_RECORD_FIELDS,
        BookParams,
        allocate_book_state,
        has_order_records,
    )

    num_books, capacity = 3, 8
    state = allocate_book_state(num_books, BookParams(16, capacity, 4), order_records=True)
    assert has_order_records(state)
    assert state.order_id.ctypes.data % 64 == 0 and 64 % ORDER_RECORD_BYTES == 0
    expected = {
        name: ((capacity * ORDER_RECORD_BYTES, ORDER_RECORD_BYTES), offset)
        for name, _, offset in ORDER_RECORD_FIELDS
    }
    assert _record_layout(state) == expected
    plain = allocate_book_state(num_books, BookParams(16, capacity, 4))
    assert not has_order_records(plain) and states_equal(plain, state)  # the same empty books
    # the fields do not overlap: each keeps what was written to it
    rng = np.random.default_rng(0)
    written = {}
    for name, dtype, _ in ORDER_RECORD_FIELDS:
        written[name] = rng.integers(-1000, 1000, size=(num_books, capacity)).astype(dtype)
        getattr(state, name)[...] = written[name]
    for name, values in written.items():
        assert np.array_equal(getattr(state, name), values), name
    copy = copy_state(state)
    assert states_equal(copy, state) and _record_layout(copy) == expected
    assert not np.shares_memory(copy.order_id, state.order_id)
    plain_copy = copy_state(plain)
    assert not has_order_records(plain_copy) and plain_copy.order_id.flags.c_contiguous


def test_a_levels_queue_head_and_tail_lie_side_by_side_and_copies_keep_that_layout():
    from fastlob._kernels.book_layout import (
        BookParams,
        allocate_book_state,
        has_level_links,
    )

    num_books, levels = 3, 16
    state = allocate_book_state(num_books, BookParams(levels, 8, 4), level_links=True)
    assert has_level_links(state)
    head, tail = state.level_head, state.level_tail
    assert head.ctypes.data % 64 == 0 and tail.ctypes.data == head.ctypes.data + 4
    assert head.strides == tail.strides == (2 * levels * 8, levels * 8, 8)
    plain = allocate_book_state(num_books, BookParams(levels, 8, 4))
    assert not has_level_links(plain) and states_equal(plain, state)  # the same empty books
    # the two fields do not overlap: each keeps what was written to it
    rng = np.random.default_rng(0)
    written = {
        name: rng.integers(-1000, 1000, size=(num_books, 2, levels)).astype(np.int32)
        for name in ("level_head", "level_tail")
    }
    for name, values in written.items():
        getattr(state, name)[...] = values
    for name, values in written.items():
        assert np.array_equal(getattr(state, name), values), name
    copy = copy_state(state)
    assert states_equal(copy, state) and has_level_links(copy)
    assert copy.level_head.strides == head.strides and not np.shares_memory(copy.level_head, head)
    plain_copy = copy_state(plain)
    assert not has_level_links(plain_copy) and plain_copy.level_head.flags.c_contiguous


def test_the_simulators_books_keep_order_records_and_the_engines_five_arrays():
    from fastlob._kernels.book_layout import ORDER_RECORD_BYTES, has_level_links, has_order_records

    env = fastlob.MarketMakingVectorEnv(num_envs=2, seed=0)
    assert has_order_records(env.books) and has_level_links(env.books)
    assert env.books.order_qty.strides[1] == ORDER_RECORD_BYTES
    assert env.books.level_qty.dtype == np.int32  # bounded by the config's check
    book = OrderBook(ladder_levels=64, order_capacity=16)
    assert not has_order_records(book.state) and book.state.order_qty.flags.c_contiguous
    assert not has_level_links(book.state) and book.state.level_head.flags.c_contiguous
    assert book.state.level_qty.dtype == np.int64  # the engine's full quantity range


def test_the_side_of_every_resting_order_follows_from_its_price_and_the_best_bid():
    # the book stores no side per order (book.side_of derives it: the book is never crossed);
    # checked against the side each order was placed with, through sweeps, cancels and modifies
    from fastlob._kernels.book import side_of

    rng = np.random.default_rng(5)
    book = OrderBook(ladder_levels=256, order_capacity=512)
    placed = {}
    for order_id in range(1, 1500):
        action = rng.random()
        if action < 0.6 or not placed:
            side = 1 if rng.random() < 0.5 else -1
            price = int(rng.integers(9_980, 10_021))
            book.limit(side, price, int(rng.integers(1, 6)), order_id=order_id)
            placed[order_id] = side
        elif action < 0.85:
            book.cancel(int(rng.choice(list(placed))))
        else:
            book.modify(int(rng.choice(list(placed))), price=int(rng.integers(9_980, 10_021)))
        s = book.state
        resting = int(s.side_orders[0].sum())
        for slot in s.live_slot[0, :resting]:
            expected = 0 if placed[int(s.order_id[0, slot])] == 1 else 1
            assert side_of(s, 0, slot) == expected
    assert resting > 20  # a book with both sides, not an empty one
