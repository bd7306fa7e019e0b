"""The Avellaneda & Stoikov (2008) model as a Gymnasium vector environment.

Each env is one market maker in the paper's model (see ``fastlob._kernels.as_model``):

- action, float32 (2,): ``[bid_offset, ask_offset]``, the distances below and above the mid at
  which it quotes, in price units, each in ``[-max_offset, max_offset]`` (values outside are
  clipped and counted in ``action_clip_count``). A negative offset quotes through the mid; its fill
  probability is capped at 1 (counted in ``info["capped_probability"]``).
- observation, float32 (3,): ``[mid, inventory, time_left]`` (price units, units, time units).
- reward: change in marked-to-market wealth ``cash + inventory * mid`` minus
  ``inventory_penalty * inventory**2`` per step. ``info["pnl"]`` carries the wealth itself.
- the episode is truncated after ``horizon / dt`` steps; it never terminates early.

``info`` each step: float64 ``pnl``, ``cash``, ``mid``, int64 ``inventory``, bool
``action_clipped``, int64 ``capped_probability`` (running counts); at the end of an episode
``info["episode"]`` holds ``r`` (return), ``l`` (length), ``pnl``, ``inventory`` (final),
``fills`` and ``mean_spread`` for the envs in ``info["_episode"]``. (With Gymnasium's
``RecordEpisodeStatistics`` wrapper, give it another ``stats_key``.)
"""

from __future__ import annotations

import gymnasium
import numpy as np

from fastlob._checks import check_real
from fastlob._kernels import as_model as _as
from fastlob.vector import BatchedVectorEnv

__all__ = ["ASParams", "AvellanedaStoikovVectorEnv"]

ASParams = _as.ASParams


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
            self._truncated,
            self._pnl,
        )

    def _step_info(self) -> dict:
        # The same arrays every step (state and buffers, overwritten in place): only the dict is
        # new, and the episode arrays are filled without temporaries when episodes end.
        info = dict(self._info)
        done = self._truncated
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
