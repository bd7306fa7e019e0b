"""One book's background flow as a LOBSTER message stream, and the visible book after each
message (the rows of its orderbook file).

A flow event becomes the messages LOBSTER would log for it: a cancellation is a full deletion
(type 3) of the order's remaining size; every fill is an execution (type 4) of the resting
order, with the resting order's id, price and direction, so that a market order (or the part of
a limit order that crosses) is one type-4 message per order it reaches, all at its time; what a
limit order leaves resting is a submission (type 1) of that remainder; no partial cancellation
(type 2) occurs, as the flow cancels whole orders. Ids are the engine's.
The rows come from applying the messages, one by one, to a fresh book through the replay's own
event code (``replay.apply_data_event``).
"""

from __future__ import annotations

from fastlob._kernels.book import depth_into, find_slot, limit_order, side_of
from fastlob._kernels.book_layout import (
    AUTO_ID,
    BID,
    OK,
    TRADE_MAKER_ID,
    TRADE_PRICE,
    TRADE_QTY,
    TRADE_TAKER_SIDE,
)
from fastlob._kernels.flow import (
    EVENT_REJECTED,
    KIND_CANCEL,
    KIND_LIMIT,
    apply_event,
    begin_span,
    draw_event,
    rate_totals,
)
from fastlob._kernels.replay import (
    COL_DIRECTION,
    COL_ID,
    COL_PRICE,
    COL_SIZE,
    COL_TYPE,
    EVENT_DELETE,
    EVENT_EXECUTE,
    EVENT_SUBMIT,
    apply_data_event,
)
from fastlob._numba import njit


@njit
def _emit(times, out, k, time, kind, order_id, size, price, direction):
    """Write message ``k`` if the buffers hold it; returns ``k + 1`` either way (the caller
    sees an overflow as a count beyond the buffer)."""
    if k < out.shape[0]:
        times[k] = time
        out[k, COL_TYPE] = kind
        out[k, COL_ID] = order_id
        out[k, COL_SIZE] = size
        out[k, COL_PRICE] = price
        out[k, COL_DIRECTION] = direction
    return k + 1


@njit
def seed_messages(s, initial_price, initial_depth, levels, time, times, out, k):
    """Rest ``initial_depth`` one-lot orders at each of ``levels`` distances on each side of
    ``initial_price`` in book 0 (as the simulator's reset does), each logged as a submission at
    ``time``. Returns the next message index."""
    for distance in range(1, levels + 1):
        for _ in range(initial_depth):
            for direction in (1, -1):
                price = initial_price - direction * distance
                if limit_order(s, 0, direction, price, 1, AUTO_ID) == OK:
                    order_id = s.last_order_id[0]
                    k = _emit(times, out, k, time, EVENT_SUBMIT, order_id, 1, price, direction)
    return k


@njit
def flow_messages(s, model, fs, dt, spans, start_time, times, out, k):
    """Run book 0's flow for ``spans`` spans of ``dt`` seconds (the fair value moves at each
    span's start, as in the simulator's steps) and log its messages from index ``k``.

    Parameters
    ----------
    s : BookState
        One book (ids kept in its id table); mutated in place, its trade buffer drained.
    model : FlowModel
    fs : FlowState
        The book's flow state (row 0), updated.
    dt : float
        Seconds per span.
    spans : int
    start_time : float
        Time of the first span's start (seconds after midnight).
    times : ndarray[float64], shape (C,)
        Written: each message's time.
    out : ndarray[int64], shape (C, 5)
        Written: ``[type, order_id, size, price_ticks, direction]`` per message.
    k : int
        Index of the first message to write.

    Returns
    -------
    int
        The index after the last message (more than C: the buffers overflowed and the messages
        beyond were not written).
    """
    totals = rate_totals(model)
    for span in range(spans):
        begin_span(model, fs, 0, dt)
        t = 0.0
        while True:
            t, kind, direction, price, size, slot = draw_event(s, 0, model, fs, totals, t, dt)
            if t < 0.0:
                break
            when = start_time + span * dt + t
            if kind == KIND_CANCEL:
                side = 1 if side_of(s, 0, slot) == BID else -1
                k = _emit(
                    times, out, k, when, EVENT_DELETE, s.order_id[0, slot],
                    s.order_qty[0, slot], s.order_price[0, slot], side,
                )  # fmt: skip
            rejected = fs.events[0, EVENT_REJECTED]
            apply_event(s, 0, fs, kind, direction, price, size, slot)
            for j in range(s.trade_count[0]):
                k = _emit(
                    times, out, k, when, EVENT_EXECUTE, s.trades[0, j, TRADE_MAKER_ID],
                    s.trades[0, j, TRADE_QTY], s.trades[0, j, TRADE_PRICE],
                    -s.trades[0, j, TRADE_TAKER_SIDE],
                )  # fmt: skip
            s.trade_count[0] = 0
            if kind == KIND_LIMIT and fs.events[0, EVENT_REJECTED] == rejected:
                order_id = s.last_order_id[0]
                resting = find_slot(s, 0, order_id)
                if resting >= 0:
                    k = _emit(
                        times, out, k, when, EVENT_SUBMIT, order_id, s.order_qty[0, resting],
                        price, direction,
                    )  # fmt: skip
    return k


@njit
def book_rows(s, messages, counters, out_rows):
    """Apply LOBSTER messages (int64 (M, 5), prices in ticks) to book 0 of ``s`` one by one,
    as the replay does, writing the visible window after each into ``out_rows`` (int64
    (M, levels, 4), LOBSTER layout, a missing level 0, 0); ``counters`` as the replay's."""
    for m in range(messages.shape[0]):
        apply_data_event(s, 0, messages[m], counters)
        s.trade_count[0] = 0
        depth_into(s, 0, out_rows[m])
