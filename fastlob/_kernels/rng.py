"""Per-environment random numbers: one xorshift64* generator per env, in a uint64 array.

Every env owns one uint64 word of state, seeded from ``(seed, env_index)`` by splitmix64 (in
numpy, at the owner). Kernels draw only from their own env's word, never from Numba's global
generator, so a trajectory does not depend on which thread ran it: the same seed gives the same
bits at any ``NUMBA_NUM_THREADS`` and with ``NUMBA_DISABLE_JIT=1``.

xorshift64* (Vigna 2016) is small and fast; its high bits are its best (the multiplication mixes
upwards), so doubles take the top 53. It is not a cryptographic generator.
"""

from __future__ import annotations

import math

import numpy as np

from fastlob._numba import njit

_SHIFT_A = np.uint64(12)
_SHIFT_B = np.uint64(25)
_SHIFT_C = np.uint64(27)
_SHIFT_MANTISSA = np.uint64(11)
_MULTIPLIER = np.uint64(0x2545F4914F6CDD1D)
_TO_UNIT = 1.0 / 9007199254740992.0  # 2**-53

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser over a uint64 array (numpy arrays wrap silently on overflow)."""
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX_1
    z = (z ^ (z >> np.uint64(27))) * _MIX_2
    return z ^ (z >> np.uint64(31))


def seed_states(seed: int, env_indices) -> np.ndarray:
    """Generator states for ``env_indices`` under ``seed``: uint64 array, never zero.

    Parameters
    ----------
    seed : int
        Non-negative run seed.
    env_indices : array_like of int
        Env indices; each env's state depends only on ``(seed, index)``.
    """
    index = np.asarray(env_indices, dtype=np.uint64)
    state = _splitmix64(_splitmix64(np.full(index.shape, seed % 2**64, np.uint64)) ^ index)
    return np.where(state == 0, _GOLDEN, state)


@njit(inline="always")
def xorshift64(x):
    """One step of the xorshift64 recurrence (Marsaglia 2003; shifts 12, 25, 27) on a uint64."""
    x ^= x >> _SHIFT_A
    x ^= x << _SHIFT_B
    return x ^ (x >> _SHIFT_C)


@njit
def next_u64(rng, n):
    """Advance env ``n``'s generator and return 64 random bits.

    Parameters
    ----------
    rng : ndarray[uint64], shape (N,)
        Generator states, mutated in place.
    n : int
        Env index.
    """
    x = xorshift64(rng[n])
    rng[n] = x
    return x * _MULTIPLIER


@njit
def uniform(rng, n):
    """A float64 uniform on [0, 1) from env ``n``'s generator (53 random bits)."""
    return float(next_u64(rng, n) >> _SHIFT_MANTISSA) * _TO_UNIT


#: right edge of the exponential ziggurat's base layer, where its tail begins
ZIGGURAT_R = 7.697117470131487
#: area of each of the ziggurat's 256 layers (Marsaglia & Tsang 2000)
ZIGGURAT_V = 3.949659822581572e-3
_SHIFT_LAYER = np.uint64(56)
_SHIFT_STRIP = np.uint64(3)
_MASK_53 = np.uint64((1 << 53) - 1)


def _ziggurat_tables(r, v, density, inverse):
    """Tables of a 256-layer ziggurat for 53-bit integers under the decreasing ``density``
    (unnormalised; ``inverse`` is its inverse), with base-layer edge ``r`` and layer area ``v``:
    ``k`` (uint64, the integer below which a point of layer i lies inside the curve for sure),
    ``w`` (float64, the layer's width per integer step) and ``f`` (float64, the density at the
    layer's edges). The recursion of Marsaglia & Tsang (2000), in plain Python floats so that
    it gives the same bits as the plain-Python reference in the tests."""
    scale = 2.0**53
    k, w, f = [0] * 256, [0.0] * 256, [0.0] * 256
    d = r
    previous = d
    q = v / density(d)
    k[0] = int((d / q) * scale)
    w[0] = q / scale
    w[255] = d / scale
    f[0] = 1.0
    f[255] = density(d)
    for i in range(254, 0, -1):
        d = inverse(v / d + density(d))
        k[i + 1] = int((d / previous) * scale)
        previous = d
        f[i] = density(d)
        w[i] = d / scale
    return np.array(k, np.uint64), np.array(w), np.array(f)


_ZIGGURAT_K, _ZIGGURAT_W, _ZIGGURAT_F = _ziggurat_tables(
    ZIGGURAT_R, ZIGGURAT_V, lambda x: math.exp(-x), lambda y: -math.log(y)
)


@njit
def standard_exponential(rng, n):
    """An exponential variate of mean 1: the ziggurat of Marsaglia & Tsang (2000), exact.

    One 64-bit draw picks a layer (its top 8 bits) and a point in it (the next 53); 98.9% of the
    points lie inside the curve and are returned at once, with no logarithm. The others take
    the base layer's tail (``ZIGGURAT_R`` plus a fresh exponential, by memorylessness) or the
    wedge test against ``exp(-x)`` with one more uniform, and start again if rejected.
    """
    while True:
        bits = next_u64(rng, n)
        layer = int(bits >> _SHIFT_LAYER)
        strip = (bits >> _SHIFT_STRIP) & _MASK_53
        x = float(strip) * _ZIGGURAT_W[layer]
        if strip < _ZIGGURAT_K[layer]:
            return x
        if layer == 0:
            return ZIGGURAT_R - math.log(1.0 - uniform(rng, n))
        edge = _ZIGGURAT_F[layer]
        if edge + uniform(rng, n) * (_ZIGGURAT_F[layer - 1] - edge) < math.exp(-x):
            return x


@njit
def exponential(rng, n, rate):
    """An exponential variate with the given ``rate`` (mean 1/rate)."""
    return standard_exponential(rng, n) / rate


#: right edge of the normal ziggurat's base layer, where its tail begins (256 layers)
NORMAL_ZIGGURAT_R = 3.654152885361009
#: area under exp(-x**2 / 2) of each of its layers: R * f(R) + the tail beyond R
NORMAL_ZIGGURAT_V = 4.928673233974658e-3
_SHIFT_SIGN = np.uint64(55)
_SHIFT_NORMAL_STRIP = np.uint64(2)
_ONE = np.uint64(1)


#: the normal ziggurat is that of the half density exp(-x**2 / 2)
_NORMAL_K, _NORMAL_W, _NORMAL_F = _ziggurat_tables(
    NORMAL_ZIGGURAT_R,
    NORMAL_ZIGGURAT_V,
    lambda x: math.exp(-0.5 * x * x),
    lambda y: math.sqrt(-2.0 * math.log(y)),
)


@njit
def standard_normal(rng, n):
    """A standard normal variate: the ziggurat of Marsaglia & Tsang (2000), exact.

    One 64-bit draw picks a layer (its top 8 bits), a sign (the next bit) and a point in the
    layer (the next 53); 98.8% of the points lie inside the curve and are returned at once,
    with no logarithm and no trigonometry (Box-Muller needs a log, a square root and a cosine
    per variate). The others take the base layer's tail by Marsaglia's (1964) method (two
    exponentials, until ``2y > x**2``) or the wedge test against ``exp(-x**2 / 2)`` with one
    more uniform, and start again if rejected.
    """
    while True:
        bits = next_u64(rng, n)
        layer = int(bits >> _SHIFT_LAYER)
        negative = ((bits >> _SHIFT_SIGN) & _ONE) == _ONE
        strip = (bits >> _SHIFT_NORMAL_STRIP) & _MASK_53
        x = float(strip) * _NORMAL_W[layer]
        if strip < _NORMAL_K[layer]:
            return -x if negative else x
        if layer == 0:
            while True:
                beyond = -math.log(1.0 - uniform(rng, n)) / NORMAL_ZIGGURAT_R
                y = -math.log(1.0 - uniform(rng, n))
                if y + y > beyond * beyond:
                    break
            x = NORMAL_ZIGGURAT_R + beyond
            return -x if negative else x
        edge = _NORMAL_F[layer]
        if edge + uniform(rng, n) * (_NORMAL_F[layer - 1] - edge) < math.exp(-0.5 * x * x):
            return -x if negative else x


@njit
def bernoulli(rng, n, p):
    """True with probability ``p``."""
    return uniform(rng, n) < p
