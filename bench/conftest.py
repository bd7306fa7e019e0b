"""pytest-benchmark's machine info gets fastlob's (threads, versions); the helpers the
benchmarks import are in bench_support.py."""

from __future__ import annotations

from bench_support import machine


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["fastlob"] = machine()
