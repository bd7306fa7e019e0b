"""Each metric against a hand-computed example (the arithmetic is in the comments)."""

from __future__ import annotations

import math

import polars as pl
import pytest

from fastlob import metrics as M

STEPS = pl.DataFrame(
    {
        "episode": [0, 0, 0, 0, 0, 1, 1],
        "step": [1, 2, 3, 4, 5, 1, 2],
        "pnl": [1.0, 3.0, 2.0, -1.0, 4.0, -1.0, -2.0],
        "inventory": [1, 2, 0, -2, 1, 1, 1],
        "mid": [10.0, 10.5, 10.0, 9.5, 10.5, 10.0, 9.7],
        "quoted_qty": [2, 2, 2, 2, 2, 1, 1],
        "at_touch": [2, 1, 0, 1, 2, 0, 0],
    }
)
FILLS = pl.DataFrame(
    {
        "episode": [0, 0, 0, 1],
        "step": [1, 2, 4, 1],
        "side": [1, -1, 1, 1],
        "price": [9.5, 11.0, 9.0, 9.8],
        "qty": [1, 2, 1, 1],
        "mid": [10.0, 10.5, 9.5, 10.0],
    }
)


def column(frame, name):
    return frame.sort("episode")[name].to_list()


def test_episode_pnl():
    assert column(M.episode_pnl(STEPS), "pnl") == [4.0, -2.0]


def test_sharpe_per_step_and_annualised_only_on_request():
    # episode 0: dPnL = 1, 2, -1, -3, 5: mean 0.8, sample var 36.8 / 4 = 9.2
    expected = 0.8 / math.sqrt(9.2)
    assert column(M.sharpe(STEPS), "sharpe") == pytest.approx([expected, 0.0])  # ep 1: std 0
    assert column(M.sharpe(STEPS, periods_per_year=4), "sharpe")[0] == pytest.approx(2 * expected)


def test_sortino():
    # downside: min(dPnL, 0) = 0, 0, -1, -3, 0 -> sqrt((1 + 9) / 5) = sqrt(2)
    assert column(M.sortino(STEPS), "sortino")[0] == pytest.approx(0.8 / math.sqrt(2))
    # episode 1: dPnL = -1, -1: mean -1, downside 1
    assert column(M.sortino(STEPS), "sortino")[1] == pytest.approx(-1.0)


def test_max_drawdown_in_currency_from_a_peak_including_the_start():
    # episode 0: peaks 1, 3, 3, 3, 4 -> falls 0, 0, 1, 4, 0; episode 1: peak 0 -> falls 1, 2
    assert column(M.max_drawdown(STEPS), "max_drawdown") == [4.0, 2.0]


def test_inventory_stats():
    stats = M.inventory_stats(STEPS).sort("episode")
    assert stats["inventory_mean"][0] == pytest.approx(0.4)
    assert stats["inventory_var"][0] == pytest.approx(9.2 / 5)  # deviations .6 1.6 -.4 -2.4 .6
    assert stats["inventory_max"].to_list() == [2, 1]


def test_fill_rate_spread_captured_turnover():
    assert column(M.fill_ratio(FILLS, STEPS), "fill_ratio") == pytest.approx([4 / 10, 1 / 2])
    # (10 - 9.5) * 1 + (-1) * (10.5 - 11) * 2 + (9.5 - 9) * 1 = 2.0 over 4 lots
    assert column(M.spread_captured(FILLS), "spread_captured")[0] == pytest.approx(0.5)
    turnover = M.turnover(FILLS).sort("episode")
    assert turnover["turnover_qty"].to_list() == [4, 1]
    assert turnover["turnover_notional"][0] == pytest.approx(9.5 + 22.0 + 9.0)


def test_markouts_and_adverse_selection_at_several_horizons():
    out = M.markouts(FILLS, STEPS, horizons=(1, 2))
    ep0 = out.filter(pl.col("episode") == 0).sort("horizon")
    # h = 1: mids 10.5, 10.0, 10.5 -> 1.0 + 2.0 + 1.5 over 4 lots; no adverse move
    # h = 2: mids 10.0, 9.5 (the third fill's step 6 is past the end) -> 0.5 + 3.0 over 3 lots
    assert ep0["markout"].to_list() == pytest.approx([4.5 / 4, 3.5 / 3])
    assert ep0["adverse_rate"].to_list() == [0.0, 0.0]
    assert ep0["fills"].to_list() == [3, 2]
    ep1 = out.filter(pl.col("episode") == 1)
    # bought at 9.8 with the mid at 10.0; one step later the mid is 9.7: -0.1, adverse
    assert ep1["markout"].to_list() == pytest.approx([-0.1])
    assert ep1["adverse_rate"].to_list() == [1.0]


def test_time_at_touch():
    assert column(M.time_at_touch(STEPS), "time_at_touch") == pytest.approx([0.6, 0.0])


# bucketed tables (the heatmaps' data); buckets: (-inf, b0) = 0, [b0, b1) = 1, ...


def cells(frame, keys, values):
    return {tuple(r[k] for k in keys): tuple(r[v] for v in values) for r in frame.to_dicts()}


def test_bucket_labels_and_breaks_must_increase():
    assert M.bucket_labels([0, 1.5]) == ["(-inf, 0)", "[0, 1.5)", "[1.5, inf)"]
    with pytest.raises(ValueError, match="spread_breaks"):
        M.pnl_by_inventory_and_spread(STEPS, [0], [3, 3])


def test_pnl_by_inventory_held_before_the_step_and_quoted_spread():
    steps = STEPS.with_columns(pl.Series("quote_spread", [2.0, 2.0, None, 4.0, 4.0, 2.0, 4.0]))
    out = M.pnl_by_inventory_and_spread(steps, inventory_breaks=[0, 1], spread_breaks=[3])
    # episode 0: inventory before 0 1 2 0 -2, dPnL 1 2 -1 -3 5 (step 3 has no two-sided quote)
    # episode 1: inventory before 0 1, dPnL -1 -1
    got = cells(out, ["inventory_bucket", "spread_bucket"], ["mean_dpnl", "steps"])
    assert got == {(0, 1): (5.0, 1), (1, 0): (0.0, 2), (1, 1): (-3.0, 1), (2, 0): (2.0, 1),
                   (2, 1): (-1.0, 1)}  # fmt: skip


def test_next_step_fill_rate_by_queue_and_size_counts_maker_lots_up_to_the_size():
    steps = pl.DataFrame(
        {
            "episode": [0, 0, 0],
            "step": [1, 2, 3],
            "bid_queue": [3.0, 0.0, 1.0],
            "bid_left": [2, 1, 1],
            "ask_queue": [-1.0, 5.0, 0.0],
            "ask_left": [0, 3, 1],
        }
    )
    fills = pl.DataFrame(
        {
            "episode": [0, 0, 0, 0],
            "step": [2, 2, 3, 3],
            "side": [1, 1, 1, -1],
            "qty": [1, 2, 2, 1],
            "taker": [False, True, False, False],
        }
    )
    out = M.fill_rate_by_queue_and_size(steps, fills, queue_breaks=[1], size_breaks=[2])
    # resting at the end of step 1: bid (queue 3, 2 lots) -> step 2 fills 1 maker lot (the
    # taker fill does not count); end of step 2: bid (0, 1) -> step 3 fills 2, capped at 1;
    # ask (5, 3) -> 1; the quotes resting after step 3 have no next step in the frame
    got = cells(out, ["queue_bucket", "size_bucket"], ["fill_rate", "quotes"])
    assert got == {(0, 0): (1.0, 1), (1, 1): (pytest.approx(2 / 5), 2)}


def test_adverse_rate_by_time_of_episode_and_recent_volatility():
    steps = pl.DataFrame(
        {"episode": [0] * 6, "step": [1, 2, 3, 4, 5, 6], "mid": [10.0, 11, 10, 12, 12, 13]}
    )
    # mid changes -, 1, -1, 2, 0, 1; two-change volatility: -, -, sqrt 2, sqrt 4.5, sqrt 2, ..
    assert M.realized_volatility(steps, 2)["volatility"].to_list()[:4] == [
        None, None, pytest.approx(math.sqrt(2)), pytest.approx(math.sqrt(4.5))
    ]  # fmt: skip
    fills = pl.DataFrame(
        {
            "episode": [0] * 5,
            "step": [2, 3, 4, 5, 6],
            "side": [1, 1, 1, -1, 1],
            "mid": [10.5, 10.0, 12.0, 12.0, 13.0],
        }
    )
    out = M.adverse_by_time_and_volatility(
        fills, steps, horizon=1, time_breaks=[0.6], volatility_breaks=[2], window=2
    )
    # step 2: volatility unknown; step 3 (time .5, vol 1.41): mid 10 -> 12, favourable;
    # step 4 (.67, 2.12): 12 -> 12, not adverse; step 5 (.83, 1.41): sold at 12, mid -> 13,
    # adverse; step 6: horizon after the episode
    got = cells(out, ["time_bucket", "volatility_bucket"], ["adverse_rate", "fills"])
    assert got == {(0, 0): (0.0, 1), (1, 0): (1.0, 1), (1, 1): (0.0, 1)}


def test_inventory_distribution():
    out = M.inventory_distribution(STEPS)
    # inventories 1 2 0 -2 1 1 1
    assert out["inventory"].to_list() == [-2, 0, 1, 2]
    assert out["steps"].to_list() == [1, 1, 4, 1]
    assert out["fraction"].to_list() == pytest.approx([1 / 7, 1 / 7, 4 / 7, 1 / 7])
