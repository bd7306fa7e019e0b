"""fastlob: reinforcement-learning market making on an exact, Numba-compiled limit order book."""

from fastlob._kernels.book_layout import (
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
from fastlob.book import BookBatch, OrderBook, OrderRejected, Trades

__all__ = [
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
    "BookBatch",
    "OrderBook",
    "OrderRejected",
    "Trades",
    "__version__",
]
