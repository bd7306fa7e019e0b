"""Training throughput of the whole PPO loop (simulate, act, learn) at N in {1024, 4096} on CPU,
with the share of time in the simulator and in the learner, eager and with ``compile=True``
(torch.compile of the minibatch loss; its compilation falls in update 1, left out of the median).
The target is in the docs' benchmarks page."""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl
import pytest
from bench_support import machine, sized, smoke_run

from fastlob_agents.ppo import PPOConfig, train

DEFAULT = PPOConfig()  # the default network and update: 64x64 MLPs, 4 epochs x 4 minibatches


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize("num_envs", sized([1024, 4096], [8]))
def test_ppo_training_throughput(benchmark, tmp_path, num_envs, compiled):
    updates = sized(5, 2)
    config = dataclasses.replace(
        DEFAULT,
        compile=compiled,
        num_envs=num_envs,
        num_steps=sized(DEFAULT.num_steps, 4),
        total_steps=updates * num_envs * sized(DEFAULT.num_steps, 4),
        runs_dir=str(tmp_path),
        run_name=f"bench_{num_envs}",
        progress=False,
        checkpoint_every=10**9,
    )
    result = benchmark.pedantic(lambda: train(config), rounds=1, iterations=1)
    if smoke_run():
        assert result["update"] == updates
        return
    rows = pl.read_parquet(tmp_path / f"bench_{num_envs}" / "metrics.parquet")[1:]  # warm
    sps = float(np.median(rows["charts/SPS"]))
    sim = float(np.median(rows["charts/simulator_share"]))
    learn = float(np.median(rows["charts/learner_share"]))
    benchmark.extra_info.update(
        env_steps_per_s=sps, simulator_share=sim, learner_share=learn, **machine()
    )
    print(
        f"\nPPO training loop{' (compiled)' if compiled else ''}, N={num_envs}: "
        f"{sps / 1e3:.1f} k env-steps/s (median of updates "
        f"2-{updates}); simulator {sim:.0%}, learner {learn:.0%}, acting and the rest "
        f"{1 - sim - learn:.0%}  [{machine()}]  ({result['global_step']} steps)"
    )
