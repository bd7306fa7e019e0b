"""What the benchmarks share: the machine they ran on, the host's state after each, the
location of the LOBSTER sample, and whether this is a smoke run.

``pytest --benchmark-only`` runs them as benchmarks; any other run of the suite (plain ``pytest``)
runs each benchmark's body once at tiny sizes as a smoke test, timing nothing (``smoke_run``;
the repository's conftest.py decides which)."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

import numba
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the plain-Python references are test artefacts

LOBSTER_DIR = Path(
    os.environ.get("FASTLOB_LOBSTER_DIR", ROOT.parent / "shared" / "data" / "lobster")
)


def smoke_run() -> bool:
    """Is this a smoke run (each benchmark's body once at tiny sizes, nothing timed or saved)?
    Read when asked: the repository's conftest.py decides after this module is imported."""
    return os.environ.get("FASTLOB_BENCH_SMOKE") == "1"


def sized(full, smoke):
    """``full`` in a benchmark run, ``smoke`` in a smoke run."""
    return smoke if smoke_run() else full


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

    if smoke_run():  # nothing is timed in a smoke run
        return {"host_one_thread_ns": 0.0, "host_all_threads_ns": 0.0, "host_load_ns": 0.0}
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
