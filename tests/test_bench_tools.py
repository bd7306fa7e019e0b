"""The benchmark suite as its users run it: ``pytest --benchmark-only`` from the root runs the
benchmarks and only them, plain ``pytest`` runs each once and times nothing; saved runs read
back, draw as a history, and the guard compares two trees interleaved."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fastlob import benchmarks as B

ROOT = Path(__file__).resolve().parents[1]


def bench_json(path: Path, values: dict[str, float], commit: str = "abc", when: str = "") -> Path:
    """A pytest-benchmark JSON file with one benchmark per ``values`` entry (its ratio)."""
    path.write_text(
        json.dumps(
            {
                "datetime": when,
                "commit_info": {"id": commit, "dirty": False},
                "benchmarks": [
                    {
                        "name": name,
                        "fullname": f"bench/test_x.py::{name}",
                        "stats": {"median": 0.5},
                        "extra_info": {"ratio": value, "env_steps_per_s": 1000 * value},
                    }
                    for name, value in values.items()
                ],
            }
        )
    )
    return path


def test_measures_take_the_ratio_and_fall_back_to_the_median(tmp_path):
    path = bench_json(tmp_path / "a.json", {"x": 3.0})
    data = json.loads(path.read_text())
    data["benchmarks"].append({"name": "y", "stats": {"median": 0.25}, "extra_info": {}})
    path.write_text(json.dumps(data))
    got = B.measures(path)
    assert got["bench/test_x.py::x"].kind == "ratio" and got["bench/test_x.py::x"].value == 3.0
    assert got["bench/test_x.py::x"].rate == 3000.0
    assert got["y"].kind == "1/s" and got["y"].value == 4.0


def test_the_verdict_needs_every_run_of_one_tree_below_every_run_of_the_other():
    slower = B.Comparison("a", "ratio", (1.0, 1.1, 0.9), (1.3, 1.2, 1.4), (1,), (1,))
    same = B.Comparison("b", "ratio", (1.0, 1.3, 0.9), (1.2, 1.25, 1.4), (1,), (1,))
    faster = B.Comparison("c", "ratio", (2.0, 2.1, 2.2), (1.2, 1.25, 1.4), (1,), (1,))
    assert slower.slower and not slower.faster and slower.change == pytest.approx(1.0 / 1.3 - 1)
    assert not same.slower and not same.faster
    assert faster.faster and not faster.slower
    table = B.format_comparisons([slower, same, faster], "HEAD~1")
    assert "SLOWER" in table and "same within noise" in table and "faster" in table


def test_the_guard_alternates_the_trees_and_removes_its_worktree(tmp_path, monkeypatch):
    calls = []

    def fake_suite(tree, out, select, lobster_dir):
        current = Path(tree) == ROOT
        calls.append("this" if current else "base")
        bench_json(Path(out), {"x": 1.0 if current else 2.0})

    monkeypatch.setattr(B, "_run_suite", fake_suite)
    rows = B.guard("HEAD", rounds=3, select="x", repo=ROOT, progress=lambda text: None)
    assert calls == ["this", "base", "base", "this", "this", "base"]
    assert len(rows) == 1 and rows[0].slower and rows[0].change == pytest.approx(-0.5)
    listed = subprocess.run(
        ["git", "worktree", "list"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "fastlob-guard-" not in listed


def test_the_history_page_draws_every_saved_run(tmp_path):
    saved = tmp_path / ".benchmarks" / "Linux-CPython-3.11-64bit"
    saved.mkdir(parents=True)
    bench_json(saved / "0001_first.json", {"x": 1.0, "y": 2.0}, "1111111111aa", "2026-12-01T10")
    bench_json(saved / "0002_second.json", {"x": 1.5, "y": 2.5}, "2222222222bb", "2026-12-02T10")
    runs = B.saved_runs(tmp_path / ".benchmarks")
    assert [r.commit for r in runs] == ["1111111111", "2222222222"]
    page = B.write_history(tmp_path / ".benchmarks", tmp_path / "history.html")
    text = page.read_text()
    assert "1111111111" in text and "2222222222" in text and "Plotly.newPlot" in text
    assert len(B.history_figure(runs).data) == 4  # throughput and ratio of x and y
    with pytest.raises(ValueError, match="no saved benchmark runs"):
        B.saved_runs(tmp_path / "empty")


def run_pytest(tmp_path, *args) -> dict:
    """pytest from the repository root in a subprocess; returns its benchmark JSON."""
    out = tmp_path / f"run{len(list(tmp_path.iterdir()))}.json"
    env = dict(os.environ, FASTLOB_BENCH_NO_AUTOSAVE="1")
    env.pop("FASTLOB_BENCH_SMOKE", None)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         f"--benchmark-json={out}", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:]
    return json.loads(out.read_text()) if out.exists() else {"benchmarks": []}


@pytest.mark.slow
def test_benchmark_only_from_the_root_times_the_benchmarks_and_plain_pytest_times_none(tmp_path):
    timed = run_pytest(tmp_path, "--benchmark-only", "-k", "as_env or test_readme_is")
    names = [b["name"] for b in timed["benchmarks"]]
    assert names == ["test_as_env_4096"]  # the test selected beside it did not run as one
    assert timed["benchmarks"][0]["extra_info"]["env_steps_per_s"] > 0
    smoke = run_pytest(tmp_path, "-k", "as_env or test_readme_is")
    assert smoke["benchmarks"] == []  # ran once, timed nothing
