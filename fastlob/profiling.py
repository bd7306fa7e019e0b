"""Where the simulator's time goes: each phase of the market-making step timed on its own.

``phase_profile`` runs a ``MarketMakingVectorEnv`` with random actions, then times, over the same
envs, the background flow (event generation and matching, fills accounted), the matching inside
it (the engine replaying the flow's own events), quote placement, and the observation, each
through the kernels the step itself uses, and the whole step. The phases
are measured separately, so each starts with its data out of cache: their sum is an upper bound
of the step, and the remainder (step - sum, often negative) is what fusing them saves.
"""

from __future__ import annotations

import time

import numpy as np

from fastlob._kernels import profile as _profile
from fastlob.env import MarketMakingConfig, MarketMakingVectorEnv

#: the two flow intensities of the benchmarks and the profiling notebook: step lengths at
#: which the Cont-Stoikov-Talreja rates give about 1 and about 100 background events per step
#: once the book is in its steady state (0.99 and 92 measured with random actions, N = 4096)
LOADS = {
    "1_event": MarketMakingConfig(dt=0.04, latency=0.0125),
    "100_events": MarketMakingConfig(dt=2.5, latency=0.05),
}


def _best_time(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def random_actions(env: MarketMakingVectorEnv, count: int, seed: int = 0) -> list[np.ndarray]:
    """``count`` batches of actions drawn uniformly from the env's action space."""
    rng = np.random.default_rng(seed)
    low, high = env.single_action_space.low, env.single_action_space.high
    shape = (env.num_envs, low.shape[0])
    return [rng.uniform(low, high, size=shape).astype(np.float32) for _ in range(count)]


def _copy_books(books):
    return type(books)(*(a.copy() for a in books))


def _matching_time(env: MarketMakingVectorEnv, repeats: int) -> float:
    """Best time of the engine alone applying one span of ``dt`` of the flow's own events: the
    span runs once with its events logged, then is replayed from copies of the books as they
    were (the replay leaves them exactly as the flow did: ``tests/test_profiling.py``)."""
    s, m, fp, lr, cr, p = env._kernel_args()
    books = _copy_books(s)
    last_best, events = m.last_best.copy(), m.events.copy()
    capacity = 64
    while True:
        saved = _copy_books(s), type(m)(*(a.copy() for a in m))
        log = np.zeros((env.num_envs, capacity, _profile.LOG_WIDTH), np.int64)
        count = np.zeros(env.num_envs, np.int64)
        _profile.logged_flow_phase(s, m, fp, lr, cr, p, env.config.dt, log, count)
        if count.max() <= capacity:
            break
        capacity = int(2 * count.max())  # the log overflowed: run the same span again
        for live, copy in zip((*s, *m), (*saved[0], *saved[1]), strict=True):
            np.copyto(live, copy)
    best = float("inf")
    for _ in range(repeats):
        scratch = _copy_books(books)
        replay_best, replay_events = last_best.copy(), events.copy()
        start = time.perf_counter()
        _profile.matching_phase(scratch, log, count, replay_best, replay_events)
        best = min(best, time.perf_counter() - start)
    return best


def phase_profile(
    config: MarketMakingConfig | None = None,
    num_envs: int = 4096,
    repeats: int = 5,
    seed: int = 0,
) -> dict[str, float]:
    """Nanoseconds per env-step of each phase, the whole step, and events per step.

    Returns a dict with keys ``flow_ns`` (one span of ``dt``: event generation, matching,
    fill accounting), ``matching_ns`` (the engine applying that span's events alone),
    ``quotes_ns``, ``observation_ns``, ``step_ns``, ``events_per_step`` (all floats).
    """
    env = MarketMakingVectorEnv(num_envs, config=config, seed=seed)
    env.reset()
    actions = random_actions(env, 8, seed)
    for a in actions:  # warm-up: compilation and a realistic book
        env.step(a)
    c, p = env.config, env.params
    s, m, fp, lr, cr, _ = env._kernel_args()
    events = m.events[:, :3].sum()
    step_index = [0]

    def step():
        env.step(actions[step_index[0] % len(actions)])
        step_index[0] += 1

    step_time = _best_time(step, repeats)
    events_per_step = (m.events[:, :3].sum() - events) / (repeats * num_envs)
    flow_time = _best_time(lambda: _profile.flow_phase(s, m, fp, lr, cr, p, c.dt), repeats)
    matching_time = _matching_time(env, repeats)
    # a new action batch each time: every env cancels and replaces both quotes
    quote_index = [0]

    def quote():
        _profile.quote_phase(s, m, p, actions[quote_index[0] % len(actions)])
        quote_index[0] += 1

    quote_time = _best_time(quote, repeats)
    obs_time = _best_time(lambda: _profile.observe_phase(s, m, p, env._obs), repeats)
    per = 1e9 / num_envs
    return {
        "flow_ns": flow_time * per,
        "matching_ns": matching_time * per,
        "quotes_ns": quote_time * per,
        "observation_ns": obs_time * per,
        "step_ns": step_time * per,
        "events_per_step": float(events_per_step),
    }


def throughput(
    config: MarketMakingConfig | None = None,
    sizes=(64, 1024, 4096),
    threads=None,
    steps: int = 20,
    load: str = "default",
):
    """Env-steps/s of ``MarketMakingVectorEnv`` for each N in ``sizes`` and each Numba thread
    count in ``threads`` (default: 1 and all of them), random precomputed actions, best of
    ``steps`` timed steps after a warm-up of 5; Numba's thread count is restored afterwards.

    Returns a polars DataFrame with columns ``load``, ``num_envs``, ``threads``,
    ``env_steps_per_s`` (the layout ``fastlob.figures.throughput_scaling`` plots).
    """
    import numba
    import polars as pl

    counts = sorted({1, numba.config.NUMBA_NUM_THREADS}) if threads is None else list(threads)
    before = numba.get_num_threads()
    rows = []
    try:
        for n in sizes:
            env = MarketMakingVectorEnv(n, config=config, seed=0)
            env.reset()
            actions = random_actions(env, 8)
            for a in actions[:5]:
                env.step(a)
            for count in counts:
                numba.set_num_threads(count)
                index = [0]

                def step(env=env, actions=actions, index=index):
                    env.step(actions[index[0] % len(actions)])
                    index[0] += 1

                rows.append(
                    {
                        "load": load,
                        "num_envs": n,
                        "threads": count,
                        "env_steps_per_s": n / _best_time(step, steps),
                    }
                )
    finally:
        numba.set_num_threads(before)
    return pl.DataFrame(rows)


_COMPILE_SCRIPT = """
import json, sys, time
started = time.perf_counter()
import numpy as np
import fastlob
imported = time.perf_counter()
env = fastlob.{env}(4, seed=0)
env.reset(seed=0)
reset = time.perf_counter()
env.step(np.zeros(env.action_space.shape, np.float32))
stepped = time.perf_counter()
print(json.dumps({{"import_s": imported - started, "reset_s": reset - imported,
                  "step_s": stepped - reset}}))
"""


def compile_time(env: str = "MarketMakingVectorEnv") -> dict[str, float]:
    """Seconds a fresh process spends importing fastlob, then on the first ``reset`` and the
    first ``step`` of ``fastlob.<env>`` (``MarketMakingVectorEnv`` or
    ``AvellanedaStoikovVectorEnv``, 4 envs) with an empty Numba cache: what a user waits for
    the first time (JIT compilation).

    Returns a dict with keys ``import_s``, ``reset_s``, ``step_s``.
    """
    import json
    import os
    import subprocess
    import sys
    import tempfile

    if env not in ("MarketMakingVectorEnv", "AvellanedaStoikovVectorEnv"):
        raise ValueError(
            f"env must be 'MarketMakingVectorEnv' or 'AvellanedaStoikovVectorEnv', got {env!r}"
        )
    with tempfile.TemporaryDirectory() as cache:
        result = subprocess.run(
            [sys.executable, "-c", _COMPILE_SCRIPT.format(env=env)],
            env={**os.environ, "NUMBA_CACHE_DIR": cache},
            capture_output=True,
            text=True,
            check=True,
        )
    return json.loads(result.stdout.strip().splitlines()[-1])
