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
    assert column(M.fill_rate(FILLS, STEPS), "fill_rate") == pytest.approx([4 / 10, 1 / 2])
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
