"""The market-making simulator: the kernel against the plain-Python reference step by step, the
accounting identity, the position limit, determinism, and the Gymnasium contract."""

from __future__ import annotations

import gymnasium
import numba
import numpy as np
import pytest
from reference_as import seed_state
from reference_mm import METRICS, ReferenceMM
from support import states_equal

from fastlob import FlowParams, MarketMakingConfig, MarketMakingVectorEnv, RewardConfig
from fastlob._kernels import mm_drivers
from fastlob._kernels import mm_layout as M
from fastlob._kernels.book import find_slot
from fastlob._kernels.flow import (
    EVENT_CANCEL,
    FAIR_VALUE,
    INTEGRAL_CANCEL,
    INTEGRAL_LIMIT,
    INTEGRAL_MARKET,
)

SMALL = MarketMakingConfig(
    dt=0.5,
    latency=0.1,
    episode_steps=25,
    warmup=2.0,
    flow_levels=5,
    ladder_levels=64,
    order_capacity=64,
    max_inventory=4,
    max_quote_size=3,
    max_offset=4.0,
    markout_steps=3,
    reward=RewardConfig(scale=0.5, inventory_penalty=0.1, target_penalty=0.05, spread_capture=0.2),
)

CONFIGS = {
    "plain": SMALL,
    "informed_hawkes": SMALL.replace(
        flow=FlowParams(
            size_max=2, informed_tilt=0.5, fair_sigma=1.0, hawkes_alpha=1.0, hawkes_beta=2.0
        ),
        maker_fee=-0.0002,
        taker_fee=0.0005,
    ),
    "risk_limits": SMALL.replace(
        max_drawdown=3.0, terminate_on_max_inventory=True, latency=0.0, episode_steps=40
    ),
    # the zero-intelligence flow anchored to a moving fair value, no informed flow
    "anchored": SMALL.replace(flow=FlowParams(fair_sigma=1.0, anchor_width=1.0)),
    # post-only quotes: crossing ones re-priced behind the opposite best
    "post_only": SMALL.replace(post_only=True),
    # a calibrated market's size distributions (limit and market orders apart)
    "size_distributions": SMALL.replace(
        limit_sizes=(0.5, 0.3, 0.0, 0.2), market_sizes=(0.2, 0.5, 0.3)
    ),
    # the reward under the liquidation mark, with a taker fee to pay on it
    "liquidation_mark": SMALL.replace(
        reward=RewardConfig(scale=0.5, inventory_penalty=0.1, mark="liquidation"),
        taker_fee=0.0005,
    ),
}


def random_actions(rng, env, steps):
    """Random actions that exercise every path: crossing offsets (taker fills), zero sizes,
    sizes beyond the position limit, repeated actions (queue priority kept), out-of-space
    values (clipped)."""
    n = env.num_envs
    low, high = env.single_action_space.low, env.single_action_space.high
    actions = []
    for _ in range(steps):
        a = rng.uniform(low - 0.5, high + 0.5, size=(n, M.ACT_DIM)).astype(np.float32)
        a[:, :2] = np.where(rng.random((n, 2)) < 0.7, np.abs(a[:, :2]), a[:, :2])
        if actions and rng.random() < 0.4:
            a = actions[-1].copy()
        actions.append(a)
    return actions


def assert_quotes_tracked(env, n):
    """The simulator's own record of its quotes (slot, price, lots left) is the book's."""
    s, m = env.books, env.state
    for side in (0, 1):
        slot = m.quote_slot[n, side]
        if slot < 0:
            assert find_slot(s, n, side) < 0
            continue
        assert find_slot(s, n, side) == slot
        assert s.order_price[n, slot] == m.quote_price[n, side]
        assert s.order_qty[n, slot] == m.quote_left[n, side]


def reference_envs(env):
    seed = env._seed
    return [
        ReferenceMM(
            env.params,
            env.flow_params,
            env.limit_rates,
            env.cancel_rates,
            env.book_params,
            seed_state(seed, n),
            (env.flow_model.limit_size_cdf.tolist(), env.flow_model.market_size_cdf.tolist()),
        )
        for n in range(env.num_envs)
    ]


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_env_matches_reference_step_by_step(name):
    env = MarketMakingVectorEnv(3, config=CONFIGS[name], seed=11)
    refs = reference_envs(env)
    obs, _ = env.reset()
    for n, ref in enumerate(refs):
        assert np.array_equal(obs[n], ref.reset())
    rng = np.random.default_rng(5)
    low, high = env.single_action_space.low, env.single_action_space.high
    done_seen = 0
    seen = np.zeros(M.NUM_METRICS)
    for actions in random_actions(rng, env, 90):
        obs, reward, terminated, truncated, info = env.step(actions)
        clipped = np.clip(actions, low, high)
        for n, ref in enumerate(refs):
            r_obs, r_reward, r_term, r_trunc = ref.step(clipped[n])
            assert np.array_equal(obs[n], r_obs), (n, obs[n], r_obs)
            assert reward[n] == r_reward
            assert (terminated[n], truncated[n]) == (r_term, r_trunc)
            assert info["cash"][n] == ref.cash and info["inventory"][n] == ref.inventory
            assert info["pnl"][n] == ref.pnl
            assert env.state.metrics[n].tolist() == [ref.m[k] for k in METRICS]
            assert_quotes_tracked(env, n)
        done_seen += int((terminated | truncated).sum())
        seen = np.maximum(seen, env.state.metrics.max(axis=0))
    # every path was exercised: episode ends, maker and taker fills (post-only: re-pricing and
    # no taker fill), position-limit cuts, markouts
    assert done_seen >= 3
    post_only = CONFIGS[name].post_only
    taking = M.M_POST_ONLY_REPRICED if post_only else M.M_TAKER_QTY
    for column in (
        M.M_MAKER_QTY,
        taking,
        M.M_QUOTE_REDUCED,
        M.M_MARKOUT_FILLS,
        M.M_ADVERSE_FILLS,
        M.M_SELF_CROSS_LOTS,
        M.M_FILLED_QUOTE_INTERVALS,
    ):
        assert seen[column] > 0, METRICS[column]
    assert not post_only or seen[M.M_TAKER_QTY] == 0
    assert env.state.quote_reduced.sum() > 0


def run(env, actions_list, record=None):
    out = []
    for actions in actions_list:
        obs, reward, terminated, truncated, info = env.step(actions)
        out.append((obs.copy(), reward.copy(), terminated.copy(), truncated.copy()))
        if record is not None:
            record(env, info)
    return out


def test_accounting_identity_position_limit_and_book_invariants_every_step():
    """Every step: PnL = cash + inventory x lot x mid; |inventory| <= max_inventory; the book is
    never crossed; the simulator's view of its quotes is the book's."""
    config = CONFIGS["informed_hawkes"].replace(episode_steps=30)
    env = MarketMakingVectorEnv(8, config=config, seed=3)
    env.reset()
    p = env.params
    counts = {"fills": 0}

    def check(env, info):
        expected = info["cash"] + info["inventory"] * p.lot_size * info["mid"]
        np.testing.assert_allclose(info["pnl"], expected, rtol=1e-12, atol=1e-9)
        assert (np.abs(info["inventory"]) <= p.max_inventory).all()
        best = env.books.best
        both = (best[:, 0] >= 0) & (best[:, 1] >= 0)
        assert (best[both, 0] < best[both, 1]).all()
        for n in range(env.num_envs):
            assert_quotes_tracked(env, n)
        counts["fills"] += int(env.state.metrics[:, M.M_FILLS].sum())

    run(env, random_actions(np.random.default_rng(2), env, 70), check)
    assert counts["fills"] > 0
    assert env.state.quote_reduced.sum() > 0


def test_episode_statistics_agree_with_the_steps():
    config = SMALL.replace(episode_steps=12)
    env = MarketMakingVectorEnv(4, config=config, seed=8)
    env.reset()
    rng = np.random.default_rng(1)
    total = np.zeros(4)
    pnl_path = []
    for t in range(12):
        _, reward, _, _, info = env.step(random_actions(rng, env, 1)[0])
        total += reward
        pnl_path.append(info["pnl"].copy())
        assert ("episode" in info) == (t == 11)
    ep = info["episode"]
    assert info["_episode"].all() and (ep["l"] == 12).all()
    np.testing.assert_allclose(ep["r"], total, rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(ep["pnl"], info["pnl"])
    steps = np.diff(np.vstack([np.zeros(4), *pnl_path]), axis=0)
    np.testing.assert_allclose(ep["pnl_step_mean"], steps.mean(axis=0), atol=1e-9)
    np.testing.assert_allclose(ep["pnl_step_std"], steps.std(axis=0), atol=1e-6)
    path = np.vstack(pnl_path)
    drawdown = (np.maximum.accumulate(np.maximum(path, 0.0), axis=0) - path).max(axis=0)
    np.testing.assert_allclose(ep["max_drawdown"], drawdown, atol=1e-9)
    # the default flow is informed: it has a fair value, and the fair mark is reported
    assert set(ep) == set(__import__("fastlob.env", fromlist=["x"]).EPISODE_KEYS) | {"fair_pnl"}
    for key in ("fill_ratio", "fill_probability", "adverse_rate"):
        assert ((ep[key] >= 0) & (ep[key] <= 1)).all(), key
    # trading the inventory against the other traders' book never fetches more than the mid
    flat = info["inventory"] == 0
    assert (ep["liquidation_pnl"] <= ep["pnl"]).all()
    np.testing.assert_array_equal(ep["liquidation_pnl"][flat], ep["pnl"][flat])
    assert (~flat).any() and (ep["liquidation_pnl"][~flat] < ep["pnl"][~flat]).all()


def _ended_episode(env, actions):
    env.reset(seed=3)
    while True:
        _, _, _, _, info = env.step(actions)
        if "episode" in info:
            return info


def test_the_fair_mark_values_the_inventory_at_the_flows_fair_value():
    # anchored flow whose fair value never moves: the fair mark is the initial price
    anchored = SMALL.replace(
        episode_steps=15, flow=FlowParams(informed_tilt=0.0, fair_sigma=0.0, anchor_width=2.0)
    )
    env = MarketMakingVectorEnv(6, config=anchored, seed=4)
    assert env.has_fair_value
    # a bid through the mid and no ask: the env ends long
    actions = np.tile(np.float32([-1, 4, 3, 0, 0]), (6, 1))
    info = _ended_episode(env, actions)
    ep, p = info["episode"], env.params
    assert (info["inventory"] > 0).any()
    fair = info["cash"] + info["inventory"] * p.lot_size * anchored.initial_price * p.tick_size
    np.testing.assert_allclose(ep["fair_pnl"], fair, rtol=1e-12)
    # a moving fair value (informed flow): the value where the episode ended
    informed = SMALL.replace(episode_steps=15, flow=FlowParams(informed_tilt=0.5, fair_sigma=2.0))
    env = MarketMakingVectorEnv(6, config=informed, seed=4)
    info = _ended_episode(env, actions)
    value = env.state.flow_state[:, FAIR_VALUE]
    assert np.ptp(value) > 0  # the fair values moved apart
    fair = info["cash"] + info["inventory"] * p.lot_size * value * p.tick_size
    np.testing.assert_allclose(info["episode"]["fair_pnl"], fair, rtol=1e-12)


def test_a_flow_without_a_fair_value_reports_no_fair_mark():
    plain = SMALL.replace(episode_steps=4, flow=FlowParams(informed_tilt=0.0, fair_sigma=1.0))
    env = MarketMakingVectorEnv(2, config=plain, seed=1)
    assert not env.has_fair_value
    info = _ended_episode(env, np.tile(np.float32([1, 1, 1, 1, 0]), (2, 1)))
    assert "fair_pnl" not in info["episode"] and "liquidation_pnl" in info["episode"]


def test_autoreset_contract_step_by_step():
    config = SMALL.replace(episode_steps=5)
    env = MarketMakingVectorEnv(3, config=config, seed=0)
    first, info = env.reset(seed=5)
    first = first.copy()
    assert info == {}
    actions = np.tile(np.float32([1, 1, 1, 1, 0]), (3, 1))
    for t in range(1, 6):
        obs, reward, terminated, truncated, info = env.step(actions)
        # the horizon terminates: the time left is in the observation
        assert terminated.all() == (t == 5) and not truncated.any()
        np.testing.assert_allclose(obs[:, M.OBS_TIME_LEFT], (5 - t) / 5)
    assert info["_episode"].all()
    # the step after the end: the action is ignored, reward 0, a fresh episode starts
    obs, reward, terminated, truncated, info = env.step(np.full((3, 5), 3.0, np.float32))
    assert (reward == 0).all() and not truncated.any() and not terminated.any()
    assert (obs[:, M.OBS_TIME_LEFT] == 1).all() and (obs[:, M.OBS_INVENTORY] == 0).all()
    assert (obs[:, M.OBS_BID_QUEUE] == -1).all() and "episode" not in info
    assert (env.state.step == 0).all() and (info["pnl"] == 0).all()
    # a reset with the same seed reproduces the first observation
    obs, _ = env.reset(seed=5)
    assert np.array_equal(obs, first)


def test_risk_limits_terminate():
    config = SMALL.replace(terminate_on_max_inventory=True, episode_steps=200)
    env = MarketMakingVectorEnv(4, config=config, seed=2)
    env.reset()
    buy = np.tile(np.float32([-4, 4, 3, 0, 1]), (4, 1))  # bid through the ask: buy as taker
    for _ in range(30):
        _, _, terminated, truncated, info = env.step(buy)
        if terminated.any():
            break
    assert terminated.any() and not truncated.any()
    assert (np.abs(info["inventory"][terminated]) == config.max_inventory).all()


def test_reset_mask_resets_only_masked_envs():
    env = MarketMakingVectorEnv(4, config=SMALL, seed=1)
    env.reset()
    for actions in random_actions(np.random.default_rng(0), env, 4):
        obs, *_ = env.step(actions)
    before = obs.copy()
    steps_before = env.state.step.copy()
    mask = np.array([True, False, True, False])
    obs, _ = env.reset(options={"reset_mask": mask})
    assert np.array_equal(obs[~mask], before[~mask])
    assert (env.state.step[mask] == 0).all()
    assert (env.state.step[~mask] == steps_before[~mask]).all()
    assert (obs[mask, M.OBS_TIME_LEFT] == 1).all()


def rollout(seed, num_envs=70, steps=20):
    env = MarketMakingVectorEnv(num_envs, config=CONFIGS["informed_hawkes"], seed=seed)
    env.reset()
    out = run(env, random_actions(np.random.default_rng(1), env, steps))
    return out, env


def test_same_seed_same_bits_at_any_thread_count_and_other_seed_differs():
    results = []
    for threads in (1, numba.config.NUMBA_NUM_THREADS):
        numba.set_num_threads(threads)
        try:
            results.append(rollout(seed=9))
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    (a, env_a), (b, env_b) = results
    for x, y in zip(a, b, strict=True):
        assert states_equal(x, y)
    assert states_equal(env_a.books, env_b.books) and states_equal(env_a.state, env_b.state)
    other, _ = rollout(seed=10)
    assert not all(np.array_equal(x[0], y[0]) for x, y in zip(a, other, strict=True))


def test_a_batch_that_prefetches_gives_each_env_the_bits_of_a_small_batch():
    # from PREFETCH_MIN_ENVS envs on, the step asks for the lines of the env a few ahead
    # (mm._prefetch_env); env n's trajectory depends only on (seed, n), so the first envs of
    # such a batch must step exactly as a batch too small to prefetch
    config, small = CONFIGS["informed_hawkes"], 16
    big = MarketMakingVectorEnv(mm_drivers.PREFETCH_MIN_ENVS, config=config, seed=3)
    little = MarketMakingVectorEnv(small, config=config, seed=3)
    big.reset()
    little.reset()
    for actions in random_actions(np.random.default_rng(2), big, 30):
        out_big = big.step(actions)[:4]
        out_little = little.step(actions[:small])[:4]
        for x, y in zip(out_big, out_little, strict=True):
            assert np.array_equal(x[:small], y)
    for x, y in zip([*big.books, *big.state], [*little.books, *little.state], strict=True):
        assert np.array_equal(x[:small], y)


def test_spaces_dtypes_shapes_contiguity():
    env = MarketMakingVectorEnv(5, config=SMALL)
    obs, _ = env.reset()
    assert env.observation_space.shape == (5, M.OBS_DIM)
    assert env.action_space.shape == (5, M.ACT_DIM)
    assert env.metadata["autoreset_mode"] == gymnasium.vector.AutoresetMode.NEXT_STEP
    obs2, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert obs2 is obs and obs.dtype == np.float32 and obs.flags.c_contiguous
    assert reward.dtype == np.float32 and reward.shape == (5,)
    assert terminated.dtype == np.bool_ and truncated.dtype == np.bool_
    assert env.observation_space.contains(obs)
    for key in ("pnl", "cash", "mid", "fees"):
        assert info[key].dtype == np.float64 and info["_" + key].all()
    assert info["inventory"].dtype == np.int64
    assert env.bytes_per_env < 64 * 1024


@pytest.mark.parametrize(
    ("actions", "exc", "word"),
    [
        (np.ones((4, 5), np.float32), ValueError, "shape"),
        (np.ones((3, 4), np.float32), ValueError, "shape"),
        (np.ones((3, 5), np.bool_), TypeError, "real numbers"),
        (np.array([[1] * 5, [1, 1, np.nan, 1, 1], [1] * 5], np.float32), ValueError, "finite"),
        (np.array([[1] * 5, [1] * 5, [1, 1, 1, 1, -np.inf]], np.float64), ValueError, "finite"),
    ],
)
def test_bad_actions_raise_and_leave_state_unchanged(actions, exc, word):
    env = MarketMakingVectorEnv(3, config=SMALL)
    env.reset()
    env.step(np.ones((3, 5), np.float32))
    books, state = [a.copy() for a in env.books], [a.copy() for a in env.state]
    with pytest.raises(exc, match=word):
        env.step(actions)
    assert states_equal(env.books, books) and states_equal(env.state, state)


@pytest.mark.parametrize(
    ("changes", "word"),
    [
        ({"dt": 0.0}, "config.dt"),
        ({"latency": 0.5}, "config.latency"),
        ({"episode_steps": 0}, "config.episode_steps"),
        ({"ladder_levels": 100}, "power of two"),
        ({"ladder_levels": 32}, "config.ladder_levels"),
        ({"max_inventory": 0}, "config.max_inventory"),
        ({"max_quote_size": 1.5}, "config.max_quote_size"),
        ({"maker_fee": float("nan")}, "config.maker_fee"),
        ({"signal_decay": 1.0}, "config.signal_decay"),
        ({"limit_rates": (1.0, 2.0)}, "config.limit_rates"),
        ({"cancel_rates": (1.0, -1.0, 1.0, 1.0, 1.0)}, "config.cancel_rates"),
        ({"order_capacity": 8}, "config.order_capacity"),
        # 2**20 slots of 10**4 lots: a level could pass int32
        ({"order_capacity": 1 << 20, "max_quote_size": 10**4}, "config.order_capacity.*int32"),
        ({"flow": FlowParams(market_rate=-1.0)}, "config.flow.market_rate"),
        ({"flow": FlowParams(size_min=3, size_max=2)}, "config.flow.size_max"),
        ({"flow": FlowParams(hawkes_alpha=2.0, hawkes_beta=1.0)}, "hawkes_alpha"),
        ({"reward": RewardConfig(inventory_penalty=-1.0)}, "config.reward.inventory_penalty"),
        ({"reward": RewardConfig(mark="last")}, "config.reward.mark"),
        ({"max_drawdown": 0.0}, "config.max_drawdown"),
    ],
)
def test_config_is_validated_naming_the_field(changes, word):
    with pytest.raises((ValueError, TypeError), match=word):
        MarketMakingVectorEnv(2, config=SMALL.replace(**changes))


# the checker's advice (normalised action spaces, finite observation bounds) is a style choice:
# offsets are in ticks and sizes in lots on purpose, and features like PnL are unbounded
@pytest.mark.filterwarnings("ignore:.*(symmetric and normalized|infinity).*")
def test_registration_wrappers_torch_and_single_env_checker():
    import torch
    from gymnasium.utils.env_checker import check_env

    env = MarketMakingVectorEnv(2, config=SMALL, device="cpu")
    obs, _ = env.reset()
    assert isinstance(obs, torch.Tensor) and obs.data_ptr() == env._obs.ctypes.data
    obs2, reward, *_ = env.step(torch.ones(2, 5))
    assert obs2.data_ptr() == obs.data_ptr() and isinstance(reward, torch.Tensor)

    vec = gymnasium.make_vec("fastlob/MarketMaking-v0", num_envs=3, config=SMALL)
    assert isinstance(vec, MarketMakingVectorEnv) and vec.num_envs == 3
    wrapped = gymnasium.wrappers.vector.NumpyToTorch(
        gymnasium.wrappers.vector.RecordEpisodeStatistics(vec, stats_key="stats")
    )
    wrapped.reset(seed=0)
    for _ in range(SMALL.episode_steps):
        obs, reward, terminated, _truncated, info = wrapped.step(torch.ones(3, 5))
    assert isinstance(obs, torch.Tensor) and terminated.all()
    assert np.allclose(info["stats"]["r"], info["episode"]["r"], atol=1e-3)

    single = gymnasium.make("fastlob/MarketMaking-v0", config=SMALL)
    check_env(single.unwrapped)
    obs, _ = single.reset(seed=1)
    obs, reward, _, _, info = single.step(single.action_space.sample())
    assert obs.shape == (M.OBS_DIM,) and isinstance(reward, float)
    assert {"pnl", "cash", "inventory", "mid"} <= set(info)


def test_flow_inside_the_env_reproduces_its_configured_rates():
    """Counts of limit orders, market orders and cancellations against their compensators
    (integrated intensities) over many env-steps, with the market maker quoting."""
    env = MarketMakingVectorEnv(64, config=SMALL.replace(episode_steps=1000), seed=4)
    env.reset()
    events0 = env.state.events.copy()
    integral0 = env.state.intensity_integral.copy()
    actions = np.tile(np.float32([1, 1, 1, 1, 0]), (64, 1))
    for _ in range(60):
        env.step(actions)
    events = (env.state.events - events0).sum(axis=0)
    integral = (env.state.intensity_integral - integral0).sum(axis=0)
    for column, compensator in (
        (0, INTEGRAL_LIMIT),
        (1, INTEGRAL_MARKET),
        (EVENT_CANCEL, INTEGRAL_CANCEL),
    ):
        assert integral[compensator] > 1000
        assert abs(events[column] - integral[compensator]) < 4 * np.sqrt(integral[compensator])
    seconds = 64 * 60 * SMALL.dt
    assert integral[INTEGRAL_LIMIT] == pytest.approx(2 * env.limit_rates.sum() * seconds)


def test_get_state_set_state_continues_exactly():
    config = CONFIGS["informed_hawkes"]
    actions = random_actions(np.random.default_rng(4), MarketMakingVectorEnv(3, config), 30)
    straight = MarketMakingVectorEnv(3, config=config, seed=6)
    straight.reset()
    run(straight, actions[:10])
    saved = straight.get_state()
    expected = run(straight, actions[10:])
    other = MarketMakingVectorEnv(3, config=config, seed=99)
    other.set_state(saved)
    resumed = run(other, actions[10:])
    for a, b in zip(expected, resumed, strict=True):
        assert states_equal(a, b)
    with pytest.raises(ValueError, match="num_envs"):
        MarketMakingVectorEnv(4, config=config).set_state(saved)


def test_post_only_quotes_only_make():
    """With post_only, random actions (half of them crossing) never trade as taker, and the
    re-pricing is counted."""
    env = MarketMakingVectorEnv(8, config=CONFIGS["post_only"].replace(episode_steps=60), seed=4)
    env.reset()
    for actions in random_actions(np.random.default_rng(3), env, 50):
        env.step(actions)
    assert env.running_metric("taker_qty").sum() == 0
    assert env.running_metric("maker_qty").sum() > 0
    assert env.running_metric("post_only_repriced").sum() > 0
