"""What the agents share: the env they train on, running normalisers, action scaling, the run
directory (TensorBoard, a tidy metrics file, checkpoints), and the progress bar.

Libraries used rather than written: ``tqdm`` (progress bar), ``torch.utils.tensorboard``
(TensorBoard event files), ``polars`` (the parquet metrics file), ``tyro`` (the typed CLI of each
agent's config dataclass).
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from torch import nn

from fastlob import MarketMakingConfig, MarketMakingVectorEnv, RewardConfig


def pick_device(device: str) -> torch.device:
    """``auto`` is CUDA when available, else CPU; ``cpu`` and ``cuda`` as given."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ValueError(f"device must be auto, cpu or cuda, got {device!r}")
    return torch.device(device)


def seed_everything(seed: int) -> None:
    """Seed Python's and torch's generators (the agents draw from nothing else; the envs have
    their own per-env generators)."""
    random.seed(seed)
    torch.manual_seed(seed)


def make_env(
    num_envs: int, seed: int, episode_steps: int, dt: float, inventory_penalty: float = 0.0
) -> MarketMakingVectorEnv:
    """The default order-book market (``MarketMakingConfig``) with the given episode shape and
    the reward's quadratic inventory penalty (per lot squared per step, in ticks x lots)."""
    config = MarketMakingConfig(
        episode_steps=episode_steps,
        dt=dt,
        reward=RewardConfig(inventory_penalty=inventory_penalty),
    )
    return MarketMakingVectorEnv(num_envs, config=config, seed=seed)


class _SigmoidTanh(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = torch.sigmoid(2.0 * x).mul_(2.0).sub_(1.0)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return torch.ops.aten.tanh_backward(grad, y)  # grad * (1 - y^2), as tanh's own


class Tanh(nn.Module):
    """``tanh(x)`` computed as ``2 sigmoid(2x) - 1``, with tanh's backward.

    The same function as ``nn.Tanh`` up to float32 rounding (absolute difference below 3e-7),
    and no parameters (checkpoints are interchangeable). Why: torch's CPU ``tanh`` kernel is
    several times slower than its ``sigmoid`` (4.0 ms against 0.6 ms on a 32768 x 64 batch on
    the 2-core benchmark machine), and PPO's hidden activations were the largest single cost of
    its update (29%); with this the whole update is about a fifth faster.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _SigmoidTanh.apply(x)


class ActionScaler:
    """Maps policy outputs in [-1, 1] (per column) onto the env's action box, on the device."""

    def __init__(self, env, device: torch.device):
        low = torch.as_tensor(env.single_action_space.low, device=device)
        high = torch.as_tensor(env.single_action_space.high, device=device)
        self.centre = (high + low) / 2
        self.half = (high - low) / 2

    def to_env(self, unit_actions: torch.Tensor) -> torch.Tensor:
        return self.centre + self.half * unit_actions.clamp(-1.0, 1.0)


class RunningMeanStd(nn.Module):
    """Running mean and variance over batches (Chan et al.'s parallel update), as buffers so that
    they move with the module and land in its ``state_dict``."""

    def __init__(self, shape: tuple[int, ...] = (), epsilon: float = 1e-4):
        super().__init__()
        self.register_buffer("mean", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("var", torch.ones(shape, dtype=torch.float64))
        self.register_buffer("count", torch.tensor(epsilon, dtype=torch.float64))

    @torch.no_grad()
    def update(self, batch: torch.Tensor) -> None:
        batch = batch.to(torch.float64).reshape(-1, *self.mean.shape)
        batch_mean = batch.mean(0)
        batch_var = batch.var(0, unbiased=False)
        n = batch.shape[0]
        delta = batch_mean - self.mean
        total = self.count + n
        self.mean += delta * n / total
        m2 = self.var * self.count + batch_var * n + delta**2 * self.count * n / total
        self.var.copy_(m2 / total)
        self.count.copy_(total)


class ObservationNormalizer(nn.Module):
    """``(obs - mean) / sqrt(var + eps)``, clipped to ``[-clip, clip]``; statistics updated from
    every batch seen while ``training``."""

    def __init__(self, dim: int, clip: float = 10.0, enabled: bool = True):
        super().__init__()
        self.rms = RunningMeanStd((dim,))
        self.clip = clip
        self.enabled = enabled

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if self.enabled and self.training:
            self.rms.update(obs)
        return self.frozen(obs)

    def frozen(self, obs: torch.Tensor) -> torch.Tensor:
        """Normalise with the current statistics, never updating them (whatever the mode)."""
        if not self.enabled:
            return obs
        scaled = (obs - self.rms.mean.float()) / torch.sqrt(self.rms.var.float() + 1e-8)
        return scaled.clamp(-self.clip, self.clip)


class RewardScaler(nn.Module):
    """Divides rewards by the running std of the discounted return (as Gymnasium's
    NormalizeReward, batched): without it a market maker's PnL rewards are tiny or huge
    depending on prices and sizes, and agents have been seen to learn to never trade."""

    def __init__(self, num_envs: int, gamma: float, enabled: bool = True):
        super().__init__()
        self.rms = RunningMeanStd(())
        self.register_buffer("returns", torch.zeros(num_envs, dtype=torch.float64))
        self.gamma = gamma
        self.enabled = enabled

    def forward(self, reward: torch.Tensor, done: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return reward
        self.returns.mul_(self.gamma).add_(reward.to(torch.float64))
        self.rms.update(self.returns)
        self.returns.masked_fill_(done, 0.0)
        return (reward / torch.sqrt(self.rms.var.float() + 1e-8)).clamp(-10.0, 10.0)


class Run:
    """A run directory ``runs/<name>/``: TensorBoard events, ``metrics.parquet`` (one row per
    update), ``config.json``, ``checkpoint.pt``."""

    def __init__(self, runs_dir: str, name: str, config: Any, resume: bool):
        self.path = Path(runs_dir) / name
        if self.path.exists() and not resume and (self.path / "checkpoint.pt").exists():
            raise FileExistsError(f"{self.path} holds a run: pass --resume or another --run-name")
        self.path.mkdir(parents=True, exist_ok=True)
        algo = type(config).__name__.removesuffix("Config").lower()
        saved = {"algo": algo, **dataclasses.asdict(config)}
        (self.path / "config.json").write_text(json.dumps(saved, indent=2))
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(self.path))
        self.rows: list[dict[str, float]] = []
        metrics = self.path / "metrics.parquet"
        if resume and metrics.exists():
            self.rows = pl.read_parquet(metrics).to_dicts()

    def log(self, step: int, values: dict[str, float]) -> None:
        for key, value in values.items():
            self.writer.add_scalar(key, value, step)
        self.rows.append({"global_step": step, **values})

    def save_metrics(self) -> pl.DataFrame:
        frame = pl.DataFrame(self.rows)
        frame.write_parquet(self.path / "metrics.parquet")
        return frame

    def save_checkpoint(self, payload: dict[str, Any]) -> None:
        tmp = self.path / "checkpoint.pt.tmp"
        torch.save(payload, tmp)
        tmp.replace(self.path / "checkpoint.pt")  # never a half-written checkpoint

    def load_checkpoint(self) -> dict[str, Any] | None:
        path = self.path / "checkpoint.pt"
        if not path.exists():
            return None
        return torch.load(path, weights_only=False)

    def close(self) -> None:
        self.save_metrics()
        self.writer.close()


def progress_bar(enabled: bool, total: int, initial: int):
    """A tqdm bar over env-steps (``None`` when ``enabled`` is False)."""
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="step", mininterval=1.0)


class ThroughputWindow:
    """Env-steps and seconds spent in the simulator since the window (re)started: the
    ``charts/SPS`` and ``charts/simulator_share`` of an off-policy agent's log lines."""

    def __init__(self):
        self.restart()

    def restart(self) -> None:
        self.start = time.perf_counter()
        self.steps = 0
        self.sim_time = 0.0

    def charts(self) -> dict[str, float]:
        """The window's throughput and simulator share; starts a new window."""
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        out = {
            "charts/SPS": self.steps / elapsed,
            "charts/simulator_share": self.sim_time / elapsed,
        }
        self.restart()
        return out


def rng_state() -> dict[str, Any]:
    return {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def episode_summary(info: dict) -> dict[str, float]:
    """Means over the envs whose episode ended this step (empty if none did)."""
    if "episode" not in info:
        return {}
    done = np.asarray(info["_episode"])
    episode = info["episode"]
    out = {}
    for key, tag in (
        ("r", "charts/episodic_return"),
        ("pnl", "charts/episode_pnl"),
        ("inventory_std", "charts/inventory_std"),
        ("adverse_rate", "charts/adverse_rate"),
        ("fills", "charts/fills"),
    ):
        out[tag] = float(np.asarray(episode[key])[done].mean())
    std = np.asarray(episode["pnl_step_std"])[done]
    mean = np.asarray(episode["pnl_step_mean"])[done]
    out["charts/sharpe"] = float(np.divide(mean, std, out=np.zeros_like(std), where=std > 0).mean())
    out["charts/inventory_var"] = float((np.asarray(episode["inventory_std"])[done] ** 2).mean())
    return out
