"""The named market files (markets/): each loads as a valid config and has the features its
documentation claims, measured on a simulated half hour with the realism report's statistics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fastlob import MarketMakingConfig
from fastlob.data.simulated import simulate_day
from fastlob.realism import market_statistics

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


@pytest.mark.parametrize("name", ["large-tick", "small-tick"])
def test_the_files_are_exactly_their_configs(name):
    text = (MARKETS / f"{name}.json").read_text()
    assert MarketMakingConfig.from_json(text).to_json() + "\n" == text
