"""Trust, round two: the newer surfaces (market files, study files, the env's boundary) refuse
bad input with one line naming it, in bounded time, before anything changes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from support import no_hang, one_line_error

from fastlob import MarketMakingConfig, MarketMakingEnv, MarketMakingVectorEnv
from fastlob._kernels import mm_drivers
from fastlob.cli import main

SHORT = MarketMakingConfig(episode_steps=6, warmup=1.0)


# ---------------------------------------------------------------------------------------------
# actions of any real dtype reach the one compiled kernel version
# ---------------------------------------------------------------------------------------------


def _steps(actions, rounds=4):
    env = MarketMakingVectorEnv(3, config=SHORT, seed=2)
    env.reset(seed=2)
    out = []
    for _ in range(rounds):
        obs, reward, *_ = env.step(actions)
        out.append((obs.copy(), reward.copy(), env.applied_actions.copy()))
    return out, env.action_clip_count.copy()


def test_float64_int_and_list_actions_play_as_float32_without_a_second_kernel_version():
    float32 = np.tile(np.float32([1.5, 2.0, 2, 1, 0.25]), (3, 1))
    expected, clips = _steps(float32)
    compiled = len(mm_drivers.step_envs.signatures)
    for same in (float32.astype(np.float64), float32.tolist(), float32.astype(np.float16)):
        got, _ = _steps(same)
        for (o1, r1, a1), (o2, r2, a2) in zip(expected, got, strict=True):
            np.testing.assert_array_equal(o1, o2)
            np.testing.assert_array_equal(r1, r2)
            np.testing.assert_array_equal(a1, a2)
    ints = np.tile(np.int64([1, 2, 2, 1, 0]), (3, 1))
    np.testing.assert_array_equal(_steps(ints)[0][0][2], ints.astype(np.float32))
    assert len(mm_drivers.step_envs.signatures) == compiled  # no float64 version compiled
    # a float64 beyond float32's range is clipped and counted like any other, not made inf
    huge = np.tile(np.float64([1e300, -1e300, 1, 1, 0]), (3, 1))
    got, huge_clips = _steps(huge, rounds=1)
    high = MarketMakingVectorEnv(1, config=SHORT).single_action_space.high
    np.testing.assert_array_equal(got[0][2][:, 0], high[0])
    assert (huge_clips > clips).all()
    single = MarketMakingEnv(SHORT)
    single.reset(seed=1)
    single.step([1.0, 1.0, 1, 1, 0])  # a plain list of floats
    assert len(mm_drivers.step_envs.signatures) == compiled


def test_non_finite_float64_actions_are_still_refused_naming_the_entry():
    env = MarketMakingVectorEnv(2, config=SHORT)
    env.reset()
    actions = np.ones((2, 5))
    actions[1, 3] = np.inf
    with pytest.raises(ValueError, match=r"actions\[1, 3\] is inf"):
        env.step(actions)


# ---------------------------------------------------------------------------------------------
# rates that would make a step endless
# ---------------------------------------------------------------------------------------------


def _market_file(tmp_path, **fields):
    path = tmp_path / "market.json"
    path.write_text(json.dumps(fields))
    return path


@pytest.mark.parametrize("field", ["limit_rates", "cancel_rates"])
def test_a_huge_per_level_rate_is_refused_by_simulate_naming_the_field(tmp_path, capsys, field):
    rates = [1.0] * 10
    rates[0] = 1e18
    path = _market_file(tmp_path, **{field: rates})
    out = tmp_path / "day"
    with no_hang(30):
        code = main(["simulate", "--env-config", str(path), "--seconds", "10", "--lobster-out",
                     str(out)])  # fmt: skip
    assert code == 2
    one_line_error(capsys, f"config.{field}", "1e+06")
    assert not out.exists()
    with pytest.raises(ValueError, match=f"config.{field}"):
        MarketMakingConfig.from_file(path)


def test_rates_each_in_range_but_endless_together_are_refused_naming_the_span():
    config = MarketMakingConfig(limit_rates=(1e6,) * 10, dt=100.0, warmup=1.0)
    with pytest.raises(ValueError, match=r"config\.dt = 100 s .* more than the 1e\+08"):
        MarketMakingVectorEnv(1, config=config)
    config = MarketMakingConfig(cancel_rates=(1e4,) * 10, order_capacity=1 << 14, warmup=1e3)
    with pytest.raises(ValueError, match=r"config\.warmup = 1000 s"):
        MarketMakingVectorEnv(1, config=config)
    # the markets the project ships are far below the bound
    for market in Path(__file__).parent.parent.joinpath("markets").glob("*.json"):
        MarketMakingVectorEnv(1, config=MarketMakingConfig.from_file(market))


def test_a_simulated_day_too_long_for_its_rates_is_refused_naming_seconds(tmp_path, capsys):
    path = _market_file(tmp_path, limit_rates=[1e5] * 10)
    out = tmp_path / "day"
    with no_hang(30):
        code = main(["simulate", "--env-config", str(path), "--seconds", "1000", "--lobster-out",
                     str(out)])  # fmt: skip
    assert code == 2
    one_line_error(capsys, "seconds + warmup = 1000 s")
    assert not out.exists()


# ---------------------------------------------------------------------------------------------
# settings files: bounded reads, sizes checked before elements, no recursion tracebacks
# ---------------------------------------------------------------------------------------------


def test_a_market_file_that_is_a_device_or_a_folder_is_refused_unread(tmp_path, capsys):
    out = tmp_path / "day"
    for path in ("/dev/zero", str(tmp_path)):
        with no_hang(10):
            code = main(["simulate", "--env-config", path, "--seconds", "1", "--lobster-out",
                         str(out)])  # fmt: skip
        assert code == 2
        one_line_error(capsys, path, "not a regular file")
    assert not out.exists()


def test_a_market_file_too_large_or_too_long_is_refused_before_its_elements_are_read(tmp_path):
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"limit_rates": [1.0] * 1_000_000}))
    with no_hang(5), pytest.raises(ValueError, match=r"big\.json: \d+ bytes, more than the"):
        MarketMakingConfig.from_file(big)
    long = tmp_path / "long.json"
    long.write_text(json.dumps({"limit_rates": [1] * 200_000}))
    with no_hang(5), pytest.raises(ValueError, match=r"config\.limit_rates holds 200000"):
        MarketMakingConfig.from_file(long)


@pytest.mark.parametrize(
    "text", ["[" * 100_000 + "]" * 100_000, '{"flow": ' + '{"a": ' * 100_000 + "1" + "}" * 100_001]
)
def test_a_market_file_nested_too_deeply_is_one_named_error(tmp_path, capsys, text):
    path = tmp_path / "deep.json"
    path.write_text(text)
    assert main(["simulate", "--env-config", str(path), "--seconds", "1", "--lobster-out",
                 str(tmp_path / "day")]) == 2  # fmt: skip
    one_line_error(capsys, str(path), "nested too deeply")


def test_an_error_shows_a_cut_value_not_a_million_numbers(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"lobster": list(range(50_000))}))
    with pytest.raises((TypeError, ValueError)) as err:
        MarketMakingConfig.from_file(path)
    assert len(str(err.value)) < 400


# ---------------------------------------------------------------------------------------------
# study files
# ---------------------------------------------------------------------------------------------

STUDY = """
name = "{name}"
algorithms = ["ppo"]
seeds = [1, 2]
episodes = {episodes}
tuning_episodes = {tuning_episodes}
eval_seed = {eval_seed}
risk_aversion = {risk_aversion}
{extra}

[config]
num_envs = 4
num_steps = 8
total_steps = 64
hidden_size = 8
learning_rate = {learning_rate}
env = {{ episode_steps = 8, warmup = 1.0 }}

[grid]
{grid}
"""

GOOD = dict(
    name="s", episodes=4, tuning_episodes=2, eval_seed=7, risk_aversion=0.01, extra="",
    learning_rate=3e-4, grid='"env.latency" = [0.05, 0.2]',
)  # fmt: skip


def _study(tmp_path, **changes) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(STUDY.format(**(GOOD | changes)))
    return path


def _study_refused(tmp_path, capsys, *words, **changes):
    from fastlob_agents.cli import main as agents_main

    path = _study(tmp_path, **changes)
    before = sorted(p.name for p in tmp_path.iterdir())
    with no_hang(30):
        code = agents_main(["study", str(path), "--out", str(tmp_path / "out")])
    assert code == 2
    one_line_error(capsys, *words)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"learning_rate": "nan"}, ["learning_rate"]),
        ({"risk_aversion": "nan"}, ["risk_aversion"]),
        ({"risk_aversion": -1}, ["risk_aversion"]),
        ({"tuning_episodes": 1}, ["tuning_episodes"]),
        ({"eval_seed": -3}, ["eval_seed"]),
        ({"grid": 'market = ["/dev/zero"]'}, ["/dev/zero", "not a regular file"]),
        ({"grid": "x = [" + "[" * 5000 + "]" * 5000 + "]"}, ["nested too deeply"]),
        (
            {
                "grid": "\n".join(
                    f'"env.latency{i}" = [{", ".join(["0.1"] * 10)}]' for i in range(6)
                )
            },
            ["2000000 trials", "max_trials = 10000"],
        ),
        ({"extra": "max_trials = 0"}, ["max_trials must be an integer"]),
    ],
)
def test_a_bad_study_is_one_named_line_before_anything_runs(tmp_path, capsys, changes, words):
    _study_refused(tmp_path, capsys, *words, **changes)


def test_a_study_file_that_is_a_device_is_refused_unread(tmp_path, capsys):
    from fastlob_agents.cli import main as agents_main

    with no_hang(10):
        assert agents_main(["study", "/dev/zero", "--out", str(tmp_path)]) == 2
    one_line_error(capsys, "/dev/zero", "not a regular file")
    assert not any(tmp_path.iterdir())


def test_max_trials_raises_the_cap_when_the_user_means_it(tmp_path):
    from fastlob_agents.study import read_study

    grid = '"env.latency" = [0.01, 0.02, 0.03, 0.04, 0.05, 0.06]'
    study = read_study(_study(tmp_path, grid=grid, extra="max_trials = 12"))
    assert len(study.trials()) == 12
    with pytest.raises(ValueError, match=r"12 trials .* more than max_trials = 11"):
        read_study(_study(tmp_path, grid=grid, extra="max_trials = 11"))


def _finished(tmp_path, study, table=None):
    """The study's trials as if they had finished (a trial.json each)."""
    trials = tmp_path / "out" / study.name / "trials"
    for spec in study.trials():
        (trials / spec["id"]).mkdir(parents=True)
        saved = {"spec": spec, "table": table or {}, "baselines": {}, "seconds": 1.0}
        (trials / spec["id"] / "trial.json").write_text(json.dumps(saved))
    return trials


@pytest.mark.parametrize(
    "changes",
    [
        {"episodes": 6},
        {"tuning_episodes": 3},
        {"eval_seed": 8},
        {"risk_aversion": 0.02},
        {"learning_rate": 1e-3},
        {"grid": '"env.latency" = [0.05, 0.1]'},
    ],
)
def test_a_rerun_with_any_result_defining_setting_changed_is_refused_not_relabelled(
    tmp_path, capsys, changes
):
    from fastlob_agents.cli import main as agents_main
    from fastlob_agents.study import read_study

    trials = _finished(tmp_path, read_study(_study(tmp_path)))
    listing = {p: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    _study(tmp_path, **changes)
    assert agents_main(["study", str(tmp_path / "s.toml"), "--out", str(tmp_path / "out")]) == 2
    err = one_line_error(capsys, str(trials))
    evaluation = set(changes) <= {"episodes", "tuning_episodes", "eval_seed", "risk_aversion"}
    assert ("--reevaluate" in err) == evaluation
    assert {p: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()} == listing


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("[1, 2]", ["not a trial's result"]),
        ("{\n", ["not valid JSON"]),
        ('{"spec": 3}', ["not a trial's result"]),
    ],
)
def test_a_tampered_trial_json_is_named(tmp_path, capsys, content, words):
    from fastlob_agents.cli import main as agents_main
    from fastlob_agents.study import read_study

    trials = _finished(tmp_path, read_study(_study(tmp_path)))
    first = next(trials.iterdir()) / "trial.json"
    first.write_text(content)
    assert agents_main(["study", str(tmp_path / "s.toml"), "--out", str(tmp_path / "out")]) == 2
    one_line_error(capsys, str(first), *words)


# ---------------------------------------------------------------------------------------------
# refusals that leave no file behind
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("algo", "flag"),
    [("ppo", "--learning-rate"), ("sac", "--policy-lr"), ("dqn", "--learning-rate")],
)
def test_a_nan_hyperparameter_is_refused_before_the_run_folder_exists(tmp_path, capsys, algo, flag):
    from fastlob_agents.cli import main as agents_main

    argv = ["train", "--algo", algo, flag, "nan", "--runs-dir", str(tmp_path / "runs")]
    assert agents_main([*argv, "--total-steps", "64", "--num-envs", "4"]) == 2
    one_line_error(capsys, flag.removeprefix("--").replace("-", "_"), "finite")
    assert not (tmp_path / "runs").exists()


def test_calibrate_checks_its_output_before_the_fit(tmp_path, capsys):
    out = tmp_path / "missing" / "market.json"
    assert main(["calibrate", "no-messages.csv", "no-orderbook.csv", "--out", str(out)]) == 2
    one_line_error(capsys, "--out", "does not exist")
    assert main(["calibrate", "no-messages.csv", "no-orderbook.csv", "--out", str(tmp_path)]) == 2
    one_line_error(capsys, "--out", "a folder")
    assert not any(tmp_path.iterdir())


def test_report_checks_its_output_before_it_evaluates(tmp_path, capsys):
    from fastlob_agents.cli import main as agents_main

    runs = tmp_path / "runs"
    argv = ["train", "--algo", "ppo", "--runs-dir", str(runs), "--total-steps", "64"]
    assert agents_main([*argv, "--num-envs", "4", "--num-steps", "8", "--env.episode-steps",
                        "8", "--no-progress"]) == 0  # fmt: skip
    capsys.readouterr()
    run = runs / "ppo_1"
    before = sorted(p.name for p in run.iterdir())
    out = tmp_path / "missing" / "x.html"
    assert agents_main(["report", str(run), "--out", str(out)]) == 2
    one_line_error(capsys, "--out", "does not exist")
    assert sorted(p.name for p in run.iterdir()) == before  # no eval.json, no baselines.json


# ---------------------------------------------------------------------------------------------
# the smaller holes: errors that name the right thing
# ---------------------------------------------------------------------------------------------


def _crossed_pair(tmp_path):
    messages = tmp_path / "m.csv"
    orderbook = tmp_path / "o.csv"
    messages.write_text("34200.1,1,1,5,1000000,1\n34200.2,1,2,3,999900,-1\n")
    # the second row: a bid at 100.00 above an ask at 99.99
    orderbook.write_text("1000100,2,1000000,5\n999900,3,1000000,5\n")
    return messages, orderbook


def test_a_crossed_orderbook_row_is_named_by_the_historical_market_and_calibrate(tmp_path, capsys):
    from fastlob.historical import HistoricalMarket

    messages, orderbook = _crossed_pair(tmp_path)
    with pytest.raises(ValueError, match=r"o\.csv.*line 2.*bid_price_1.*crossed book"):
        HistoricalMarket(messages, orderbook)
    out = tmp_path / "market.json"
    assert main(["calibrate", str(messages), str(orderbook), "--out", str(out)]) == 2
    one_line_error(capsys, "o.csv", "line 2", "crossed book")
    assert not out.exists()


def test_a_historical_market_names_a_path_that_is_not_one():
    from fastlob.historical import HistoricalMarket

    with pytest.raises(TypeError, match="message_csv must be a path"):
        HistoricalMarket(123, "o.csv")
    with pytest.raises(TypeError, match="orderbook_csv must be a path"):
        HistoricalMarket("m.csv", None)


def test_as2008_names_paths_not_num_envs(capsys):
    from fastlob_agents.cli import main as agents_main

    assert agents_main(["as2008", "--paths", "1000000000000"]) == 2
    one_line_error(capsys, "paths must be in", "1000000000000")


def test_a_raw_pickle_checkpoint_is_one_line_without_torchs_warning_or_advice(tmp_path, capsys):
    import pickle

    from fastlob_agents.cli import main as agents_main

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text('{"algo": "ppo", "env": {}}')
    marker = tmp_path / "owned"
    payload = {"format": 2, "x": print}  # a global a raw pickle would resolve
    (run / "checkpoint.pt").write_bytes(pickle.dumps(payload, protocol=4))
    assert agents_main(["eval", str(run), "--episodes", "2", "--tuning-episodes", "2"]) == 2
    err = one_line_error(capsys, str(run / "checkpoint.pt"), "refused", "raw pickle")
    assert "weights_only" not in err and not marker.exists()


def test_realism_on_a_one_message_day_names_the_data_not_seconds(tmp_path, capsys):
    messages, orderbook = tmp_path / "m.csv", tmp_path / "o.csv"
    messages.write_text("34200.1,1,1,5,1000000,1\n")
    orderbook.write_text("1000100,2,1000000,5\n")
    market = tmp_path / "market.json"
    market.write_text("{}")
    assert main(["realism", str(market), str(messages), str(orderbook),
                 "--out", str(tmp_path / "r.html")]) == 2  # fmt: skip
    one_line_error(capsys, "spans 0 s", "1 message(s)")
    assert not (tmp_path / "r.html").exists()


def test_realism_caps_its_runs_with_a_named_limit():
    from fastlob.realism import MAX_RUNS, realism

    with no_hang(10), pytest.raises(ValueError, match=rf"runs must be in \[1, {MAX_RUNS}\]"):
        realism(MarketMakingConfig(), None, runs=1_000_000_000)


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--num-envs", "1e9"], ["--num-envs", "1e9"]),
        (["--gamma", "x"], ["--gamma"]),
        (["--nosuch", "3"], ["Unrecognized options", "--nosuch"]),
    ],
)
def test_a_flag_the_config_parser_refuses_is_one_line_and_writes_no_run(
    tmp_path, capsys, flags, words
):
    from fastlob_agents.cli import main as agents_main

    argv = ["train", "--algo", "ppo", "--runs-dir", str(tmp_path / "runs"), *flags]
    assert agents_main(argv) == 2
    one_line_error(capsys, "fastlob train: error:", *words)
    assert not (tmp_path / "runs").exists()


def test_eval_on_another_market_leaves_the_runs_files_and_its_report_works(tmp_path, capsys):
    from fastlob_agents.cli import main as agents_main

    runs = tmp_path / "runs"
    argv = ["train", "--algo", "ppo", "--runs-dir", str(runs), "--total-steps", "64",
            "--num-envs", "4", "--num-steps", "8", "--env.episode-steps", "8",
            "--no-progress"]  # fmt: skip
    assert agents_main(argv) == 0
    run = runs / "ppo_1"
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"episode_steps": 8, "max_quote_size": 3}))
    capsys.readouterr()
    evaluation = ["eval", str(run), "--episodes", "2", "--tuning-episodes", "2"]
    assert agents_main([*evaluation, "--env-config", str(other)]) == 0
    assert "trained on another market" in capsys.readouterr().err
    assert not (run / "eval.json").exists() and not (run / "baselines.json").exists()
    assert agents_main(evaluation) == 0  # its own market: the files are written
    assert (run / "eval.json").exists() and (run / "baselines.json").exists()
