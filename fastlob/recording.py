"""Record what a market maker does, step by step and fill by fill, as polars DataFrames in the
layout ``fastlob.metrics`` reads.

``record(policy, config, episodes, seed)`` plays one episode per env (``episodes`` envs, all reset
from ``seed``) with ``policy.act(obs) -> actions`` and returns a :class:`Recording`:

- ``steps``: ``episode``, ``step`` (1-based), ``pnl``, ``cash`` (currency), ``inventory`` (lots),
  ``mid`` (currency), ``quoted_qty`` (lots that reached the book this step), ``at_touch`` (live
  quotes at the best price of their side, 0-2), ``spread_ticks`` (the market's spread),
  ``bid_queue`` and ``ask_queue`` (lots ahead of the quotes at the end of the step, -1 without
  one), ``bid_left`` and ``ask_left`` (lots resting in the quotes at the end of the step, 0
  without one), ``bid_size`` and ``ask_size`` (lots the step's action asked for),
  ``quote_spread`` (ticks between the step's ask and bid prices as the simulator sets them from
  the mid at the start of the step; null unless both sizes are at least one lot),
  ``time_left``;
- ``fills``: ``episode``, ``step``, ``side`` (+1 bought, -1 sold), ``price``, ``mid`` (just
  before the fill, currency), ``qty`` (lots), ``taker`` (bool), from the simulator's per-step fill
  log (``fastlob._kernels.mm.fill_log``);
- ``episode``: the env's ``info["episode"]`` arrays at the end.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from fastlob._kernels import mm as _mm
from fastlob.env import MarketMakingConfig, MarketMakingVectorEnv

#: columns of ``Recording.fills``
FILL_SCHEMA = {
    "episode": pl.Int64,
    "step": pl.Int64,
    "side": pl.Int64,
    "price": pl.Float64,
    "mid": pl.Float64,
    "qty": pl.Int64,
    "taker": pl.Boolean,
}


@dataclass
class Recording:
    steps: pl.DataFrame
    fills: pl.DataFrame
    episode: dict[str, np.ndarray]


def _quote_columns(actions: np.ndarray, mid2: np.ndarray) -> dict[str, np.ndarray]:
    """Requested sizes and the quoted spread of a step's clipped actions, priced as the kernel
    prices them (``fastlob._kernels.mm.quote_prices`` and ``lots_of``, vectorised)."""
    half = 0.5 * mid2
    bid = np.maximum(np.floor(half - actions[:, _mm.ACT_BID_OFFSET].astype(np.float64)), 1)
    ask = np.maximum(np.ceil(half + actions[:, _mm.ACT_ASK_OFFSET].astype(np.float64)), 1)
    bid_size = np.floor(actions[:, _mm.ACT_BID_SIZE].astype(np.float64) + 0.5).astype(np.int64)
    ask_size = np.floor(actions[:, _mm.ACT_ASK_SIZE].astype(np.float64) + 0.5).astype(np.int64)
    both = (bid_size > 0) & (ask_size > 0)
    return {
        "bid_size": bid_size,
        "ask_size": ask_size,
        "quote_spread": np.where(both, ask - bid, np.nan),
    }


def record(policy, config: MarketMakingConfig, episodes: int, seed: int) -> Recording:
    env = MarketMakingVectorEnv(episodes, config=config, seed=seed)
    obs, _ = env.reset(seed=seed)
    tick = env.params.tick_size
    s = env.state
    env_index = np.arange(episodes)
    step_rows, fill_rows = [], []
    episode_info: dict[str, np.ndarray] = {}
    for t in range(1, config.episode_steps + 1):
        quoted = s.metrics[:, _mm.M_QUOTED_QTY].copy()
        touch = s.metrics[:, _mm.M_TOUCH_STEPS].copy()
        mid2 = s.prev_mid2.copy()  # the mid the step's quote prices are set from (x2, ticks)
        obs, _, terminated, truncated, info = env.step(policy.act(obs))
        alive = env_index[s.step == t]  # envs that ended early are autoreset, not recorded
        applied = env._actions[alive]  # the actions as clipped into the space
        quotes = _quote_columns(applied, mid2[alive])
        step_rows.append(
            {
                "episode": alive,
                "step": np.full(alive.size, t),
                "pnl": info["pnl"][alive],
                "cash": info["cash"][alive],
                "inventory": info["inventory"][alive],
                "mid": info["mid"][alive],
                "quoted_qty": (s.metrics[alive, _mm.M_QUOTED_QTY] - quoted[alive]),
                "at_touch": (s.metrics[alive, _mm.M_TOUCH_STEPS] - touch[alive]),
                "spread_ticks": obs[alive, _mm.OBS_SPREAD],
                "bid_queue": obs[alive, _mm.OBS_BID_QUEUE] * config.depth_scale,
                "ask_queue": obs[alive, _mm.OBS_ASK_QUEUE] * config.depth_scale,
                "bid_left": s.quote_left[alive, _mm.BID],
                "ask_left": s.quote_left[alive, _mm.ASK],
                **quotes,
                "time_left": obs[alive, _mm.OBS_TIME_LEFT],
            }
        )
        counts = s.fill_count[alive]
        if counts.sum():
            traded, counts = alive[counts > 0], counts[counts > 0]
            rows = np.repeat(traded, counts)
            written = np.arange(_mm.FILL_LOG_CAPACITY) < counts[:, None]
            log = s.fill_log[traded][written]  # row-major: env by env, in fill order
            fill_rows.append(
                {
                    "episode": rows,
                    "step": np.full(rows.size, t),
                    "side": log[:, _mm.FILL_SIDE].astype(np.int64),
                    "price": log[:, _mm.FILL_PRICE] * tick,
                    "mid": log[:, _mm.FILL_MID] * tick,
                    "qty": log[:, _mm.FILL_QTY].astype(np.int64),
                    "taker": log[:, _mm.FILL_TAKER] > 0,
                }
            )
        if "episode" in info:
            done = np.asarray(info["_episode"])
            for key, values in info["episode"].items():
                episode_info.setdefault(key, np.zeros(episodes, values.dtype))[done] = values[done]
        if (terminated | truncated).all():
            break
    steps = pl.concat([pl.DataFrame(r) for r in step_rows]).with_columns(
        pl.col("quote_spread").fill_nan(None)
    )
    if fill_rows:
        fills = pl.concat([pl.DataFrame(r) for r in fill_rows])
    else:
        fills = pl.DataFrame(schema=FILL_SCHEMA)
    return Recording(steps.sort(["episode", "step"]), fills, episode_info)
