"""The Avellaneda & Stoikov (2008) model as a Gymnasium vector environment.

Each env is one market maker in the paper's model (see ``fastlob._kernels.as_model``):

- action, float32 (2,): ``[bid_offset, ask_offset]``, the distances below and above the mid at
  which it quotes, in price units, each in ``[-max_offset, max_offset]`` (values outside are
  clipped and counted in ``action_clip_count``). A negative offset quotes through the mid; its fill
  probability is capped at 1 (counted in ``info["capped_probability"]``).
- observation, float32 (3,): ``[mid, inventory, time_left]`` (price units, units, time units).
- reward: change in marked-to-market wealth ``cash + inventory * mid`` minus
  ``inventory_penalty * inventory**2`` per step, and ``terminal_penalty * inventory**2`` at the
  last. ``info["pnl"]`` carries the wealth itself. At ``max_inventory`` (default: no bound) the
  side that would pass it is not quoted.
- the episode terminates after ``horizon / dt`` steps (the time left is in the observation, so
  the horizon is part of the problem: a learner must not bootstrap across it); never earlier.

``LinearQuadraticVectorEnv`` is the same simulation set up as the linear-quadratic problem whose
optimum is known in closed form (``LQParams``).

``info`` each step: float64 ``pnl``, ``cash``, ``mid``, int64 ``inventory``, bool
``action_clipped``, int64 ``capped_probability`` (running counts); at the end of an episode
``info["episode"]`` holds ``r`` (return), ``l`` (length), ``pnl``, ``inventory`` (final),
``fills`` and ``mean_spread`` for the envs in ``info["_episode"]``. (With Gymnasium's
``RecordEpisodeStatistics`` wrapper, give it another ``stats_key``.)
"""

from __future__ import annotations

import math
from typing import NamedTuple

import gymnasium
import numpy as np

from fastlob._checks import check_real
from fastlob._kernels import as_model as _as
from fastlob.vector import BatchedVectorEnv

__all__ = ["ASParams", "AvellanedaStoikovVectorEnv", "LQParams", "LinearQuadraticVectorEnv"]

ASParams = _as.ASParams


def _check_bound(name: str, value) -> float:
    """An inventory bound: a whole number in [1, 1e9], or inf (no bound)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == math.inf:
        return math.inf
    bound = check_real(name, value, 1.0, 1e9)
    if bound != round(bound):
        raise ValueError(f"{name} must be a whole number of units (or inf), got {bound}")
    return bound


def check_as_params(params: _as.ASParams) -> _as.ASParams:
    """Validate every field of ``params``; returns it with float fields."""
    if not isinstance(params, _as.ASParams):
        raise TypeError(f"params must be an ASParams, got {type(params).__name__}")
    checked = _as.ASParams(
        mid0=check_real("params.mid0", params.mid0, 0.0, 1e12, low_open=True),
        horizon=check_real("params.horizon", params.horizon, 0.0, 1e9, low_open=True),
        sigma=check_real("params.sigma", params.sigma, 0.0, 1e9),
        dt=check_real("params.dt", params.dt, 0.0, 1e9, low_open=True),
        intensity=check_real("params.intensity", params.intensity, 0.0, 1e12),
        decay=check_real("params.decay", params.decay, 0.0, 1e12),
        inventory_penalty=check_real(
            "params.inventory_penalty", params.inventory_penalty, 0.0, 1e12
        ),
        terminal_penalty=check_real("params.terminal_penalty", params.terminal_penalty, 0.0, 1e12),
        max_inventory=_check_bound("params.max_inventory", params.max_inventory),
    )
    steps = checked.horizon / checked.dt
    if abs(steps - round(steps)) > 1e-9 * steps or round(steps) < 1:
        raise ValueError(
            f"params.horizon / params.dt must be a whole number of steps >= 1, got {steps}"
        )
    return checked


class AvellanedaStoikovVectorEnv(BatchedVectorEnv):
    """N independent episodes of the Avellaneda-Stoikov model, stepped by one kernel call.

    Parameters
    ----------
    num_envs : int
        Number of envs N.
    params : ASParams
        Model parameters (defaults: the paper's s=100, T=1, sigma=2, dt=0.005, A=140, k=1.5).
    seed : int
        Seed of the per-env generators (env n uses ``(seed, n)``).
    max_offset : float
        Bound of each quote offset, in price units.
    device : None, str or torch.device
        None for numpy outputs; a torch device for tensors (shared memory on CPU).
    """

    def __init__(
        self,
        num_envs: int = 1,
        params: _as.ASParams | None = None,
        seed: int | None = 0,
        max_offset: float = 100.0,
        device=None,
    ):
        self.params = check_as_params(params if params is not None else _as.ASParams())
        max_offset = check_real("max_offset", max_offset, 0.0, 1e9, low_open=True)
        obs_space = gymnasium.spaces.Box(
            low=np.array([-np.inf, -np.inf, 0.0], np.float32),
            high=np.array([np.inf, np.inf, self.params.horizon], np.float32),
            dtype=np.float32,
        )
        act_space = gymnasium.spaces.Box(-max_offset, max_offset, shape=(2,), dtype=np.float32)
        super().__init__(num_envs, obs_space, act_space, seed, device)
        self.state = _as.allocate_as_state(self.num_envs)
        #: where the kernel writes the end of an episode: the horizon terminates it
        self._horizon_done = self._terminated
        self.episode_steps = round(self.params.horizon / self.params.dt)
        n = self.num_envs
        self._pnl = np.zeros(n)
        self._episode = {
            "r": np.zeros(n),
            "l": np.zeros(n, np.int64),
            "pnl": np.zeros(n),
            "inventory": np.zeros(n, np.int64),
            "fills": np.zeros(n, np.int64),
            "mean_spread": np.zeros(n),
        }
        always = np.ones(n, np.bool_)
        s = self.state
        self._info = {
            "pnl": self._pnl,
            "cash": s.cash,
            "mid": s.mid,
            "inventory": s.inventory,
            "action_clipped": self._clipped,
            "capped_probability": s.capped_probability,
        }
        self._info.update({"_" + key: always for key in list(self._info)})

    def _state_arrays(self) -> dict[str, np.ndarray]:
        arrays = super()._state_arrays()
        arrays.update({f"as.{k}": v for k, v in self.state._asdict().items()})
        arrays["pnl"] = self._pnl
        return arrays

    def _reset_kernel(self, seed, mask):
        self._seed_rng(self.state.rng, seed, mask)
        _as.reset_envs(self.state, self.params, mask, self._obs)
        self._pnl[mask] = 0.0

    def _step_kernel(self, actions) -> int:
        return _as.step_envs(
            self.state,
            self.params,
            actions,
            self._action_low,
            self._action_high,
            self._actions,
            self._clipped,
            self.action_clip_count,
            self._obs,
            self._reward,
            self._horizon_done,
            self._pnl,
        )

    def _step_info(self) -> dict:
        # The same arrays every step (state and buffers, overwritten in place): only the dict is
        # new, and the episode arrays are filled without temporaries when episodes end.
        info = dict(self._info)
        done = self._horizon_done
        if done.any():
            s, ep = self.state, self._episode
            for key, source in (
                ("r", s.episode_return),
                ("l", s.step),
                ("pnl", self._pnl),
                ("inventory", s.inventory),
                ("fills", s.episode_fills),
            ):
                ep[key].fill(0)
                np.copyto(ep[key], source, where=done)
            ep["mean_spread"].fill(0.0)
            np.divide(s.episode_spread, s.step, out=ep["mean_spread"], where=done)
            info["episode"] = ep
            info["_episode"] = done
        return info


class LQParams(NamedTuple):
    """The linear-quadratic market-making problem of Cartea, Jaimungal & Penalva (2015, ch. 10.2),
    the one whose optimal quotes Guéant, Lehalle & Fernandez-Tapia (2013) give in closed form:
    maximise ``E[X_T + q_T S_T - alpha q_T^2 - phi * integral of q_t^2 dt]`` where market orders
    fill a quote ``delta`` from the mid at intensity ``A exp(-k delta)``, the mid is a Brownian
    motion of volatility ``sigma`` and the inventory stays within ``[-Q, Q]``. Its optimal
    depths are ``fastlob_agents.baselines.CarteaJaimungalPenalva``."""

    #: fill intensity scale A (fills per unit time at depth 0)
    intensity: float = 140.0
    #: fill intensity decay k (per price unit of depth)
    decay: float = 1.5
    #: mid-price volatility sigma (price units per unit time^1/2)
    sigma: float = 2.0
    #: horizon T
    horizon: float = 1.0
    #: step length dt of the simulation
    dt: float = 0.005
    #: running inventory penalty phi (per unit of inventory squared per unit time)
    running_penalty: float = 1.0
    #: terminal inventory penalty alpha (per unit of final inventory squared)
    terminal_penalty: float = 1.0
    #: inventory bound Q (units): the side that would pass it is not quoted
    max_inventory: int = 10
    #: initial mid price
    mid0: float = 100.0

    def as_params(self) -> _as.ASParams:
        """The model's simulation: the running penalty taken as ``phi q^2 dt`` per step."""
        return _as.ASParams(
            mid0=self.mid0,
            horizon=self.horizon,
            sigma=self.sigma,
            dt=self.dt,
            intensity=self.intensity,
            decay=self.decay,
            inventory_penalty=self.running_penalty * self.dt,
            terminal_penalty=self.terminal_penalty,
            max_inventory=float(self.max_inventory),
        )


def check_lq_params(params: LQParams) -> _as.ASParams:
    """``params`` checked field by field (a ``TypeError`` or ``ValueError`` naming the field):
    the LQ fields here, the rest as :func:`check_as_params` checks them; returns the latter."""
    if not isinstance(params, LQParams):
        raise TypeError(f"params must be an LQParams, got {type(params).__name__}")
    if isinstance(params.max_inventory, bool) or not isinstance(params.max_inventory, int):
        raise TypeError(
            "params.max_inventory must be an int (units), got "
            f"{type(params.max_inventory).__name__} {params.max_inventory!r}"
        )
    check_real("params.running_penalty", params.running_penalty, 0.0, 1e12)
    return check_as_params(params.as_params())


class LinearQuadraticVectorEnv(AvellanedaStoikovVectorEnv):
    """N independent episodes of the linear-quadratic market-making problem (``LQParams``),
    simulated as the Avellaneda-Stoikov env: one fill draw per side per step with probability
    ``A exp(-k delta) dt``, the mid moving ``+-sigma sqrt(dt)``. The episode return is the
    problem's objective: the wealth's change minus ``phi q^2 dt`` each step and ``alpha q_T^2``
    at the last.

    Time is part of the observation ``[mid, inventory, time_left]`` and the horizon ends the
    problem, so the last step reports ``terminated`` (as in every fastlob env): a learner must
    not bootstrap past it. Parameters as ``AvellanedaStoikovVectorEnv``, with ``params`` an
    ``LQParams`` and ``max_offset`` (default 4, price units) bounding each depth.
    """

    def __init__(
        self,
        num_envs: int = 1,
        params: LQParams | None = None,
        seed: int | None = 0,
        max_offset: float = 4.0,
        device=None,
    ):
        params = params if params is not None else LQParams()
        check_lq_params(params)
        self.lq_params = params
        super().__init__(num_envs, params.as_params(), seed, max_offset, device)
