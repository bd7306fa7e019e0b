"""The linear-quadratic problem: its closed-form optimum against an independent numerical HJB
solution, its env against the plain-Python reference and against the exact expectation of a
policy, the discrete env's own optimum (dynamic programming) against that expectation, the env
and the continuous limit, and the learners' run on it (``fastlob optimum``) at a tiny budget."""

from __future__ import annotations

import json

import gymnasium
import numpy as np
import pytest
import scipy.linalg
from reference_as import ReferenceASEnv
from reference_lq import discrete_policy_value, hjb_depths, hjb_solution

from fastlob import LinearQuadraticVectorEnv, LQParams
from fastlob_agents.baselines import CarteaJaimungalPenalva, FixedSpread, positive_expm
from fastlob_agents.cli import main as cli_main
from fastlob_agents.lq_dp import (
    DiscreteOptimum,
    policy_value,
    solve_discrete_optimum,
    strategy_depths,
)

DEFAULT = LQParams()
#: another problem: few units, weak penalties, another market
OTHER = LQParams(intensity=50.0, decay=2.5, running_penalty=0.2, terminal_penalty=0.05,
                 max_inventory=4, horizon=2.0, dt=0.01)  # fmt: skip


@pytest.mark.parametrize("params", [DEFAULT, OTHER], ids=["default", "other"])
def test_closed_form_equals_the_numerical_hjb_solution(params):
    optimum = CarteaJaimungalPenalva.from_params(params)
    taus = np.array([0.01, 0.1, 0.5, params.horizon])
    numerical = hjb_solution(
        params.intensity, params.decay, params.running_penalty, params.terminal_penalty,
        params.max_inventory, taus,
    )  # fmt: skip
    closed = optimum.value_table(taus)
    assert np.abs(closed - numerical).max() < 1e-6
    bound = params.max_inventory
    q = np.arange(-bound, bound + 1, dtype=np.float64)
    for row, tau in enumerate(taus):
        bid, ask = hjb_depths(numerical[row], params.decay)
        closed_bid, closed_ask = optimum.offsets(q, np.full(q.size, tau))
        assert np.abs(closed_bid[:-1] - bid[:-1]).max() < 1e-5
        assert np.abs(closed_ask[1:] - ask[1:]).max() < 1e-5
        assert closed_bid[-1] == optimum.unquoted_depth and closed_ask[0] == optimum.unquoted_depth


def test_optimal_depths_have_the_textbook_shape():
    optimum = CarteaJaimungalPenalva.from_params(DEFAULT)
    q = np.arange(-5.0, 6.0)
    bid, ask = optimum.offsets(q, np.full(q.size, 0.5))
    # long inventory: buy less eagerly, sell more eagerly; symmetric in q -> -q
    assert (np.diff(bid) > 0).all() and (np.diff(ask) < 0).all()
    assert np.allclose(bid, ask[::-1], atol=1e-12)
    # no penalties and a bound far away (7 standard deviations of the inventory's walk): every
    # depth near q = 0 is 1/k (the single-period optimum); near the bound it is not
    free = CarteaJaimungalPenalva(intensity=140.0, k=1.5, running_penalty=0.0,
                                  terminal_penalty=0.0, max_inventory=60)  # fmt: skip
    bid, ask = free.offsets(np.arange(-4.0, 5.0), np.full(9, 0.7))
    assert np.allclose(bid, 1 / 1.5, atol=1e-6) and np.allclose(ask, 1 / 1.5, atol=1e-6)
    bid, _ = free.offsets(np.array([59.0]), np.array([0.7]))
    assert bid[0] > 1 / 1.5 + 0.1


def test_positive_expm_agrees_with_scipy_and_keeps_tiny_entries():
    optimum = CarteaJaimungalPenalva.from_params(DEFAULT)
    matrix = optimum._shifted
    for tau in (0.01, 0.3, 1.0):
        mine = positive_expm(matrix, tau)
        theirs = scipy.linalg.expm(matrix * tau)
        big = theirs > 1e-6 * theirs.max()
        assert np.allclose(mine[big], theirs[big], rtol=1e-9)
    # the corner of a tridiagonal matrix's exponential at small tau is (a tau)^n / n! to first
    # order: an entry eigendecompositions and Pade lose
    n, a, tau = 21, 2.0, 1e-3
    chain = np.diag(np.full(n - 1, a), 1) + np.diag(np.full(n - 1, a), -1)
    corner = positive_expm(chain, tau)[0, n - 1]
    leading = (a * tau) ** (n - 1) / float(np.prod(np.arange(1, n, dtype=np.float64)))
    assert corner == pytest.approx(leading, rel=1e-4)


def random_depths(rng, n):
    return rng.uniform(-5.0, 6.0, size=(n, 2)).astype(np.float32)


def test_env_matches_reference_with_bound_and_terminal_penalty():
    params = LQParams(running_penalty=2.0, terminal_penalty=3.0, max_inventory=2, horizon=0.05,
                      dt=0.005)  # fmt: skip
    n = 6
    env = LinearQuadraticVectorEnv(n, params, seed=4, max_offset=4.0)
    refs = [ReferenceASEnv(env.params, 4, i) for i in range(n)]
    env.reset()
    rng = np.random.default_rng(1)
    at_bound = 0
    for _ in range(35):  # three episodes and a half
        actions = random_depths(rng, n)
        obs, reward, terminated, truncated, info = env.step(actions)
        clipped = np.clip(actions, -4.0, 4.0)
        for i, ref in enumerate(refs):
            r_obs, r_reward, r_done, r_pnl = ref.step(float(clipped[i, 0]), float(clipped[i, 1]))
            assert obs[i].tolist() == np.array(r_obs, np.float32).tolist()
            assert reward[i] == np.float32(r_reward)
            assert terminated[i] == r_done and not truncated[i]
            assert info["pnl"][i] == r_pnl
            assert abs(ref.q) <= 2
            at_bound += abs(ref.q) == 2
    assert at_bound > 0


def test_optimal_policy_in_the_env_has_its_exact_expected_objective():
    """The simulated mean of the closed-form policy equals the exact expectation of that policy
    in the discrete model (reference recursion), within sampling error; and that expectation
    tends to the closed form's value as dt shrinks."""
    optimum = CarteaJaimungalPenalva.from_params(DEFAULT)

    def depths(params):
        def policy(step, q):  # the env's float32 observation and action
            tau = np.full(q.size, float(np.float32(params.horizon - step * params.dt)))
            bid, ask = optimum.offsets(q, tau)
            clip = lambda x: np.clip(x.astype(np.float32), -4.0, 4.0).astype(np.float64)  # noqa: E731
            return clip(bid), clip(ask)

        return policy

    exact = discrete_policy_value(DEFAULT, depths(DEFAULT))
    env = LinearQuadraticVectorEnv(4096, DEFAULT, seed=7)
    obs, _ = env.reset()
    for _ in range(env.episode_steps):
        obs, _, terminated, _, info = env.step(optimum.act(obs))
    assert terminated.all()
    objective = info["episode"]["r"]
    sem = objective.std(ddof=1) / np.sqrt(objective.size)
    assert abs(objective.mean() - exact) < 4 * sem
    closed = optimum.value(np.zeros(1), DEFAULT.horizon)[0]
    gaps = [
        abs(discrete_policy_value(p, depths(p)) - closed)
        for p in (DEFAULT, DEFAULT._replace(dt=0.001))
    ]
    assert gaps[1] < gaps[0] / 3 and gaps[1] < 0.01 * closed
    # and it is worth far more than the best fixed spread's
    fixed = max(
        discrete_policy_value(DEFAULT, lambda step, q, h=h: (np.full(q.size, h),) * 2)
        for h in (0.5, 0.67, 0.8, 1.0, 1.5)
    )
    assert fixed < 0.5 * exact


def table_policy(depths):
    """``discrete_policy_value``'s policy from a depth table (steps, 2Q + 1, 2)."""
    return lambda step, q: (depths[step, :, 0], depths[step, :, 1])


def closed_form_depths(params):
    """What the closed form quotes in the env (float32 observation and action, the box)."""
    optimum = CarteaJaimungalPenalva.from_params(params)
    return strategy_depths(optimum, params, max_offset=4.0)


@pytest.mark.parametrize("params", [DEFAULT, OTHER], ids=["default", "other"])
def test_discrete_optimum_depths_have_its_value_under_the_reference_recursion(params):
    solution = solve_discrete_optimum(params, max_offset=4.0)
    bound = params.max_inventory
    assert solution.depths.shape == (round(params.horizon / params.dt), 2 * bound + 1, 2)
    exact = discrete_policy_value(params, table_policy(solution.depths))
    assert exact == pytest.approx(solution.value, rel=1e-9)
    # as the env plays it: each depth rounded to float32
    rounded = solution.depths.astype(np.float32).astype(np.float64)
    assert discrete_policy_value(params, table_policy(rounded)) == pytest.approx(exact, rel=1e-9)
    # the solver's policy evaluation is the reference's, on another policy
    closed = closed_form_depths(params)
    assert policy_value(params, closed)[0, bound] == pytest.approx(
        discrete_policy_value(params, table_policy(closed)), rel=1e-12
    )
    # the sides that would pass the bound are not quoted: the unquoted depth, the box's bound
    assert (solution.depths[:, -1, 0] == 4.0).all() and (solution.depths[:, 0, 1] == 4.0).all()
    assert (np.abs(solution.depths) <= 4.0).all()


@pytest.mark.parametrize("params", [DEFAULT, OTHER], ids=["default", "other"])
def test_discrete_optimum_beats_the_closed_form_and_every_perturbation(params):
    solution = solve_discrete_optimum(params, max_offset=4.0)
    closed = discrete_policy_value(params, table_policy(closed_form_depths(params)))
    assert solution.value > closed
    rng = np.random.default_rng(3)
    quoted = np.ones_like(solution.depths, bool)
    quoted[:, -1, 0] = quoted[:, 0, 1] = False  # no effect there: nothing to lose
    for scale in (1e-4, 1e-3, 1e-2, 1e-1):
        for _ in range(3):
            noise = rng.normal(0.0, scale, solution.depths.shape) * quoted
            perturbed = np.clip(solution.depths + noise, -4.0, 4.0)
            assert discrete_policy_value(params, table_policy(perturbed)) < solution.value
    # one state at a time, far from the start: the loss still shows
    perturbed = solution.depths.copy()
    perturbed[-1, params.max_inventory, 0] += 0.05
    assert discrete_policy_value(params, table_policy(perturbed)) < solution.value


def one_step_values(params, values_next, step, bid, ask):
    """The expected objective from ``step`` at every inventory (rows) for every pair of depths
    (columns of ``bid`` and ``ask``, the same length), given the values after the step: the four
    fill outcomes spelled out, as in ``discrete_policy_value``."""
    steps = round(params.horizon / params.dt)
    bound = params.max_inventory
    q = np.arange(-bound, bound + 1, dtype=np.float64)[:, None]
    p_bid = np.minimum(1.0, params.intensity * params.dt * np.exp(-params.decay * bid)) * (
        q < bound
    )
    p_ask = np.minimum(1.0, params.intensity * params.dt * np.exp(-params.decay * ask)) * (
        q > -bound
    )
    penalty = params.running_penalty * params.dt + (
        params.terminal_penalty if step == steps - 1 else 0.0
    )
    total = 0.0
    for b, a, prob in ((1, 0, p_bid * (1 - p_ask)), (0, 1, p_ask * (1 - p_bid)),
                       (1, 1, p_bid * p_ask), (0, 0, (1 - p_bid) * (1 - p_ask))):  # fmt: skip
        nxt = np.clip(q + b - a, -bound, bound)
        after = values_next[(nxt + bound).astype(np.int64)]
        total = total + prob * (b * bid + a * ask - penalty * nxt**2 + after)
    return total


def test_discrete_optimum_is_the_best_pair_of_depths_on_a_grid_at_every_state():
    """The Bellman equation with the maximum over both depths found by brute force: no pair on
    a 0.02 grid of the box beats the solver's depths (the two sides interact through the step
    where both fill), and the best pair comes within the grid's resolution of its value."""
    params = DEFAULT
    solution = solve_discrete_optimum(params, max_offset=4.0)
    # the box on a 0.02 grid, and the depth below which a fill is certain (the objective has a
    # kink there, where the depth of a side unloading a large inventory sits)
    capped = np.log(params.intensity * params.dt) / params.decay
    grid = np.append(np.linspace(-4.0, 4.0, 401), capped)
    bid, ask = (a.reshape(1, -1) for a in np.meshgrid(grid, grid))
    steps = solution.depths.shape[0]
    for step in (0, steps // 2, steps - 2, steps - 1):
        best = one_step_values(params, solution.values[step + 1], step, bid, ask).max(axis=1)
        depths = solution.depths[step]
        mine = one_step_values(params, solution.values[step + 1], step, depths[:, :1],
                               depths[:, 1:])[:, 0]  # fmt: skip
        assert mine == pytest.approx(solution.values[step], rel=1e-12)
        assert (best <= mine + 1e-12 * np.abs(mine)).all()
        assert (mine - best < 1e-3).all()


def test_discrete_optimum_in_the_env_has_its_value():
    """The DP policy played by the env: it quotes its table (read back through the float32
    observation) and its simulated mean is its value within sampling error."""
    policy = DiscreteOptimum.from_params(DEFAULT, max_offset=4.0)
    table = policy.solution.depths
    assert (strategy_depths(policy, DEFAULT, 4.0) == table.astype(np.float32)).all()
    env = LinearQuadraticVectorEnv(4096, DEFAULT, seed=11)
    obs, _ = env.reset()
    for _ in range(env.episode_steps):
        obs, _, terminated, _, info = env.step(policy.act(obs))
    assert terminated.all() and not env.action_clip_count.any()
    objective = info["episode"]["r"]
    sem = objective.std(ddof=1) / np.sqrt(objective.size)
    assert abs(objective.mean() - policy.value) < 4 * sem
    with pytest.raises(ValueError, match="bound"):
        policy.offsets(np.array([11.0]), np.array([0.5]))


def test_discrete_optimum_tends_to_the_closed_form_as_dt_shrinks():
    optimum = CarteaJaimungalPenalva.from_params(DEFAULT)
    closed = optimum.value(np.zeros(1), DEFAULT.horizon)[0]
    q = np.arange(-6.0, 7.0)
    closed_bid, closed_ask = optimum.offsets(q, np.full(q.size, 0.5))
    gaps, depth_gaps = [], []
    for dt in (0.005, 0.001):
        params = DEFAULT._replace(dt=dt)
        solution = solve_discrete_optimum(params, max_offset=4.0)
        gaps.append(abs(solution.value - closed))
        row = solution.depths[round(0.5 / dt), q.astype(int) + DEFAULT.max_inventory]
        depth_gaps.append(max(np.abs(row[:, 0] - closed_bid).max(),
                              np.abs(row[:, 1] - closed_ask).max()))  # fmt: skip
    assert gaps[1] < gaps[0] / 3 and gaps[1] < 0.01 * closed
    assert depth_gaps[1] < depth_gaps[0] / 3 and depth_gaps[1] < 0.02


@pytest.mark.parametrize(
    ("params", "word"),
    [
        (LQParams(max_inventory=2.5), "params.max_inventory"),
        (LQParams(max_inventory=0), "params.max_inventory"),
        (LQParams(running_penalty=-1.0), "params.running_penalty"),
        (LQParams(terminal_penalty=float("nan")), "params.terminal_penalty"),
        (LQParams(horizon=1.0, dt=0.3), "whole number"),
    ],
)
def test_bad_params_name_the_field(params, word):
    with pytest.raises((TypeError, ValueError), match=word):
        LinearQuadraticVectorEnv(2, params)


@pytest.mark.parametrize(
    ("params", "kwargs", "word"),
    [
        (LQParams(dt=0.0), {}, "params.dt"),
        (LQParams(dt=-0.005), {}, "params.dt"),
        (LQParams(dt=float("nan")), {}, "params.dt"),
        (LQParams(dt=0.003), {}, "whole number"),  # the env refuses it; the DP rounded it
        (LQParams(horizon=0.0), {}, "params.horizon"),
        (LQParams(max_inventory=0), {}, "params.max_inventory"),
        (LQParams(max_inventory=True), {}, "params.max_inventory"),
        (LQParams(max_inventory=10**9), {}, "memory"),
        (LQParams(dt=1e-9), {}, "memory"),
        (LQParams(intensity=0.0), {}, "params.intensity"),
        (LQParams(intensity=float("inf")), {}, "params.intensity"),
        (LQParams(running_penalty=-1.0), {}, "params.running_penalty"),
        (LQParams(terminal_penalty=float("nan")), {}, "params.terminal_penalty"),
        (LQParams(), {"max_offset": 0.0}, "max_offset"),
        (LQParams(), {"unquoted_depth": float("nan")}, "unquoted_depth"),
        (LQParams(), {"tolerance": -1.0}, "tolerance"),
        (LQParams(), {"max_sweeps": 0}, "max_sweeps"),
    ],
)
def test_the_discrete_optimum_checks_its_params_as_the_env_does(params, kwargs, word):
    with pytest.raises((TypeError, ValueError), match=word):
        solve_discrete_optimum(params, **kwargs)


def test_the_discrete_optimum_refuses_a_non_finite_observation():
    optimum = DiscreteOptimum.from_params(LQParams(horizon=0.05))
    for obs in ([[100.0, np.nan, 0.02]], [[100.0, 0.0, np.nan]]):
        with pytest.raises(ValueError, match="finite"):
            optimum.act(np.array(obs, np.float32))


def test_closed_form_refuses_what_float64_cannot_hold():
    with pytest.raises(ValueError, match="terminal_penalty"):
        CarteaJaimungalPenalva(terminal_penalty=10.0, max_inventory=10)
    with pytest.raises(ValueError, match="bound"):
        CarteaJaimungalPenalva.from_params(DEFAULT).offsets(np.array([11.0]), np.array([0.5]))


def test_gymnasium_id_and_bounds_in_the_as_env():
    env = gymnasium.make_vec("fastlob/LinearQuadratic-v0", num_envs=3, params=OTHER)
    assert env.unwrapped.episode_steps == 200
    env.reset(seed=0)
    for _ in range(200):
        _, _, terminated, truncated, _ = env.step(np.zeros((3, 2), np.float32))
        assert (np.abs(env.unwrapped.state.inventory) <= 4).all()
    assert terminated.all() and not truncated.any()
    # the fixed spread is a policy like any other there
    assert FixedSpread(half_spread=0.5).act(np.zeros((3, 3))).shape == (3, 2)


def test_fastlob_optimum_writes_its_result(tmp_path, capsys):
    out = tmp_path / "optimum"
    code = cli_main(["optimum", "--seeds", "1", "2", "--steps", "16384", "--episodes", "256",
                     "--eval-seed", "654321", "--out", str(out)])  # fmt: skip
    assert code == 0
    result = json.loads((out / "optimum.json").read_text())
    assert result["eval_seed"] == 654_321
    optimum = result["optimum"]  # the closed form
    assert optimum["simulated"]["ci_low"] < optimum["simulated"]["ci_high"]
    closed = optimum["closed_form"]
    assert abs(optimum["simulated"]["mean"] - closed) < 0.05 * closed
    assert result["fixed_spread"]["mean"] < optimum["simulated"]["mean"]
    # the closed form's exact expectation in the discrete env, by the reference recursion
    params = LQParams(**result["params"])
    assert params == DEFAULT
    exact = discrete_policy_value(params, table_policy(closed_form_depths(params)))
    assert optimum["discrete"] == pytest.approx(exact, rel=1e-9)
    # the headline reference: the discrete env's optimum, above the closed form played there
    assert result["share_reference"] == "discrete_optimum"
    discrete = result["discrete_optimum"]
    assert discrete["value"] > optimum["discrete"] > closed
    assert optimum["share_of_discrete_optimum"] == pytest.approx(exact / discrete["value"])
    simulated = discrete["simulated"]
    assert abs(simulated["mean"] - discrete["value"]) < 0.05 * discrete["value"]
    assert len(discrete["depths"]["ask"]) == len(result["grid"]["times_to_go"])
    ppo = result["agents"]["ppo"]
    assert set(ppo["seeds"]) == {"1", "2"}
    assert "ci_low" in ppo["share_of_optimum"] and "ci_low" in ppo["share_of_closed_form"]
    for run in ppo["seeds"].values():
        assert len(run["depths"]["bid"]) == len(result["grid"]["times_to_go"])
        assert len(run["depths"]["bid"][0]) == len(result["grid"]["inventories"])
        assert run["share_of_optimum"] == pytest.approx(run["mean"] / simulated["mean"])
        assert run["share_of_closed_form"] == pytest.approx(
            run["mean"] / optimum["simulated"]["mean"]
        )
    assert (out / "optimum.html").stat().st_size > 1000
    printed = capsys.readouterr().out
    assert "of the optimum" in printed and "of the closed form" in printed
    assert "dynamic programming" in printed
    assert cli_main(["optimum", "--seeds", "-1"]) == 2


def test_fastlob_optimum_trains_the_same_runs_in_parallel_workers(tmp_path):
    from fastlob_agents.optimum import run_optimum

    tiny = {"seeds": (1, 2), "steps": 8192, "episodes": 64}
    apart = run_optimum(out=str(tmp_path / "apart"), workers=2, **tiny)
    alone = run_optimum(out=str(tmp_path / "alone"), torch_threads=1, progress=False, **tiny)
    for seed in ("1", "2"):
        parallel, serial = (
            apart["agents"]["ppo"]["seeds"][seed],
            alone["agents"]["ppo"]["seeds"][seed],
        )
        assert parallel["mean"] == serial["mean"]
        assert parallel["depths"] == serial["depths"]
    assert (
        apart["agents"]["ppo"]["seeds"]["1"]["mean"] != apart["agents"]["ppo"]["seeds"]["2"]["mean"]
    )
