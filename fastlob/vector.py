"""Shared owner of batched environments: the Gymnasium 1.x vector contract around our kernels.

A subclass owns its kernel state and implements ``_reset_kernel(mask)`` and ``_step_kernel()``;
this base class owns the output buffers (allocated once, written in place by the kernels),
checks actions at the boundary (shape, dtype, NaN/inf: rejected before any kernel runs; values
outside the action space: clipped and counted), seeds the per-env generators from
``(seed, env_index)``, and turns the buffers into numpy arrays or torch tensors.

With ``device=None`` the outputs are the numpy buffers themselves; with ``device="cpu"`` they are
torch tensors that share memory with them; with a CUDA device they are copied once per step into
preallocated device tensors. Either way nothing is allocated per step apart from the small
``info`` dict, whose arrays are also preallocated and overwritten on the next step: copy what you
keep.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from fastlob._checks import check_int
from fastlob._kernels.rng import seed_states


def read_only(array: np.ndarray) -> np.ndarray:
    """A view of ``array`` that cannot be written through (it follows ``array``'s values)."""
    view = array.view()
    view.flags.writeable = False
    return view


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_real_array(name: str, values) -> np.ndarray:
    """``values`` as an array of real numbers (integers or floats), or a TypeError naming
    ``name``."""
    arr = np.asarray(values)
    if arr.dtype == np.bool_ or arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be an array of real numbers, got dtype {arr.dtype}")
    return arr


def as_float32(arr: np.ndarray) -> np.ndarray:
    """``arr`` as a C-contiguous float32 array, the one dtype the step kernels are compiled for
    (another would compile a second kernel version on first use): finite values beyond its
    range held at its largest (the action space then clips them, counted), NaN and inf kept for
    the kernel to refuse."""
    if arr.dtype == np.float32:
        return np.ascontiguousarray(arr)
    with np.errstate(over="ignore"):
        out = np.ascontiguousarray(arr, dtype=np.float32)
    overflow = np.isinf(out) & np.isfinite(arr)  # an integer is always finite
    if overflow.any():
        out[overflow] = np.copysign(_FLOAT32_MAX, arr[overflow])
    return out


class BatchedVectorEnv(gymnasium.vector.VectorEnv):
    """Base class: N envs stepped by one kernel call (see the module docstring)."""

    metadata: ClassVar[dict] = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(
        self,
        num_envs: int,
        single_observation_space: gymnasium.spaces.Box,
        single_action_space: gymnasium.spaces.Box,
        seed: int | None,
        device=None,
    ):
        self.num_envs = check_int("num_envs", num_envs, 1, 2**24)
        self.single_observation_space = single_observation_space
        self.single_action_space = single_action_space
        self.observation_space = batch_space(single_observation_space, self.num_envs)
        self.action_space = batch_space(single_action_space, self.num_envs)
        self._seed = 0 if seed is None else check_int("seed", seed, 0, 2**63 - 1)
        n = self.num_envs
        self._obs = np.zeros((n, *single_observation_space.shape), np.float32)
        self._reward = np.zeros(n, np.float32)
        self._terminated = np.zeros(n, np.bool_)
        self._truncated = np.zeros(n, np.bool_)
        self._actions = np.zeros((n, *single_action_space.shape), np.float32)
        self._action_low = single_action_space.low.astype(np.float32)
        self._action_high = single_action_space.high.astype(np.float32)
        self._clipped = np.zeros(n, np.bool_)
        #: int64 (N,): how many actions of each env were clipped into the action space, ever
        self.action_clip_count = np.zeros(n, np.int64)
        self._ever_reset = False
        self._setup_device(device)

    # -- the read-only surface ------------------------------------------------------------------
    @property
    def observation(self) -> np.ndarray:
        """float32 (N, D), read-only: the observation the last ``reset`` or ``step`` returned (or
        that ``set_state`` restored), as numpy whatever the ``device``."""
        return read_only(self._obs)

    @property
    def terminated(self) -> np.ndarray:
        """bool (N,), read-only: ``terminated`` of the last step (False after a reset)."""
        return read_only(self._terminated)

    @property
    def truncated(self) -> np.ndarray:
        """bool (N,), read-only: ``truncated`` of the last step (False after a reset)."""
        return read_only(self._truncated)

    @property
    def applied_actions(self) -> np.ndarray:
        """float32 (N, A), read-only: the last step's actions as the envs used them (clipped
        into the action space)."""
        return read_only(self._actions)

    # -- torch ---------------------------------------------------------------------------------
    def _setup_device(self, device):
        self.device = None
        if device is None:
            return
        import torch

        self.device = torch.device(device)
        buffers = (self._obs, self._reward, self._terminated, self._truncated)
        self._torch_views = tuple(torch.from_numpy(b) for b in buffers)  # shared memory
        self._torch_device_buffers = None
        if self.device.type != "cpu":
            self._torch_device_buffers = tuple(
                torch.empty(v.shape, dtype=v.dtype, device=self.device) for v in self._torch_views
            )

    def _outputs(self):
        if self.device is None:
            return self._obs, self._reward, self._terminated, self._truncated
        if self._torch_device_buffers is None:
            return self._torch_views
        for dst, src in zip(self._torch_device_buffers, self._torch_views, strict=True):
            dst.copy_(src, non_blocking=True)
        return self._torch_device_buffers

    # -- actions -------------------------------------------------------------------------------
    def _check_actions(self, actions) -> np.ndarray:
        """Shape and dtype of ``actions``; returns it as a C-contiguous float array.

        The values are checked (NaN/inf) and clipped inside the step kernel, before it changes
        anything: see ``fastlob._kernels.actions``.
        """
        expected = self._actions.shape
        if (
            type(actions) is np.ndarray
            and actions.dtype == np.float32
            and actions.shape == expected
            and actions.flags.c_contiguous
        ):  # the common case, in as few checks as a step can take
            return actions
        if hasattr(actions, "detach"):  # a torch tensor, on any device
            actions = actions.detach().cpu().numpy()
        arr = check_real_array("actions", actions)
        if arr.shape != expected:
            raise ValueError(f"actions must have shape {expected}, got {arr.shape}")
        return as_float32(arr)

    def _raise_non_finite(self, actions: np.ndarray, flat_index: int):
        env, col = divmod(int(flat_index), actions.shape[1])
        raise ValueError(
            f"actions[{env}, {col}] is {actions[env, col]}: actions must be finite (no NaN/inf)"
        )

    # -- reset ---------------------------------------------------------------------------------
    def _reset_mask(self, options) -> np.ndarray:
        if options is not None and not isinstance(options, dict):
            raise TypeError(
                f"options must be a dict (e.g. {{'reset_mask': mask}}) or None, got "
                f"{type(options).__name__} {options!r}"
            )
        mask = None if not options else options.get("reset_mask")
        if mask is None:
            return np.ones(self.num_envs, np.bool_)
        mask = np.asarray(mask)
        if mask.dtype != np.bool_ or mask.shape != (self.num_envs,):
            raise ValueError(
                f"options['reset_mask'] must be a bool array of shape ({self.num_envs},), "
                f"got {mask.dtype} {mask.shape}"
            )
        return mask

    def _seed_rng(self, rng: np.ndarray, seed: int | None, mask: np.ndarray) -> None:
        """Seed the masked envs' generators from (seed, env index); the first reset always seeds."""
        if seed is None and self._ever_reset:
            return
        if seed is not None:
            self._seed = check_int("seed", seed, 0, 2**63 - 1)
        index = np.flatnonzero(mask)
        rng[index] = seed_states(self._seed, index)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Reset every env, or those in ``options["reset_mask"]``; returns ``(obs, info)``.

        ``seed`` reseeds the reset envs' generators from ``(seed, env_index)``; without it they
        continue their streams (the first reset uses the constructor's seed).
        """
        mask = self._reset_mask(options)
        self._reset_kernel(seed, mask)
        self._ever_reset = True
        self._terminated[mask] = False
        self._truncated[mask] = False
        obs = self._outputs()[0]
        return obs, {}

    def step(self, actions):
        if not self._ever_reset:
            raise RuntimeError("call reset() before step()")
        actions = self._check_actions(actions)
        bad = self._step_kernel(actions)
        if bad >= 0:
            self._raise_non_finite(actions, bad)
        obs, reward, terminated, truncated = self._outputs()
        return obs, reward, terminated, truncated, self._step_info()

    # -- checkpoints ---------------------------------------------------------------------------
    def _state_arrays(self) -> dict[str, np.ndarray]:
        """Every array a step reads or writes, by name (subclasses add their state)."""
        return {
            "obs": self._obs,
            "reward": self._reward,
            "terminated": self._terminated,
            "truncated": self._truncated,
            "actions": self._actions,
            "clipped": self._clipped,
            "action_clip_count": self.action_clip_count,
        }

    def get_state(self) -> dict[str, Any]:
        """A copy of the whole simulator state (numpy arrays and the seed): ``set_state`` on an
        env built with the same arguments continues exactly from here."""
        state: dict[str, Any] = {k: v.copy() for k, v in self._state_arrays().items()}
        state["_seed"] = self._seed
        state["_ever_reset"] = self._ever_reset
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore a state from ``get_state`` (same num_envs and configuration)."""
        arrays = self._state_arrays()
        if set(arrays) != {k for k in state if not k.startswith("_")}:
            raise ValueError("state does not come from an env of this kind")
        for key, target in arrays.items():
            source = np.asarray(state[key])
            if source.shape != target.shape or source.dtype != target.dtype:
                raise ValueError(
                    f"state[{key!r}] has {source.dtype} {source.shape}, this env needs "
                    f"{target.dtype} {target.shape} (another num_envs or configuration?)"
                )
        for key, target in arrays.items():
            target[...] = state[key]
        self._seed = int(state["_seed"])
        self._ever_reset = bool(state["_ever_reset"])

    # -- for subclasses ------------------------------------------------------------------------
    def _reset_kernel(self, seed, mask):  # pragma: no cover - abstract
        raise NotImplementedError

    def _step_kernel(self, actions) -> int:  # pragma: no cover - abstract
        """Check, clip and step; return -1, or the flat index of a non-finite action (then
        nothing may have changed)."""
        raise NotImplementedError

    def _step_info(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError
