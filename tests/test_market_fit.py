"""Real markets, part 1: the simulator exported as LOBSTER, the market fitted back to it, and the
simulated market set beside a real one.

The estimators are tested by recovering known parameters: an hour of a market's flow is
simulated, written as a LOBSTER pair, read back and fitted, and every estimate must lie within
three of its standard errors of the truth.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess

import numpy as np
import pytest
from scipy.stats import chisquare

from fastlob import FlowParams, MarketMakingConfig, MarketMakingVectorEnv
from fastlob._kernels.flow import cst_cancel_rates, cst_limit_rates
from fastlob.calibration import fit_day, fit_lobster
from fastlob.cli import main
from fastlob.data.lobster import LobsterFormatError, read_day, replay_lobster, write_day
from fastlob.data.simulated import simulate_day
from fastlob.env import check_config
from fastlob.realism import CURVES, DISTRIBUTIONS, market_statistics, realism, write_realism

UNINFORMED = MarketMakingConfig(
    flow=FlowParams(informed_tilt=0.0, fair_sigma=0.0), order_capacity=1024, ladder_levels=256
)
STEEP = tuple(3.0 * 0.7**i for i in range(10))
MARKETS = {
    "cst": UNINFORMED,
    "steeper_lambda": UNINFORMED.replace(limit_rates=STEEP),
    "hawkes": UNINFORMED.replace(flow={"hawkes_alpha": 0.8, "hawkes_beta": 2.0}),
    "sizes": UNINFORMED.replace(limit_sizes=(0.5, 0.3, 0.2), market_sizes=(0.3, 0.4, 0.2, 0.1)),
}


@pytest.fixture(scope="module", params=sorted(MARKETS))
def fitted(request, tmp_path_factory):
    """An hour of each market, written as LOBSTER, read back and fitted (lot 100 shares, the
    truth's D = 10)."""
    config = MARKETS[request.param]
    day = simulate_day(config, 3600.0, seed=7)
    folder = tmp_path_factory.mktemp(request.param)
    message, orderbook = write_day(day, folder)
    fit = fit_lobster(message, orderbook, lot_size=100, levels=10)
    return request.param, config, fit, (message, orderbook)


def test_every_rate_is_recovered_within_three_standard_errors(fitted):
    name, config, fit, _ = fitted
    lam = np.asarray(config.limit_rates or cst_limit_rates(10))
    theta = cst_cancel_rates(10)
    assert fit.tick_units == 100 and fit.lot_size == 100 and fit.levels == 10
    for i, (estimate, truth) in enumerate(zip(fit.limit_rates, lam, strict=True)):
        assert estimate.within(truth), (name, "lambda", i + 1, estimate, truth)
    for i, (estimate, truth) in enumerate(zip(fit.cancel_rates, theta, strict=True)):
        assert estimate.within(truth), (name, "theta", i + 1, estimate, truth)
    mu = config.flow.market_rate
    if config.flow.hawkes_alpha > 0:
        h = fit.hawkes
        assert h.significant, h
        assert h.market_rate.within(mu), (name, h)
        assert h.alpha.within(config.flow.hawkes_alpha), (name, h)
        assert h.beta.within(config.flow.hawkes_beta), (name, h)
        assert fit.config().flow.hawkes_alpha == h.alpha.value
    else:
        assert fit.market_rate.within(mu), (name, fit.market_rate)
        assert not fit.hawkes.significant or fit.hawkes.alpha.within(0.0)


def test_the_size_distributions_are_recovered_within_sampling_error(fitted):
    name, config, fit, _ = fitted
    for truth, estimate, kind in (
        (config.limit_sizes, fit.limit_sizes, "limit"),
        (config.market_sizes, fit.market_sizes, "market"),
    ):
        if truth is None:
            assert estimate.tolist() == [1.0], (name, kind)  # unit sizes
            continue
        truth = np.asarray(truth) / np.sum(truth)
        assert len(estimate) == len(truth), (name, kind)
        count = fit.counters["submissions_used" if kind == "limit" else "market_orders"]
        observed = estimate * count
        # market orders are cut where the opposite side runs dry, so the test is lenient
        assert chisquare(observed, truth * observed.sum()).pvalue > 1e-4, (name, kind, estimate)


def test_the_fitted_market_is_a_valid_market_file_and_an_env(fitted):
    _, _, fit, _ = fitted
    config = fit.config()
    check_config(config)
    assert MarketMakingConfig.from_json(config.to_json()) == config
    env = MarketMakingVectorEnv(2, config=config.replace(episode_steps=3, warmup=1.0))
    env.reset(seed=1)
    env.step(np.tile(np.float32([1, 1, 1, 1, 0]), (2, 1)))


def test_an_exported_pair_is_a_valid_lobster_file_that_replays_row_by_row(tmp_path):
    for config, warmup in ((UNINFORMED, 0.0), (MARKETS["sizes"], 30.0), (MarketMakingConfig(), 0)):
        day = simulate_day(config, 120.0, seed=3, warmup=warmup)
        message, orderbook = write_day(day, tmp_path / f"w{warmup}")
        result = replay_lobster(message, orderbook, repeat=1)
        assert result.rows_compared == len(day.messages) > 1000
        assert result.rows_matched == result.rows_compared
        assert set(np.unique(day.messages[:, 0])) <= {1, 3, 4}  # the flow's kinds of event
        back = read_day(message, orderbook)
        assert np.array_equal(back.rows, day.rows) and np.array_equal(back.messages, day.messages)


def test_simulate_checks_its_arguments():
    with pytest.raises(ValueError, match=r"config\.tick_size"):
        simulate_day(UNINFORMED.replace(tick_size=0.00005), 10.0)
    with pytest.raises(ValueError, match="seconds"):
        simulate_day(UNINFORMED, -1.0)


def write_lines(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def test_too_little_data_for_an_estimator_is_a_named_error(tmp_path, capsys):
    day = simulate_day(UNINFORMED.replace(flow={"market_rate": 0.0}), 300.0, seed=1)
    with pytest.raises(ValueError, match="market orders"):
        fit_day(day, lot_size=100, levels=10)
    message, orderbook = write_day(day, tmp_path)
    assert main(["calibrate", str(message), str(orderbook), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "mu cannot be fitted" in err
    assert not (tmp_path / "m").exists()


def test_a_malformed_file_is_named_as_replay_names_it(tmp_path, capsys):
    message = write_lines(tmp_path / "m.csv", ["34200.1,1,1,100,1000000,1", "34200.2,9,1,1,1,1"])
    orderbook = write_lines(tmp_path / "o.csv", ["1000100,100,1000000,100"] * 2)
    assert main(["calibrate", str(message), str(orderbook)]) == 2
    assert "line 2, field type" in capsys.readouterr().err
    with pytest.raises(LobsterFormatError):
        fit_lobster(message, orderbook)


def test_the_commands_chain(tmp_path, capsys):
    """simulate -> calibrate -> realism from the command line, and train on the fitted market."""
    out = tmp_path / "data"
    assert main(["simulate", "--seconds", "120", "--seed", "2", "--lobster-out", str(out)]) == 0
    message = str(next(out.glob("*_message_*.csv")))
    orderbook = str(next(out.glob("*_orderbook_*.csv")))
    market = tmp_path / "market.json"
    assert main(["calibrate", message, orderbook, "--out", str(market), "--lot-size", "100"]) == 0
    assert "lambda(i)" in capsys.readouterr().out
    config = MarketMakingConfig.from_file(market)
    assert config.flow_levels >= 1 and config.tick_size == pytest.approx(0.01)
    page = tmp_path / "realism.html"
    argv = ["realism", str(market), message, orderbook, "--out", str(page), "--runs", "2",
            "--warmup", "30", "--json"]  # fmt: skip
    assert main(argv) == 0
    table = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {row["statistic"] for row in table} == set(DISTRIBUTIONS) | set(CURVES)
    assert page.stat().st_size > 1_000_000


# ---------------------------------------------------------------------------------------------
# the real sample
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def aapl(tmp_path_factory):
    from support import LOBSTER_MESSAGES, LOBSTER_ORDERBOOK

    if not (LOBSTER_MESSAGES.is_file() and LOBSTER_ORDERBOOK.is_file()):
        pytest.skip("LOBSTER sample not found (set FASTLOB_LOBSTER_DIR)")
    fit = fit_lobster(LOBSTER_MESSAGES, LOBSTER_ORDERBOOK)
    day = read_day(LOBSTER_MESSAGES, LOBSTER_ORDERBOOK)
    comparison = realism(fit.config(), day, runs=2, warmup=60.0)
    page = write_realism(comparison, tmp_path_factory.mktemp("realism") / "realism.html")
    return fit, day, comparison, page


def test_the_sample_calibrates_to_a_valid_market(aapl):
    fit = aapl[0]
    assert fit.tick_units == 100 and fit.levels >= 10
    assert fit.counters["hidden_executions"] == 61  # type 5 in the sample, counted apart
    values = [e.value for e in fit.limit_rates + fit.cancel_rates] + [fit.market_rate.value]
    assert all(math.isfinite(v) and v >= 0 for v in values)
    assert all(e.value > 0 for e in fit.cancel_rates)
    check_config(fit.config())


def test_every_statistic_of_the_sample_and_its_simulation_is_finite(aapl):
    _, day, comparison, _ = aapl
    for stats in (comparison.real, comparison.simulated, market_statistics(day, 100.0)):
        for name, values in stats.items():
            assert values.size and np.all(np.isfinite(values)), name
    for name, distances in comparison.distances.items():
        assert all(math.isfinite(d) and d >= 0 for d in distances.values()), name


def _chromium():
    return next(
        (shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None
    )


@pytest.mark.skipif(
    _chromium() is None,
    reason="no headless browser: install Debian's chromium to check the realism page draws",
)
def test_the_realism_page_draws_every_figure_in_headless_chromium(aapl, tmp_path):
    page = aapl[3]
    command = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
               "--virtual-time-budget=20000", "--dump-dom", page.as_uri()]  # fmt: skip
    dom = subprocess.run(command, capture_output=True, text=True, timeout=120).stdout
    drawn = dom.count('class="main-svg"')
    assert drawn >= len(DISTRIBUTIONS) + len(CURVES), drawn
