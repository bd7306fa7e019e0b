"""Background order flow (Cont-Stoikov-Talreja): the kernel against the plain-Python reference
event by event, and the observed event counts against the configured rates."""

from __future__ import annotations

import numpy as np
import pytest
from reference_as import XorShift64Star, seed_state
from reference_book import ReferenceBook
from reference_flow import ReferenceFlow

from fastlob import BookBatch
from fastlob._kernels import flow as F
from fastlob._kernels.rng import seed_states

MID = 10_000


def seeded_books(num_books, orders_per_level=2, levels=5):
    """Books with `levels` levels of `orders_per_level` one-lot orders each side of MID."""
    batch = BookBatch(num_books, ladder_levels=512, order_capacity=1024, trade_capacity=1 << 16)
    rows = []
    for d in range(1, levels + 1):
        for _ in range(orders_per_level):
            rows.append([1, 1, MID - d, 1, -1])
            rows.append([1, -1, MID + d, 1, -1])
    batch.apply(np.tile(np.array(rows, np.int64), (num_books, 1, 1)))
    ref = ReferenceBook(ladder_levels=512, order_capacity=1024)
    for _, side, price, qty, _ in rows:
        ref.limit(side, price, qty)
    return batch, ref


@pytest.mark.parametrize(("seed", "size_max", "levels"), [(0, 1, 5), (1, 3, 10), (2, 1, 3)])
def test_flow_matches_reference_event_by_event(seed, size_max, levels):
    batch, ref_book = seeded_books(1)
    limit_rates, cancel_rates = F.cst_limit_rates(levels), F.cst_cancel_rates(levels)
    params = F.FlowParams(size_min=1, size_max=size_max)
    rng = seed_states(seed, np.arange(1))
    last_best = np.array([[MID - 1, MID + 1]], np.int64)
    events = np.zeros((1, F.NUM_EVENTS), np.int64)
    ref = ReferenceFlow(
        ref_book,
        XorShift64Star(seed_state(seed, 0)),
        limit_rates,
        cancel_rates,
        params.market_rate,
        1,
        size_max,
        [MID - 1, MID + 1],
    )
    total = 0
    for _ in range(40):  # 40 spans of 0.5 s
        applied = F.advance_flow(
            batch.state, 0, rng, params, limit_rates, cancel_rates, 0.5, last_best, events
        )
        assert applied == ref.advance(0.5)
        total += applied
        trades = batch.drain_trades()
        fills = list(
            zip(trades.maker_id.tolist(), trades.price.tolist(), trades.qty.tolist(), strict=True)
        )
        assert fills == ref.fills
        ref.fills = []
        assert batch.depth(64)[0].tolist() == ref_book.depth(64)
        assert events[0].tolist() == ref.events
        assert last_best[0].tolist() == ref.last_best
        assert batch.state.side_orders[0].tolist() == [ref.side_orders(0), ref.side_orders(1)]
    assert total > 100 and events[0, F.EVENT_CANCEL] > 0 and events[0, F.EVENT_MARKET] > 0


def test_event_counts_match_configured_rates():
    n, spans, span = 64, 50, 1.0
    batch, _ = seeded_books(n)
    limit_rates, cancel_rates = F.cst_limit_rates(10), F.cst_cancel_rates(10)
    params = F.FlowParams()
    rng = seed_states(5, np.arange(n))
    last_best = np.tile(np.array([MID - 1, MID + 1], np.int64), (n, 1))
    events = np.zeros((n, F.NUM_EVENTS), np.int64)
    for _ in range(spans):
        for b in range(n):
            F.advance_flow(
                batch.state, b, rng, params, limit_rates, cancel_rates, span, last_best, events
            )
        batch.drain_trades()
    seconds = n * spans * span
    # limit and market arrivals are Poisson with constant rates: counts within 4 sd
    for column, rate in (
        (F.EVENT_LIMIT, 2 * limit_rates.sum()),
        (F.EVENT_MARKET, 2 * params.market_rate),
    ):
        expected = rate * seconds
        assert abs(events[:, column].sum() - expected) < 4 * np.sqrt(expected)
    assert events[:, F.EVENT_CANCEL].sum() > 0


def test_cst_rate_curves():
    assert F.cst_limit_rates(7).tolist()[:5] == [1.85, 1.51, 1.09, 0.88, 0.77]
    assert F.cst_limit_rates(7)[6] == pytest.approx(1.92 / 7**0.52)
    assert F.cst_cancel_rates(7).tolist() == [0.71, 0.81, 0.68, 0.56, 0.47, 0.47, 0.47]
