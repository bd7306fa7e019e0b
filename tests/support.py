"""Helpers the tests import (kept out of conftest.py: the benchmarks have a conftest too, and
pytest keeps one module named ``conftest`` at a time)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

LOBSTER_DIR = Path(
    os.environ.get(
        "FASTLOB_LOBSTER_DIR",
        Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "lobster",
    )
).resolve()
LOBSTER_MESSAGES = LOBSTER_DIR / "AAPL_2012-06-21_34200000_57600000_message_10.csv"
LOBSTER_ORDERBOOK = LOBSTER_DIR / "AAPL_2012-06-21_34200000_57600000_orderbook_10.csv"


def states_equal(a, b) -> bool:
    """Every array of two BookStates is identical."""
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
