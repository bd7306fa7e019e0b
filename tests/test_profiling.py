"""The profiler's matching phase replays exactly what the flow did, and the profile runs; the
host check computes its chains and leaves Numba's thread count as it was."""

from __future__ import annotations

import numpy as np
import pytest
from reference_as import XorShift64Star

from fastlob import MarketMakingConfig, MarketMakingVectorEnv
from fastlob._kernels import profile as _profile
from fastlob._kernels.book_layout import aligned_zeros, order_record_views
from fastlob._kernels.flow import FlowState
from fastlob.profiling import (
    CACHE_LINE,
    _LineTracer,
    _trace_views,
    cache_lines_per_step,
    host_speed,
    phase_profile,
    random_actions,
)

CONFIG = MarketMakingConfig(dt=2.5, episode_steps=50)


def test_matching_replay_leaves_the_books_as_the_flow_did():
    env = MarketMakingVectorEnv(16, config=CONFIG, seed=3)
    env.reset(seed=3)
    for actions in random_actions(env, 5, seed=4):
        env.step(actions)  # quotes resting, some crossing: the flow fills them too
    s, m, model, p = env._kernel_args()
    before = type(s)(*(a.copy() for a in s))
    last_best, events = m.last_best.copy(), m.events.copy()
    log = np.zeros((16, 512, _profile.LOG_WIDTH), np.int64)
    count = np.zeros(16, np.int64)
    _profile.logged_flow_phase(s, m, model, p, CONFIG.dt, log, count)
    assert 0 < count.max() <= 512 and count.sum() > 16 * 20
    kinds = log[:, :, _profile.LOG_KIND][np.arange(512) < count[:, None]]
    assert set(np.unique(kinds)) == {0, 1, 2}  # limit, market and cancel events all replayed
    replay = FlowState(m.rng.copy(), last_best, m.flow_state.copy(), events, m.intensity_integral)
    _profile.matching_phase(before, log, count, replay)
    for name, replayed, flowed in zip(s._fields, before, s, strict=True):
        np.testing.assert_array_equal(replayed, flowed, err_msg=name)
    np.testing.assert_array_equal(last_best, m.last_best)
    rejected = 3  # EVENT_REJECTED: counted when applied, so the replay counts them again
    np.testing.assert_array_equal(events[:, rejected], m.events[:, rejected])


def test_phase_profile_reports_every_phase():
    out = phase_profile(CONFIG, num_envs=16, repeats=2)
    assert set(out) == {
        "flow_ns", "matching_ns", "quotes_ns", "observation_ns", "step_ns", "events_per_step"
    }  # fmt: skip
    assert all(value > 0 for value in out.values())


def test_line_tracer_counts_distinct_cache_lines_of_element_accesses():
    a = aligned_zeros((4, 16), np.int64)  # rows of 128 bytes: two lines each
    view = a.view(_LineTracer)
    _LineTracer.lines = set()
    try:
        view[0, 0] = 1
        view[0, 7] += 1  # same line as [0, 0]
        view[0, 8] = view[1, 15]  # second line of row 0, last line of row 1
        view[2, :] = 5  # a slice is not an element access: not recorded
        touched = _LineTracer.lines
    finally:
        _LineTracer.lines = None
    base = a.ctypes.data // CACHE_LINE
    assert touched == {base, base + 1, base + 3}
    view[3, 3] = 1  # not tracing: nothing recorded, nothing raised
    assert a[0, 0] == 1 and a[0, 7] == 1 and a[3, 3] == 1


def test_traced_spans_cover_strided_views_and_name_views_of_one_buffer_together():
    records = order_record_views(2, 4)  # 2 x 4 records of 32 bytes: 256 bytes, four lines
    plain = aligned_zeros((3,), np.int64)
    spans: dict = {}
    _trace_views({f"book.{k}": v for k, v in records.items()} | {"mm.plain": plain}, spans)
    first = records["order_id"].ctypes.data // CACHE_LINE
    joined = "book.order_id+order_qty+order_price+order_next+order_prev"
    assert spans == {
        (first, first + 3): joined,  # the whole buffer, not the first 64 bytes (its nbytes)
        (plain.ctypes.data // CACHE_LINE,) * 2: "mm.plain",
    }


def test_cache_lines_per_step_counts_the_rows_every_env_writes():
    num_envs = 8
    lines = cache_lines_per_step(CONFIG, num_envs=num_envs, steps=3, warmup=2)
    # every env writes its whole observation row (31 float32, 124 bytes, contiguous across
    # envs) and its reward: the lines those bytes span, per env. n contiguous bytes span
    # ceil(n / 64) lines when they start on a line boundary and one more when they start
    # late enough in a line (the observation array is not line-aligned)
    obs_lines = -(-num_envs * 124 // CACHE_LINE)
    assert lines["obs"] * num_envs in (obs_lines, obs_lines + 1)
    assert lines["reward"] in (1 / num_envs, 2 / num_envs)  # 32 bytes: one line, or two
    assert lines["book.level_qty"] > 0 and lines["mm.rng"] > 0
    total = lines.pop("total")
    assert total == sum(lines.values())


def test_unprefetched_lines_leave_out_what_the_step_prefetches():
    # the metrics row (216 bytes) is prefetched whole and the observation row is written
    # without a prefetch: the first vanishes from the unprefetched count, the second stays
    # (8 envs counted over 10 steps: with 4 over 3 the share moved with where the arrays lay,
    # 0.46-0.54 of the total; with 8 over 10 it is 0.40)
    config, num_envs, steps = MarketMakingConfig(dt=0.04, latency=0.0125), 16, 10
    every = cache_lines_per_step(config, num_envs=num_envs, steps=steps, warmup=20)
    waiting = cache_lines_per_step(
        config, num_envs=num_envs, steps=steps, warmup=20, unprefetched=True
    )
    assert every["mm.metrics"] >= 2 and "mm.metrics" not in waiting
    assert waiting["obs"] == pytest.approx(every["obs"], abs=1 / (num_envs - 8))
    assert 0 < waiting["total"] < every["total"] / 2
    with pytest.raises(ValueError, match="num_envs must exceed"):
        cache_lines_per_step(config, num_envs=8, unprefetched=True)


def _xorshift_reference(x: int) -> int:
    """One xorshift64 step, by the plain-Python generator of tests/reference_as.py."""
    generator = XorShift64Star(x)
    generator.next_u64()
    return generator.state


def test_register_rounds_computes_its_chains_and_host_speed_restores_the_threads():
    import numba

    out = np.zeros(3, np.uint64)
    _profile.register_rounds(out, 50)
    for j in range(3):
        chains = [8 * j + c + 1 for c in range(8)]
        for _ in range(50):
            chains = [_xorshift_reference(x) for x in chains]
        folded = 0
        for x in chains:
            folded ^= x
        assert int(out[j]) == folded
    before = numba.get_num_threads()
    speed = host_speed(rounds=1000, repeats=2, loads=1000)
    assert numba.get_num_threads() == before and speed["threads"] == before
    assert 0.0 < speed["one_thread_ns"] < 1e6 and 0.0 < speed["all_threads_ns"] < 1e6
    assert 0.0 < speed["load_ns"] < 1e6


def test_the_chased_cycle_visits_every_entry_and_the_chase_follows_it():
    from fastlob.profiling import _random_cycle

    cycle = _random_cycle(1000, seed=3)
    i, seen = 0, set()
    for _ in range(1000):
        seen.add(i)
        i = int(cycle[i])
    assert i == 0 and len(seen) == 1000  # one cycle through all entries
    walked = 0
    for _ in range(777):
        walked = int(cycle[walked])
    assert _profile.chase(cycle, 777) == walked
