"""``fastlob optimum``: do the learners find the optimum where it is known?

PPO (and SAC) train on the linear-quadratic market-making problem
(``fastlob.LinearQuadraticVectorEnv`` with ``LQ_PARAMS``), one run per training seed. Its optimum
is known two ways:

- the optimum of the discrete env the learners play (one Bernoulli fill draw per side per step,
  the action box), by dynamic programming (``lq_dp.DiscreteOptimum``): the headline reference;
- the closed form (``baselines.CarteaJaimungalPenalva``), the optimum of the continuous-time
  problem, played in the discrete env, where it earns a little less than the discrete optimum.

Every trained policy, both optima and the best fixed spread then play the same held-out paths; the
result gives each one's expected objective with its interval, each learner's share of the
discrete optimum's (``share_of_optimum``) and of the closed form's (``share_of_closed_form``),
per seed with the between-seed mean and 95% interval, and the depths each quotes over an
(inventory, time-to-go) grid beside the optimal depths. Written to ``OUT/optimum.json`` and
``OUT/optimum.html``.

``optimum.json``: ``params``, ``episodes``, ``eval_seed``; ``share_reference``
(``"discrete_optimum"``: what ``share_of_optimum`` divides by; absent in results written before
it, whose ``share_of_optimum`` was against the closed form); ``discrete_optimum`` (``value``, the
exact optimal expectation; ``simulated``, its mean and interval on the held-out paths;
``depths``; ``seconds``, the dynamic programme's time); ``optimum``, the closed form
(``closed_form``, its continuous-time value; ``discrete``, its exact expectation in the discrete
env; ``share_of_discrete_optimum``, that over ``discrete_optimum.value``; ``simulated``;
``depths``); ``fixed_spread``; ``grid``; ``agents``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
from pathlib import Path

import numpy as np

from fastlob import LinearQuadraticVectorEnv, LQParams
from fastlob._checks import check_int

from .baselines import CarteaJaimungalPenalva, FixedSpread
from .evaluate import _normal_ci
from .lq_dp import DiscreteOptimum, policy_value, strategy_depths
from .ppo import PPOConfig, PPOPolicy
from .ppo import train as train_ppo
from .sac import SACConfig, SACPolicy
from .sac import train as train_sac
from .study import _t_quantile

#: the problem: the Avellaneda-Stoikov paper's market (A=140, k=1.5, sigma=2, T=1, dt=0.005)
#: with penalties that make inventory control worth most of the objective
LQ_PARAMS = LQParams(running_penalty=1.0, terminal_penalty=1.0, max_inventory=10)
#: each depth's bound (price units): the action box, for every policy
LQ_MAX_OFFSET = 4.0
#: undiscounted, as the objective: time is in the observation and the horizon terminates
LQ_PPO = PPOConfig(
    num_envs=256,
    total_steps=5_000_000,
    num_steps=32,
    gamma=1.0,
    gae_lambda=0.95,
    learning_rate=1e-3,
    num_minibatches=4,
    update_epochs=5,
    init_log_std=-1.0,
)
LQ_SAC = SACConfig(num_envs=64, total_steps=3_000_000, gamma=0.999)
CONFIGS = {"ppo": LQ_PPO, "sac": LQ_SAC}
TRAINERS = {"ppo": train_ppo, "sac": train_sac}
POLICIES = {"ppo": PPOPolicy, "sac": SACPolicy}
#: the fixed spreads the best one is chosen from (half-spreads, price units)
HALF_SPREADS = (0.4, 0.5, 0.6, 0.67, 0.8, 1.0, 1.2, 1.5, 2.0)
#: the depth grid of the figure and the result
GRID_INVENTORIES = tuple(range(-6, 7))
GRID_TIMES_TO_GO = (1.0, 0.5, 0.1)


def make_env(num_envs: int, seed: int, params: LQParams = LQ_PARAMS) -> LinearQuadraticVectorEnv:
    return LinearQuadraticVectorEnv(num_envs, params, seed=seed, max_offset=LQ_MAX_OFFSET)


def train_agent(algo: str, seed: int, runs_dir: str, steps: int | None = None, **fields) -> str:
    """Train ``algo`` on the problem with ``seed``; returns the run directory (replaced if it
    exists)."""
    config = dataclasses.replace(
        CONFIGS[algo],
        seed=seed,
        runs_dir=runs_dir,
        run_name=f"{algo}_{seed}",
        **({} if steps is None else {"total_steps": steps}),
        **fields,
    )
    path = Path(runs_dir) / config.run_name
    if path.exists():
        shutil.rmtree(path)
    env = make_env(config.num_envs, seed)
    return TRAINERS[algo](config, env=env)["run_dir"]


def _train_in_worker(job: tuple) -> str:
    """``train_agent`` in a worker process, its Numba kernels on one thread."""
    import numba

    numba.set_num_threads(1)
    algo, seed, runs_dir, steps, fields = job
    return train_agent(algo, seed, runs_dir, steps, **fields)


def train_seeds(algo: str, seeds, runs_dir: str, steps: int | None, workers: int, **fields):
    """Train ``algo`` once per seed; returns {seed: run directory}. With ``workers`` > 1, that
    many runs at a time in separate processes, each on one torch and one Numba thread: the
    same runs as ``workers=1`` with ``torch_threads=1``."""
    if workers <= 1:
        return {seed: train_agent(algo, seed, runs_dir, steps, **fields) for seed in seeds}
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    fields = {**fields, "torch_threads": 1, "progress": False}
    jobs = [(algo, seed, runs_dir, steps, fields) for seed in seeds]
    context = multiprocessing.get_context("spawn")  # no forked torch or Numba thread pools
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return dict(zip(seeds, pool.map(_train_in_worker, jobs), strict=True))


def episode_objectives(policy, episodes: int, seed: int) -> np.ndarray:
    """Each held-out episode's objective (its return) under ``policy``: float64 (episodes,)."""
    env = make_env(episodes, seed)
    obs, _ = env.reset(seed=seed)
    info: dict = {}
    for _ in range(env.episode_steps):
        obs, _, _, _, info = env.step(policy.act(obs))
    return np.asarray(info["episode"]["r"], np.float64).copy()


def depth_grid(policy, inventories=GRID_INVENTORIES, times=GRID_TIMES_TO_GO) -> dict:
    """``{"bid": [[...]], "ask": [[...]]}``: the depths ``policy`` quotes at every time-to-go
    (rows) and inventory (columns), the mid at its start."""
    q = np.array(inventories, np.float32)
    rows = {"bid": [], "ask": []}
    for tau in times:
        obs = np.stack([np.full(q.size, LQ_PARAMS.mid0), q, np.full(q.size, tau)], 1)
        actions = np.clip(policy.act(obs.astype(np.float32)), -LQ_MAX_OFFSET, LQ_MAX_OFFSET)
        rows["bid"].append(actions[:, 0].astype(float).tolist())
        rows["ask"].append(actions[:, 1].astype(float).tolist())
    return rows


def _between_seeds(values: list[float]) -> dict:
    arr = np.array(values)
    mean = float(arr.mean())
    half = _t_quantile(arr.size - 1) * float(arr.std(ddof=1)) / math.sqrt(arr.size)
    return {"mean": mean, "ci_low": mean - half, "ci_high": mean + half, "min": float(arr.min())}


def best_fixed_spread(episodes: int, seed: int) -> tuple[float, FixedSpread]:
    """The fixed spread with the highest mean objective on the tuning paths ``seed``."""
    scores = {h: episode_objectives(FixedSpread(half_spread=h), episodes, seed).mean()
              for h in HALF_SPREADS}  # fmt: skip
    best = max(scores, key=scores.get)
    return best, FixedSpread(half_spread=best)


def run_optimum(
    seeds=(1, 2, 3, 4, 5),
    algos=("ppo",),
    out: str = "runs/optimum",
    steps: int | None = None,
    episodes: int = 8192,
    eval_seed: int = 123_456,
    workers: int = 1,
    **fields,
) -> dict:
    """Train every algorithm with every seed (``workers`` runs at a time: see
    :func:`train_seeds`), evaluate on ``episodes`` held-out paths, write ``optimum.json`` and
    ``optimum.html`` into ``out``; returns the result. Every argument is checked before anything
    is written or trained: ``episodes`` >= 4 (a quarter of them, from ``eval_seed + 1``, choose
    the fixed spread), ``eval_seed`` and every seed a generator's seed."""
    seeds = tuple(seeds)
    if not seeds:
        raise ValueError("seeds must hold at least one training seed")
    seeds = tuple(check_int(f"seeds[{i}]", s, 0, 2**63 - 1) for i, s in enumerate(seeds))
    for algo in algos:
        if algo not in TRAINERS:
            raise ValueError(f"algos must be among {', '.join(TRAINERS)}, got {algo!r}")
    episodes = check_int("episodes", episodes, 4, 2**24)
    eval_seed = check_int("eval_seed", eval_seed, 0, 2**63 - 2)  # eval_seed + 1 is a seed too
    workers = check_int("workers", workers, 1, 1024)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    discrete = DiscreteOptimum.from_params(LQ_PARAMS, max_offset=LQ_MAX_OFFSET)
    seconds = time.perf_counter() - started
    best = episode_objectives(discrete, episodes, eval_seed)
    closed = CarteaJaimungalPenalva.from_params(LQ_PARAMS, unquoted_depth=LQ_MAX_OFFSET)
    closed_objective = episode_objectives(closed, episodes, eval_seed)
    closed_depths = strategy_depths(closed, LQ_PARAMS, LQ_MAX_OFFSET)
    closed_discrete = float(policy_value(LQ_PARAMS, closed_depths)[0, LQ_PARAMS.max_inventory])
    half, fixed = best_fixed_spread(episodes // 4, eval_seed + 1)
    fixed_objective = episode_objectives(fixed, episodes, eval_seed)
    result: dict = {
        "params": LQ_PARAMS._asdict(),
        "episodes": episodes,
        "eval_seed": eval_seed,
        "share_reference": "discrete_optimum",
        "discrete_optimum": {
            "value": discrete.value,
            "simulated": _normal_ci(best),
            "depths": depth_grid(discrete),
            "seconds": seconds,
        },
        "optimum": {
            "closed_form": float(closed.value(np.zeros(1), LQ_PARAMS.horizon)[0]),
            "discrete": closed_discrete,
            "share_of_discrete_optimum": closed_discrete / discrete.value,
            "simulated": _normal_ci(closed_objective),
            "depths": depth_grid(closed),
        },
        "fixed_spread": {"half_spread": half, **_normal_ci(fixed_objective)},
        "grid": {"inventories": list(GRID_INVENTORIES), "times_to_go": list(GRID_TIMES_TO_GO)},
        "agents": {},
    }
    for algo in algos:
        runs = {}
        run_dirs = train_seeds(algo, seeds, str(out_dir), steps, workers, **fields)
        for seed, run_dir in run_dirs.items():
            policy = POLICIES[algo].load(run_dir, make_env(1, 0))
            objective = episode_objectives(policy, episodes, eval_seed)
            run = {
                "run_dir": run_dir,
                **_normal_ci(objective),
                "share_of_optimum": float(objective.mean() / best.mean()),
                "share_of_closed_form": float(objective.mean() / closed_objective.mean()),
                "depths": depth_grid(policy),
            }
            runs[str(seed)] = run
            print(f"{algo} seed {seed}: {run['mean']:.2f} ({run['share_of_optimum']:.1%} of the "
                  f"optimum, {run['share_of_closed_form']:.1%} of the closed form's)")  # fmt: skip
        steps_used = steps if steps is not None else CONFIGS[algo].total_steps
        result["agents"][algo] = {"total_steps": steps_used, "seeds": runs}
        for key in ("share_of_optimum", "share_of_closed_form"):
            shares = [r[key] for r in runs.values()]
            result["agents"][algo][key] = (
                _between_seeds(shares) if len(shares) > 1 else {"mean": shares[0]}
            )
    (out_dir / "optimum.json").write_text(json.dumps(result, indent=2))
    write_figure(result, out_dir / "optimum.html")
    return result


def write_figure(result: dict, path: Path) -> None:
    """The depths over inventory at each time-to-go: the discrete env's optimum's line, the closed
    form's, each learner's seeds."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    grid = result["grid"]
    q = grid["inventories"]
    times = grid["times_to_go"]
    fig = make_subplots(
        rows=2, cols=len(times), shared_yaxes=True, vertical_spacing=0.12,
        subplot_titles=[f"{side} depth, time to go {t:g}" for side in ("bid", "ask")
                        for t in times],
    )  # fmt: skip
    colours = {"ppo": "#d62728", "sac": "#2ca02c"}
    references = [("closed form (continuous time)", result["optimum"]["depths"],
                   {"color": "grey", "width": 2, "dash": "dash"})]  # fmt: skip
    if "discrete_optimum" in result:
        references.insert(0, ("optimum (discrete env, DP)", result["discrete_optimum"]["depths"],
                              {"color": "black", "width": 3}))  # fmt: skip
    for row, side in enumerate(("bid", "ask"), start=1):
        for col in range(len(times)):
            for name, depths, line in references:
                fig.add_trace(
                    go.Scatter(x=q, y=depths[side][col], name=name, line=line, legendgroup=name,
                               showlegend=row == 1 and col == 0),
                    row=row, col=col + 1,
                )  # fmt: skip
            for algo, agent in result["agents"].items():
                for i, (seed, run) in enumerate(agent["seeds"].items()):
                    fig.add_trace(
                        go.Scatter(x=q, y=run["depths"][side][col], name=f"{algo} seed {seed}",
                                   mode="lines+markers", legendgroup=algo,
                                   line={"color": colours.get(algo, "#1f77b4"), "dash": "dot"},
                                   opacity=0.6, showlegend=row == 1 and col == 0 and i == 0),
                        row=row, col=col + 1,
                    )  # fmt: skip
    fig.update_xaxes(title_text="inventory q")
    fig.update_yaxes(title_text="depth from the mid", col=1)
    fig.update_layout(
        height=700,
        title="Quoted depths: learners (one line per seed), the optimum of the discrete env and "
        "the closed form",
    )
    path.write_text(fig.to_html(include_plotlyjs="cdn", full_html=True))


def _share(share: dict) -> str:
    interval = (f" [{share['ci_low']:.1%}, {share['ci_high']:.1%}]"
                if "ci_low" in share else "")  # fmt: skip
    return f"{share['mean']:.1%}{interval}"


def _simulated(ci: dict) -> str:
    return f"simulated {ci['mean']:.2f} [{ci['ci_low']:.2f}, {ci['ci_high']:.2f}]"


def format_result(result: dict) -> str:
    """The result as a short text table (also of a result written before ``discrete_optimum``:
    then the shares are of the closed form's)."""
    opt = result["optimum"]
    discrete = result.get("discrete_optimum")
    if discrete is None:
        lines = [f"optimum: closed form {opt['closed_form']:.2f}, {_simulated(opt['simulated'])}"]
    else:
        lines = [
            f"optimum of the discrete env (dynamic programming): {discrete['value']:.2f}, "
            f"{_simulated(discrete['simulated'])}",
            f"closed form (continuous-time optimum) {opt['closed_form']:.2f}; in the discrete env "
            f"{opt['discrete']:.2f} ({opt['share_of_discrete_optimum']:.2%} of the optimum), "
            f"{_simulated(opt['simulated'])}",
        ]
    lines.append(
        f"best fixed spread (half {result['fixed_spread']['half_spread']:g}): "
        f"{result['fixed_spread']['mean']:.2f}"
    )
    for algo, agent in result["agents"].items():
        per_seed = ", ".join(f"{r['share_of_optimum']:.1%}" for r in agent["seeds"].values())
        closed = (f" ({_share(agent['share_of_closed_form'])} of the closed form's)"
                  if "share_of_closed_form" in agent else "")  # fmt: skip
        lines.append(
            f"{algo} ({agent['total_steps']:,} steps): {_share(agent['share_of_optimum'])} of the "
            f"optimum{closed}; per seed {per_seed}"
        )
    return "\n".join(lines)
