"""Argument checks shared by every owner: each raises a clear error naming the argument."""

from __future__ import annotations

import math
import numbers
import os


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


def check_choice(name: str, value, options: tuple[str, ...]) -> str:
    """``value`` if it is one of the strings ``options`` (an array or any other type is refused,
    not compared element by element); a ``ValueError`` naming ``name`` else."""
    if not (isinstance(value, str) and value in options):
        raise ValueError(f"{name} must be one of {', '.join(options)}, got {value!r}")
    return value


def available_memory_bytes() -> int:
    """Memory this machine can give now: ``MemAvailable`` of ``/proc/meminfo``, else the physical
    memory."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_fits_memory(name: str, count: int, bytes_each: int, what: str) -> None:
    """Refuse, before allocating, ``count`` items of ``bytes_each`` bytes that this machine's
    available memory cannot hold; the error names ``name`` and both figures."""
    needed = count * bytes_each
    available = available_memory_bytes()
    if needed > available:
        raise ValueError(
            f"{name} = {count} needs {needed / 2**30:.1f} GiB of {what} "
            f"({bytes_each / 2**10:.1f} KiB each), more than the {available / 2**30:.1f} GiB "
            f"of memory available"
        )
