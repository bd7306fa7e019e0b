"""The benchmark suite's tools: read pytest-benchmark's JSON files, compare two trees interleaved
(the regression guard), and draw the saved runs as a history.

The suite itself lives in ``bench/`` (``pytest --benchmark-only`` from the repository root runs it).
Each benchmark reports its throughput and, where it has one, the ratio to a plain-Python
reference timed in the same run (``extra_info["ratio"]``): on a shared machine absolute times
drift with the neighbours' load, ratios much less, so the ratio decides.

The guard (``fastlob bench-guard REV``) checks a change to a hot path: it runs the selected
benchmarks of the working tree and of commit ``REV`` (in a temporary git worktree) in
alternation, ``rounds`` times each, and reports per benchmark both arms' median and range and the
change of the medians. A benchmark is flagged slower when every run of the working tree is
below every run of ``REV``: with three runs each, a chance of 1 in 20 if both trees are equally
fast (with four, 1 in 70).

Bad input (a revision that is not a commit, a ``-k`` that selects nothing, a saved run that is
not a pytest-benchmark file) raises ``ValueError`` naming it, before any file is touched; the
command line turns it into one line and exit code 2.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fastlob._checks import read_json_file, shown

#: the figure each benchmark is judged by, in order of preference (see the module docstring)
#: the largest saved benchmark run read, in bytes (a run of the whole suite holds ~100 KB)
MAX_BENCH_BYTES = 64 * 2**20
MEASURES = ("ratio", "env_steps_per_s", "messages_per_s", "steps_per_s")


@dataclass(frozen=True)
class Measure:
    """One benchmark's figure in one run: what it is (``ratio``, a rate, or ``1/s``) and its
    value (higher is better), and its raw throughput (the rate, else ``1/median``)."""

    name: str
    kind: str
    value: float
    rate: float


def _read_json(path: str | Path) -> dict:
    """A pytest-benchmark JSON file's content; ``ValueError`` naming the file otherwise."""
    what = "not a pytest-benchmark JSON file (a JSON object with 'benchmarks')"
    try:
        data = read_json_file(path, "pytest-benchmark JSON file", MAX_BENCH_BYTES)
    except ValueError as err:
        raise ValueError(f"{what}: {err}") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        found = type(data).__name__ if not isinstance(data, dict) else "an object without them"
        raise ValueError(f"{path}: {what}, found {found}")
    return data


def measures(path: str | Path, data: dict | None = None) -> dict[str, Measure]:
    """Every benchmark of a pytest-benchmark JSON file (its content ``data`` if already read),
    by its full name; ``ValueError`` naming the file when it is not one."""
    out = {}
    for bench in (_read_json(path) if data is None else data)["benchmarks"]:
        try:
            extra = bench.get("extra_info") or {}
            kind = next((k for k in MEASURES if isinstance(extra.get(k), (int, float))), None)
            value = float(extra[kind]) if kind else 1.0 / float(bench["stats"]["median"])
            rate_kind = next(
                (k for k in MEASURES[1:] if isinstance(extra.get(k), (int, float))), None
            )
            rate = float(extra[rate_kind]) if rate_kind else 1.0 / float(bench["stats"]["median"])
            name = bench.get("fullname") or bench["name"]
            if not isinstance(name, str) or not (math.isfinite(value) and math.isfinite(rate)):
                raise ValueError(f"name {shown(name)} (a string), value {value}, rate {rate}")
        except (
            AttributeError, KeyError, TypeError, ValueError, ZeroDivisionError, OverflowError
        ) as err:  # fmt: skip
            raise ValueError(
                f"{path}: not a pytest-benchmark JSON file (a benchmark without a name or "
                f"stats median: {type(err).__name__} {err})"
            ) from None
        out[name] = Measure(name, kind or "1/s", value, rate)
    return out


@dataclass(frozen=True)
class Comparison:
    """One benchmark in both arms of an interleaved run."""

    name: str
    kind: str
    current: tuple[float, ...]
    base: tuple[float, ...]
    current_rate: tuple[float, ...]
    base_rate: tuple[float, ...]

    @property
    def rate_change(self) -> float:
        """Relative change of the median throughputs (shown beside the ratio's)."""
        return float(np.median(self.current_rate) / np.median(self.base_rate) - 1.0)

    @property
    def change(self) -> float:
        """Relative change of the medians, current against base (negative: slower)."""
        return float(np.median(self.current) / np.median(self.base) - 1.0)

    @property
    def spread(self) -> float:
        """The larger of the two arms' range over its median: the noise this run measured."""
        return float(
            max((max(arm) - min(arm)) / np.median(arm) for arm in (self.current, self.base))
        )

    @property
    def slower(self) -> bool:
        """Every current run below every base run."""
        return max(self.current) < min(self.base)

    @property
    def faster(self) -> bool:
        return min(self.current) > max(self.base)


def compare(current: list[dict[str, Measure]], base: list[dict[str, Measure]]) -> list[Comparison]:
    """Pair the runs of two arms benchmark by benchmark (those present in every run)."""
    names = sorted(set.intersection(*(set(run) for run in current + base)))
    return [
        Comparison(
            name,
            current[0][name].kind,
            tuple(run[name].value for run in current),
            tuple(run[name].value for run in base),
            tuple(run[name].rate for run in current),
            tuple(run[name].rate for run in base),
        )
        for name in names
    ]


def format_comparisons(rows: list[Comparison], base_label: str) -> str:
    """A plain-text table: median [min, max] of each arm, the change and the verdict."""
    lines = [
        f"{'benchmark':<50} {'measure':>14} {'this tree':>28} {base_label[:28]:>28} "
        f"{'change':>8} {'noise':>6} {'rate chg':>8}  verdict"
    ]
    for row in rows:

        def cell(arm):
            return f"{np.median(arm):.4g} [{min(arm):.4g}, {max(arm):.4g}]"

        verdict = "SLOWER" if row.slower else "faster" if row.faster else "same within noise"
        short = row.name.split("::")[-1]
        lines.append(
            f"{short[:50]:<50} {row.kind:>14} {cell(row.current):>28} {cell(row.base):>28} "
            f"{row.change:>+8.1%} {row.spread:>6.1%} {row.rate_change:>+8.1%}  {verdict}"
        )
    return "\n".join(lines)


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def _commit(root: Path, rev: str) -> str:
    """The commit hash ``rev`` names in the repository at ``root``; ``ValueError`` naming it
    otherwise (checked before git sees it anywhere it reads options)."""
    if not rev or rev.startswith("-"):
        raise ValueError(f"REV {rev!r}: not a revision (a commit such as HEAD~1 or a hash, not "
                         f"starting with '-')")  # fmt: skip
    proc = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"],
        cwd=root, capture_output=True, text=True,
    )  # fmt: skip
    if proc.returncode != 0:
        raise ValueError(f"REV {rev!r}: not a commit of the repository at {root}")
    return proc.stdout.strip()


def _suite_env(tree: Path, lobster_dir: str | None) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(tree), FASTLOB_BENCH_NO_AUTOSAVE="1")
    if lobster_dir:
        env["FASTLOB_LOBSTER_DIR"] = lobster_dir
    return env


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no output"


def _collect(tree: Path, select: str | None) -> None:
    """Collect the benchmarks of ``tree`` that ``-k select`` picks, running none: ``ValueError``
    when there is no suite, the expression is malformed or it selects nothing."""
    if not (tree / "bench").is_dir():
        raise ValueError("no bench/ folder (the benchmark suite) in that tree")
    command = [sys.executable, "-m", "pytest", "bench", "-q", "-p", "no:cacheprovider",
               "--benchmark-only", "--collect-only"]  # fmt: skip
    if select:
        command += ["-k", select]
    proc = subprocess.run(
        command, cwd=tree, env=_suite_env(tree, None), capture_output=True, text=True
    )
    if proc.returncode == 5:
        raise ValueError(f"-k {select!r}: no benchmark matched the selection")
    if proc.returncode == 4 and select:
        raise ValueError(
            f"-k {select!r}: not a pytest -k expression ({_last_line(proc.stdout + proc.stderr)})"
        )
    if proc.returncode != 0:
        raise ValueError(f"the benchmarks cannot be collected: {_last_line(proc.stdout)}")


def _skipped(report: Path) -> list[str]:
    """The benchmarks a pytest JUnit XML report gives as skipped, ``name (reason)``, leaving
    out the plain tests ``--benchmark-only`` skips."""
    try:
        cases = ET.parse(report).getroot().iter("testcase")
    except (OSError, ET.ParseError):
        return []
    out = []
    for case in cases:
        skip = case.find("skipped")
        reason = "" if skip is None else skip.get("message", "")
        if skip is not None and not reason.startswith("Skipping non-benchmark"):
            out.append(f"{case.get('name')} ({reason})")
    return out


def _run_suite(tree: Path, out: Path, select: str | None, lobster_dir: str | None) -> list[str]:
    """The benchmarks of ``tree`` (its own ``fastlob`` first on the path) into ``out``; returns
    the skipped ones, ``ValueError`` naming them when none ran."""
    report = out.with_suffix(".xml")
    command = [sys.executable, "-m", "pytest", "bench", "-q", "-p", "no:cacheprovider",
               "--benchmark-only", f"--benchmark-json={out}", f"--junitxml={report}"]  # fmt: skip
    if select:
        command += ["-k", select]
    env = _suite_env(tree, lobster_dir)
    proc = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
    if proc.returncode == 5:
        raise ValueError(f"-k {select!r}: no benchmark matched the selection")
    if proc.returncode != 0:
        raise RuntimeError(f"the benchmarks of {tree} failed:\n{proc.stdout[-3000:]}")
    skipped = _skipped(report)
    if not out.is_file():  # pytest-benchmark writes no file when no benchmark ran
        raise ValueError(
            "no benchmark ran" + (f", skipped: {'; '.join(skipped)}" if skipped else "")
        )
    return skipped


@contextlib.contextmanager
def _sigterm_exits():
    """Within the block SIGTERM raises ``SystemExit(143)``, so ``finally`` clauses run; the
    previous handler comes back after it (none is installed off the main thread or where
    SIGTERM is ignored)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous == signal.SIG_IGN:
        yield
        return

    def handler(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not cut the cleanup
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def guard(
    against: str,
    rounds: int = 3,
    select: str | None = None,
    repo: str | Path = ".",
    progress=print,
) -> list[Comparison]:
    """Run the benchmarks of the working tree at ``repo`` and of commit ``against``
    interleaved, ``rounds`` times each (the order alternating), and compare them.

    Raises
    ------
    ValueError
        ``repo`` is not in a git repository, ``against`` is not one of its commits, a tree has
        no benchmark suite, ``select`` picks no benchmark or every selected one was skipped.
    """
    proc = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=Path(repo),
                          capture_output=True, text=True)  # fmt: skip
    if proc.returncode != 0:
        raise ValueError(f"{Path(repo).resolve()}: not in a git repository (the guard compares "
                         f"its working tree with one of its commits)")  # fmt: skip
    root = Path(proc.stdout.strip())
    commit = _commit(root, against)
    lobster = os.environ.get("FASTLOB_LOBSTER_DIR") or str(root.parent / "shared/data/lobster")
    try:
        _collect(root, select)
    except ValueError as err:
        raise ValueError(f"this tree: {err}") from None
    current: list[dict[str, Measure]] = []
    base: list[dict[str, Measure]] = []
    with _sigterm_exits(), tempfile.TemporaryDirectory(prefix="fastlob-guard-") as scratch:
        tree = Path(scratch) / "base"
        step = f"REV {against!r}"  # the tree the step under way works on, for its errors
        try:
            _git("worktree", "add", "--detach", str(tree), commit, cwd=root)
            _collect(tree, select)
            for r in range(rounds):
                arms = [("this tree", root, current), (against, tree, base)]
                for label, where, runs in arms if r % 2 == 0 else arms[::-1]:
                    step = "this tree" if where == root else f"REV {against!r}"
                    progress(f"round {r + 1}/{rounds}: {label}")
                    out = Path(scratch) / f"{len(current) + len(base)}.json"
                    for name in _run_suite(where, out, select, lobster) or ():
                        progress(f"skipped in {label}: {name}")
                    runs.append(measures(out))
        except ValueError as err:
            raise ValueError(f"{step}: {err}") from None
        finally:
            # check=False: a failed removal must not hide why the guard stopped
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=root,
                           capture_output=True)  # fmt: skip
    return compare(current, base)


# ---------------------------------------------------------------------------------------------
# history of saved runs
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SavedRun:
    """One saved pytest-benchmark run (``--benchmark-autosave`` keeps them in ``.benchmarks/``)."""

    path: Path
    datetime: str
    commit: str
    measures: dict[str, Measure]


def saved_runs(folder: str | Path = ".benchmarks") -> list[SavedRun]:
    """Every run saved under ``folder`` (any depth), oldest first.

    Raises
    ------
    ValueError
        ``folder`` is not a folder or holds no run, or some of its JSON files are not
        pytest-benchmark runs (each named, on one line).
    """
    if not Path(folder).is_dir():
        raise ValueError(
            f"{folder}: no saved benchmark runs, no such folder (pytest --benchmark-only "
            f"--benchmark-autosave saves them in .benchmarks/)"
        )
    runs, bad = [], []
    for path in sorted(Path(folder).rglob("*.json")):
        try:
            data = _read_json(path)
            found = measures(path, data)
        except (OSError, ValueError) as err:
            bad.append(str(err))
            continue
        commit_info = data.get("commit_info")
        commit_info = commit_info if isinstance(commit_info, dict) else {}
        commit = str(commit_info.get("id") or "unknown")[:10]
        if commit_info.get("dirty"):
            commit += "+"
        runs.append(SavedRun(path, str(data.get("datetime", "")), commit, found))
    if bad:
        raise ValueError("; ".join(bad))
    if not runs:
        raise ValueError(
            f"{folder}: no saved benchmark runs (pytest --benchmark-only --benchmark-autosave "
            f"saves them there)"
        )
    return sorted(runs, key=lambda run: run.datetime)


def history_figure(runs: list[SavedRun]):
    """Throughput (top) and the ratio to the in-run reference (bottom) of every benchmark
    across ``runs``, one line per benchmark, the runs along x labelled by commit and date."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    labels = [f"{run.commit}<br>{run.datetime[:16]}" for run in runs]
    names = sorted({name for run in runs for name in run.measures})
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        subplot_titles=("throughput (per second)", "ratio to the in-run reference"),
        vertical_spacing=0.08,
    )
    for name in names:
        short = name.split("::")[-1]
        present = [(i, run.measures[name]) for i, run in enumerate(runs) if name in run.measures]
        x = [labels[i] for i, _ in present]
        fig.add_trace(
            go.Scatter(
                x=x, y=[m.rate for _, m in present], name=short, legendgroup=short,
                mode="lines+markers",
            ),
            row=1, col=1,
        )  # fmt: skip
        ratios = [(labels[i], m.value) for i, m in present if m.kind == "ratio"]
        if ratios:
            fig.add_trace(
                go.Scatter(
                    x=[r[0] for r in ratios], y=[r[1] for r in ratios], name=short,
                    legendgroup=short, mode="lines+markers", showlegend=False,
                ),
                row=2, col=1,
            )  # fmt: skip
    fig.update_yaxes(type="log", row=1, col=1)
    fig.update_layout(height=900, title="fastlob benchmarks across saved runs")
    return fig


def write_history(folder: str | Path = ".benchmarks", out: str | Path = "bench-history.html"):
    """Write the history of the runs saved under ``folder`` as one self-contained HTML page
    (plotly.js inline); returns its path. Bad input (see `saved_runs`, an ``out`` that is a
    folder or in none) raises ``ValueError`` and writes nothing."""
    runs = saved_runs(folder)
    path = Path(out)
    if path.is_dir():
        raise ValueError(f"{out}: a folder, not a file to write the page to")
    if not path.parent.is_dir():
        raise ValueError(f"{out}: no folder {path.parent} to write the page in")
    fig = history_figure(runs)
    tmp = path.with_name(path.name + ".tmp")
    try:
        fig.write_html(tmp, include_plotlyjs=True, full_html=True)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # the page is written whole or not at all
        raise
    return path
