"""The profiler's matching phase replays exactly what the flow did, and the profile runs."""

from __future__ import annotations

import numpy as np

from fastlob import MarketMakingConfig, MarketMakingVectorEnv
from fastlob._kernels import profile as _profile
from fastlob.profiling import phase_profile, random_actions

CONFIG = MarketMakingConfig(dt=2.5, episode_steps=50)


def test_matching_replay_leaves_the_books_as_the_flow_did():
    env = MarketMakingVectorEnv(16, config=CONFIG, seed=3)
    env.reset(seed=3)
    for actions in random_actions(env, 5, seed=4):
        env.step(actions)  # quotes resting, some crossing: the flow fills them too
    s, m, fp, lr, cr, p = env._kernel_args()
    before = type(s)(*(a.copy() for a in s))
    last_best, events = m.last_best.copy(), m.events.copy()
    log = np.zeros((16, 512, _profile.LOG_WIDTH), np.int64)
    count = np.zeros(16, np.int64)
    _profile.logged_flow_phase(s, m, fp, lr, cr, p, CONFIG.dt, log, count)
    assert 0 < count.max() <= 512 and count.sum() > 16 * 20
    kinds = log[:, :, _profile.LOG_KIND][np.arange(512) < count[:, None]]
    assert set(np.unique(kinds)) == {0, 1, 2}  # limit, market and cancel events all replayed
    _profile.matching_phase(before, log, count, last_best, events)
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
