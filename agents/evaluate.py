"""Evaluate trained agents and the classical baselines on the same held-out episodes.

Every policy plays ``episodes`` episodes of the order-book env (one per env, all started from the
same held-out seed, so every policy meets the same order flow draws at the start), and each
metric is summarised over episodes with a 95% confidence interval:

- ``utility``: mean-variance utility ``E[PnL] - (risk_aversion / 2) Var[PnL]`` across episodes
  of the PnL under the liquidation mark (the final inventory traded against the other traders'
  book, taker fee paid: a mark the market maker's own quotes cannot push),
  percentile-bootstrap interval (2000 resamples of the episodes);
- ``pnl``: episode PnL under the liquidation mark (currency), mean over episodes,
  normal-approximation interval; ``pnl_std``: its std across episodes (bootstrap interval);
- ``utility_mid``, ``pnl_mid``: the same under the mid mark (``cash + inventory * mid``);
- ``utility_fair``, ``pnl_fair`` (only where the simulated flow has a fair value,
  ``MarketMakingVectorEnv.has_fair_value``): the same with the final inventory marked at the
  flow's fair value, no fee (what the position is worth to the market the flow returns to);
- ``sharpe``: per episode, mean / std of the per-step PnL change (not annualised), then averaged;
- ``inventory_std``, ``fill_ratio`` (lots filled / lots submitted), ``fill_probability`` (share
  of quote intervals in which the resting quote was filled), ``spread_captured`` (ticks per
  filled lot), ``adverse_rate`` (fills followed by an unfavourable move of the other traders'
  mid), ``max_drawdown`` (currency), ``liquidation_beyond_book`` (lots of the final inventory
  the other traders' book could not take, valued at the deepest price reached: where it is not
  0 the liquidation mark flatters): per-episode values from the env's ``info["episode"]``,
  averaged with normal intervals;
- ``utility_margin``: the utility less that of the best baseline other than the agent itself
  (by utility), on the same episodes, with a paired percentile-bootstrap interval (the same
  resampled episodes for both): every policy meets the same draws of the flow, so the pairing
  takes out the episodes' common luck, and an interval above 0 says the agent beats the best
  baseline on these episodes.

Baselines (``agents.tuning``): Avellaneda-Stoikov and GLFT with A, k, sigma calibrated in the
simulator (``fastlob.calibration``), the fixed spread and the touch quoter, each tuned jointly
over its quote size and its own parameters (the risk aversion; the half-width and an inventory
cap; the cap) on a grid widened at its edges, by the utility above on tuning episodes disjoint
from the evaluation's (seed + 1; a historical market's train part), with the env-steps spent
saved beside the choices in ``baselines.json``; and random quotes at 1 lot, untuned.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from fastlob import MarketMakingConfig, MarketMakingVectorEnv
from fastlob._checks import check_int, check_real, read_json_file, write_text_whole
from fastlob.env import check_config
from fastlob.plain import from_plain

from .common import RunError
from .tuning import TunedBaselines, read_choices, tune_baselines, tuned_policies, utility

#: metrics of the table, in order
METRICS = (
    "utility",
    "pnl",
    "pnl_std",
    "utility_mid",
    "pnl_mid",
    "sharpe",
    "inventory_std",
    "fill_ratio",
    "fill_probability",
    "spread_captured",
    "adverse_rate",
    "max_drawdown",
    "liquidation_beyond_book",
    "utility_margin",
)

#: metrics a table has only where the market's flow has a fair value, after ``pnl_mid``
FAIR_METRICS = ("utility_fair", "pnl_fair")


def table_metrics(table: dict) -> tuple[str, ...]:
    """The metrics of an evaluation table's rows, in order: :data:`METRICS`, with
    :data:`FAIR_METRICS` after ``pnl_mid`` where every row has them."""
    rows = list(table.values())
    if not rows or not all(m in row for row in rows for m in FAIR_METRICS):
        return METRICS
    at = METRICS.index("pnl_mid") + 1
    return METRICS[:at] + FAIR_METRICS + METRICS[at:]


def play(policy, config: MarketMakingConfig, episodes: int, seed: int) -> dict[str, np.ndarray]:
    """One episode per env; returns the per-episode arrays of ``info["episode"]``."""
    env = MarketMakingVectorEnv(episodes, config=config, seed=seed)
    obs, _ = env.reset(seed=seed)
    finished: dict[str, np.ndarray] = {}
    done = np.zeros(episodes, bool)
    for _ in range(config.episode_steps):
        obs, _, _, _, info = env.step(policy.act(obs))
        if "episode" in info:
            ended = np.asarray(info["_episode"]) & ~done
            for key, values in info["episode"].items():
                finished.setdefault(key, np.zeros(episodes))[ended] = values[ended]
            done |= ended
        if done.all():
            break
    return finished


def _normal_ci(values: np.ndarray) -> dict[str, float]:
    mean = float(np.mean(values))
    half = 1.96 * float(np.std(values, ddof=1)) / np.sqrt(len(values)) if len(values) > 1 else 0.0
    return {"mean": mean, "ci_low": mean - half, "ci_high": mean + half}


def _bootstrap_ci(values: np.ndarray, statistic, resamples: int = 2000, seed: int = 0):
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(values), size=(resamples, len(values)))
    stats = np.array([statistic(values[d]) for d in draws])
    low, high = np.percentile(stats, [2.5, 97.5])
    return {"mean": float(statistic(values)), "ci_low": float(low), "ci_high": float(high)}


def summarize(per_episode: dict[str, np.ndarray], risk_aversion: float) -> dict[str, dict]:
    """{metric: {"mean", "ci_low", "ci_high"}} over episodes (see the module docstring)."""
    pnl = np.asarray(per_episode["liquidation_pnl"], np.float64)
    pnl_mid = np.asarray(per_episode["pnl"], np.float64)
    std = np.asarray(per_episode["pnl_step_std"])
    sharpe = np.divide(per_episode["pnl_step_mean"], std, out=np.zeros_like(std), where=std > 0)
    table = {
        "utility": _bootstrap_ci(pnl, lambda x: utility(x, risk_aversion)),
        "pnl": _normal_ci(pnl),
        "pnl_std": _bootstrap_ci(pnl, lambda x: float(np.std(x))),
        "utility_mid": _bootstrap_ci(pnl_mid, lambda x: utility(x, risk_aversion)),
        "pnl_mid": _normal_ci(pnl_mid),
        "sharpe": _normal_ci(sharpe),
    }
    if "fair_pnl" in per_episode:
        pnl_fair = np.asarray(per_episode["fair_pnl"], np.float64)
        table["utility_fair"] = _bootstrap_ci(pnl_fair, lambda x: utility(x, risk_aversion))
        table["pnl_fair"] = _normal_ci(pnl_fair)
    for key in (
        "inventory_std",
        "fill_ratio",
        "fill_probability",
        "spread_captured",
        "adverse_rate",
        "max_drawdown",
        "liquidation_beyond_book",
    ):
        table[key] = _normal_ci(np.asarray(per_episode[key], np.float64))
    return table


def utility_margin(
    pnl: np.ndarray, other: np.ndarray, risk_aversion: float, resamples: int = 2000, seed: int = 0
) -> dict[str, float]:
    """``utility(pnl) - utility(other)`` of two policies' PnLs on the same episodes (float64
    (E,) each, episode ``e`` the same draws for both), with a paired percentile-bootstrap 95%
    interval: each resample draws episodes with replacement and takes the same ones from
    both."""
    pnl, other = np.asarray(pnl, np.float64), np.asarray(other, np.float64)
    if pnl.shape != other.shape or pnl.ndim != 1:
        raise ValueError(f"the two PnL arrays must be (E,) alike, got {pnl.shape}, {other.shape}")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(pnl), size=(resamples, len(pnl)))
    margins = np.array(
        [utility(pnl[d], risk_aversion) - utility(other[d], risk_aversion) for d in draws]
    )
    low, high = np.percentile(margins, [2.5, 97.5])
    mean = utility(pnl, risk_aversion) - utility(other, risk_aversion)
    return {"mean": float(mean), "ci_low": float(low), "ci_high": float(high)}


def add_margins(
    table: dict[str, dict], plays: dict[str, dict], baselines, risk_aversion: float
) -> None:
    """Each row of ``table`` gains ``utility_margin`` (:func:`utility_margin`) against the best
    of ``baselines`` (by utility) other than itself; ``plays``: each agent's per-episode
    arrays."""
    ranked = sorted(baselines, key=lambda name: table[name]["utility"]["mean"], reverse=True)
    for name, row in table.items():
        rival = next(b for b in ranked if b != name)
        row["utility_margin"] = utility_margin(
            plays[name]["liquidation_pnl"], plays[rival]["liquidation_pnl"], risk_aversion
        )


def read_run_config(run_dir: Path) -> dict:
    """A run's ``config.json`` as a dict; a :class:`RunError` naming the file if the directory
    holds no run or the file is not the JSON object a run writes."""
    path = Path(run_dir) / "config.json"
    if not Path(run_dir).is_dir():
        raise RunError(f"{run_dir}: no such directory: not a training run")
    if not path.is_file():
        raise RunError(f"{path}: missing: {run_dir} is not a training run")
    try:
        saved = read_json_file(path, "run config")
    except ValueError as err:
        raise RunError(str(err)) from None
    if not isinstance(saved, dict):
        raise RunError(f"{path}: not a run's config (a JSON object)")
    missing = [key for key in ("algo", "env") if key not in saved]
    if missing:
        raise RunError(f"{path}: lacks {', '.join(missing)}")
    if saved["algo"] not in ("ppo", "sac", "dqn"):
        raise RunError(f"{path}: unknown algorithm {saved['algo']!r} (ppo, sac or dqn)")
    return saved


def run_config(run_dir: Path) -> MarketMakingConfig:
    """The market a run trained on (its config.json's ``env``), checked field by field."""
    saved = read_run_config(run_dir)
    try:
        config = from_plain(MarketMakingConfig, saved["env"], "env")
        check_config(config)
        return config
    except (TypeError, ValueError) as err:
        raise RunError(f"{Path(run_dir) / 'config.json'}: {err}") from None


def load_policy(run_dir: Path, config: MarketMakingConfig, device: str = "cpu"):
    """The trained agent in ``run_dir`` as a batched policy."""
    algo = read_run_config(run_dir)["algo"]
    env = MarketMakingVectorEnv(1, config=config)
    if algo == "ppo":
        from .ppo import PPOPolicy

        return "ppo", PPOPolicy.load(run_dir, env, device)
    if algo == "sac":
        from .sac import SACPolicy

        return "sac", SACPolicy.load(run_dir, env, device)
    if algo == "dqn":
        from .dqn import DQNPolicy

        return "dqn", DQNPolicy.load(run_dir, env, device)
    raise RunError(f"{run_dir}: unknown algorithm {algo!r}")  # pragma: no cover - checked above


def held_out_market(config: MarketMakingConfig) -> MarketMakingConfig:
    """The market an evaluation plays: a historical market's held-out hours (its ``eval``
    part) when ``config`` trains on its ``train`` part, in non-overlapping windows (independent
    episodes: ``lobster_windows="tiled"``); else ``config`` itself."""
    if config.lobster and config.lobster_part == "train":
        return config.replace(lobster_part="eval", lobster_windows="tiled")
    return config


def independent_episodes(config: MarketMakingConfig, episodes: int) -> int:
    """The episodes an evaluation of ``episodes`` plays on ``config``: all of them, except on a
    historical market with tiled windows, where no more than the part holds without overlap
    (more would replay the same windows and narrow the intervals without new evidence)."""
    if not config.lobster or config.lobster_windows != "tiled":
        return episodes
    market = MarketMakingVectorEnv(1, config=config).market
    seconds = config.episode_steps * config.dt
    return min(episodes, market.independent_windows(config.lobster_part, seconds))


def evaluate(
    run_dirs: list[str],
    episodes: int = 256,
    seed: int = 123_456,
    risk_aversion: float = 0.01,
    tuning_episodes: int = 128,
    config: MarketMakingConfig | None = None,
    tuned: TunedBaselines | None = None,
) -> dict:
    """The table for every trained agent in ``run_dirs`` and every baseline; writes
    ``eval.json`` (the table) and ``baselines.json`` (the tuned choices, every grid and the
    tuning budget: the layout in ``agents.tuning``) into each run directory trained on the
    market played (a run played on another market keeps its own files). ``config`` is the
    market played (default: the one the first run trained on; the default market with 200-step
    episodes when no run is given); on a historical market the baselines are tuned on its train
    part and every agent plays its held-out eval part in non-overlapping windows, as many as it
    holds up to ``episodes`` (:func:`held_out_market`, :func:`independent_episodes`). Returns
    {"table": ..., "baselines": choices, "episodes": the episodes each agent played,
    "written": the run directories that got the files}.
    ``tuned``: the baselines as ``tune_baselines(config, tuning_episodes, seed + 1,
    risk_aversion)`` gave them, to play instead of tuning them again (a study's runs of one
    market share one tuning); refused if its tuning settings are not these.

    ``episodes`` and ``tuning_episodes`` are at least 2 (an interval, and the utility's
    variance, need two); a held-out part with fewer than two non-overlapping windows is refused
    before any work, as is every argument out of range."""
    episodes = check_int("episodes", episodes, 2, 2**24)
    tuning_episodes = check_int("tuning_episodes", tuning_episodes, 2, 2**24)
    seed = check_int("seed", seed, 0, 2**63 - 8)  # the tuning seeds seed + 1 .. seed + 7
    risk_aversion = check_real("risk_aversion", risk_aversion, 0.0, math.inf)
    paths = [Path(p) for p in run_dirs]
    policies = {}
    for path in paths:  # every run is opened and checked before any work
        name, policy = load_policy(path, run_config(path))
        policies[name if name not in policies else f"{name}:{path.name}"] = policy
    if config is None:
        config = run_config(paths[0]) if paths else MarketMakingConfig(episode_steps=200)
    held_out = held_out_market(config)
    played = independent_episodes(held_out, episodes)
    if played < 2:
        raise ValueError(
            f"the {held_out.lobster_part!r} part of {held_out.lobster[0]} holds {played} "
            f"non-overlapping window of config.episode_steps * config.dt = "
            f"{held_out.episode_steps * held_out.dt:g} s: an evaluation needs two or more "
            "independent episodes (shorten the episode, or give the part more of the data: "
            "train_fraction)"
        )
    if tuned is None:
        tuned = tune_baselines(config, tuning_episodes, seed + 1, risk_aversion)
    else:  # policies built afresh: random quotes carry a generator that playing advances
        _check_tuning(tuned.choices, config, tuning_episodes, seed + 1, risk_aversion)
        tuned = TunedBaselines(tuned_policies(config, tuned.choices), tuned.choices)
    policies.update(tuned.policies)
    plays = {name: play(policy, held_out, played, seed) for name, policy in policies.items()}
    table = {name: summarize(plays[name], risk_aversion) for name in policies}
    add_margins(table, plays, tuned.policies, risk_aversion)
    # a run keeps the table of its own market only: the report reads it as that market's
    written = [path for path in paths if run_config(path) == config]
    for path in written:  # each file whole or not at all
        write_text_whole(path / "eval.json", json.dumps(table, indent=2))
        write_text_whole(path / "baselines.json", json.dumps(tuned.choices, indent=2))
    return {"table": table, "baselines": tuned.choices, "episodes": played, "written": written}


def _check_tuning(choices: dict, config, episodes: int, seed: int, risk_aversion: float):
    """Refuse baselines tuned otherwise than an evaluation with these settings would tune
    them."""
    wanted = {
        "tuning_episodes": episodes,
        "tuning_seed": seed,
        "risk_aversion": risk_aversion,
        "episode_steps": config.episode_steps,
        "tuning_part": config.lobster_part if config.lobster else None,
    }
    for key, value in wanted.items():
        if choices.get(key) != value:
            raise ValueError(
                f"tuned: baselines tuned with {key} = {choices.get(key)!r}, this evaluation "
                f"tunes with {value!r}"
            )


def _number(x: float) -> str:
    """Four significant figures, without an exponent from 1e-4 to 1e5."""
    return f"{x:.0f}" if 1e4 <= abs(x) < 1e5 else f"{x:.4g}"


def format_table(table: dict, per_block: int = 4) -> str:
    """A plain-text table, ``per_block`` metrics side by side (in :func:`table_metrics` order, the
    liquidation-marked utility first), a row per agent, ``mean [low, high]`` per metric, each
    column as wide as its widest cell; blocks separated by a blank line."""
    names = [f"{name:<20}" for name in ("agent", *table)]
    blocks = []
    metrics = table_metrics(table)
    for first in range(0, len(metrics), per_block):
        columns = []
        for m in metrics[first : first + per_block]:
            cells = [m] + [
                f"{_number(row[m]['mean'])} [{_number(row[m]['ci_low'])}, "
                f"{_number(row[m]['ci_high'])}]"
                for row in table.values()
            ]
            width = max(len(c) for c in cells) + 3
            columns.append([c.rjust(width) for c in cells])
        blocks.append("\n".join("".join(line) for line in zip(names, *columns, strict=True)))
    return "\n\n".join(blocks)


#: lots queued ahead: the buckets of :func:`fill_rates_by_queue`
QUEUE_BREAKS = (1, 3, 10, 30)


def fill_rates_by_queue(
    run_dir, episodes: int = 64, seed: int = 123_456, queue_breaks=QUEUE_BREAKS
):
    """How often a resting quote fills, by the lots queued ahead of it: the trained agent of
    ``run_dir`` and the baselines as ``evaluate`` tuned them (its ``baselines.json``), each
    recorded on ``episodes`` held-out episodes of the run's market
    (``fastlob.metrics.fill_rate_by_queue_and_size``, one size bucket). A polars frame:
    ``agent``, ``queue`` (the bucket's label), ``fill_rate`` (maker lots filled in the next step
    per resting lot), ``quotes`` (resting quotes in the bucket) and ``share`` (of the agent's
    resting quotes)."""
    import polars as pl

    from fastlob import metrics
    from fastlob.recording import record

    path = Path(run_dir)
    choices_file = path / "baselines.json"
    if not choices_file.is_file():
        raise RunError(f"{path}: no baselines.json (run fastlob eval on it first)")
    config = run_config(path)
    name, trained = load_policy(path, config)
    choices = read_choices(config, choices_file)
    policies = {name: trained, **tuned_policies(config, choices, str(choices_file))}
    labels = metrics.bucket_labels(queue_breaks)
    frames = []
    for agent, policy in policies.items():
        rec = record(policy, held_out_market(config), episodes, seed)
        cells = metrics.fill_rate_by_queue_and_size(rec.steps, rec.fills, queue_breaks, [])
        frames.append(
            cells.select(
                pl.lit(agent).alias("agent"),
                pl.col("queue_bucket").map_elements(labels.__getitem__, pl.String).alias("queue"),
                "fill_rate",
                "quotes",
                (pl.col("quotes") / pl.col("quotes").sum()).alias("share"),
            )
        )
    return pl.concat(frames)
