"""Reproduce the simulation tables of Avellaneda & Stoikov (2008), "High-frequency trading in a
limit order book", section 4: the inventory strategy against the symmetric strategy with the same
average spread, over 1000 paths of s=100, T=1, sigma=2, dt=0.005, q0=0, k=1.5, A=140.

Both strategies run on the same seed (common random numbers: the same mid paths and fill draws).
"""

from __future__ import annotations

import numpy as np

from fastlob._checks import check_int
from fastlob.as_env import ASParams, AvellanedaStoikovVectorEnv

from .baselines import AvellanedaStoikov, FixedSpread

#: the paper's Tables 1-3: profit mean / std and final inventory std, with the average spread
PUBLISHED = {
    0.1: {"spread": 1.49, "inventory": (65.0, 6.6, 2.9), "symmetric": (68.4, 12.7, 8.4)},
    0.01: {"spread": 1.35, "inventory": (68.6, 8.7, 5.1), "symmetric": (68.8, 12.8, 8.7)},
    1.0: {"spread": 3.02, "inventory": (31.4, 5.0, 1.7), "symmetric": (44.0, 11.0, 5.1)},
}


def simulate(env: AvellanedaStoikovVectorEnv, strategy, seed: int) -> dict:
    """Run one episode of ``strategy`` in every env; summary statistics over the paths."""
    obs, _ = env.reset(seed=seed)
    spread_sum = np.zeros(env.num_envs)
    info = {}
    for _ in range(env.episode_steps):
        actions = strategy.act(obs)
        spread_sum += actions[:, 0].astype(np.float64) + actions[:, 1]
        obs, _, terminated, _, info = env.step(actions)
    if not terminated.all():
        raise RuntimeError("episodes did not end together")  # pragma: no cover
    profit = info["episode"]["pnl"].copy()
    q = info["episode"]["inventory"].astype(np.float64)
    return {
        "spread": float(spread_sum.mean() / env.episode_steps),
        "profit_mean": float(profit.mean()),
        "profit_std": float(profit.std(ddof=1)),
        "q_mean": float(q.mean()),
        "q_std": float(q.std(ddof=1)),
    }


def run_as2008(gamma: float, paths: int = 1000, seed: int = 0) -> dict:
    """``{"inventory": {...}, "symmetric": {...}}``, each with keys ``spread``, ``profit_mean``,
    ``profit_std``, ``q_mean``, ``q_std``."""
    params = ASParams()
    paths = check_int("paths", paths, 1, 2**24)  # one env per path
    env = AvellanedaStoikovVectorEnv(num_envs=paths, params=params, seed=seed)
    inventory = simulate(
        env, AvellanedaStoikov(gamma=gamma, sigma=params.sigma, k=params.decay), seed
    )
    symmetric = simulate(env, FixedSpread(half_spread=inventory["spread"] / 2.0), seed)
    return {"inventory": inventory, "symmetric": symmetric}
