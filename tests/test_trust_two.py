"""Trust, round two: the newer surfaces (market files, study files, the env's boundary) refuse
bad input with one line naming it, in bounded time, before anything changes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from support import no_hang, one_line_error

from fastlob import MarketMakingConfig, MarketMakingEnv, MarketMakingVectorEnv
from fastlob._kernels import mm_drivers
from fastlob.cli import main

SHORT = MarketMakingConfig(episode_steps=6, warmup=1.0)


# ---------------------------------------------------------------------------------------------
# actions of any real dtype reach the one compiled kernel version
# ---------------------------------------------------------------------------------------------


def _steps(actions, rounds=4):
    env = MarketMakingVectorEnv(3, config=SHORT, seed=2)
    env.reset(seed=2)
    out = []
    for _ in range(rounds):
        obs, reward, *_ = env.step(actions)
        out.append((obs.copy(), reward.copy(), env.applied_actions.copy()))
    return out, env.action_clip_count.copy()


def test_float64_int_and_list_actions_play_as_float32_without_a_second_kernel_version():
    float32 = np.tile(np.float32([1.5, 2.0, 2, 1, 0.25]), (3, 1))
    expected, clips = _steps(float32)
    compiled = len(mm_drivers.step_envs.signatures)
    for same in (float32.astype(np.float64), float32.tolist(), float32.astype(np.float16)):
        got, _ = _steps(same)
        for (o1, r1, a1), (o2, r2, a2) in zip(expected, got, strict=True):
            np.testing.assert_array_equal(o1, o2)
            np.testing.assert_array_equal(r1, r2)
            np.testing.assert_array_equal(a1, a2)
    ints = np.tile(np.int64([1, 2, 2, 1, 0]), (3, 1))
    np.testing.assert_array_equal(_steps(ints)[0][0][2], ints.astype(np.float32))
    assert len(mm_drivers.step_envs.signatures) == compiled  # no float64 version compiled
    # a float64 beyond float32's range is clipped and counted like any other, not made inf
    huge = np.tile(np.float64([1e300, -1e300, 1, 1, 0]), (3, 1))
    got, huge_clips = _steps(huge, rounds=1)
    high = MarketMakingVectorEnv(1, config=SHORT).single_action_space.high
    np.testing.assert_array_equal(got[0][2][:, 0], high[0])
    assert (huge_clips > clips).all()
    single = MarketMakingEnv(SHORT)
    single.reset(seed=1)
    single.step([1.0, 1.0, 1, 1, 0])  # a plain list of floats
    assert len(mm_drivers.step_envs.signatures) == compiled


def test_non_finite_float64_actions_are_still_refused_naming_the_entry():
    env = MarketMakingVectorEnv(2, config=SHORT)
    env.reset()
    actions = np.ones((2, 5))
    actions[1, 3] = np.inf
    with pytest.raises(ValueError, match=r"actions\[1, 3\] is inf"):
        env.step(actions)


# ---------------------------------------------------------------------------------------------
# rates that would make a step endless
# ---------------------------------------------------------------------------------------------


def _market_file(tmp_path, **fields):
    path = tmp_path / "market.json"
    path.write_text(json.dumps(fields))
    return path


@pytest.mark.parametrize("field", ["limit_rates", "cancel_rates"])
def test_a_huge_per_level_rate_is_refused_by_simulate_naming_the_field(tmp_path, capsys, field):
    rates = [1.0] * 10
    rates[0] = 1e18
    path = _market_file(tmp_path, **{field: rates})
    out = tmp_path / "day"
    with no_hang(30):
        code = main(["simulate", "--env-config", str(path), "--seconds", "10", "--lobster-out",
                     str(out)])  # fmt: skip
    assert code == 2
    one_line_error(capsys, f"config.{field}", "1e+06")
    assert not out.exists()
    with pytest.raises(ValueError, match=f"config.{field}"):
        MarketMakingConfig.from_file(path)


def test_rates_each_in_range_but_endless_together_are_refused_naming_the_span():
    config = MarketMakingConfig(limit_rates=(1e6,) * 10, dt=100.0, warmup=1.0)
    with pytest.raises(ValueError, match=r"config\.dt = 100 s .* more than the 1e\+08"):
        MarketMakingVectorEnv(1, config=config)
    config = MarketMakingConfig(cancel_rates=(1e4,) * 10, order_capacity=1 << 14, warmup=1e3)
    with pytest.raises(ValueError, match=r"config\.warmup = 1000 s"):
        MarketMakingVectorEnv(1, config=config)
    # the markets the project ships are far below the bound
    for market in Path(__file__).parent.parent.joinpath("markets").glob("*.json"):
        MarketMakingVectorEnv(1, config=MarketMakingConfig.from_file(market))


def test_a_simulated_day_too_long_for_its_rates_is_refused_naming_seconds(tmp_path, capsys):
    path = _market_file(tmp_path, limit_rates=[1e5] * 10)
    out = tmp_path / "day"
    with no_hang(30):
        code = main(["simulate", "--env-config", str(path), "--seconds", "1000", "--lobster-out",
                     str(out)])  # fmt: skip
    assert code == 2
    one_line_error(capsys, "seconds + warmup = 1000 s")
    assert not out.exists()
