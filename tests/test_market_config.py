"""The whole market from every command: a market is a JSON file that round-trips every field of
``MarketMakingConfig``, every field is a flag of ``fastlob train`` (``--env.*``), the run keeps
it, and ``fastlob eval`` plays the market the agent trained on unless told otherwise."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

import fastlob_agents.evaluate
import fastlob_agents.ppo
from fastlob import FlowParams, MarketMakingConfig, MarketMakingVectorEnv, RewardConfig
from fastlob.env import check_config
from fastlob_agents.cli import main
from fastlob_agents.evaluate import run_config

EVERY_FIELD_CHANGED = MarketMakingConfig(
    dt=0.5, episode_steps=33, latency=0.1, tick_size=0.05, lot_size=10.0, initial_price=5000,
    initial_depth=3, warmup=2.5, flow_levels=4,
    flow=FlowParams(market_rate=0.5, size_min=2, size_max=3, informed_tilt=0.25, fair_sigma=0.3,
                    fair_reversion=0.1, hawkes_alpha=0.4, hawkes_beta=2.0, anchor_width=2.5),
    limit_rates=(1.0, 0.8, 0.6, 0.4), cancel_rates=(0.5, 0.5, 0.4, 0.3),
    limit_sizes=(0.6, 0.4), market_sizes=(0.2, 0.3, 0.5), ladder_levels=256,
    order_capacity=200, max_inventory=7, max_quote_size=4, max_offset=6.0, maker_fee=-0.0001,
    taker_fee=0.0002, max_drawdown=1234.5, terminate_on_max_inventory=True, post_only=True,
    markout_steps=4,
    signal_decay=0.8, depth_scale=5.0,
    reward=RewardConfig(scale=2.0, inventory_penalty=0.01, target_penalty=0.02,
                        spread_capture=0.5, mark="liquidation"),
    lobster=("message.csv", "orderbook.csv"), lobster_part="eval", lobster_windows="tiled",
    train_fraction=0.6,
    lobster_tick=100, lobster_lot=100,
)  # fmt: skip


def test_every_field_differs_from_its_default():
    default = MarketMakingConfig()
    same = [f.name for f in dataclasses.fields(default)
            if getattr(default, f.name) == getattr(EVERY_FIELD_CHANGED, f.name)]  # fmt: skip
    assert same == []
    assert all(a != b for a, b in zip(default.flow, EVERY_FIELD_CHANGED.flow, strict=True))


@pytest.mark.parametrize("config", [MarketMakingConfig(), EVERY_FIELD_CHANGED])
def test_a_market_file_round_trips_every_field(config):
    text = config.to_json()
    assert MarketMakingConfig.from_json(text) == config
    plain = json.loads(text)  # strict JSON: no NaN or Infinity tokens
    assert plain["flow"]["hawkes_beta"] == config.flow.hawkes_beta
    assert set(plain) == {f.name for f in dataclasses.fields(MarketMakingConfig)}


def test_an_infinite_drawdown_is_written_as_text():
    text = MarketMakingConfig().to_json()
    assert json.loads(text)["max_drawdown"] == "inf"
    assert math.isinf(MarketMakingConfig.from_json(text).max_drawdown)


def test_a_hand_written_market_takes_defaults_for_what_it_omits():
    config = MarketMakingConfig.from_json('{"latency": 0.2, "flow": {"informed_tilt": 0}}')
    assert config == MarketMakingConfig().replace(latency=0.2, flow={"informed_tilt": 0.0})


@pytest.mark.parametrize(
    ("text", "error", "words"),
    [
        ('{"latncy": 0.2}', TypeError, "config has no field latncy"),
        ('{"flow": {"size": 2}}', TypeError, "config.flow has no field size"),
        ('{"episode_steps": "10"}', TypeError, "config.episode_steps must be an integer"),
        ('{"terminate_on_max_inventory": 1}', TypeError, "config.terminate_on_max_inventory"),
        ('{"limit_rates": [1, "x"]}', TypeError, r"config.limit_rates\[1\]"),
        ('{"latency": 2.0}', ValueError, "config.latency"),
        ('{"reward": {"inventory_penalty": -1}}', ValueError, "config.reward.inventory_penalty"),
        ("[1, 2]", TypeError, "config must be an object"),
        ("{not json", ValueError, "market config: not valid JSON"),
    ],
)
def test_a_bad_market_file_names_the_field(text, error, words):
    with pytest.raises(error, match=words):
        MarketMakingConfig.from_json(text)


def test_a_spelling_of_infinity_other_than_inf_is_named_with_the_one_to_use():
    with pytest.raises(TypeError, match=r'config.flow.anchor_width must be a number .*"inf"'):
        MarketMakingConfig.from_json('{"flow": {"anchor_width": "Infinity"}}')


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"reward": RewardConfig(mark=np.array(["mid"]))}, "config.reward.mark"),
        ({"reward": RewardConfig(mark=np.array(["mid", "liquidation"]))}, "config.reward.mark"),
        ({"lobster_windows": np.array(["tiled"])}, "config.lobster_windows"),
        ({"lobster_part": np.array(["eval"])}, "config.lobster_part"),
    ],
)
def test_a_choice_given_as_an_array_is_refused_not_compared_element_by_element(changes, field):
    # an array passed `in ("mid", "liquidation")` as array(['mid']) == 'mid' -> truthy, and the
    # kernel's parameters then held an array
    with pytest.raises(ValueError, match=field):
        check_config(dataclasses.replace(MarketMakingConfig(), **changes))


def test_a_bad_market_file_on_the_command_line_is_one_line_naming_file_and_field(tmp_path, capsys):
    market = tmp_path / "market.json"
    market.write_text('{"latency": 5.0}')
    assert main(["eval", "--env-config", str(market)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(market) in err and "config.latency" in err


TRAIN = ["train", "--algo", "ppo", "--num-envs", "4", "--total-steps", "32", "--num-steps", "8",
         "--hidden-size", "8", "--update-epochs", "1", "--num-minibatches", "1",
         "--no-progress"]  # fmt: skip


@pytest.fixture
def envs_built(monkeypatch):
    """The configs of the envs the training and the evaluation build, in order."""
    built = []

    class Recorded(MarketMakingVectorEnv):
        def __init__(self, num_envs=1, config=None, seed=0, device=None, market=None):
            built.append(config)
            super().__init__(num_envs, config=config, seed=seed, device=device, market=market)

    monkeypatch.setattr(fastlob_agents.ppo, "MarketMakingVectorEnv", Recorded)
    monkeypatch.setattr(fastlob_agents.evaluate, "MarketMakingVectorEnv", Recorded)
    return built


def test_train_flags_reach_the_market_the_run_keeps_and_eval_plays(tmp_path, envs_built, capsys):
    argv = [*TRAIN, "--runs-dir", str(tmp_path), "--run-name", "run", "--env.latency", "0.2",
            "--env.flow.informed-tilt", "0", "--env.reward.target-penalty", "0.01",
            "--env.episode-steps", "8", "--env.warmup", "1"]  # fmt: skip
    assert main(argv) == 0
    wanted = MarketMakingConfig(
        episode_steps=8, latency=0.2, warmup=1.0, reward=RewardConfig(target_penalty=0.01)
    ).replace(flow={"informed_tilt": 0.0})
    assert envs_built[0] == wanted  # the training's env
    run = tmp_path / "run"
    assert json.loads((run / "config.json").read_text())["env"]["latency"] == 0.2
    assert run_config(run) == wanted
    envs_built.clear()
    assert main(["eval", str(run), "--episodes", "2", "--tuning-episodes", "2", "--json"]) == 0
    assert envs_built and all(c == wanted for c in envs_built)  # every env of the evaluation
    capsys.readouterr()


def test_a_market_file_sets_the_training_and_flags_change_it_further(tmp_path, envs_built):
    market = tmp_path / "market.json"
    base = EVERY_FIELD_CHANGED.replace(episode_steps=8, max_drawdown=math.inf, lobster=())
    market.write_text(base.to_json())
    argv = [*TRAIN, "--runs-dir", str(tmp_path), "--run-name", "run",
            "--env-config", str(market), "--env.dt", "0.25", "--env.latency", "0.05"]  # fmt: skip
    assert main(argv) == 0
    wanted = base.replace(dt=0.25, latency=0.05)
    assert envs_built[0] == wanted and run_config(tmp_path / "run") == wanted


def test_eval_plays_another_market_when_told(tmp_path, envs_built, capsys):
    assert main([*TRAIN, "--runs-dir", str(tmp_path), "--run-name", "run",
                 "--env.episode-steps", "8"]) == 0  # fmt: skip
    other = MarketMakingConfig(episode_steps=6, latency=0.3, warmup=1.0)
    market = tmp_path / "other.json"
    market.write_text(other.to_json())
    envs_built.clear()
    argv = ["eval", str(tmp_path / "run"), "--episodes", "2", "--tuning-episodes", "2", "--json",
            "--env-config", str(market)]  # fmt: skip
    assert main(argv) == 0
    played = [c for c in envs_built if c != run_config(tmp_path / "run")]
    assert played and all(c == other for c in played)
    capsys.readouterr()


def test_train_on_historical_flow_and_eval_on_its_held_out_hours(tmp_path, envs_built, capsys):
    from fastlob.data.lobster import write_day
    from fastlob.data.simulated import simulate_day

    day = simulate_day(MarketMakingConfig(flow_levels=5), 120.0, seed=1, levels=5, warmup=5.0)
    files = [str(f) for f in write_day(day, tmp_path / "data")]
    argv = [*TRAIN, "--runs-dir", str(tmp_path), "--run-name", "run", "--lobster", *files,
            "--env.episode-steps", "8", "--env.lobster-lot", "100"]  # fmt: skip
    assert main(argv) == 0
    trained = run_config(tmp_path / "run")
    assert trained.lobster == tuple(files) and trained.lobster_part == "train"
    assert envs_built[0] == trained
    envs_built.clear()
    assert main(["eval", str(tmp_path / "run"), "--episodes", "2", "--tuning-episodes", "2"]) == 0
    played = {c.lobster_part for c in envs_built}
    assert played == {"train", "eval"}  # the policy's shapes and the tuning; the held-out play
    assert capsys.readouterr().err == ""
    # asked for more episodes than the held-out 30 s hold (3 windows of 8 s): it says so
    assert main(["eval", str(tmp_path / "run"), "--episodes", "50", "--tuning-episodes", "2"]) == 0
    err = capsys.readouterr().err
    assert "3 held-out episodes played, not 50" in err and err.count("\n") == 1
