"""The quote update is one atomic change of both sides: its outcome does not depend on which
side is processed first, it is the mirror image of the mirrored update, the two quotes never
trade with or slide against each other, and a symmetric policy does not move the price."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from reference_as import seed_state
from reference_mm import METRICS, ReferenceMM

from fastlob import FlowParams, MarketMakingConfig, MarketMakingVectorEnv
from fastlob.env import check_config

BID, ASK = 0, 1

MARKET = MarketMakingConfig(
    dt=0.5,
    latency=0.1,
    episode_steps=400,
    warmup=3.0,
    flow_levels=5,
    ladder_levels=64,
    order_capacity=96,
    max_inventory=6,
    max_quote_size=4,
    max_offset=4.0,
    taker_fee=0.0005,
    flow=FlowParams(size_max=3),
)


def reference(config, seed=3):
    params, model, book = check_config(config)
    ref = ReferenceMM(
        params, model.params, model.limit_rates, model.cancel_rates, book, seed_state(seed, 0)
    )
    ref.reset()
    return ref


def random_update(rng, config):
    """Quote prices around the mid (often crossing each other and the book) and sizes."""
    m = config.max_offset
    offsets = rng.uniform(-m, m, size=2)
    offsets = np.where(rng.random(2) < 0.5, np.round(offsets), offsets)
    sizes = rng.integers(0, config.max_quote_size + 1, size=2)
    return offsets, sizes


def states(config, count, seed):
    """``count`` reference envs in varied states (quotes live, inventory held), and the update
    to apply to each."""
    rng = np.random.default_rng(seed)
    ref = reference(config, seed)
    out = []
    while len(out) < count:
        offsets, sizes = random_update(rng, config)
        action = np.float32([offsets[0], offsets[1], sizes[0], sizes[1], 0.0])
        ref.step(np.clip(action, -config.max_offset, config.max_offset))
        if ref.prev_done:
            ref.step(action)  # the autoreset step
            continue
        half = 0.5 * ref.others_mid2()
        bid = max(int(np.floor(half - offsets[0])), 1)
        ask = max(int(np.ceil(half + offsets[1])), 1)
        out.append((copy.deepcopy(ref), bid, ask, int(sizes[0]), int(sizes[1])))
    return out


def levels(book):
    """Every level as its FIFO queue of (id, lots): the book, whatever its order list."""
    return {
        key: [(oid, book.orders[oid][2]) for oid in ids] for key, ids in sorted(book.levels.items())
    }


@pytest.mark.parametrize("post_only", [False, True])
def test_the_update_does_not_depend_on_the_side_processed_first(post_only):
    config = MARKET.replace(post_only=post_only)
    crossed = 0
    for ref, bid, ask, bid_size, ask_size in states(config, 300, seed=1 + post_only):
        other = copy.deepcopy(ref)
        ref.place_quotes(bid, ask, bid_size, ask_size, ask_first=False)
        other.place_quotes(bid, ask, bid_size, ask_size, ask_first=True)
        assert levels(ref.book) == levels(other.book)
        assert ref.quote == other.quote and ref.inventory == other.inventory
        assert ref.cash == pytest.approx(other.cash, rel=1e-12, abs=1e-9)
        for key in METRICS:
            assert ref.m[key] == pytest.approx(other.m[key], rel=1e-12, abs=1e-9), key
        crossed += bid >= ask and bid_size > 0 and ask_size > 0
    assert crossed > 20  # self-crossing pairs were among the updates


def mirrored(ref, center):
    """The reference env reflected about ``center``: price p -> center - p, bids <-> asks,
    the quotes' ids swapped, the inventory negated."""
    out = copy.deepcopy(ref)
    swap = {BID: ASK, ASK: BID}
    book = out.book
    own = {0: 1, 1: 0}
    book.orders = {
        own.get(oid, oid): [-sign, center - price, qty]
        for oid, (sign, price, qty) in ref.book.orders.items()
    }
    book.levels = {
        (-sign, center - price): [own.get(oid, oid) for oid in ids]
        for (sign, price), ids in ref.book.levels.items()
    }
    book.live = [own.get(oid, oid) for oid in ref.book.live]
    out.flow.last_best = [center - ref.flow.last_best[ASK], center - ref.flow.last_best[BID]]
    out.quote = [
        None if q is None else (center - q[0], q[1]) for q in (ref.quote[ASK], ref.quote[BID])
    ]
    out.inventory = -ref.inventory
    for name in ("rested", "hit"):
        setattr(out, name, [getattr(ref, name)[swap[BID]], getattr(ref, name)[swap[ASK]]])
    return out


def test_the_mirrored_update_gives_the_mirrored_book():
    center = 2 * MARKET.initial_price
    for post_only in (False, True):
        config = MARKET.replace(post_only=post_only)
        for ref, bid, ask, bid_size, ask_size in states(config, 200, seed=7 + post_only):
            mirror = mirrored(ref, center)
            ref.place_quotes(bid, ask, bid_size, ask_size)
            mirror.place_quotes(center - ask, center - bid, ask_size, bid_size)
            assert levels(mirrored(ref, center).book) == levels(mirror.book)
            assert mirror.inventory == -ref.inventory
            for key in ("self_cross", "post_only_repriced", "reduced", "quoted", "filled"):
                assert ref.m[key] == mirror.m[key], key


def test_a_self_crossing_pair_is_netted_and_never_trades_with_itself():
    for ref, bid, ask, bid_size, ask_size in states(MARKET.replace(post_only=True), 300, seed=4):
        fills = ref.m["fills"]
        ref.place_quotes(bid, ask, bid_size, ask_size)
        assert ref.m["fills"] == fills  # post-only: nothing trades on arrival
        live = [s for s in (BID, ASK) if ref.live(s)]
        if len(live) == 2:
            assert ref.book.orders[BID][1] < ref.book.orders[ASK][1]
        others = [ref.others_best(BID), ref.others_best(ASK)]
        if ref.live(BID) and others[ASK] is not None:
            assert ref.book.orders[BID][1] < others[ASK]
        if ref.live(ASK) and others[BID] is not None:
            assert ref.book.orders[ASK][1] > others[BID]


@pytest.mark.parametrize(
    ("offset", "name"), [(-1.0, "through the mid"), (-0.5, "through the mid"), (0.0, "at the mid")]
)
def test_a_symmetric_policy_does_not_move_the_mid(offset, name):
    """Both sides quoted the same distance through (or at) the mid, post-only, no informed flow,
    no anchor: over 512 envs x 200 steps the mean mid change is within 3 standard errors of 0
    (the bid placed first and slid against the market maker's own ask moved it by +9 ticks)."""
    config = MarketMakingConfig(
        episode_steps=200, post_only=True, flow=FlowParams(informed_tilt=0.0, fair_sigma=0.0)
    )
    env = MarketMakingVectorEnv(512, config=config, seed=21)
    env.reset()
    start = env.mid.copy()
    action = np.tile(np.float32([offset, offset, 2, 2, 0]), (512, 1))
    for _ in range(199):  # the 200th step ends the episode (the mids then reset)
        env.step(action)
    move = (env.mid - start) / config.tick_size
    standard_error = move.std(ddof=1) / np.sqrt(move.size)
    assert abs(move.mean()) < 3 * standard_error, (name, move.mean(), standard_error)
    assert env.running_metric("maker_qty").sum() > 1000  # the policy quotes and trades
