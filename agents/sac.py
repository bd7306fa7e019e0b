"""SAC for the order-book market-making env (CleanRL-shaped: one file, a typed config, a flat loop).

Twin Q networks with Polyak-averaged targets, a tanh-squashed Gaussian actor rescaled onto the
env's action box, automatic entropy tuning (target entropy -|A|), and a replay buffer that lives
on the training device (preallocated tensors, overwritten in a ring). Observations are stored raw
and normalised with the running statistics when sampled; rewards are scaled by the running std of
the discounted return.

Under the env's next-step autoreset, the reset pseudo-transition (the step after an episode ends)
is never stored. A truncated transition keeps its bootstrap (its next observation is the
episode's final one, as the env returns it); a terminated one does not.

Run: ``python -m fastlob_agents.sac ...`` or ``fastlob train --algo sac ...``;
``--help`` lists the fields.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fastlob import MarketMakingConfig, MarketMakingVectorEnv, RewardConfig

from .common import (
    ObservationNormalizer,
    RewardScaler,
    Run,
    ThroughputWindow,
    arrays_to_tensors,
    config_from_checkpoint,
    episode_summary,
    load_checkpoint,
    load_weights,
    parse_config,
    pick_device,
    progress_bar,
    rng_state,
    seed_everything,
    set_rng_state,
    tensors_to_arrays,
)

#: what a sac checkpoint holds beside its algorithm and config
CHECKPOINT_KEYS = (
    "learner",
    "optimizers",
    "reward_scaler",
    "buffer",
    "env",
    "rng",
    "iteration",
    "global_step",
)


@dataclass
class SACConfig:
    """SAC on fastlob's order-book market-making env."""

    seed: int = 1
    """seed of the envs (env n uses (seed, n)) and of torch"""
    num_envs: int = 256
    """parallel envs"""
    total_steps: int = 500_000
    """env-steps to train for (all envs together)"""
    env: MarketMakingConfig = field(
        default_factory=lambda: MarketMakingConfig(
            episode_steps=200, reward=RewardConfig(inventory_penalty=0.005)
        )
    )
    """the market trained on: every field of MarketMakingConfig (--env.latency 0.1,
    --env.flow.informed-tilt 0, --env.reward.inventory-penalty 0.01); evaluation plays it too"""
    buffer_size: int = 200_000
    """replay capacity (transitions), on the training device"""
    batch_size: int = 512
    """transitions per gradient step"""
    learning_starts: int = 5_000
    """transitions collected (uniform random actions) before learning"""
    gradient_steps: int = 2
    """gradient steps per vector-env step"""
    gamma: float = 0.99
    """discount factor"""
    tau: float = 0.005
    """Polyak averaging rate of the target critics"""
    policy_lr: float = 3e-4
    """actor learning rate"""
    q_lr: float = 1e-3
    """critic learning rate"""
    policy_frequency: int = 2
    """gradient steps between actor (and temperature) updates"""
    alpha: float = 0.2
    """initial entropy temperature"""
    autotune: bool = True
    """tune the temperature towards the target entropy -|A|"""
    hidden_size: int = 128
    """width of the two hidden layers"""
    norm_obs: bool = True
    """normalise observations by running statistics"""
    norm_reward: bool = True
    """scale rewards by the running std of the discounted return"""
    device: str = "auto"
    """auto, cpu or cuda"""
    torch_threads: int = 0
    """torch CPU threads (0: torch's default)"""
    run_name: str | None = None
    """run directory name under runs_dir (default: sac_<seed>)"""
    runs_dir: str = "runs"
    """where run directories go"""
    checkpoint_every: int = 200
    """vector-env steps between checkpoints (and at the end)"""
    resume: bool = False
    """continue the run in runs_dir/run_name from its checkpoint"""
    progress: bool = True
    """show a progress bar"""
    stop_after_iterations: int | None = None
    """stop (after checkpointing) after this many vector-env steps: for tests of --resume"""


def _mlp(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
        nn.Linear(hidden, out_dim),
    )  # fmt: skip


class QNetwork(nn.Module):
    def __init__(self, obs_dim: int, act_dim: int, hidden: int):
        super().__init__()
        self.net = _mlp(obs_dim + act_dim, hidden, 1)

    def forward(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x, a], -1)).squeeze(-1)


class Actor(nn.Module):
    """tanh-squashed Gaussian; ``low``/``high`` rescale (-1, 1) onto the action box."""

    LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0

    def __init__(self, obs_dim: int, act_dim: int, hidden: int, low, high):
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Linear(obs_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU()
        )
        self.mean = nn.Linear(hidden, act_dim)
        self.log_std = nn.Linear(hidden, act_dim)
        low = torch.as_tensor(low, dtype=torch.float32)
        high = torch.as_tensor(high, dtype=torch.float32)
        self.register_buffer("scale", (high - low) / 2)
        self.register_buffer("centre", (high + low) / 2)

    def forward(self, x: torch.Tensor):
        h = self.trunk(x)
        log_std = torch.tanh(self.log_std(h))
        log_std = self.LOG_STD_MIN + 0.5 * (self.LOG_STD_MAX - self.LOG_STD_MIN) * (log_std + 1)
        return self.mean(h), log_std

    def sample(self, x: torch.Tensor):
        """(action in the box, its log-probability, the deterministic action)."""
        mean, log_std = self(x)
        normal = torch.distributions.Normal(mean, log_std.exp(), validate_args=False)
        u = normal.rsample()
        y = torch.tanh(u)
        action = y * self.scale + self.centre
        log_prob = normal.log_prob(u) - torch.log(self.scale * (1 - y.pow(2)) + 1e-6)
        return action, log_prob.sum(-1), torch.tanh(mean) * self.scale + self.centre


class ReplayBuffer:
    """A ring of transitions in preallocated tensors on the training device."""

    def __init__(self, capacity: int, obs_dim: int, act_dim: int, device):
        self.capacity, self.device = capacity, device
        self.obs = torch.zeros(capacity, obs_dim, device=device)
        self.next_obs = torch.zeros(capacity, obs_dim, device=device)
        self.actions = torch.zeros(capacity, act_dim, device=device)
        self.rewards = torch.zeros(capacity, device=device)
        self.terminated = torch.zeros(capacity, device=device)
        self.position, self.size = 0, 0

    def add(self, obs, actions, rewards, next_obs, terminated, keep: torch.Tensor) -> None:
        """Store the rows where ``keep`` (bool (N,)) holds."""
        index = torch.nonzero(keep).squeeze(-1)
        count = index.numel()
        if count == 0:
            return
        slots = (self.position + torch.arange(count, device=self.device)) % self.capacity
        self.obs[slots] = obs[index]
        self.next_obs[slots] = next_obs[index]
        self.actions[slots] = actions[index]
        self.rewards[slots] = rewards[index]
        self.terminated[slots] = terminated[index].float()
        self.position = (self.position + count) % self.capacity
        self.size = min(self.size + count, self.capacity)

    def sample(self, batch: int):
        index = torch.randint(0, self.size, (batch,), device=self.device)
        return (
            self.obs[index],
            self.actions[index],
            self.rewards[index],
            self.next_obs[index],
            self.terminated[index],
        )

    def state_dict(self) -> dict:
        return {
            "obs": self.obs,
            "next_obs": self.next_obs,
            "actions": self.actions,
            "rewards": self.rewards,
            "terminated": self.terminated,
            "position": self.position,
            "size": self.size,
        }

    def load_state_dict(self, state: dict) -> None:
        for key in ("obs", "next_obs", "actions", "rewards", "terminated"):
            getattr(self, key).copy_(state[key])
        self.position, self.size = state["position"], state["size"]


class SACLearner(nn.Module):
    """Actor, twin critics, their targets and the temperature, with one ``update`` step."""

    def __init__(self, obs_dim: int, act_dim: int, low, high, config: SACConfig):
        super().__init__()
        h = config.hidden_size
        self.obs_norm = ObservationNormalizer(obs_dim, enabled=config.norm_obs)
        self.actor = Actor(obs_dim, act_dim, h, low, high)
        self.q1, self.q2 = QNetwork(obs_dim, act_dim, h), QNetwork(obs_dim, act_dim, h)
        self.q1_target, self.q2_target = (
            QNetwork(obs_dim, act_dim, h),
            QNetwork(obs_dim, act_dim, h),
        )
        self.q1_target.load_state_dict(self.q1.state_dict())
        self.q2_target.load_state_dict(self.q2.state_dict())
        self.log_alpha = nn.Parameter(torch.tensor(float(np.log(config.alpha))))
        self.target_entropy = -float(act_dim)
        self.config = config
        self.q_optimizer = torch.optim.Adam(
            list(self.q1.parameters()) + list(self.q2.parameters()), lr=config.q_lr
        )
        self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr=config.policy_lr)
        self.alpha_optimizer = torch.optim.Adam([self.log_alpha], lr=config.q_lr)
        self.updates = 0

    def update(self, obs, actions, rewards, next_obs, terminated) -> dict[str, float]:
        c = self.config
        x, next_x = self.obs_norm.frozen(obs), self.obs_norm.frozen(next_obs)
        alpha = self.log_alpha.exp().detach()
        with torch.no_grad():
            next_action, next_logp, _ = self.actor.sample(next_x)
            target_q = torch.min(
                self.q1_target(next_x, next_action), self.q2_target(next_x, next_action)
            )
            target = rewards + c.gamma * (1 - terminated) * (target_q - alpha * next_logp)
        q_loss = F.mse_loss(self.q1(x, actions), target) + F.mse_loss(self.q2(x, actions), target)
        self.q_optimizer.zero_grad()
        q_loss.backward()
        self.q_optimizer.step()
        stats = {"losses/q_loss": float(q_loss.detach())}
        if self.updates % c.policy_frequency == 0:
            action, logp, _ = self.actor.sample(x)
            q = torch.min(self.q1(x, action), self.q2(x, action))
            actor_loss = (alpha * logp - q).mean()
            self.actor_optimizer.zero_grad()
            actor_loss.backward()
            self.actor_optimizer.step()
            stats["losses/actor_loss"] = float(actor_loss.detach())
            if c.autotune:
                alpha_loss = -(self.log_alpha * (logp.detach() + self.target_entropy)).mean()
                self.alpha_optimizer.zero_grad()
                alpha_loss.backward()
                self.alpha_optimizer.step()
            stats["losses/alpha"] = float(self.log_alpha.exp().detach())
        with torch.no_grad():
            for net, target_net in ((self.q1, self.q1_target), (self.q2, self.q2_target)):
                for p, tp in zip(net.parameters(), target_net.parameters(), strict=True):
                    tp.mul_(1 - c.tau).add_(c.tau * p)
        self.updates += 1
        return stats

    def optimizers_state(self) -> dict:
        return {
            "q": self.q_optimizer.state_dict(),
            "actor": self.actor_optimizer.state_dict(),
            "alpha": self.alpha_optimizer.state_dict(),
            "updates": self.updates,
        }

    def load_optimizers_state(self, state: dict) -> None:
        self.q_optimizer.load_state_dict(state["q"])
        self.actor_optimizer.load_state_dict(state["actor"])
        self.alpha_optimizer.load_state_dict(state["alpha"])
        self.updates = state["updates"]


def train(config: SACConfig, env=None) -> dict:
    """Train (or resume) a run; returns its last logged metrics and the run directory. ``env``:
    the vector env to train on instead of ``config.env``'s market (any of fastlob's batched
    envs with a Box action space, e.g. ``fastlob.LinearQuadraticVectorEnv``)."""
    if config.torch_threads > 0:
        torch.set_num_threads(config.torch_threads)
    device = pick_device(config.device)
    seed_everything(config.seed)
    if env is None:  # the market is checked before the run's directory is written
        env = MarketMakingVectorEnv(config.num_envs, config=config.env, seed=config.seed)
    elif env.num_envs != config.num_envs:
        raise ValueError(f"env has {env.num_envs} envs, config.num_envs is {config.num_envs}")
    run = Run(
        config.runs_dir,
        config.run_name or f"sac_{config.seed}",
        config,
        config.resume,
        checkpoint_keys=CHECKPOINT_KEYS,
    )
    space = env.single_action_space
    obs_dim, act_dim = env.single_observation_space.shape[0], space.shape[0]
    learner = SACLearner(obs_dim, act_dim, space.low, space.high, config).to(device)
    reward_scaler = RewardScaler(config.num_envs, config.gamma, config.norm_reward).to(device)
    buffer = ReplayBuffer(config.buffer_size, obs_dim, act_dim, device)
    low = torch.as_tensor(space.low, device=device)
    high = torch.as_tensor(space.high, device=device)
    iterations = max(1, config.total_steps // config.num_envs)
    iteration, global_step = 0, 0
    checkpoint = run.checkpoint
    if checkpoint is not None:
        learner.load_state_dict(checkpoint["learner"])
        learner.load_optimizers_state(checkpoint["optimizers"])
        reward_scaler.load_state_dict(checkpoint["reward_scaler"])
        buffer.load_state_dict(checkpoint["buffer"])
        env.set_state(tensors_to_arrays(checkpoint["env"]))
        set_rng_state(checkpoint["rng"])
        iteration, global_step = checkpoint["iteration"], checkpoint["global_step"]
        obs_np = env.observation.copy()
    else:
        obs_np, _ = env.reset(seed=config.seed)
    obs = torch.as_tensor(obs_np, device=device).clone()
    prev_done = torch.as_tensor(env.terminated | env.truncated, device=device)

    def save():
        run.save_checkpoint(
            {
                "learner": learner.state_dict(),
                "optimizers": learner.optimizers_state(),
                "reward_scaler": reward_scaler.state_dict(),
                "buffer": buffer.state_dict(),
                "env": arrays_to_tensors(env.get_state()),
                "rng": rng_state(),
                "iteration": iteration,
                "global_step": global_step,
            }
        )
        run.save_metrics()

    bar = progress_bar(config.progress, iterations * config.num_envs, global_step)
    last: dict[str, float] = {}
    window = ThroughputWindow()
    losses: dict[str, float] = {}
    while iteration < iterations:
        with torch.no_grad():
            x = learner.obs_norm(obs)  # training mode: updates the running statistics
            if global_step < config.learning_starts:
                action = low + (high - low) * torch.rand(config.num_envs, act_dim, device=device)
            else:
                action, _, _ = learner.actor.sample(x)
        started = time.perf_counter()
        next_obs, reward, terminated, truncated, info = env.step(action.cpu().numpy())
        window.sim_time += time.perf_counter() - started
        next_obs_t = torch.as_tensor(next_obs, device=device).clone()
        term = torch.as_tensor(terminated, device=device)
        done = term | torch.as_tensor(truncated, device=device)
        r = reward_scaler(torch.as_tensor(reward, device=device), done)
        buffer.add(obs, action, r, next_obs_t, term, keep=~prev_done)
        obs, prev_done = next_obs_t, done
        iteration += 1
        global_step += config.num_envs
        window.steps += config.num_envs
        if buffer.size >= config.learning_starts:
            for _ in range(config.gradient_steps):
                losses = learner.update(*buffer.sample(config.batch_size))
        summary = episode_summary(info)
        if summary or iteration % 50 == 0:
            last = {**losses, **summary, **window.charts()}
            run.log(global_step, last)
        if bar is not None:
            bar.update(config.num_envs)
            if summary:
                bar.set_postfix(
                    pnl=f"{summary['charts/episode_pnl']:.2f}",
                    loss=f"{last.get('losses/q_loss', float('nan')):.4f}",
                )
        if iteration % config.checkpoint_every == 0 or iteration == iterations:
            save()
        if config.stop_after_iterations is not None and iteration >= config.stop_after_iterations:
            save()
            break
    if bar is not None:
        bar.close()
    run.close()
    return {"run_dir": str(run.path), "iteration": iteration, "global_step": global_step, **last}


class SACPolicy:
    """A trained SAC actor as a batched policy (the squashed mean, deterministic)."""

    def __init__(self, learner: SACLearner, device):
        self.learner = learner.eval()
        self.device = device

    @classmethod
    def load(cls, run_dir, env, device: str = "cpu") -> SACPolicy:
        path = Path(run_dir) / "checkpoint.pt"
        payload = load_checkpoint(path, ("learner",))
        config = config_from_checkpoint(SACConfig, payload, path)
        space = env.single_action_space
        dev = pick_device(device)
        learner = SACLearner(
            env.single_observation_space.shape[0], space.shape[0], space.low, space.high, config
        )
        load_weights(learner, payload["learner"], path)
        return cls(learner.to(dev), dev)

    @torch.no_grad()
    def act(self, obs) -> np.ndarray:
        x = self.learner.obs_norm.frozen(torch.as_tensor(np.asarray(obs), device=self.device))
        return self.learner.actor.sample(x)[2].cpu().numpy().astype(np.float32)


def main(
    argv: list[str] | None = None,
    prog: str = "python -m fastlob_agents.sac",
    env: MarketMakingConfig | None = None,
) -> dict:
    """Train from command-line flags (every field of :class:`SACConfig`, ``--env.*`` those of the
    market); ``env`` (a market file's config) replaces the default market under the flags."""
    default = SACConfig() if env is None else SACConfig(env=env)
    return train(parse_config(SACConfig, argv, prog, default))


if __name__ == "__main__":
    main()
