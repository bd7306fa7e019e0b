"""Studies on a local Ray cluster: a 2-point x 2-seed grid with tiny budgets and every output
checked, a rerun that skips every finished trial, a worker killed mid-trial and retried, and a
bad study file named before anything runs."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import threading
import time
from pathlib import Path

import polars as pl
import pytest

from fastlob_agents.cli import main
from fastlob_agents.evaluate import FAIR_METRICS, METRICS
from fastlob_agents.study import StudyError, read_study, run_study

ray = pytest.importorskip("ray", reason="ray is the study's extra: pip install 'fastlob[ray]'")

TINY = """
name = "{name}"
algorithms = ["ppo"]
seeds = {seeds}
episodes = 4
tuning_episodes = 2
eval_seed = 7

[config]
num_envs = 4
num_steps = 8
total_steps = {steps}
hidden_size = 8
update_epochs = 1
num_minibatches = 1
env = {{ episode_steps = 8, warmup = 1.0 }}

[grid]
{grid}
"""


def study_file(tmp_path, name, seeds="[1, 2]", steps=64, grid='"env.latency" = [0.05, 0.2]'):
    path = tmp_path / f"{name}.toml"
    path.write_text(TINY.format(name=name, seeds=seeds, steps=steps, grid=grid))
    return path


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def test_a_grid_over_seeds_runs_on_ray_and_a_rerun_skips_every_trial(tmp_path, local_ray, capsys):
    study = read_study(study_file(tmp_path, "grid"))
    result = run_study(study, out=tmp_path)
    assert not result.failed and len(result.finished) == 4 and not result.skipped
    folder = tmp_path / "grid"
    results = pl.read_parquet(folder / "results.parquet")
    agents = {"trained", "avellaneda_stoikov", "glft", "fixed_spread", "touch", "random"}
    # the default flow is informed: its fair value marks the inventory too
    metrics = (*METRICS, *FAIR_METRICS)
    assert set(results["agent"]) == agents and set(results["metric"]) == set(metrics)
    assert results.height == 4 * len(agents) * len(metrics)
    assert sorted(set(results["swept:env.latency"])) == [0.05, 0.2]
    assert set(results["seed"]) == {1, 2}
    summary = pl.read_parquet(folder / "summary.parquet")
    assert summary.height == 2 * len(agents) * len(metrics) and (summary["seeds"] == 2).all()
    assert (summary["seed_ci_low"] <= summary["seed_mean"]).all()
    assert (summary["seed_mean"] <= summary["seed_ci_high"]).all()
    verdicts = summary.filter(pl.col("beats_best_baseline").is_not_null())
    assert verdicts.height == 2 and set(verdicts["agent"]) == {"trained"}
    assert set(verdicts["beats_best_baseline"]) <= {
        "every seed",
        "most seeds",
        "on average only",
        "no",
    }
    # the seed-interval is the between-seed spread of the trials' means
    one = results.filter(
        (pl.col("agent") == "trained") & (pl.col("metric") == "pnl") & (pl.col("point") == 0)
    )
    row = summary.filter(
        (pl.col("agent") == "trained") & (pl.col("metric") == "pnl") & (pl.col("point") == 0)
    )
    assert row["seed_mean"][0] == pytest.approx(one["mean"].mean())
    assert "one point per seed" in (folder / "study.html").read_text()
    assert all(
        (folder / "trials" / t["spec"]["id"] / "trial.json").is_file() for t in result.finished
    )

    paired = verdicts["seeds_beating_paired"]
    assert all(n is not None and 0 <= n <= 2 for n in paired)

    again = run_study(read_study(study_file(tmp_path, "grid")), out=tmp_path)
    assert len(again.skipped) == 4 and not again.failed and len(again.finished) == 4
    assert again.seconds < result.seconds

    # evaluated again without training: a trial whose table lost a metric gets it back, and
    # the trained agent's numbers, from the same weights on the same episodes, are the same
    trial_file = folder / "trials" / result.finished[0]["spec"]["id"] / "trial.json"
    saved = json.loads(trial_file.read_text())
    del saved["table"]["ppo"]["utility_margin"]
    trial_file.write_text(json.dumps(saved))
    checkpoint = (trial_file.parent / "run" / "checkpoint.pt").stat().st_mtime_ns
    assert main(["study", str(study_file(tmp_path, "grid")), "--out", str(tmp_path),
                 "--reevaluate"]) == 0  # fmt: skip
    redone = json.loads(trial_file.read_text())
    assert (
        redone["table"]["ppo"]["utility_margin"]
        == result.finished[0]["table"]["ppo"]["utility_margin"]
    )
    assert redone["table"]["ppo"]["utility"] == result.finished[0]["table"]["ppo"]["utility"]
    assert redone["spec"] == saved["spec"] and redone["seconds"] == saved["seconds"]
    assert (trial_file.parent / "run" / "checkpoint.pt").stat().st_mtime_ns == checkpoint
    for trial in result.finished:  # every baseline as its own trial played it, random included
        path = folder / "trials" / trial["spec"]["id"] / "trial.json"
        assert json.loads(path.read_text())["table"]["random"] == trial["table"]["random"]
    assert pl.read_parquet(folder / "results.parquet").height == results.height

    # refused before anything changes: a run that cannot be opened, a trial.json that is not a
    # trial's, --address (nothing runs on a cluster), a study never run
    again_args = [
        "study",
        str(study_file(tmp_path, "grid")),
        "--out",
        str(tmp_path),
        "--reevaluate",
    ]
    before = {p: p.read_bytes() for p in folder.rglob("*.json")}
    checkpoint_file = (
        folder / "trials" / result.finished[-1]["spec"]["id"] / "run" / "checkpoint.pt"
    )
    good = checkpoint_file.read_bytes()
    checkpoint_file.write_bytes(b"garbage")
    assert main(again_args) == 2
    assert {p: p.read_bytes() for p in folder.rglob("*.json")} == before
    checkpoint_file.write_bytes(good)
    trial_file.write_text("[1, 2]")
    assert main(again_args) == 2
    assert "not a trial's result" in capsys.readouterr().err
    trial_file.write_text(json.dumps(redone))
    assert main([*again_args, "--address", "10.0.0.1:6379"]) == 2
    never = ["study", str(study_file(tmp_path, "never")), "--out", str(tmp_path), "--reevaluate"]
    assert main(never) == 2
    assert "no finished trial" in capsys.readouterr().err


def test_the_printout_of_a_one_seed_study_says_it_has_no_interval():
    # one seed has no between-seed interval: the printout failed on formatting a null
    from fastlob_agents.study import format_summary

    summary = pl.DataFrame(
        {"algorithm": ["ppo"], "point": [0], "agent": ["trained"], "metric": ["utility"],
         "seeds": [1], "seed_mean": [3.5], "seed_ci_low": [None], "seed_ci_high": [None],
         "beats_best_baseline": ["every seed"], "seeds_beating_paired": [1]},
        schema_overrides={"seed_ci_low": pl.Float64, "seed_ci_high": pl.Float64},
    )  # fmt: skip
    text = format_summary(summary)
    assert "3.500 [no interval: one seed] over 1 seeds every seed (1 clear of it" in text


def test_a_worker_killed_mid_trial_is_retried_and_the_study_finishes(tmp_path, local_ray):
    study = read_study(study_file(tmp_path, "killed", seeds="[3]", steps=4 * 8 * 200, grid=""))
    pid_file = tmp_path / "killed" / "trials" / "ppo_p000_seed3" / "worker.pid"
    killed = []

    def kill_first_worker():
        deadline = time.time() + 120
        while time.time() < deadline and not pid_file.exists():
            time.sleep(0.05)
        time.sleep(0.5)
        pid = int(pid_file.read_text())
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    killer = threading.Thread(target=kill_first_worker)
    killer.start()
    result = run_study(study, out=tmp_path)
    killer.join()
    assert killed and not result.failed and len(result.finished) == 1
    assert int(pid_file.read_text()) != killed[0]  # the retry ran in another worker


def test_a_failing_trial_is_reported_and_the_others_kept(tmp_path, local_ray):
    # a market whose episode does not fit in its data fails when the trial builds its env
    grid = '"env.lobster" = [[], ["missing_message.csv", "missing_orderbook.csv"]]'
    study = read_study(study_file(tmp_path, "failing", seeds="[1]", grid=grid))
    result = run_study(study, out=tmp_path)
    assert len(result.finished) == 1 and list(result.failed) == ["ppo_p001_seed1"]
    assert "cannot read" in result.failed["ppo_p001_seed1"]
    assert (tmp_path / "failing" / "failed.json").is_file()
    assert (tmp_path / "failing" / "results.parquet").is_file()


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("nme = 'x'", "unknown key nme"),
        ("algorithms = ['a2c']", "'a2c' is not one of"),
        ("seeds = [1, 1]", "seeds repeat"),
        ("[grid]\nlearning_rat = [0.1]", "grid has no field learning_rat"),
        ("[grid]\n'env.latncy' = [0.1]", "grid.env has no field latncy"),
        ("[config]\nseed = 3", "seed is set by the study"),
        ("[grid]\n'env.latency' = [5.0]", "grid.env.latency"),
        ("episodes = 'many'", "episodes must be"),
        ("name = ", "not TOML"),
        ("[grid]\ndiscrete_columns = [[9]]", "discrete_columns: 9 is not an action column"),
        ("[config]\ndiscrete_columns = [2, 2]", "discrete_columns lists column 2 twice"),
    ],
)
def test_a_bad_study_file_is_a_named_error_before_anything_runs(tmp_path, capsys, text, words):
    path = tmp_path / "bad.toml"
    path.write_text(text + "\n")
    with pytest.raises(StudyError, match=words):
        read_study(path)
    assert main(["study", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err
    assert not (tmp_path / "out").exists()


def test_the_documented_demo_study_is_a_valid_study():
    root = Path(__file__).resolve().parents[1]
    study = read_study(root / "studies" / "demo-seeds.toml")
    # seeds 1-5 chose the demo's budget: the table's are others, on another evaluation seed
    assert study.seeds == (6, 7, 8, 9, 10) and study.episodes == 256
    assert study.eval_seed != 123_456
    from fastlob_agents.demo import DEMO

    trial = study.trials()[0]["config"]
    for field in ("num_envs", "total_steps", "num_steps", "learning_rate", "update_epochs"):
        assert trial[field] == getattr(DEMO, field), field
    assert trial["env"] == {"episode_steps": 200, "reward": {"mark": "liquidation"}}
    assert (DEMO.env.episode_steps, DEMO.env.reward.mark) == (200, "liquidation")


def test_a_grid_over_market_files_sets_each_trials_env(tmp_path):
    from fastlob import MarketMakingConfig

    markets = tmp_path / "markets"
    markets.mkdir()
    (markets / "a.json").write_text(MarketMakingConfig(latency=0.1, max_offset=7.0).to_json())
    (markets / "b.json").write_text(MarketMakingConfig(latency=0.2, flow_levels=12).to_json())
    grid = 'market = ["markets/a.json", "markets/b.json"]'
    text = TINY.format(name="m", seeds="[1]", steps=64, grid=grid).replace(
        "env = { episode_steps = 8, warmup = 1.0 }",
        "env = { episode_steps = 8, warmup = 1.0, flow = { informed_tilt = 0.25 } }",
    )
    path = tmp_path / "m.toml"
    path.write_text(text)
    study = read_study(path)
    first, second = (spec["config"]["env"] for spec in study.trials())
    assert (first["latency"], first["max_offset"], second["latency"]) == (0.1, 7.0, 0.2)
    assert second["flow_levels"] == 12 and first["episode_steps"] == second["episode_steps"] == 8
    # the flow's named field is set, the file's other flow fields kept
    assert first["flow"]["informed_tilt"] == 0.25 and first["flow"]["fair_sigma"] == 0.5
    assert [spec["swept"] for spec in study.trials()] == [
        {"market": "markets/a.json"},
        {"market": "markets/b.json"},
    ]
    path.write_text(text.replace("markets/b.json", "markets/c.json"))
    with pytest.raises(StudyError, match=re.escape("grid.market 'markets/c.json'")):
        read_study(path)


def test_the_documented_market_studies_play_their_markets_post_only():
    root = Path(__file__).resolve().parents[1]
    prices = {"large-tick.toml": 2500, "small-tick.toml": 60000, "post-only.toml": 10000,
              "large-tick-discrete.toml": 2500, "post-only-discrete.toml": 10000,
              "post-only-categorical.toml": 10000}  # fmt: skip
    for name, price in prices.items():
        env = read_study(root / "studies" / name).trials()[0]["config"]["env"]
        assert env["post_only"] and env["initial_price"] == price, name
        assert env["reward"]["mark"] == "liquidation", name
    # the quoter's market: no informed flow, and anchored
    env = read_study(root / "studies" / "post-only.toml").trials()[0]["config"]["env"]
    assert env["flow"]["informed_tilt"] == 0.0 and math.isfinite(env["flow"]["anchor_width"])


#: the quoter's selection studies: the penalty and mark, then the budget, then the offset bound
POST_ONLY_SELECTION = ("post-only-penalty.toml", "post-only-budget.toml", "post-only-offset.toml")
#: each table's study file and the studies that chose what it trains with
SELECTED_BY = [
    (
        "post-only.toml",
        ("post-only-penalty.toml", "post-only-budget.toml", "post-only-offset.toml"),
    ),
    ("demo-seeds.toml", ("demo-mark.toml",)),
    ("large-tick.toml", ("large-tick-penalty.toml",)),
    ("post-only-discrete.toml", ("post-only-sizes.toml", "post-only-sizes-budget.toml")),
    ("large-tick-discrete.toml", ("large-tick-sizes.toml",)),
    ("post-only-categorical.toml", ("post-only-sizes-penalty.toml", "post-only-sizes-budget.toml")),
    ("small-tick.toml", ("small-tick-penalty.toml",)),
]


@pytest.mark.parametrize(("chosen_file", "sweep_files"), SELECTED_BY)
def test_a_tables_settings_were_chosen_on_other_seeds_and_other_episodes(chosen_file, sweep_files):
    """A published table's training seeds and held-out episodes are none of those its
    selection studies chose on, and what it trains with (every field of the agent and of its
    market) is a point of one of their grids."""
    root = Path(__file__).resolve().parents[1]
    chosen = read_study(root / "studies" / chosen_file)
    sweeps = [read_study(root / "studies" / name) for name in sweep_files]

    def settings(spec):
        return {k: v for k, v in spec["config"].items() if k != "seed"}

    for sweep in sweeps:
        assert not set(chosen.seeds) & set(sweep.seeds)
        assert sweep.eval_seed != chosen.eval_seed
    candidates = [settings(spec) for sweep in sweeps for spec in sweep.trials()]
    assert all(settings(spec) in candidates for spec in chosen.trials())


def test_every_study_file_in_the_repository_reads():
    root = Path(__file__).resolve().parents[1]
    files = sorted((root / "studies").glob("*.toml"))
    assert len(files) >= 10
    for path in files:
        assert read_study(path).trials(), path.name
