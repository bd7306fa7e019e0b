"""``fastlob demo``: train PPO on the default order-book market for a fixed number of env-steps,
evaluate it against every baseline on held-out episodes, print the table, write the HTML report
and print its path. The same seed on the same machine and threads gives the same ``eval.json``,
bit for bit; a time limit is an opt-in safety stop, recorded in the run.

The settings are ``DEMO`` below (PPO on 1024 envs); everything lands in ``runs/demo/``:
TensorBoard events, ``metrics.parquet`` (the learning curve, one row per update), the
checkpoint, ``eval.json`` (PPO's row keyed ``ppo``) and ``report.html`` (``agents.report``).
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import polars as pl

from fastlob import MarketMakingConfig, RewardConfig

from .evaluate import evaluate, format_table
from .ppo import PPOConfig, train
from .report import write_report
from .tuning import format_baselines

DEMO = PPOConfig(
    num_envs=1024,
    total_steps=15_000_000,  # chosen by a five-seed study: docs/studies.md
    num_steps=16,
    num_minibatches=8,
    update_epochs=5,
    learning_rate=1e-3,
    init_log_std=-1.0,
    # trained on the PnL it is judged by: chosen by studies/demo-mark.toml (docs/studies.md)
    env=MarketMakingConfig(episode_steps=200, reward=RewardConfig(mark="liquidation")),
    run_name="demo",
)


def run_demo(
    runs_dir: str = "runs",
    steps: int = DEMO.total_steps,
    seed: int = 1,
    env: MarketMakingConfig | None = None,
    time_limit: float | None = None,
) -> dict:
    """Train for ``steps`` env-steps, evaluate, print; returns the evaluation result. ``env``
    replaces the demo's market (training, the baselines' tuning and the evaluation all play
    it); ``time_limit`` (minutes) stops the training early if it runs longer."""
    run_dir = Path(runs_dir) / "demo"
    if run_dir.exists():
        shutil.rmtree(run_dir)  # the demo always starts afresh
    budget = None if time_limit is None else 60.0 * time_limit
    config = dataclasses.replace(
        DEMO, runs_dir=runs_dir, seed=seed, total_steps=steps, time_budget=budget
    )
    if env is not None:
        config = dataclasses.replace(config, env=env)
    print(f"training PPO on {config.num_envs} envs for {steps:,} env-steps ...")
    trained = train(config)
    if trained["stopped_by_time_budget"]:
        print(f"stopped by the time limit ({time_limit:g} minutes)")
    print(f"trained {trained['global_step']:,} env-steps in {trained['update']} updates")
    result = evaluate([trained["run_dir"]])
    print(format_table(result["table"]))
    print(format_baselines(result["baselines"]))
    curve = pl.read_parquet(run_dir / "metrics.parquet")
    columns = [c for c in ("global_step", "charts/episode_pnl", "charts/SPS") if c in curve.columns]
    print(curve.select(columns).drop_nulls().tail(5))
    print(f"learning curve: {run_dir / 'metrics.parquet'}; table: {run_dir / 'eval.json'}")
    report = write_report(run_dir)
    print(f"report: {report}")
    return result
