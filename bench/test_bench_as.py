"""Avellaneda-Stoikov model env at N = 4096: env-steps/s of the kernel env against a plain numpy
implementation of the same dynamics vectorized over the batch, measured in the same run."""

from __future__ import annotations

import statistics
import time

import numpy as np
from bench_support import host_now, host_text, machine, sized, smoke_run

from fastlob import ASParams, AvellanedaStoikovVectorEnv

N = sized(4096, 8)
STEPS = sized(200, 5)
#: timed rounds of one episode, on each side
ROUNDS = sized(5, 1)


class NumpyAS:
    """The same env in vectorized numpy, written for speed (in-place updates, one draw call per
    step, no per-env Python): action check and clipping, fills with capped probability, the mid
    move, marked-to-market reward with the inventory penalty, time-left observation, truncation
    and next-step autoreset."""

    def __init__(self, n, params, max_offset=100.0, seed=0):
        self.p = params
        self.rng = np.random.default_rng(seed)
        self.mid = np.full(n, params.mid0)
        self.q = np.zeros(n)
        self.cash = np.zeros(n)
        self.t = np.zeros(n, np.int64)
        self.prev_done = np.zeros(n, bool)
        self.capped = np.zeros(n, np.int64)
        self.max_offset = max_offset
        self.k = -params.decay
        self.scale = params.intensity * params.dt
        self.move = params.sigma * np.sqrt(params.dt)
        self.steps = round(params.horizon / params.dt)
        self.obs = np.zeros((n, 3), np.float32)

    def step(self, actions):
        if not np.isfinite(actions).all():
            raise ValueError("actions must be finite")
        actions = np.clip(actions, -self.max_offset, self.max_offset)
        reset = self.prev_done
        u = self.rng.random((3, self.mid.shape[0]))
        raw = self.scale * np.exp(self.k * actions.T.astype(np.float64))
        self.capped += (raw > 1.0).sum(axis=0)
        bid, ask = u[0] < raw[0], u[1] < raw[1]
        wealth_before = self.cash + self.q * self.mid
        self.q += bid
        self.q -= ask
        self.cash -= bid * (self.mid - actions[:, 0])
        self.cash += ask * (self.mid + actions[:, 1])
        self.mid += np.where(u[2] < 0.5, self.move, -self.move)
        self.t += 1
        wealth = self.cash + self.q * self.mid
        reward = wealth - wealth_before - self.p.inventory_penalty * self.q**2
        # next-step autoreset: envs done last step restart and return reward 0
        self.mid[reset] = self.p.mid0
        self.q[reset] = 0
        self.cash[reset] = 0
        self.t[reset] = 0
        reward[reset] = 0.0
        truncated = self.t >= self.steps
        self.prev_done = truncated
        self.obs[:, 0] = self.mid
        self.obs[:, 1] = self.q
        self.obs[:, 2] = self.p.horizon - self.t * self.p.dt
        return self.obs, reward.astype(np.float32), truncated, wealth


def actions_for(steps, n, seed=0):
    return np.random.default_rng(seed).uniform(0.0, 3.0, size=(steps, n, 2)).astype(np.float32)


def test_as_env_4096(benchmark):
    env = AvellanedaStoikovVectorEnv(num_envs=N, params=ASParams(), seed=0)
    env.reset()
    actions = actions_for(STEPS, N)
    for a in actions[:5]:
        env.step(a)  # warm-up (compiled already by the cache or here)

    def episode():
        for a in actions:
            env.step(a)

    benchmark.pedantic(episode, rounds=ROUNDS, iterations=1)

    reference = NumpyAS(N, ASParams())
    for a in actions[:5]:
        reference.step(a)
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for a in actions:
            reference.step(a)
        times.append(time.perf_counter() - start)
    # the same statistic on both sides: the median of as many rounds of the same episode
    if smoke_run():
        return  # both sides ran once; nothing is timed
    rate = STEPS * N / benchmark.stats.stats.median
    ref_rate = STEPS * N / statistics.median(times)
    ref_best_rate = STEPS * N / min(times)
    host = host_now()
    benchmark.extra_info.update(
        env_steps_per_s=rate,
        numpy_env_steps_per_s=ref_rate,
        numpy_best_round_env_steps_per_s=ref_best_rate,
        ratio=rate / ref_rate,
        **host,
        **machine(),
    )
    print(
        f"\nAS model env, N={N}: {rate / 1e6:.1f} M env-steps/s (full step: checks, kernel, "
        f"info); numpy reference {ref_rate / 1e6:.1f} M env-steps/s (best round "
        f"{ref_best_rate / 1e6:.1f} M); ratio "
        f"{rate / ref_rate:.1f}x; {host_text(host)}  [{machine()}]"
    )
