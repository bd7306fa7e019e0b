"""The market-making simulator: env-steps/s for N in {1, 64, 1024, 4096, 16384} at about 1 and
about 100 background events per step, random precomputed actions, after warm-up; bytes of state
per env; at one thread and at all of them; the plain-Python single-env reference
(tests/reference_mm.py) in the same run, and the ratio. ``fastlob report --bench FILE`` plots
a ``--benchmark-json FILE`` of this file as throughput against N and threads. The targets and
the current figures are in the docs' benchmarks page."""

from __future__ import annotations

import time

import numba
import numpy as np
import pytest
from bench_support import host_now, host_text, machine, sized, smoke_run
from reference_mm import ReferenceMM

from fastlob import MarketMakingConfig, MarketMakingVectorEnv
from fastlob.profiling import LOADS, random_actions

SIZES = sized((1, 64, 1024, 4096, 16384), (1, 8))
#: one thread and all of them: the scaling figure's lines (fastlob.figures.throughput_scaling)
THREADS = sorted({1, numba.config.NUMBA_NUM_THREADS})


def reference_rate(config: MarketMakingConfig, steps: int) -> float:
    """Env-steps/s of the plain-Python reference of one env, after its reset."""
    env = MarketMakingVectorEnv(1, config=config, seed=0)
    ref = ReferenceMM(
        env.params, env.flow_params, env.limit_rates, env.cancel_rates, env.book_params, 12345
    )
    ref.reset()
    actions = random_actions(env, steps, seed=1)
    start = time.perf_counter()
    for a in actions:
        ref.step(a[0])
    return steps / (time.perf_counter() - start)


@pytest.fixture(params=THREADS, ids=lambda t: f"{t}threads")
def threads(request):
    """Numba's thread count for one benchmark, restored afterwards."""
    before = numba.get_num_threads()
    numba.set_num_threads(request.param)
    yield request.param
    numba.set_num_threads(before)


@pytest.mark.parametrize("num_envs", SIZES)
@pytest.mark.parametrize("load", sorted(LOADS))
def test_market_making_env(benchmark, load, num_envs, threads):
    config = LOADS[load]
    env = MarketMakingVectorEnv(num_envs, config=config, seed=0)
    env.reset()
    actions = random_actions(env, 16)
    for a in actions[:10]:
        env.step(a)  # warm-up: compilation (or the cache) and a realistic book
    per_step = num_envs * (1 if load == "1_event" else 40)
    steps = sized(int(np.clip(400_000 // per_step, 5, 4000)), 2)
    events_before = env.flow_events[:, :3].sum()

    def run():
        for i in range(steps):
            env.step(actions[i % len(actions)])

    rounds = 3
    benchmark.pedantic(run, rounds=rounds, iterations=1)
    if smoke_run():
        reference_rate(config, 2)  # the reference's body too, once
        return
    rate = steps * num_envs / benchmark.stats.stats.median
    events = (env.flow_events[:, :3].sum() - events_before) / (rounds * steps * num_envs)
    host = host_now()
    # long enough (about 0.1 s) that the ratio, which the guard judges by, is not noise
    ref = reference_rate(config, 2000 if load == "1_event" else 50)
    benchmark.extra_info.update(
        env_steps_per_s=rate,
        events_per_step=events,
        bytes_per_env=env.bytes_per_env,
        reference_env_steps_per_s=ref,
        ratio=rate / ref,
        **host,
        **machine(),
    )
    print(
        f"\nmarket-making env, {load} ({events:.1f} events/step incl. resets), N={num_envs}: "
        f"{rate / 1e6:.3f} M env-steps/s; {env.bytes_per_env} B/env; Python reference "
        f"{ref:.0f} env-steps/s; ratio {rate / ref:.0f}x; {host_text(host)}  [{machine()}]"
    )
