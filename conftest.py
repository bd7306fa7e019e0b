"""How the repository's pytest runs treat the benchmark suite (bench/, collected beside tests/).

``pytest --benchmark-only`` runs the benchmarks and nothing else, at their full sizes, and
saves every run's JSON in ``.benchmarks/`` (``--benchmark-autosave``; not for runs of
``fastlob bench-guard``, which keeps its own). Any other run — plain ``pytest`` — runs each
benchmark's body once at tiny sizes with pytest-benchmark disabled: a smoke test that fails if a
benchmark no longer runs, and times nothing.
"""

from __future__ import annotations

import os

import pytest


@pytest.hookimpl(tryfirst=True)  # before pytest-benchmark reads its options
def pytest_configure(config):
    if config.getoption("benchmark_only", default=False):
        os.environ["FASTLOB_BENCH_SMOKE"] = "0"
        if not os.environ.get("FASTLOB_BENCH_NO_AUTOSAVE") and not config.option.benchmark_save:
            from pytest_benchmark.utils import get_tag

            config.option.benchmark_autosave = get_tag()  # what --benchmark-autosave stores
    else:
        os.environ["FASTLOB_BENCH_SMOKE"] = "1"
        config.option.benchmark_disable = True
