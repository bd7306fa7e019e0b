"""fastlob: reinforcement-learning market making on an exact, Numba-compiled limit order book."""

import gymnasium as _gymnasium

from fastlob._kernels.book_layout import (
    MAX_ORDER_QTY,
    MSG_CANCEL,
    MSG_LIMIT,
    MSG_MARKET,
    MSG_MODIFY,
    MSG_NOOP,
    OK,
    REJECT_DUPLICATE_ID,
    REJECT_INVALID,
    REJECT_OUTSIDE_LADDER,
    REJECT_POOL_FULL,
    REJECT_TRADE_BUFFER_FULL,
    STATUS_NAMES,
    UNKNOWN_ORDER,
)
from fastlob._version import __version__
from fastlob.as_env import (
    ASParams,
    AvellanedaStoikovVectorEnv,
    LinearQuadraticVectorEnv,
    LQParams,
)
from fastlob.book import BookBatch, OrderBook, OrderRejected, Trades
from fastlob.env import (
    FlowParams,
    MarketMakingConfig,
    MarketMakingEnv,
    MarketMakingVectorEnv,
    RewardConfig,
)
from fastlob.historical import HistoricalMarket

_gymnasium.register(
    id="fastlob/AvellanedaStoikov-v0",
    vector_entry_point="fastlob.as_env:AvellanedaStoikovVectorEnv",
)
_gymnasium.register(
    id="fastlob/LinearQuadratic-v0",
    vector_entry_point="fastlob.as_env:LinearQuadraticVectorEnv",
)
_gymnasium.register(
    id="fastlob/MarketMaking-v0",
    entry_point="fastlob.env:MarketMakingEnv",
    vector_entry_point="fastlob.env:MarketMakingVectorEnv",
)
_gymnasium.register(
    id="fastlob/HistoricalMarketMaking-v0",
    entry_point="fastlob.env:MarketMakingEnv",
    vector_entry_point="fastlob.env:historical_vector_env",
)

__all__ = [
    "MAX_ORDER_QTY",
    "MSG_CANCEL",
    "MSG_LIMIT",
    "MSG_MARKET",
    "MSG_MODIFY",
    "MSG_NOOP",
    "OK",
    "REJECT_DUPLICATE_ID",
    "REJECT_INVALID",
    "REJECT_OUTSIDE_LADDER",
    "REJECT_POOL_FULL",
    "REJECT_TRADE_BUFFER_FULL",
    "STATUS_NAMES",
    "UNKNOWN_ORDER",
    "ASParams",
    "AvellanedaStoikovVectorEnv",
    "BookBatch",
    "HistoricalMarket",
    "LQParams",
    "LinearQuadraticVectorEnv",
    "FlowParams",
    "MarketMakingConfig",
    "MarketMakingEnv",
    "MarketMakingVectorEnv",
    "RewardConfig",
    "OrderBook",
    "OrderRejected",
    "Trades",
    "__version__",
]
