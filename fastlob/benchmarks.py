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
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: the figure each benchmark is judged by, in order of preference (see the module docstring)
MEASURES = ("ratio", "env_steps_per_s", "messages_per_s", "steps_per_s")


@dataclass(frozen=True)
class Measure:
    """One benchmark's figure in one run: what it is (``ratio``, a rate, or ``1/s``) and its
    value (higher is better), and its raw throughput (the rate, else ``1/median``)."""

    name: str
    kind: str
    value: float
    rate: float


def measures(path: str | Path) -> dict[str, Measure]:
    """Every benchmark of a pytest-benchmark JSON file, by its full name."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a pytest-benchmark JSON file ({err})") from None
    out = {}
    for bench in data.get("benchmarks", []) if isinstance(data, dict) else []:
        extra = bench.get("extra_info") or {}
        kind = next((k for k in MEASURES if isinstance(extra.get(k), (int, float))), None)
        value = float(extra[kind]) if kind else 1.0 / float(bench["stats"]["median"])
        rate_kind = next((k for k in MEASURES[1:] if isinstance(extra.get(k), (int, float))), None)
        rate = float(extra[rate_kind]) if rate_kind else 1.0 / float(bench["stats"]["median"])
        name = bench.get("fullname") or bench["name"]
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


def _run_suite(tree: Path, out: Path, select: str | None, lobster_dir: str | None) -> None:
    """The benchmarks of ``tree`` (its own ``fastlob`` first on the path) into ``out``."""
    env = dict(os.environ, PYTHONPATH=str(tree), FASTLOB_BENCH_NO_AUTOSAVE="1")
    if lobster_dir:
        env["FASTLOB_LOBSTER_DIR"] = lobster_dir
    command = [sys.executable, "-m", "pytest", "bench", "-q", "-p", "no:cacheprovider",
               "--benchmark-only", f"--benchmark-json={out}"]  # fmt: skip
    if select:
        command += ["-k", select]
    proc = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"the benchmarks of {tree} failed:\n{proc.stdout[-3000:]}")


def guard(
    against: str,
    rounds: int = 3,
    select: str | None = None,
    repo: str | Path = ".",
    progress=print,
) -> list[Comparison]:
    """Run the benchmarks of the working tree at ``repo`` and of commit ``against``
    interleaved, ``rounds`` times each (the order alternating), and compare them."""
    root = Path(_git("rev-parse", "--show-toplevel", cwd=Path(repo)))
    commit = _git("rev-parse", "--verify", f"{against}^{{commit}}", cwd=root)
    lobster = os.environ.get("FASTLOB_LOBSTER_DIR") or str(root.parent / "shared/data/lobster")
    current: list[dict[str, Measure]] = []
    base: list[dict[str, Measure]] = []
    with tempfile.TemporaryDirectory(prefix="fastlob-guard-") as scratch:
        tree = Path(scratch) / "base"
        _git("worktree", "add", "--detach", str(tree), commit, cwd=root)
        try:
            for r in range(rounds):
                arms = [("this tree", root, current), (against, tree, base)]
                for label, where, runs in arms if r % 2 == 0 else arms[::-1]:
                    progress(f"round {r + 1}/{rounds}: {label}")
                    out = Path(scratch) / f"{len(current) + len(base)}.json"
                    _run_suite(where, out, select, lobster)
                    runs.append(measures(out))
        finally:
            _git("worktree", "remove", "--force", str(tree), cwd=root)
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
    """Every run saved under ``folder`` (any depth), oldest first; ``ValueError`` naming the
    folder when it holds none."""
    runs = []
    for path in sorted(Path(folder).rglob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        commit_info = data.get("commit_info") or {}
        commit = str(commit_info.get("id") or "unknown")[:10]
        if commit_info.get("dirty"):
            commit += "+"
        runs.append(SavedRun(path, str(data.get("datetime", "")), commit, measures(path)))
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
    (plotly.js inline); returns its path."""
    fig = history_figure(saved_runs(folder))
    path = Path(out)
    tmp = path.with_name(path.name + ".tmp")
    fig.write_html(tmp, include_plotlyjs=True, full_html=True)
    tmp.replace(path)
    return path
