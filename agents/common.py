"""What the agents share: the env they train on, running normalisers, action scaling, the run
directory (TensorBoard, a tidy metrics file, checkpoints), and the progress bar.

Libraries used rather than written: ``tqdm`` (progress bar), ``torch.utils.tensorboard``
(TensorBoard event files), ``polars`` (the parquet metrics file), ``tyro`` (the typed CLI of each
agent's config dataclass).
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import random
import sys
import time
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from torch import nn

from fastlob.plain import from_plain, to_plain


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


class RunError(ValueError):
    """A run directory, its ``config.json`` or its checkpoint cannot be used (missing, malformed,
    refused, or not the run the command describes); the message names the file."""


#: layout of ``checkpoint.pt``: a dict of tensors and plain values (numbers, strings, bools,
#: None, lists, tuples, dicts), loaded with ``torch.load(weights_only=True)``; numpy arrays (the
#: simulator state) are stored as tensors
CHECKPOINT_FORMAT = 2

#: config fields that say how to run, not what is trained: they may differ on ``--resume``
OPERATIONAL_FIELDS = frozenset(
    {
        "resume",
        "progress",
        "checkpoint_every",
        "stop_after_updates",
        "stop_after_iterations",
        "device",
        "torch_threads",
        "compile",
        "runs_dir",
        "run_name",
        "time_budget",
    }
)


def arrays_to_tensors(state: dict[str, Any]) -> dict[str, Any]:
    """The values of ``state`` with every numpy array as a tensor (what a checkpoint holds)."""
    return {
        k: torch.from_numpy(np.ascontiguousarray(v)) if isinstance(v, np.ndarray) else v
        for k, v in state.items()
    }


def tensors_to_arrays(state: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`arrays_to_tensors`."""
    return {k: v.numpy() if isinstance(v, torch.Tensor) else v for k, v in state.items()}


def flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested dict as one level, keys joined with dots (``{"env": {"dt": 1}}`` ->
    ``{"env.dt": 1}``)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` (tensors and plain values) to ``path`` whole or not at all."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": CHECKPOINT_FORMAT, **payload}, tmp)
    tmp.replace(path)  # never a half-written checkpoint


def load_checkpoint(path: Path, keys: tuple[str, ...] = ()) -> dict[str, Any]:
    """Read a checkpoint without running any code from it (``weights_only=True``), every
    tensor on the CPU whatever device it was saved from; refuse one that is not a fastlob
    checkpoint or lacks ``keys``, with a :class:`RunError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise RunError(f"{path}: no checkpoint there")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; a raw pickle is refused
        raise RunError(f"{path}: refused: not a torch checkpoint archive (a raw pickle or "
                       "another file), so not a fastlob checkpoint")  # fmt: skip
    try:
        with warnings.catch_warnings():  # the refusal below is the one line the user sees
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # an unpickling refusal, a corrupt archive, a truncated file
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        # torch's own advice (weights_only=False) would run the file's code: not repeated
        reason = next((line for line in lines if "GLOBAL" in line), "")
        reason = reason.split(". ")[0] if reason else "it holds more than tensors and values"
        raise RunError(
            f"{path}: refused: not a checkpoint that can be loaded without running code from it "
            f"({type(err).__name__}: {reason})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise RunError(
            f"{path}: not a fastlob checkpoint of format {CHECKPOINT_FORMAT} (found {found!r})"
        )
    require_keys(payload, ("algo", "config"), path)
    if not isinstance(payload["config"], dict):
        raise RunError(f"{path}: the checkpoint's config is not a dict")
    require_keys(payload, keys, path)
    return payload


def require_keys(payload: dict[str, Any], keys: tuple[str, ...], path: Path) -> None:
    """A :class:`RunError` naming the file unless the checkpoint holds every key."""
    missing = [key for key in keys if key not in payload]
    if missing:
        raise RunError(f"{path}: the checkpoint lacks {', '.join(missing)}")


def config_from_checkpoint(cls, payload: dict[str, Any], path: Path):
    """The agent config a checkpoint was trained with, as ``cls``; a :class:`RunError` naming the
    file if it does not fit."""
    try:
        return from_plain(cls, payload["config"], "config")
    except (TypeError, ValueError) as err:
        raise RunError(f"{path}: its config does not fit {cls.__name__}: {err}") from None


def load_weights(module: nn.Module, state: Any, path: Path) -> None:
    """``module.load_state_dict(state)``; a :class:`RunError` naming the file if the
    checkpoint's tensors do not fit the module (another observation size, width, algorithm)."""
    try:
        module.load_state_dict(state)
    except (RuntimeError, TypeError, KeyError, AttributeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise RunError(f"{path}: its weights do not fit this model ({first})") from None


def parse_config(cls, argv: list[str] | None, prog: str, default):
    """``tyro.cli(cls, ...)`` with its errors as one line: a ValueError whose text is tyro's
    message without its box and help (``Value error: Error parsing --num-envs: ...``), so that
    the command line prints one line and exits 2; ``--help`` prints tyro's help as it is."""
    import contextlib
    import io

    import tyro

    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            return tyro.cli(cls, args=argv, prog=prog, default=default)
    except SystemExit as done:
        if done.code in (0, None):
            sys.stderr.write(captured.getvalue())
            raise
        lines = [line.strip(" │╭╮╰╯─\t") for line in captured.getvalue().splitlines()]
        kept = []
        for line in filter(None, lines):
            if line.startswith(("Argument helptext", "For full helptext", "Perhaps you meant")):
                break
            kept.append(line)
        if len(kept) > 1 and kept[1].startswith(kept[0]):  # the box's title repeated
            kept.pop(0)
        raise ValueError(": ".join(kept) or f"{prog}: bad arguments") from None


def check_hyperparameters(config: Any) -> None:
    """Every number of an agent config (its ``env`` aside: ``fastlob.env.check_config``'s) is
    finite (a NaN learning rate would fail only inside training); a ValueError naming
    ``config.<field>``."""
    for item in dataclasses.fields(config):
        value = getattr(config, item.name)
        if item.name == "env" or isinstance(value, bool) or not isinstance(value, numbers.Real):
            continue
        if not math.isfinite(value):
            raise ValueError(f"config.{item.name} must be a finite number, got {value}")


def algo_name(config: Any) -> str:
    """``ppo`` for a ``PPOConfig``, and so on."""
    return type(config).__name__.removesuffix("Config").lower()


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
    several times slower than its ``sigmoid``, and PPO's hidden activations were the largest
    single cost of its update (the docs' benchmarks page has the figures).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _SigmoidTanh.apply(x)


class ActionScaler:
    """Maps policy outputs in [-1, 1] (per column) onto the env's action box, on the device;
    the ``integers`` columns (a categorical head's) are rounded to the integer they stand for,
    which float32 scaling misses by an ulp (an offset of 3.0000002 ticks prices a tick off)."""

    def __init__(self, env, device: torch.device, integers: tuple[int, ...] = ()):
        low = torch.as_tensor(env.single_action_space.low, device=device)
        high = torch.as_tensor(env.single_action_space.high, device=device)
        self.centre = (high + low) / 2
        self.half = (high - low) / 2
        self.integers = list(integers)

    def to_env(self, unit_actions: torch.Tensor) -> torch.Tensor:
        out = self.centre + self.half * unit_actions.clamp(-1.0, 1.0)
        if self.integers:
            out[..., self.integers] = out[..., self.integers].round()
        return out


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
    update), ``config.json``, ``checkpoint.pt``.

    A new run refuses a directory that holds one. A resumed run (``resume``) reads and checks
    its checkpoint first (it must exist, hold ``checkpoint_keys``, come from the same algorithm
    and the same config but for :data:`OPERATIONAL_FIELDS`), before it writes anything: a
    refused resume leaves every file of the run as it was. The checkpoint is then
    ``self.checkpoint``.
    """

    def __init__(
        self,
        runs_dir: str,
        name: str,
        config: Any,
        resume: bool,
        checkpoint_keys: tuple[str, ...] = (),
    ):
        check_hyperparameters(config)  # before any file of the run is written
        self.path = Path(runs_dir) / name
        self.algo = algo_name(config)
        self.config_values = to_plain(config)  # what config.json and the checkpoint hold
        # a field added since a checkpoint was written holds its default there
        self.default_values = flatten(to_plain(type(config)()))
        checkpoint_path = self.path / "checkpoint.pt"
        self.checkpoint: dict[str, Any] | None = None
        metrics = self.path / "metrics.parquet"
        self.rows: list[dict[str, float]] = []
        if resume:
            if not checkpoint_path.exists():
                raise RunError(f"--resume: {self.path} holds no run to resume (no checkpoint.pt)")
            self.checkpoint = load_checkpoint(checkpoint_path)
            self._check_resume(checkpoint_path)
            require_keys(self.checkpoint, checkpoint_keys, checkpoint_path)
            if metrics.exists():
                self.rows = read_metrics(metrics).to_dicts()
        elif checkpoint_path.exists():
            raise FileExistsError(f"{self.path} holds a run: pass --resume or another --run-name")
        self.path.mkdir(parents=True, exist_ok=True)
        if not resume:
            saved = {"algo": self.algo, **self.config_values}
            (self.path / "config.json").write_text(json.dumps(saved, indent=2))
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(self.path))

    def _check_resume(self, checkpoint_path: Path) -> None:
        """Refuse to resume a checkpoint of another algorithm or another config."""
        assert self.checkpoint is not None
        if self.checkpoint["algo"] != self.algo:
            raise RunError(
                f"--resume: {checkpoint_path} is a {self.checkpoint['algo']} run, not "
                f"{self.algo}: resume it with --algo {self.checkpoint['algo']}"
            )
        given = flatten(self.config_values)
        stored = flatten(self.checkpoint["config"])
        stored |= {k: self.default_values[k] for k in given.keys() - stored.keys()
                   if k in self.default_values}  # fmt: skip
        differ = sorted(
            key
            for key in set(stored) | set(given)
            if key.split(".")[0] not in OPERATIONAL_FIELDS and stored.get(key) != given.get(key)
        )
        if differ:
            shown = ", ".join(
                f"{k} ({stored.get(k)!r} in the run, {given.get(k)!r} now)" for k in differ
            )
            raise RunError(
                f"--resume: {self.path} was trained with other settings: {shown}; resume with the "
                f"run's settings or start a new --run-name"
            )

    def log(self, step: int, values: dict[str, float]) -> None:
        for key, value in values.items():
            self.writer.add_scalar(key, value, step)
        self.rows.append({"global_step": step, **values})

    def save_metrics(self) -> pl.DataFrame:
        frame = pl.DataFrame(self.rows)
        tmp = self.path / "metrics.parquet.tmp"
        frame.write_parquet(tmp)
        tmp.replace(self.path / "metrics.parquet")
        return frame

    def save_checkpoint(self, payload: dict[str, Any]) -> None:
        save_checkpoint(
            self.path / "checkpoint.pt",
            {"algo": self.algo, "config": self.config_values, **payload},
        )

    def close(self) -> None:
        self.save_metrics()
        self.writer.close()


def read_metrics(path: Path) -> pl.DataFrame:
    """A run's ``metrics.parquet``; a :class:`RunError` naming the file if it cannot be read."""
    try:
        return pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise RunError(f"{path}: not a readable metrics file ({first})") from None


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
        if key in episode:  # the model envs keep fewer statistics than the order book's
            out[tag] = float(np.asarray(episode[key])[done].mean())
    if "pnl_step_std" not in episode:
        return out
    std = np.asarray(episode["pnl_step_std"])[done]
    mean = np.asarray(episode["pnl_step_mean"])[done]
    out["charts/sharpe"] = float(np.divide(mean, std, out=np.zeros_like(std), where=std > 0).mean())
    out["charts/inventory_var"] = float((np.asarray(episode["inventory_std"])[done] ** 2).mean())
    return out
