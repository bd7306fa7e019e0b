"""Calibrating a full LOBSTER day: a day of the default market's flow (about 400,000 messages,
written by ``fastlob.data.simulated``) read and fitted by ``fastlob.calibration.fit_lobster``,
and the simulation of that day. The target (the docs' benchmarks page) is under 10 s to
calibrate."""

from __future__ import annotations

from bench_support import machine, sized, smoke_run

from fastlob import FlowParams, MarketMakingConfig
from fastlob.calibration import fit_lobster
from fastlob.data.lobster import write_day
from fastlob.data.simulated import simulate_day

#: a market whose day holds about 400,000 messages (the default rates, Hawkes market orders)
MARKET = MarketMakingConfig(
    flow=FlowParams(informed_tilt=0.0, fair_sigma=0.0, hawkes_alpha=0.5, hawkes_beta=2.0),
    order_capacity=1024,
    ladder_levels=256,
)
SECONDS = sized(10_800.0, 60.0)


def test_calibrate_a_full_day(benchmark, tmp_path):
    day = simulate_day(MARKET, SECONDS, seed=1)
    message, orderbook = write_day(day, tmp_path)
    fit_lobster(message, orderbook, lot_size=100)  # compile (or load) the kernels first

    fit = benchmark.pedantic(
        lambda: fit_lobster(message, orderbook, lot_size=100), rounds=3, iterations=1
    )
    assert fit.counters["messages"] == len(day.messages)
    if smoke_run():
        return
    seconds = benchmark.stats.stats.median
    benchmark.extra_info.update(
        messages=len(day.messages),
        messages_per_s=len(day.messages) / seconds,
        seconds_to_calibrate=seconds,
        **machine(),
    )
    print(
        f"\ncalibrate a day of {len(day.messages):,} messages: {seconds:.2f} s "
        f"({len(day.messages) / seconds / 1e3:.0f} k messages/s)  [{machine()}]"
    )


def test_simulate_a_full_day(benchmark):
    simulate_day(MARKET, 10.0, seed=1)  # compile (or load) the kernels first
    day = benchmark.pedantic(lambda: simulate_day(MARKET, SECONDS, seed=2), rounds=3)
    if smoke_run():
        return
    seconds = benchmark.stats.stats.median
    benchmark.extra_info.update(
        messages=len(day.messages), messages_per_s=len(day.messages) / seconds, **machine()
    )
    print(f"\nsimulate a day: {len(day.messages):,} messages in {seconds:.2f} s  [{machine()}]")
