"""PPO: GAE against hand-computed values, the truncation bootstrap, the update on a bandit with a
known optimum, checkpoint/resume equal to an uninterrupted run, and a smoke run."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import polars as pl
import pytest
import torch

from fastlob import MarketMakingConfig
from fastlob_agents.common import RunError
from fastlob_agents.ppo import Agent, PPOConfig, Rollout, compute_gae, ppo_update, train


def test_gae_matches_hand_computation():
    # one env, three steps, no episode end: delta_t = r_t + g V_{t+1} - V_t
    g, lam = 0.9, 0.8
    r = torch.tensor([[1.0], [0.0], [2.0]])
    v = torch.tensor([[0.5], [1.0], [1.5]])
    nxt = torch.tensor([2.0])
    no = torch.zeros(3, 1, dtype=torch.bool)
    adv, ret = compute_gae(r, v, nxt, no, no, g, lam)
    d2 = 2.0 + 0.9 * 2.0 - 1.5  # 2.3
    d1 = 0.0 + 0.9 * 1.5 - 1.0  # 0.35
    d0 = 1.0 + 0.9 * 1.0 - 0.5  # 1.4
    a2 = d2
    a1 = d1 + g * lam * a2
    a0 = d0 + g * lam * a1
    assert adv[:, 0].tolist() == pytest.approx([a0, a1, a2])
    assert ret[:, 0].tolist() == pytest.approx([a0 + 0.5, a1 + 1.0, a2 + 1.5])


def test_gae_bootstraps_truncation_and_not_termination_and_cuts_at_episode_end():
    g, lam = 0.9, 0.8
    r = torch.tensor([[1.0, 1.0], [0.0, 0.0], [3.0, 3.0]])
    # step 1 (index 1) ends the episode: env 0 truncated, env 1 terminated; step 2 is the reset
    # pseudo-transition, whose value row holds V(final observation) = 4 for both
    v = torch.tensor([[0.5, 0.5], [1.0, 1.0], [4.0, 4.0]])
    nxt = torch.tensor([7.0, 7.0])
    term = torch.tensor([[False, False], [False, True], [False, False]])
    trunc = torch.tensor([[False, False], [True, False], [False, False]])
    adv, _ = compute_gae(r, v, nxt, term, trunc, g, lam)
    assert adv[1, 0] == pytest.approx(0.0 + g * 4.0 - 1.0)  # truncated: bootstrap V(final)
    assert adv[1, 1] == pytest.approx(0.0 - 1.0)  # terminated: no bootstrap
    # and nothing of the pseudo-transition (its reward 3, next value 7) leaks back
    assert adv[0, 0] == pytest.approx((1.0 + g * 1.0 - 0.5) + g * lam * adv[1, 0])
    assert adv[0, 1] == pytest.approx((1.0 + g * 1.0 - 0.5) + g * lam * adv[1, 1])


def train_on_a_bandit(agent, config, reward, updates: int = 150, envs: int = 256):
    """PPO updates on a one-step bandit: each update, ``envs`` actions drawn for the same
    observation (ones (envs, 3)), ``reward(actions)`` -> (envs,), every episode terminated."""
    optimizer = torch.optim.Adam(agent.parameters(), lr=3e-3)
    obs = torch.ones(envs, 3)
    act_dim = len(agent.continuous) + len(agent.levels)
    for _ in range(updates):
        rollout = Rollout.allocate(1, envs, 3, act_dim, "cpu")
        with torch.no_grad():
            dist = agent.distribution(obs)
            action = dist.sample()
            rollout.obs[0], rollout.actions[0] = obs, action
            rollout.logprobs[0] = dist.log_prob(action)
            rollout.values[0] = agent.value(obs)
        rollout.rewards[0] = reward(action)
        rollout.terminated[0] = True
        rollout.valid[0] = True
        adv, ret = compute_gae(
            rollout.rewards, rollout.values, torch.zeros(envs),
            rollout.terminated, rollout.truncated, 0.99, 0.95,
        )  # fmt: skip
        ppo_update(agent, optimizer, rollout, adv, ret, config)
    with torch.no_grad():
        return agent.distribution(obs[:1])


def test_update_moves_the_policy_to_a_bandits_optimum():
    """One-step bandit: reward -(a - 0.3)^2 per action column; the mean must go to 0.3."""
    torch.manual_seed(0)
    config = PPOConfig(norm_obs=False, update_epochs=4, num_minibatches=2, ent_coef=0.0)
    dist = train_on_a_bandit(Agent(3, 2, config), config, lambda a: -((a - 0.3) ** 2).sum(-1))
    assert torch.allclose(dist.mean[0], torch.tensor([0.3, 0.3]), atol=0.05)


def test_a_categorical_head_learns_a_discrete_optimum_beside_a_gaussian_one():
    """Column 0 Gaussian, reward -(a - 0.3)^2; column 1 categorical over 6 values (unit -1, -0.6,
    ..., 1), reward 1 at value index 4 only: the mean goes to 0.3 and the mode to index 4."""
    torch.manual_seed(0)
    config = PPOConfig(norm_obs=False, update_epochs=4, num_minibatches=2)

    def reward(action):
        hit = (action[:, 1] - 0.6).abs() < 1e-6
        return -((action[:, 0] - 0.3) ** 2) + hit.float()

    dist = train_on_a_bandit(Agent(3, 2, config, {1: 6}), config, reward)
    assert dist.mean[0, 0] == pytest.approx(0.3, abs=0.05)
    assert dist.mean[0, 1] == pytest.approx(0.6, abs=1e-6)
    assert torch.softmax(dist.logits[0][0], -1)[4] > 0.9


def test_the_mixed_distributions_log_prob_and_entropy_by_hand():
    from fastlob_agents.ppo import PolicyDistribution

    normal = torch.distributions.Normal(torch.tensor([[0.1, -0.2]]), torch.tensor([[0.5, 2.0]]))
    logits = torch.tensor([[0.0, 1.0, 2.0]])
    dist = PolicyDistribution(normal, [0, 2], [logits], {1: 3})
    action = torch.tensor([[0.4, 1.0, 0.7]])  # column 1 at unit 1.0: its third value
    gauss = sum(
        -0.5 * ((a - m) / sd) ** 2 - math.log(sd * math.sqrt(2 * math.pi))
        for a, m, sd in ((0.4, 0.1, 0.5), (0.7, -0.2, 2.0))
    )
    log_softmax = 2.0 - math.log(1 + math.e + math.e**2)
    assert float(dist.log_prob(action)[0]) == pytest.approx(gauss + log_softmax, rel=1e-6)
    p = [math.exp(x) / (1 + math.e + math.e**2) for x in (0.0, 1.0, 2.0)]
    gauss_entropy = sum(0.5 + 0.5 * math.log(2 * math.pi) + math.log(sd) for sd in (0.5, 2.0))
    categorical_entropy = -sum(x * math.log(x) for x in p)
    assert float(dist.entropy()[0]) == pytest.approx(gauss_entropy + categorical_entropy, rel=1e-6)
    torch.manual_seed(0)
    draws = torch.cat([dist.sample() for _ in range(200)])
    assert set(draws[:, 1].tolist()) == {-1.0, 0.0, 1.0}  # the unit grid of 3 values
    assert torch.equal(dist.mean, torch.tensor([[0.1, 1.0, -0.2]]))


def test_a_discrete_columns_value_reaches_the_env_as_the_exact_integer():
    # float32 scaling missed the integer by an ulp: an offset of 3.0000002 ticks priced a tick off
    import gymnasium

    from fastlob_agents.common import ActionScaler

    class Env:
        single_action_space = gymnasium.spaces.Box(
            np.array([-10.0, -10.0, 0.0, 0.0, -1.0], np.float32),
            np.array([10.0, 10.0, 5.0, 5.0, 1.0], np.float32),
        )

    units = torch.linspace(-1.0, 1.0, 21).unsqueeze(-1).repeat(1, 5)  # the unit grid of 21 values
    exact = ActionScaler(Env(), "cpu", (0, 1)).to_env(units)
    assert torch.equal(exact[:, 0], torch.arange(-10.0, 11.0))
    plain = ActionScaler(Env(), "cpu").to_env(units)
    assert not torch.equal(plain[:, 0], torch.arange(-10.0, 11.0))  # what the rounding repairs
    assert torch.equal(exact[:, 4], plain[:, 4])  # other columns as they were


def test_discrete_columns_are_checked_against_the_action_space():
    import gymnasium

    from fastlob_agents.ppo import discrete_levels

    space = gymnasium.spaces.Box(
        np.array([-3.0, -3.0, 0.0, 0.0, -1.0], np.float32),
        np.array([3.0, 3.0, 5.0, 5.0, 1.0], np.float32),
    )
    assert discrete_levels((2, 3), space) == {2: 6, 3: 6}
    assert discrete_levels((0,), space) == {0: 7}
    with pytest.raises(ValueError, match="not an action column"):
        discrete_levels((5,), space)
    with pytest.raises(ValueError, match="twice"):
        discrete_levels((2, 2), space)
    half = gymnasium.spaces.Box(np.float32([-1.5]), np.float32([1.5]))
    with pytest.raises(ValueError, match=r"integers low\.\.high"):
        discrete_levels((0,), half)


def test_masked_pseudo_transitions_are_left_out_of_the_update():
    """A rollout whose invalid rows carry absurd data updates exactly like one without them."""
    config = PPOConfig(norm_obs=False, update_epochs=1, num_minibatches=1, norm_adv=False)
    results = []
    for poison in (False, True):
        torch.manual_seed(1)
        agent = Agent(2, 1, config)
        optimizer = torch.optim.Adam(agent.parameters(), lr=1e-2)
        rollout = Rollout.allocate(2, 4, 2, 1, "cpu")
        rollout.obs[0] = torch.randn(4, 2, generator=torch.Generator().manual_seed(2))
        rollout.valid[0] = True
        rollout.rewards[0] = torch.tensor([1.0, -1.0, 0.5, 0.0])
        rollout.terminated[0] = True
        if poison:
            rollout.obs[1] = 1e6
            rollout.actions[1] = 50.0
            rollout.rewards[1] = 1e9
        with torch.no_grad():
            rollout.values[:] = agent.value(rollout.obs)
            rollout.logprobs[:] = agent.distribution(rollout.obs).log_prob(rollout.actions)
        adv, ret = compute_gae(
            rollout.rewards, rollout.values, torch.zeros(4),
            rollout.terminated, rollout.truncated, 0.99, 0.95,
        )  # fmt: skip
        ppo_update(agent, optimizer, rollout, adv, ret, config)
        results.append([p.detach().clone() for p in agent.parameters()])
    for a, b in zip(*results, strict=True):
        assert torch.equal(a, b)


SMALL = PPOConfig(
    num_envs=8,
    total_steps=8 * 16 * 4,
    num_steps=16,
    env=MarketMakingConfig(episode_steps=20),
    update_epochs=2,
    num_minibatches=2,
    hidden_size=16,
    progress=False,
    checkpoint_every=1,
)


def test_resume_gives_the_same_parameters_as_an_uninterrupted_run(tmp_path):
    straight = train(dataclasses.replace(SMALL, runs_dir=str(tmp_path), run_name="straight"))
    first = dataclasses.replace(
        SMALL, runs_dir=str(tmp_path), run_name="resumed", stop_after_updates=2
    )
    assert train(first)["update"] == 2
    resumed = train(dataclasses.replace(first, stop_after_updates=None, resume=True))
    assert straight["update"] == resumed["update"] == 4
    a = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=True)
    for key, value in a["agent"].items():
        assert torch.equal(value, b["agent"][key]), key
    import polars as pl

    rows = pl.read_parquet(tmp_path / "resumed" / "metrics.parquet")
    assert rows["global_step"].to_list() == [128, 256, 384, 512]
    # the resumed run evaluates and reports from its checkpoint (weights-only, CPU)
    from fastlob_agents.evaluate import evaluate
    from fastlob_agents.report import write_report

    evaluate([resumed["run_dir"]], episodes=4, tuning_episodes=4)
    assert write_report(resumed["run_dir"], episodes=4).stat().st_size > 1_000_000
    with pytest.raises(FileExistsError, match="resume"):
        train(dataclasses.replace(SMALL, runs_dir=str(tmp_path), run_name="straight"))


def test_a_run_from_before_a_config_field_existed_resumes_with_its_default(tmp_path):
    first = dataclasses.replace(SMALL, runs_dir=str(tmp_path), run_name="old", stop_after_updates=1)
    train(first)
    path = tmp_path / "old" / "checkpoint.pt"
    payload = torch.load(path, weights_only=True)
    del payload["config"]["discrete_columns"]  # as a checkpoint written before the field was
    torch.save(payload, path)
    resumed = train(dataclasses.replace(first, stop_after_updates=None, resume=True))
    assert resumed["update"] == 4
    changed = dataclasses.replace(first, stop_after_updates=None, resume=True, num_steps=8)
    with pytest.raises(RunError, match="num_steps"):  # a real difference is still refused
        train(changed)


def test_fastlob_train_cli_smoke(tmp_path, capsys):
    import json

    from fastlob_agents.cli import main

    code = main(
        ["train", "--algo", "ppo", "--num-envs", "4", "--total-steps", "64", "--num-steps", "8",
         "--env.episode-steps", "10", "--runs-dir", str(tmp_path), "--run-name", "cli",
         "--no-progress"]
    )  # fmt: skip
    assert code == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["global_step"] == 64 and (tmp_path / "cli" / "metrics.parquet").exists()
    assert any(p.name.startswith("events.out.tfevents") for p in (tmp_path / "cli").iterdir())


def test_fill_rates_by_queue_for_the_agent_and_the_tuned_baselines(tmp_path):
    from fastlob_agents.common import RunError
    from fastlob_agents.evaluate import evaluate, fill_rates_by_queue
    from fastlob_agents.ppo import PPOConfig, train

    config = PPOConfig(
        num_envs=4, num_steps=8, total_steps=64, hidden_size=8, update_epochs=1,
        num_minibatches=1, progress=False, runs_dir=str(tmp_path), run_name="q",
        env=PPOConfig().env.replace(episode_steps=12),
    )  # fmt: skip
    run = train(config)["run_dir"]
    with pytest.raises(RunError, match=r"no baselines\.json"):
        fill_rates_by_queue(run, episodes=2)
    evaluate([run], episodes=4, tuning_episodes=2)
    import json
    from pathlib import Path

    choices = json.loads((Path(run) / "baselines.json").read_text())["baselines"]
    table = json.loads((Path(run) / "eval.json").read_text())
    assert set(table) == {"ppo", *choices} and all("utility" in row for row in table.values())
    assert all(isinstance(row["params"]["size"], int) for row in choices.values())
    rates = fill_rates_by_queue(run, episodes=4, queue_breaks=(1, 3))
    quoting = {name for name, row in choices.items() if row["params"]["size"] > 0}
    assert {"ppo", *quoting} == set(rates["agent"])  # a baseline that stands aside rests nothing
    assert set(rates["queue"]) <= {"(-inf, 1)", "[1, 3)", "[3, inf)"}
    assert ((rates["fill_rate"] >= 0) & (rates["fill_rate"] <= 1)).all()
    shares = rates.group_by("agent").agg(pl.col("share").sum())["share"]
    assert all(abs(x - 1.0) < 1e-12 for x in shares)


def test_demo_trains_evaluates_and_writes_eval_json(tmp_path, capsys):
    import json

    from fastlob_agents.demo import run_demo

    run_demo(runs_dir=str(tmp_path), steps=2 * 1024 * 16, seed=3)  # two updates
    first = (tmp_path / "demo" / "eval.json").read_bytes()
    table = json.loads(first)
    assert {"ppo", "avellaneda_stoikov", "glft", "fixed_spread", "touch", "random"} <= set(table)
    for row in table.values():
        assert "utility" in row and row["utility"]["ci_low"] <= row["utility"]["ci_high"]
    out = capsys.readouterr().out
    assert "learning curve" in out
    report = tmp_path / "demo" / "report.html"
    assert f"report: {report}" in out and report.stat().st_size > 1_000_000
    # reproducible: the same command again gives the same eval.json, bit for bit
    run_demo(runs_dir=str(tmp_path), steps=2 * 1024 * 16, seed=3)
    assert (tmp_path / "demo" / "eval.json").read_bytes() == first


def test_a_time_limit_stops_training_early_and_is_recorded(tmp_path):
    from fastlob_agents.ppo import PPOConfig, train

    config = PPOConfig(
        num_envs=8, num_steps=8, total_steps=8 * 8 * 1000, hidden_size=8, update_epochs=1,
        num_minibatches=1, progress=False, runs_dir=str(tmp_path), run_name="limited",
        time_budget=0.5, env=PPOConfig().env.replace(episode_steps=20),
    )  # fmt: skip
    result = train(config)
    assert result["stopped_by_time_budget"] and result["update"] < 1000
    curve = pl.read_parquet(tmp_path / "limited" / "metrics.parquet")
    assert curve["charts/stopped_by_time_budget"].drop_nulls().to_list() == [1.0]
    assert (tmp_path / "limited" / "checkpoint.pt").exists()


def test_fast_tanh_is_tanh_with_tanhs_gradient():
    from fastlob_agents.common import Tanh

    x = torch.linspace(-12.0, 12.0, 20001, dtype=torch.float32)
    assert (Tanh()(x) - torch.tanh(x)).abs().max() < 3e-7
    x64 = torch.randn(64, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(Tanh(), (x64,))
    (grad,) = torch.autograd.grad(Tanh()(x64).sum(), x64)
    torch.testing.assert_close(grad, 1.0 - torch.tanh(x64.detach()) ** 2)


def test_compiled_loss_matches_the_eager_loss_and_gradients():
    """``--compile`` runs torch.compile(minibatch_loss): same loss, statistics and gradients."""
    from fastlob_agents.ppo import Agent, PPOConfig, minibatch_loss

    config = PPOConfig(compile=True)
    torch.manual_seed(0)
    agent = Agent(31, 5, config)
    gen = torch.Generator().manual_seed(1)
    batch = [torch.randn(size, generator=gen) for size in ((96, 31), (96, 5), (96,), (96,))]
    batch += [torch.randn(96, generator=gen), torch.randn(96, generator=gen)]
    compiled = torch.compile(minibatch_loss, dynamic=True)
    results = []
    for fn in (minibatch_loss, compiled):
        agent.zero_grad()
        out = fn(agent, *batch, config)
        out[0].backward()
        results.append(
            ([float(v.detach()) for v in out], [p.grad.clone() for p in agent.parameters()])
        )
    (eager_values, eager_grads), (compiled_values, compiled_grads) = results
    assert compiled_values == pytest.approx(eager_values, rel=1e-4, abs=1e-6)
    for a, b in zip(eager_grads, compiled_grads, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6)
