"""Kernels that run one phase of the market-making step at a time over all envs, so that the
owner can time each phase (flow and matching, quoting, observation and accounting). Each is the
same code the step runs, looped over envs in parallel chunks like the step driver."""

from __future__ import annotations

from fastlob._kernels import mm
from fastlob._numba import njit, prange


@njit
def _flow_range(s, m, fp, limit_rates, cancel_rates, p, duration, start, stop):
    for n in range(start, stop):
        mm.run_flow(s, m, fp, limit_rates, cancel_rates, p, n, duration, True)


@njit(parallel=True)
def flow_phase(s, m, fp, limit_rates, cancel_rates, p, duration):
    """Background flow (event generation and matching, fills accounted) for ``duration`` s."""
    num_envs = m.rng.shape[0]
    for chunk in prange((num_envs + mm.CHUNK - 1) // mm.CHUNK):
        start = chunk * mm.CHUNK
        stop = min(start + mm.CHUNK, num_envs)
        _flow_range(s, m, fp, limit_rates, cancel_rates, p, duration, start, stop)


@njit
def _quote_range(s, m, p, actions, start, stop):
    for n in range(start, stop):
        bid, ask = mm.quote_prices(
            mm.mid2(s, m, n), float(actions[n, mm.ACT_BID_OFFSET]), float(actions[n, 1])
        )
        mm.place_quote(s, m, p, n, 0, bid, mm.lots_of(float(actions[n, mm.ACT_BID_SIZE])))
        mm.place_quote(s, m, p, n, 1, ask, mm.lots_of(float(actions[n, mm.ACT_ASK_SIZE])))


@njit(parallel=True)
def quote_phase(s, m, p, actions):
    """Quote placement (cancel/replace, limits, taker fills) for float32 (N, 5) actions."""
    num_envs = m.rng.shape[0]
    for chunk in prange((num_envs + mm.CHUNK - 1) // mm.CHUNK):
        start = chunk * mm.CHUNK
        _quote_range(s, m, p, actions, start, min(start + mm.CHUNK, num_envs))


@njit
def _observe_range(s, m, p, obs, start, stop):
    for n in range(start, stop):
        now = mm.mid2(s, m, n)
        mm.write_obs(s, m, p, n, now, obs)


@njit(parallel=True)
def observe_phase(s, m, p, obs):
    """The observation of every env (features, queue positions, top levels)."""
    num_envs = m.rng.shape[0]
    for chunk in prange((num_envs + mm.CHUNK - 1) // mm.CHUNK):
        start = chunk * mm.CHUNK
        _observe_range(s, m, p, obs, start, min(start + mm.CHUNK, num_envs))
