"""A slow, obviously correct limit order book in plain Python: the yardstick for the kernels.

Orders live in a dict id -> [side, price, qty]; each price level is a Python list of ids in
arrival order. Best prices are found with max/min over the level dict. It follows the same rules
as the engine, written the plain way:
- price-time priority, every fill at the resting order's price;
- a limit order rests only if the pool has room and all resting prices would span fewer than
  ``ladder_levels`` ticks; otherwise it is rejected whole, before anything trades;
- cancel of qty >= remaining removes the order; a partial cancel keeps priority;
- modify: size decrease at the same price keeps priority; anything else re-enters at the back;
- an order of more than 2**32 lots (limit, market or a modify's new size) is invalid, and so is
  an order asking for an id when every id up to 2**62 is taken.
"""

from __future__ import annotations

OK = 0
REJECT_POOL_FULL = 1
REJECT_OUTSIDE_LADDER = 2
REJECT_DUPLICATE_ID = 3
UNKNOWN_ORDER = 5
REJECT_INVALID = 6
LARGEST_QTY = 2**32
LARGEST_ID = 2**62


class ReferenceBook:
    def __init__(self, ladder_levels: int = 1024, order_capacity: int = 4096):
        self.ladder_levels = ladder_levels
        self.order_capacity = order_capacity
        self.orders: dict[int, list[int]] = {}  # id -> [side, price, qty]
        self.levels: dict[tuple[int, int], list[int]] = {}  # (side, price) -> ids, oldest first
        self.next_auto_id = 0
        # resting order ids in the engine's dense-list order (append; swap-with-last removal)
        self.live: list[int] = []

    # -- views ---------------------------------------------------------------------------------
    def prices(self, side: int) -> list[int]:
        """Resting prices of a side (+1 bids, -1 asks), best first."""
        ps = [p for (s, p) in self.levels if s == side]
        return sorted(ps, reverse=(side == 1))

    def best(self, side: int):
        ps = self.prices(side)
        return ps[0] if ps else None

    def level_qty(self, side: int, price: int) -> int:
        return sum(self.orders[i][2] for i in self.levels[(side, price)])

    def depth(self, levels: int) -> list[list[int]]:
        rows = [[0, 0, 0, 0] for _ in range(levels)]
        for k, p in enumerate(self.prices(-1)[:levels]):
            rows[k][0], rows[k][1] = p, self.level_qty(-1, p)
        for k, p in enumerate(self.prices(1)[:levels]):
            rows[k][2], rows[k][3] = p, self.level_qty(1, p)
        return rows

    def queue_ahead(self, order_id: int) -> int:
        side, price, _ = self.orders[order_id]
        queue = self.levels[(side, price)]
        return sum(self.orders[i][2] for i in queue[: queue.index(order_id)])

    # -- matching ------------------------------------------------------------------------------
    @staticmethod
    def _crosses(side: int, limit: int, resting: int) -> bool:
        return limit >= resting if side == 1 else limit <= resting

    def _unfilled_after_sweep(self, side: int, limit: int, qty: int) -> int:
        available = sum(
            self.level_qty(-side, p) for p in self.prices(-side) if self._crosses(side, limit, p)
        )
        return max(0, qty - available)

    def _fits(self, side: int, price: int, exclude: int | None = None) -> bool:
        """Would all resting prices span fewer than L ticks with this order resting at price?"""
        prices = [price]
        for oid, (s, p, _) in self.orders.items():
            if oid == exclude:
                continue
            if s == side or not self._crosses(side, price, p):
                prices.append(p)
        return max(prices) - min(prices) < self.ladder_levels

    def _sweep(self, side: int, limit: int, qty: int) -> tuple[int, list[tuple[int, int, int]]]:
        fills = []
        while qty > 0:
            best = self.best(-side)
            if best is None or not self._crosses(side, limit, best):
                break
            queue = self.levels[(-side, best)]
            maker = queue[0]
            take = min(qty, self.orders[maker][2])
            fills.append((maker, best, take))
            qty -= take
            self.orders[maker][2] -= take
            if self.orders[maker][2] == 0:
                self._drop(maker)
        return qty, fills

    def _drop(self, order_id: int) -> None:
        position = self.live.index(order_id)
        self.live[position] = self.live[-1]
        self.live.pop()
        side, price, _ = self.orders.pop(order_id)
        queue = self.levels[(side, price)]
        queue.remove(order_id)
        if not queue:
            del self.levels[(side, price)]

    def _rest(self, side: int, price: int, qty: int, order_id: int) -> None:
        self.orders[order_id] = [side, price, qty]
        self.levels.setdefault((side, price), []).append(order_id)
        self.live.append(order_id)

    # -- operations (same status codes as the engine) --------------------------------------------
    def limit(self, side: int, price: int, qty: int, order_id: int | None = None):
        """Returns (status, fills)."""
        if qty > LARGEST_QTY:
            return REJECT_INVALID, []
        if order_id is None:
            order_id = self.next_auto_id
            while order_id in self.orders:
                order_id += 1
            if order_id > LARGEST_ID:
                return REJECT_INVALID, []
        elif order_id in self.orders:
            return REJECT_DUPLICATE_ID, []
        if self._unfilled_after_sweep(side, price, qty) > 0:
            if len(self.orders) >= self.order_capacity:
                return REJECT_POOL_FULL, []
            if not self._fits(side, price):
                return REJECT_OUTSIDE_LADDER, []
        self.next_auto_id = max(self.next_auto_id, order_id + 1)
        remaining, fills = self._sweep(side, price, qty)
        if remaining:
            self._rest(side, price, remaining, order_id)
        return OK, fills

    def market(self, side: int, qty: int):
        if qty > LARGEST_QTY:
            return REJECT_INVALID, []
        limit = 2**53 if side == 1 else 0
        return OK, self._sweep(side, limit, qty)[1]

    def cancel(self, order_id: int, qty: int = 0):
        if order_id not in self.orders:
            return UNKNOWN_ORDER, []
        if qty <= 0 or qty >= self.orders[order_id][2]:
            self._drop(order_id)
        else:
            self.orders[order_id][2] -= qty
        return OK, []

    def modify(self, order_id: int, price: int = 0, qty: int = 0):
        if order_id not in self.orders:
            return UNKNOWN_ORDER, []
        side, old_price, old_qty = self.orders[order_id]
        price = price if price > 0 else old_price
        qty = qty if qty > 0 else old_qty
        if qty > LARGEST_QTY:
            return REJECT_INVALID, []
        if price == old_price and qty <= old_qty:
            self.orders[order_id][2] = qty
            return OK, []
        if self._unfilled_after_sweep(side, price, qty) > 0 and not self._fits(
            side, price, exclude=order_id
        ):
            return REJECT_OUTSIDE_LADDER, []
        self._drop(order_id)
        remaining, fills = self._sweep(side, price, qty)
        if remaining:
            self._rest(side, price, remaining, order_id)
        return OK, fills

    def apply(self, kind: int, side: int, price: int, qty: int, order_id: int):
        """Apply one engine message row; returns (status, fills)."""
        if kind == 1:
            return self.limit(side, price, qty, None if order_id < 0 else order_id)
        if kind == 2:
            return self.market(side, qty)
        if kind == 3:
            return self.cancel(order_id, qty)
        if kind == 4:
            return self.modify(order_id, price, qty)
        return OK, []
