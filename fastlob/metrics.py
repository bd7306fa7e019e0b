"""Market-making metrics on polars DataFrames of per-step and per-fill records.

Per-step records (one row per env-step): ``episode`` (int), ``step`` (int, 1 for the first step
of an episode), ``pnl`` (float, mark-to-market PnL after the step, currency, 0 before the first
step), ``inventory`` (int, lots after the step), ``mid`` (float, after the step); optional
``quoted_qty`` (lots that reached the book this step) and ``at_touch`` (0, 1 or 2: live quotes at
the best price of their side).

Per-fill records (one row per fill): ``episode``, ``step`` (the step during which it happened),
``side`` (+1 the market maker bought, -1 sold), ``price``, ``qty`` (lots) and ``mid`` (just
before the fill), prices in the same units as the steps' ``mid``.

Every function returns one row per episode (or per episode and horizon), so that the caller
aggregates across episodes with whatever statistics it wants.
"""

from __future__ import annotations

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


def fill_rate(fills: pl.DataFrame, steps: pl.DataFrame) -> pl.DataFrame:
    """``fill_rate = sum(filled qty) / sum(quoted qty)`` per episode (needs ``quoted_qty`` in the
    steps; 0 for an episode that quoted nothing)."""
    quoted = steps.group_by(_KEY).agg(pl.col("quoted_qty").sum().alias("quoted"))
    filled = fills.group_by(_KEY).agg(pl.col("qty").sum().alias("filled"))
    out = quoted.join(filled, on="episode", how="left").fill_null(0)
    return out.sort("episode").select(
        "episode",
        pl.when(pl.col("quoted") > 0)
        .then(pl.col("filled") / pl.col("quoted"))
        .otherwise(0.0)
        .alias("fill_rate"),
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


def markouts(fills: pl.DataFrame, steps: pl.DataFrame, horizons=(1, 5, 10)) -> pl.DataFrame:
    """For each horizon h (steps) and episode: ``markout = sum(side * (mid_{t+h} - price) * qty)
    / sum(qty)`` (the fills' PnL per lot marked at the mid h steps after the step t of the fill)
    and ``adverse_rate`` = the fraction of fills with ``side * (mid_{t+h} - mid) < 0`` (the mid
    moved against the fill). Fills whose horizon falls after the episode's last step are left
    out (``fills`` counts those marked)."""
    mids = steps.select("episode", "step", pl.col("mid").alias("mid_later"))
    side, qty = pl.col("side"), pl.col("qty")
    marked_pnl = (side * (pl.col("mid_later") - pl.col("price")) * qty).sum() / qty.sum()
    adverse = (side * (pl.col("mid_later") - pl.col("mid")) < 0).mean()
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
