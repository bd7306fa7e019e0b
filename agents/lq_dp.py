"""The optimum of the linear-quadratic problem *as the env simulates it*, by dynamic programming.

``baselines.CarteaJaimungalPenalva`` is the optimum of the continuous-time problem
(``fastlob.LQParams``). ``fastlob.LinearQuadraticVectorEnv`` plays a discrete version of it
(as ``fastlob.as_env`` documents it): per step of ``dt``, starting at inventory ``q``,

- the bid, quoted ``d_b`` below the mid, is hit with probability ``p(d_b) = min(1, A dt
  exp(-k d_b))`` and the ask, ``d_a`` above, lifted with probability ``p(d_a)``, *independently*
  (both may fill in the same step); a side that would pass the bound ``Q`` is not quoted (its
  fill probability is 0 at ``q = Q`` for the bid, ``q = -Q`` for the ask);
- a fill earns its depth against the mid; the mid then moves ``+-sigma sqrt(dt)``, which has mean
  zero and so adds nothing to the expected objective;
- the reward loses ``phi dt q'^2`` (the inventory ``q'`` after the step), and at the last step
  also ``alpha q'^2``;
- each depth is clipped into the action box ``[-max_offset, max_offset]``.

The discrete problem has its own optimum, a little above the continuous one (a Bernoulli fill per
step is worth a little more than a Poisson stream of the same intensity). With ``V_t(q)`` the
optimal expected objective from step ``t`` and inventory ``q`` (``V_N = 0`` after the last of
the ``N = horizon / dt`` steps) and ``W(q') = V_{t+1}(q') - pen_t q'^2`` (``pen_t = phi dt``,
plus ``alpha`` at the last step), the expectation over the two fills is

    V_t(q) = max over d_b, d_a of  W(q) + p_b (d_b + U) + p_a (d_a + D) - p_b p_a C,

``U = W(q+1) - W(q)``, ``D = W(q-1) - W(q)``, ``C = U + D`` (``p_b = p(d_b)``, ``p_a = p(d_a)``).
The term ``- p_b p_a C`` (both sides filled in one step: the inventory does not move) couples the
two sides; given the other side's probability each side maximises ``p(d) (d + J)`` with ``J = U
- p_a C`` for the bid (``D - p_b C`` for the ask). That 1-D function increases up to ``max(1/k -
J, log(A dt) / k)`` and decreases after it (below ``log(A dt) / k`` the probability is capped at
1 and the function is ``d + J``; above, its derivative has the sign of ``1 - k (d + J)``), so its
maximiser on the box is that point clipped into the box: exact, no search. The two sides are
solved by alternating these best responses (a contraction here: each changes the other's ``J``
by ``C`` times a probability) until neither depth moves.

The optimum is over real depths; the env rounds each action to float32. That changes the value
of the optimal table by far less than float64's precision of the objective (the objective is flat
at its maximum: a depth error ``e`` costs ``O(e^2)``, and ``e`` is ``~1e-7``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from fastlob import LQParams
from fastlob._checks import check_fits_memory, check_int, check_real
from fastlob.as_env import check_lq_params

from .baselines import _Strategy

#: index of the bid's depth in a depth table's last axis
BID = 0
#: index of the ask's depth in a depth table's last axis
ASK = 1


class DiscreteSolution(NamedTuple):
    """The optimum of the discrete problem (see :func:`solve_discrete_optimum`).

    ``N`` is the number of steps ``horizon / dt``, ``Q`` the inventory bound; inventory index
    ``i`` is the inventory ``i - Q``.
    """

    #: the optimal expected objective from the start (step 0, inventory 0)
    value: float
    #: float64 (N + 1, 2Q + 1): the optimal expected objective from step t and each inventory
    #: (row N, after the last step, is 0)
    values: np.ndarray
    #: float64 (N, 2Q + 1, 2): the optimal ``[bid, ask]`` depths at each step and inventory (the
    #: side not quoted at the bound holds ``unquoted_depth``)
    depths: np.ndarray
    #: best-response sweeps the slowest step needed
    sweeps: int


def _check(params: LQParams, max_offset: float) -> float:
    """Every field of ``params`` as ``fastlob.LinearQuadraticVectorEnv`` checks it (a whole
    number of steps, finite penalties >= 0, ...), intensity and decay > 0, ``max_offset`` finite
    and > 0, and tables that fit in memory; returns ``max_offset`` as a float."""
    checked = check_lq_params(params)
    if not (checked.intensity > 0.0 and checked.decay > 0.0):
        raise ValueError(
            "the dynamic programme needs params.intensity > 0 and params.decay > 0, got "
            f"{checked.intensity} and {checked.decay}"
        )
    max_offset = check_real("max_offset", max_offset, 0.0, 1e9, low_open=True)  # as the env
    cells = (episode_steps(params) + 1) * (2 * params.max_inventory + 1)
    check_fits_memory(
        "(params.horizon / params.dt + 1) * (2 * params.max_inventory + 1)", cells, 4 * 8,
        "dynamic-programme tables",
    )  # fmt: skip
    return max_offset


def episode_steps(params: LQParams) -> int:
    """``horizon / dt``, the steps per episode (as the env counts them)."""
    return round(params.horizon / params.dt)


def fill_probability(params: LQParams, depth: np.ndarray) -> np.ndarray:
    """``min(1, A dt exp(-k depth))``, the chance that a quote ``depth`` from the mid fills in
    one step (float64, ``depth``'s shape)."""
    return np.minimum(1.0, params.intensity * params.dt * np.exp(-params.decay * depth))


def _next_step(params: LQParams, values_next: np.ndarray, step: int, steps: int):
    """``(W, U, D, C)`` of the module docstring for step ``step``: float64 (2Q + 1,) each, ``U``
    and ``C`` 0 at ``q = Q``, ``D`` and ``C`` 0 at ``q = -Q`` (where they do not count)."""
    bound = params.max_inventory
    q = np.arange(-bound, bound + 1, dtype=np.float64)
    penalty = params.running_penalty * params.dt + (
        params.terminal_penalty if step == steps - 1 else 0.0
    )
    w = values_next - penalty * q * q
    up = np.zeros_like(w)
    up[:-1] = w[1:] - w[:-1]
    down = np.zeros_like(w)
    down[1:] = w[:-1] - w[1:]
    curvature = up + down
    curvature[[0, -1]] = 0.0
    return w, up, down, curvature


def _expected(w, up, down, curvature, bid, ask, p_bid, p_ask) -> np.ndarray:
    """The expected objective from one step's quotes on: float64 (2Q + 1,)."""
    return w + p_bid * (bid + up) + p_ask * (ask + down) - p_bid * p_ask * curvature


def best_depth(params: LQParams, jump: np.ndarray, max_offset: float) -> np.ndarray:
    """The depth ``d`` in ``[-max_offset, max_offset]`` that maximises ``p(d) (d + jump)``,
    ``p = fill_probability``, elementwise: ``clip(max(1/k - jump, log(A dt) / k))`` (the module
    docstring says why). ``jump``: float64 array; returns float64, its shape."""
    capped = math.log(params.intensity * params.dt) / params.decay  # p(d) = 1 below this depth
    return np.clip(np.maximum(1.0 / params.decay - jump, capped), -max_offset, max_offset)


def solve_discrete_optimum(
    params: LQParams,
    max_offset: float = 4.0,
    unquoted_depth: float | None = None,
    tolerance: float = 1e-13,
    max_sweeps: int = 200,
) -> DiscreteSolution:
    """Backward recursion over (step, inventory) of the discrete problem's optimal expected
    objective, maximising over both depths at every state.

    Parameters
    ----------
    params : fastlob.LQParams
        The problem, simulated as ``fastlob.LinearQuadraticVectorEnv(params)`` does.
    max_offset : float
        The env's action box: each depth lies in ``[-max_offset, max_offset]`` (the env's
        ``max_offset``; ``fastlob_agents.optimum.LQ_MAX_OFFSET`` for ``fastlob optimum``).
    unquoted_depth : float or None
        The depth written for the side not quoted at the bound (no effect on the value); None
        for ``max_offset``, as ``CarteaJaimungalPenalva`` quotes there.
    tolerance : float
        The best-response sweeps stop once no depth moves by more than this (price units).
    max_sweeps : int
        Sweeps allowed per step before ``RuntimeError``.

    Returns
    -------
    DiscreteSolution
        ``value`` (float), ``values`` float64 (N + 1, 2Q + 1), ``depths`` float64
        (N, 2Q + 1, 2) ``[bid, ask]``, ``sweeps`` (int).
    """
    max_offset = _check(params, max_offset)
    unquoted = (
        max_offset
        if unquoted_depth is None
        else check_real("unquoted_depth", unquoted_depth, -1e12, 1e12)
    )
    tolerance = check_real("tolerance", tolerance, 0.0, 1e12)
    max_sweeps = check_int("max_sweeps", max_sweeps, 1, 10**9)
    steps = episode_steps(params)
    bound = params.max_inventory
    q = np.arange(-bound, bound + 1, dtype=np.float64)
    can_buy = q < bound
    can_sell = q > -bound
    values = np.zeros((steps + 1, q.size))
    depths = np.empty((steps, q.size, 2))
    most_sweeps = 0
    for step in reversed(range(steps)):
        w, up, down, curvature = _next_step(params, values[step + 1], step, steps)
        # alternate best responses, from the sides solved as if they did not interact
        bid = best_depth(params, up, max_offset)
        p_bid = fill_probability(params, bid) * can_buy
        ask = best_depth(params, down, max_offset)
        p_ask = fill_probability(params, ask) * can_sell
        sweeps = 0
        while True:
            sweeps += 1
            new_bid = best_depth(params, up - p_ask * curvature, max_offset)
            p_bid = fill_probability(params, new_bid) * can_buy
            new_ask = best_depth(params, down - p_bid * curvature, max_offset)
            p_ask = fill_probability(params, new_ask) * can_sell
            moved = max(np.abs(new_bid - bid).max(), np.abs(new_ask - ask).max())
            bid, ask = new_bid, new_ask
            if moved <= tolerance:
                break
            if sweeps == max_sweeps:
                raise RuntimeError(f"the best responses did not settle at step {step} ({moved:g})")
        most_sweeps = max(most_sweeps, sweeps)
        values[step] = _expected(w, up, down, curvature, bid, ask, p_bid, p_ask)
        depths[step, :, BID] = np.where(can_buy, bid, unquoted)
        depths[step, :, ASK] = np.where(can_sell, ask, unquoted)
    return DiscreteSolution(float(values[0, bound]), values, depths, most_sweeps)


def policy_value(params: LQParams, depths: np.ndarray) -> np.ndarray:
    """The exact expected objective of a policy in the discrete problem, by the same backward
    recursion with the depths given instead of maximised.

    Parameters
    ----------
    params : fastlob.LQParams
    depths : ndarray[float], shape (N, 2Q + 1, 2)
        ``[bid, ask]`` depths the policy quotes at each step and inventory, as the env uses them
        (clipped into the action box: see :func:`strategy_depths`).

    Returns
    -------
    ndarray[float64], shape (N + 1, 2Q + 1)
        The expected objective from each step and inventory; ``[0, Q]`` is the episode's.
    """
    steps = episode_steps(params)
    bound = params.max_inventory
    depths = np.asarray(depths, np.float64)
    if depths.shape != (steps, 2 * bound + 1, 2):
        raise ValueError(f"depths must have shape {(steps, 2 * bound + 1, 2)}, got {depths.shape}")
    q = np.arange(-bound, bound + 1, dtype=np.float64)
    values = np.zeros((steps + 1, q.size))
    for step in reversed(range(steps)):
        w, up, down, curvature = _next_step(params, values[step + 1], step, steps)
        bid, ask = depths[step, :, BID], depths[step, :, ASK]
        p_bid = fill_probability(params, bid) * (q < bound)
        p_ask = fill_probability(params, ask) * (q > -bound)
        bid, ask = np.where(q < bound, bid, 0.0), np.where(q > -bound, ask, 0.0)
        values[step] = _expected(w, up, down, curvature, bid, ask, p_bid, p_ask)
    return values


def strategy_depths(policy, params: LQParams, max_offset: float = 4.0) -> np.ndarray:
    """The depths ``policy`` quotes in ``LinearQuadraticVectorEnv(params, max_offset=...)`` at
    every step and inventory: its action on the float32 observation ``[mid0, q, horizon - step
    dt]``, clipped into the box as the env clips it (float32).

    Parameters
    ----------
    policy : object with ``act(obs) -> (M, 2)`` actions
        A deterministic policy of the inventory and the time left (the mid is held at ``mid0``).
    params : fastlob.LQParams
    max_offset : float

    Returns
    -------
    ndarray[float64], shape (N, 2Q + 1, 2)
        ``[bid, ask]`` per step and inventory, the float32 values the env would use.
    """
    steps = episode_steps(params)
    bound = params.max_inventory
    q = np.arange(-bound, bound + 1, dtype=np.float64)
    step = np.repeat(np.arange(steps), q.size)
    obs = np.stack(
        [
            np.full(step.size, params.mid0),
            np.tile(q, steps),
            params.horizon - step * params.dt,  # as the kernel writes it, then float32
        ],
        axis=1,
    ).astype(np.float32)
    actions = np.asarray(policy.act(obs), np.float32)
    limit = np.float32(max_offset)
    return np.clip(actions, -limit, limit).astype(np.float64).reshape(steps, q.size, 2)


@dataclass
class DiscreteOptimum(_Strategy):
    """The optimal policy of the discrete problem ``params`` (:func:`solve_discrete_optimum`) as
    a baseline: ``act(obs)`` looks up the depth table at the observation's step (from its time
    left) and inventory.

    ``value`` is the optimal expected objective from the start; ``solution`` the whole
    :class:`DiscreteSolution`.
    """

    params: LQParams = field(default_factory=LQParams)
    #: the env's action box (each depth in ``[-max_offset, max_offset]``)
    max_offset: float = 4.0
    #: the depth returned for the side not quoted at the inventory bound (None: ``max_offset``)
    unquoted_depth: float | None = None

    @classmethod
    def from_params(cls, params: LQParams, **kwargs) -> DiscreteOptimum:
        """The optimum of the discrete problem ``params`` (``max_offset``, ``unquoted_depth``
        as keywords)."""
        return cls(params=params, **kwargs)

    def __post_init__(self):
        self.solution = solve_discrete_optimum(self.params, self.max_offset, self.unquoted_depth)

    @property
    def value(self) -> float:
        return self.solution.value

    def offsets(self, q, tau):
        p = self.params
        bound = p.max_inventory
        q, tau = np.asarray(q, np.float64), np.asarray(tau, np.float64)
        if not (np.isfinite(q).all() and np.isfinite(tau).all()):
            raise ValueError("the inventory and the time left must be finite (no NaN/inf)")
        q = np.rint(q).astype(np.int64)
        if (np.abs(q) > bound).any():
            raise ValueError(f"inventory beyond the bound max_inventory={bound}")
        steps = self.solution.depths.shape[0]
        step = np.rint((p.horizon - np.asarray(tau, np.float64)) / p.dt).astype(np.int64)
        row = self.solution.depths[np.clip(step, 0, steps - 1), q + bound]
        return row[:, BID].copy(), row[:, ASK].copy()
