"""How close a simulated market is to a real one: the same statistics on a LOBSTER day and on
simulations of a market config over as long a span, side by side, each with a distance.

The statistics (``market_statistics``), on a clock whose unit is ``T / 500`` of the data's span
T (so that a short sample and a whole day both get 500 steps; ``unit`` in the output):

- ``spread``: the spread in ticks after every message (both sides present);
- ``depth``: the mean lots at each of the D visible levels, asks then bids (2D values);
- ``returns_1``, ``returns_5``, ``returns_25``: the mid's changes (ticks) over 1, 5 and 25
  units, on the clock;
- ``autocorrelation``: of the 1-unit returns, at lags 1..10;
- ``signature``: realized variance per second of the mid sampled every 1, 2, 5, 10, 20, 50
  units (the volatility signature plot);
- ``interarrival``: seconds between market orders (executions grouped per time and direction);
- ``limit_sizes``, ``market_sizes``: order sizes in lots;
- ``impact``: the mid's move (ticks) after a market order in its direction, at lags of 1, 5
  and 25 units, averaged over market orders;
- ``event_rates``: messages per second by type (1..7) and market orders per second.

The mid's response to a one-sided push (``push_response``): on independent books of a market,
a market buy sweeps the asks and the flow then runs alone; the mean displacement of the mid and
its half-life say whether the market is anchored (the push decays) or not (it stays).

Distances: for a distribution, the Wasserstein-1 distance and the Kolmogorov-Smirnov statistic
(as LOB-Bench reports them); for a curve or profile, the L1 distance relative to the real one
(``sum |sim - real| / sum |real|``). Each is small when the markets agree, so two market files
can be ranked on one data set.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fastlob._checks import check_fits_memory, check_int, check_real, write_text_whole
from fastlob.calibration import market_orders
from fastlob.data.simulated import FlowBooks
from fastlob.env import check_config

#: the data's span in clock units
CLOCK_STEPS = 500
#: horizons of the return distributions, in clock units
RETURN_HORIZONS = (1, 5, 25)
#: sampling intervals of the volatility signature, in clock units
SIGNATURE_INTERVALS = (1, 2, 5, 10, 20, 50)
#: lags of the price impact, in clock units
IMPACT_LAGS = (1, 5, 25)
#: lags of the returns' autocorrelation
AUTOCORRELATION_LAGS = tuple(range(1, 11))
#: statistics that are distributions (the rest are curves or profiles)
DISTRIBUTIONS = (
    "spread",
    *(f"returns_{h}" for h in RETURN_HORIZONS),
    "interarrival",
    "limit_sizes",
    "market_sizes",
)
#: statistics that are curves or profiles
CURVES = ("depth", "autocorrelation", "signature", "impact", "event_rates")


def _mid_ticks(rows: np.ndarray) -> np.ndarray:
    """The mid (ticks) after each message, carried forward while a side is empty."""
    ask, bid = rows[:, 0, 0].astype(np.float64), rows[:, 0, 2].astype(np.float64)
    both = (rows[:, 0, 1] > 0) & (rows[:, 0, 3] > 0)
    mid = np.where(both, 0.5 * (ask + bid), np.nan)
    index = np.where(both, np.arange(len(mid)), 0)
    np.maximum.accumulate(index, out=index)
    mid = mid[index]
    first = np.flatnonzero(both)
    if first.size:
        mid[: first[0]] = mid[first[0]]
    return mid


def _on_clock(times: np.ndarray, values: np.ndarray, clock: np.ndarray) -> np.ndarray:
    """The last value at or before each clock time (the first value before the first time)."""
    at = np.searchsorted(times, clock, side="right") - 1
    return values[np.clip(at, 0, len(values) - 1)]


def _autocorrelation(x: np.ndarray, lags) -> np.ndarray:
    x = x - x.mean()
    var = float(np.dot(x, x))
    if var <= 0:
        return np.zeros(len(lags))
    return np.array([float(np.dot(x[:-lag], x[lag:])) / var for lag in lags])


def market_statistics(day, lot_size: float) -> dict[str, np.ndarray]:
    """The statistics of the module docstring on a :class:`~fastlob.data.lobster.LobsterDay`
    (sizes in shares, ``lot_size`` shares per lot); every value finite. ``"unit"`` holds the
    clock's unit in seconds."""
    times, rows, messages = day.times, day.rows, day.messages
    span = max(day.seconds, 1e-9)
    unit = span / CLOCK_STEPS
    both = (rows[:, 0, 1] > 0) & (rows[:, 0, 3] > 0)
    mid = _mid_ticks(rows)
    clock = times[0] + unit * np.arange(CLOCK_STEPS + 1)
    mid_clock = _on_clock(times, mid, clock)
    out: dict[str, np.ndarray] = {"unit": np.array([unit])}
    out["spread"] = (rows[both, 0, 0] - rows[both, 0, 2]).astype(np.float64)
    lots = rows[:, :, [1, 3]].astype(np.float64) / lot_size
    out["depth"] = np.concatenate([lots[:, :, 0].mean(0), lots[:, :, 1].mean(0)])
    for h in RETURN_HORIZONS:
        out[f"returns_{h}"] = mid_clock[h:] - mid_clock[:-h]
    out["autocorrelation"] = _autocorrelation(out["returns_1"], AUTOCORRELATION_LAGS)
    out["signature"] = np.array(
        [float(np.sum(np.diff(mid_clock[::k]) ** 2)) / span for k in SIGNATURE_INTERVALS]
    )
    starts, aggressor, sizes = market_orders(times, messages)
    out["interarrival"] = np.diff(starts) if len(starts) > 1 else np.zeros(1)
    out["limit_sizes"] = messages[messages[:, 0] == 1, 2] / lot_size
    out["market_sizes"] = sizes / lot_size if len(sizes) else np.zeros(1)
    before = _on_clock(times, mid, starts - 1e-12) if len(starts) else np.zeros(0)
    impact = []
    for lag in IMPACT_LAGS:
        after = _on_clock(times, mid, starts + lag * unit) if len(starts) else np.zeros(0)
        impact.append(float(np.mean(aggressor * (after - before))) if len(starts) else 0.0)
    out["impact"] = np.array(impact)
    counts = [float((messages[:, 0] == kind).sum()) for kind in range(1, 8)]
    out["event_rates"] = np.array([*counts, float(len(starts))]) / span
    for key in ("spread", "limit_sizes"):
        if out[key].size == 0:
            out[key] = np.zeros(1)
    return out


def _wasserstein(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import wasserstein_distance

    return float(wasserstein_distance(a, b))


def _ks(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import ks_2samp

    return float(ks_2samp(a, b).statistic)


def _relative_l1(real: np.ndarray, simulated: np.ndarray) -> float:
    scale = float(np.sum(np.abs(real)))
    return (
        float(np.sum(np.abs(simulated - real)) / scale)
        if scale > 0
        else float(np.sum(np.abs(simulated - real)))
    )


@dataclass(frozen=True)
class Comparison:
    """Real and simulated statistics side by side, with their distances."""

    real: dict[str, np.ndarray]
    simulated: dict[str, np.ndarray]  #: the runs' distributions pooled, their curves averaged
    runs: int
    distances: dict[str, dict[str, float]]  #: statistic -> {"wasserstein", "ks"} or {"l1"}

    def table(self) -> list[dict]:
        """One row per statistic: its real and simulated summary (mean) and distances."""
        rows = []
        for name in (*DISTRIBUTIONS, *CURVES):
            real, sim = self.real[name], self.simulated[name]
            rows.append(
                {
                    "statistic": name,
                    "real": float(np.mean(real)),
                    "simulated": float(np.mean(sim)),
                    **self.distances[name],
                }
            )
        return rows


def compare(real: dict, runs: list[dict]) -> Comparison:
    """Compare the real statistics with those of several simulated runs."""
    simulated = {}
    for name in DISTRIBUTIONS:
        simulated[name] = np.concatenate([run[name] for run in runs])
    for name in CURVES:
        simulated[name] = np.mean([run[name] for run in runs], axis=0)
    distances = {
        name: {
            "wasserstein": _wasserstein(real[name], simulated[name]),
            "ks": _ks(real[name], simulated[name]),
        }
        for name in DISTRIBUTIONS
    }
    distances.update({name: {"l1": _relative_l1(real[name], simulated[name])} for name in CURVES})
    return Comparison(real, simulated, len(runs), distances)


#: the most simulated runs a comparison takes (each one as long as the data)
MAX_RUNS = 1000


def realism(config, day, runs: int = 3, seed: int = 0, warmup: float = 300.0) -> Comparison:
    """Simulate the market of ``config`` for the span of ``day`` ``runs`` times (seeds ``seed``,
    ``seed + 1``, ...; each after ``warmup`` seconds of flow, so that its book has settled as
    the real one has) and compare each statistic with the day's."""
    from fastlob.data.simulated import simulate_day

    runs = check_int("runs", runs, 1, MAX_RUNS)
    if not day.seconds > 0:
        raise ValueError(
            f"the LOBSTER day spans {day.seconds:g} s ({day.times.size} message(s)): realism "
            "simulates the market for as long as the data last, so it needs messages at two "
            "times at least"
        )
    lot = float(config.lot_size)
    real = market_statistics(day, lot)
    simulated = []
    for r in range(runs):
        run = simulate_day(config, day.seconds, seed=seed + r, levels=day.levels, warmup=warmup)
        simulated.append(market_statistics(run, lot))
    return compare(real, simulated)


def realism_figures(comparison: Comparison) -> dict:
    """A plotly figure per statistic, real beside simulated, by div id."""
    import plotly.graph_objects as go

    real, sim = comparison.real, comparison.simulated
    figures = {}
    for name in DISTRIBUTIONS:
        fig = go.Figure()
        for label, data in (("real", real[name]), ("simulated", sim[name])):
            fig.add_trace(go.Histogram(x=data, name=label, histnorm="probability", opacity=0.6))
        d = comparison.distances[name]
        fig.update_layout(
            barmode="overlay",
            title=f"{name}: Wasserstein {d['wasserstein']:.4g}, KS {d['ks']:.3f}",
        )
        figures[name] = fig
    x_of = {
        "depth": [f"ask {k + 1}" for k in range(len(real["depth"]) // 2)]
        + [f"bid {k + 1}" for k in range(len(real["depth"]) // 2)],
        "autocorrelation": list(AUTOCORRELATION_LAGS),
        "signature": list(SIGNATURE_INTERVALS),
        "impact": list(IMPACT_LAGS),
        "event_rates": [f"type {k}" for k in range(1, 8)] + ["market orders"],
    }
    for name in CURVES:
        fig = go.Figure()
        for label, data in (("real", real[name]), ("simulated", sim[name])):
            fig.add_trace(go.Scatter(x=x_of[name], y=data, name=label, mode="lines+markers"))
        fig.update_layout(title=f"{name}: relative L1 {comparison.distances[name]['l1']:.3f}")
        figures[name] = fig
    return figures


def write_realism(comparison: Comparison, out: str | Path, title: str = "") -> Path:
    """One self-contained HTML page (plotly.js inline): the table and every figure."""
    import plotly.offline

    rows = comparison.table()
    head = "<tr><th>statistic</th><th>real</th><th>simulated</th><th>Wasserstein</th>" \
        "<th>KS</th><th>relative L1</th></tr>"  # fmt: skip
    body = "".join(
        f"<tr><th>{html.escape(r['statistic'])}</th><td>{r['real']:.4g}</td>"
        f"<td>{r['simulated']:.4g}</td><td>{r.get('wasserstein', float('nan')):.4g}</td>"
        f"<td>{r.get('ks', float('nan')):.3f}</td><td>{r.get('l1', float('nan')):.3f}</td></tr>"
        for r in rows
    )
    sections = "\n".join(
        f"<section>{fig.to_html(full_html=False, include_plotlyjs=False, div_id=key)}</section>"
        for key, fig in realism_figures(comparison).items()
    )
    unit = float(comparison.real["unit"][0])
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>fastlob realism {html.escape(title)}</title>
<style>body {{ font-family: system-ui, sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; }}
td, th {{ border: 1px solid #ccc; padding: 4px 8px; }}</style>
<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script></head><body>
<h1>Simulated against real {html.escape(title)}</h1>
<p>{comparison.runs} simulated runs over the data's span; the clock's unit is {unit:.4g} s.</p>
<table>{head}{body}</table>
{sections}
</body></html>
"""
    path = Path(out)
    write_text_whole(path, page)
    return path


@dataclass(frozen=True)
class PushResponse:
    """The mid's mean response to a one-sided push (see :func:`push_response`)."""

    #: float64 (T + 1,): seconds since the push, 0 (right after it) first
    times: np.ndarray
    #: float64 (T + 1,): mean over books of the mid's displacement from its value before the
    #: push (ticks)
    displacement: np.ndarray
    #: float64 (T + 1,): standard error of that mean
    stderr: np.ndarray
    #: seconds until the mean displacement first falls to half its value right after the push
    #: (linearly interpolated between the two samples around it); NaN when it never does
    #: within the horizon (see ``decayed``)
    half_life: float
    #: whether the mean displacement fell to half its initial value within the horizon
    decayed: bool
    #: books the push emptied the ask side of (their last known ask is the push's last fill)
    emptied: int
    #: number of books
    num_envs: int

    @property
    def initial(self) -> float:
        """Mean displacement right after the push (ticks)."""
        return float(self.displacement[0])


def push_response(
    config,
    push_lots: int,
    seconds: float = 60.0,
    num_envs: int = 256,
    seed: int = 0,
    interval: float = 1.0,
) -> PushResponse:
    """The mid's response to a one-sided push in the market of ``config``.

    Each of ``num_envs`` independent books is set up as the simulator resets an env (see
    :class:`fastlob.data.simulated.FlowBooks`) and runs ``config.warmup`` seconds of flow (in spans
    of a second). At t = 0 a market buy of ``push_lots`` lots sweeps the asks of every book; the
    flow then runs alone (no market maker) for ``seconds``, in spans of ``interval`` seconds (the
    fair value moves at each span's start, as at each of the simulator's steps), and the mid (from
    the last known best of an empty side) is recorded after each span. An anchored market pulls the
    mean displacement back to 0; in an unanchored one (no informed flow and ``flow.anchor_width =
    inf``) it stays. A push that does not move the mean mid up has no half-life.

    Parameters
    ----------
    config : MarketMakingConfig
        The market (a simulated one: its flow, levels, capacities, warm-up).
    push_lots : int
        Size of the market buy, lots. A push that empties the ask side of a book is counted in
        ``emptied``; that book's last known ask is then the push's last fill.
    seconds : float
        Horizon after the push, seconds (rounded up to whole intervals).
    num_envs : int
        Number of independent books (at least 2: the standard error needs two).
    seed : int
        Seed of the books' generators.
    interval : float
        Seconds between two recorded mids (at most ``seconds``).

    Returns
    -------
    PushResponse
        The mean displacement of the mid from its value before the push (ticks) at each
        recorded time, its standard error, and the half-life.

    Examples
    --------
    >>> from fastlob import MarketMakingConfig
    >>> market = MarketMakingConfig().replace(flow={"informed_tilt": 0.0, "anchor_width": 2.0})
    >>> response = push_response(market, push_lots=4, seconds=20, interval=0.1)
    >>> response.decayed, response.half_life < 2.0
    (True, True)
    """
    push_lots = check_int("push_lots", push_lots, 1, 2**31 - 1)
    seconds = check_real("seconds", seconds, 0.0, 30 * 86_400.0, low_open=True)
    interval = check_real("interval", interval, 0.0, seconds, low_open=True)
    num_envs = check_int("num_envs", num_envs, 2, 2**20)  # a standard error needs two books
    spans = math.ceil(seconds / interval - 1e-9)
    check_fits_memory("seconds / interval", spans + 1, 8 * num_envs, "recorded mids")
    _, _, book = check_config(config)
    # a push fills at most push_lots resting orders, and no more than a book holds
    capacity = min(push_lots, book.order_capacity) + 64
    market = FlowBooks(config, num_envs, seed, trade_capacity=capacity)
    num_envs = market.num_envs
    market.run(config.warmup, 1.0)  # in spans of a second, so that each span's fills fit
    before = market.mids()
    emptied = market.push(push_lots)
    displacement = np.zeros((spans + 1, num_envs))
    displacement[0] = market.mids() - before
    for k in range(1, spans + 1):
        market.run(interval)
        displacement[k] = market.mids() - before
    mean = displacement.mean(axis=1)
    stderr = displacement.std(axis=1, ddof=1) / math.sqrt(num_envs)
    times = interval * np.arange(spans + 1)
    half = 0.5 * mean[0]
    below = np.flatnonzero(mean[1:] <= half) + 1 if mean[0] > 0 else np.zeros(0, np.int64)
    if below.size:
        k = int(below[0])
        drop = mean[k - 1] - mean[k]
        frac = (mean[k - 1] - half) / drop if drop > 0 else 1.0
        half_life = float(times[k - 1] + frac * interval)
    else:
        half_life = math.nan
    return PushResponse(
        times=times,
        displacement=mean,
        stderr=stderr,
        half_life=half_life,
        decayed=bool(below.size),
        emptied=emptied,
        num_envs=num_envs,
    )
