"""The Avellaneda-Stoikov vector env: kernel vs plain-Python reference, the Gymnasium contract,
determinism, bad input, and the paper's tables within sampling error."""

from __future__ import annotations

import gymnasium
import numba
import numpy as np
import pytest
import torch
from reference_as import ReferenceASEnv, XorShift64Star, seed_state
from support import states_equal

import fastlob
from fastlob import ASParams, AvellanedaStoikovVectorEnv
from fastlob._kernels.rng import seed_states, uniform
from fastlob_agents.as2008 import PUBLISHED, run_as2008
from fastlob_agents.baselines import (
    AvellanedaStoikov,
    FixedSpread,
    GueantLehalleFernandezTapia,
    RandomQuotes,
)

SHORT = ASParams(horizon=0.05, dt=0.005, inventory_penalty=0.01)  # 10-step episodes


def test_generator_matches_reference_bit_for_bit():
    states = seed_states(7, np.arange(5))
    for n in range(5):
        assert int(states[n]) == seed_state(7, n)
        ref = XorShift64Star(seed_state(7, n))
        for _ in range(50):
            assert uniform(states, n) == ref.uniform()


def test_generator_uniforms_look_uniform():
    states = seed_states(3, np.arange(1))
    draws = np.array([uniform(states, 0) for _ in range(20000)])
    counts = np.histogram(draws, bins=10, range=(0, 1))[0]
    chi2 = ((counts - 2000) ** 2 / 2000).sum()
    assert chi2 < 35  # 9 degrees of freedom: p ~ 1e-4


def random_actions(rng, n):
    # offsets from well inside the mid (prob capped at 1) to far out, and beyond the space
    return rng.uniform(-3.0, 8.0, size=(n, 2)).astype(np.float32)


def test_kernel_matches_reference_step_by_step_through_autoresets():
    n = 6
    env = AvellanedaStoikovVectorEnv(num_envs=n, params=SHORT, seed=11, max_offset=6.0)
    refs = [ReferenceASEnv(env.params, 11, i) for i in range(n)]
    obs, _ = env.reset()
    assert np.array_equal(obs, np.array([r.obs() for r in refs], np.float32))
    rng = np.random.default_rng(0)
    for _ in range(35):  # three episodes and a half
        actions = random_actions(rng, n)
        obs, reward, terminated, truncated, info = env.step(actions)
        clipped = np.clip(actions, -6.0, 6.0)
        for i, ref in enumerate(refs):
            r_obs, r_reward, r_done, r_pnl = ref.step(float(clipped[i, 0]), float(clipped[i, 1]))
            assert obs[i].tolist() == np.array(r_obs, np.float32).tolist()
            assert reward[i] == np.float32(r_reward)
            # the horizon terminates (time is observed); nothing truncates
            assert terminated[i] == r_done and not truncated[i]
            assert info["pnl"][i] == r_pnl
    assert env.action_clip_count.sum() > 0
    assert info["capped_probability"].sum() > 0


def test_capped_counts_quotes_whose_fill_probability_exceeds_one_and_zero_intensity_never_fills():
    # the kernel draws a fill as an exponential above k delta - log(A dt); the count of capped
    # probabilities is checked against A dt e^(-k delta) > 1 computed here, the plain way
    n, p = 64, SHORT
    env = AvellanedaStoikovVectorEnv(num_envs=n, params=p, seed=3, max_offset=6.0)
    env.reset()
    rng = np.random.default_rng(1)
    expected = np.zeros(n, np.int64)
    for _ in range(9):  # one episode, no autoreset step
        actions = random_actions(rng, n)
        env.step(actions)
        offsets = np.clip(actions, -6.0, 6.0).astype(np.float64)
        expected += (p.intensity * p.dt * np.exp(-p.decay * offsets) > 1.0).sum(axis=1)
    assert expected.sum() > 0
    assert np.array_equal(env.state.capped_probability, expected)

    silent = AvellanedaStoikovVectorEnv(
        num_envs=8, params=p._replace(intensity=0.0), seed=3, max_offset=6.0
    )
    silent.reset()
    for _ in range(9):  # quotes 6 through the mid: filled for sure, were A > 0
        silent.step(np.full((8, 2), -6.0, np.float32))
    assert silent.state.episode_fills.sum() == 0
    assert silent.state.capped_probability.sum() == 0


def test_autoreset_contract_step_by_step():
    env = AvellanedaStoikovVectorEnv(num_envs=3, params=SHORT, seed=0)
    obs, info = env.reset(seed=5)
    assert info == {}
    actions = np.ones((3, 2), np.float32)
    for t in range(1, 11):
        obs, reward, terminated, truncated, info = env.step(actions)
        assert terminated.all() == (t == 10) and not truncated.any()
        assert np.allclose(obs[:, 2], SHORT.horizon - t * SHORT.dt, atol=1e-6)
    assert set(info["episode"]) >= {"r", "l", "pnl", "inventory", "fills", "mean_spread"}
    assert info["_episode"].all() and (info["episode"]["l"] == 10).all()
    assert np.allclose(info["episode"]["mean_spread"], 2.0)
    # the step after the end: actions ignored, reward 0, a fresh episode starts
    obs, reward, terminated, truncated, info = env.step(np.full((3, 2), 50.0, np.float32))
    assert (reward == 0).all() and not truncated.any() and not terminated.any()
    assert np.allclose(obs, [[100.0, 0.0, SHORT.horizon]] * 3)
    assert "episode" not in info


def test_episode_return_is_sum_of_rewards_and_pnl_identity():
    env = AvellanedaStoikovVectorEnv(num_envs=4, params=SHORT, seed=2)
    env.reset()
    total = np.zeros(4)
    for _ in range(10):
        _obs, reward, _, _, info = env.step(np.full((4, 2), 0.5, np.float32))
        total += reward
        assert np.allclose(info["pnl"], info["cash"] + info["inventory"] * info["mid"])
    assert np.allclose(info["episode"]["r"], total, rtol=1e-5, atol=1e-4)


def test_reset_mask_resets_only_masked_envs():
    env = AvellanedaStoikovVectorEnv(num_envs=4, params=SHORT, seed=1)
    env.reset()
    for _ in range(3):
        obs, *_ = env.step(np.full((4, 2), -1.0, np.float32))  # always filled: inventory moves
    before = obs.copy()
    mask = np.array([True, False, True, False])
    obs, _ = env.reset(options={"reset_mask": mask})
    assert np.allclose(obs[mask], [100.0, 0.0, SHORT.horizon])
    assert np.array_equal(obs[~mask], before[~mask])
    with pytest.raises(ValueError, match="reset_mask"):
        env.reset(options={"reset_mask": np.ones(3, bool)})


def rollout(seed, num_envs=64, steps=25):
    env = AvellanedaStoikovVectorEnv(num_envs=num_envs, params=SHORT, seed=seed)
    env.reset()
    rng = np.random.default_rng(1)
    out = []
    for _ in range(steps):
        obs, reward, terminated, _, info = env.step(random_actions(rng, num_envs))
        out.append((obs.copy(), reward.copy(), terminated.copy(), info["pnl"].copy()))
    return out


def test_same_seed_same_bits_at_any_thread_count_and_other_seed_differs():
    results = []
    for threads in (1, numba.config.NUMBA_NUM_THREADS):
        numba.set_num_threads(threads)
        try:
            results.append(rollout(seed=9))
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    for a, b in zip(*results, strict=True):
        assert states_equal(a, b)
    other = rollout(seed=10)
    assert not all(np.array_equal(a[3], b[3]) for a, b in zip(results[0], other, strict=True))


def test_spaces_dtypes_shapes_contiguity():
    env = AvellanedaStoikovVectorEnv(num_envs=5)
    obs, _ = env.reset()
    assert env.observation_space.shape == (5, 3) and env.action_space.shape == (5, 2)
    assert env.single_observation_space.dtype == np.float32
    assert env.metadata["autoreset_mode"] == gymnasium.vector.AutoresetMode.NEXT_STEP
    obs2, reward, terminated, truncated, _ = env.step(env.action_space.sample())
    assert obs2 is obs  # the same buffer, written in place
    assert obs.dtype == np.float32 and obs.flags.c_contiguous
    assert reward.dtype == np.float32 and reward.shape == (5,)
    assert terminated.dtype == np.bool_ and truncated.dtype == np.bool_
    assert env.observation_space.contains(obs)


@pytest.mark.parametrize(
    ("actions", "exc", "word"),
    [
        (np.ones((4, 2), np.float32), ValueError, "shape"),
        (np.ones((3, 3), np.float32), ValueError, "shape"),
        (np.ones((3, 2), np.bool_), TypeError, "real numbers"),
        (np.array([[1, 1], [np.nan, 1], [1, 1]], np.float32), ValueError, "finite"),
        (np.array([[1, 1], [1, 1], [1, np.inf]], np.float64), ValueError, "finite"),
    ],
)
def test_bad_actions_raise_before_any_kernel_runs(actions, exc, word):
    env = AvellanedaStoikovVectorEnv(num_envs=3, params=SHORT)
    env.reset()
    env.step(np.ones((3, 2), np.float32))
    before = [a.copy() for a in env.state]
    with pytest.raises(exc, match=word):
        env.step(actions)
    assert states_equal(env.state, before)


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"params": ASParams(sigma=-1.0)}, "params.sigma"),
        ({"params": ASParams(dt=0.0)}, "params.dt"),
        ({"params": ASParams(horizon=1.0, dt=0.3)}, "whole number"),
        ({"params": ASParams(intensity=float("nan"))}, "params.intensity"),
        ({"num_envs": 0}, "num_envs"),
        ({"max_offset": -1.0}, "max_offset"),
        ({"seed": -3}, "seed"),
    ],
)
def test_config_is_validated_naming_the_field(kwargs, word):
    with pytest.raises((ValueError, TypeError), match=word):
        AvellanedaStoikovVectorEnv(**kwargs)


def test_torch_outputs_share_memory_on_cpu_and_wrappers_work():
    env = AvellanedaStoikovVectorEnv(num_envs=2, params=SHORT, device="cpu")
    obs, _ = env.reset()
    assert isinstance(obs, torch.Tensor) and obs.dtype == torch.float32
    assert obs.data_ptr() == env._obs.ctypes.data  # no copy
    obs2, reward, *_ = env.step(torch.ones(2, 2))
    assert obs2.data_ptr() == obs.data_ptr() and isinstance(reward, torch.Tensor)

    vec = gymnasium.make_vec("fastlob/AvellanedaStoikov-v0", num_envs=3, params=SHORT)
    assert isinstance(vec, AvellanedaStoikovVectorEnv)
    wrapped = gymnasium.wrappers.vector.NumpyToTorch(
        gymnasium.wrappers.vector.RecordEpisodeStatistics(vec, stats_key="stats")
    )
    wrapped.reset(seed=0)
    for _ in range(10):
        obs, reward, terminated, _truncated, info = wrapped.step(torch.ones(3, 2))
    assert isinstance(obs, torch.Tensor) and terminated.all()
    assert np.allclose(info["stats"]["r"], info["episode"]["r"], atol=1e-3)


def test_fill_frequency_matches_intensity():
    env = AvellanedaStoikovVectorEnv(num_envs=500, seed=4)
    env.reset()
    bid_offset, ask_offset = 0.5, 2.0
    fills_bid = fills_ask = 0
    q_prev = np.zeros(500)
    for _ in range(200):
        _, _, _, _, info = env.step(np.tile(np.float32([bid_offset, ask_offset]), (500, 1)))
        dq = info["inventory"] - q_prev
        q_prev = info["inventory"].astype(float)
        fills_bid += (dq >= 1).sum() + 0
        fills_ask += (dq <= -1).sum()
    trials = 500 * 200
    p = env.params
    for offset, fills in ((bid_offset, fills_bid), (ask_offset, fills_ask)):
        prob = p.intensity * np.exp(-p.decay * offset) * p.dt
        other = p.intensity * np.exp(-p.decay * (ask_offset + bid_offset - offset)) * p.dt
        expected = prob * (1 - other)  # a step that fills both sides leaves q unchanged
        se = np.sqrt(trials * expected * (1 - expected))
        assert abs(fills - trials * expected) < 5 * se


def test_baselines_closed_forms_and_batch_shapes():
    obs = np.array([[100.0, 3.0, 0.5], [100.0, -2.0, 1.0]], np.float32)
    strategy = AvellanedaStoikov(gamma=0.1, sigma=2.0, k=1.5)
    act = strategy.act(obs)
    spread = 0.1 * 4 * np.array([0.5, 1.0]) + 20 * np.log(1 + 0.1 / 1.5)
    skew = np.array([3.0, -2.0]) * 0.1 * 4 * np.array([0.5, 1.0])
    assert np.allclose(act[:, 0], skew + spread / 2) and np.allclose(act[:, 1], spread / 2 - skew)
    glft = GueantLehalleFernandezTapia(gamma=0.1, sigma=2.0, k=1.5, intensity=140.0).act(obs)
    w = np.sqrt(4 * 0.1 / (2 * 1.5 * 140) * (1 + 0.1 / 1.5) ** (1 + 15))
    c = np.log(1 + 0.1 / 1.5) / 0.1
    assert np.allclose(glft[:, 0], c + (2 * obs[:, 1] + 1) * w / 2)
    assert np.allclose(glft[:, 1], c - (2 * obs[:, 1] - 1) * w / 2)
    assert np.allclose(FixedSpread(half_spread=0.7).act(obs), 0.7)
    rnd = RandomQuotes(low=0.5, high=1.5).act(torch.from_numpy(obs))
    assert rnd.shape == (2, 2) and ((rnd >= 0.5) & (rnd <= 1.5)).all()


@pytest.mark.parametrize("gamma", [0.1, 0.01, 1.0])
def test_reproduces_the_paper_within_sampling_error(gamma):
    paths = 1000
    result = run_as2008(gamma, paths=paths, seed=0)
    paper = PUBLISHED[gamma]
    for name in ("inventory", "symmetric"):
        ours = result[name]
        mean, std, q_std = paper[name]
        assert abs(ours["spread"] - paper["spread"]) < 0.02
        # two independent samples of 1000 paths: standard errors of the differences
        se_mean = np.sqrt((ours["profit_std"] ** 2 + std**2) / paths)
        se_std = np.sqrt((ours["profit_std"] ** 2 + std**2) / (2 * paths))
        se_q_std = np.sqrt((ours["q_std"] ** 2 + q_std**2) / (2 * paths))
        assert abs(ours["profit_mean"] - mean) < 4 * se_mean
        assert abs(ours["profit_std"] - std) < 4 * se_std
        assert abs(ours["q_std"] - q_std) < 4 * se_q_std
        assert abs(ours["q_mean"]) < 4 * ours["q_std"] / np.sqrt(paths)


def test_fastlob_exports():
    assert fastlob.AvellanedaStoikovVectorEnv is AvellanedaStoikovVectorEnv
