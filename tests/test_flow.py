"""Background order flow (Cont-Stoikov-Talreja): the kernel against the plain-Python reference
event by event, and the observed event counts against the configured rates."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from reference_as import XorShift64Star, seed_state
from reference_book import ReferenceBook
from reference_flow import ReferenceFlow
from support import states_equal

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


INFORMED = {
    "uninformed": {},
    "random_walk": {"informed_tilt": 0.5, "fair_sigma": 2.0},
    "ou": {"informed_tilt": 1.0, "fair_sigma": 3.0, "fair_reversion": 0.5},
    "hawkes": {"hawkes_alpha": 1.5, "hawkes_beta": 2.5},
    "hawkes_informed": {
        "hawkes_alpha": 0.8,
        "hawkes_beta": 1.0,
        "informed_tilt": 0.5,
        "fair_sigma": 1.0,
    },
    # anchored flows: the fair value fixed 4 ticks above the book, random-walking, or mean
    # reverting under informed flow, at widths below, near and above the spread
    "anchored_fixed": {"anchor_width": 1.0},
    "anchored_walk": {"anchor_width": 2.5, "fair_sigma": 2.0},
    "anchored_ou_informed": {
        "anchor_width": 0.5,
        "informed_tilt": 1.0,
        "fair_sigma": 3.0,
        "fair_reversion": 0.5,
    },
}


@pytest.mark.parametrize(
    ("seed", "size_max", "levels", "informed"),
    [
        (0, 1, 5, "uninformed"),
        (1, 3, 10, "random_walk"),
        (2, 1, 3, "ou"),
        (3, 2, 5, "uninformed"),
        (4, 1, 5, "hawkes"),
        (5, 2, 10, "hawkes_informed"),
        (6, 1, 5, "anchored_fixed"),
        (7, 2, 10, "anchored_walk"),
        (8, 1, 3, "anchored_ou_informed"),
    ],
)
def test_flow_matches_reference_event_by_event(seed, size_max, levels, informed):
    batch, ref_book = seeded_books(1)
    limit_rates, cancel_rates = F.cst_limit_rates(levels), F.cst_cancel_rates(levels)
    params = F.FlowParams(size_min=1, size_max=size_max, **INFORMED[informed])
    rng = seed_states(seed, np.arange(1))
    last_best = np.array([[MID - 1, MID + 1]], np.int64)
    fair = np.array([[MID + 4.0, float(MID), 0.0]])
    events = np.zeros((1, F.NUM_EVENTS), np.int64)
    integral = np.zeros((1, F.NUM_INTEGRALS))
    ref = ReferenceFlow(
        ref_book,
        XorShift64Star(seed_state(seed, 0)),
        limit_rates,
        cancel_rates,
        params.market_rate,
        1,
        size_max,
        [MID - 1, MID + 1],
        tilt=params.informed_tilt,
        fair_sigma=params.fair_sigma,
        fair_reversion=params.fair_reversion,
        fair=(MID + 4.0, float(MID)),
        hawkes_alpha=params.hawkes_alpha,
        hawkes_beta=params.hawkes_beta,
        anchor_width=params.anchor_width,
    )
    total = 0
    for _ in range(40):  # 40 spans of 0.5 s
        applied = F.advance_flow(
            batch.state,
            0,
            F.FlowModel(params, limit_rates, cancel_rates),
            F.FlowState(rng, last_best, fair, events, integral),
            0.5,
        )
        assert applied == ref.advance(0.5)
        assert fair[0].tolist() == [*ref.fair, ref.excite]
        assert integral[0].tolist() == ref.integral
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


def run_batch(n, spans, span, seed=5, params=None, fair_lead=0.0):
    params = params or F.FlowParams()
    batch, _ = seeded_books(n)
    fair = np.tile(np.array([MID + fair_lead, MID + fair_lead, 0.0]), (n, 1))
    limit_rates, cancel_rates = F.cst_limit_rates(10), F.cst_cancel_rates(10)
    rng = seed_states(seed, np.arange(n))
    last_best = np.tile(np.array([MID - 1, MID + 1], np.int64), (n, 1))
    events = np.zeros((n, F.NUM_EVENTS), np.int64)
    integral = np.zeros((n, F.NUM_INTEGRALS))
    applied = np.zeros(n, np.int64)
    for _ in range(spans):
        F.advance_flow_batch(
            batch.state,
            F.FlowModel(params, limit_rates, cancel_rates),
            F.FlowState(rng, last_best, fair, events, integral),
            span,
            applied,
        )
        batch.drain_trades()
    return batch, events, integral, limit_rates


def test_hawkes_counts_match_their_compensator_and_cluster():
    """Self-exciting market orders: the count still matches its (now random) compensator, the
    rate is well above the Poisson one, and counts per span are overdispersed."""
    n, spans, span = 64, 50, 1.0
    params = F.FlowParams(hawkes_alpha=1.5, hawkes_beta=2.5)  # branching ratio 0.6
    _, events, integral, _ = run_batch(n, spans, span, params=params)
    expected = integral[:, F.INTEGRAL_MARKET].sum()
    observed = events[:, F.EVENT_MARKET].sum()
    assert abs(observed - expected) < 4 * np.sqrt(expected)
    poisson = 2 * F.CST_MARKET_RATE * n * spans * span
    assert observed > 1.8 * poisson  # stationary rate 2 mu / (1 - 0.6) = 2.5x the Poisson rate
    per_book = events[:, F.EVENT_MARKET]
    assert per_book.var() > 2 * per_book.mean()  # Poisson counts would have var == mean


@pytest.mark.parametrize("flow", ["uninformed", "hawkes_informed"])
def test_event_counts_match_configured_rates(flow):
    """Each count minus its compensator is a martingale with variance at most the compensator:
    within 4 sd for limit orders (lambda), market orders (mu), cancellation candidates (theta_max
    per resting order) and accepted cancellations (theta(d) / theta_max per candidate). The last
    two together are the cancellation rate theta(d) of every order."""
    n, spans, span = 64, 50, 1.0
    params = F.FlowParams(**INFORMED[flow])
    _, events, integral, limit_rates = run_batch(n, spans, span, params=params)
    seconds = n * spans * span
    assert integral[:, F.INTEGRAL_LIMIT].sum() == pytest.approx(2 * limit_rates.sum() * seconds)
    if flow == "uninformed":
        assert integral[:, F.INTEGRAL_MARKET].sum() == pytest.approx(
            2 * F.CST_MARKET_RATE * seconds
        )
    for column, compensator in (
        (F.EVENT_LIMIT, F.INTEGRAL_LIMIT),
        (F.EVENT_MARKET, F.INTEGRAL_MARKET),
        (F.EVENT_CANCEL_CANDIDATE, F.INTEGRAL_CANCEL_CANDIDATE),
        (F.EVENT_CANCEL, F.INTEGRAL_CANCEL),
    ):
        expected = integral[:, compensator].sum()
        observed = events[:, column].sum()
        assert expected > 1000
        assert abs(observed - expected) < 4 * np.sqrt(expected), (column, observed, expected)


def mids(batch):
    best = batch.state.best.astype(float)
    return best.mean(axis=1)


def test_informed_flow_leans_towards_the_fair_value():
    """With the fair value 10 ticks above the mid, market orders are mostly buys and the price
    climbs towards it; without informed flow buys and sells balance."""
    n, spans, span = 32, 40, 1.0
    informed = F.FlowParams(informed_tilt=1.0)
    book, events, _, _ = run_batch(n, spans, span, params=informed, fair_lead=10.0)
    buy_share = events[:, F.EVENT_MARKET_BUY].sum() / events[:, F.EVENT_MARKET].sum()
    assert buy_share > 0.6
    assert mids(book).mean() > MID + 4
    plain, events0, _, _ = run_batch(n, spans, span, fair_lead=10.0)
    markets = events0[:, F.EVENT_MARKET].sum()
    buys = events0[:, F.EVENT_MARKET_BUY].sum()
    assert abs(buys - markets / 2) < 4 * np.sqrt(markets / 4)
    assert abs(mids(plain).mean() - MID) < abs(mids(book).mean() - MID)


def test_batched_flow_is_identical_at_any_thread_count():
    results = []
    for threads in (1, numba.config.NUMBA_NUM_THREADS):
        numba.set_num_threads(threads)
        try:
            params = F.FlowParams(**INFORMED["hawkes_informed"])
            results.append(run_batch(130, 5, 0.5, seed=9, params=params, fair_lead=2.0))
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    (a, ea, ia, _), (b, eb, ib, _) = results
    assert np.array_equal(ea, eb) and np.array_equal(ia, ib)
    assert states_equal(a.state, b.state)


def test_cst_rate_curves():
    assert F.cst_limit_rates(7).tolist()[:5] == [1.85, 1.51, 1.09, 0.88, 0.77]
    assert F.cst_limit_rates(7)[6] == pytest.approx(1.92 / 7**0.52)
    assert F.cst_cancel_rates(7).tolist() == [0.71, 0.81, 0.68, 0.56, 0.47, 0.47, 0.47]


def test_flow_never_cancels_the_market_makers_orders():
    """Ids below FIRST_FLOW_ID are the market maker's: with no market orders to fill them, they
    outlive every background order around them however high the cancellation rates."""
    batch, _ = seeded_books(1)  # ids 0 and 1 are the first bid and ask, at MID -/+ 1
    from fastlob._kernels.book import find_slot

    params = F.FlowParams(market_rate=0.0)
    limit_rates, cancel_rates = F.cst_limit_rates(5), np.full(5, 5.0)
    rng = seed_states(3, np.arange(1))
    last_best = np.array([[MID - 1, MID + 1]], np.int64)
    fair = np.zeros((1, 3))
    events = np.zeros((1, F.NUM_EVENTS), np.int64)
    integral = np.zeros((1, F.NUM_INTEGRALS))
    for _ in range(20):
        F.advance_flow(
            batch.state, 0, F.FlowModel(params, limit_rates, cancel_rates),
            F.FlowState(rng, last_best, fair, events, integral), 1.0,
        )  # fmt: skip
    assert events[0, F.EVENT_CANCEL] > 200
    assert find_slot(batch.state, 0, 0) >= 0 and find_slot(batch.state, 0, 1) >= 0
    assert find_slot(batch.state, 0, 2) < 0  # ordinary orders of the seeded book are gone
