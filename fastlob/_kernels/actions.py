"""Boundary checks of an action batch, for use inside each env's step kernel.

The step kernel first asks :func:`first_non_finite`; only if every action is finite does it go
on, clipping each env's row with :func:`clip_row` just before stepping that env. So one kernel
call checks, clips and steps, and a rejected batch changes nothing.
"""

from __future__ import annotations

import math

from fastlob._numba import njit


@njit
def first_non_finite(actions):
    """Flat index of the first NaN/inf in ``actions`` (float (N, A), C-contiguous), or -1.

    The common case (all finite) is one vectorizable pass: ``v - v`` is 0 for a finite ``v`` and
    NaN for NaN or inf, and an integer count (unlike a float sum) may be reordered by the compiler.
    """
    flat = actions.reshape(-1)
    count = 0
    for i in range(flat.shape[0]):
        v = flat[i]
        count += (v - v) != 0.0
    if count == 0:
        return -1
    for i in range(flat.shape[0]):
        if not math.isfinite(flat[i]):
            return i
    return -1  # pragma: no cover


@njit
def clip_row(actions, n, low, high, out, clipped, clip_count):
    """Clip row ``n`` of ``actions`` (float (N, A), finite) into ``[low, high]`` (float32 (A,)).

    Writes ``out[n]`` (float32 (N, A)) and ``clipped[n]`` (bool (N,)); increments
    ``clip_count[n]`` (int64 (N,)) if anything was clipped.
    """
    changed = False
    for a in range(actions.shape[1]):
        value = actions[n, a]
        if value < low[a]:
            out[n, a] = low[a]
            changed = True
        elif value > high[a]:
            out[n, a] = high[a]
            changed = True
        else:
            out[n, a] = value
    clipped[n] = changed
    if changed:
        clip_count[n] += 1
