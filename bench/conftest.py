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


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["fastlob"] = machine()
