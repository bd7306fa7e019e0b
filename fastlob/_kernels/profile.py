"""Kernels that run one phase of the market-making step at a time over all envs, so that the
owner can time each phase (flow, the matching inside it, quoting, observation). Each is the
same code the step runs, looped over envs in parallel chunks like the step driver."""

from __future__ import annotations

import numpy as np

from fastlob._kernels import mm, mm_layout
from fastlob._kernels.flow import (
    KIND_MARKET,
    FlowModel,
    apply_event,
    begin_span,
    draw_event,
    rate_totals,
)
from fastlob._kernels.mm_drivers import CHUNK
from fastlob._kernels.rng import xorshift64
from fastlob._numba import njit, prange


@njit
def _flow_range(s, m, fp, lr, cr, lc, mc, p, duration, start, stop):
    model = FlowModel(fp, lr, cr, lc, mc)
    totals = rate_totals(model)
    for n in range(start, stop):
        mm.run_flow(s, m, model, totals, p, n, duration, True)


@njit
def flow_phase(s, m, model, p, duration):
    """Background flow (event generation and matching, fills accounted) for ``duration`` s."""
    fp, lr, cr, lc, mc = model  # a parallel kernel cannot take a tuple holding a tuple
    _flow_all(s, m, fp, lr, cr, lc, mc, p, duration)


@njit(parallel=True)
def _flow_all(s, m, fp, lr, cr, lc, mc, p, duration):
    num_envs = m.rng.shape[0]
    for chunk in prange((num_envs + CHUNK - 1) // CHUNK):
        start = chunk * CHUNK
        stop = min(start + CHUNK, num_envs)
        _flow_range(s, m, fp, lr, cr, lc, mc, p, duration, start, stop)


@njit
def _quote_range(s, m, p, actions, start, stop):
    for n in range(start, stop):
        bid, ask = mm.quote_prices(
            mm.others_mid2(s, m, n),
            float(actions[n, mm_layout.ACT_BID_OFFSET]),
            float(actions[n, mm_layout.ACT_ASK_OFFSET]),
        )
        bid_size = mm.lots_of(float(actions[n, mm_layout.ACT_BID_SIZE]))
        ask_size = mm.lots_of(float(actions[n, mm_layout.ACT_ASK_SIZE]))
        mm.place_quotes(s, m, p, n, bid, ask, bid_size, ask_size, False)


@njit(parallel=True)
def quote_phase(s, m, p, actions):
    """Quote placement (cancel/replace, limits, taker fills) for float32 (N, 5) actions."""
    num_envs = m.rng.shape[0]
    for chunk in prange((num_envs + CHUNK - 1) // CHUNK):
        start = chunk * CHUNK
        _quote_range(s, m, p, actions, start, min(start + CHUNK, num_envs))


@njit
def _observe_range(s, m, p, obs, start, stop):
    for n in range(start, stop):
        mm.write_obs(s, m, p, n, obs)


@njit(parallel=True)
def observe_phase(s, m, p, obs):
    """The observation of every env (features, queue positions, top levels)."""
    num_envs = m.rng.shape[0]
    for chunk in prange((num_envs + CHUNK - 1) // CHUNK):
        start = chunk * CHUNK
        _observe_range(s, m, p, obs, start, min(start + CHUNK, num_envs))


#: columns of the event log written by ``logged_flow_phase`` (one row per applied event)
LOG_KIND, LOG_DIRECTION, LOG_PRICE, LOG_SIZE, LOG_SLOT = range(5)
LOG_WIDTH = 5


@njit
def _logged_flow_range(s, m, fp, lr, cr, lc, mc, p, duration, log, log_count, start, stop):
    model = FlowModel(fp, lr, cr, lc, mc)
    totals = rate_totals(model)
    fs = m  # the flow's state lives in the MMState (flow.FlowState's fields)
    for n in range(start, stop):
        # mm.run_flow's loop, with next_event's two halves called apart to log each event
        begin_span(model, fs, n, duration)
        t = 0.0
        count = 0
        before = 0
        others_before = 0
        while True:
            t, kind, direction, price, size, slot = draw_event(s, n, model, fs, totals, t, duration)
            if t < 0.0:
                break
            if kind == KIND_MARKET:
                before = mm.mid2(s, m, n)
                others_before = mm.others_mid2(s, m, n)
            apply_event(s, n, fs, kind, direction, price, size, slot)
            if count < log.shape[1]:
                log[n, count, LOG_KIND] = kind
                log[n, count, LOG_DIRECTION] = direction
                log[n, count, LOG_PRICE] = price
                log[n, count, LOG_SIZE] = size
                log[n, count, LOG_SLOT] = slot
            count += 1
            if s.trade_count[n] > 0:
                mm.account_trades(s, m, p, n, before, others_before)
        log_count[n] = count


@njit
def logged_flow_phase(s, m, model, p, duration, log, log_count):
    """The flow phase, writing each env's events into ``log`` (int64 (N, E, LOG_WIDTH)) and
    their number into ``log_count`` (int64 (N,); more than E means the log overflowed)."""
    fp, lr, cr, lc, mc = model  # a parallel kernel cannot take a tuple holding a tuple
    _logged_flow_all(s, m, fp, lr, cr, lc, mc, p, duration, log, log_count)


@njit(parallel=True)
def _logged_flow_all(s, m, fp, lr, cr, lc, mc, p, duration, log, log_count):
    num_envs = m.rng.shape[0]
    for chunk in prange((num_envs + CHUNK - 1) // CHUNK):
        start = chunk * CHUNK
        stop = min(start + CHUNK, num_envs)
        _logged_flow_range(s, m, fp, lr, cr, lc, mc, p, duration, log, log_count, start, stop)


@njit
def _matching_range(s, log, log_count, fs, start, stop):
    for n in range(start, stop):
        for k in range(log_count[n]):
            apply_event(
                s, n, fs, log[n, k, LOG_KIND], log[n, k, LOG_DIRECTION], log[n, k, LOG_PRICE],
                log[n, k, LOG_SIZE], log[n, k, LOG_SLOT],
            )  # fmt: skip
            s.trade_count[n] = 0  # drained after every event, as the step does


@njit(parallel=True)
def matching_phase(s, log, log_count, fs):
    """Matching alone: apply logged events (``logged_flow_phase``) to books ``s`` as they were
    before that flow ran, with ``fs`` (a ``FlowState`` whose ``last_best`` and ``events`` are
    copies taken then); the books end exactly as the flow left them (trade buffers drained)."""
    num_envs = log_count.shape[0]
    for chunk in prange((num_envs + CHUNK - 1) // CHUNK):
        start = chunk * CHUNK
        _matching_range(s, log, log_count, fs, start, min(start + CHUNK, num_envs))


@njit(parallel=True)
def register_rounds(out, rounds):
    """``rounds`` rounds of eight independent xorshift64 chains per entry (the generator's
    ``rng.xorshift64``), entries in parallel.

    Parameters
    ----------
    out : ndarray[uint64], shape (J,)
        Entry ``j``'s chains start from ``8 j + 1, ..., 8 j + 8``; their final states, xor-ed
        together, are written to ``out[j]``. Run one entry per thread.
    rounds : int
        Rounds of the chains.

    Work that never leaves the registers, with enough independent instructions to fill a core:
    its time is the speed of the cores the threads run on, whatever the caches hold.
    """
    for j in prange(out.shape[0]):
        base = np.uint64(8 * j)
        a, b, c, d = (
            base + np.uint64(1),
            base + np.uint64(2),
            base + np.uint64(3),
            base + np.uint64(4),
        )
        e, f, g, h = (
            base + np.uint64(5),
            base + np.uint64(6),
            base + np.uint64(7),
            base + np.uint64(8),
        )
        for _ in range(rounds):
            a, b, c, d = xorshift64(a), xorshift64(b), xorshift64(c), xorshift64(d)
            e, f, g, h = xorshift64(e), xorshift64(f), xorshift64(g), xorshift64(h)
        out[j] = a ^ b ^ c ^ d ^ e ^ f ^ g ^ h


@njit
def chase(next_index, steps):
    """Follow ``steps`` links of ``next_index`` (int64 (M,), one random cycle) from entry 0 and
    return where it ends: each load's address is the previous load's value, so the time per
    step is the latency of wherever the array lives (cache or memory)."""
    i = 0
    for _ in range(steps):
        i = next_index[i]
    return i
