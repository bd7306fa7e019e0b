"""DQN for the order-book market-making env, as the seed design has it: dueling heads, double-DQN
targets, noisy linear layers for exploration (no epsilon), and prioritized experience replay on a
sum-tree that lives on the training device (O(log n) batched sampling and priority updates).

The action space is discretised into ``DISCRETE_ACTIONS`` (documented below): each row is one
env action ``[bid_offset, ask_offset, bid_size, ask_size, inventory_target]``.

Under the env's next-step autoreset, the reset pseudo-transition is never stored; truncated
transitions keep their bootstrap, terminated ones do not.

Run: ``python -m fastlob_agents.dqn ...`` or ``fastlob train --algo dqn ...``;
``--help`` lists the fields.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
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

#: what a dqn checkpoint holds beside its algorithm and config
CHECKPOINT_KEYS = (
    "learner",
    "optimizer",
    "updates",
    "reward_scaler",
    "replay",
    "env",
    "rng",
    "iteration",
    "global_step",
)

#: The discretisation: bid and ask offsets in {0, 1, 2, 3} ticks from the mid (0 quotes at
#: floor/ceil of the mid: the touch when the spread is one tick, inside it when wider), the same
#: size on both sides in {1, 3} lots, inventory target 0. 4 x 4 x 2 = 32 actions; row k is
#: ``[bid_offset, ask_offset, size, size, 0]``. Skew comes from unequal offsets.
DISCRETE_ACTIONS = np.array(
    [[b, a, s, s, 0.0] for b, a, s in itertools.product((0, 1, 2, 3), (0, 1, 2, 3), (1, 3))],
    np.float32,
)


@dataclass
class DQNConfig:
    """Rainbow-style DQN (dueling, double, noisy nets, prioritized replay) on fastlob."""

    seed: int = 1
    """seed of the envs (env n uses (seed, n)) and of torch"""
    num_envs: int = 256
    """parallel envs"""
    total_steps: int = 500_000
    """env-steps to train for (all envs together)"""
    env: MarketMakingConfig = field(
        default_factory=lambda: MarketMakingConfig(
            episode_steps=200, reward=RewardConfig(inventory_penalty=0.02)
        )
    )
    """the market trained on: every field of MarketMakingConfig (--env.latency 0.1,
    --env.flow.informed-tilt 0, --env.reward.inventory-penalty 0.01); evaluation plays it too"""
    buffer_size: int = 262_144
    """replay capacity (a power of two), on the training device"""
    batch_size: int = 512
    """transitions per gradient step"""
    learning_starts: int = 5_000
    """transitions collected before learning"""
    gradient_steps: int = 2
    """gradient steps per vector-env step"""
    gamma: float = 0.99
    """discount factor"""
    learning_rate: float = 2.5e-4
    """Adam learning rate"""
    target_update_every: int = 500
    """gradient steps between copies of the online network into the target"""
    per_alpha: float = 0.6
    """prioritisation exponent (0: uniform replay)"""
    per_beta_start: float = 0.4
    """importance-sampling exponent at the start, annealed to 1 at the end"""
    per_eps: float = 1e-3
    """added to |TD error| so that no transition's priority is 0"""
    noisy_sigma: float = 0.5
    """initial sigma of the noisy layers (factorised Gaussian noise)"""
    hidden_size: int = 128
    """width of the hidden layers"""
    max_grad_norm: float = 10.0
    """gradient clipping norm"""
    norm_obs: bool = True
    """normalise observations by running statistics"""
    norm_reward: bool = True
    """scale rewards by the running std of the discounted return"""
    device: str = "auto"
    """auto, cpu or cuda"""
    torch_threads: int = 0
    """torch CPU threads (0: torch's default)"""
    run_name: str | None = None
    """run directory name under runs_dir (default: dqn_<seed>)"""
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


class SumTree:
    """Priorities in a complete binary tree of sums (float64, on the device): leaves at
    ``[capacity, 2 capacity)``, node i holds the sum of nodes 2i and 2i+1, the root (1) the
    total. Batched: ``update`` rewrites B leaves and their ancestors level by level (O(B log n)),
    ``sample`` descends B stratified draws at once (O(B log n))."""

    def __init__(self, capacity: int, device):
        if capacity < 2 or capacity & (capacity - 1):
            raise ValueError(f"capacity must be a power of two >= 2, got {capacity}")
        self.capacity = capacity
        self.depth = capacity.bit_length() - 1
        self.tree = torch.zeros(2 * capacity, dtype=torch.float64, device=device)

    def total(self) -> float:
        return float(self.tree[1])

    def update(self, index: torch.Tensor, priority: torch.Tensor) -> None:
        """Set the priorities of leaves ``index`` (int64 (B,), distinct or not: the last
        write wins)."""
        node = index + self.capacity
        self.tree[node] = priority.to(torch.float64)
        for _ in range(self.depth):
            node = torch.unique(node // 2)
            self.tree[node] = self.tree[2 * node] + self.tree[2 * node + 1]

    def sample(self, batch: int, size: int, generator=None) -> torch.Tensor:
        """``batch`` leaf indices, leaf i drawn with probability priority_i / total (one draw
        in each of ``batch`` equal strata of the total); only leaves below ``size`` are used."""
        device = self.tree.device
        u = torch.rand(batch, dtype=torch.float64, device=device, generator=generator)
        target = (torch.arange(batch, device=device, dtype=torch.float64) + u) * (
            self.tree[1] / batch
        )
        node = torch.ones(batch, dtype=torch.int64, device=device)
        for _ in range(self.depth):
            left = self.tree[2 * node]
            right = target >= left
            target = torch.where(right, target - left, target)
            node = 2 * node + right.long()
        # float rounding at the very top of the total can overshoot into empty leaves
        return (node - self.capacity).clamp(max=size - 1)

    def priorities(self, index: torch.Tensor) -> torch.Tensor:
        return self.tree[index + self.capacity]


class NoisyLinear(nn.Module):
    """Linear layer with factorised Gaussian parameter noise (Fortunato et al., 2018)."""

    def __init__(self, in_dim: int, out_dim: int, sigma0: float):
        super().__init__()
        self.in_dim, self.out_dim = in_dim, out_dim
        bound = 1 / math.sqrt(in_dim)
        self.weight_mu = nn.Parameter(torch.empty(out_dim, in_dim).uniform_(-bound, bound))
        self.bias_mu = nn.Parameter(torch.empty(out_dim).uniform_(-bound, bound))
        self.weight_sigma = nn.Parameter(torch.full((out_dim, in_dim), sigma0 * bound))
        self.bias_sigma = nn.Parameter(torch.full((out_dim,), sigma0 * bound))
        self.register_buffer("eps_in", torch.zeros(in_dim))
        self.register_buffer("eps_out", torch.zeros(out_dim))

    @staticmethod
    def _f(x: torch.Tensor) -> torch.Tensor:
        return x.sign() * x.abs().sqrt()

    def reset_noise(self) -> None:
        self.eps_in.copy_(self._f(torch.randn(self.in_dim, device=self.eps_in.device)))
        self.eps_out.copy_(self._f(torch.randn(self.out_dim, device=self.eps_out.device)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return nn.functional.linear(x, self.weight_mu, self.bias_mu)
        weight = self.weight_mu + self.weight_sigma * torch.outer(self.eps_out, self.eps_in)
        bias = self.bias_mu + self.bias_sigma * self.eps_out
        return nn.functional.linear(x, weight, bias)


class DuelingQNetwork(nn.Module):
    """Q(s, a) = V(s) + A(s, a) - mean_a A(s, a), noisy layers in both streams."""

    def __init__(self, obs_dim: int, num_actions: int, hidden: int, sigma0: float):
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(obs_dim, hidden), nn.ReLU())
        self.value = nn.Sequential(
            NoisyLinear(hidden, hidden, sigma0), nn.ReLU(), NoisyLinear(hidden, 1, sigma0)
        )
        self.advantage = nn.Sequential(
            NoisyLinear(hidden, hidden, sigma0), nn.ReLU(), NoisyLinear(hidden, num_actions, sigma0)
        )
        self.reset_noise()

    def reset_noise(self) -> None:
        for module in self.modules():
            if isinstance(module, NoisyLinear):
                module.reset_noise()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.trunk(x)
        advantage = self.advantage(h)
        return self.value(h) + advantage - advantage.mean(-1, keepdim=True)


class PrioritizedReplay:
    """Transitions in preallocated device tensors with a sum-tree of priorities^alpha."""

    def __init__(self, capacity: int, obs_dim: int, device, alpha: float, eps: float):
        self.capacity, self.device, self.alpha, self.eps = capacity, device, alpha, eps
        self.tree = SumTree(capacity, device)
        self.obs = torch.zeros(capacity, obs_dim, device=device)
        self.next_obs = torch.zeros(capacity, obs_dim, device=device)
        self.actions = torch.zeros(capacity, dtype=torch.int64, device=device)
        self.rewards = torch.zeros(capacity, device=device)
        self.terminated = torch.zeros(capacity, device=device)
        self.position, self.size, self.max_priority = 0, 0, 1.0

    def add(self, obs, actions, rewards, next_obs, terminated, keep: torch.Tensor) -> None:
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
        # new transitions get the highest priority seen, so each is replayed at least once soon
        priority = torch.full((count,), self.max_priority**self.alpha, device=self.device)
        self.tree.update(slots, priority)
        self.position = (self.position + count) % self.capacity
        self.size = min(self.size + count, self.capacity)

    def sample(self, batch: int, beta: float):
        index = self.tree.sample(batch, self.size)
        probability = self.tree.priorities(index) / self.tree.total()
        weights = (self.size * probability) ** (-beta)
        weights = (weights / weights.max()).float()
        return (
            index,
            weights,
            (
                self.obs[index],
                self.actions[index],
                self.rewards[index],
                self.next_obs[index],
                self.terminated[index],
            ),
        )

    def update_priorities(self, index: torch.Tensor, td_error: torch.Tensor) -> None:
        priority = td_error.detach().abs().to(torch.float64) + self.eps
        self.max_priority = max(self.max_priority, float(priority.max()))
        self.tree.update(index, priority**self.alpha)

    def state_dict(self) -> dict:
        return {
            "tree": self.tree.tree,
            "obs": self.obs,
            "next_obs": self.next_obs,
            "actions": self.actions,
            "rewards": self.rewards,
            "terminated": self.terminated,
            "position": self.position,
            "size": self.size,
            "max_priority": self.max_priority,
        }

    def load_state_dict(self, state: dict) -> None:
        self.tree.tree.copy_(state["tree"])
        for key in ("obs", "next_obs", "actions", "rewards", "terminated"):
            getattr(self, key).copy_(state[key])
        self.position, self.size = state["position"], state["size"]
        self.max_priority = state["max_priority"]


class DQNLearner(nn.Module):
    def __init__(self, obs_dim: int, config: DQNConfig):
        super().__init__()
        n = len(DISCRETE_ACTIONS)
        self.obs_norm = ObservationNormalizer(obs_dim, enabled=config.norm_obs)
        self.online = DuelingQNetwork(obs_dim, n, config.hidden_size, config.noisy_sigma)
        self.target = DuelingQNetwork(obs_dim, n, config.hidden_size, config.noisy_sigma)
        self.target.load_state_dict(self.online.state_dict())
        self.optimizer = torch.optim.Adam(self.online.parameters(), lr=config.learning_rate)
        self.config = config
        self.updates = 0

    def update(self, weights, obs, actions, rewards, next_obs, terminated):
        """One double-DQN step weighted by importance sampling; returns (TD errors, stats)."""
        c = self.config
        x, next_x = self.obs_norm.frozen(obs), self.obs_norm.frozen(next_obs)
        self.online.reset_noise()
        self.target.reset_noise()
        q = self.online(x).gather(1, actions[:, None]).squeeze(1)
        with torch.no_grad():
            best = self.online(next_x).argmax(1, keepdim=True)  # chosen by the online net
            next_q = self.target(next_x).gather(1, best).squeeze(1)  # valued by the target
            target = rewards + c.gamma * (1 - terminated) * next_q
        td = q - target
        loss = (weights * nn.functional.smooth_l1_loss(q, target, reduction="none")).mean()
        self.optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.online.parameters(), c.max_grad_norm)
        self.optimizer.step()
        self.updates += 1
        if self.updates % c.target_update_every == 0:
            self.target.load_state_dict(self.online.state_dict())
        return td.detach(), {
            "losses/td_loss": float(loss.detach()),
            "losses/q_values": float(q.mean().detach()),
        }


def train(config: DQNConfig) -> dict:
    """Train (or resume) a run; returns its last logged metrics and the run directory."""
    if config.torch_threads > 0:
        torch.set_num_threads(config.torch_threads)
    device = pick_device(config.device)
    seed_everything(config.seed)
    # the market is checked before the run's directory is written
    env = MarketMakingVectorEnv(config.num_envs, config=config.env, seed=config.seed)
    run = Run(
        config.runs_dir,
        config.run_name or f"dqn_{config.seed}",
        config,
        config.resume,
        checkpoint_keys=CHECKPOINT_KEYS,
    )
    obs_dim = env.single_observation_space.shape[0]
    learner = DQNLearner(obs_dim, config).to(device)
    reward_scaler = RewardScaler(config.num_envs, config.gamma, config.norm_reward).to(device)
    replay = PrioritizedReplay(
        config.buffer_size, obs_dim, device, config.per_alpha, config.per_eps
    )
    table = torch.as_tensor(DISCRETE_ACTIONS, device=device)
    iterations = max(1, config.total_steps // config.num_envs)
    iteration, global_step = 0, 0
    checkpoint = run.checkpoint
    if checkpoint is not None:
        learner.load_state_dict(checkpoint["learner"])
        learner.optimizer.load_state_dict(checkpoint["optimizer"])
        learner.updates = checkpoint["updates"]
        reward_scaler.load_state_dict(checkpoint["reward_scaler"])
        replay.load_state_dict(checkpoint["replay"])
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
                "optimizer": learner.optimizer.state_dict(),
                "updates": learner.updates,
                "reward_scaler": reward_scaler.state_dict(),
                "replay": replay.state_dict(),
                "env": arrays_to_tensors(env.get_state()),
                "rng": rng_state(),
                "iteration": iteration,
                "global_step": global_step,
            }
        )
        run.save_metrics()

    bar = progress_bar(config.progress, iterations * config.num_envs, global_step)
    last: dict[str, float] = {}
    stats: dict[str, float] = {}
    window = ThroughputWindow()
    while iteration < iterations:
        with torch.no_grad():
            x = learner.obs_norm(obs)  # training mode: updates the running statistics
            learner.online.reset_noise()  # exploration comes from the noise
            action = learner.online(x).argmax(1)
        started = time.perf_counter()
        next_obs, reward, terminated, truncated, info = env.step(table[action].cpu().numpy())
        window.sim_time += time.perf_counter() - started
        next_obs_t = torch.as_tensor(next_obs, device=device).clone()
        term = torch.as_tensor(terminated, device=device)
        done = term | torch.as_tensor(truncated, device=device)
        r = reward_scaler(torch.as_tensor(reward, device=device), done)
        replay.add(obs, action, r, next_obs_t, term, keep=~prev_done)
        obs, prev_done = next_obs_t, done
        iteration += 1
        global_step += config.num_envs
        window.steps += config.num_envs
        if replay.size >= config.learning_starts:
            beta = config.per_beta_start + (1.0 - config.per_beta_start) * iteration / iterations
            for _ in range(config.gradient_steps):
                index, weights, batch = replay.sample(config.batch_size, min(beta, 1.0))
                td, stats = learner.update(weights, *batch)
                replay.update_priorities(index, td)
        summary = episode_summary(info)
        if summary or iteration % 50 == 0:
            last = {**stats, **summary, **window.charts()}
            run.log(global_step, last)
        if bar is not None:
            bar.update(config.num_envs)
            if summary:
                bar.set_postfix(
                    pnl=f"{summary['charts/episode_pnl']:.2f}",
                    loss=f"{last.get('losses/td_loss', float('nan')):.4f}",
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


class DQNPolicy:
    """A trained DQN as a batched policy: the greedy action of the noise-free network."""

    def __init__(self, learner: DQNLearner, device):
        self.learner = learner.eval()
        self.device = device
        self.table = torch.as_tensor(DISCRETE_ACTIONS, device=device)

    @classmethod
    def load(cls, run_dir, env, device: str = "cpu") -> DQNPolicy:
        path = Path(run_dir) / "checkpoint.pt"
        payload = load_checkpoint(path, ("learner",))
        config = config_from_checkpoint(DQNConfig, payload, path)
        dev = pick_device(device)
        learner = DQNLearner(env.single_observation_space.shape[0], config)
        load_weights(learner, payload["learner"], path)
        return cls(learner.to(dev), dev)

    @torch.no_grad()
    def act(self, obs) -> np.ndarray:
        x = self.learner.obs_norm.frozen(torch.as_tensor(np.asarray(obs), device=self.device))
        return self.table[self.learner.online(x).argmax(1)].cpu().numpy()


def main(
    argv: list[str] | None = None,
    prog: str = "python -m fastlob_agents.dqn",
    env: MarketMakingConfig | None = None,
) -> dict:
    """Train from command-line flags (every field of :class:`DQNConfig`, ``--env.*`` those of the
    market); ``env`` (a market file's config) replaces the default market under the flags."""
    default = DQNConfig() if env is None else DQNConfig(env=env)
    return train(parse_config(DQNConfig, argv, prog, default))


if __name__ == "__main__":
    main()
