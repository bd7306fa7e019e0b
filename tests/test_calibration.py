"""Calibration of A, k and sigma from the order-book simulator; the classical baselines on it."""

from __future__ import annotations

import numpy as np
import pytest

from fastlob import MarketMakingConfig, MarketMakingVectorEnv
from fastlob.calibration import (
    calibrate,
    fit_exponential_intensity,
    intensity_from_fill_probability,
)
from fastlob_agents.baselines import OrderBookQuotes, order_book_baselines

CONFIG = MarketMakingConfig(episode_steps=200, warmup=5.0)


def test_estimators_recover_known_parameters():
    offsets = np.array([0.5, 1.0, 2.0, 3.0])
    rates = 3.0 * np.exp(-1.2 * offsets)
    assert fit_exponential_intensity(offsets, rates) == pytest.approx((3.0, 1.2))
    # per-step fill frequencies of a Poisson clock with rate 0.8 over 0.95 s
    rng = np.random.default_rng(0)
    hits = rng.exponential(1 / 0.8, size=200_000) < 0.95
    estimate = intensity_from_fill_probability(hits.mean(), 0.95)
    assert estimate == pytest.approx(0.8, rel=0.01)
    with pytest.raises(ValueError, match="two offsets"):
        fit_exponential_intensity(offsets, np.array([1.0, 0, 0, 0]))


def test_calibration_on_the_order_book_env():
    cal = calibrate(CONFIG, num_envs=64, steps=50, seed=1)
    assert cal.intensity > 0 and cal.decay > 0 and cal.sigma > 0
    # closer quotes fill more often, and the fitted curve follows the measured one
    assert np.all(np.diff(cal.fill_probability) <= 0.02)
    assert cal.fill_probability[0] > 5 * cal.fill_probability[-1]
    fitted = cal.intensity * np.exp(-cal.decay * cal.offsets)
    close = cal.rates > 0.01
    assert np.all(np.abs(np.log(fitted[close] / cal.rates[close])) < 1.0)
    # the intensity is the market's: measured beyond a narrower action bound too
    narrow = calibrate(CONFIG.replace(max_offset=2.0), num_envs=64, steps=50, seed=1)
    np.testing.assert_array_equal(narrow.offsets, cal.offsets)
    assert narrow.fill_probability[-1] < narrow.fill_probability[0]
    with pytest.raises(ValueError, match="max_offset"):  # the book's ladder cannot hold it
        calibrate(CONFIG, offsets=(1.0, 50.0))


def test_baselines_run_on_the_order_book_env_and_inventory_control_works():
    """AS and GLFT skew their quotes against inventory: over the same episodes their inventory
    swings less than a fixed spread of similar width."""
    cal = calibrate(CONFIG, num_envs=64, steps=40, seed=2)
    policies = order_book_baselines(CONFIG, cal, gamma=0.05, half_spread=1.0)
    inventory_std = {}
    for name, policy in policies.items():
        env = MarketMakingVectorEnv(64, config=CONFIG, seed=7)
        obs, _ = env.reset()
        for _ in range(CONFIG.episode_steps):
            actions = policy.act(obs)
            assert actions.shape == (64, 5) and actions.dtype == np.float32
            obs, _, _, _, info = env.step(actions)
        assert "episode" in info and info["episode"]["fills"].sum() > 100
        inventory_std[name] = float(np.mean(info["episode"]["inventory_std"]))
    assert inventory_std["glft"] < inventory_std["fixed_spread"]


def test_order_book_quotes_scale_observations():
    from fastlob_agents.baselines import FixedSpread, GueantLehalleFernandezTapia

    policy = OrderBookQuotes.for_config(FixedSpread(half_spread=20.0), CONFIG, quote_size=2.0)
    obs = np.zeros((3, 31), np.float32)
    actions = policy.act(obs)
    assert np.all(actions[:, :2] == CONFIG.max_offset) and np.all(actions[:, 2:4] == 2.0)
    glft = OrderBookQuotes.for_config(GueantLehalleFernandezTapia(k=1.0, intensity=1.0), CONFIG)
    obs[:, 0] = [-0.5, 0.0, 0.5]  # inventory -10, 0, +10 lots
    actions = glft.act(obs)
    assert actions[0, 0] < actions[1, 0] < actions[2, 0]  # the longer, the further the bid
    assert actions[0, 1] > actions[1, 1] > actions[2, 1]  # the longer, the closer the ask
