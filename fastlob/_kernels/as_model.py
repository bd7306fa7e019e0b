"""Kernels of the Avellaneda & Stoikov (2008) market-making model, N envs per call.

Dynamics of one step of length ``dt`` (the paper's simulation): the agent quotes a bid at
``mid - bid_offset`` and an ask at ``mid + ask_offset``; the bid is hit with probability
``A exp(-k bid_offset) dt`` (the agent buys one unit at its bid), the ask is lifted with
probability ``A exp(-k ask_offset) dt`` (it sells one unit at its ask); then the mid moves
``+sigma sqrt(dt)`` or ``-sigma sqrt(dt)`` with probability 1/2 each. A probability above 1 (an
offset far through the mid) is capped at 1 and counted. Each fill is drawn as one standard
exponential ``E`` above ``k offset - log(A dt)`` (see ``_filled``), the move from one uniform:
per env and step, in this order, the bid's exponential, the ask's, the move's uniform (drawn
also for a side that is not quoted). At the inventory bound ``max_inventory`` the side that
would pass it is not quoted. Wealth is marked to market: ``pnl = cash + inventory * mid``; the
reward is its change minus ``inventory_penalty * q^2`` each step and ``terminal_penalty * q^2``
at the last. The episode ends after ``horizon / dt`` steps.

Autoreset is next-step (Gymnasium's ``NEXT_STEP``): on the step after an env's episode ended
(``prev_done``), that env ignores its action, starts a new episode and returns reward 0.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from fastlob._kernels.actions import clip_row, first_non_finite
from fastlob._kernels.rng import standard_exponential, uniform
from fastlob._numba import njit, prange

#: observation column: mid price
OBS_MID = 0
#: observation column: inventory in units
OBS_INVENTORY = 1
#: observation column: time remaining, horizon - t
OBS_TIME_LEFT = 2
#: observation width
OBS_DIM = 3

#: action column: bid offset below the mid, in price units
ACT_BID_OFFSET = 0
#: action column: ask offset above the mid, in price units
ACT_ASK_OFFSET = 1
#: action width
ACT_DIM = 2


class ASParams(NamedTuple):
    """Model parameters (the paper's defaults)."""

    #: initial mid price
    mid0: float = 100.0
    #: episode length T
    horizon: float = 1.0
    #: mid-price volatility sigma (price units per unit time^1/2)
    sigma: float = 2.0
    #: step length dt
    dt: float = 0.005
    #: fill intensity scale A (fills per unit time at offset 0)
    intensity: float = 140.0
    #: fill intensity decay k (per price unit of offset)
    decay: float = 1.5
    #: reward weight of the quadratic inventory penalty per step, lambda * q^2
    inventory_penalty: float = 0.0
    #: weight of the penalty on the final inventory, alpha * q_T^2, taken at the last step
    terminal_penalty: float = 0.0
    #: inventory bound Q: at q >= Q the bid is not quoted (never filled), at q <= -Q the ask
    max_inventory: float = math.inf


class ASState(NamedTuple):
    """State of N envs (float64 money; int64 counts)."""

    mid: np.ndarray  #: float64 (N,)
    inventory: np.ndarray  #: int64 (N,)
    cash: np.ndarray  #: float64 (N,)
    step: np.ndarray  #: int64 (N,) steps taken in the episode
    prev_done: np.ndarray  #: bool (N,) the last step ended the episode
    rng: np.ndarray  #: uint64 (N,) generator state
    episode_return: np.ndarray  #: float64 (N,) sum of rewards this episode
    episode_fills: np.ndarray  #: int64 (N,) fills this episode
    episode_spread: np.ndarray  #: float64 (N,) sum of quoted spreads this episode
    capped_probability: np.ndarray  #: int64 (N,) fill probabilities capped at 1, ever


def allocate_as_state(num_envs: int) -> ASState:
    n = num_envs
    return ASState(
        mid=np.zeros(n),
        inventory=np.zeros(n, np.int64),
        cash=np.zeros(n),
        step=np.zeros(n, np.int64),
        prev_done=np.zeros(n, np.bool_),
        rng=np.ones(n, np.uint64),
        episode_return=np.zeros(n),
        episode_fills=np.zeros(n, np.int64),
        episode_spread=np.zeros(n),
        capped_probability=np.zeros(n, np.int64),
    )


@njit
def episode_steps(p):
    """Steps per episode, ``horizon / dt`` (the owner checks that it is a whole number)."""
    return int(p.horizon / p.dt + 0.5)


@njit
def _write_obs(s, p, n, obs):
    obs[n, OBS_MID] = s.mid[n]
    obs[n, OBS_INVENTORY] = s.inventory[n]
    obs[n, OBS_TIME_LEFT] = p.horizon - s.step[n] * p.dt


@njit
def _reset_one(s, p, n, obs):
    s.mid[n] = p.mid0
    s.inventory[n] = 0
    s.cash[n] = 0.0
    s.step[n] = 0
    s.prev_done[n] = False
    s.episode_return[n] = 0.0
    s.episode_fills[n] = 0
    s.episode_spread[n] = 0.0
    _write_obs(s, p, n, obs)


@njit(parallel=True)
def reset_envs(s, p, mask, obs):
    """Start a new episode in every env with ``mask[n]`` (bool (N,)); writes ``obs[n]``."""
    for n in prange(mask.shape[0]):
        if mask[n]:
            _reset_one(s, p, n, obs)


@njit
def log_intensity_dt(p):
    """``log(A dt)``, the log of the fill probability at offset 0 (``-inf`` when A is 0)."""
    intensity_dt = p.intensity * p.dt
    return math.log(intensity_dt) if intensity_dt > 0.0 else -math.inf


@njit(inline="always")
def _filled(rng, n, log_a_dt, decay, offset):
    """``(is the quote filled, was its probability capped at 1)`` for a quote ``offset`` from
    the mid.

    Filled with probability ``min(1, A dt exp(-k offset))``, drawn as ``E > k offset - log(A
    dt)`` for one standard exponential ``E`` (``P(E > x) = exp(-x)`` for ``x >= 0``, and 1 for
    ``x < 0``, the capped case): the same law as a uniform below that probability, but the
    ziggurat's exponential takes no ``exp`` call (two of them were a third of the step)."""
    threshold = decay * offset - log_a_dt
    return standard_exponential(rng, n) > threshold, threshold < 0.0


@njit
def inventory_bound(p):
    """``max_inventory`` as an int64 (``2**62``, beyond any inventory, when unbounded)."""
    return np.int64(p.max_inventory) if p.max_inventory < 2.0**62 else np.int64(2**62)


@njit(inline="always")
def step_env(
    s, p, n, bid_offset, ask_offset, obs, reward, truncated, pnl, steps, move, log_a_dt, bound
):
    """Advance env ``n`` by one step (see the module docstring); writes its outputs.

    ``steps``, ``move``, ``log_a_dt`` and ``bound`` are ``episode_steps(p)``, ``sigma *
    sqrt(dt)``, ``log_intensity_dt(p)`` and ``inventory_bound(p)``, computed once per call
    rather than once per env (an integer bound: no conversion of the inventory per step). The
    fills and the mid move are selects rather than branches (a fill is a coin flip the branch
    predictor cannot learn).
    """
    if s.prev_done[n]:
        _reset_one(s, p, n, obs)
        reward[n] = 0.0
        truncated[n] = False
        pnl[n] = 0.0
        return
    mid = s.mid[n]
    q = s.inventory[n]
    cash = s.cash[n]
    wealth_before = cash + q * mid
    # draw order is fixed (bid, ask, move) so trajectories are reproducible bit for bit
    bid_hit, capped_bid = _filled(s.rng, n, log_a_dt, p.decay, bid_offset)
    ask_hit, capped_ask = _filled(s.rng, n, log_a_dt, p.decay, ask_offset)
    s.capped_probability[n] += capped_bid + capped_ask
    bid_hit = bid_hit & (q < bound)
    ask_hit = ask_hit & (q > -bound)
    up = uniform(s.rng, n) < 0.5
    cash = cash - (mid - bid_offset) if bid_hit else cash
    cash = cash + (mid + ask_offset) if ask_hit else cash
    q = q + bid_hit - ask_hit
    mid = mid + move if up else mid - move
    step = s.step[n] + 1
    s.inventory[n] = q
    s.cash[n] = cash
    s.mid[n] = mid
    s.step[n] = step
    s.episode_fills[n] += bid_hit + ask_hit
    s.episode_spread[n] += bid_offset + ask_offset
    wealth = cash + q * mid
    done = step >= steps
    r = wealth - wealth_before - p.inventory_penalty * q * q
    if done:  # once an episode: a branch the predictor learns
        r -= p.terminal_penalty * q * q
    s.episode_return[n] += r
    reward[n] = r
    pnl[n] = wealth
    truncated[n] = done
    s.prev_done[n] = done
    _write_obs(s, p, n, obs)


#: envs per chunk of the parallel loop (each chunk's loop runs in a plain kernel)
CHUNK = 256


@njit
def _step_range(
    s, p, actions, start, stop, obs, reward, truncated, pnl, low, high, out, clipped, clip_count
):
    steps = episode_steps(p)
    move = p.sigma * math.sqrt(p.dt)
    log_a_dt = log_intensity_dt(p)
    bound = inventory_bound(p)
    # an unsigned env index: Numba then emits no wraparound of negative indices on each of the
    # step's twenty array accesses
    for n in range(np.uint64(start), np.uint64(stop)):
        clip_row(actions, n, low, high, out, clipped, clip_count)
        step_env(
            s,
            p,
            n,
            float(out[n, ACT_BID_OFFSET]),
            float(out[n, ACT_ASK_OFFSET]),
            obs,
            reward,
            truncated,
            pnl,
            steps,
            move,
            log_a_dt,
            bound,
        )


@njit(parallel=True)
def step_envs(
    s, p, actions, low, high, clipped_actions, clipped, clip_count, obs, reward, truncated, pnl
):
    """Check, clip and advance every env by one step.

    Parameters
    ----------
    s : ASState
        Mutated in place.
    p : ASParams
    actions : ndarray[float32 or float64], shape (N, 2)
        ``[bid_offset, ask_offset]`` per env, as the caller gave them.
    low, high : ndarray[float32], shape (2,)
        Bounds of the action space.
    clipped_actions : ndarray[float32], shape (N, 2)
        Written: the actions after clipping (what the envs used).
    clipped : ndarray[bool], shape (N,)
        Written: whether env n's action was clipped.
    clip_count : ndarray[int64], shape (N,)
        Incremented for each clipped action.
    obs : ndarray[float32], shape (N, 3)
        Written: ``[mid, inventory, time_left]``.
    reward : ndarray[float32], shape (N,)
        Written: change in marked-to-market wealth minus the inventory penalty.
    truncated : ndarray[bool], shape (N,)
        Written: the episode reached its horizon (the owner's ``truncated`` buffer, or its
        ``terminated`` one where time is part of the state and the horizon ends the problem).
    pnl : ndarray[float64], shape (N,)
        Written: ``cash + inventory * mid`` after the step.

    Returns
    -------
    int
        -1, or the flat index of the first NaN/inf in ``actions`` (then nothing was written).
    """
    bad = first_non_finite(actions)
    if bad >= 0:
        return bad
    # Chunks of envs per thread, each looped in a plain kernel, as in the matching driver (there
    # the state's arrays are arguments, not memory that every store might alias).
    num_envs = actions.shape[0]
    for chunk in prange((num_envs + CHUNK - 1) // CHUNK):
        start = chunk * CHUNK
        _step_range(
            s,
            p,
            actions,
            start,
            min(start + CHUNK, num_envs),
            obs,
            reward,
            truncated,
            pnl,
            low,
            high,
            clipped_actions,
            clipped,
            clip_count,
        )
    return -1
