"""SAC and DQN: the sum-tree against brute force, each update on a bandit with a known answer,
replay that drops the reset pseudo-transitions, checkpoint/resume, and smoke runs."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from fastlob import MarketMakingConfig
from fastlob_agents.dqn import (
    DISCRETE_ACTIONS,
    DQNConfig,
    DQNLearner,
    NoisyLinear,
    PrioritizedReplay,
    SumTree,
)
from fastlob_agents.dqn import train as train_dqn
from fastlob_agents.sac import ReplayBuffer, SACConfig, SACLearner
from fastlob_agents.sac import train as train_sac


def test_sum_tree_sums_and_samples_like_brute_force():
    rng = np.random.default_rng(0)
    tree = SumTree(64, "cpu")
    priorities = np.zeros(64)
    for _ in range(20):  # batched updates, with repeated indices (the last write wins)
        index = rng.integers(0, 50, size=8)
        values = rng.uniform(0, 5, size=8)
        tree.update(torch.as_tensor(index), torch.as_tensor(values))
        for i, v in zip(index, values, strict=True):
            priorities[i] = v
    assert tree.total() == pytest.approx(priorities.sum())
    node_sums = tree.tree.numpy()
    for node in range(1, 64):  # every internal node is the sum of its children
        assert node_sums[node] == pytest.approx(node_sums[2 * node] + node_sums[2 * node + 1])
    draws = torch.cat([tree.sample(256, 50) for _ in range(400)]).numpy()
    counts = np.bincount(draws, minlength=64)
    expected = priorities / priorities.sum() * draws.size
    seen = expected > 0
    assert counts[~seen].sum() == 0  # zero priority: never drawn
    chi2 = ((counts[seen] - expected[seen]) ** 2 / expected[seen]).sum()
    assert chi2 < seen.sum() + 6 * np.sqrt(2 * seen.sum())  # chi-square, generous bound
    with pytest.raises(ValueError, match="power of two"):
        SumTree(100, "cpu")


def test_prioritized_replay_weights_and_priorities():
    replay = PrioritizedReplay(16, 3, "cpu", alpha=1.0, eps=0.0)
    obs = torch.arange(12.0).reshape(4, 3)
    keep = torch.tensor([True, False, True, True])
    replay.add(obs, torch.arange(4), torch.ones(4), obs, torch.zeros(4, dtype=torch.bool), keep)
    assert replay.size == 3 and replay.obs[:3, 0].tolist() == [0.0, 6.0, 9.0]
    replay.update_priorities(torch.tensor([0, 1, 2]), torch.tensor([1.0, 2.0, 4.0]))
    index, weights, _ = replay.sample(512, beta=1.0)
    freq = np.bincount(index.numpy(), minlength=3) / 512
    assert freq == pytest.approx([1 / 7, 2 / 7, 4 / 7], abs=0.06)
    # importance weights (N P)^-beta / max: the rarest transition gets weight 1
    assert weights[index == 0].max() == pytest.approx(1.0)
    assert weights[index == 2].max() == pytest.approx(0.25)


def test_noisy_layer_is_deterministic_in_eval_and_noisy_in_training():
    layer = NoisyLinear(4, 3, 0.5)
    x = torch.ones(2, 4)
    layer.reset_noise()
    a = layer(x)
    layer.reset_noise()
    assert not torch.allclose(a, layer(x))
    layer.eval()
    assert torch.equal(layer(x), torch.nn.functional.linear(x, layer.weight_mu, layer.bias_mu))


def test_dqn_update_learns_a_bandit():
    torch.manual_seed(0)
    config = DQNConfig(norm_obs=False, learning_rate=3e-3, target_update_every=20, hidden_size=32)
    learner = DQNLearner(2, config)
    values = torch.linspace(-1, 1, len(DISCRETE_ACTIONS))
    values = values[torch.randperm(len(values))]
    obs = torch.ones(256, 2)
    for _ in range(400):
        actions = torch.randint(0, len(DISCRETE_ACTIONS), (256,))
        learner.update(
            torch.ones(256), obs, actions, values[actions], obs, torch.ones(256)
        )  # terminated: Q(a) -> r(a)
    learner.eval()
    q = learner.online(obs[:1])[0]
    assert int(q.argmax()) == int(values.argmax())
    assert torch.allclose(q, values, atol=0.15)


def test_sac_update_learns_a_bandit():
    torch.manual_seed(0)
    low, high = np.array([-2.0, 0.0], np.float32), np.array([2.0, 4.0], np.float32)
    config = SACConfig(norm_obs=False, hidden_size=32, alpha=0.01, autotune=False, q_lr=3e-3)
    learner = SACLearner(2, 2, low, high, config)
    obs = torch.ones(256, 2)
    best = torch.tensor([0.5, 3.0])
    for _ in range(600):
        actions = torch.as_tensor(low) + torch.rand(256, 2) * torch.as_tensor(high - low)
        rewards = -((actions - best) ** 2).sum(-1)
        learner.update(obs, actions, rewards, obs, torch.ones(256))
    deterministic = learner.actor.sample(obs[:1])[2][0]
    assert torch.allclose(deterministic, best, atol=0.3)


def test_replay_keeps_only_the_masked_rows():
    buffer = ReplayBuffer(8, 2, 1, "cpu")
    obs = torch.arange(6.0).reshape(3, 2)
    keep = torch.tensor([False, True, True])
    buffer.add(obs, torch.zeros(3, 1), torch.ones(3), obs, torch.zeros(3), keep)
    assert buffer.size == 2 and buffer.obs[:2].tolist() == [[2.0, 3.0], [4.0, 5.0]]


TINY = {"num_envs": 8, "total_steps": 8 * 12, "env": MarketMakingConfig(episode_steps=5),
        "learning_starts": 16, "batch_size": 16, "buffer_size": 64, "hidden_size": 16,
        "progress": False, "checkpoint_every": 1}  # fmt: skip


@pytest.mark.parametrize(("config_cls", "train"), [(SACConfig, train_sac), (DQNConfig, train_dqn)])
def test_resume_gives_the_same_parameters_as_an_uninterrupted_run(tmp_path, config_cls, train):
    base = config_cls(**TINY, runs_dir=str(tmp_path))
    train(dataclasses.replace(base, run_name="straight"))
    first = dataclasses.replace(base, run_name="resumed", stop_after_iterations=5)
    assert train(first)["iteration"] == 5
    assert (
        train(dataclasses.replace(first, stop_after_iterations=None, resume=True))["iteration"]
        == 12
    )
    a = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=True)
    for key, value in a["learner"].items():
        assert torch.equal(value, b["learner"][key]), key


@pytest.mark.parametrize("algo", ["sac", "dqn"])
def test_fastlob_train_cli_smoke(tmp_path, capsys, algo):
    from fastlob_agents.cli import main

    args = ["train", "--algo", algo, "--num-envs", "4", "--total-steps", "40",
            "--env.episode-steps", "5", "--learning-starts", "8", "--batch-size", "8",
            "--buffer-size", "64", "--runs-dir", str(tmp_path), "--run-name", algo,
            "--no-progress"]  # fmt: skip
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["global_step"] == 40
    assert json.loads((tmp_path / algo / "config.json").read_text())["algo"] == algo
