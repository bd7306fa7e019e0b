"""The recorder's step and fill frames agree with the simulator's own episode statistics, and
feed fastlob.metrics."""

from __future__ import annotations

import numpy as np
import polars as pl

from fastlob import MarketMakingConfig
from fastlob import metrics as M
from fastlob.recording import record
from fastlob_agents.baselines import FixedSpread, OrderBookQuotes

CONFIG = MarketMakingConfig(episode_steps=40, warmup=5.0, markout_steps=3)
TICK = CONFIG.tick_size


class QuoteThenStop:
    """Quotes at the touch, then withdraws both quotes for the last ``markout_steps + 1`` steps,
    so that every fill's markout horizon falls inside the episode (none is flushed at the end)."""

    def __init__(self):
        self.inner = OrderBookQuotes.for_config(FixedSpread(half_spread=0.5), CONFIG, 2.0)

    def act(self, obs):
        actions = self.inner.act(obs)
        steps_left = np.rint(obs[:, 30] * CONFIG.episode_steps)
        actions[steps_left <= CONFIG.markout_steps + 1, 2:4] = 0.0
        return actions


def test_recording_matches_the_simulators_statistics():
    rec = record(QuoteThenStop(), CONFIG, episodes=16, seed=4)
    ep = rec.episode
    assert rec.steps.height == 16 * 40 and rec.fills.height > 50
    final = M.episode_pnl(rec.steps).sort("episode")["pnl"].to_numpy()
    np.testing.assert_array_equal(final, ep["pnl"])
    lots = np.zeros(16)
    np.add.at(lots, rec.fills["episode"].to_numpy(), rec.fills["qty"].to_numpy())
    np.testing.assert_array_equal(lots, ep["volume"])
    rate = M.fill_ratio(rec.fills, rec.steps).sort("episode")["fill_ratio"].to_numpy()
    np.testing.assert_allclose(rate, ep["fill_ratio"], atol=1e-12)
    touch = M.time_at_touch(rec.steps).sort("episode")["time_at_touch"].to_numpy()
    np.testing.assert_allclose(touch, ep["touch_fraction"], atol=1e-12)
    traded = np.unique(rec.fills["episode"].to_numpy())
    captured = M.spread_captured(rec.fills).sort("episode")["spread_captured"].to_numpy()
    np.testing.assert_allclose(captured / TICK, ep["spread_captured"][traded], atol=1e-9)
    # the env marks a fill at the end of the step markout_steps after its own, as
    # fastlob.metrics.markouts does; here no fill is left to the end-of-episode flush
    assert rec.fills["step"].max() <= CONFIG.episode_steps - CONFIG.markout_steps
    marked = M.markouts(rec.fills, rec.steps, horizons=(CONFIG.markout_steps,)).sort("episode")
    assert marked["fills"].sum() == rec.fills.height
    np.testing.assert_allclose(marked["markout"].to_numpy() / TICK, ep["markout"][traded])
    np.testing.assert_allclose(marked["adverse_rate"].to_numpy(), ep["adverse_rate"][traded])


def test_recorded_quote_prices_are_the_simulators():
    """``quote_spread`` and the sizes are computed outside the kernel; where both quotes rest
    with the size asked for, they must agree with the prices the simulator gave them."""
    from fastlob import MarketMakingVectorEnv
    from fastlob._kernels import book_layout as _mm
    from fastlob.profiling import random_actions

    env = MarketMakingVectorEnv(32, config=CONFIG, seed=2)
    env.reset(seed=2)
    s = env.state
    checked = 0
    for actions in random_actions(env, 30, seed=3):
        quotes = env.quotes_for(actions)  # what recording uses, from the mids before the step
        env.step(actions)
        live = (s.quote_slot != _mm.NO_SLOT).all(axis=1)
        asked = (s.quote_size[:, _mm.BID] == quotes["bid_size"]) & (
            s.quote_size[:, _mm.ASK] == quotes["ask_size"]
        )
        fresh = live & asked & (s.step > 1)
        np.testing.assert_array_equal(s.quote_price[fresh, _mm.BID], quotes["bid_price"][fresh])
        np.testing.assert_array_equal(s.quote_price[fresh, _mm.ASK], quotes["ask_price"][fresh])
        checked += fresh.sum()
    assert checked > 200


def test_recording_has_the_heatmap_columns():
    rec = record(QuoteThenStop(), CONFIG, episodes=4, seed=5)
    for column in ("quote_spread", "bid_size", "ask_size", "bid_left", "ask_left"):
        assert column in rec.steps.columns
    both = rec.steps.filter((pl.col("bid_size") > 0) & (pl.col("ask_size") > 0))
    assert both["quote_spread"].null_count() == 0 and both["quote_spread"].min() >= 1
    one_sided = rec.steps.filter(pl.col("bid_size") == 0)
    assert one_sided.height > 0 and one_sided["quote_spread"].null_count() == one_sided.height
