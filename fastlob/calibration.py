"""Calibrate the Avellaneda-Stoikov fill intensity ``lambda(delta) = A exp(-k delta)`` and the mid's
volatility from the order-book simulator itself, so that the classical baselines can run on it.

For each offset ``delta`` on a grid, every env quotes one lot ``delta`` ticks either side of the
mid (re-posting after each fill), and we count steps in which each quote was filled. A quote is
exposed for ``T = dt - latency`` seconds per step; if fills arrived at rate ``lambda`` the chance
of at least one in a step would be ``p = 1 - exp(-lambda T)``, so ``lambda = -ln(1 - p) / T``.
``A`` and ``k`` are then the least-squares fit of ``ln lambda = ln A - k delta``. (Queues are
real here, so fills are not exactly Poisson: a quote kept for several steps moves up its queue.
The fit is the Poisson intensity that matches the per-step fill frequency at each distance, which
is what the closed-form strategies assume.)

``sigma`` is the standard deviation of the mid's change per step over ``sqrt(dt)``: ticks per
sqrt(second).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fastlob.env import MarketMakingConfig, MarketMakingVectorEnv


@dataclass(frozen=True)
class Calibration:
    """Fitted parameters, in ticks and seconds, with the measurements behind them."""

    #: A, fills per second at offset 0
    intensity: float
    #: k, per tick of offset
    decay: float
    #: mid volatility, ticks per sqrt(second)
    sigma: float
    #: offsets measured (ticks), float64 (G,)
    offsets: np.ndarray
    #: fill intensity measured at each offset (per second, per side), float64 (G,)
    rates: np.ndarray
    #: fraction of quote-steps with a fill at each offset, float64 (G,)
    fill_probability: np.ndarray


def intensity_from_fill_probability(p: np.ndarray, exposure: float) -> np.ndarray:
    """``lambda = -ln(1 - p) / exposure``: the Poisson rate with per-step fill probability p."""
    return -np.log1p(-np.asarray(p, np.float64)) / exposure


def fit_exponential_intensity(offsets: np.ndarray, rates: np.ndarray) -> tuple[float, float]:
    """Least-squares ``(A, k)`` of ``ln rate = ln A - k offset`` over the positive rates."""
    offsets = np.asarray(offsets, np.float64)
    rates = np.asarray(rates, np.float64)
    keep = rates > 0
    if keep.sum() < 2:
        raise ValueError("need fills at two offsets or more to fit A and k; quote closer")
    slope, intercept = np.polyfit(offsets[keep], np.log(rates[keep]), 1)
    return float(np.exp(intercept)), float(-slope)


def _mid_ticks(env: MarketMakingVectorEnv, config: MarketMakingConfig) -> np.ndarray:
    """Each env's mid in ticks (a multiple of half a tick, rounded back to one exactly)."""
    return np.rint(env.mid * (2.0 / config.tick_size)) / 2.0


def calibrate(
    config: MarketMakingConfig | None = None,
    offsets=(0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0),
    num_envs: int = 256,
    steps: int = 200,
    seed: int = 0,
) -> Calibration:
    """Measure the fill intensity against quote distance, and the mid's volatility, in the
    order-book simulator with ``config`` (see the module docstring)."""
    config = config if config is not None else MarketMakingConfig()
    offsets = np.asarray(offsets, np.float64)
    if offsets.ndim != 1 or offsets.size < 2 or not np.all(np.isfinite(offsets)):
        raise ValueError(f"offsets must be two or more finite values, got {offsets!r}")
    if np.any(np.abs(offsets) > config.max_offset):
        raise ValueError(f"offsets must lie within config.max_offset = {config.max_offset}")
    # one long episode per env: no reset inside the measurement
    run_config = config.replace(
        episode_steps=steps + 1,
        max_drawdown=float("inf"),
        terminate_on_max_inventory=False,
        max_inventory=max(config.max_inventory, 2 * steps + 2),
    )
    env = MarketMakingVectorEnv(num_envs, config=run_config, seed=seed)
    maker = env.running_metric("maker_qty")
    inventory = env.inventory
    probability = np.zeros(offsets.size)
    mid_changes = []
    for g, delta in enumerate(offsets):
        env.reset(seed=seed + g)
        action = np.tile(np.float32([delta, delta, 1.0, 1.0, 0.0]), (num_envs, 1))
        filled_steps = 0
        maker_before = maker.copy()
        inventory_before = inventory.copy()
        mid_before = _mid_ticks(env, run_config)
        for _ in range(steps):
            env.step(action)
            # a step with maker fills on both sides moves inventory by bought - sold
            bought = (maker - maker_before + (inventory - inventory_before)) / 2
            sold = (maker - maker_before - (inventory - inventory_before)) / 2
            filled_steps += int((bought > 0).sum() + (sold > 0).sum())
            maker_before = maker.copy()
            inventory_before = inventory.copy()
            mid = _mid_ticks(env, run_config)
            mid_changes.append(mid - mid_before)
            mid_before = mid
        probability[g] = filled_steps / (2 * num_envs * steps)
    exposure = run_config.dt - run_config.latency
    rates = intensity_from_fill_probability(np.minimum(probability, 1 - 1e-9), exposure)
    intensity, decay = fit_exponential_intensity(offsets, rates)
    sigma = float(np.std(np.concatenate(mid_changes)) / np.sqrt(run_config.dt))
    return Calibration(intensity, decay, sigma, offsets, rates, probability)
