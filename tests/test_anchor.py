"""The anchor of the zero-intelligence flow (``FlowParams.anchor_width``): a push of the book
decays in an anchored market and stays in an unanchored one, the half-life shrinks as the anchor
tightens, a quote held away from the fair value lifts the book only while it rests, an anchored
limit order never crosses the book, and the width is checked and written to market files."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastlob import FlowParams, MarketMakingConfig
from fastlob._kernels import flow as F
from fastlob._kernels.book_layout import ASK, BID, EMPTY_PRICE, MSG_CANCEL, MSG_LIMIT
from fastlob.data.simulated import FlowBooks
from fastlob.env import check_flow_params
from fastlob.realism import push_response

#: the default market without informed flow and with a fixed fair value: nothing anchors it
UNANCHORED = MarketMakingConfig().replace(flow={"informed_tilt": 0.0, "fair_sigma": 0.0})


def anchored(width: float) -> MarketMakingConfig:
    return UNANCHORED.replace(flow={"anchor_width": width})


def test_a_push_of_the_unanchored_market_stays():
    """Sweeping the asks moves the mid up about 2.4 ticks; a minute later the mean displacement
    is still above half of it by more than 3 standard errors, and no half-life is found."""
    r = push_response(UNANCHORED, push_lots=8, seconds=60, num_envs=1000, seed=1)
    assert r.initial > 1.5
    assert r.displacement[-1] - 3 * r.stderr[-1] > 0.5 * r.initial
    assert not r.decayed and math.isnan(r.half_life)


def test_a_push_of_an_anchored_market_decays():
    """With a one-tick anchor the same push falls below a quarter of its size within 10 s
    (beyond 3 standard errors), with a half-life under 2 s."""
    r = push_response(anchored(1.0), push_lots=8, seconds=10, num_envs=400, seed=1)
    assert r.initial > 1.5
    assert r.displacement[-1] + 3 * r.stderr[-1] < 0.25 * r.initial
    assert r.decayed and 0.0 < r.half_life < 2.0


def test_the_half_life_shrinks_as_the_anchor_tightens():
    """A one-tick push decays faster the tighter the anchor: the book wanders freely within
    about the width of the fair value and is pulled back only beyond it."""
    half_lives = [
        push_response(anchored(w), push_lots=4, seconds=20, num_envs=300, seed=2, interval=0.2)
        for w in (1.0, 2.0, 4.0)
    ]
    assert all(r.decayed for r in half_lives)
    one, two, four = (r.half_life for r in half_lives)
    assert one < two < four and 2 * one < four


def test_the_fair_value_still_moves_under_the_anchor():
    """With fair_sigma > 0 the anchored book follows its random-walk fair value: the mid's
    spread over books after a minute is about fair_sigma * sqrt(60) (not a fixed price)."""
    market = FlowBooks(anchored(1.0).replace(flow={"fair_sigma": 1.0}), 400, seed=4)
    market.run(60.0, 1.0)
    fair = market.flow.flow_state[:, F.FAIR_VALUE]
    assert 0.7 * math.sqrt(60) < np.std(fair) < 1.3 * math.sqrt(60)
    assert np.abs(market.mids() - fair).mean() < 2.0  # the book stays around it


def held_quote(config: MarketMakingConfig, num_envs: int = 400, seed: int = 3):
    """Mean mid displacements (ticks, and their standard errors) of books on which a bid of
    the market maker (id 0: the flow never cancels it) rests 3 ticks above the initial price for
    20 s and is then cancelled: at the end of the hold, and 10 s after the release."""
    market = FlowBooks(config, num_envs, seed=seed)
    market.run(config.warmup, 1.0)
    before = market.mids()
    bid = [MSG_LIMIT, 1, config.initial_price + 3, 1000, 0]  # crosses the asks up to it, rests
    market.books.apply(np.tile(np.array([bid]), (num_envs, 1, 1)))
    market.books.drain_trades()
    market.remember_best()
    market.run(20.0, 1.0)
    held = market.mids() - before
    market.books.apply(np.tile(np.array([[MSG_CANCEL, 0, 0, 0, 0]]), (num_envs, 1, 1)))
    market.remember_best()
    market.run(10.0, 1.0)
    after = market.mids() - before
    se = math.sqrt(num_envs)
    return held.mean(), after.mean(), after.std() / se


def test_a_quote_held_away_lifts_the_book_only_while_it_rests():
    """A bid held 3 ticks up lifts the mid in both markets (the asks arrive above it); once it
    is cancelled the anchored book comes back and the unanchored one stays where it was."""
    held, after, se = held_quote(anchored(2.0))
    assert held > 3.0
    assert after + 3 * se < 0.25 * held
    held, after, se = held_quote(UNANCHORED)
    assert held > 3.0
    assert after - 3 * se > 0.75 * held


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    width=st.sampled_from([0.5, 1.0, 1.5, 3.0]),
    lead=st.floats(-8.0, 8.0),
    fair_sigma=st.sampled_from([0.0, 2.0]),
    tilt=st.sampled_from([0.0, 1.0]),
)
def test_an_anchored_flow_never_crosses_the_book(seed, width, lead, fair_sigma, tilt):
    """Event by event: every limit order lands strictly inside the opposite best (so it fills
    nothing) and within the width of the fair value, and the book is never crossed."""
    config = anchored(width).replace(
        flow={"fair_sigma": fair_sigma, "informed_tilt": tilt}, warmup=0.0
    )
    market = FlowBooks(config, 1, seed=seed)
    s, fs, model = market.books.state, market.flow, market.model
    fs.flow_state[0, F.FAIR_VALUE] += lead  # the fair value away from the book
    totals = F.rate_totals(model)
    limits = 0
    for _ in range(10):
        F.begin_span(model, fs, 0, 0.5)
        t = 0.0
        while True:
            t, kind, direction, price, size, slot = F.draw_event(s, 0, model, fs, totals, t, 0.5)
            if t < 0.0:
                break
            fair = fs.flow_state[0, F.FAIR_VALUE]
            bid, ask = s.best[0, BID], s.best[0, ASK]
            filled = s.trade_count[0]
            if kind == F.KIND_LIMIT:
                limits += 1
                if direction == 1:
                    assert ask == EMPTY_PRICE or price < ask
                    assert price <= math.floor(fair + width) - 1
                else:
                    assert bid == EMPTY_PRICE or price > bid
                    assert price >= math.ceil(fair - width) + 1
            F.apply_event(s, 0, fs, kind, direction, price, size, slot)
            if kind == F.KIND_LIMIT:
                assert s.trade_count[0] == filled
            s.trade_count[0] = 0
            bid, ask = s.best[0, BID], s.best[0, ASK]
            assert bid == EMPTY_PRICE or ask == EMPTY_PRICE or bid < ask
    assert limits > 20


def test_a_width_beyond_the_book_is_the_unanchored_flow_bit_for_bit():
    """A finite width that never binds draws and places exactly as no anchor does."""
    runs = []
    for width in (math.inf, 1e6):
        market = FlowBooks(UNANCHORED.replace(flow={"anchor_width": width}), 8, seed=5)
        market.run(30.0, 1.0)
        runs.append((market.books.depth(20), market.flow.events.copy(), market.flow.rng.copy()))
    (a, ea, ra), (b, eb, rb) = runs
    assert np.array_equal(a, b) and np.array_equal(ea, eb) and np.array_equal(ra, rb)


@pytest.mark.parametrize("width", [0.0, -1.0, math.nan, -math.inf, 2e6])
def test_the_anchor_width_is_checked_naming_it(width):
    with pytest.raises(ValueError, match=r"config\.flow\.anchor_width"):
        check_flow_params(FlowParams(anchor_width=width))


@pytest.mark.parametrize("width", ["2", True, None])
def test_the_anchor_width_must_be_a_number(width):
    with pytest.raises(TypeError, match=r"config\.flow\.anchor_width"):
        check_flow_params(FlowParams(anchor_width=width))


@pytest.mark.parametrize("width", [math.inf, 2.5, 1])
def test_the_anchor_width_round_trips_through_a_market_file(width):
    config = anchored(width)
    assert check_flow_params(config.flow).anchor_width == float(width)
    text = config.to_json()
    written = json.loads(text)["flow"]["anchor_width"]
    assert written == ("inf" if math.isinf(width) else float(width))
    assert MarketMakingConfig.from_json(text) == config
    # a file that leaves it out keeps the default market's: no anchor
    assert MarketMakingConfig.from_json('{"flow": {"informed_tilt": 0}}').flow.anchor_width == (
        math.inf
    )


@pytest.mark.parametrize(
    ("changes", "word"),
    [
        ({"push_lots": 0}, "push_lots"),
        ({"seconds": 0.0}, "seconds"),
        ({"interval": 0.0}, "interval"),
        ({"interval": 100.0}, "interval"),
        ({"num_envs": 0}, "num_envs"),
    ],
)
def test_push_response_checks_its_arguments(changes, word):
    kwargs = {"push_lots": 4, "seconds": 10.0, "num_envs": 2, "seed": 0, **changes}
    with pytest.raises(ValueError, match=word):
        push_response(UNANCHORED, **kwargs)


def test_push_response_needs_two_books_for_its_standard_error():
    # one book gave a stderr of NaN at every time
    with pytest.raises(ValueError, match="num_envs"):
        push_response(UNANCHORED, push_lots=4, seconds=2.0, num_envs=1, seed=0)


def test_a_push_larger_than_any_book_sweeps_its_asks_and_names_no_unasked_argument():
    # push_lots + 64 was the trade buffer: beyond 2**24 lots the error named trade_capacity
    r = push_response(UNANCHORED, push_lots=10**8, seconds=1.0, num_envs=2, seed=0)
    assert r.emptied == 2 and np.isfinite(r.stderr).all()


def test_push_response_refuses_a_record_beyond_memory_before_running_the_flow():
    with pytest.raises(ValueError, match=r"seconds / interval"):
        push_response(UNANCHORED, push_lots=4, seconds=2_500_000.0, num_envs=4, interval=1e-6)


@pytest.mark.parametrize(
    ("seconds", "span", "word"),
    [(-1.0, None, "seconds"), (math.nan, None, "seconds"), (1.0, 0.0, "span"),
     (1.0, -1.0, "span"), (1.0, math.nan, "span")],
)  # fmt: skip
def test_flow_books_run_checks_its_times(seconds, span, word):
    # span 0 looped forever; a negative or NaN time ran nothing, silently
    books = FlowBooks(UNANCHORED, 2, seed=0)
    with pytest.raises(ValueError, match=word):
        books.run(seconds, span)


def test_a_push_the_trade_buffer_cannot_hold_is_an_error_and_leaves_the_books():
    # 150 one-lot orders on each of 10 levels: a 1400-lot push fills 1400 orders, more than the
    # 1024 fills of the buffer; the books refused it and push returned as if it had happened
    deep = UNANCHORED.replace(initial_depth=150, order_capacity=4096)
    books = FlowBooks(deep, 2, seed=0)
    before = books.books.depth(10).copy()
    with pytest.raises(ValueError, match=r"lots = 1400.*trade buffer \(1024 fills"):
        books.push(1400)
    np.testing.assert_array_equal(books.books.depth(10), before)
    assert books.push(1000) == 0  # within the buffer it sweeps as before
