"""``fastlob demo``: train PPO on the default order-book market within a time budget, evaluate it
against every baseline on held-out episodes, print the table, write the HTML report and print its
path.

The settings are ``DEMO`` below (PPO on 1024 envs); everything lands in ``runs/demo/``:
TensorBoard events, ``metrics.parquet`` (the learning curve, one row per update), the
checkpoint, ``eval.json`` (PPO's row keyed ``ppo``) and ``report.html`` (``agents.report``).
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import polars as pl

from fastlob import MarketMakingConfig

from .evaluate import evaluate, format_table
from .ppo import PPOConfig, train
from .report import write_report

DEMO = PPOConfig(
    num_envs=1024,
    total_steps=50_000_000,  # the time budget decides
    num_steps=16,
    num_minibatches=8,
    update_epochs=5,
    learning_rate=1e-3,
    init_log_std=-1.0,
    run_name="demo",
)


def run_demo(
    runs_dir: str = "runs",
    minutes: float = 4.0,
    seed: int = 1,
    env: MarketMakingConfig | None = None,
) -> dict:
    """Train, evaluate, print; returns the evaluation result. ``env`` replaces the demo's market
    (training, the baselines' tuning and the evaluation all play it)."""
    run_dir = Path(runs_dir) / "demo"
    if run_dir.exists():
        shutil.rmtree(run_dir)  # the demo always starts afresh
    config = dataclasses.replace(DEMO, runs_dir=runs_dir, seed=seed, time_budget=60.0 * minutes)
    if env is not None:
        config = dataclasses.replace(config, env=env)
    print(f"training PPO on {config.num_envs} envs for about {minutes:g} minutes ...")
    trained = train(config)
    print(f"trained {trained['global_step']:,} env-steps in {trained['update']} updates")
    result = evaluate([trained["run_dir"]])
    print(format_table(result["table"]))
    print(f"baselines: {result['baselines']}")
    curve = pl.read_parquet(run_dir / "metrics.parquet")
    columns = [c for c in ("global_step", "charts/episode_pnl", "charts/SPS") if c in curve.columns]
    print(curve.select(columns).drop_nulls().tail(5))
    print(f"learning curve: {run_dir / 'metrics.parquet'}; table: {run_dir / 'eval.json'}")
    report = write_report(run_dir)
    print(f"report: {report}")
    return result
