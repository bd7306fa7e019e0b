"""The batched driver: N books at once equal N separate single-book runs, at any thread count."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from support import states_equal

from fastlob import MSG_CANCEL, MSG_LIMIT, MSG_MARKET, MSG_MODIFY, BookBatch, OrderBook
from fastlob._kernels.book import market_order, tracked_limit_order
from fastlob.data.synthetic import random_message_stream

N, M = 6, 400


def run_batch(messages, counts=None):
    batch = BookBatch(messages.shape[0], ladder_levels=64, order_capacity=128, trade_capacity=4096)
    status = batch.apply(messages, counts)
    return batch, status, batch.drain_trades()


def test_batch_equals_separate_single_book_runs():
    messages = random_message_stream(N, M, seed=11)
    counts = np.array([M, M - 50, 0, M, 7, M])
    batch, status, trades = run_batch(messages, counts)
    depth = batch.depth(64)
    for n in range(N):
        single, single_status, single_trades = run_batch(messages[n : n + 1], counts[n : n + 1])
        assert np.array_equal(status[n], single_status[0])
        mine = trades.book == n
        for field in ("maker_id", "taker_id", "taker_side", "price", "qty"):
            assert np.array_equal(getattr(trades, field)[mine], getattr(single_trades, field))
        assert np.array_equal(depth[n], single.depth(64)[0])
        assert all(
            np.array_equal(a[n], b[0]) for a, b in zip(batch.state, single.state, strict=True)
        )


def test_facade_and_batch_drive_the_same_kernels():
    messages = random_message_stream(1, M, seed=5)
    batch, _, trades = run_batch(messages)
    book = OrderBook(ladder_levels=64, order_capacity=128)
    fills = []
    for kind, side, price, qty, oid in messages[0].tolist():
        try:
            if kind == 1:
                got = book.limit(side, price, qty, order_id=oid)
            elif kind == 2:
                got = book.market(side, qty)
            elif kind == 3:
                book.cancel(oid, qty if qty > 0 else None)
                got = np.empty((0, 3), np.int64)
            else:
                got = book.modify(
                    oid, price=price if price > 0 else None, qty=qty if qty > 0 else None
                )
        except Exception as err:  # rejections are part of the stream
            assert type(err).__name__ == "OrderRejected"
            got = None
        if got is not None:
            fills += got.tolist()
    expected = np.stack([trades.maker_id, trades.price, trades.qty], axis=1).tolist()
    assert fills == expected
    assert np.array_equal(book.depth(64), batch.depth(64)[0])


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 Numba threads")
def test_same_result_at_any_thread_count():
    messages = random_message_stream(16, 300, seed=3)
    results = []
    for threads in (1, 2):
        numba.set_num_threads(threads)
        try:
            results.append(run_batch(messages))
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    (a, sa, ta), (b, sb, tb) = results
    assert np.array_equal(sa, sb)
    assert states_equal(a.state, b.state)
    assert states_equal(ta, tb)


@pytest.mark.parametrize(
    ("bad", "word"),
    [
        (lambda m: m.astype(np.float64), "integer"),
        (lambda m: m[:, :, :4], "shape"),
        (lambda m: m.__setitem__((0, 3, 0), 9) or m, "kind"),
        (lambda m: m.__setitem__((1, 2, slice(None)), [1, 0, 100, 1, 5]) or m, "side"),
        (lambda m: m.__setitem__((1, 2, slice(None)), [1, 1, 0, 1, 5]) or m, "price"),
        (lambda m: m.__setitem__((1, 2, slice(None)), [2, 1, 0, 0, -1]) or m, "qty"),
        (lambda m: m.__setitem__((1, 2, 4), -7) or m, "order_id"),
    ],
)
def test_bad_batches_raise_before_any_book_changes(bad, word):
    messages = random_message_stream(2, 10, seed=1)
    batch = BookBatch(2, ladder_levels=64, order_capacity=64)
    before = [a.copy() for a in batch.state]
    with pytest.raises((ValueError, TypeError), match=word):
        batch.apply(bad(messages.copy()))
    assert states_equal(batch.state, before)
    with pytest.raises(ValueError, match="books"):
        batch.apply(random_message_stream(3, 10))
    with pytest.raises(TypeError, match="counts"):
        batch.apply(messages, counts=np.array([1.5, 2.0]))
    with pytest.raises(ValueError, match="counts"):
        batch.apply(messages, counts=np.array([11, 2]))
    assert states_equal(batch.state, before)


def _auto_id_stream(num_books, length, seed):
    """Messages whose limit orders all take assigned ids (AUTO_ID); cancels and modifies aim at
    ids 0..length-1, resting or not."""
    rng = np.random.default_rng(seed)
    out = np.zeros((num_books, length, 5), np.int64)
    kinds = [MSG_LIMIT, MSG_MARKET, MSG_CANCEL, MSG_MODIFY]
    kind = rng.choice(kinds, (num_books, length), p=[0.5, 0.1, 0.3, 0.1])
    out[..., 0] = kind
    out[..., 1] = rng.choice([-1, 1], (num_books, length))
    modify_price = rng.integers(-3, 1010, (num_books, length))  # <= 0 keeps the price
    out[..., 2] = np.where(kind == MSG_MODIFY, modify_price, rng.integers(990, 1011, kind.shape))
    out[..., 3] = rng.integers(1, 6, (num_books, length))
    out[..., 4] = np.where(kind == MSG_LIMIT, -1, rng.integers(0, length, (num_books, length)))
    return out


def test_unindexed_ids_change_nothing_but_the_id_table():
    """A book whose assigned ids stay out of the id table (``index_limit`` 0) ends every message
    exactly as an indexed one: same statuses, trades and state, lookups by id (cancel, modify)
    found by scanning the resting orders; only the table itself stays empty."""
    messages = _auto_id_stream(3, 600, seed=4)
    indexed, status, trades = run_batch(messages)
    unindexed = BookBatch(3, ladder_levels=64, order_capacity=128, trade_capacity=4096)
    unindexed.state.index_limit[:] = 0
    np.testing.assert_array_equal(unindexed.apply(messages), status)
    other = unindexed.drain_trades()
    for field in ("book", "maker_id", "taker_id", "taker_side", "price", "qty"):
        np.testing.assert_array_equal(getattr(other, field), getattr(trades, field))
    for name, a, b in zip(indexed.state._fields, indexed.state, unindexed.state, strict=True):
        if name not in ("id_keys", "id_slots", "index_limit"):
            np.testing.assert_array_equal(a, b, err_msg=name)
    assert (unindexed.state.id_keys == -1).all()
    assert (indexed.state.id_keys != -1).any()
    assert (status == 0).mean() > 0.5  # the stream does real work


def test_explicit_ids_at_or_above_the_index_limit_are_rejected():
    batch = BookBatch(1, ladder_levels=64, order_capacity=16, trade_capacity=64)
    batch.state.index_limit[:] = 10
    messages = np.array([[[MSG_LIMIT, 1, 100, 1, 9], [MSG_LIMIT, 1, 100, 1, 10]]], np.int64)
    before = {k: v.copy() for k, v in batch.state._asdict().items()}
    status = batch.apply(messages)
    assert status.tolist() == [[0, 6]]  # OK, then REJECT_INVALID
    assert batch.state.side_orders.sum() == 1
    assert batch.state.status_count[0, 6] == before["status_count"][0, 6] + 1


@numba.njit
def _apply_tracked(state, messages, status, newest_id, rests):
    """Limit rows through ``tracked_limit_order`` (market rows through ``market_order``) on book
    0; after row ``m``: ``newest_id[m]``, the id at the end of the list of resting orders, and
    ``rests[m]``, whether the row's own id rests anywhere in the book."""
    for m in range(messages.shape[0]):
        kind, direction, price, qty, order_id = messages[m]
        if kind == MSG_LIMIT:
            status[m] = tracked_limit_order(state, 0, direction, price, qty, order_id)
        else:
            status[m] = market_order(state, 0, direction, qty, order_id)
        resting = state.side_orders[0, 0] + state.side_orders[0, 1]
        newest_id[m] = state.order_id[0, state.live_slot[0, resting - 1]] if resting > 0 else -1
        rests[m] = (state.order_id[0] == order_id).any()


def test_tracked_limit_orders_trade_and_rest_as_limit_orders_outside_the_id_table():
    """``tracked_limit_order`` (ids the owner keeps unique, never looked up) on a book with
    ``index_limit`` 0 gives every status, trade and array of ``limit_order`` with the same
    explicit ids on an indexed book, but the id table; an order that rests is the newest entry
    of the list of resting orders (where the market-making simulator finds its quote)."""
    rng = np.random.default_rng(8)
    length = 500
    messages = np.zeros((1, length, 5), np.int64)
    kind = rng.choice([MSG_LIMIT, MSG_MARKET], length, p=[0.8, 0.2])
    messages[0, :, 0] = kind
    messages[0, :, 1] = rng.choice([-1, 1], length)
    messages[0, :, 2] = rng.integers(990, 1011, length)
    messages[0, :, 3] = rng.integers(1, 6, length)
    messages[0, :, 4] = np.arange(length)  # unique ids
    indexed, status, trades = run_batch(messages)
    tracked = BookBatch(1, ladder_levels=64, order_capacity=128, trade_capacity=4096)
    tracked.state.index_limit[:] = 0
    tracked_status = np.zeros(length, np.int64)
    newest_id = np.zeros(length, np.int64)
    rests = np.zeros(length, np.bool_)
    _apply_tracked(tracked.state, messages[0], tracked_status, newest_id, rests)
    np.testing.assert_array_equal(tracked_status, status[0])
    other = tracked.drain_trades()
    for field in ("maker_id", "taker_id", "taker_side", "price", "qty"):
        np.testing.assert_array_equal(getattr(other, field), getattr(trades, field))
    for name, a, b in zip(indexed.state._fields, indexed.state, tracked.state, strict=True):
        if name not in ("id_keys", "id_slots", "index_limit"):
            np.testing.assert_array_equal(a, b, err_msg=name)
    assert (tracked.state.id_keys == -1).all()
    rested = (kind == MSG_LIMIT) & rests
    assert rested.sum() > 100 and (status[0] == 0).mean() > 0.9  # real work
    np.testing.assert_array_equal(newest_id[rested], np.flatnonzero(rested))


def test_tracked_limit_order_refuses_an_id_below_the_index_limit():
    batch = BookBatch(1, ladder_levels=64, order_capacity=16, trade_capacity=64)
    batch.state.index_limit[:] = 10
    before = {k: v.copy() for k, v in batch.state._asdict().items()}
    status = np.zeros(1, np.int64)
    row = np.array([[MSG_LIMIT, 1, 100, 1, 9]], np.int64)
    _apply_tracked(batch.state, row, status, np.zeros(1, np.int64), np.zeros(1, np.bool_))
    assert status[0] == 6  # REJECT_INVALID: that id would belong in the table
    for name, a in batch.state._asdict().items():
        if name != "status_count":
            np.testing.assert_array_equal(a, before[name], err_msg=name)
    assert batch.state.status_count[0, 6] == before["status_count"][0, 6] + 1
