"""The figures and the HTML report: the figures show the metrics' tables, the report is one
self-contained file, and it draws in a real browser (headless Chromium, when installed)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import polars as pl
import pytest

from fastlob import MarketMakingConfig, figures
from fastlob import metrics as M
from fastlob.recording import record
from fastlob_agents.baselines import FixedSpread, OrderBookQuotes

CONFIG = MarketMakingConfig(episode_steps=40, warmup=5.0, markout_steps=3)
FIGURE_IDS = (
    "learning-curves",
    "pnl-heatmap",
    "fill-rate-heatmap",
    "adverse-heatmap",
    "inventory",
    "throughput",
)


@pytest.fixture(scope="module")
def recordings():
    quotes = {
        "tight": OrderBookQuotes.for_config(FixedSpread(half_spread=0.5), CONFIG, 2.0),
        "wide": OrderBookQuotes.for_config(FixedSpread(half_spread=2.0), CONFIG, 3.0),
    }
    return {name: record(policy, CONFIG, episodes=16, seed=7) for name, policy in quotes.items()}


def heatmap_cells(trace) -> dict[tuple[str, str], float]:
    z = np.asarray(trace.z, dtype=float)
    return {
        (x, y): z[i, j]
        for i, y in enumerate(trace.y)
        for j, x in enumerate(trace.x)
        if not np.isnan(z[i, j])
    }


def test_heatmaps_show_the_metrics_tables_on_one_scale(recordings):
    inventory_breaks, spread_breaks = [-2.0, 0.0, 2.0], [2.0, 4.0]
    fig = figures.pnl_heatmap(recordings, inventory_breaks, spread_breaks, min_count=1)
    assert len(fig.data) == 2 and fig.data[0].zmin == fig.data[1].zmin
    inventory_labels = M.bucket_labels(inventory_breaks)
    spread_labels = M.bucket_labels(spread_breaks)
    for trace, rec in zip(fig.data, recordings.values(), strict=True):
        table = M.pnl_by_inventory_and_spread(rec.steps, inventory_breaks, spread_breaks)
        expected = {
            (spread_labels[r["spread_bucket"]], inventory_labels[r["inventory_bucket"]]): r[
                "mean_dpnl"
            ]
            for r in table.to_dicts()
        }
        assert heatmap_cells(trace) == pytest.approx(expected)
    for make in (figures.fill_rate_heatmap, figures.adverse_heatmap):
        fig = make(recordings, min_count=1)
        assert len(fig.data) == 2 and all(heatmap_cells(t) for t in fig.data)
    # cells seen fewer than min_count times are blank
    rec = recordings["tight"]
    table = M.pnl_by_inventory_and_spread(rec.steps, inventory_breaks, spread_breaks)
    cutoff = int(table["steps"].median())
    fig = figures.pnl_heatmap(recordings, inventory_breaks, spread_breaks, min_count=cutoff)
    kept = table.filter(pl.col("steps") >= cutoff)
    assert 0 < len(heatmap_cells(fig.data[0])) == kept.height < table.height


def test_inventory_histogram_and_learning_curves(recordings):
    fig = figures.inventory_histogram(recordings)
    assert [t.name for t in fig.data] == list(recordings)
    assert sum(fig.data[0].y) == pytest.approx(1.0)
    curve = pl.DataFrame(
        {
            "global_step": [100, 200, 300],
            "charts/episode_pnl": [None, 1.0, 2.0],
            "losses/value_loss": [3.0, 2.0, 1.0],
        }
    )
    fig = figures.learning_curves(curve)
    assert [list(t.x) for t in fig.data] == [[200, 300], [100, 200, 300]]


def test_throughput_scaling_from_a_benchmark_json(tmp_path):
    def bench(load, n, threads, rate):
        return {
            "name": f"test_market_making_env[{threads}threads-{load}-{n}]",
            "params": {"load": load, "num_envs": n, "threads": threads},
            "extra_info": {"env_steps_per_s": rate, "numba_threads": threads},
        }

    rows = [bench("1_event", n, t, 1000.0 * n * t) for n in (64, 1024) for t in (1, 2)]
    rows.append({"name": "test_book", "params": {}, "extra_info": {"messages_per_s": 5.0}})
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"benchmarks": rows}))
    results = figures.read_benchmarks(path)
    assert results.height == 4
    fig = figures.throughput_scaling(results)
    assert sorted(t.name for t in fig.data) == ["1_event, 1 thread", "1_event, 2 threads"]
    two = next(t for t in fig.data if t.name.endswith("2 threads"))
    assert list(two.x) == [64, 1024] and list(two.y) == [128_000.0, 2_048_000.0]


@pytest.fixture(scope="module")
def report(tmp_path_factory, recordings):
    from fastlob_agents.evaluate import evaluate
    from fastlob_agents.ppo import PPOConfig, train
    from fastlob_agents.report import write_report

    runs = tmp_path_factory.mktemp("runs")
    config = PPOConfig(
        num_envs=8, total_steps=512, num_steps=16, env=MarketMakingConfig(episode_steps=20),
        runs_dir=str(runs), run_name="tiny", progress=False,
    )  # fmt: skip
    run_dir = train(config)["run_dir"]
    evaluate([run_dir], episodes=16, tuning_episodes=8)
    bench = runs / "bench.json"
    bench.write_text(
        json.dumps(
            {
                "benchmarks": [
                    {
                        "name": "b",
                        "params": {"load": "1_event", "num_envs": n},
                        "extra_info": {"env_steps_per_s": 10.0 * n, "numba_threads": 1},
                    }
                    for n in (1, 64)
                ]
            }
        )
    )
    return write_report(run_dir, episodes=8, bench=bench)


def test_report_is_one_self_contained_file(report):
    page = report.read_text()
    assert not re.search(r"<script[^>]+src=", page)  # plotly.js is inline, nothing fetched
    assert "Plotly.newPlot" in page and len(page) > 1_000_000  # the library itself is in
    for div in FIGURE_IDS:
        assert f'id="{div}"' in page
    table = json.loads((report.parent / "eval.json").read_text())
    for agent in ("ppo", "glft", "random"):
        assert f"<th>{agent}</th>" in page
    assert f"{table['ppo']['utility']['mean']:.3f}" in page


def test_report_cli(report, capsys):
    from fastlob_agents.cli import main

    out = report.parent / "again.html"
    assert main(["report", str(report.parent), "--episodes", "4", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out) and out.stat().st_size > 1_000_000
    assert main(["report", str(out.parent / "nowhere")]) == 2
    assert "not a training run" in capsys.readouterr().err


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


@pytest.mark.skipif(
    _chromium() is None,
    reason="no headless browser: install Debian's chromium (apt-get install chromium) to check "
    "that the report's plots draw",
)
def test_report_draws_every_plot_in_headless_chromium(report, tmp_path):
    command = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=20000",
        "--dump-dom",
        report.as_uri(),
    ]
    dom = subprocess.run(command, capture_output=True, text=True, timeout=180, check=True).stdout
    positions = sorted((dom.index(f'id="{div}"'), div) for div in FIGURE_IDS)
    for (start, div), (end, _) in zip(positions, [*positions[1:], (len(dom), "")], strict=True):
        drawn = dom[start:end]
        # plotly marks a div it has plotted and draws its axes and traces as SVG
        assert "js-plotly-plot" in drawn[:300], f"{div} was not plotted"
        assert drawn.count('class="main-svg"') >= 2, f"{div} drew no SVG"


def test_queue_fill_rates_puts_each_market_in_a_column_and_each_agent_in_one_colour():
    def table(agents, shares):
        return pl.DataFrame(
            {
                "agent": [a for a in agents for _ in range(2)],
                "queue": ["0", "1-2"] * len(agents),
                "share": shares,
                "fill_rate": [0.5, 0.25] * len(agents),
            }
        )

    tables = {
        "large": table(["ppo", "avellaneda_stoikov"], [0.75, 0.25, 0.5, 0.5]),
        "small": table(["ppo"], [1.0, 0.0]),
    }
    fig = figures.queue_fill_rates(tables)
    assert len(fig.data) == 2 * (2 + 1)  # shares and fill rates, per agent per market
    shares = [(t.name, t.xaxis, list(t.y)) for t in fig.data if t.yaxis in ("y", "y2")]
    assert shares == [
        ("ppo", "x", [0.75, 0.25]),
        ("avellaneda_stoikov", "x", [0.5, 0.5]),
        ("ppo", "x2", [1.0, 0.0]),
    ]
    assert [t.name for t in fig.data if t.showlegend] == ["ppo", "avellaneda_stoikov"]
    assert len({t.marker.color for t in fig.data if t.name == "ppo"}) == 1
