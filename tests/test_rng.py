"""The per-env generator's exponential variates (the flow's waiting times) and normal variates
(the fair value's moves): each ziggurat kernel against the plain-Python reference bit for bit,
and against its law."""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest
from reference_as import NORMAL_ZIGGURAT, ZIGGURAT, XorShift64Star

from fastlob._kernels.rng import (
    NORMAL_ZIGGURAT_R,
    NORMAL_ZIGGURAT_V,
    ZIGGURAT_R,
    exponential,
    seed_states,
    standard_exponential,
    standard_normal,
)


@numba.njit
def _draw(rng, count, normal=False):
    """``count`` standard exponential (or normal) variates of env 0's generator."""
    out = np.empty(count)
    for i in range(count):
        out[i] = standard_normal(rng, 0) if normal else standard_exponential(rng, 0)
    return out


@numba.njit
def _draw_rate(rng, count, rate):
    out = np.empty(count)
    for i in range(count):
        out[i] = exponential(rng, 0, rate)
    return out


@pytest.mark.parametrize("variate", ["exponential", "normal"])
@pytest.mark.parametrize("seed", [0, 7, 2**40 + 3])
def test_ziggurats_match_the_reference_bit_for_bit(variate, seed):
    state = seed_states(seed, np.arange(1))
    reference = XorShift64Star(int(state[0]))
    drawn = _draw(state, 20_000, variate == "normal")
    expected = np.array([getattr(reference, variate)() for _ in range(20_000)])
    np.testing.assert_array_equal(drawn, expected)
    assert int(state[0]) == reference.state  # the same number of words consumed


def test_ziggurat_follows_the_exponential_law():
    n = 400_000
    x = np.sort(_draw(seed_states(11, np.arange(1)), n))
    # Kolmogorov-Smirnov distance to 1 - exp(-x): 1.95 / sqrt(n) is its 0.1% critical value
    cdf = -np.expm1(-x)
    ranks = np.arange(1, n + 1) / n
    distance = max(np.max(ranks - cdf), np.max(cdf - (ranks - 1.0 / n)))
    assert distance < 1.95 / math.sqrt(n)
    # mean 1 and second moment 2 within 5 standard errors (variance 1 and 20)
    assert abs(x.mean() - 1.0) < 5 * math.sqrt(1.0 / n)
    assert abs((x * x).mean() - 2.0) < 5 * math.sqrt(20.0 / n)
    # the tail beyond the base layer's edge (drawn by its own branch): P = exp(-R)
    tail = math.exp(-ZIGGURAT_R)
    assert abs((x > ZIGGURAT_R).mean() - tail) < 5 * math.sqrt(tail / n)
    # and a point of every layer's wedge: values just below each layer's edge occur at the rate
    # the density gives them (the wedge branch is exercised, not only the fast path)
    r, _, w, _ = ZIGGURAT
    edges = np.array([w[i] * 2.0**53 for i in range(2, 256)])
    inside = np.searchsorted(x, edges) - np.searchsorted(x, edges * 0.995)
    expected = n * (np.exp(-edges * 0.995) - np.exp(-edges))
    assert abs(inside.sum() - expected.sum()) < 5 * math.sqrt(expected.sum())
    assert r == ZIGGURAT_R


def test_exponential_divides_by_its_rate():
    a = _draw(seed_states(3, np.arange(1)), 1000)
    b = _draw_rate(seed_states(3, np.arange(1)), 1000, 4.0)
    np.testing.assert_array_equal(b, a / 4.0)


def test_normal_ziggurat_constants_close_the_layers():
    r, v, _, w, _ = NORMAL_ZIGGURAT
    assert (r, v) == (NORMAL_ZIGGURAT_R, NORMAL_ZIGGURAT_V)
    # the area of each layer is the base's: the rectangle under f(R) plus the tail beyond R
    tail = math.sqrt(math.pi / 2.0) * math.erfc(r / math.sqrt(2.0))
    assert v == pytest.approx(r * math.exp(-0.5 * r * r) + tail, rel=1e-14)
    # and the recursion ends where the cap over the mode has that same area
    top = w[1] * 2.0**53
    assert top * (1.0 - math.exp(-0.5 * top * top)) == pytest.approx(v, rel=1e-9)


def test_normal_ziggurat_follows_the_normal_law():
    n = 400_000
    x = np.sort(_draw(seed_states(13, np.arange(1)), n, True))
    # Kolmogorov-Smirnov distance to the normal cdf: 1.95 / sqrt(n) is its 0.1% critical value
    cdf = 0.5 * np.array([math.erfc(-v / math.sqrt(2.0)) for v in x])
    ranks = np.arange(1, n + 1) / n
    distance = max(np.max(ranks - cdf), np.max(cdf - (ranks - 1.0 / n)))
    assert distance < 1.95 / math.sqrt(n)
    # moments 0, 1, 3 within 5 standard errors (variances 1, 2, 96); as many signs of each
    assert abs(x.mean()) < 5 * math.sqrt(1.0 / n)
    assert abs((x * x).mean() - 1.0) < 5 * math.sqrt(2.0 / n)
    assert abs((x**4).mean() - 3.0) < 5 * math.sqrt(96.0 / n)
    assert abs((x > 0).mean() - 0.5) < 5 * math.sqrt(0.25 / n)
    # the tails beyond the base layer's edge (Marsaglia's method): P = erfc(R / sqrt(2))
    tail = math.erfc(NORMAL_ZIGGURAT_R / math.sqrt(2.0))
    assert abs((np.abs(x) > NORMAL_ZIGGURAT_R).mean() - tail) < 5 * math.sqrt(tail / n)
    # points just below each layer's edge occur at the rate the density gives them (the wedges)
    _, _, _, w, _ = NORMAL_ZIGGURAT
    edges = np.array([w[i] * 2.0**53 for i in range(2, 256)])
    a = np.abs(x)
    inside = np.searchsorted(np.sort(a), edges) - np.searchsorted(np.sort(a), edges * 0.995)
    mass = np.array(
        [math.erfc(e * 0.995 / math.sqrt(2.0)) - math.erfc(e / math.sqrt(2.0)) for e in edges]
    )
    expected = n * mass
    assert abs(inside.sum() - expected.sum()) < 5 * math.sqrt(expected.sum())
