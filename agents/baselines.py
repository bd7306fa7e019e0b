"""Classical market-making strategies, acting on a whole batch of observations at once.

Each strategy maps inventory ``q`` and time left ``tau`` (arrays of shape (N,)) to quote offsets
``(bid_offset, ask_offset)`` below and above the mid, in price units. ``act(obs)`` reads ``q`` and
``tau`` from the columns named by ``inventory_index`` and ``time_left_index`` and returns float32
actions of shape (N, 2) ``[bid_offset, ask_offset]``, the layout of
``fastlob.as_env.AvellanedaStoikovVectorEnv``; :class:`OrderBookQuotes` runs one on
``fastlob.MarketMakingVectorEnv``. :class:`TouchQuotes` acts on that env's observation directly
(it reads the book's best prices). No per-env Python loop anywhere.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from fastlob.env import OBSERVATION_COLUMNS

#: the width of the order-book env's observation (its last column is the time left)
OBS_DIM = OBSERVATION_COLUMNS["time_left"] + 1


def _as_numpy(obs) -> np.ndarray:
    if hasattr(obs, "detach"):
        obs = obs.detach().cpu().numpy()
    return np.asarray(obs)


@dataclass
class _Strategy:
    #: observation column holding the inventory
    inventory_index: int = 1
    #: observation column holding the time left
    time_left_index: int = 2

    def offsets(self, q: np.ndarray, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def act(self, obs) -> np.ndarray:
        obs = _as_numpy(obs)
        q = obs[:, self.inventory_index].astype(np.float64)
        tau = obs[:, self.time_left_index].astype(np.float64)
        bid, ask = self.offsets(q, tau)
        return np.stack([bid, ask], axis=1).astype(np.float32)


@dataclass
class AvellanedaStoikov(_Strategy):
    """Avellaneda & Stoikov (2008): quote around the reservation price
    ``r = s - q gamma sigma^2 tau`` with total spread
    ``gamma sigma^2 tau + (2 / gamma) ln(1 + gamma / k)``."""

    gamma: float = 0.1
    sigma: float = 2.0
    k: float = 1.5

    def spread(self, tau: np.ndarray) -> np.ndarray:
        g = self.gamma
        return g * self.sigma**2 * tau + (2.0 / g) * np.log1p(g / self.k)

    def offsets(self, q, tau):
        skew = q * self.gamma * self.sigma**2 * tau  # mid - reservation price
        half = 0.5 * self.spread(tau)
        return skew + half, half - skew


@dataclass
class GueantLehalleFernandezTapia(_Strategy):
    """Guéant, Lehalle & Fernandez-Tapia (2013), closed-form asymptotic quotes:
    ``delta_bid = c + (2q + 1) w / 2``, ``delta_ask = c - (2q - 1) w / 2`` with
    ``c = ln(1 + gamma / k) / gamma`` and
    ``w = sqrt(sigma^2 gamma / (2 k A) (1 + gamma / k)^(1 + k / gamma))``."""

    gamma: float = 0.1
    sigma: float = 2.0
    k: float = 1.5
    intensity: float = 140.0

    def offsets(self, q, tau):
        g, k = self.gamma, self.k
        c = np.log1p(g / k) / g
        w = np.sqrt(self.sigma**2 * g / (2.0 * k * self.intensity) * (1.0 + g / k) ** (1.0 + k / g))
        return c + (2.0 * q + 1.0) * w / 2.0, c - (2.0 * q - 1.0) * w / 2.0


def positive_expm(matrix: np.ndarray, tau: float, terms: int = 48) -> np.ndarray:
    """``exp(matrix * tau)`` for an entrywise non-negative ``matrix`` (float64 (n, n)), ``tau >=
    0``, with every entry to float64's relative precision: the scaled matrix's Taylor series
    (``terms`` non-negative terms, more than n so that the farthest entries are exact), then
    repeated squaring; no subtraction anywhere."""
    scaled = matrix * tau
    norm = float(np.abs(scaled).sum(axis=1).max())
    squarings = max(0, int(np.ceil(np.log2(norm))) + 1) if norm > 0.0 else 0
    scaled /= 2.0**squarings
    result = np.eye(matrix.shape[0])
    term = np.eye(matrix.shape[0])
    for n in range(1, max(terms, matrix.shape[0] + 16)):
        term = term @ scaled / n
        result += term
    for _ in range(squarings):
        result = result @ result
    return result


@dataclass
class CarteaJaimungalPenalva(_Strategy):
    """The optimal quotes of the linear-quadratic problem (``fastlob.LQParams``; Cartea,
    Jaimungal & Penalva 2015, section 10.2): with ``h(tau, q)`` the value beyond the marked
    wealth ``x + q s`` at time-to-go ``tau`` and inventory ``q``, the optimal depths are
    ``delta_bid = 1/k - (h(tau, q+1) - h(tau, q))`` and ``delta_ask = 1/k - (h(tau, q-1) -
    h(tau, q))``, and ``h = log(omega) / k`` where ``omega(tau) = exp(M tau) z`` for the
    tridiagonal ``M`` (``-phi k q^2`` on the diagonal, ``A / e`` beside it) and
    ``z_q = exp(-alpha k q^2)``, over ``q`` in ``[-Q, Q]``.

    ``omega`` spans hundreds of orders of magnitude across ``q`` (``z`` alone does), so it is
    computed without cancellation: ``M + cI`` is entrywise non-negative for ``c = phi k Q^2``,
    and ``exp((M + cI) tau)`` by scaling and squaring a Taylor series of non-negative terms keeps
    every entry's relative precision (an eigendecomposition does not: it loses the small
    entries). A side that would pass the bound is not quoted: its depth is ``unquoted_depth``.
    """

    intensity: float = 140.0
    k: float = 1.5
    running_penalty: float = 1.0
    terminal_penalty: float = 1.0
    max_inventory: int = 10
    #: the depth returned for the side not quoted at the inventory bound (price units)
    unquoted_depth: float = 4.0

    @classmethod
    def from_params(cls, params, **kwargs) -> CarteaJaimungalPenalva:
        """The optimum of a ``fastlob.LQParams`` problem."""
        return cls(
            intensity=params.intensity,
            k=params.decay,
            running_penalty=params.running_penalty,
            terminal_penalty=params.terminal_penalty,
            max_inventory=params.max_inventory,
            **kwargs,
        )

    def __post_init__(self):
        q = np.arange(-self.max_inventory, self.max_inventory + 1, dtype=np.float64)
        k = self.k
        if self.terminal_penalty * k * self.max_inventory**2 > 600.0:
            raise ValueError(
                "terminal_penalty * k * max_inventory**2 must be at most 600 (exp(-alpha k Q^2) "
                "underflows float64 beyond)"
            )
        self._shift = self.running_penalty * k * self.max_inventory**2
        off = np.full(q.size - 1, self.intensity * np.exp(-1.0))
        # M + cI: non-negative entrywise
        self._shifted = np.diag(self._shift - self.running_penalty * k * q**2)
        self._shifted += np.diag(off, 1) + np.diag(off, -1)
        self._log_z = -self.terminal_penalty * k * q**2
        self._cache: dict[float, np.ndarray] = {}

    def _value_row(self, tau: float) -> np.ndarray:
        """``h(tau, q)`` for every ``q`` in ``[-Q, Q]``: float64 (2Q+1,)."""
        row = self._cache.get(tau)
        if row is None:
            if len(self._cache) > 4096:
                self._cache.clear()
            log_omega = np.log(positive_expm(self._shifted, tau) @ np.exp(self._log_z))
            row = (log_omega - self._shift * tau) / self.k
            self._cache[tau] = row
        return row

    def value_table(self, tau: np.ndarray) -> np.ndarray:
        """``h(tau, q)`` for every ``tau`` (shape (T,)) and every ``q`` in ``[-Q, Q]``:
        float64 (T, 2Q+1)."""
        tau = np.maximum(np.asarray(tau, np.float64).reshape(-1), 0.0)
        unique, inverse = np.unique(tau, return_inverse=True)
        rows = np.stack([self._value_row(float(t)) for t in unique])
        return rows[inverse]

    def value(self, q: np.ndarray, tau: np.ndarray) -> np.ndarray:
        """``h(tau, q)``, the optimal expected objective beyond ``x + q s``, per env."""
        q = np.asarray(q, np.float64)
        table = self.value_table(np.broadcast_to(tau, q.shape))
        index = np.clip(np.rint(q).astype(np.int64) + self.max_inventory, 0, table.shape[1] - 1)
        return table[np.arange(q.size), index]

    def offsets(self, q, tau):
        q = np.rint(np.asarray(q, np.float64)).astype(np.int64)
        bound = self.max_inventory
        if (np.abs(q) > bound).any():
            raise ValueError(f"inventory beyond the bound max_inventory={bound}")
        table = self.value_table(tau)
        rows = np.arange(q.size)
        i = q + bound
        here = table[rows, i]
        up = table[rows, np.minimum(i + 1, 2 * bound)]
        down = table[rows, np.maximum(i - 1, 0)]
        bid = np.where(q < bound, 1.0 / self.k - (up - here), self.unquoted_depth)
        ask = np.where(q > -bound, 1.0 / self.k - (down - here), self.unquoted_depth)
        return bid, ask


@dataclass
class FixedSpread(_Strategy):
    """Symmetric quotes ``half_spread`` either side of the mid, whatever the inventory."""

    half_spread: float = 1.0

    def offsets(self, q, tau):
        half = np.full(q.shape, self.half_spread)
        return half, half.copy()


@dataclass
class RandomQuotes(_Strategy):
    """Offsets drawn uniformly from ``[low, high]``, independently per env and side."""

    low: float = 0.0
    high: float = 3.0
    seed: int = 0

    def __post_init__(self):
        self._rng = np.random.default_rng(self.seed)

    def offsets(self, q, tau):
        draws = self._rng.uniform(self.low, self.high, size=(2, q.shape[0]))
        return draws[0], draws[1]


@dataclass
class OrderBookQuotes:
    """Run a strategy on ``fastlob.MarketMakingVectorEnv``: ``act(obs)`` reads the inventory (obs
    column 0 times ``max_inventory``, in lots) and the time left (column 30 times ``horizon``, in
    seconds), asks the strategy for offsets in ticks, clips them to ``[-max_offset,
    max_offset]`` and returns float32 (N, 5) actions ``[bid_offset, ask_offset, quote_size,
    quote_size, 0]``; with an inventory ``cap`` (lots), a side is not quoted once |inventory|
    has reached it on that side (no bid while inventory >= ``cap``, no ask while inventory <=
    -``cap``), as the touch quoter's."""

    strategy: _Strategy
    max_inventory: float
    horizon: float
    max_offset: float
    quote_size: float = 1.0
    cap: float = math.inf

    def __post_init__(self):
        if not (isinstance(self.cap, numbers.Real) and self.cap >= 0.0):
            raise ValueError(f"cap must be >= 0 lots (inf: no cap), got {self.cap!r}")

    @classmethod
    def for_config(
        cls, strategy: _Strategy, config, quote_size: float = 1.0, cap: float = math.inf
    ) -> OrderBookQuotes:
        """Scales taken from a ``fastlob.MarketMakingConfig``."""
        return cls(
            strategy,
            max_inventory=float(config.max_inventory),
            horizon=config.episode_steps * config.dt,
            max_offset=float(config.max_offset),
            quote_size=quote_size,
            cap=cap,
        )

    def act(self, obs) -> np.ndarray:
        obs = _as_numpy(obs)
        q = obs[:, 0].astype(np.float64) * self.max_inventory
        tau = obs[:, 30].astype(np.float64) * self.horizon
        bid, ask = self.strategy.offsets(q, tau)
        actions = np.zeros((obs.shape[0], 5), np.float32)
        actions[:, 0] = np.clip(bid, -self.max_offset, self.max_offset)
        actions[:, 1] = np.clip(ask, -self.max_offset, self.max_offset)
        lots = np.rint(q)  # the inventory is whole lots; obs column 0 carries float32 rounding
        actions[:, 2] = np.where(lots < self.cap, self.quote_size, 0.0)
        actions[:, 3] = np.where(lots > -self.cap, self.quote_size, 0.0)
        return actions


@dataclass
class TouchQuotes:
    """The touch quoter with an inventory cap, on ``fastlob.MarketMakingVectorEnv``: joins the
    best bid and the best ask as the observation shows them, ``quote_size`` lots a side, and
    stops adding on a side once |inventory| reaches ``cap`` lots (no bid while inventory >=
    ``cap``, no ask while inventory <= -``cap``; a fill of a quote placed below the cap may carry
    the inventory up to ``quote_size - 1`` lots beyond it).

    Its offsets are the observation's own best-level columns (``bid_levels``: best bid - mid,
    ``ask_levels``: best ask - mid, in ticks), so that the env's pricing (bid at ``floor(mid -
    bid_offset)``, ask at ``ceil(mid + ask_offset)``) lands exactly on the best prices: it
    joins, never improves or crosses. A side whose best price lies beyond ``max_offset`` of the
    mid (the action space's bound, where the offset would be clipped inside the touch) or on the
    wrong side of the mid (an empty side observed at its last best that the other side has
    passed) is not quoted. ``quote_size`` and ``cap`` are scalars, or arrays (N,) with one value
    per env.

    Parameters
    ----------
    max_inventory : float
        The env's ``max_inventory`` (observation column 0 is inventory / max_inventory).
    max_offset : float
        The env's ``max_offset`` (ticks).
    quote_size : float or ndarray[float64], shape (N,)
        Lots per side.
    cap : float or ndarray[float64], shape (N,)
        |inventory| in lots at which a side stops being quoted.
    """

    max_inventory: float
    max_offset: float
    quote_size: float = 1.0
    cap: float = 1.0

    def __post_init__(self):
        for name in ("max_inventory", "max_offset"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"{name} must be a real number, got {value!r}")
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f"{name} must be finite and > 0, got {value}")
        # quote_size finite >= 0 lots; cap >= 0 lots, inf for no cap
        for name, allowed, ok in (
            ("quote_size", "finite and >= 0 lots", lambda v: np.isfinite(v) & (v >= 0.0)),
            ("cap", ">= 0 lots (inf: no cap)", lambda v: v >= 0.0),
        ):
            value = getattr(self, name)
            array = np.asarray(value)
            if array.dtype.kind not in "iuf" or array.ndim > 1:
                raise TypeError(
                    f"{name} must be a real number or a 1-D array of them (one per env), got "
                    f"{value!r}"
                )
            bad = ~ok(array.astype(np.float64))
            if bad.any():
                shown = array.reshape(-1)[int(np.flatnonzero(bad.reshape(-1))[0])]
                raise ValueError(f"{name} must be {allowed}, got {shown}")

    @classmethod
    def for_config(cls, config, quote_size: float = 1.0, cap: float | None = None) -> TouchQuotes:
        """Scales taken from a ``fastlob.MarketMakingConfig``; ``cap`` defaults to its
        ``max_inventory``."""
        return cls(
            max_inventory=float(config.max_inventory),
            max_offset=float(config.max_offset),
            quote_size=quote_size,
            cap=float(config.max_inventory) if cap is None else cap,
        )

    def act(self, obs) -> np.ndarray:
        """float32 (N, 5) actions ``[bid_offset, ask_offset, bid_size, ask_size, 0]`` for
        observations float32 (N, 31)."""
        obs = _as_numpy(obs)
        column = OBSERVATION_COLUMNS
        if obs.ndim != 2 or obs.shape[1] != OBS_DIM:
            raise ValueError(f"obs must have shape (N, {OBS_DIM}), got {obs.shape}")
        n = obs.shape[0]
        for name in ("quote_size", "cap"):
            shape = np.shape(getattr(self, name))
            if shape not in ((), (n,)):
                raise ValueError(f"{name} holds {shape[0]} values, one per env: obs has {n} rows")
        read = [column["inventory"], column["bid_levels"], column["ask_levels"]]
        values = obs[:, read].astype(np.float64)
        if not np.isfinite(values).all():
            row, col = np.argwhere(~np.isfinite(values))[0]
            raise ValueError(
                f"obs[{row}, {read[col]}] is {values[row, col]}: the touch quoter reads the "
                "inventory and the best levels, which must be finite"
            )
        q = np.rint(values[:, 0] * self.max_inventory)
        bid = -values[:, 1]  # mid - best bid, ticks
        ask = values[:, 2]  # best ask - mid, ticks
        bid_on = (q < self.cap) & (bid >= 0.0) & (bid <= self.max_offset)
        ask_on = (q > -self.cap) & (ask >= 0.0) & (ask <= self.max_offset)
        actions = np.zeros((obs.shape[0], 5), np.float32)
        actions[:, 0] = np.clip(bid, -self.max_offset, self.max_offset)
        actions[:, 1] = np.clip(ask, -self.max_offset, self.max_offset)
        actions[:, 2] = np.where(bid_on, self.quote_size, 0.0)
        actions[:, 3] = np.where(ask_on, self.quote_size, 0.0)
        return actions


def order_book_baselines(config, calibration, gamma: float = 0.01, half_spread: float = 1.0):
    """The classical strategies on the order-book env, with A, k and sigma from
    ``fastlob.calibration.calibrate`` (ticks and seconds): {name: OrderBookQuotes}."""
    params = {"gamma": gamma, "sigma": calibration.sigma, "k": calibration.decay}
    strategies = {
        "avellaneda_stoikov": AvellanedaStoikov(**params),
        "glft": GueantLehalleFernandezTapia(**params, intensity=calibration.intensity),
        "fixed_spread": FixedSpread(half_spread=half_spread),
        "random": RandomQuotes(low=0.0, high=float(config.max_offset)),
    }
    return {name: OrderBookQuotes.for_config(s, config) for name, s in strategies.items()}
