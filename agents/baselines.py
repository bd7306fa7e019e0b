"""Classical market-making strategies, acting on a whole batch of observations at once.

Each strategy maps inventory ``q`` and time left ``tau`` (arrays of shape (N,)) to quote offsets
``(bid_offset, ask_offset)`` below and above the mid, in price units. ``act(obs)`` reads ``q`` and
``tau`` from the columns named by ``inventory_index`` and ``time_left_index`` and returns float32
actions of shape (N, 2) ``[bid_offset, ask_offset]``, the layout of
``fastlob.as_env.AvellanedaStoikovVectorEnv``. No per-env Python loop anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
    quote_size, 0]``."""

    strategy: _Strategy
    max_inventory: float
    horizon: float
    max_offset: float
    quote_size: float = 1.0

    @classmethod
    def for_config(cls, strategy: _Strategy, config, quote_size: float = 1.0) -> OrderBookQuotes:
        """Scales taken from a ``fastlob.MarketMakingConfig``."""
        return cls(
            strategy,
            max_inventory=float(config.max_inventory),
            horizon=config.episode_steps * config.dt,
            max_offset=float(config.max_offset),
            quote_size=quote_size,
        )

    def act(self, obs) -> np.ndarray:
        obs = _as_numpy(obs)
        q = obs[:, 0].astype(np.float64) * self.max_inventory
        tau = obs[:, 30].astype(np.float64) * self.horizon
        bid, ask = self.strategy.offsets(q, tau)
        actions = np.zeros((obs.shape[0], 5), np.float32)
        actions[:, 0] = np.clip(bid, -self.max_offset, self.max_offset)
        actions[:, 1] = np.clip(ask, -self.max_offset, self.max_offset)
        actions[:, 2:4] = self.quote_size
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
