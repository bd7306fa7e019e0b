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
from fastlob._kernels.book_layout import CACHE_LINE, copy_state
from fastlob._kernels.flow import FlowState
from fastlob.env import MarketMakingConfig, MarketMakingVectorEnv

#: the two flow intensities of the benchmarks and the profiling notebook: step lengths at
#: which the Cont-Stoikov-Talreja rates give about 1 and about 100 background events per step
#: once the book is in its steady state (with random actions)
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


#: bytes of the random cycle ``host_speed`` chases: about what one step of 4096 envs at ~1 event
#: touches (29 lines of 64 bytes per env), so its latency says whether that step's data stays in
#: the shared L3 or waits for memory
HOST_CHASE_BYTES = 8 << 20


def _random_cycle(entries: int, seed: int = 0) -> np.ndarray:
    """int64 (entries,): ``next[i]`` is the entry after ``i`` in one random cycle through all."""
    order = np.random.default_rng(seed).permutation(entries)
    following = np.empty(entries, np.int64)
    following[order] = np.roll(order, -1)
    return following


def host_speed(rounds: int = 1_000_000, repeats: int = 5, loads: int = 500_000) -> dict:
    """How fast this machine runs right now, for reading benchmarks taken in different spells
    of a shared host: its cores, and the latency of the memory a large step lives in.

    Times ``_profile.register_rounds`` (eight independent xorshift chains that never leave the
    registers: no cache or memory in it) for ``rounds`` rounds on one thread, then one entry per
    thread on all of Numba's threads at once, and ``_profile.chase`` for ``loads`` dependent
    loads around a random cycle through ``HOST_CHASE_BYTES``; best of ``repeats`` each.

    Returns
    -------
    dict
        ``one_thread_ns`` and ``all_threads_ns``: nanoseconds per round (per thread);
        ``threads``: how many ran in the second; ``load_ns``: nanoseconds per dependent load.
        On cores of their own the first two are equal and at their lowest, and a neighbour on a
        core's sibling hyperthread raises them; ``load_ns`` is low while the shared L3 holds the
        cycle and rises towards the memory's latency as the neighbours' data evicts it (the
        ~1-event step at N = 4096, about as large, slows down with it).
    """
    import numba

    threads = numba.get_num_threads()
    out = np.zeros(threads, np.uint64)
    _profile.register_rounds(out[:1], 1)  # compilation (or the cache)
    timed = {}
    try:
        for key, count in (("one_thread_ns", 1), ("all_threads_ns", threads)):
            numba.set_num_threads(count)
            entries = out[:count]
            seconds = _best_time(lambda e=entries: _profile.register_rounds(e, rounds), repeats)
            timed[key] = seconds / rounds * 1e9
    finally:
        numba.set_num_threads(threads)
    cycle = _random_cycle(HOST_CHASE_BYTES // 8)
    _profile.chase(cycle, cycle.shape[0])  # compiled, and the cycle in whatever cache keeps it
    timed["load_ns"] = _best_time(lambda: _profile.chase(cycle, loads), repeats) / loads * 1e9
    return {**timed, "threads": threads}


def random_actions(env: MarketMakingVectorEnv, count: int, seed: int = 0) -> list[np.ndarray]:
    """``count`` batches of actions drawn uniformly from the env's action space."""
    rng = np.random.default_rng(seed)
    low, high = env.single_action_space.low, env.single_action_space.high
    shape = (env.num_envs, low.shape[0])
    return [rng.uniform(low, high, size=shape).astype(np.float32) for _ in range(count)]


def _matching_time(env: MarketMakingVectorEnv, repeats: int) -> float:
    """Best time of the engine alone applying one span of ``dt`` of the flow's own events: the
    span runs once with its events logged, then is replayed from copies of the books as they
    were (the replay leaves them exactly as the flow did: ``tests/test_profiling.py``)."""
    s, m, model, p = env._kernel_args()
    books = copy_state(s)
    last_best, events = m.last_best.copy(), m.events.copy()
    capacity = 64
    while True:
        saved = copy_state(s), type(m)(*(a.copy() for a in m))
        log = np.zeros((env.num_envs, capacity, _profile.LOG_WIDTH), np.int64)
        count = np.zeros(env.num_envs, np.int64)
        _profile.logged_flow_phase(s, m, model, p, env.config.dt, log, count)
        if count.max() <= capacity:
            break
        capacity = int(2 * count.max())  # the log overflowed: run the same span again
        for live, copy in zip((*s, *m), (*saved[0], *saved[1]), strict=True):
            np.copyto(live, copy)
    best = float("inf")
    for _ in range(repeats):
        scratch = copy_state(books)
        replay = FlowState(
            m.rng.copy(), last_best.copy(), m.flow_state.copy(), events.copy(),
            m.intensity_integral.copy(),
        )  # fmt: skip
        start = time.perf_counter()
        _profile.matching_phase(scratch, log, count, replay)
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
    s, m, model, _ = env._kernel_args()
    events = m.events[:, :3].sum()
    step_index = [0]

    def step():
        env.step(actions[step_index[0] % len(actions)])
        step_index[0] += 1

    step_time = _best_time(step, repeats)
    events_per_step = (m.events[:, :3].sum() - events) / (repeats * num_envs)
    flow_time = _best_time(lambda: _profile.flow_phase(s, m, model, p, c.dt), repeats)
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


def _json_of_fresh_process(script: str, environ: dict[str, str], stdin: bytes = b"") -> dict:
    """Run ``script`` in a fresh Python with ``environ`` added to the environment and
    ``stdin`` as its input; returns the JSON object on the last line of its output."""
    import json
    import os
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", script],
        input=stdin,
        env={**os.environ, **environ},
        capture_output=True,
        check=True,
    )
    return json.loads(result.stdout.decode().strip().splitlines()[-1])


def compile_time(env: str = "MarketMakingVectorEnv") -> dict[str, float]:
    """Seconds a fresh process spends importing fastlob, then on the first ``reset`` and the
    first ``step`` of ``fastlob.<env>`` (``MarketMakingVectorEnv`` or
    ``AvellanedaStoikovVectorEnv``, 4 envs) with an empty Numba cache: what a user waits for
    the first time (JIT compilation).

    Returns a dict with keys ``import_s``, ``reset_s``, ``step_s``.
    """
    import tempfile

    if env not in ("MarketMakingVectorEnv", "AvellanedaStoikovVectorEnv"):
        raise ValueError(
            f"env must be 'MarketMakingVectorEnv' or 'AvellanedaStoikovVectorEnv', got {env!r}"
        )
    with tempfile.TemporaryDirectory() as cache:
        return _json_of_fresh_process(_COMPILE_SCRIPT.format(env=env), {"NUMBA_CACHE_DIR": cache})


# ---------------------------------------------------------------------------------------------
# memory footprint: cache lines touched per env-step
# ---------------------------------------------------------------------------------------------


class _LineTracer(np.ndarray):
    """An ndarray view that records the cache line of every element read or written through
    a full integer index (what the kernels do, run as plain Python) in ``lines``, a set shared
    by all views of one trace; ``lines`` is None while not tracing."""

    lines: set | None = None
    #: lines a prefetch asked for while tracing with ``unprefetched``, else None
    prefetched: set | None = None

    def _record(self, index):
        lines = _LineTracer.lines
        if lines is None:
            return
        index = index if isinstance(index, tuple) else (index,)
        if len(index) != self.ndim or not all(isinstance(i, (int, np.integer)) for i in index):
            return  # slices (only at reset) and views taken to pass a row along
        lines.add(_line_of(self, index))

    def __getitem__(self, index):
        self._record(index)
        return super().__getitem__(index)

    def __setitem__(self, index, value):
        self._record(index)
        super().__setitem__(index, value)


def _trace_views(arrays: dict[str, np.ndarray], spans: dict[tuple[int, int], str]) -> dict:
    """Tracing views of ``arrays``, each one's line span remembered under its name."""
    for name, a in arrays.items():
        first = a.ctypes.data // CACHE_LINE
        # bytes from the first element to the end of the last (a strided view's nbytes is less)
        steps = zip(a.shape, a.strides, strict=True)
        extent = sum((size - 1) * stride for size, stride in steps) + a.itemsize
        span = (first, (a.ctypes.data + max(extent, 1) - 1) // CACHE_LINE)
        # views into one buffer (the order records) share their lines: named together
        spans[span] = f"{spans[span]}+{name.split('.')[-1]}" if span in spans else name
    return {name: a.view(_LineTracer) for name, a in arrays.items()}


def _line_of(array: np.ndarray, index) -> int:
    """Cache line of ``array[index]`` (a full integer index; a negative one wraps)."""
    index = index if isinstance(index, tuple) else (index,)
    address = array.ctypes.data
    for i, size, stride in zip(index, array.shape, array.strides, strict=True):
        address += (int(i) % size) * stride
    return address // CACHE_LINE


def _record_prefetch(array, index):
    """Stands in for ``fastlob._numba.prefetch`` while tracing: remembers the line asked for."""
    if _LineTracer.prefetched is not None:
        _LineTracer.prefetched.add(_line_of(array, index))


def _first_env_of(row: tuple[int, int], line: int) -> int:
    """Index of the first env whose row holds ``line`` in an array whose row of env n starts at
    ``base + n * stride`` (``row = (base, stride)``); -1 if the array has no row per env
    (stride 0)."""
    base, stride = row
    return -1 if stride == 0 else max(0, line * CACHE_LINE - base) // stride


def _count_lines(
    config, num_envs: int, steps: int, warmup: int, seed: int, unprefetched: bool = False
) -> dict[str, float]:
    """The body of :func:`cache_lines_per_step`; needs ``NUMBA_DISABLE_JIT=1`` (plain Python)."""
    import collections
    import warnings

    from fastlob._kernels import mm_drivers as _mm

    warnings.filterwarnings("ignore", "overflow", RuntimeWarning)  # xorshift wraps, as in Numba
    if unprefetched:  # this process only: prefetch at any N, and see what is asked for
        _mm.PREFETCH_MIN_ENVS = 0
        _mm.prefetch = _record_prefetch
    first_prefetched = 2 * _mm.PREFETCH_DISTANCE if unprefetched else 0
    env = MarketMakingVectorEnv(num_envs, config=config, seed=seed)
    env.reset()
    actions = random_actions(env, 16, seed)
    for i in range(warmup):
        env._step_kernel(actions[i % len(actions)])
    spans: dict[tuple[int, int], str] = {}
    traced: dict[str, np.ndarray] = {}
    for prefix, attr in (("book.", "books"), ("mm.", "state")):
        state = getattr(env, attr)
        named = {prefix + k: v for k, v in state._asdict().items()}
        traced.update(named)
        setattr(env, attr, type(state)(*_trace_views(named, spans).values()))
    # the step's other arrays, by the attributes the owner passes to the kernel
    attributes = {
        "obs": "_obs",
        "reward": "_reward",
        "terminated": "_terminated",
        "truncated": "_truncated",
        "actions": "_actions",
        "clipped": "_clipped",
        "action_clip_count": "action_clip_count",
        "limit_rates": "limit_rates",
        "cancel_rates": "cancel_rates",
    }
    others = {k: getattr(env, attr) for k, attr in attributes.items()}
    traced.update(others)
    views = _trace_views(others, spans)
    for k, attr in attributes.items():
        setattr(env, attr, views[k])
    starts = sorted(spans)
    rows = {  # an array's row of env n starts at base + n * stride (stride 0: not per env)
        span: (a.ctypes.data, a.strides[0] if a.ndim and a.shape[0] == num_envs else 0)
        for span, a in ((span, traced[name.split("+")[0]]) for span, name in spans.items())
    }
    counts: collections.Counter = collections.Counter()
    for i in range(steps):
        _LineTracer.lines, _LineTracer.prefetched = set(), set()
        try:
            env._step_kernel(actions[(warmup + i) % len(actions)])
            touched = _LineTracer.lines - _LineTracer.prefetched
        finally:
            _LineTracer.lines = _LineTracer.prefetched = None
        for line in touched:
            for span in starts:
                if span[0] <= line <= span[1]:
                    # with unprefetched, not the envs the step never prefetches, nor arrays
                    # shared by all envs
                    if not unprefetched or _first_env_of(rows[span], line) >= first_prefetched:
                        counts[spans[span]] += 1
                    break
    per = {name: c / (steps * (num_envs - first_prefetched)) for name, c in counts.most_common()}
    per["total"] = sum(per.values())
    return per


_LINES_SCRIPT = """
import json, pickle, sys
from fastlob.profiling import _count_lines
print(json.dumps(_count_lines(*pickle.load(sys.stdin.buffer))))
"""


def cache_lines_per_step(
    config: MarketMakingConfig | None = None,
    num_envs: int = 8,
    steps: int = 200,
    warmup: int = 100,
    seed: int = 0,
    unprefetched: bool = False,
) -> dict[str, float]:
    """Distinct 64-byte cache lines that each array of the simulator touches per env-step.

    The kernels run as plain Python (``NUMBA_DISABLE_JIT=1``, in a subprocess) on views that
    record the address of every element they read or write; after ``warmup`` steps with random
    actions, each step's lines are counted per array and averaged over ``steps`` steps and
    ``num_envs`` envs. Arrays with one small row per env (``book.best``, ``mm.cash``) share a
    line between several envs, as they do at large N. It measures the step's memory footprint:
    once N times it outgrows what the caches keep, every step waits for memory (the knee of the
    ~1-event benchmark between N = 1024 and 4096).

    With ``unprefetched``, only the lines that no prefetch of the step asked for are counted
    (what still waits for memory at large N unless the hardware prefetcher streams it in): the
    traced process prefetches at any N and records the lines each ``prefetch`` names, and only
    envs from ``2 * mm.PREFETCH_DISTANCE`` on (the first ones are never prefetched) and arrays
    with one row per env count; ``num_envs`` must then exceed ``2 * mm.PREFETCH_DISTANCE``.

    Returns
    -------
    dict
        Lines per env-step by array name (``book.*``, ``mm.*``, ``obs``, ``actions``, ...), most
        first, then their sum under ``"total"``. Views into one buffer share their lines and one
        entry, their names joined by ``+`` (the order record:
        ``"book.order_id+order_qty+order_price+order_next+order_prev"``).
    """
    import pickle

    from fastlob._kernels.mm_drivers import PREFETCH_DISTANCE

    if unprefetched and num_envs <= 2 * PREFETCH_DISTANCE:
        raise ValueError(
            f"num_envs must exceed 2 * PREFETCH_DISTANCE = {2 * PREFETCH_DISTANCE} with "
            f"unprefetched=True (the first envs are never prefetched), got {num_envs}"
        )
    return _json_of_fresh_process(
        _LINES_SCRIPT,
        {"NUMBA_DISABLE_JIT": "1"},
        pickle.dumps((config, num_envs, steps, warmup, seed, unprefetched)),
    )
