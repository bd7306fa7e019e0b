"""Independent solutions of the linear-quadratic market-making problem, for the tests of its
closed form and of its env.

- ``hjb_solution``: the HJB equation solved numerically, as it stands (no ansatz, no closed-form
  maximiser): in time-to-go ``tau``,
  ``dh/dtau = -phi q^2 + A sup_d e^(-k d) (d + h(q-1) - h(q)) [q > -Q]
  + A sup_d e^(-k d) (d + h(q+1) - h(q)) [q < Q]``, ``h(0, q) = -alpha q^2``,
  integrated by scipy's DOP853 with each supremum found by golden-section search.
- ``discrete_policy_value``: the exact expected objective of a policy in the simulated model
  (one Bernoulli fill draw per side per step, ``phi q^2 dt`` after each step, ``alpha q^2`` at
  the last), by backward recursion over (step, inventory).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.integrate import solve_ivp

GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


def golden_argmax(f, low: np.ndarray, high: np.ndarray, iterations: int = 80) -> np.ndarray:
    """The maximiser of a unimodal ``f`` on ``[low, high]``, elementwise."""
    a, b = low.copy(), high.copy()
    c = b - GOLDEN * (b - a)
    d = a + GOLDEN * (b - a)
    fc, fd = f(c), f(d)
    for _ in range(iterations):
        left = fc > fd  # the maximum lies in [a, d]
        b = np.where(left, d, b)
        a = np.where(left, a, c)
        c2 = b - GOLDEN * (b - a)
        d2 = a + GOLDEN * (b - a)
        c, d = c2, d2
        fc, fd = f(c), f(d)
    return (a + b) / 2.0


def best_depth(k: float, jump: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(argmax, max)`` over the depth ``d`` of ``e^(-k d) (d + jump)``, numerically."""

    def gain(d):
        return np.exp(-k * d) * (d + jump)

    span = 4.0 / k + np.abs(jump)  # holds the maximiser 1/k - jump, without overflow
    depth = golden_argmax(gain, -span, span)
    return depth, gain(depth)


def hjb_rhs(q, intensity, k, phi, bound):
    def rhs(_tau, h):
        # the integrator's trial steps may probe huge values: it rejects their overflow itself
        with np.errstate(over="ignore", invalid="ignore"):
            return _rhs(h)

    def _rhs(h):
        up = np.append(h[1:], h[-1]) - h  # h(q+1) - h(q); 0 at the bound, not quoted there
        down = np.insert(h[:-1], 0, h[0]) - h  # h(q-1) - h(q)
        _, buy = best_depth(k, up)
        _, sell = best_depth(k, down)
        buy = np.where(q < bound, buy, 0.0)
        sell = np.where(q > -bound, sell, 0.0)
        return -phi * q**2 + intensity * (buy + sell)

    return rhs


def hjb_solution(intensity, k, phi, alpha, bound, taus):
    """``h(tau, q)`` on ``taus`` (increasing, > 0) x ``q in [-Q, Q]``, float64 (T, 2Q+1)."""
    q = np.arange(-bound, bound + 1, dtype=np.float64)
    solution = solve_ivp(
        hjb_rhs(q, intensity, k, phi, bound),
        (0.0, float(taus[-1])),
        -alpha * q**2,
        method="DOP853",
        t_eval=taus,
        rtol=1e-11,
        atol=1e-11,
    )
    assert solution.success, solution.message
    return solution.y.T


def hjb_depths(h_row: np.ndarray, k: float) -> tuple[np.ndarray, np.ndarray]:
    """The maximising bid and ask depths for one row of ``h`` (interior inventories only: the
    first and last entries are NaN on the side not quoted)."""
    up = np.append(h_row[1:], np.nan) - h_row
    down = np.insert(h_row[:-1], 0, np.nan) - h_row
    bid, _ = best_depth(k, np.nan_to_num(up))
    ask, _ = best_depth(k, np.nan_to_num(down))
    bid[-1] = np.nan
    ask[0] = np.nan
    return bid, ask


def discrete_policy_value(params, depths) -> float:
    """The exact expected episode return from ``q = 0`` of the policy ``depths(step, q) ->
    (bid, ask)`` (q: float64 array of every inventory in ``[-Q, Q]``) in the simulated model of
    ``params`` (an ``LQParams``)."""
    p = params
    steps = round(p.horizon / p.dt)
    bound = p.max_inventory
    q = np.arange(-bound, bound + 1, dtype=np.float64)
    value = np.zeros(q.size)  # after the last step
    for step in reversed(range(steps)):
        bid, ask = depths(step, q)
        p_bid = np.minimum(1.0, p.intensity * p.dt * np.exp(-p.decay * bid)) * (q < bound)
        p_ask = np.minimum(1.0, p.intensity * p.dt * np.exp(-p.decay * ask)) * (q > -bound)
        penalty = p.running_penalty * p.dt + (p.terminal_penalty if step == steps - 1 else 0.0)
        expected = np.zeros(q.size)
        for b, a, prob in (
            (1, 0, p_bid * (1 - p_ask)),
            (0, 1, p_ask * (1 - p_bid)),
            (1, 1, p_bid * p_ask),
            (0, 0, (1 - p_bid) * (1 - p_ask)),
        ):
            nxt = q + b - a
            index = np.clip(nxt + bound, 0, 2 * bound).astype(np.int64)
            # a fill earns its depth against the mid; the mid's move has mean zero
            gain = b * bid + a * ask - penalty * nxt**2 + value[index]
            expected += prob * gain
        value = expected
    return float(value[bound])
