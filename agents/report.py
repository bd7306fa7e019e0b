"""``fastlob report RUN_DIR``: one self-contained HTML page of a training run.

The page holds the evaluation table (``eval.json``; computed with ``agents.evaluate`` first when
the run has none), the learning curves (``metrics.parquet``), the heatmaps of the trained agent
beside the best classical baseline (by utility in the table) on the same held-out episodes, the
inventory distribution, and, given a pytest-benchmark JSON file, the simulator's throughput
against N and threads. plotly.js is embedded once, so the file opens offline.
"""

from __future__ import annotations

import html
from pathlib import Path

import plotly.graph_objects as go
import plotly.offline
import polars as pl

from fastlob import figures
from fastlob._checks import check_output_file, read_json_file, write_text_whole
from fastlob.recording import record

from .common import RunError, read_metrics
from .evaluate import (
    METRICS,
    evaluate,
    held_out_market,
    load_policy,
    read_run_config,
    run_config,
    table_metrics,
    tuned_policies,
)
from .tuning import format_baselines

#: baselines the trained agent may be shown beside (random is never the best)
CLASSICAL = ("avellaneda_stoikov", "glft", "fixed_spread", "touch")


def read_json(path: Path):
    """A JSON file the run holds; a :class:`RunError` naming it if it is not valid JSON."""
    try:
        return read_json_file(path, "run's file")
    except ValueError as err:
        raise RunError(str(err)) from None


def best_baseline(table: dict) -> str:
    """The classical baseline with the highest mean utility in an evaluation table."""
    return max(CLASSICAL, key=lambda name: table[name]["utility"]["mean"])


def _table_html(table: dict) -> str:
    metrics = table_metrics(table)
    head = "".join(f"<th>{html.escape(m)}</th>" for m in metrics)
    rows = []
    for name, row in table.items():
        cells = "".join(
            f"<td>{row[m]['mean']:.3f}<br><small>[{row[m]['ci_low']:.3f}, "
            f"{row[m]['ci_high']:.3f}]</small></td>"
            for m in metrics
        )
        rows.append(f"<tr><th>{html.escape(name)}</th>{cells}</tr>")
    return f"<table><tr><th>agent</th>{head}</tr>{''.join(rows)}</table>"


def _figure_html(fig: go.Figure, div_id: str) -> str:
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id)


def report_figures(
    run_dir: Path, table: dict, episodes: int, seed: int, bench: str | Path | None
) -> dict[str, go.Figure]:
    """The page's figures by div id, in page order."""
    config = run_config(run_dir)
    name, agent = load_policy(run_dir, config)
    baseline = best_baseline(table)
    choices_file = run_dir / "baselines.json"
    baselines = tuned_policies(config, read_json(choices_file), str(choices_file))
    policies = {name: agent, baseline: baselines[baseline]}
    held_out = held_out_market(config)  # a historical market's eval hours
    recordings = {label: record(p, held_out, episodes, seed) for label, p in policies.items()}
    out: dict[str, go.Figure] = {}
    metrics = run_dir / "metrics.parquet"
    if metrics.exists():
        out["learning-curves"] = figures.learning_curves(pl.read_parquet(metrics))
    out["pnl-heatmap"] = figures.pnl_heatmap(recordings)
    out["fill-rate-heatmap"] = figures.fill_rate_heatmap(recordings)
    out["adverse-heatmap"] = figures.adverse_heatmap(recordings, horizon=config.markout_steps)
    out["inventory"] = figures.inventory_histogram(recordings)
    if bench is not None:
        out["throughput"] = figures.throughput_scaling(figures.read_benchmarks(bench))
    return out


def write_report(
    run_dir: str | Path,
    out: str | Path | None = None,
    episodes: int = 64,
    seed: int = 123_456,
    bench: str | Path | None = None,
) -> Path:
    """Write the run's report (default ``RUN_DIR/report.html``) and return its path.

    ``episodes`` held-out episodes from ``seed`` feed the heatmaps (the evaluation table keeps
    the episodes it was computed on); ``bench`` is an optional pytest-benchmark JSON file of
    ``bench/test_bench_mm.py``.
    """
    run_dir = Path(run_dir)
    saved = read_run_config(run_dir)
    load_policy(run_dir, run_config(run_dir))  # every file is checked before any work
    path = check_output_file(run_dir / "report.html" if out is None else out, "--out")
    if (run_dir / "metrics.parquet").exists():
        read_metrics(run_dir / "metrics.parquet")
    if bench is not None:
        figures.read_benchmarks(bench)
    if not (run_dir / "eval.json").exists() or not (run_dir / "baselines.json").exists():
        evaluate([str(run_dir)], seed=seed)
    table = read_json(run_dir / "eval.json")
    rows_fit = isinstance(table, dict) and all(
        isinstance(row, dict) and all(m in row for m in METRICS) for row in table.values()
    )
    if not rows_fit or not set(CLASSICAL) <= set(table):
        raise RunError(f"{run_dir / 'eval.json'}: not an evaluation table of this fastlob")
    figs = report_figures(run_dir, table, episodes, seed, bench)  # checks baselines.json
    tuning = format_baselines(read_json(run_dir / "baselines.json"))
    settings = ", ".join(
        f"{k}={saved[k]}" for k in ("algo", "num_envs", "total_steps", "seed") if k in saved
    )
    body = "\n".join(f"<section>{_figure_html(fig, key)}</section>" for key, fig in figs.items())
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>fastlob report: {html.escape(run_dir.name)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.85em; }}
td, th {{ border: 1px solid #ccc; padding: 4px 8px; text-align: right; }}
section {{ margin-top: 2em; }}
</style>
<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script>
</head><body>
<h1>fastlob report: {html.escape(run_dir.name)}</h1>
<p>{html.escape(settings)}. Heatmaps: {episodes} held-out episodes from seed {seed}, the trained
agent beside the best classical baseline by utility.</p>
<section><h2>Evaluation (mean and 95% confidence interval over held-out episodes)</h2>
{_table_html(table)}
<p>The baselines as tuned (jointly over quote size and their own parameter, on episodes disjoint
from the evaluation's; <code>baselines.json</code> holds every grid and utility):</p>
<pre>{html.escape(tuning)}</pre></section>
{body}
</body></html>
"""
    write_text_whole(path, page)
    return path
