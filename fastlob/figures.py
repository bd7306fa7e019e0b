"""Plotly figures of what a market maker does, how training went and how fast the simulator runs.

Every function takes polars frames (``fastlob.recording.Recording`` steps and fills, a run's
``metrics.parquet``, benchmark results) and returns a ``plotly.graph_objects.Figure``; nothing is
shown or written here (``fastlob.report`` writes them into one HTML file).

Heatmaps compare policies side by side on one colour scale: pass ``{name: Recording}``. Their
buckets come from :mod:`fastlob.metrics` (``bucket_labels``); a cell with no observation is
blank, and the hover text gives each cell's count.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from fastlob import metrics as M

#: learning-curve panels: metrics.parquet column -> panel title (losses/* are added as found)
CURVES = {
    "charts/episodic_return": "episode reward",
    "charts/episode_pnl": "episode PnL",
    "charts/sharpe": "Sharpe (per step)",
    "charts/inventory_var": "inventory variance (lots^2)",
    "charts/adverse_rate": "adverse-selection rate",
}


#: heatmap cells with fewer observations than this are left blank (``min_count`` overrides it)
MIN_COUNT = 20


def _side_by_side_heatmaps(
    tables: dict[str, pl.DataFrame],
    x: tuple[str, list[float], str],
    y: tuple[str, list[float], str],
    z: str,
    count: str,
    title: str,
    colorscale: str,
    zmid: float | None = None,
    min_count: int = 1,
) -> go.Figure:
    """One heatmap per table, columns ``x[0]`` / ``y[0]`` bucket indices into the breaks
    ``x[1]`` / ``y[1]``; all panels share the buckets present in any table and one colour
    range. Cells with fewer than ``min_count`` observations (column ``count``) are blank, so
    that a handful of outliers neither show as a result nor stretch the colour scale."""
    (x_col, x_breaks, x_title), (y_col, y_breaks, y_title) = x, y
    tables = {name: t.filter(pl.col(count) >= min_count) for name, t in tables.items()}
    present = [t for t in tables.values() if t.height]
    x_labels, y_labels = M.bucket_labels(x_breaks), M.bucket_labels(y_breaks)
    if present:
        x_range = range(
            min(t[x_col].min() for t in present), max(t[x_col].max() for t in present) + 1
        )
        y_range = range(
            min(t[y_col].min() for t in present), max(t[y_col].max() for t in present) + 1
        )
        values = np.concatenate([t[z].to_numpy() for t in present])
        low, high = float(np.nanmin(values)), float(np.nanmax(values))
        if zmid is not None:
            reach = max(abs(low - zmid), abs(high - zmid)) or 1.0
            low, high = zmid - reach, zmid + reach
    else:
        x_range = y_range = range(0)
        low, high = 0.0, 1.0
    fig = make_subplots(rows=1, cols=max(len(tables), 1), subplot_titles=list(tables))
    for col, table in enumerate(tables.values(), start=1):
        grid = np.full((len(y_range), len(x_range)), np.nan)
        counts = np.zeros_like(grid)
        for row in table.iter_rows(named=True):
            i, j = row[y_col] - y_range.start, row[x_col] - x_range.start
            grid[i, j], counts[i, j] = row[z], row[count]
        fig.add_trace(
            go.Heatmap(
                z=grid,
                x=[x_labels[j] for j in x_range],
                y=[y_labels[i] for i in y_range],
                customdata=counts,
                zmin=low,
                zmax=high,
                colorscale=colorscale,
                coloraxis=None,
                showscale=col == 1,
                colorbar={"title": {"text": z}},
                hovertemplate=f"{x_title} %{{x}}<br>{y_title} %{{y}}<br>{z} %{{z:.4g}}"
                f"<br>{count} %{{customdata:.0f}}<extra></extra>",
            ),
            row=1,
            col=col,
        )
        fig.update_xaxes(title_text=x_title, type="category", row=1, col=col)
        fig.update_yaxes(title_text=y_title if col == 1 else None, type="category", row=1, col=col)
    subtitle = f" (cells with at least {min_count} {count})" if min_count > 1 else ""
    fig.update_layout(title=title + subtitle, height=420, margin={"t": 80})
    return fig


def _steps(recordings) -> dict[str, pl.DataFrame]:
    return {name: rec.steps for name, rec in recordings.items()}


def _integer_breaks(low: float, high: float, buckets: int) -> list[float]:
    """At most ``buckets`` - 1 increasing integer breaks spread over [low, high]."""
    if high <= low:
        return [float(low)]
    inner = np.linspace(low, high, buckets + 1)[1:-1]
    return sorted({float(round(b)) for b in inner} | {float(math.floor(low))})


def pnl_heatmap(
    recordings, inventory_breaks=None, spread_breaks=None, min_count: int = MIN_COUNT
) -> go.Figure:
    """Mean PnL per step by inventory held x quoted spread
    (:func:`fastlob.metrics.pnl_by_inventory_and_spread`), one panel per recording."""
    steps = _steps(recordings)
    pooled = pl.concat([s.select("inventory", "quote_spread") for s in steps.values()])
    if inventory_breaks is None:
        reach = max(int(pooled["inventory"].abs().max() or 0), 1)
        inventory_breaks = _integer_breaks(-reach, reach + 1, 9)
    if spread_breaks is None:
        spreads = pooled["quote_spread"].drop_nulls()
        top = float(spreads.quantile(0.99)) if spreads.len() else 2.0
        spread_breaks = _integer_breaks(1.0, max(top, 2.0) + 1, 10)
    tables = {
        name: M.pnl_by_inventory_and_spread(s, inventory_breaks, spread_breaks)
        for name, s in steps.items()
    }
    return _side_by_side_heatmaps(
        tables,
        ("spread_bucket", spread_breaks, "quoted spread (ticks)"),
        ("inventory_bucket", inventory_breaks, "inventory before the step (lots)"),
        "mean_dpnl",
        "steps",
        "Average PnL per step by inventory and quoted spread",
        "RdBu",
        zmid=0.0,
        min_count=min_count,
    )


def fill_rate_heatmap(
    recordings,
    queue_breaks=(1, 2, 5, 10, 20, 50),
    size_breaks=None,
    min_count: int = MIN_COUNT,
) -> go.Figure:
    """Next-step fill rate of resting quotes by queue position x size
    (:func:`fastlob.metrics.fill_rate_by_queue_and_size`), one panel per recording."""
    if size_breaks is None:
        largest = max(
            int(rec.steps.select(pl.max_horizontal("bid_left", "ask_left").max()).item() or 1)
            for rec in recordings.values()
        )
        size_breaks = [float(b) for b in range(2, min(largest, 8) + 1)]
    tables = {
        name: M.fill_rate_by_queue_and_size(rec.steps, rec.fills, queue_breaks, size_breaks)
        for name, rec in recordings.items()
    }
    return _side_by_side_heatmaps(
        tables,
        ("size_bucket", list(size_breaks), "lots resting"),
        ("queue_bucket", list(queue_breaks), "lots ahead in the queue"),
        "fill_rate",
        "quotes",
        "Fill rate over the next step by queue position and size",
        "Viridis",
        min_count=min_count,
    )


def adverse_heatmap(
    recordings,
    horizon: int = 5,
    time_breaks=(0.2, 0.4, 0.6, 0.8),
    volatility_breaks=None,
    window: int = 20,
    min_count: int = MIN_COUNT,
) -> go.Figure:
    """Adverse-selection rate at ``horizon`` steps by time of episode x realized volatility
    (:func:`fastlob.metrics.adverse_by_time_and_volatility`); volatility buckets are the pooled
    quintiles of the fills' volatility unless given."""
    length = max(int(rec.steps["step"].max() or 1) for rec in recordings.values())
    if volatility_breaks is None:
        pooled = pl.concat(
            [
                rec.fills.select("episode", "step").join(
                    M.realized_volatility(rec.steps, window), on=["episode", "step"]
                )
                for rec in recordings.values()
            ]
        )["volatility"].drop_nulls()
        quantiles = [pooled.quantile(q) for q in (0.2, 0.4, 0.6, 0.8)] if pooled.len() else [1.0]
        volatility_breaks = sorted({float(f"{q:.3g}") for q in quantiles})
    tables = {
        name: M.adverse_by_time_and_volatility(
            rec.fills, rec.steps, horizon, time_breaks, volatility_breaks, window, length
        )
        for name, rec in recordings.items()
    }
    return _side_by_side_heatmaps(
        tables,
        ("volatility_bucket", list(volatility_breaks), f"mid volatility ({window}-step std)"),
        ("time_bucket", list(time_breaks), "time of episode (fraction)"),
        "adverse_rate",
        "fills",
        f"Adverse-selection rate ({horizon}-step markout) by time of episode and volatility",
        "Reds",
        min_count=min_count,
    )


def inventory_histogram(recordings) -> go.Figure:
    """Distribution of the end-of-step inventory (:func:`fastlob.metrics.inventory_distribution`),
    one bar series per recording."""
    fig = go.Figure()
    for name, rec in recordings.items():
        dist = M.inventory_distribution(rec.steps)
        fig.add_bar(x=dist["inventory"].to_list(), y=dist["fraction"].to_list(), name=name)
    fig.update_layout(
        title="Inventory distribution (end of each step)",
        xaxis_title="inventory (lots)",
        yaxis_title="fraction of steps",
        barmode="group",
        height=380,
    )
    return fig


def queue_fill_rates(tables: dict[str, pl.DataFrame]) -> go.Figure:
    """Where each agent's resting quotes wait and how often they fill there, one column per
    market: ``{market: frame}`` with columns ``agent``, ``queue`` (the bucket of lots ahead,
    in order), ``share`` (of the agent's resting quotes) and ``fill_rate`` (lots filled in the
    next step per resting lot), as ``fastlob_agents.evaluate.fill_rates_by_queue`` gives. Top
    row: the shares; bottom row: the fill rates; one bar series per agent."""
    markets = list(tables)
    fig = make_subplots(
        rows=2,
        cols=len(markets),
        subplot_titles=[
            f"{m}: {what}" for what in ("share of quotes", "fill rate") for m in markets
        ],
        vertical_spacing=0.14,
    )
    colours: dict[str, str] = {}  # one colour and one legend entry per agent
    palette = ("#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")
    for col, market in enumerate(markets, start=1):
        table = tables[market]
        for agent in table["agent"].unique(maintain_order=True).to_list():
            rows = table.filter(pl.col("agent") == agent)
            first = agent not in colours
            colour = colours.setdefault(agent, palette[len(colours) % len(palette)])
            for row, column in ((1, "share"), (2, "fill_rate")):
                fig.add_bar(
                    x=rows["queue"].to_list(),
                    y=rows[column].to_list(),
                    name=agent,
                    legendgroup=agent,
                    marker_color=colour,
                    showlegend=first and row == 1,
                    row=row,
                    col=col,
                )
    fig.update_xaxes(title_text="lots queued ahead")
    fig.update_layout(barmode="group", height=640, title="Fill rates by queue position")
    return fig


def learning_curves(metrics: pl.DataFrame, title: str = "Learning curves") -> go.Figure:
    """One panel per training chart (:data:`CURVES`) and per ``losses/*`` column of a run's
    ``metrics.parquet``, against ``global_step``; missing columns are skipped."""
    columns = [c for c in CURVES if c in metrics.columns]
    columns += sorted(c for c in metrics.columns if c.startswith("losses/"))
    cols = 3
    rows = max(1, math.ceil(len(columns) / cols))
    titles = [CURVES.get(c, c) for c in columns]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles)
    for k, column in enumerate(columns):
        data = metrics.select("global_step", column).drop_nulls()
        fig.add_scatter(
            x=data["global_step"].to_list(),
            y=data[column].to_list(),
            mode="lines",
            name=CURVES.get(column, column),
            showlegend=False,
            row=k // cols + 1,
            col=k % cols + 1,
        )
    fig.update_xaxes(title_text="env-steps")
    fig.update_layout(title=title, height=300 * rows)
    return fig


def read_benchmarks(path: str | Path) -> pl.DataFrame:
    """The simulator's rows of a pytest-benchmark JSON file (``pytest bench --benchmark-only
    --benchmark-json FILE``): ``load``, ``num_envs``, ``threads``, ``env_steps_per_s``."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a pytest-benchmark JSON file ({err})") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks", []), list):
        raise ValueError(f"{path}: not a pytest-benchmark JSON file (no list of benchmarks)")
    rows = []
    for bench in data.get("benchmarks", []):
        extra, params = bench.get("extra_info", {}), bench.get("params") or {}
        if "env_steps_per_s" not in extra or "num_envs" not in params:
            continue
        rows.append(
            {
                "load": str(params.get("load", bench.get("group") or bench["name"])),
                "num_envs": int(params["num_envs"]),
                "threads": int(extra.get("numba_threads", params.get("threads", 0))),
                "env_steps_per_s": float(extra["env_steps_per_s"]),
            }
        )
    schema = {"load": pl.String, "num_envs": pl.Int64, "threads": pl.Int64}
    return pl.DataFrame(rows, schema={**schema, "env_steps_per_s": pl.Float64})


def throughput_scaling(results: pl.DataFrame, title: str = "Simulator throughput") -> go.Figure:
    """Env-steps/s against N (log-log), one line per load and thread count; ``results`` has
    columns ``load``, ``num_envs``, ``threads``, ``env_steps_per_s`` (:func:`read_benchmarks`)."""
    fig = go.Figure()
    loads = sorted(results["load"].unique().to_list())
    palette = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")
    most = results["threads"].max() if results.height else 1
    for (load, threads), group in results.sort("load", "threads", "num_envs").group_by(
        "load", "threads", maintain_order=True
    ):
        fig.add_scatter(
            x=group["num_envs"].to_list(),
            y=group["env_steps_per_s"].to_list(),
            mode="lines+markers",
            name=f"{load}, {threads} thread{'s' if threads != 1 else ''}",
            # one colour per load; all threads solid, fewer dotted
            line={
                "color": palette[loads.index(load) % len(palette)],
                "dash": "solid" if threads == most else "dot",
            },
        )
    fig.update_layout(
        title=title,
        xaxis={"title": "environments N", "type": "log"},
        yaxis={"title": "env-steps/s", "type": "log"},
        height=420,
    )
    return fig
