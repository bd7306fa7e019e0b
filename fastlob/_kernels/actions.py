"""Boundary check of an action batch: one kernel call, no temporaries."""

from __future__ import annotations

import math

from fastlob._numba import njit


@njit
def check_and_clip(actions, low, high, out, clipped, clip_count):
    """Reject non-finite actions, else clip them into the action space.

    Parameters
    ----------
    actions : ndarray[float32 or float64], shape (N, A)
    low, high : ndarray[float32], shape (A,)
        Bounds of the action space.
    out : ndarray[float32], shape (N, A)
        Written with the clipped actions (only if every action is finite).
    clipped : ndarray[bool], shape (N,)
        Written: whether row n was clipped.
    clip_count : ndarray[int64], shape (N,)
        Incremented for every clipped row.

    Returns
    -------
    int
        -1 if all actions are finite (and were clipped into ``out``); otherwise the flat index
        of the first NaN/inf, and nothing was written.
    """
    flat = actions.reshape(-1)
    for i in range(flat.shape[0]):
        if not math.isfinite(flat[i]):
            return i
    for n in range(actions.shape[0]):
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
    return -1
