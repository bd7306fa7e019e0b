"""Plain-Python references for the per-env generator and the Avellaneda-Stoikov step.

Integers are Python ints masked to 64 bits, floats Python floats: nothing here shares code with
the kernels, so agreement bit for bit means both do what the docstrings say.
"""

from __future__ import annotations

import math

MASK = (1 << 64) - 1


def splitmix64(x: int) -> int:
    z = (x + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def seed_state(seed: int, env_index: int) -> int:
    state = splitmix64(splitmix64(seed) ^ env_index)
    return state or 0x9E3779B97F4A7C15


def _ziggurat_tables(r, v, density, inverse):
    """A ziggurat of Marsaglia & Tsang (2000), 256 layers, for 53-bit integers, under the
    decreasing ``density`` (``inverse`` its inverse), from its published edge ``r`` and layer
    area ``v`` (their recursion)."""
    scale = 2.0**53
    k, w, f = [0] * 256, [0.0] * 256, [0.0] * 256
    q = v / density(r)
    k[0], k[1] = int((r / q) * scale), 0
    w[0], w[255] = q / scale, r / scale
    f[0], f[255] = 1.0, density(r)
    d = previous = r
    for i in range(254, 0, -1):
        d = inverse(v / d + density(d))
        k[i + 1] = int((d / previous) * scale)
        previous = d
        f[i] = density(d)
        w[i] = d / scale
    return k, w, f


# published edges and layer areas (Marsaglia & Tsang 2000; the normal's for 256 layers)
_EXPONENTIAL_R, _EXPONENTIAL_V = 7.697117470131487, 3.949659822581572e-3
_NORMAL_R, _NORMAL_V = 3.654152885361009, 4.928673233974658e-3

#: the exponential ziggurat: (r, k, w, f)
ZIGGURAT = (
    _EXPONENTIAL_R,
    *_ziggurat_tables(
        _EXPONENTIAL_R, _EXPONENTIAL_V, lambda x: math.exp(-x), lambda y: -math.log(y)
    ),
)
#: the normal ziggurat, of the half density exp(-x**2 / 2) (the area per layer is checked
#: against the edge in tests/test_rng.py): (r, v, k, w, f)
NORMAL_ZIGGURAT = (
    _NORMAL_R,
    _NORMAL_V,
    *_ziggurat_tables(
        _NORMAL_R,
        _NORMAL_V,
        lambda x: math.exp(-0.5 * x * x),
        lambda y: math.sqrt(-2.0 * math.log(y)),
    ),
)


class XorShift64Star:
    def __init__(self, state: int):
        self.state = state

    def next_u64(self) -> int:
        x = self.state
        x ^= x >> 12
        x ^= (x << 25) & MASK
        x ^= x >> 27
        self.state = x
        return (x * 0x2545F4914F6CDD1D) & MASK

    def uniform(self) -> float:
        return (self.next_u64() >> 11) * 2.0**-53

    def exponential(self) -> float:
        """Mean 1, by the ziggurat: layer from the top 8 bits, point from the next 53."""
        r, k, w, f = ZIGGURAT
        while True:
            bits = self.next_u64()
            layer = bits >> 56
            strip = (bits >> 3) & ((1 << 53) - 1)
            x = strip * w[layer]
            if strip < k[layer]:
                return x
            if layer == 0:
                return r - math.log(1.0 - self.uniform())
            if f[layer] + self.uniform() * (f[layer - 1] - f[layer]) < math.exp(-x):
                return x

    def normal(self) -> float:
        """Standard normal, by the ziggurat: layer from the top 8 bits, sign from the next one,
        point from the 53 after it; the tail by Marsaglia's method."""
        r, _, k, w, f = NORMAL_ZIGGURAT
        while True:
            bits = self.next_u64()
            layer = bits >> 56
            sign = -1.0 if (bits >> 55) & 1 else 1.0
            strip = (bits >> 2) & ((1 << 53) - 1)
            x = strip * w[layer]
            if strip < k[layer]:
                return sign * x
            if layer == 0:
                while True:
                    beyond = -math.log(1.0 - self.uniform()) / r
                    y = -math.log(1.0 - self.uniform())
                    if y + y > beyond * beyond:
                        return sign * (r + beyond)
            if f[layer] + self.uniform() * (f[layer - 1] - f[layer]) < math.exp(-0.5 * x * x):
                return sign * x


class ReferenceASEnv:
    """One env of the Avellaneda-Stoikov model, the plain way (next-step autoreset included)."""

    def __init__(self, params, seed: int, env_index: int):
        self.p = params
        self.rng = XorShift64Star(seed_state(seed, env_index))
        self.reset()

    def reset(self):
        self.mid, self.q, self.cash, self.t = self.p.mid0, 0, 0.0, 0
        self.done = False

    def obs(self):
        return [self.mid, self.q, self.p.horizon - self.t * self.p.dt]

    def step(self, bid_offset: float, ask_offset: float):
        """Returns (obs, reward, done at the horizon, pnl)."""
        if self.done:
            self.reset()
            return self.obs(), 0.0, False, 0.0
        p = self.p
        wealth_before = self.cash + self.q * self.mid
        # a quote is filled with probability min(1, A dt e^(-k delta)): drawn as a standard
        # exponential E above k delta - log(A dt), since P(E > x) = e^(-x) for x >= 0
        intensity_dt = p.intensity * p.dt
        log_a_dt = math.log(intensity_dt) if intensity_dt > 0.0 else -math.inf
        bid_hit = self.rng.exponential() > p.decay * bid_offset - log_a_dt
        ask_hit = self.rng.exponential() > p.decay * ask_offset - log_a_dt
        up = self.rng.uniform() < 0.5
        # at the inventory bound the side that would pass it is not quoted (its draw is made)
        bid_hit = bid_hit and self.q < p.max_inventory
        ask_hit = ask_hit and self.q > -p.max_inventory
        if bid_hit:
            self.q += 1
            self.cash -= self.mid - bid_offset
        if ask_hit:
            self.q -= 1
            self.cash += self.mid + ask_offset
        move = p.sigma * math.sqrt(p.dt)
        self.mid = self.mid + move if up else self.mid - move
        self.t += 1
        wealth = self.cash + self.q * self.mid
        self.done = self.t >= round(p.horizon / p.dt)
        reward = wealth - wealth_before - p.inventory_penalty * self.q * self.q
        if self.done:
            reward -= p.terminal_penalty * self.q * self.q
        return self.obs(), reward, self.done, wealth
