"""Record what a market maker does, step by step and fill by fill, as polars DataFrames in the
layout ``fastlob.metrics`` reads.

``record(policy, config, episodes, seed)`` plays one episode per env (``episodes`` envs, all reset
from ``seed``) with ``policy.act(obs) -> actions`` and returns a :class:`Recording`:

- ``steps``: ``episode``, ``step`` (1-based), ``pnl``, ``cash`` (currency), ``inventory`` (lots),
  ``mid`` (currency), ``others_mid`` (currency: the mid of the other traders' quotes, the
  market maker's own left out), ``quoted_qty`` (lots that reached the book this step),
  ``at_touch`` (live quotes at the best price of their side, 0-2), ``spread_ticks`` (the
  market's spread), ``bid_queue`` and ``ask_queue`` (lots ahead of the quotes at the end of
  the step, -1 without one), ``bid_left`` and ``ask_left`` (lots resting in the quotes at the
  end of the step, 0 without one), ``bid_size`` and ``ask_size`` (lots the step's action asked for),
  ``quote_spread`` (ticks between the step's ask and bid prices as the simulator sets them from
  the mid at the start of the step; null unless both sizes are at least one lot),
  ``time_left``;
- ``fills``: ``episode``, ``step``, ``side`` (+1 bought, -1 sold), ``price``, ``mid`` (just
  before the fill, currency), ``qty`` (lots), ``taker`` (bool), ``reference_mid`` (the other
  traders' mid the fill is marked out from, currency), from the simulator's per-step fill log
  (``MarketMakingVectorEnv.step_fills``);
- ``episode``: the env's ``info["episode"]`` arrays at the end.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from fastlob.env import OBSERVATION_COLUMNS as COLUMN
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
    "reference_mid": pl.Float64,
}


@dataclass
class Recording:
    steps: pl.DataFrame
    fills: pl.DataFrame
    episode: dict[str, np.ndarray]


def record(policy, config: MarketMakingConfig, episodes: int, seed: int) -> Recording:
    env = MarketMakingVectorEnv(episodes, config=config, seed=seed)
    obs, _ = env.reset(seed=seed)
    tick = env.params.tick_size  # a historical market's is its file's
    quoted_qty = env.running_metric("quoted_qty")
    touch_steps = env.running_metric("touch_steps")
    env_index = np.arange(episodes)
    step_rows, fill_rows = [], []
    episode_info: dict[str, np.ndarray] = {}
    for t in range(1, config.episode_steps + 1):
        quoted, touch = quoted_qty.copy(), touch_steps.copy()
        actions = policy.act(obs)
        quotes = env.quotes_for(actions)  # priced from the mids the step starts from
        obs, _, terminated, truncated, info = env.step(actions)
        alive = env_index[env.step_count == t]  # envs that ended early are autoreset, not recorded
        both = (quotes["bid_size"][alive] > 0) & (quotes["ask_size"][alive] > 0)
        spread = (quotes["ask_price"] - quotes["bid_price"])[alive].astype(np.float64)
        step_rows.append(
            {
                "episode": alive,
                "step": np.full(alive.size, t),
                "pnl": info["pnl"][alive],
                "cash": info["cash"][alive],
                "inventory": info["inventory"][alive],
                "mid": info["mid"][alive],
                "others_mid": env.others_mid[alive],
                "quoted_qty": quoted_qty[alive] - quoted[alive],
                "at_touch": touch_steps[alive] - touch[alive],
                "spread_ticks": obs[alive, COLUMN["spread"]],
                "bid_queue": obs[alive, COLUMN["bid_queue"]] * config.depth_scale,
                "ask_queue": obs[alive, COLUMN["ask_queue"]] * config.depth_scale,
                "bid_left": env.quote_remaining[alive, 0],
                "ask_left": env.quote_remaining[alive, 1],
                "bid_size": quotes["bid_size"][alive],
                "ask_size": quotes["ask_size"][alive],
                "quote_spread": np.where(both, spread, np.nan),
                "time_left": obs[alive, COLUMN["time_left"]],
            }
        )
        fills = env.step_fills()
        kept = np.isin(fills["env"], alive)
        if kept.any():
            fill_rows.append(
                {
                    "episode": fills["env"][kept],
                    "step": np.full(int(kept.sum()), t),
                    "side": fills["side"][kept],
                    "price": fills["price"][kept] * tick,
                    "mid": fills["mid"][kept] * tick,
                    "qty": fills["qty"][kept],
                    "taker": fills["taker"][kept],
                    "reference_mid": fills["reference_mid"][kept] * tick,
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
