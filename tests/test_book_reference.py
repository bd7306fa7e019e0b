"""Randomized comparison of the matching kernels with the plain-Python reference book.

Every message of many random streams goes through both; after each one the status, every fill
(maker id, price, qty, in order) and the full depth must agree, and periodically every resting
order's queue position too. Small ladders and pools make the rejection paths fire as well.
"""

from __future__ import annotations

import numpy as np
import pytest
from reference_book import ReferenceBook

from fastlob import BookBatch
from fastlob._kernels import book as K
from fastlob.data.synthetic import StreamConfig, random_message_stream

CASES = [
    # (seed, ladder_levels, order_capacity, stream config)
    (0, 1024, 4096, StreamConfig()),
    (1, 32, 4096, StreamConfig(centre_move_prob=0.5)),  # the price walks out of a small ladder
    (2, 1024, 24, StreamConfig(mean_lifetime=200.0)),  # the pool fills up
    (3, 64, 64, StreamConfig(marketable_share=0.3, market_rate=0.3, size_p=0.1)),  # deep sweeps
    (4, 128, 256, StreamConfig(modify_share=0.6, partial_cancel_share=0.6)),
]


def with_oversized_quantities(messages: np.ndarray, seed: int, share: float) -> np.ndarray:
    """``messages`` with the quantity of a ``share`` of rows raised past 2**32 lots (up to
    2**62): limit, market and modify rows that the book must reject whole."""
    rng = np.random.default_rng(seed)
    out = messages.copy()
    hit = rng.random(out.shape[:2]) < share
    out[..., 3] = np.where(hit, 2**32 + rng.integers(1, 2**62 - 2**32, out.shape[:2]), out[..., 3])
    return out


@pytest.mark.parametrize(("seed", "ladder", "capacity", "config"), CASES)
def test_kernels_match_reference_message_by_message(seed, ladder, capacity, config):
    messages = random_message_stream(1, 1500, seed=seed, config=config)
    if seed == 4:  # one stream also carries orders too large for the book
        messages = with_oversized_quantities(messages, seed, share=0.05)
    batch = BookBatch(1, ladder_levels=ladder, order_capacity=capacity, trade_capacity=capacity)
    ref = ReferenceBook(ladder_levels=ladder, order_capacity=capacity)
    seen_status = set()
    for m in range(messages.shape[1]):
        row = messages[:, m : m + 1]
        status = int(batch.apply(row)[0, 0])
        trades = batch.drain_trades()
        ref_status, ref_fills = ref.apply(*(int(x) for x in row[0, 0]))
        assert status == ref_status, f"message {m} {row[0, 0]}"
        fills = list(
            zip(trades.maker_id.tolist(), trades.price.tolist(), trades.qty.tolist(), strict=True)
        )
        assert fills == ref_fills, f"message {m} {row[0, 0]}"
        assert batch.depth(ladder)[0].tolist() == ref.depth(ladder), f"message {m}"
        seen_status.add(status)
        if m % 100 == 0:
            for oid in ref.orders:
                assert K.queue_ahead(batch.state, 0, oid) == ref.queue_ahead(oid)
            assert int(batch.state.side_orders[0].sum()) == len(ref.orders)
            sides = [o[0] for o in ref.orders.values()]
            assert batch.state.side_orders[0].tolist() == [sides.count(1), sides.count(-1)]
        # the dense list of resting orders, in the same (swap-with-last) order
        s = batch.state
        live = s.live_slot[0, : len(ref.orders)]
        assert s.order_id[0, live].tolist() == ref.live
        assert (s.live_pos[0, live] == np.arange(len(live))).all()
    assert 0 in seen_status


def test_rejection_paths_are_exercised():
    """The small-ladder, small-pool and oversized cases above really do reject (so they test
    something)."""
    for seed, ladder, capacity, config, expected in [
        (1, 32, 4096, CASES[1][3], "outside_ladder"),
        (2, 1024, 24, CASES[2][3], "pool_full"),
        (4, 128, 256, CASES[4][3], "invalid"),
    ]:
        batch = BookBatch(1, ladder_levels=ladder, order_capacity=capacity, trade_capacity=4096)
        messages = random_message_stream(1, 1500, seed=seed, config=config)
        if expected == "invalid":
            messages = with_oversized_quantities(messages, seed, share=0.05)
        batch.apply(messages)
        assert batch.status_counts()[expected][0] > 0


def test_trade_buffer_full_rejects_and_keeps_book():
    batch = BookBatch(1, ladder_levels=64, order_capacity=64, trade_capacity=3)
    rest = np.array([[[1, -1, 100 + i, 1, i] for i in range(5)]])
    batch.apply(rest)
    before = batch.depth(8).copy()
    status = batch.apply(np.array([[[2, 1, 0, 5, -1]]]))  # would need 5 fills, room for 3
    assert status[0, 0] == 4
    assert np.array_equal(batch.depth(8), before)
    assert batch.status_counts()["trade_buffer_full"][0] == 1
    assert batch.state.trade_count[0] == 0
