"""The recorder's step and fill frames agree with the simulator's own episode statistics, and
feed fastlob.metrics."""

from __future__ import annotations

import numpy as np

from agents.baselines import FixedSpread, OrderBookQuotes
from fastlob import MarketMakingConfig
from fastlob import metrics as M
from fastlob.recording import record

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
    rate = M.fill_rate(rec.fills, rec.steps).sort("episode")["fill_rate"].to_numpy()
    np.testing.assert_allclose(rate, ep["fill_rate"], atol=1e-12)
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
