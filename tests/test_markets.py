"""The named market files (markets/): each loads as a valid config and has the features its
documentation claims, measured on a simulated half hour with the realism report's statistics."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from fastlob import MarketMakingConfig
from fastlob.data.simulated import simulate_day
from fastlob.realism import market_statistics, push_response

MARKETS = Path(__file__).resolve().parents[1] / "markets"


def statistics(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The spread (ticks) after every message and the mean lots at the touch (ask, bid)."""
    config = MarketMakingConfig.from_file(MARKETS / f"{name}.json")
    day = simulate_day(config, 1800.0, seed=0, levels=10, warmup=config.warmup)
    stats = market_statistics(day, config.lot_size)
    return stats["spread"], stats["depth"][[0, 10]]


def test_the_large_tick_market_has_a_one_tick_spread_and_a_long_queue():
    spread, touch = statistics("large-tick")
    assert (spread == 1).mean() > 0.99
    assert (touch > 30).all()  # a one-lot quote joins behind tens of lots


def test_the_small_tick_market_has_a_wide_spread_and_thin_levels():
    spread, touch = statistics("small-tick")
    assert np.median(spread) >= 3 and (spread == 1).mean() < 0.3
    assert (touch < 2).all()


def test_the_anchored_market_comes_back_after_a_push_and_the_unanchored_one_does_not():
    """markets/anchored.json: no informed flow, and a sweep of the asks (about 2.4 ticks on the
    mid) halves within a couple of seconds; without its anchor the same market keeps it."""
    config = MarketMakingConfig.from_file(MARKETS / "anchored.json")
    assert config.flow.informed_tilt == 0.0 and math.isfinite(config.flow.anchor_width)
    kwargs = {"push_lots": 8, "seconds": 20, "num_envs": 400, "seed": 0, "interval": 0.2}
    anchored = push_response(config, **kwargs)
    assert anchored.decayed and anchored.half_life < 2.0
    assert anchored.displacement[-1] + 3 * anchored.stderr[-1] < 0.25 * anchored.initial
    free = push_response(config.replace(flow={"anchor_width": math.inf}), **kwargs)
    assert not free.decayed
    assert free.displacement[-1] - 3 * free.stderr[-1] > 0.5 * free.initial


def test_the_anchored_market_keeps_the_default_markets_book():
    """Its spread and depth at the touch stay close to the default market's (mean spread 1.36
    ticks, about 2 lots at the touch)."""
    spread, touch = statistics("anchored")
    assert 1.3 < spread.mean() < 1.55
    assert (touch > 1.7).all() and (touch < 2.5).all()


@pytest.mark.parametrize("name", ["large-tick", "small-tick", "anchored"])
def test_the_files_are_exactly_their_configs(name):
    text = (MARKETS / f"{name}.json").read_text()
    assert MarketMakingConfig.from_json(text).to_json() + "\n" == text
