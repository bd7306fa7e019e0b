"""Benchmark helpers: the plain-Python reference lives in tests/, and every table states its
machine. Run with ``pytest bench --benchmark-only``."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

import numba
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the reference book is a test artefact

LOBSTER_DIR = Path(
    os.environ.get("FASTLOB_LOBSTER_DIR", ROOT.parent / "shared" / "data" / "lobster")
)


def machine() -> dict:
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "numba_threads": numba.get_num_threads(),
        "python": platform.python_version(),
        "numba": numba.__version__,
        "numpy": np.__version__,
    }


def host_now() -> dict:
    """The host's state just after a benchmark (``fastlob.profiling.host_speed``: ns per round
    of a register-only loop, alone and on every thread at once, and ns per dependent load over
    8 MiB): on a shared machine the same code runs slower when the neighbours load the cores,
    and the ~1-event step at large N much slower when they take the
    shared L3; this says which spell a figure was taken in."""
    from fastlob.profiling import host_speed

    speed = host_speed()
    return {
        "host_one_thread_ns": speed["one_thread_ns"],
        "host_all_threads_ns": speed["all_threads_ns"],
        "host_load_ns": speed["load_ns"],
    }


def host_text(host: dict) -> str:
    return (
        f"host: {host['host_one_thread_ns']:.2f} ns/round alone, "
        f"{host['host_all_threads_ns']:.2f} on every thread, {host['host_load_ns']:.0f} ns per "
        f"load over 8 MiB (lower: quieter)"
    )


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["fastlob"] = machine()
