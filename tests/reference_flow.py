"""Plain-Python reference of the Cont-Stoikov-Talreja background flow, on ReferenceBook.

It follows the documented algorithm step by step (same draws in the same order, the same sums in
the same order), so that the kernel and this reference must agree event by event.
"""

from __future__ import annotations

import math

BID, ASK = 0, 1
FIRST_FLOW_ID = 2  # ids 0 and 1 are the market maker's quotes: never cancelled by the flow
SIGN = {BID: 1, ASK: -1}  # ReferenceBook's sides are +1 / -1


class ReferenceFlow:
    def __init__(
        self,
        book,
        rng,
        limit_rates,
        cancel_rates,
        market_rate,
        size_min,
        size_max,
        last_best,
        tilt=0.0,
        fair_sigma=0.0,
        fair_reversion=0.0,
        fair=(0.0, 0.0),
        hawkes_alpha=0.0,
        hawkes_beta=1.0,
        limit_size_cdf=(),
        market_size_cdf=(),
        anchor_width=math.inf,
    ):
        self.book, self.rng = book, rng
        self.limit_rates, self.cancel_rates = list(limit_rates), list(cancel_rates)
        self.market_rate, self.size_min, self.size_max = market_rate, size_min, size_max
        self.last_best = list(last_best)  # [bid, ask]
        self.tilt, self.fair_sigma, self.fair_reversion = tilt, fair_sigma, fair_reversion
        self.fair = list(fair)  # [value, long-run level]
        self.hawkes_alpha, self.hawkes_beta = hawkes_alpha, hawkes_beta
        # cumulative probabilities of sizes 1..K lots; empty: uniform in [size_min, size_max]
        self.limit_size_cdf, self.market_size_cdf = list(limit_size_cdf), list(market_size_cdf)
        self.anchor_width = anchor_width  # ticks beyond the fair value; inf: no anchor
        self.excite = 0.0
        self.integral = [0.0, 0.0, 0.0, 0.0]  # limit, market, cancel (sum of p), candidates
        self.events = [0, 0, 0, 0, 0, 0]  # limit, market, cancel, rejected, buys, candidates
        self.fills = []  # (maker id, price, qty) of every fill
        self.trades = []  # (maker id, taker side +1/-1, price, qty) of every fill

    def best(self, side):
        return self.book.best(SIGN[side])

    def ref_best(self, side):
        best = self.best(side)
        return self.last_best[side] if best is None else best

    @staticmethod
    def price_at(side, opposite, distance):
        return opposite - distance if side == BID else opposite + distance

    def anchored(self, side, opposite):
        """The reference a limit order on ``side`` is placed from: the opposite best, capped at
        floor(v + w) for a buy and ceil(v - w) for a sell (unchanged when w is inf)."""
        if math.isinf(self.anchor_width):
            return opposite
        if side == BID:
            return min(opposite, math.floor(self.fair[0] + self.anchor_width))
        return max(opposite, math.ceil(self.fair[0] - self.anchor_width))

    def side_orders(self, side):
        """All resting orders of a side (the market maker's included), as the engine counts."""
        return sum(1 for s, _, _ in self.book.orders.values() if s == SIGN[side])

    def cancel_rate_of(self, order_id):
        """theta(d) of a background order at distance d from the opposite best; 0 for ids < 2."""
        if order_id < FIRST_FLOW_ID:
            return 0.0
        sign, price, _ = self.book.orders[order_id]
        side = BID if sign == 1 else ASK
        opposite = self.ref_best(1 - side)
        distance = opposite - price if side == BID else price - opposite
        levels = len(self.cancel_rates)
        if distance < 1 or distance > levels:
            return self.cancel_rates[levels - 1]
        return self.cancel_rates[distance - 1]

    def draw_size(self, cdf=()):
        if len(cdf):
            u = self.rng.uniform()
            return next((k + 1 for k, c in enumerate(cdf) if u < c), len(cdf))
        if self.size_max == self.size_min:
            return self.size_min
        span = self.size_max - self.size_min
        return self.size_min + min(int(self.rng.uniform() * (span + 1)), span)

    def remember_best(self):
        for side in (BID, ASK):
            if self.best(side) is not None:
                self.last_best[side] = self.best(side)

    def normal(self):
        return self.rng.normal()

    def evolve_fair(self, duration):
        if self.fair_sigma <= 0.0:
            return
        z = self.normal()
        if self.fair_reversion > 0.0:
            decay = math.exp(-self.fair_reversion * duration)
            sd = self.fair_sigma * math.sqrt((1.0 - decay * decay) / (2.0 * self.fair_reversion))
            level = self.fair[1]
            self.fair[0] = level + (self.fair[0] - level) * decay + sd * z
        else:
            self.fair[0] += self.fair_sigma * math.sqrt(duration) * z

    def buy_probability(self):
        if self.tilt == 0.0:
            return 0.5
        mid = 0.5 * (self.ref_best(BID) + self.ref_best(ASK))
        return 1.0 / (1.0 + math.exp(-self.tilt * (self.fair[0] - mid)))

    def decayed(self, span):
        if self.excite == 0.0:
            return 0.0
        return self.excite * math.exp(-self.hawkes_beta * span)

    def add_integral(self, limit, market, candidates, span, excited):
        self.integral[0] += limit * span
        self.integral[1] += market * span + excited
        self.integral[3] += candidates * span

    def begin_span(self, duration):
        self.evolve_fair(duration)

    def next_event(self, t, duration):
        """Run to the next event and apply it; returns its time, or -1.0 at the span's end."""
        side_limit = 0.0
        for rate in self.limit_rates:
            side_limit += rate
        cancel_max = 0.0
        for rate in self.cancel_rates:
            cancel_max = max(cancel_max, rate)
        all_limit = 2.0 * side_limit
        base_market = 2.0 * self.market_rate
        while True:
            excite = self.excite
            candidates = cancel_max * len(self.book.orders)
            total = all_limit + base_market + excite + candidates
            if total <= 0.0:
                self.add_integral(all_limit, base_market, candidates, duration - t, 0.0)
                return -1.0
            wait = self.rng.exponential() / total
            span = duration - t if t + wait > duration else wait
            decayed = self.decayed(span)
            excited = 0.0 if excite == 0.0 else (excite - decayed) / self.hawkes_beta
            self.add_integral(all_limit, base_market, candidates, span, excited)
            self.excite = decayed
            if t + wait > duration:
                return -1.0
            t += wait
            target = self.rng.uniform() * total
            if target < all_limit:
                side = BID if target < side_limit else ASK
                within = target if side == BID else target - side_limit
                levels = len(self.limit_rates)
                distance, acc = levels, 0.0
                for i in range(levels):
                    acc += self.limit_rates[i]
                    if within < acc:
                        distance = i + 1
                        break
                price = self.price_at(side, self.anchored(side, self.ref_best(1 - side)), distance)
                size = self.draw_size(self.limit_size_cdf)
                status, fills = (1, []) if price < 1 else self.book.limit(SIGN[side], price, size)
                self.fills += fills
                self.trades += [(m, SIGN[side], p, q) for m, p, q in fills]
                self.events[3] += status != 0
                self.events[0] += 1
                break
            market = base_market + decayed
            if target < all_limit + market:
                buy = target - all_limit < self.buy_probability() * market
                _, fills = self.book.market(1 if buy else -1, self.draw_size(self.market_size_cdf))
                self.fills += fills
                self.trades += [(m, 1 if buy else -1, p, q) for m, p, q in fills]
                self.events[1] += 1
                self.events[4] += buy
                self.excite += self.hawkes_alpha
                break
            if target < all_limit + base_market + excite:
                continue
            resting = len(self.book.orders)
            if resting == 0 or cancel_max == 0.0:
                continue
            order_id = self.book.live[min(int(self.rng.uniform() * resting), resting - 1)]
            rate = self.cancel_rate_of(order_id)
            self.events[5] += 1
            self.integral[2] += rate / cancel_max
            if self.rng.uniform() * cancel_max < rate:
                self.book.cancel(order_id)
                self.events[2] += 1
                break
        self.remember_best()
        return t

    def advance(self, duration):
        self.begin_span(duration)
        t, applied = 0.0, 0
        while True:
            t = self.next_event(t, duration)
            if t < 0.0:
                return applied
            applied += 1
