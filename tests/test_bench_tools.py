"""The benchmark suite as its users run it: ``pytest --benchmark-only`` from the root runs the
benchmarks and only them, plain ``pytest`` runs each once and times nothing; saved runs read
back, draw as a history, and the guard compares two trees interleaved."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from fastlob import benchmarks as B
from fastlob.cli import main

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
    monkeypatch.setattr(B, "_collect", lambda tree, select: None)
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


# ---------------------------------------------------------------------------------------------
# bad input: one line on stderr, exit code 2, every file as it was
# ---------------------------------------------------------------------------------------------


def git(*args, cwd) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false", *args],
        cwd=cwd, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip


def git_repo(path: Path, bench: str = "def test_nothing():\n    pass\n") -> Path:
    """A git repository with one commit holding ``bench/test_b.py``."""
    (path / "bench").mkdir(parents=True)
    (path / "bench" / "test_b.py").write_text(bench)
    git("init", "-q", cwd=path)
    git("add", ".", cwd=path)
    git("commit", "-q", "-m", "first", cwd=path)
    return path


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (git's own included) and its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def refused(capsys, argv, *named) -> str:
    """Run the command line; check it refused with exit code 2 and one line naming ``named``."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert all(text in err for text in named), err
    return err


@pytest.fixture
def no_debug(monkeypatch):
    monkeypatch.delenv("FASTLOB_DEBUG", raising=False)


@pytest.mark.parametrize(
    "rev",
    ["--upload-pack=touch pwned", "HEAD; touch pwned", "0123456789abcdef0123456789abcdef01234567",
     "-- --all", "HEAD^{tree}", ""],
)  # fmt: skip
def test_a_revision_that_is_not_a_commit_is_refused_before_git_reads_it(
    tmp_path, monkeypatch, capsys, no_debug, rev
):
    repo = git_repo(tmp_path / "repo")
    before = snapshot(repo)
    monkeypatch.chdir(repo)
    refused(capsys, ["bench-guard", rev], f"REV {rev!r}")
    assert snapshot(repo) == before and not (tmp_path / "pwned").exists()


def test_the_guard_outside_a_git_repository_is_refused(tmp_path, monkeypatch, capsys, no_debug):
    plain = tmp_path / "plain"
    plain.mkdir()
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # no repository above it
    monkeypatch.chdir(plain)
    refused(capsys, ["bench-guard", "HEAD"], str(plain), "not in a git repository")


@pytest.mark.parametrize(
    ("select", "says"), [("no_such_benchmark_zzz", "no benchmark matched"), ("and", "not a pytest")]
)
def test_a_selection_that_picks_no_benchmark_is_refused(
    monkeypatch, capsys, no_debug, select, says
):
    monkeypatch.chdir(ROOT)
    before = git("worktree", "list", cwd=ROOT)
    refused(capsys, ["bench-guard", "HEAD", "-k", select], f"-k {select!r}", says)
    assert git("worktree", "list", cwd=ROOT) == before


def test_a_skipped_benchmark_is_named_not_reported_as_a_missing_file(
    tmp_path, monkeypatch, capsys, no_debug
):
    skipper = "import pytest\n\ndef test_skipper(benchmark):\n    pytest.skip('no data here')\n"
    repo = git_repo(tmp_path / "repo", skipper)
    monkeypatch.chdir(repo)
    code = main(["bench-guard", "HEAD", "--rounds", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    assert "no benchmark ran, skipped: test_skipper (no data here)" in err.splitlines()[-1], err
    assert "0.json" not in err
    assert len(git("worktree", "list", cwd=repo).splitlines()) == 1


def test_sigterm_raises_system_exit_inside_the_block_and_the_old_handler_comes_back():
    before = signal.getsignal(signal.SIGTERM)
    if before == signal.SIG_IGN:
        pytest.skip("SIGTERM is ignored here, so the guard keeps it ignored")
    with pytest.raises(SystemExit) as stopped, B._sigterm_exits():
        signal.raise_signal(signal.SIGTERM)
        time.sleep(5)  # the handler runs before this ends
    assert stopped.value.code == 128 + signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) == before


def test_a_guard_killed_by_sigterm_removes_its_worktree_and_temp_folder(tmp_path):
    repo = git_repo(tmp_path / "repo")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    script = textwrap.dedent("""
        import signal, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # as a shell starts it, whatever ours is
        from fastlob import benchmarks as B
        from fastlob.cli import main
        B._collect = lambda tree, select: None
        B._run_suite = lambda *args: time.sleep(120)
        sys.exit(main(["bench-guard", "HEAD"]))
    """)
    env = dict(os.environ, TMPDIR=str(scratch), PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=repo, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while "round 1/3" not in (proc.stderr.readline() or "") and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read()
        assert len(git("worktree", "list", cwd=repo).splitlines()) == 2  # the base tree is up
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM and "Traceback" not in err, err
    assert len(git("worktree", "list", cwd=repo).splitlines()) == 1
    assert list(scratch.iterdir()) == []


def test_bench_history_names_every_file_that_is_not_a_saved_run(
    tmp_path, monkeypatch, capsys, no_debug
):
    saved = tmp_path / ".benchmarks"
    saved.mkdir()
    bench_json(saved / "0001_good.json", {"x": 1.0})
    (saved / "0002_list.json").write_text("[1, 2]")
    (saved / "0003_corrupt.json").write_text('{"benchmarks": [')
    (saved / "0004_nobench.json").write_text('{"datetime": "2026"}')
    out = tmp_path / "history.html"
    before = snapshot(tmp_path)
    err = refused(
        capsys, ["bench-history", "--dir", str(saved), "--out", str(out)],
        "0002_list.json", "0003_corrupt.json", "0004_nobench.json",
        "a JSON object with 'benchmarks'",
    )  # fmt: skip
    assert "0001_good.json" not in err and "found list" in err
    assert snapshot(tmp_path) == before  # no page, no leftover .tmp


@pytest.mark.parametrize("which", ["dir", "out"])
def test_bench_history_refuses_a_missing_folder_or_a_folder_as_the_page(
    tmp_path, capsys, no_debug, which
):
    saved = tmp_path / ".benchmarks"
    saved.mkdir()
    bench_json(saved / "0001_good.json", {"x": 1.0})
    bad = tmp_path / ("missing" if which == "dir" else "folder")
    if which == "out":
        bad.mkdir()
    before = snapshot(tmp_path)
    args = ["--dir", str(bad), "--out", str(tmp_path / "h.html")] if which == "dir" else [
        "--dir", str(saved), "--out", str(bad)]  # fmt: skip
    refused(capsys, ["bench-history", *args], str(bad))
    assert snapshot(tmp_path) == before
