"""Market-making metrics on polars DataFrames of per-step and per-fill records.

Per-step records (one row per env-step): ``episode`` (int), ``step`` (int, 1 for the first step
of an episode), ``pnl`` (float, mark-to-market PnL after the step, currency, 0 before the first
step), ``inventory`` (int, lots after the step), ``mid`` (float, after the step); optional
``quoted_qty`` (lots that reached the book this step) and ``at_touch`` (0, 1 or 2: live quotes at
the best price of their side).

Per-fill records (one row per fill): ``episode``, ``step`` (the step during which it happened),
``side`` (+1 the market maker bought, -1 sold), ``price``, ``qty`` (lots) and ``mid`` (just
before the fill), prices in the same units as the steps' ``mid``.

Markouts and adverse selection are measured against the other traders' mid, so that the market
maker's own quotes (which set the mid when one rests alone at the touch) and its own impact never
count as the market's move: from the fill's ``reference_mid`` to the steps' ``others_mid`` at the
horizon, the columns ``fastlob.recording`` writes. Frames without them (records from elsewhere)
are measured from ``mid`` to ``mid``.

Every function returns one row per episode (or per episode and horizon), so that the caller
aggregates across episodes with whatever statistics it wants.
"""

from __future__ import annotations

import itertools
import math

import polars as pl

_KEY = ["episode"]


def _increments(steps: pl.DataFrame) -> pl.DataFrame:
    """Per-step PnL change, the first one measured from 0."""
    return steps.sort(["episode", "step"]).with_columns(
        (pl.col("pnl") - pl.col("pnl").shift(1, fill_value=0.0).over("episode")).alias("dpnl")
    )


def episode_pnl(steps: pl.DataFrame) -> pl.DataFrame:
    """``pnl``: the PnL after the last step of each episode."""
    return (
        steps.sort(["episode", "step"])
        .group_by(_KEY, maintain_order=True)
        .agg(pl.col("pnl").last())
    )


def sharpe(steps: pl.DataFrame, periods_per_year: float | None = None) -> pl.DataFrame:
    """``sharpe = mean(dPnL) / std(dPnL)`` over the per-step PnL changes of each episode (sample
    std, ddof 1), times ``sqrt(periods_per_year)`` only if a period count is given: the ratio is
    per sampling interval unless annualised with the number of steps in a year. 0 when the std
    is 0. (Multiplying per-step ratios by sqrt(252), as if steps were days, is wrong.)"""
    scale = 1.0 if periods_per_year is None else math.sqrt(periods_per_year)
    out = (
        _increments(steps)
        .group_by(_KEY, maintain_order=True)
        .agg(pl.col("dpnl").mean().alias("mean"), pl.col("dpnl").std(ddof=1).alias("std"))
    )
    return out.select(
        "episode",
        pl.when(pl.col("std") > 0)
        .then(pl.col("mean") / pl.col("std") * scale)
        .otherwise(0.0)
        .alias("sharpe"),
    )


def sortino(steps: pl.DataFrame, periods_per_year: float | None = None) -> pl.DataFrame:
    """``sortino = mean(dPnL) / sqrt(mean(min(dPnL, 0)^2))`` per episode (downside deviation
    about 0 over all steps), scaled like :func:`sharpe`; 0 without a losing step."""
    scale = 1.0 if periods_per_year is None else math.sqrt(periods_per_year)
    out = (
        _increments(steps)
        .group_by(_KEY, maintain_order=True)
        .agg(
            pl.col("dpnl").mean().alias("mean"),
            (pl.col("dpnl").clip(upper_bound=0.0) ** 2).mean().sqrt().alias("downside"),
        )
    )
    return out.select(
        "episode",
        pl.when(pl.col("downside") > 0)
        .then(pl.col("mean") / pl.col("downside") * scale)
        .otherwise(0.0)
        .alias("sortino"),
    )


def max_drawdown(steps: pl.DataFrame) -> pl.DataFrame:
    """``max_drawdown = max_t (max(0, max_{s<=t} pnl_s) - pnl_t)``, in currency: the largest fall
    from the running peak (the start, PnL 0, counts as a peak). In currency rather than as a
    ratio to the peak, which explodes when the peak is near 0."""
    ordered = steps.sort(["episode", "step"]).with_columns(
        pl.col("pnl").cum_max().over("episode").clip(lower_bound=0.0).alias("peak")
    )
    return ordered.group_by(_KEY, maintain_order=True).agg(
        (pl.col("peak") - pl.col("pnl")).max().clip(lower_bound=0.0).alias("max_drawdown")
    )


def inventory_stats(steps: pl.DataFrame) -> pl.DataFrame:
    """``inventory_mean``, ``inventory_var`` (population variance over steps) and
    ``inventory_max`` (largest |inventory|) per episode."""
    return steps.group_by(_KEY, maintain_order=True).agg(
        pl.col("inventory").mean().alias("inventory_mean"),
        pl.col("inventory").var(ddof=0).alias("inventory_var"),
        pl.col("inventory").abs().max().alias("inventory_max"),
    )


def fill_ratio(fills: pl.DataFrame, steps: pl.DataFrame) -> pl.DataFrame:
    """``fill_ratio = sum(filled qty) / sum(quoted qty)`` per episode (needs ``quoted_qty`` in the
    steps; 0 for an episode that quoted nothing): how much of what was sent traded, which falls
    the more often a policy re-quotes. Not the probability that a resting quote fills (see
    :func:`fill_rate_by_queue_and_size`, per resting lot)."""
    quoted = steps.group_by(_KEY).agg(pl.col("quoted_qty").sum().alias("quoted"))
    filled = fills.group_by(_KEY).agg(pl.col("qty").sum().alias("filled"))
    out = quoted.join(filled, on="episode", how="left").fill_null(0)
    return out.sort("episode").select(
        "episode",
        pl.when(pl.col("quoted") > 0)
        .then(pl.col("filled") / pl.col("quoted"))
        .otherwise(0.0)
        .alias("fill_ratio"),
    )


def spread_captured(fills: pl.DataFrame) -> pl.DataFrame:
    """``spread_captured = sum(side * (mid - price) * qty) / sum(qty)`` per episode: how far from
    the mid each filled lot traded in the market maker's favour (negative: it paid the spread)."""
    captured = (pl.col("side") * (pl.col("mid") - pl.col("price")) * pl.col("qty")).sum()
    return fills.group_by(_KEY, maintain_order=True).agg(
        (captured / pl.col("qty").sum()).alias("spread_captured")
    )


def turnover(fills: pl.DataFrame) -> pl.DataFrame:
    """``turnover_qty = sum(qty)`` (lots) and ``turnover_notional = sum(price * qty)`` per
    episode (in price units times lots)."""
    return fills.group_by(_KEY, maintain_order=True).agg(
        pl.col("qty").sum().alias("turnover_qty"),
        (pl.col("price") * pl.col("qty")).sum().alias("turnover_notional"),
    )


def _markout_mids(fills: pl.DataFrame, steps: pl.DataFrame):
    """The mid column a horizon is marked at (in ``steps``) and the one a fill is marked from
    (in ``fills``): the other traders' mids where the frames have them (module docstring)."""
    later = "others_mid" if "others_mid" in steps.columns else "mid"
    reference = "reference_mid" if "reference_mid" in fills.columns else "mid"
    return later, reference


def markouts(fills: pl.DataFrame, steps: pl.DataFrame, horizons=(1, 5, 10)) -> pl.DataFrame:
    """For each horizon h (steps) and episode: ``markout = sum(side * (mid_{t+h} - price) * qty)
    / sum(qty)`` (the fills' PnL per lot marked at the mid h steps after the step t of the fill)
    and ``adverse_rate`` = the fraction of fills with ``side * (mid_{t+h} - mid) < 0`` (the mid
    moved against the fill), both against the other traders' mid (module docstring). Fills
    whose horizon falls after the episode's last step are left out (``fills`` counts those
    marked)."""
    later, reference = _markout_mids(fills, steps)
    mids = steps.select("episode", "step", pl.col(later).alias("mid_later"))
    side, qty = pl.col("side"), pl.col("qty")
    marked_pnl = (side * (pl.col("mid_later") - pl.col("price")) * qty).sum() / qty.sum()
    adverse = (side * (pl.col("mid_later") - pl.col(reference)) < 0).mean()
    frames = []
    for h in horizons:
        marked = fills.with_columns((pl.col("step") + h).alias("later")).join(
            mids, left_on=["episode", "later"], right_on=["episode", "step"], how="inner"
        )
        frames.append(
            marked.group_by(_KEY, maintain_order=True).agg(
                pl.lit(h).alias("horizon"),
                marked_pnl.alias("markout"),
                adverse.alias("adverse_rate"),
                pl.len().alias("fills"),
            )
        )
    return pl.concat(frames).sort(["episode", "horizon"])


def time_at_touch(steps: pl.DataFrame) -> pl.DataFrame:
    """``time_at_touch = mean(at_touch) / 2`` per episode: the fraction of (step, side) pairs with
    a live quote at the best price of its side."""
    return steps.group_by(_KEY, maintain_order=True).agg(
        (pl.col("at_touch").mean() / 2).alias("time_at_touch")
    )


# ---------------------------------------------------------------------------------------------
# bucketed tables: the data behind the heatmaps of fastlob.figures
# ---------------------------------------------------------------------------------------------


def bucket_labels(breaks) -> list[str]:
    """Labels of the buckets that ``breaks`` (increasing) cut the line into: bucket 0 is
    ``(-inf, b0)``, bucket i is ``[b(i-1), bi)``, the last is ``[b(-1), inf)``."""
    edges = ["-inf", *(f"{b:g}" for b in breaks), "inf"]
    return [f"{'(' if i == 0 else '['}{edges[i]}, {edges[i + 1]})" for i in range(len(edges) - 1)]


def _bucket(column: str, breaks) -> pl.Expr:
    """The bucket index of ``column`` (see :func:`bucket_labels`): the number of breaks <= it."""
    if not breaks:
        return pl.lit(0, pl.Int64)
    return pl.sum_horizontal([(pl.col(column) >= b).cast(pl.Int64) for b in breaks])


def _check_breaks(name: str, breaks) -> list[float]:
    breaks = [float(b) for b in breaks]
    if any(b >= c for b, c in itertools.pairwise(breaks)):
        raise ValueError(f"{name} must be strictly increasing, got {breaks}")
    return breaks


def pnl_by_inventory_and_spread(
    steps: pl.DataFrame, inventory_breaks, spread_breaks
) -> pl.DataFrame:
    """Mean PnL change per step by the inventory held at the start of the step (lots; 0 before
    the first step) and the spread quoted in it (``quote_spread``, ticks; steps without a
    two-sided quote are left out).

    Returns one row per non-empty cell: ``inventory_bucket``, ``spread_bucket`` (indices into
    :func:`bucket_labels` of the breaks), ``mean_dpnl = sum(dPnL) / steps`` and ``steps``.
    """
    inventory_breaks = _check_breaks("inventory_breaks", inventory_breaks)
    spread_breaks = _check_breaks("spread_breaks", spread_breaks)
    rows = _increments(steps).with_columns(
        pl.col("inventory").shift(1, fill_value=0).over("episode").alias("inventory_before")
    )
    return (
        rows.filter(pl.col("quote_spread").is_not_null())
        .with_columns(
            _bucket("inventory_before", inventory_breaks).alias("inventory_bucket"),
            _bucket("quote_spread", spread_breaks).alias("spread_bucket"),
        )
        .group_by("inventory_bucket", "spread_bucket")
        .agg(pl.col("dpnl").mean().alias("mean_dpnl"), pl.len().alias("steps"))
        .sort("inventory_bucket", "spread_bucket")
    )


def _resting_quotes(steps: pl.DataFrame) -> pl.DataFrame:
    """One row per (episode, step t, side) whose quote rested at the end of step t - 1: its queue
    ahead and remaining lots then."""
    frames = []
    for side, name in ((1, "bid"), (-1, "ask")):
        frames.append(
            steps.select(
                "episode",
                (pl.col("step") + 1).alias("step"),
                pl.lit(side, pl.Int64).alias("side"),
                pl.col(f"{name}_queue").cast(pl.Float64).alias("queue"),
                pl.col(f"{name}_left").cast(pl.Int64).alias("size"),
            ).filter(pl.col("size") > 0)
        )
    present = steps.select("episode", "step")
    return pl.concat(frames).join(present, on=["episode", "step"], how="semi")


def fill_rate_by_queue_and_size(
    steps: pl.DataFrame, fills: pl.DataFrame, queue_breaks, size_breaks
) -> pl.DataFrame:
    """Next-step fill rate of resting quotes by queue position and size.

    For each step t and side whose quote rested at the end of step t - 1 with ``queue`` lots
    ahead of it (``bid_queue`` / ``ask_queue``) and ``size`` lots left (``bid_left`` /
    ``ask_left``): ``filled = min(maker lots filled on that side during step t, size)``.
    (The quote may be replaced ``latency`` into step t; a replacement's fills count too.)
    Per cell: ``fill_rate = sum(filled) / sum(size)`` and ``quotes``, the number of such
    (step, side) pairs; cells indexed ``queue_bucket`` and ``size_bucket`` as in
    :func:`bucket_labels`. Needs ``taker`` in the fills.
    """
    queue_breaks = _check_breaks("queue_breaks", queue_breaks)
    size_breaks = _check_breaks("size_breaks", size_breaks)
    maker = (
        fills.filter(~pl.col("taker"))
        .group_by("episode", "step", "side")
        .agg(pl.col("qty").sum().alias("filled"))
    )
    rows = (
        _resting_quotes(steps)
        .join(maker, on=["episode", "step", "side"], how="left")
        .with_columns(pl.min_horizontal(pl.col("filled").fill_null(0), "size").alias("filled"))
    )
    return (
        rows.with_columns(
            _bucket("queue", queue_breaks).alias("queue_bucket"),
            _bucket("size", size_breaks).alias("size_bucket"),
        )
        .group_by("queue_bucket", "size_bucket")
        .agg(
            (pl.col("filled").sum() / pl.col("size").sum()).alias("fill_rate"),
            pl.len().alias("quotes"),
        )
        .sort("queue_bucket", "size_bucket")
    )


def realized_volatility(steps: pl.DataFrame, window: int) -> pl.DataFrame:
    """``volatility``: per step, the sample std of the mid's last ``window`` per-step changes
    within the episode (the change into step 1 is not known and left out); null until two
    changes are known."""
    if window < 2:
        raise ValueError(f"window must be at least 2 steps, got {window}")
    ordered = steps.sort(["episode", "step"])
    change = pl.col("mid") - pl.col("mid").shift(1).over("episode")
    return ordered.select(
        "episode",
        "step",
        change.rolling_std(window, min_samples=2).over("episode").alias("volatility"),
    )


def adverse_by_time_and_volatility(
    fills: pl.DataFrame,
    steps: pl.DataFrame,
    horizon: int,
    time_breaks,
    volatility_breaks,
    window: int = 20,
    episode_steps: int | None = None,
) -> pl.DataFrame:
    """Adverse-selection rate by time of episode and recent volatility.

    A fill at step t is adverse when ``side * (mid_{t+horizon} - mid) < 0``, against the other
    traders' mid (as in :func:`markouts`; fills whose horizon falls after the episode are left
    out). Its time is
    ``t / episode_steps`` (``episode_steps`` defaults to the longest episode in ``steps``) and
    its volatility :func:`realized_volatility` at step t (fills before two mid changes are known
    are left out). Per cell: ``adverse_rate`` (fraction of fills) and ``fills``; cells indexed
    ``time_bucket`` and ``volatility_bucket`` as in :func:`bucket_labels`.
    """
    time_breaks = _check_breaks("time_breaks", time_breaks)
    volatility_breaks = _check_breaks("volatility_breaks", volatility_breaks)
    length = episode_steps if episode_steps is not None else steps["step"].max()
    later_mid, reference = _markout_mids(fills, steps)
    later = steps.select(
        "episode", (pl.col("step") - horizon).alias("step"), pl.col(later_mid).alias("mid_later")
    )
    marked = (
        fills.join(later, on=["episode", "step"], how="inner")
        .join(realized_volatility(steps, window), on=["episode", "step"], how="inner")
        .filter(pl.col("volatility").is_not_null())
        .with_columns((pl.col("step") / length).alias("time"))
    )
    adverse = pl.col("side") * (pl.col("mid_later") - pl.col(reference)) < 0
    return (
        marked.with_columns(
            _bucket("time", time_breaks).alias("time_bucket"),
            _bucket("volatility", volatility_breaks).alias("volatility_bucket"),
        )
        .group_by("time_bucket", "volatility_bucket")
        .agg(adverse.mean().alias("adverse_rate"), pl.len().alias("fills"))
        .sort("time_bucket", "volatility_bucket")
    )


def inventory_distribution(steps: pl.DataFrame) -> pl.DataFrame:
    """``inventory`` (lots), ``steps`` (how many steps ended holding it) and ``fraction`` of all
    steps, over every episode in ``steps``."""
    return (
        steps.group_by("inventory")
        .agg(pl.len().alias("steps"))
        .with_columns((pl.col("steps") / pl.col("steps").sum()).alias("fraction"))
        .sort("inventory")
    )
