"""Random message streams for tests and benchmarks, in the batched driver's message layout.

The stream is event-driven, so that the book it builds reaches a steady state instead of
filling up: limit orders arrive as a Poisson process around a centre price that random-walks;
each order gets an exponential lifetime, at the end of which it is cancelled (a cancel of an
order that traded away in the meantime is the normal race and comes back ``UNKNOWN_ORDER``); some
orders are partly cancelled or modified (new price or new size) during their life; a share of
limit orders is marketable (priced through the centre) and market orders arrive on their own.
Events are merged by time and the first ``num_messages`` kept.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from fastlob._kernels.book_layout import (
    MSG_CANCEL,
    MSG_ID,
    MSG_KIND,
    MSG_LIMIT,
    MSG_MARKET,
    MSG_MODIFY,
    MSG_PRICE,
    MSG_QTY,
    MSG_SIDE,
    MSG_WIDTH,
)


class StreamConfig(NamedTuple):
    """Shape of a random message stream (rates are per unit of time, relative)."""

    #: price the centre starts at, in ticks
    start_price: int = 100_000
    #: mean resting lifetime of an order, in limit-order arrivals; sets the book's size
    mean_lifetime: float = 300.0
    #: market orders per limit order
    market_rate: float = 0.12
    #: share of limit orders priced through the centre (they trade on arrival)
    marketable_share: float = 0.06
    #: share of orders that get a partial cancel during their life
    partial_cancel_share: float = 0.2
    #: share of orders that get a modify during their life
    modify_share: float = 0.1
    #: success probability of the geometric distance (ticks) of passive orders from the centre
    distance_p: float = 0.25
    #: success probability of the geometric order size (lots)
    size_p: float = 0.3
    #: probability per limit arrival that the centre moves one tick (up or down)
    centre_move_prob: float = 0.1


def random_message_stream(
    num_books: int, num_messages: int, seed: int = 0, config: StreamConfig | None = None
) -> np.ndarray:
    """Independent random message streams for ``num_books`` books.

    Parameters
    ----------
    num_books, num_messages : int
        Output shape; each book's stream comes from ``numpy.random.default_rng([seed, book])``.
    seed : int
        Base seed.
    config : StreamConfig, optional
        Stream shape; with the defaults a million messages hold 42.4% limit orders (6% priced
        through the centre), 48.3% cancels (6.0% partial), 4.3% modifies and 5.0% market
        orders.

    Returns
    -------
    ndarray[int64], shape (num_books, num_messages, 5)
        Rows ``[kind, side, price, qty, order_id]`` (see ``fastlob.MSG_*``).
    """
    cfg = config or StreamConfig()
    out = np.zeros((num_books, num_messages, MSG_WIDTH), np.int64)
    for book in range(num_books):
        out[book] = _one_stream(np.random.default_rng([seed, book]), num_messages, cfg)
    return out


def _one_stream(rng: np.random.Generator, num_messages: int, cfg: StreamConfig) -> np.ndarray:
    n_orders = num_messages  # each order makes >= 2 events, so there are always enough
    arrival = np.cumsum(rng.exponential(1.0, n_orders))
    moves = rng.choice(np.array([-1, 1]), n_orders) * (rng.random(n_orders) < cfg.centre_move_prob)
    centre = cfg.start_price + np.cumsum(moves)
    side = rng.choice(np.array([1, -1]), n_orders)
    distance = rng.geometric(cfg.distance_p, n_orders)
    marketable = rng.random(n_orders) < cfg.marketable_share
    # passive orders rest `distance` ticks behind the centre; marketable ones cross it
    price = np.where(marketable, centre + side * distance, centre - side * (distance - 1))
    price = np.maximum(price, 1)
    qty = rng.geometric(cfg.size_p, n_orders)
    order_id = np.arange(n_orders)
    lifetime = rng.exponential(cfg.mean_lifetime, n_orders)

    rows, times = [], []

    def emit(t, kind, side_, price_, qty_, oid):
        block = np.zeros((len(t), MSG_WIDTH), np.int64)
        block[:, MSG_KIND] = kind
        block[:, MSG_SIDE] = side_
        block[:, MSG_PRICE] = price_
        block[:, MSG_QTY] = qty_
        block[:, MSG_ID] = oid
        rows.append(block)
        times.append(t)

    emit(arrival, MSG_LIMIT, side, price, qty, order_id)
    emit(arrival + lifetime, MSG_CANCEL, 0, 0, 0, order_id)

    partial = np.flatnonzero((rng.random(n_orders) < cfg.partial_cancel_share) & (qty >= 2))
    emit(
        arrival[partial] + rng.random(len(partial)) * lifetime[partial],
        MSG_CANCEL,
        0,
        0,
        qty[partial] // 2,
        order_id[partial],
    )

    mod = np.flatnonzero(rng.random(n_orders) < cfg.modify_share)
    reprice = rng.random(len(mod)) < 0.5
    new_price = np.where(
        reprice, np.maximum(price[mod] - side[mod] * rng.integers(-2, 3, len(mod)), 1), 0
    )
    new_qty = np.where(reprice, 0, rng.geometric(cfg.size_p, len(mod)))
    emit(
        arrival[mod] + rng.random(len(mod)) * lifetime[mod],
        MSG_MODIFY,
        0,
        new_price,
        new_qty,
        order_id[mod],
    )

    n_market = rng.poisson(cfg.market_rate * n_orders)
    emit(
        rng.random(n_market) * arrival[-1],
        MSG_MARKET,
        rng.choice(np.array([1, -1]), n_market),
        0,
        rng.geometric(cfg.size_p, n_market),
        -1,
    )

    all_rows = np.concatenate(rows)
    order = np.argsort(np.concatenate(times), kind="stable")[:num_messages]
    return all_rows[order]
