"""Helpers the tests import (kept out of conftest.py: the benchmarks have a conftest too, and
pytest keeps one module named ``conftest`` at a time)."""

from __future__ import annotations

import numpy as np


def states_equal(a, b) -> bool:
    """Every array of two BookStates is identical."""
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
