"""Studies: a grid of trainings and held-out evaluations over algorithms, config fields and seeds,
run as Ray tasks, with results as distributions over seeds.

A study file (TOML, read as data: nothing in it runs)::

    name = "demo-seeds"           # the study's folder under --out
    algorithms = ["ppo"]          # ppo, sac, dqn
    seeds = [1, 2, 3, 4, 5]       # training seeds per grid point
    episodes = 256                # held-out episodes per evaluation
    tuning_episodes = 128         # episodes the baselines are tuned on
    eval_seed = 123456            # the held-out episodes (the same for every trial)
    risk_aversion = 0.01

    [config]                      # fields every trial's agent config takes (env.* nested)
    total_steps = 2_000_000
    env = { episode_steps = 200 }

    [grid]                        # swept fields (dotted names): the trials are the product
    learning_rate = [1e-3, 3e-4]
    "env.latency" = [0.05, 0.2]
    market = ["../markets/large-tick.json", "../markets/small-tick.json"]

``market`` sweeps whole markets: each value is a market file (``MarketMakingConfig.to_json``;
a path relative to the study file), read when the study is, whose fields become the trial's
``env`` before the ``env`` fields of ``[config]`` and of the other swept fields are set on top
(e.g. ``env = { post_only = true }`` on every market).

Every trial is one training (one Numba and one torch thread) and one evaluation of the trained
agent and the tuned baselines on the same held-out episodes (``evaluate.evaluate``). Trials are
Ray tasks, not Ray Tune trials: each is a plain function of its spec with nothing to schedule
between (no early stopping, no population), so tasks keep the runner small and a trial is
exactly ``fastlob train`` then ``fastlob eval``. On one machine ``ray.init()`` starts a local
cluster and runs as many trials at once as it has CPUs; with an address it joins an existing
cluster (the study folder must then be on a filesystem every node sees).

A finished trial leaves ``trial.json`` in its folder and is skipped when the study is run
again; a trial that raises or whose worker dies is retried once by Ray, and one that still fails
is reported (which and why) while everything that finished is kept and summarized. Outputs in
the study folder: ``results.parquet`` (a row per trial x agent x metric, the trial's swept
fields as columns), ``summary.parquet`` (per grid point, agent and metric: the mean over seeds
and its 95% between-seed interval, and for the trained agent whether it beats the best baseline
in every seed, most, on average only, or not), and ``study.html`` (each metric against each
swept field, one point per seed).
"""

from __future__ import annotations

import dataclasses
import importlib
import itertools
import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from fastlob._checks import (
    check_int,
    check_real,
    key_text,
    read_json_file,
    read_settings_text,
    shown,
)
from fastlob.plain import from_plain, to_plain

from .common import check_hyperparameters
from .evaluate import FAIR_METRICS, METRICS

#: the keys a study file may have
STUDY_KEYS = {
    "name": str,
    "algorithms": list,
    "seeds": list,
    "episodes": int,
    "tuning_episodes": int,
    "eval_seed": int,
    "risk_aversion": (int, float),
    "config": dict,
    "grid": dict,
    "max_trials": int,
}
#: the most trials a study may hold unless its file raises ``max_trials``
MAX_TRIALS = 10_000
ALGORITHMS = ("ppo", "sac", "dqn")
#: the metric by which a trained agent beats a baseline
DECIDING_METRIC = "utility"
#: each trial's agent config: what a study may not set (the runner owns them)
RUNNER_FIELDS = ("seed", "runs_dir", "run_name", "resume", "progress", "torch_threads")
#: the grid key that sweeps market files
MARKET = "market"


class StudyError(ValueError):
    """A study file that cannot run, named with the key at fault."""


@dataclasses.dataclass(frozen=True)
class Study:
    """A checked study file (see the module docstring)."""

    name: str
    algorithms: tuple[str, ...]
    seeds: tuple[int, ...]
    episodes: int
    tuning_episodes: int
    eval_seed: int
    risk_aversion: float
    config: dict
    grid: dict
    #: the swept market files' env configs as plain values, by the path the file gives
    markets: dict = dataclasses.field(default_factory=dict)
    #: the most trials the study may hold (its file's ``max_trials``)
    max_trials: int = MAX_TRIALS

    def evaluation(self) -> dict[str, Any]:
        """The settings that make a trial's evaluation: in every trial's spec, so that a rerun
        with other ones never takes old results for new."""
        return {
            "episodes": self.episodes,
            "tuning_episodes": self.tuning_episodes,
            "eval_seed": self.eval_seed,
            "risk_aversion": self.risk_aversion,
        }

    def points(self) -> list[dict[str, Any]]:
        """The grid's points: {dotted field: value}, in the file's order."""
        names = list(self.grid)
        return [
            dict(zip(names, values, strict=True))
            for values in itertools.product(*self.grid.values())
        ]

    def trials(self) -> list[dict[str, Any]]:
        """Every trial's spec: id, algorithm, point index, the swept values, seed, and the
        whole agent config as plain values."""
        specs = []
        for algo in self.algorithms:
            for index, point in enumerate(self.points()):
                for seed in self.seeds:
                    plain = _with_point(self._base_config(point), point)
                    plain.update(seed=seed, progress=False, torch_threads=1)
                    specs.append(
                        {
                            "id": f"{algo}_p{index:03d}_seed{seed}",
                            "algorithm": algo,
                            "point": index,
                            "swept": point,
                            "seed": seed,
                            "config": plain,
                            "evaluation": self.evaluation(),
                        }
                    )
        return specs

    def _base_config(self, point: dict) -> dict:
        """The study's config, its env on top of the point's market file (if it has one)."""
        if MARKET not in point:
            return self.config
        return {
            **self.config,
            "env": _merged(self.markets[point[MARKET]], self.config.get("env", {})),
        }


def _merged(base: dict, top: dict) -> dict:
    """``base`` with ``top``'s values set on it, nested dicts merged (``flow = {...}`` changes
    the named flow fields only)."""
    out = dict(base)
    for key, value in top.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = _merged(out[key], value) if both else value
    return out


def _with_point(config: dict, point: dict) -> dict:
    """``config`` (nested plain values) with the dotted fields of ``point`` set."""
    out = json.loads(json.dumps(config))
    for dotted, value in point.items():
        if dotted == MARKET:  # already the base of the env
            continue
        *parents, leaf = dotted.split(".")
        node = out
        for name in parents:
            node = node.setdefault(name, {})
            if not isinstance(node, dict):
                raise StudyError(
                    f"grid.{key_text(dotted)}: {key_text(name)} is not a nested config"
                )
        node[leaf] = value
    return out


def config_class(algo: str):
    """The agent config dataclass of ``algo``."""
    module = importlib.import_module(f".{algo}", __package__)
    return next(
        cls
        for name, cls in vars(module).items()
        if name.lower() == f"{algo}config" and dataclasses.is_dataclass(cls)
    )


def read_study(path) -> Study:
    """Read and check a study file: every key, every algorithm and every trial's config (each
    field named as ``grid.env.latency`` or ``config.learning_rate``), before anything runs."""
    import tomllib

    path = Path(path)
    try:
        text = read_settings_text(path, "study file")
    except OSError as err:
        raise StudyError(f"{path}: cannot read ({err})") from None
    except ValueError as err:  # it names the file
        raise StudyError(str(err)) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise StudyError(f"{path}: not TOML ({err})") from None
    except ValueError as err:  # an integer beyond Python's 4300 digits
        raise StudyError(f"{path}: not a study file ({err})") from None
    except RecursionError:
        raise StudyError(f"{path}: nested too deeply to be a study file") from None
    _check_plain(raw, path, "")
    unknown = sorted(set(raw) - set(STUDY_KEYS))
    if unknown:
        raise StudyError(
            f"{path}: unknown key {', '.join(map(key_text, unknown))} (keys: "
            f"{', '.join(STUDY_KEYS)})"
        )
    for key, kind in STUDY_KEYS.items():
        if key in raw and (not isinstance(raw[key], kind) or isinstance(raw[key], bool)):
            what = KIND_TEXT.get(kind, "a number")
            raise StudyError(f"{path}: {key} must be {what}, got {shown(raw[key])}")
    if not _is_float(raw.get("risk_aversion", 0.01)):
        raise StudyError(f"{path}: risk_aversion is beyond the range of a float")
    study = Study(
        name=raw.get("name", path.stem),
        algorithms=tuple(raw.get("algorithms", ["ppo"])),
        seeds=tuple(raw.get("seeds", [1])),
        episodes=raw.get("episodes", 256),
        tuning_episodes=raw.get("tuning_episodes", 128),
        eval_seed=raw.get("eval_seed", 123_456),
        risk_aversion=float(raw.get("risk_aversion", 0.01)),
        config=raw.get("config", {}),
        grid=raw.get("grid", {}),
        max_trials=raw.get("max_trials", MAX_TRIALS),
    )
    _check_size(study, path)  # before any market file is read or trial built
    study = dataclasses.replace(study, markets=_read_markets(study.grid, path))
    _check(study, path)
    return study


#: how a study file's key types are named in errors
KIND_TEXT = {str: "a string", list: "a list", int: "an integer", dict: "a table"}


def _is_float(value) -> bool:
    try:
        float(value)
    except OverflowError:
        return False
    return True


def _check_plain(value, path: Path, where: str) -> None:
    """A StudyError naming the key if the TOML holds a date or a time (a study holds numbers,
    strings, booleans, lists and tables only)."""
    if isinstance(value, dict):
        for key, item in value.items():
            _check_plain(item, path, f"{where}.{key_text(key)}" if where else key_text(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_plain(item, path, f"{where}[{index}]")
    elif not isinstance(value, (str, int, float, bool)):
        raise StudyError(
            f"{path}: {where} is a TOML {type(value).__name__}: a study holds numbers, strings, "
            "booleans, lists and tables"
        )


def _read_markets(grid: dict, path: Path) -> dict:
    """The market files the grid sweeps, as plain env configs keyed by the path as written."""
    from fastlob import MarketMakingConfig

    files = grid.get(MARKET, [])
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise StudyError(f"{path}: grid.market must be a list of market file paths")
    markets = {}
    for name in files:
        try:
            config = MarketMakingConfig.from_file(path.parent / name)
        except (OSError, TypeError, ValueError) as err:
            raise StudyError(f"{path}: grid.market {name!r}: {err}") from None
        markets[name] = to_plain(config)
    return markets


def _check_size(study: Study, path: Path) -> None:
    """The grid's shape and the number of trials, before any trial is built."""
    if not isinstance(study.grid, dict):
        raise StudyError(f"{path}: grid must be a table of swept fields")
    for name, values in study.grid.items():
        if not isinstance(values, list) or not values:
            raise StudyError(f"{path}: grid.{key_text(name)} must be a non-empty list of values")
    limit = study.max_trials
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10**9:
        raise StudyError(f"{path}: max_trials must be an integer in [1, 1e9], got {shown(limit)}")
    if not isinstance(study.algorithms, tuple) or not isinstance(study.seeds, tuple):
        raise StudyError(f"{path}: algorithms and seeds must be lists")
    trials = len(study.algorithms) * len(study.seeds) * math.prod(map(len, study.grid.values()))
    if trials > limit:
        raise StudyError(
            f"{path}: {trials} trials (algorithms x grid points x seeds), more than max_trials "
            f"= {limit} (raise max_trials in the study file if you mean it)"
        )


def _check(study: Study, path: Path) -> None:
    if not study.name or not all(c.isalnum() or c in "-_." for c in study.name):
        raise StudyError(f"{path}: name must be letters, digits, - _ . (a folder name)")
    for algo in study.algorithms:
        if algo not in ALGORITHMS:
            raise StudyError(f"{path}: algorithms: {algo!r} is not one of {', '.join(ALGORITHMS)}")
    if not study.algorithms:
        raise StudyError(f"{path}: algorithms is empty")
    seeds = study.seeds
    if not seeds or not all(isinstance(s, int) and 0 <= s < 2**31 for s in seeds):
        raise StudyError(f"{path}: seeds must be integers in [0, 2**31), at least one")
    if len(set(seeds)) != len(seeds):
        raise StudyError(f"{path}: seeds repeat")
    try:  # as evaluate checks them, before Ray starts
        check_int("episodes", study.episodes, 2, 2**24)
        check_int("tuning_episodes", study.tuning_episodes, 2, 2**24)
        check_int("eval_seed", study.eval_seed, 0, 2**63 - 8)
        check_real("risk_aversion", study.risk_aversion, 0.0, math.inf)
    except (TypeError, ValueError) as err:
        raise StudyError(f"{path}: {err}") from None
    for field in (*study.config, *(k.split(".")[0] for k in study.grid)):
        if field in RUNNER_FIELDS:
            raise StudyError(f"{path}: {field} is set by the study for each trial")
    from fastlob.env import check_config

    try:
        specs = study.trials()
    except StudyError as err:  # a swept field under one that is not a table
        raise StudyError(f"{path}: {err}") from None
    for spec in specs:
        try:
            config = from_plain(config_class(spec["algorithm"]), spec["config"], "config")
            try:
                check_config(config.env)
            except (TypeError, ValueError) as err:  # it names the market's fields config.<f>
                raise type(err)(str(err).replace("config.", "config.env.", 1)) from None
            check_hyperparameters(config)
            module = importlib.import_module(f".{spec['algorithm']}", __package__)
            if hasattr(module, "check_config"):  # what the algorithm checks of its own fields
                module.check_config(config)
        except (TypeError, ValueError) as err:
            why = _named_in_study(str(err), spec["swept"])
            raise StudyError(f"{path}: trial {spec['id']}: {why}") from None


def _named_in_study(message: str, swept: dict) -> str:
    """``message`` with its leading ``config.<dotted field>`` named as the study file names it:
    ``grid.<dotted>`` when the grid sweeps it, else ``config.<dotted>``."""
    head, _, rest = message.partition(" ")
    if rest.startswith("has no field "):  # "config.env has no field latncy (its fields ...)"
        field = rest.removeprefix("has no field ").split(" ")[0].rstrip(",")
        parent = head.removeprefix("config").removeprefix(".")
        if f"{parent}.{field}".lstrip(".") in swept:
            return "grid" + head.removeprefix("config") + " " + rest
        return message
    for dotted in swept:
        if head.rstrip(":").rstrip(",") == f"config.{dotted}" or head.startswith(
            f"config.{dotted}["
        ):
            return "grid." + head.removeprefix("config.") + (" " + rest if rest else "")
    return message


# ---------------------------------------------------------------------------------------------
# one trial (in a Ray worker)
# ---------------------------------------------------------------------------------------------


def run_trial(spec: dict, study: dict, trials_dir: str) -> dict:
    """Train and evaluate one trial in ``trials_dir/<id>`` with one Numba and one torch thread;
    writes and returns its ``trial.json`` (the spec, the evaluation table, the seconds)."""
    import numba
    import torch

    numba.set_num_threads(1)
    torch.set_num_threads(1)
    from .evaluate import evaluate

    folder = Path(trials_dir) / spec["id"]
    if folder.exists():
        shutil.rmtree(folder)  # what a crashed attempt left
    folder.mkdir(parents=True)
    (folder / "worker.pid").write_text(str(os.getpid()))
    started = time.perf_counter()
    algo = spec["algorithm"]
    config = from_plain(config_class(algo), spec["config"], "config")
    config = dataclasses.replace(config, runs_dir=str(folder), run_name="run")
    module = importlib.import_module(f".{algo}", __package__)
    module.train(config)
    result = evaluate(
        [str(folder / "run")],
        episodes=study["episodes"],
        seed=study["eval_seed"],
        risk_aversion=study["risk_aversion"],
        tuning_episodes=study["tuning_episodes"],
    )
    out = {
        "spec": spec,
        "table": result["table"],
        "baselines": result["baselines"],
        "seconds": time.perf_counter() - started,
    }
    tmp = folder / "trial.json.tmp"
    tmp.write_text(json.dumps(out, indent=2))
    tmp.replace(folder / "trial.json")  # whole or not at all: its presence means finished
    return out


def finished_trial(trials_dir: Path, spec: dict, evaluated: bool = True) -> dict | None:
    """The trial's saved result, if it finished with this very spec (with ``evaluated``
    False: with this spec's training, whatever its evaluation settings); a StudyError naming
    the file if it finished with another (the study file changed under it) or is not a trial's
    result."""
    path = trials_dir / spec["id"] / "trial.json"
    if not path.is_file():
        return None
    try:
        saved = read_json_file(path, "trial result")
    except ValueError as err:
        raise StudyError(f"{err}: remove the trial's folder") from None
    if not isinstance(saved, dict) or not isinstance(saved.get("spec"), dict):
        raise StudyError(f"{path}: not a trial's result (an object): remove the trial's folder")
    mine = json.loads(json.dumps(spec))
    if _training(saved["spec"]) != _training(mine):
        raise StudyError(
            f"{path}: trial {spec['id']} finished with other settings: remove its folder, or "
            f"give the study another name"
        )
    if evaluated and saved["spec"].get("evaluation") != mine.get("evaluation"):
        raise StudyError(
            f"{path}: trial {spec['id']} was evaluated with other settings (episodes, "
            f"tuning_episodes, eval_seed, risk_aversion): run the study with --reevaluate to "
            f"evaluate it again, or give the study another name"
        )
    return saved


def _training(spec: dict) -> dict:
    """A trial's spec less its evaluation settings: what its training was."""
    return {key: value for key, value in spec.items() if key != "evaluation"}


# ---------------------------------------------------------------------------------------------
# the study
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class StudyResult:
    folder: Path
    finished: list[dict]
    skipped: list[str]
    failed: dict[str, str]  # trial id -> why
    seconds: float


def run_study(
    study: Study, out: str | Path = "studies", address: str | None = None, num_cpus=None
) -> StudyResult:
    """Run every trial of ``study`` not already finished, as Ray tasks (see the module
    docstring); then write the results, the summary and the page from every finished trial."""
    import ray

    folder = Path(out) / study.name
    trials_dir = folder / "trials"
    started = time.perf_counter()
    finished, skipped, todo = [], [], []
    for spec in study.trials():  # every finished trial checked before anything is written
        saved = finished_trial(trials_dir, spec)
        if saved is None:
            todo.append(spec)
        else:
            finished.append(saved)
            skipped.append(spec["id"])
    trials_dir.mkdir(parents=True, exist_ok=True)
    (folder / "study.json").write_text(json.dumps(to_plain(study), indent=2))
    failed: dict[str, str] = {}
    if todo:
        own = not ray.is_initialized()
        if own:
            ray.init(
                address=address, num_cpus=num_cpus, include_dashboard=False,
                log_to_driver=False, configure_logging=False,
            )  # fmt: skip
        try:
            task = ray.remote(num_cpus=1, max_retries=1, retry_exceptions=True)(run_trial)
            plain = {k: v for k, v in to_plain(study).items() if k not in ("config", "grid")}
            pending = {task.remote(s, plain, str(trials_dir.resolve())): s for s in todo}
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                spec = pending.pop(done[0])
                try:
                    finished.append(ray.get(done[0]))
                except Exception as err:  # a failed trial never stops the study
                    failed[spec["id"]] = _why(err)
        finally:
            if own:
                ray.shutdown()
    write_outputs(study, folder, finished)
    if failed:
        (folder / "failed.json").write_text(json.dumps(failed, indent=2))
    elif (folder / "failed.json").exists():
        (folder / "failed.json").unlink()
    return StudyResult(folder, finished, skipped, failed, time.perf_counter() - started)


def reevaluate_study(study: Study, out: str | Path = "studies") -> StudyResult:
    """Evaluate every finished trial of ``study`` again, without training: the trained runs as
    they are, the baselines tuned anew (once per grid point, for all its seeds: the same
    market, episodes and seeds), every metric of this version's table; each ``trial.json``
    gets the new table (written whole, the old one replaced), then the results, the summary and
    the page are written again. For when the evaluation changed after the study ran. Trials
    not finished are left to ``run_study``."""
    from .evaluate import evaluate, load_policy, run_config
    from .tuning import tune_baselines

    folder = Path(out) / study.name
    trials_dir = folder / "trials"
    started = time.perf_counter()
    todo, skipped = [], []
    for spec in study.trials():  # every finished trial read and its run opened before any work
        saved = finished_trial(trials_dir, spec, evaluated=False)
        if saved is None:
            skipped.append(spec["id"])
            continue
        run = trials_dir / spec["id"] / "run"
        load_policy(run, run_config(run))
        todo.append((spec, saved, run))
    if not todo:
        raise StudyError(f"{folder}: no finished trial to evaluate again: run the study first")
    finished = []
    tuned_by_point: dict[tuple, object] = {}
    for spec, saved, run in todo:
        key = (spec["algorithm"], spec["point"])
        if key not in tuned_by_point:
            tuned_by_point[key] = tune_baselines(
                run_config(run), study.tuning_episodes, study.eval_seed + 1, study.risk_aversion
            )
        result = evaluate(
            [str(run)], episodes=study.episodes, seed=study.eval_seed,
            risk_aversion=study.risk_aversion, tuning_episodes=study.tuning_episodes,
            tuned=tuned_by_point[key],
        )  # fmt: skip
        finished.append(
            {**saved, "spec": spec, "table": result["table"], "baselines": result["baselines"]}
        )
    for saved in finished:  # every evaluation done before any trial.json is replaced
        tmp = trials_dir / saved["spec"]["id"] / "trial.json.tmp"
        tmp.write_text(json.dumps(saved, indent=2))
        tmp.replace(tmp.with_name("trial.json"))
    write_outputs(study, folder, finished)
    return StudyResult(folder, finished, skipped, {}, time.perf_counter() - started)


def _why(err: Exception) -> str:
    cause = getattr(err, "cause", None) or err
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[-1] if text else ''}"


# ---------------------------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------------------------


def results_frame(finished: list[dict]) -> pl.DataFrame:
    """A row per trial x agent x metric: trial, algorithm, point, seed, agent, metric, mean,
    ci_low, ci_high (the evaluation's interval over episodes), and a column per swept field."""
    rows = []
    for trial in finished:
        spec = trial["spec"]
        for agent, metrics in trial["table"].items():
            for metric, cell in metrics.items():
                row = {
                    "trial": spec["id"],
                    "algorithm": spec["algorithm"],
                    "point": spec["point"],
                    "seed": spec["seed"],
                    "agent": "trained" if agent == spec["algorithm"] else agent,
                    "metric": metric,
                    "mean": float(cell["mean"]),
                    "ci_low": float(cell["ci_low"]),
                    "ci_high": float(cell["ci_high"]),
                }
                row.update({f"swept:{k}": v for k, v in spec["swept"].items()})
                rows.append(row)
    return pl.DataFrame(rows)


def _t_quantile(dof: int) -> float:
    from scipy.stats import t

    return float(t.ppf(0.975, dof))


def summary_frame(results: pl.DataFrame) -> pl.DataFrame:
    """Per algorithm, grid point, agent and metric: seeds, the mean over seeds and its 95%
    interval (Student's t on the seeds' means: the between-seed spread), and for the trained
    agent on the deciding metric how it fares against the best baseline of each seed:
    ``every seed``, ``most seeds``, ``on average only`` or ``no``."""
    keys = ["algorithm", "point", "agent", "metric"]
    swept = [c for c in results.columns if c.startswith("swept:")]
    stats = (
        results.group_by(keys, maintain_order=True)
        .agg(
            pl.len().alias("seeds"),
            pl.col("mean").mean().alias("seed_mean"),
            pl.col("mean").std().alias("seed_std"),
            *[pl.col(c).first() for c in swept],
        )
        .with_columns(
            pl.col("seeds")
            .map_elements(lambda n: _t_quantile(n - 1) if n > 1 else math.nan, pl.Float64)
            .alias("t")
        )
    )
    half = pl.col("t") * pl.col("seed_std") / pl.col("seeds").cast(pl.Float64).sqrt()
    stats = stats.with_columns(
        (pl.col("seed_mean") - half).alias("seed_ci_low"),
        (pl.col("seed_mean") + half).alias("seed_ci_high"),
    ).drop("t")
    verdicts = _beats_best_baseline(results)
    return stats.join(verdicts, on=["algorithm", "point", "agent", "metric"], how="left")


def _beats_best_baseline(results: pl.DataFrame) -> pl.DataFrame:
    deciding = results.filter(pl.col("metric") == DECIDING_METRIC)
    paired = results.filter((pl.col("metric") == "utility_margin") & (pl.col("agent") == "trained"))
    rows = []
    for (algo, point), group in deciding.group_by(["algorithm", "point"], maintain_order=True):
        mine = paired.filter((pl.col("algorithm") == algo) & (pl.col("point") == point))
        # seeds whose paired interval over episodes lies above the best baseline (None: trials
        # evaluated before the margin was measured)
        clear = int((mine["ci_low"] > 0).sum()) if mine.height == group["seed"].n_unique() else None
        margins = []
        for _, trial in group.group_by("seed", maintain_order=True):
            trained = trial.filter(pl.col("agent") == "trained")["mean"]
            baselines = trial.filter(pl.col("agent") != "trained")["mean"]
            if len(trained) and len(baselines):
                margins.append(float(trained[0] - baselines.max()))
        margins = np.asarray(margins)
        wins = int((margins > 0).sum())
        if margins.size and wins == margins.size:
            verdict = "every seed"
        elif wins * 2 > margins.size:
            verdict = "most seeds"
        elif margins.size and margins.mean() > 0:
            verdict = "on average only"
        else:
            verdict = "no"
        rows.append(
            {
                "algorithm": algo,
                "point": point,
                "agent": "trained",
                "metric": DECIDING_METRIC,
                "beats_best_baseline": verdict,
                "seeds_beating": wins,
                "seeds_beating_paired": clear,
            }
        )
    schema = {"algorithm": pl.String, "point": pl.Int64, "agent": pl.String, "metric": pl.String,
              "beats_best_baseline": pl.String, "seeds_beating": pl.Int64,
              "seeds_beating_paired": pl.Int64}  # fmt: skip
    return pl.DataFrame(rows, schema=schema)


def write_outputs(study: Study, folder: Path, finished: list[dict]) -> None:
    """results.parquet, summary.parquet and study.html from the finished trials (each file
    written whole or not at all)."""
    if not finished:
        return
    results = results_frame(finished)
    summary = summary_frame(results)
    for name, frame in (("results", results), ("summary", summary)):
        tmp = folder / f"{name}.parquet.tmp"
        frame.write_parquet(tmp)
        tmp.replace(folder / f"{name}.parquet")
    page = study_page(study, results)
    tmp = folder / "study.html.tmp"
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(folder / "study.html")


def study_page(study: Study, results: pl.DataFrame) -> str:
    """One self-contained HTML page: for each swept field (or, without a grid, the seeds), each
    of the table's metrics against it, one point per seed, the trained agent beside the
    baselines."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fields = [c for c in results.columns if c.startswith("swept:")] or ["seed"]
    present = set(results["metric"])
    metrics = [m for m in (*METRICS, *FAIR_METRICS) if m in present]
    figures = []
    for field in fields:
        fig = make_subplots(rows=1, cols=len(metrics), subplot_titles=metrics)
        for col, metric in enumerate(metrics, start=1):
            rows = results.filter(pl.col("metric") == metric)
            for agent in rows["agent"].unique(maintain_order=True):
                mine = rows.filter(pl.col("agent") == agent)
                fig.add_trace(
                    go.Scatter(
                        x=[str(v) for v in mine[field]],
                        y=mine["mean"],
                        mode="markers",
                        name=agent,
                        legendgroup=agent,
                        showlegend=col == 1,
                        text=[f"seed {s}" for s in mine["seed"]],
                    ),
                    row=1,
                    col=col,
                )
        fig.update_layout(
            title=f"{study.name}: each metric against {field.removeprefix('swept:')}, one point "
            "per seed",
            height=380,
            width=320 * len(metrics),
        )
        figures.append(fig.to_html(full_html=False, include_plotlyjs=not figures))
    return "<html><head><meta charset='utf-8'></head><body>" + "".join(figures) + "</body></html>"


def format_summary(summary: pl.DataFrame) -> str:
    """The summary's deciding metric, the same utility under the mid mark and (where the market
    has one) the fair-value mark, and PnL as plain text: one line per point and agent."""
    lines = []
    for metric in (DECIDING_METRIC, "utility_mid", "utility_fair", "pnl"):
        rows = summary.filter(pl.col("metric") == metric)
        for row in rows.iter_rows(named=True):
            verdict = row.get("beats_best_baseline") or ""
            if verdict and row.get("seeds_beating_paired") is not None:
                verdict += f" ({row['seeds_beating_paired']} clear of it over the episodes)"
            # one seed has no between-seed interval
            interval = (
                f"[{row['seed_ci_low']:.3f}, {row['seed_ci_high']:.3f}]"
                if row["seed_ci_low"] is not None and not math.isnan(row["seed_ci_low"])
                else "[no interval: one seed]"
            )
            lines.append(
                f"{row['algorithm']} point {row['point']} {row['agent']:<20} {metric:<12} "
                f"{row['seed_mean']:10.3f} {interval} over {row['seeds']} seeds {verdict}"
            )
    return "\n".join(lines)


def main_study(path, out="studies", address=None, reevaluate=False) -> int:
    """``fastlob study``: read, run, print; 0 when every trial finished, 1 when some failed
    (a bad study file is a StudyError: exit 2 before anything runs). ``reevaluate``: evaluate
    the finished trials again instead (:func:`reevaluate_study`)."""
    study = read_study(path)
    if reevaluate and address is not None:
        raise StudyError("--reevaluate trains nothing and runs on this machine: drop --address")
    if reevaluate:
        result = reevaluate_study(study, out=out)
        print(
            f"{len(result.finished)} trials evaluated again ({len(result.skipped)} not finished: "
            f"left), in {result.seconds:.1f} s: {result.folder}"
        )
    else:
        result = run_study(study, out=out, address=address)
        print(
            f"{len(result.finished)} trials finished ({len(result.skipped)} skipped as done), "
            f"{len(result.failed)} failed, in {result.seconds:.1f} s: {result.folder}"
        )
    if result.finished:
        print(format_summary(pl.read_parquet(result.folder / "summary.parquet")))
    for trial, why in result.failed.items():
        print(f"failed: {trial}: {why}")
    if result.failed:
        print(f"rerun the study to retry them ({result.folder / 'failed.json'})")
    return 1 if result.failed else 0
