"""The historical market: env-steps/s at N in {1, 64, 1024} with the dt that gives about 1 and
about 100 data messages per step, against the simulated market the data came from at the same
dt in the same run (the ratio; target: at most 2x slower), with the bytes per env of each and
the bytes of the data, held once. The data are the simulator's own LOBSTER export of its
default market (``fastlob.data.simulated``), long enough for every window."""

from __future__ import annotations

import time

import numpy as np
import pytest
from bench_support import host_now, host_text, machine, sized, smoke_run

from fastlob import HistoricalMarket, MarketMakingConfig, MarketMakingVectorEnv
from fastlob.data.lobster import write_day
from fastlob.data.simulated import simulate_day
from fastlob.env import DIVERGENCE_COUNTERS
from fastlob.profiling import LOADS, random_actions

SIZES = sized((1, 64, 1024), (1, 8))
#: seconds of data: every window of the largest benchmark fits in it
DATA_SECONDS = sized(4000.0, 200.0)


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    day = simulate_day(MarketMakingConfig(), DATA_SECONDS, seed=1, levels=10, warmup=10.0)
    files = write_day(day, tmp_path_factory.mktemp("historical"), ticker="BENCH")
    return HistoricalMarket(*files)


def timed_steps(env, actions, steps):
    def run():
        for i in range(steps):
            env.step(actions[i % len(actions)])

    return run


@pytest.mark.parametrize("num_envs", SIZES)
@pytest.mark.parametrize("load", sorted(LOADS))
def test_historical_env(benchmark, market, load, num_envs):
    load_config = LOADS[load]
    per_step = 1 if load == "1_event" else 40
    steps = sized(int(np.clip(200_000 // (num_envs * per_step), 5, 400)), 2)
    rounds = 3
    config = load_config.replace(
        episode_steps=rounds * steps + 20, lobster_part="all", max_offset=5.0
    )
    env = MarketMakingVectorEnv(num_envs, config=config, seed=0, market=market)
    env.reset()
    actions = random_actions(env, 16)
    for a in actions[:10]:
        env.step(a)  # warm-up: compilation (or the cache)
    messages = env.hist.counters[:, DIVERGENCE_COUNTERS["messages"]]
    before = messages.sum()
    benchmark.pedantic(timed_steps(env, actions, steps), rounds=rounds, iterations=1)
    if smoke_run():
        return
    rate = steps * num_envs / benchmark.stats.stats.median
    per_env_step = (messages.sum() - before) / (rounds * steps * num_envs)
    # the simulated market the data came from, at the same dt, timed the same way
    simulated = MarketMakingVectorEnv(num_envs, config=config.replace(lobster_part="train"))
    simulated.reset()
    for a in actions[:10]:
        simulated.step(a)
    events_before = simulated.flow_events[:, :3].sum()
    run = timed_steps(simulated, actions, steps)
    timings = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        timings.append(time.perf_counter() - start)
    simulated_rate = steps * num_envs / float(np.median(timings))
    events = (simulated.flow_events[:, :3].sum() - events_before) / (rounds * steps * num_envs)
    host = host_now()
    benchmark.extra_info.update(
        env_steps_per_s=rate,
        messages_per_step=per_env_step,
        bytes_per_env=env.bytes_per_env,
        data_bytes=market.nbytes,
        simulated_env_steps_per_s=simulated_rate,
        simulated_events_per_step=events,
        simulated_bytes_per_env=simulated.bytes_per_env,
        ratio=rate / simulated_rate,
        **host,
        **machine(),
    )
    print(
        f"\nhistorical env, {load} ({per_env_step:.1f} messages/step), N={num_envs}: "
        f"{rate / 1e6:.3f} M env-steps/s, {env.bytes_per_env} B/env, data {market.nbytes} B "
        f"held once; simulated market at the same dt ({events:.1f} events/step) "
        f"{simulated_rate / 1e6:.3f} M, {simulated.bytes_per_env} B/env; historical / simulated "
        f"{rate / simulated_rate:.2f}; {host_text(host)}  [{machine()}]"
    )
