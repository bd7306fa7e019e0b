"""Invariants of the book as hypothesis property tests, over random operation sequences.

- the resting book is never crossed;
- quantity is conserved: submitted = resting + filled + cancelled (for limit orders, with
  modifies counted as changes of the submitted quantity);
- every fill is at the maker's resting price, and within the taker's limit;
- FIFO within a level: when an order fills, every order that joined its level earlier is gone.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastlob import OrderBook, OrderRejected

BUY, SELL = 1, -1

op = st.one_of(
    st.tuples(
        st.just("limit"), st.sampled_from([BUY, SELL]), st.integers(90, 110), st.integers(1, 20)
    ),
    st.tuples(st.just("market"), st.sampled_from([BUY, SELL]), st.integers(1, 40)),
    st.tuples(st.just("cancel"), st.integers(0, 60), st.one_of(st.none(), st.integers(1, 10))),
    st.tuples(
        st.just("modify"),
        st.integers(0, 60),
        st.one_of(st.none(), st.integers(90, 110)),
        st.one_of(st.none(), st.integers(1, 20)),
    ),
)


class Ledger:
    """What the test knows from the calls and their return values alone."""

    def __init__(self):
        self.submitted = 0  # limit quantity submitted (+ modify changes)
        self.filled_maker = 0
        self.filled_taker_limit = 0
        self.cancelled = 0
        self.price = {}  # order id -> resting price
        self.joined = {}  # order id -> time it joined its queue
        self.side = {}
        self.clock = 0


def check_fills(book, ledger, fills, taker_side, limit):
    for maker, price, qty in fills.tolist():
        assert qty > 0
        assert price == ledger.price[maker], "fill not at the maker's resting price"
        if limit is not None:
            assert (price <= limit) if taker_side == BUY else (price >= limit)
        # FIFO: every order that joined this level before the maker is gone now
        for oid, t in ledger.joined.items():
            if (
                oid in book
                and ledger.price[oid] == price
                and ledger.side[oid] == -taker_side
                and t < ledger.joined[maker]
            ):
                raise AssertionError(f"order {oid} joined before {maker} but is still resting")
        ledger.filled_maker += qty


def apply(book, ledger, operation):
    kind = operation[0]
    if kind == "limit":
        _, side, price, qty = operation
        try:
            fills = book.limit(side, price, qty)
        except OrderRejected:
            return
        oid = book.last_order_id
        ledger.price[oid], ledger.side[oid] = price, side
        ledger.joined[oid] = ledger.clock
        ledger.submitted += qty
        check_fills(book, ledger, fills, side, price)
        ledger.filled_taker_limit += int(fills[:, 2].sum())
    elif kind == "market":
        _, side, qty = operation
        check_fills(book, ledger, book.market(side, qty), side, None)
    elif kind == "cancel":
        _, oid, qty = operation
        before = book.remaining(oid)
        assert book.cancel(oid, qty) == (before > 0)
        ledger.cancelled += before - book.remaining(oid)
    else:
        _, oid, price, qty = operation
        before = book.remaining(oid)
        if before == 0:
            assert book.modify(oid, price=price, qty=qty) is None
            return
        old_price = ledger.price[oid]
        new_qty = before if qty is None else qty
        try:
            fills = book.modify(oid, price=price, qty=qty)
        except OrderRejected:
            return
        ledger.submitted += new_qty - before
        new_price = old_price if price is None else price
        if new_price != old_price or new_qty > before:
            ledger.joined[oid] = ledger.clock
        ledger.price[oid] = new_price
        check_fills(book, ledger, fills, ledger.side[oid], new_price)
        ledger.filled_taker_limit += int(fills[:, 2].sum())
    ledger.clock += 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(op, min_size=1, max_size=60), st.sampled_from([16, 32, 1024]), st.sampled_from([4, 64])
)
def test_book_invariants(operations, ladder, capacity):
    book = OrderBook(ladder_levels=ladder, order_capacity=capacity)
    ledger = Ledger()
    for operation in operations:
        apply(book, ledger, operation)
        bid, ask = book.best_bid(), book.best_ask()
        assert bid is None or ask is None or bid < ask, "crossed book"
        resting = int(book.depth(ladder)[:, [1, 3]].sum())
        assert resting == sum(book.remaining(o) for o in ledger.price)
        assert ledger.submitted == (
            resting + ledger.filled_maker + ledger.filled_taker_limit + ledger.cancelled
        ), "quantity not conserved"
        assert len(book) <= capacity
