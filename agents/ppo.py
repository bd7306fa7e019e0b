"""PPO for the order-book market-making env (CleanRL-shaped: one file, a typed config, a flat loop).

Gaussian policy over the 5 action columns in [-1, 1] units (scaled onto the env's box), with a
state-independent log-std (or a learned head); optionally a categorical head over the integer
values of some columns instead (``discrete_columns``: the quote sizes); separate actor and critic
MLPs, GAE, the clipped
objective, optional value clipping, advantage normalisation, minibatch epochs, learning-rate
annealing; observation and reward normalisation by running statistics (on by default).

Under the env's next-step autoreset, the step after an episode ends is a reset pseudo-transition
(the action is ignored, the reward is 0): it is masked out of the loss, and the GAE recursion is
cut at the end of every episode. A truncated episode bootstraps from the value of its final
observation (which the env returns at the truncating step); a terminated one does not.

Rollout storage is preallocated on the training device with shape (num_steps, num_envs, ...).

Run: ``python -m fastlob_agents.ppo --num-envs 1024 --total-steps 2000000`` or ``fastlob train
--algo ppo ...``; ``--help`` lists every field of ``PPOConfig``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical, Normal

from fastlob import MarketMakingConfig, MarketMakingVectorEnv
from fastlob.env import action_space

from .common import (
    ActionScaler,
    ObservationNormalizer,
    RewardScaler,
    Run,
    Tanh,
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

#: what a ppo checkpoint holds beside its algorithm and config
CHECKPOINT_KEYS = (
    "agent",
    "optimizer",
    "reward_scaler",
    "env",
    "rng",
    "update",
    "num_updates",
    "global_step",
)


@dataclass
class PPOConfig:
    """PPO on fastlob's order-book market-making env."""

    seed: int = 1
    """seed of the envs (env n uses (seed, n)) and of torch"""
    num_envs: int = 1024
    """parallel envs"""
    total_steps: int = 1_000_000
    """env-steps to train for (all envs together)"""
    num_steps: int = 32
    """steps per env per rollout"""
    env: MarketMakingConfig = field(default_factory=lambda: MarketMakingConfig(episode_steps=200))
    """the market trained on: every field of MarketMakingConfig (--env.latency 0.1,
    --env.flow.informed-tilt 0, --env.reward.inventory-penalty 0.01); evaluation plays it too"""
    learning_rate: float = 3e-4
    """Adam learning rate"""
    anneal_lr: bool = True
    """anneal the learning rate linearly to 0"""
    gamma: float = 0.99
    """discount factor"""
    gae_lambda: float = 0.95
    """GAE lambda"""
    num_minibatches: int = 4
    """minibatches per epoch"""
    update_epochs: int = 4
    """epochs over each rollout"""
    clip_coef: float = 0.2
    """PPO clip range"""
    clip_vloss: bool = True
    """clip the value loss as the policy's"""
    ent_coef: float = 0.0
    """entropy bonus weight"""
    vf_coef: float = 0.5
    """value loss weight"""
    max_grad_norm: float = 0.5
    """gradient clipping norm"""
    target_kl: float | None = None
    """stop the epochs of an update early above this approximate KL (None: never)"""
    norm_adv: bool = True
    """normalise advantages per minibatch"""
    norm_obs: bool = True
    """normalise observations by running statistics"""
    norm_reward: bool = True
    """scale rewards by the running std of the discounted return"""
    hidden_size: int = 64
    """width of the two hidden layers of actor and critic"""
    state_dependent_std: bool = False
    """learn the log-std as a function of the observation (else one parameter per column)"""
    init_log_std: float = -0.5
    """initial log-std of the Gaussian policy (in [-1, 1] action units)"""
    discrete_columns: tuple[int, ...] = ()
    """action columns whose env values are the integers low..high of the action box, each drawn
    from a categorical head over those values instead of a rounded Gaussian (the quote sizes:
    ``(2, 3)``). A Gaussian whose std falls below one lot while its mean sits between two sizes
    has no gradient across the rounding; a categorical moves toward the size whose advantage is
    highest"""
    device: str = "auto"
    """auto, cpu or cuda"""
    torch_threads: int = 0
    """torch CPU threads (0: torch's default)"""
    compile: bool = False
    """torch.compile the minibatch loss and its backward (a compilation at start, then a faster
    learner: see the docs' training benchmark)"""
    run_name: str | None = None
    """run directory name under runs_dir (default: ppo_<seed>)"""
    runs_dir: str = "runs"
    """where run directories go"""
    checkpoint_every: int = 20
    """updates between checkpoints (and at the end)"""
    resume: bool = False
    """continue the run in runs_dir/run_name from its checkpoint"""
    progress: bool = True
    """show a progress bar"""
    stop_after_updates: int | None = None
    """stop (after checkpointing) once this many updates are done: for tests of --resume"""
    time_budget: float | None = None
    """an opt-in safety stop: seconds of training after which the run stops early (checkpointed;
    recorded as charts/stopped_by_time_budget and in the result). None: train total_steps, the
    same bits for the same seed and threads"""


def layer(in_dim: int, out_dim: int, std: float = float(np.sqrt(2))) -> nn.Linear:
    linear = nn.Linear(in_dim, out_dim)
    nn.init.orthogonal_(linear.weight, std)
    nn.init.zeros_(linear.bias)
    return linear


def mlp(in_dim: int, hidden: int, out_dim: int, out_std: float) -> nn.Sequential:
    return nn.Sequential(
        layer(in_dim, hidden), Tanh(), layer(hidden, hidden), Tanh(),
        layer(hidden, out_dim, out_std),
    )  # fmt: skip


def check_config(config: PPOConfig) -> None:
    """What can be checked of ``config`` before an env exists: its ``discrete_columns`` against
    the action space of its market (a ``ValueError`` naming the field)."""
    discrete_levels(config.discrete_columns, action_space(config.env))


def discrete_levels(columns, space) -> dict[int, int]:
    """{column: number of values} for ``PPOConfig.discrete_columns`` on the Box ``space``: each
    column must exist and span the integers low..high (2 to 1000 of them)."""
    levels = {}
    act_dim = space.shape[0]
    for column in columns:
        if isinstance(column, bool) or not isinstance(column, int) or not 0 <= column < act_dim:
            raise ValueError(
                f"config.discrete_columns: {column!r} is not an action column (0..{act_dim - 1})"
            )
        if column in levels:
            raise ValueError(f"config.discrete_columns lists column {column} twice")
        low, high = float(space.low[column]), float(space.high[column])
        if not (low.is_integer() and high.is_integer() and 1 <= high - low <= 999):
            raise ValueError(
                f"config.discrete_columns: column {column} spans [{low:.7g}, {high:.7g}]; a "
                "discrete column must span the integers low..high, 2 to 1000 of them"
            )
        levels[column] = int(high - low) + 1
    return levels


class PolicyDistribution:
    """The policy over unit actions (..., act_dim) in [-1, 1]: independent Gaussians over the
    continuous columns and, for each discrete column of ``levels`` values, a categorical over
    the unit values ``-1 + 2 k / (levels - 1)``, k = 0 .. levels - 1 (which the action scaler
    maps onto the integers low..high). ``log_prob`` and ``entropy`` are summed over columns,
    shape (...,); ``mean`` is the deterministic action (the Gaussians' means, the categoricals'
    modes)."""

    def __init__(self, normal: Normal, continuous: list[int], logits: list, discrete: dict):
        self.normal = normal
        self.continuous = continuous
        self.logits = logits  # per discrete column, (N, levels)
        self.discrete = discrete

    def _assemble(self, gaussian: torch.Tensor, indices: list[torch.Tensor]) -> torch.Tensor:
        if not self.discrete:
            return gaussian
        columns = len(self.continuous) + len(self.discrete)
        out = gaussian.new_empty(*gaussian.shape[:-1], columns)
        out[..., self.continuous] = gaussian
        for (column, levels), k in zip(self.discrete.items(), indices, strict=True):
            out[..., column] = k.to(out.dtype) * (2.0 / (levels - 1)) - 1.0
        return out

    def _categoricals(self) -> list[Categorical]:
        return [Categorical(logits=logits, validate_args=False) for logits in self.logits]

    def sample(self) -> torch.Tensor:
        indices = [c.sample() for c in self._categoricals()]
        return self._assemble(self.normal.sample(), indices)

    @property
    def mean(self) -> torch.Tensor:
        return self._assemble(self.normal.mean, [x.argmax(-1) for x in self.logits])

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        if not self.discrete:
            return self.normal.log_prob(actions).sum(-1)
        total = self.normal.log_prob(actions[..., self.continuous]).sum(-1)
        for (column, levels), c in zip(self.discrete.items(), self._categoricals(), strict=True):
            k = ((actions[..., column] + 1.0) * ((levels - 1) / 2.0)).round().long()
            total = total + c.log_prob(k.clamp(0, levels - 1))
        return total

    def entropy(self) -> torch.Tensor:
        total = self.normal.entropy().sum(-1)
        for c in self._categoricals():
            total = total + c.entropy()
        return total


class Agent(nn.Module):
    """Actor and critic. ``levels`` ({column: values}, :func:`discrete_levels`): the action
    columns drawn from categorical heads (their logits follow the Gaussian means in the actor's
    output)."""

    def __init__(
        self, obs_dim: int, act_dim: int, config: PPOConfig, levels: dict[int, int] | None = None
    ):
        super().__init__()
        self.levels = dict(levels or {})
        self.continuous = [c for c in range(act_dim) if c not in self.levels]
        gaussians = len(self.continuous)
        self.obs_norm = ObservationNormalizer(obs_dim, enabled=config.norm_obs)
        self.critic = mlp(obs_dim, config.hidden_size, 1, 1.0)
        outputs = gaussians + sum(self.levels.values())
        self.actor_mean = mlp(obs_dim, config.hidden_size, outputs, 0.01)
        self.state_dependent_std = config.state_dependent_std
        if self.state_dependent_std:
            self.actor_log_std = mlp(obs_dim, config.hidden_size, gaussians, 0.01)
            nn.init.constant_(self.actor_log_std[-1].bias, config.init_log_std)
        else:
            self.actor_log_std = nn.Parameter(torch.full((gaussians,), config.init_log_std))

    def value(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic(x).squeeze(-1)

    def distribution(self, x: torch.Tensor) -> PolicyDistribution:
        out = self.actor_mean(x)
        gaussians = len(self.continuous)
        mean = out[..., :gaussians] if self.levels else out
        if self.state_dependent_std:
            log_std = self.actor_log_std(x).clamp(-5.0, 2.0)
        else:
            log_std = self.actor_log_std.expand_as(mean)
        # argument validation checks every element on every call: measurable at 4096 envs
        normal = Normal(mean, log_std.exp(), validate_args=False)
        logits = list(torch.split(out[..., gaussians:], list(self.levels.values()), -1))
        return PolicyDistribution(normal, self.continuous, logits, self.levels)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        """Unit actions in [-1, 1] for raw observations (normalised with frozen statistics)."""
        dist = self.distribution(self.obs_norm.frozen(obs))
        return (dist.mean if deterministic else dist.sample()).clamp(-1.0, 1.0)


def compute_gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_value: torch.Tensor,
    terminated: torch.Tensor,
    truncated: torch.Tensor,
    gamma: float,
    lam: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE under next-step autoreset. All inputs (T, N) except ``next_value`` (N,), the value of
    the observation after the last step.

    ``values[t + 1]`` is the value of the observation the env returned at step t: for a truncated
    step that is the episode's final observation (the bootstrap); for a terminated step it is
    not used. The recursion is cut after every terminated or truncated step, so the reset
    pseudo-transition that follows (masked out of the loss) never leaks into an episode.
    Returns (advantages, returns), each (T, N).
    """
    steps = rewards.shape[0]
    advantages = torch.zeros_like(rewards)
    last = torch.zeros_like(next_value)
    for t in reversed(range(steps)):
        following = next_value if t == steps - 1 else values[t + 1]
        alive = 1.0 - terminated[t].float()
        delta = rewards[t] + gamma * following * alive - values[t]
        carry = 1.0 - (terminated[t] | truncated[t]).float()
        last = delta + gamma * lam * carry * last
        advantages[t] = last
    return advantages, advantages + values


@dataclass
class Rollout:
    """Preallocated on the training device, shape (num_steps, num_envs, ...)."""

    obs: torch.Tensor
    actions: torch.Tensor
    logprobs: torch.Tensor
    rewards: torch.Tensor
    values: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    valid: torch.Tensor

    @classmethod
    def allocate(cls, steps: int, envs: int, obs_dim: int, act_dim: int, device) -> Rollout:
        def z(*shape, dtype=torch.float32):
            return torch.zeros(*shape, dtype=dtype, device=device)

        return cls(
            obs=z(steps, envs, obs_dim),
            actions=z(steps, envs, act_dim),
            logprobs=z(steps, envs),
            rewards=z(steps, envs),
            values=z(steps, envs),
            terminated=z(steps, envs, dtype=torch.bool),
            truncated=z(steps, envs, dtype=torch.bool),
            valid=z(steps, envs, dtype=torch.bool),
        )


def minibatch_loss(
    agent, obs, actions, old_logprobs, old_values, advantages, returns, config: PPOConfig
):
    """PPO's loss on one minibatch and its statistics (all tensors):
    ``(loss, approx_kl, clipfrac, policy_loss, value_loss, entropy)``."""
    dist = agent.distribution(obs)
    logprob = dist.log_prob(actions)
    entropy = dist.entropy().mean()
    log_ratio = logprob - old_logprobs
    ratio = log_ratio.exp()
    with torch.no_grad():
        approx_kl = ((ratio - 1) - log_ratio).mean()
        clipfrac = ((ratio - 1.0).abs() > config.clip_coef).float().mean()
    adv = advantages
    if config.norm_adv and adv.shape[0] > 1:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    policy_loss = torch.max(
        -adv * ratio, -adv * ratio.clamp(1 - config.clip_coef, 1 + config.clip_coef)
    ).mean()
    new_value = agent.value(obs)
    if config.clip_vloss:
        clipped = old_values + (new_value - old_values).clamp(-config.clip_coef, config.clip_coef)
        value_loss = 0.5 * torch.max((new_value - returns) ** 2, (clipped - returns) ** 2).mean()
    else:
        value_loss = 0.5 * ((new_value - returns) ** 2).mean()
    loss = policy_loss - config.ent_coef * entropy + config.vf_coef * value_loss
    return loss, approx_kl, clipfrac, policy_loss, value_loss, entropy


def ppo_update(agent, optimizer, rollout, advantages, returns, config: PPOConfig, loss_fn=None):
    """Minibatch epochs of the clipped objective over the valid transitions; returns losses.
    ``loss_fn`` is :func:`minibatch_loss` or a compiled version of it."""
    loss_fn = minibatch_loss if loss_fn is None else loss_fn
    act_dim = rollout.actions.shape[-1]
    index = torch.nonzero(rollout.valid.reshape(-1)).squeeze(-1)
    obs = rollout.obs.reshape(-1, rollout.obs.shape[-1])
    actions = rollout.actions.reshape(-1, act_dim)
    old_logprobs = rollout.logprobs.reshape(-1)
    old_values = rollout.values.reshape(-1)
    flat_adv = advantages.reshape(-1)
    flat_ret = returns.reshape(-1)
    batch = index.numel()
    minibatch = max(1, batch // config.num_minibatches)
    names = ("approx_kl", "clipfrac", "policy_loss", "value_loss", "entropy")
    stats = dict.fromkeys(names, 0.0)
    count = 0
    for _ in range(config.update_epochs):
        order = index[torch.randperm(batch, device=index.device)]
        for start in range(0, batch, minibatch):
            mb = order[start : start + minibatch]
            loss, *values = loss_fn(
                agent, obs[mb], actions[mb], old_logprobs[mb], old_values[mb], flat_adv[mb],
                flat_ret[mb], config,
            )  # fmt: skip
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(agent.parameters(), config.max_grad_norm)
            optimizer.step()
            for key, value in zip(names, values, strict=True):
                stats[key] += float(value.detach())
            count += 1
        approx_kl = values[0]
        if config.target_kl is not None and float(approx_kl) > config.target_kl:
            break
    return {f"losses/{k}": v / max(count, 1) for k, v in stats.items()}


def train(config: PPOConfig, env=None) -> dict:
    """Train (or resume) a run; returns its last logged metrics and the run directory. ``env``:
    the vector env to train on instead of ``config.env``'s market (any of fastlob's batched
    envs with a Box action space, e.g. ``fastlob.LinearQuadraticVectorEnv``)."""
    if config.torch_threads > 0:
        torch.set_num_threads(config.torch_threads)
    device = pick_device(config.device)
    seed_everything(config.seed)
    name = config.run_name or f"ppo_{config.seed}"
    if env is None:  # the market is checked before the run's directory is written
        env = MarketMakingVectorEnv(config.num_envs, config=config.env, seed=config.seed)
    elif env.num_envs != config.num_envs:
        raise ValueError(f"env has {env.num_envs} envs, config.num_envs is {config.num_envs}")
    levels = discrete_levels(config.discrete_columns, env.single_action_space)
    run = Run(config.runs_dir, name, config, resume=config.resume, checkpoint_keys=CHECKPOINT_KEYS)
    obs_dim = env.single_observation_space.shape[0]
    act_dim = env.single_action_space.shape[0]
    agent = Agent(obs_dim, act_dim, config, levels).to(device)
    optimizer = torch.optim.Adam(agent.parameters(), lr=config.learning_rate, eps=1e-5)
    reward_scaler = RewardScaler(config.num_envs, config.gamma, config.norm_reward).to(device)
    scaler = ActionScaler(env, device, tuple(levels))
    batch = config.num_envs * config.num_steps
    num_updates = max(1, config.total_steps // batch)
    rollout = Rollout.allocate(config.num_steps, config.num_envs, obs_dim, act_dim, device)
    # the valid transitions, hence the minibatch size, vary between updates: dynamic shapes
    loss_fn = torch.compile(minibatch_loss, dynamic=True) if config.compile else minibatch_loss

    update, global_step = 0, 0
    checkpoint = run.checkpoint
    if checkpoint is not None:
        agent.load_state_dict(checkpoint["agent"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        reward_scaler.load_state_dict(checkpoint["reward_scaler"])
        env.set_state(tensors_to_arrays(checkpoint["env"]))
        set_rng_state(checkpoint["rng"])
        update, global_step = checkpoint["update"], checkpoint["global_step"]
        num_updates = checkpoint["num_updates"]
        obs_np = env.observation.copy()
    else:
        obs_np, _ = env.reset(seed=config.seed)
    obs = torch.as_tensor(obs_np, device=device)
    prev_done = torch.as_tensor(env.terminated | env.truncated, device=device)

    def save():
        run.save_checkpoint(
            {
                "agent": agent.state_dict(),
                "optimizer": optimizer.state_dict(),
                "reward_scaler": reward_scaler.state_dict(),
                "env": arrays_to_tensors(env.get_state()),
                "rng": rng_state(),
                "update": update,
                "num_updates": num_updates,
                "global_step": global_step,
            }
        )
        run.save_metrics()

    bar = progress_bar(config.progress, num_updates * batch, global_step)
    last: dict[str, float] = {}
    shown_pnl = float("nan")  # the bar keeps the last episode PnL between episode ends
    loop_started = time.perf_counter()  # the time budget counts training, not setup
    stopped_by_time = False
    while update < num_updates:
        if config.anneal_lr:
            optimizer.param_groups[0]["lr"] = config.learning_rate * (1.0 - update / num_updates)
        started = time.perf_counter()
        sim_time = 0.0
        episodes: dict[str, list[float]] = {}
        agent.train()
        for t in range(config.num_steps):
            with torch.no_grad():
                x = agent.obs_norm(obs)
                dist = agent.distribution(x)
                action = dist.sample()
                rollout.obs[t] = x
                rollout.actions[t] = action
                rollout.logprobs[t] = dist.log_prob(action)
                rollout.values[t] = agent.value(x)
                rollout.valid[t] = ~prev_done
            sim_started = time.perf_counter()
            env_action = scaler.to_env(action).cpu().numpy()
            next_obs, reward, terminated, truncated, info = env.step(env_action)
            sim_time += time.perf_counter() - sim_started
            obs = torch.as_tensor(next_obs, device=device)
            term = torch.as_tensor(terminated, device=device)
            trunc = torch.as_tensor(truncated, device=device)
            done = term | trunc
            r = torch.as_tensor(reward, device=device)
            rollout.rewards[t] = reward_scaler(r, done)
            rollout.terminated[t] = term
            rollout.truncated[t] = trunc
            prev_done = done
            for key, value in episode_summary(info).items():
                episodes.setdefault(key, []).append(value)
        global_step += batch
        with torch.no_grad():
            next_value = agent.value(agent.obs_norm.frozen(obs))
        advantages, returns = compute_gae(
            rollout.rewards,
            rollout.values,
            next_value,
            rollout.terminated,
            rollout.truncated,
            config.gamma,
            config.gae_lambda,
        )
        learn_started = time.perf_counter()
        losses = ppo_update(agent, optimizer, rollout, advantages, returns, config, loss_fn)
        learn_time = time.perf_counter() - learn_started
        elapsed = time.perf_counter() - started
        update += 1
        last = {
            **losses,
            **{k: float(np.mean(v)) for k, v in episodes.items()},
            "charts/SPS": batch / elapsed,
            "charts/simulator_share": sim_time / elapsed,
            "charts/learner_share": learn_time / elapsed,
            "charts/learning_rate": optimizer.param_groups[0]["lr"],
        }
        run.log(global_step, last)
        out_of_time = (
            config.time_budget is not None
            and time.perf_counter() - loop_started > config.time_budget
            and update < num_updates
        )
        if out_of_time:
            stopped_by_time = True
            run.log(global_step, {"charts/stopped_by_time_budget": 1.0})
        shown_pnl = last.get("charts/episode_pnl", shown_pnl)
        if bar is not None:
            bar.update(batch)
            bar.set_postfix(
                SPS=f"{last['charts/SPS']:.0f}",
                pnl=f"{shown_pnl:.2f}",
                loss=f"{losses['losses/value_loss']:.3f}",
            )
        if update % config.checkpoint_every == 0 or update == num_updates or out_of_time:
            save()
        if out_of_time:
            break
        if config.stop_after_updates is not None and update >= config.stop_after_updates:
            save()
            break
    if bar is not None:
        bar.close()
    run.close()
    return {
        "run_dir": str(run.path),
        "update": update,
        "global_step": global_step,
        "stopped_by_time_budget": stopped_by_time,
        **last,
    }


class PPOPolicy:
    """A trained PPO agent as a batched policy: ``act(obs)`` -> float32 (N, 5) env actions
    (deterministic: the Gaussians' means, the categorical heads' modes)."""

    def __init__(self, agent: Agent, scaler: ActionScaler, device: torch.device):
        self.agent = agent.eval()
        self.scaler = scaler
        self.device = device

    @classmethod
    def load(cls, run_dir, env, device: str = "cpu") -> PPOPolicy:
        from pathlib import Path

        path = Path(run_dir) / "checkpoint.pt"
        payload = load_checkpoint(path, ("agent",))
        config = config_from_checkpoint(PPOConfig, payload, path)
        dev = pick_device(device)
        obs_dim = env.single_observation_space.shape[0]
        space = env.single_action_space
        levels = discrete_levels(config.discrete_columns, space)
        agent = Agent(obs_dim, space.shape[0], config, levels)
        load_weights(agent, payload["agent"], path)
        agent.to(dev)
        return cls(agent, ActionScaler(env, dev, tuple(levels)), dev)

    def act(self, obs) -> np.ndarray:
        obs = torch.as_tensor(np.asarray(obs), device=self.device)
        return self.scaler.to_env(self.agent.act(obs)).cpu().numpy().astype(np.float32)


def main(
    argv: list[str] | None = None,
    prog: str = "python -m fastlob_agents.ppo",
    env: MarketMakingConfig | None = None,
) -> dict:
    """Train from command-line flags (every field of :class:`PPOConfig`, ``--env.*`` those of the
    market); ``env`` (a market file's config) replaces the default market under the flags."""
    default = PPOConfig() if env is None else PPOConfig(env=env)
    return train(parse_config(PPOConfig, argv, prog, default))


if __name__ == "__main__":
    main()
