"""Plain-Python reference of one env on a historical market (fastlob._kernels.historical): the
reference market maker (ReferenceMM: quotes, accounting, reward, observation) on a ReferenceBook
that the file's messages go through, written the plain way.

Every message is applied as documented (a submission rests with the file's id, a cancellation or
deletion finds its order or else takes from the synthetic orders at its price, an execution
fills the orders resting at exactly its price, oldest first), and after every message the whole
visible window is brought in line with the file's row, counting only the file's orders (the
kernel does that only when the deepest level differs; doing it always here checks that
shortcut).
"""

from __future__ import annotations

from types import SimpleNamespace

from reference_book import OK, ReferenceBook
from reference_mm import METRICS, ReferenceMM

BID, ASK = 0, 1
SYNTHETIC = 2**61
COUNTERS = (
    "mismatched_rows",
    "levels_taken",
    "levels_forgotten",
    "exec_other_maker",
    "cancel_missing_qty",
    "rejected",
    "delete_size_differs",
    "fills",
    "exec_missing_qty",
    "submit_traded_qty",
    "messages",
    "cancel_beyond_qty",
)


class ReferenceHistorical(ReferenceMM):
    """One env; ``data`` the market's HistData (numpy arrays), ``window`` its HistParams."""

    def __init__(self, p, book_params, rng_state, data, window):
        super().__init__(p, None, [], [], book_params, rng_state)
        self.times = data.times.tolist()
        self.messages = data.messages.tolist()
        self.rows = data.rows
        self.window = window
        self.flow = SimpleNamespace(last_best=[0, 0])

    # -- reset ---------------------------------------------------------------------------------
    def reset(self):
        w = self.window
        self.book = ReferenceBook(self.book_params.ladder_levels, self.book_params.order_capacity)
        t0 = w.earliest_start + self.rng.uniform() * (w.latest_start - w.earliest_start)
        row = w.first_row
        for r in range(w.first_row, w.stop_row):
            if self.times[r] <= t0:
                row = r
        self.next_synthetic = SYNTHETIC
        self.load_row(self.rows[row])
        self.next_row, self.window_start = row + 1, t0
        self.counters = dict.fromkeys(COUNTERS, 0)
        self.remember_best()
        self.step_flow = 0
        self.phase = 0
        self.cash, self.inventory, self.pnl, self.peak = 0.0, 0, 0.0, 0.0
        self.liquidation_pnl = 0.0
        self.quote = [None, None]
        self.rested, self.hit = [False, False], [False, False]
        self.step_index, self.prev_done = 0, False
        self.alpha, self.signed_flow = 0.0, 0.0
        self.m = dict.fromkeys(METRICS, 0.0)
        self.markouts = []
        self.prev_mid2 = self.mid2()
        return self.observation(self.prev_mid2)

    def load_row(self, row):
        for k in range(row.shape[0]):
            for sign, col in ((-1, 0), (1, 2)):
                if row[k, col + 1] > 0:
                    self.book.limit(
                        sign, int(row[k, col]), int(row[k, col + 1]), self.next_synthetic
                    )
                    self.next_synthetic += 1

    def remember_best(self):
        for side in (BID, ASK):
            if self.best(side) is not None:
                self.flow.last_best[side] = self.best(side)

    # -- the file's messages -----------------------------------------------------------------
    def run_flow(self, duration, account=True):
        """The step's two spans: up to start + latency, then up to start + dt (the kernel's
        expressions, so that the same messages fall in each)."""
        p = self.p
        start = self.window_start + self.step_index * p.dt
        until = start + p.latency if self.phase == 0 else start + p.dt
        self.phase = 1 - self.phase
        while self.next_row < self.window.stop_row and self.times[self.next_row] <= until:
            r = self.next_row
            self.apply(self.messages[r])
            self.sync(1, self.rows[r], 2)
            self.sync(-1, self.rows[r], 0)
            self.remember_best()
            self.next_row += 1

    def apply(self, msg):
        kind, order_id, size, price, direction = msg
        c = self.counters
        c["messages"] += 1
        before, others_before = self.mid2(), self.others_mid2()
        if kind == 1:
            status, fills = self.book.limit(direction, price, size, order_id)
            if status != OK:
                c["rejected"] += 1
            elif fills:
                c["submit_traded_qty"] += sum(q for _, _, q in fills)
                trades = [(m, order_id, direction, px, q) for m, px, q in fills]
                self.account(trades, before, others_before)
        elif kind in (2, 3):
            if order_id in self.book.orders:
                if kind == 3 and self.book.orders[order_id][2] != size:
                    c["delete_size_differs"] += 1
                self.book.cancel(order_id, 0 if kind == 3 else size)
            else:
                left = self.reduce_unknown(direction, price, size)
                prices = self.book.prices(direction)
                beyond = not prices or (
                    price < prices[-1] if direction == 1 else price > prices[-1]
                )
                c["cancel_beyond_qty" if beyond else "cancel_missing_qty"] += left
        elif kind == 4:
            remaining, fills = self.execute_at(direction, price, size)
            c["exec_missing_qty"] += remaining
            if order_id < SYNTHETIC and any(m != order_id for m, _, _ in fills):
                c["exec_other_maker"] += 1
            c["fills"] += len(fills)
            trades = [(m, None, -direction, px, q) for m, px, q in fills]
            self.account(trades, before, others_before)

    def execute_at(self, sign, price, size):
        """Fill ``size`` lots of the orders resting at exactly ``price`` on side ``sign``,
        oldest first; returns (the lots left unfilled, the fills)."""
        fills = []
        while size > 0 and (sign, price) in self.book.levels:
            maker = self.book.levels[(sign, price)][0]
            take = min(size, self.book.orders[maker][2])
            fills.append((maker, price, take))
            self.book.cancel(maker, take)
            size -= take
        return size, fills

    def reduce_unknown(self, sign, price, qty):
        for oid in list(self.book.levels.get((sign, price), [])):
            if qty <= 0:
                break
            if oid >= SYNTHETIC:
                take = min(qty, self.book.orders[oid][2])
                self.book.cancel(oid, take)
                qty -= take
        return qty

    def sync(self, sign, row, col):
        """When the row shows all its levels, forget the file's orders worse than its deepest;
        take the row's levels worse than every price holding the file's orders."""
        side = BID if sign == 1 else ASK
        own = side if side in self.book.orders else None
        worse = (lambda a, b: a < b) if sign == 1 else (lambda a, b: a > b)

        def file_qty(price):
            qty = self.book.level_qty(sign, price)
            if own is not None and self.book.orders[own][1] == price:
                qty -= self.book.orders[own][2]
            return qty

        # a level taken from the row may cross the other side (the book diverged from the file):
        # its fills are the market maker's if they reach its quote, referred to the mids now
        before, others_before = self.mid2(), self.others_mid2()
        trades = []
        levels = row.shape[0]
        shown = 0
        while shown < levels and row[shown, col + 1] > 0:
            shown += 1
        if shown == levels:
            deepest = int(row[levels - 1, col])
            for price in self.book.prices(sign):
                if worse(price, deepest):
                    ids = [i for i in self.book.levels[(sign, price)] if i != own]
                    if ids:
                        self.counters["levels_forgotten"] += 1
                    for i in ids:
                        self.book.cancel(i)
        held = [p for p in self.book.prices(sign) if file_qty(p) > 0]
        last = held[-1] if held else None
        for k in range(shown):
            price = int(row[k, col])
            if last is not None and not worse(price, last):
                continue
            _, fills = self.book.limit(sign, price, int(row[k, col + 1]), self.next_synthetic)
            trades += [(m, self.next_synthetic, sign, px, q) for m, px, q in fills]
            self.next_synthetic += 1
            if own is not None and self.book.orders[own][1] == price:
                _, _, left = self.book.orders[own]
                self.book.cancel(own)  # the file's orders were there first
                self.book.limit(sign, price, left, own)
            self.counters["levels_taken"] += 1
            last = price
        if trades:
            self.account(trades, before, others_before)

    @property
    def data_row(self):
        return self.next_row - 1
