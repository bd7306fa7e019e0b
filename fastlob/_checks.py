"""Argument checks shared by every owner: each raises a clear error naming the argument."""

from __future__ import annotations

import math
import numbers


def check_int(name: str, value, low: int, high: int) -> int:
    """An integer in ``[low, high]`` (bools and floats, NaN included, are refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, numbers.Real) and value != value:  # NaN
            raise ValueError(f"{name} must be an integer in [{low}, {high}], got NaN")
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    value = int(value)
    if not low <= value <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {value}")
    return value


def check_real(name: str, value, low: float, high: float, *, low_open=False) -> float:
    """A finite real in ``[low, high]`` (or ``(low, high]`` with ``low_open``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    bad_low = value <= low if low_open else value < low
    if not math.isfinite(value) or bad_low or value > high:
        bracket = "(" if low_open else "["
        raise ValueError(f"{name} must be in {bracket}{low}, {high}], got {value}")
    return value
