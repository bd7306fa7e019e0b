"""Plain-Python reference of one market-making env (fastlob._kernels.mm), on ReferenceBook and
ReferenceFlow.

It follows the documented step literally: quote prices from the mid, flow for the latency, the
quotes as one update (post-only against the other traders' best, position limit, self-crossing
pairs netted, keep / reduce / cancel and replace), flow for the rest of the step, then markouts
at the other traders' mid, signals, accounting (the mid and the liquidation mark), reward,
episode end and observation. The
same draws happen in the same order and every float is computed by the same expression, so the
kernel and this reference agree bit for bit.
"""

from __future__ import annotations

import math

import numpy as np
from reference_as import XorShift64Star
from reference_book import OK, ReferenceBook
from reference_flow import ReferenceFlow

BID, ASK = 0, 1
SIGN = (1, -1)
OBS_DIM = 31
LEVELS = 5


class ReferenceMM:
    """One env. ``p`` is the kernel's MMParams, ``fp`` its FlowParams; ``book_params`` sizes the
    reference book like the kernel's."""

    def __init__(
        self, p, fp, limit_rates, cancel_rates, book_params, rng_state, size_cdfs=((), ())
    ):
        self.p, self.fp = p, fp
        self.size_cdfs = size_cdfs  # limit, market: cumulative size tables (empty: uniform)
        self.limit_rates, self.cancel_rates = list(limit_rates), list(cancel_rates)
        self.book_params = book_params
        self.rng = XorShift64Star(int(rng_state))
        self.ask_first = False  # process the quote update's sides in the other order
        self.status_rejected = 0

    # -- market data ---------------------------------------------------------------------------
    def best(self, side):
        return self.book.best(SIGN[side])

    def mid2(self):
        bid, ask = self.best(BID), self.best(ASK)
        bid = self.flow.last_best[BID] if bid is None else bid
        ask = self.flow.last_best[ASK] if ask is None else ask
        return bid + ask

    def live(self, side):
        return side in self.book.orders  # the quote's id is its side index

    def others_best(self, side):
        """The best price of ``side`` among orders that are not the market maker's quotes."""
        prices = [
            price
            for oid, (sign, price, _) in self.book.orders.items()
            if sign == SIGN[side] and oid >= 2
        ]
        if not prices:
            return None
        return max(prices) if side == BID else min(prices)

    def others_mid2(self):
        total = 0
        for side in (BID, ASK):
            price = self.others_best(side)
            if price is None:
                price = self.best(side)
            if price is None:
                price = self.flow.last_best[side]
            total += price
        return total

    def liquidation_value(self, count):
        """The inventory traded against the other traders' book, level by level, taker fee
        paid; lots beyond it at the deepest price reached (counted when ``count``)."""
        p, q = self.p, self.inventory
        if q == 0:
            return 0.0
        side = BID if q > 0 else ASK
        levels = {}
        for oid, (sign, price, qty) in self.book.orders.items():
            if sign == SIGN[side] and oid >= 2:
                levels[price] = levels.get(price, 0) + qty
        remaining, ticks = abs(q), 0.0
        last = self.flow.last_best[side]
        for price in sorted(levels, reverse=(side == BID)):
            if remaining == 0:
                break
            take = min(remaining, levels[price])
            ticks += price * take
            remaining -= take
            last = price
        if remaining > 0:
            ticks += last * remaining
            if count:
                self.m["liquidation_beyond"] += remaining
        notional = ticks * p.tick_size * p.lot_size
        fee = p.taker_fee * notional
        return notional - fee if q > 0 else -(notional + fee)

    # -- reset ---------------------------------------------------------------------------------
    def reset(self):
        p, fp = self.p, self.fp
        self.book = ReferenceBook(self.book_params.ladder_levels, self.book_params.order_capacity)
        self.book.next_auto_id = 2
        for distance in range(1, len(self.limit_rates) + 1):
            for _ in range(p.initial_depth):
                self.book.limit(1, p.initial_price - distance, 1)
                self.book.limit(-1, p.initial_price + distance, 1)
        self.flow = ReferenceFlow(
            self.book,
            self.rng,
            self.limit_rates,
            self.cancel_rates,
            fp.market_rate,
            fp.size_min,
            fp.size_max,
            [p.initial_price - 1, p.initial_price + 1],
            tilt=fp.informed_tilt,
            fair_sigma=fp.fair_sigma,
            fair_reversion=fp.fair_reversion,
            fair=(float(p.initial_price), float(p.initial_price)),
            hawkes_alpha=fp.hawkes_alpha,
            hawkes_beta=fp.hawkes_beta,
            anchor_width=fp.anchor_width,
            limit_size_cdf=self.size_cdfs[0],
            market_size_cdf=self.size_cdfs[1],
        )
        self.step_flow = 0
        if p.warmup > 0.0:
            self.run_flow(p.warmup, account=False)
        self.cash, self.inventory, self.pnl, self.peak = 0.0, 0, 0.0, 0.0
        self.liquidation_pnl = 0.0
        self.quote = [None, None]  # (price, requested size) of each live quote
        self.rested, self.hit = [False, False], [False, False]
        self.step_index, self.prev_done = 0, False
        self.alpha, self.signed_flow, self.step_flow = 0.0, 0.0, 0
        self.m = {k: 0.0 for k in METRICS}
        self.markouts = []  # [due step, signed qty, mid2 before, price]
        self.prev_mid2 = self.mid2()
        return self.observation(self.prev_mid2)

    # -- fills ---------------------------------------------------------------------------------
    def agent_fill(self, sign, price, qty, fee_rate, mid2_before, markout_mid2, taker):
        p = self.p
        notional = price * p.tick_size * (qty * p.lot_size)
        fee = fee_rate * notional
        self.inventory += sign * qty
        self.cash -= sign * notional + fee
        self.m["fees"] += fee
        self.m["fills"] += 1.0
        self.m["filled"] += qty
        self.m["taker" if taker else "maker"] += qty
        self.m["spread"] += sign * (0.5 * mid2_before - price) * qty
        if len(self.markouts) == 64:
            self.m["dropped"] += 1.0
        else:
            due = self.step_index + 1 + p.markout_steps
            self.markouts.append([due, sign * qty, markout_mid2, price])

    def account(self, trades, mid2_before, markout_mid2):
        """trades: (maker, taker id or None, taker side, price, qty)."""
        p = self.p
        for maker, taker, taker_side, price, qty in trades:
            self.step_flow += taker_side * qty
            if maker < 2:
                if maker not in self.book.orders:
                    self.quote[maker] = None
                self.hit[maker] = True
                self.agent_fill(
                    SIGN[maker], price, qty, p.maker_fee, mid2_before, markout_mid2, False
                )
            elif taker is not None and 0 <= taker < 2:
                self.agent_fill(
                    taker_side, price, qty, p.taker_fee, mid2_before, markout_mid2, True
                )

    def run_flow(self, duration, account=True):
        self.flow.begin_span(duration)
        t = 0.0
        while True:
            before, others_before = self.mid2(), self.others_mid2()
            self.flow.trades = []
            t = self.flow.next_event(t, duration)
            if t < 0.0:
                return
            if account:
                trades = [(m, None, side, px, q) for m, side, px, q in self.flow.trades]
                self.account(trades, before, others_before)

    # -- quotes --------------------------------------------------------------------------------
    def close_intervals(self):
        for side in (BID, ASK):
            if self.rested[side]:
                self.m["quote_intervals"] += 1.0
                if self.hit[side]:
                    self.m["filled_quote_intervals"] += 1.0
        self.rested, self.hit = [False, False], [False, False]

    def place_quotes(self, bid, ask, bid_size, ask_size, ask_first=False):
        """Both quotes as one update; ``ask_first`` processes the sides in the other order
        (the outcome must not depend on it)."""
        p = self.p
        self.close_intervals()
        before = self.mid2()
        prices, sizes = [bid, ask], [bid_size, ask_size]
        if p.post_only:
            others = [self.others_best(BID), self.others_best(ASK)]
            for side in (BID, ASK):
                opposite = others[1 - side]
                if opposite is None:
                    continue
                if prices[side] >= opposite if side == BID else prices[side] <= opposite:
                    self.m["post_only_repriced"] += 1.0
                    prices[side] = opposite - 1 if side == BID else opposite + 1
        caps = [p.max_inventory - self.inventory, p.max_inventory + self.inventory]
        lots = list(sizes)
        for side in (BID, ASK):
            if lots[side] > caps[side]:
                lots[side] = caps[side]
                self.m["reduced"] += 1.0
        if lots[BID] > 0 and lots[ASK] > 0 and prices[BID] >= prices[ASK]:
            netted = min(lots)
            lots = [lots[BID] - netted, lots[ASK] - netted]
            self.m["self_cross"] += netted
        order = (ASK, BID) if ask_first else (BID, ASK)
        replace = []
        for side in order:
            left = self.book.orders[side][2] if self.live(side) else 0
            same_price = self.quote[side] is not None and self.quote[side][0] == prices[side]
            if (
                self.live(side)
                and same_price
                and (self.quote[side][1] == sizes[side] or lots[side] <= left)
            ):
                self.quote[side] = (prices[side], sizes[side])
                if left > lots[side]:
                    self.book.cancel(side, left - lots[side])
                    if lots[side] <= 0:
                        self.quote[side] = None
                continue
            if self.live(side):
                self.book.cancel(side)
            self.quote[side] = None
            replace.append(side)
        fills = []
        for side in replace:
            if lots[side] <= 0:
                continue
            status, made = self.book.limit(SIGN[side], prices[side], lots[side], side)
            if status != OK:
                self.m["rejected"] += 1.0
                continue
            self.m["quoted"] += lots[side]
            fills += [(m, side, SIGN[side], px, q) for m, px, q in made]
            if self.live(side):
                self.quote[side] = (prices[side], sizes[side])
        if fills:
            self.account(fills, before, self.others_mid2())
        self.rested = [self.live(BID), self.live(ASK)]

    # -- step ----------------------------------------------------------------------------------
    def step(self, action):
        """``action``: the clipped float32 row. Returns (obs, reward, terminated, truncated)."""
        p = self.p
        if self.prev_done:
            return self.reset(), np.float32(0.0), False, False
        mid_now = self.others_mid2()  # quotes are priced from the other traders' mid
        half = 0.5 * mid_now
        bid = max(math.floor(half - float(action[0])), 1)
        ask = max(math.ceil(half + float(action[1])), 1)
        bid_size = math.floor(float(action[2]) + 0.5)
        ask_size = math.floor(float(action[3]) + 0.5)
        target = float(action[4]) * p.max_inventory
        captured_before = self.m["spread"]
        for phase in range(2):
            self.run_flow(p.latency if phase == 0 else p.dt - p.latency)
            if phase == 0:
                self.place_quotes(bid, ask, bid_size, ask_size, self.ask_first)
        now = self.mid2()
        self.step_index += 1
        self.take_markouts(everything=False)
        decay = p.signal_decay
        self.alpha = decay * self.alpha + (1.0 - decay) * (0.5 * (now - self.prev_mid2))
        self.signed_flow = decay * self.signed_flow + (1.0 - decay) * self.step_flow
        self.step_flow = 0
        self.prev_mid2 = now
        before = self.pnl
        self.pnl = self.cash + self.inventory * p.lot_size * (0.5 * now * p.tick_size)
        change = self.pnl - before
        q = self.inventory
        self.m["inv_sum"] += q
        self.m["inv_sq"] += q * q
        self.m["pnl_sum"] += change
        self.m["pnl_sq"] += change * change
        self.peak = max(self.peak, self.pnl)
        drawdown = self.peak - self.pnl
        self.m["max_dd"] = max(self.m["max_dd"], drawdown)
        breach = drawdown > p.max_drawdown or (
            p.terminate_on_max_inventory and abs(q) >= p.max_inventory
        )
        done = breach or self.step_index >= p.episode_steps
        if p.liquidation_mark or done:
            wealth = self.cash + self.liquidation_value(count=done)
            if p.liquidation_mark:
                change = wealth - self.liquidation_pnl
            self.liquidation_pnl = wealth
        tick_value = p.tick_size * p.lot_size
        miss = q - target
        r = p.reward_scale * (
            change / tick_value
            - p.inventory_penalty * q * q
            - p.target_penalty * miss * miss
            + p.spread_capture * (self.m["spread"] - captured_before)
        )
        self.m["return"] += r
        self.prev_done = done
        if done:
            self.take_markouts(everything=True)
            self.close_intervals()
        return self.observation(now), np.float32(r), done, False

    def take_markouts(self, everything):
        now = self.others_mid2()
        while self.markouts and (everything or self.markouts[0][0] <= self.step_index):
            _, signed, mid_before, price = self.markouts.pop(0)
            sign = 1 if signed > 0 else -1
            self.m["markout"] += signed * (0.5 * now - price)
            self.m["markout_fills"] += 1.0
            self.m["markout_qty"] += abs(signed)
            if sign * (now - mid_before) < 0:
                self.m["adverse"] += 1.0

    # -- observation ---------------------------------------------------------------------------
    def observation(self, now):
        p = self.p
        now = self.others_mid2()  # prices are given from the other traders' mid
        o = [0.0] * OBS_DIM
        o[0] = self.inventory / p.max_inventory
        pnl = self.liquidation_pnl if p.liquidation_mark else self.pnl
        o[1] = pnl / (p.tick_size * p.lot_size * p.max_inventory)
        bid, ask = self.best(BID), self.best(ASK)
        bid_qty = 0 if bid is None else self.book.level_qty(1, bid)
        ask_qty = 0 if ask is None else self.book.level_qty(-1, ask)
        touch = bid_qty + ask_qty
        o[2] = 0.0 if touch == 0 else (bid_qty - ask_qty) / touch
        bid = self.flow.last_best[BID] if bid is None else bid
        ask = self.flow.last_best[ASK] if ask is None else ask
        o[3] = ask - bid
        for side, queue_col, dist_col in ((BID, 4, 6), (ASK, 5, 7)):
            if not self.live(side):
                o[queue_col], o[dist_col] = -1.0, 0.0
                continue
            price = self.book.orders[side][1]
            o[queue_col] = self.book.queue_ahead(side) / p.depth_scale
            o[dist_col] = 0.5 * now - price if side == BID else price - 0.5 * now
            if price == self.best(side):
                self.m["touch"] += 1.0
        o[8] = self.alpha
        o[9] = self.signed_flow / p.depth_scale
        for side, col in ((BID, 10), (ASK, 20)):
            step = -1 if side == BID else 1
            prices = self.book.prices(SIGN[side])[:LEVELS]
            last = self.flow.last_best[side] - step
            for k in range(LEVELS):
                if k < len(prices):
                    last = prices[k]
                    o[col + k] = prices[k] - 0.5 * now
                    o[col + LEVELS + k] = self.book.level_qty(SIGN[side], prices[k]) / p.depth_scale
                else:
                    last += step
                    o[col + k] = last - 0.5 * now
                    o[col + LEVELS + k] = 0.0
        o[30] = (p.episode_steps - self.step_index) / p.episode_steps
        return np.array(o, np.float32)


#: metric names in the kernel's column order (fastlob._kernels.mm.M_*)
METRICS = (
    "return",
    "fills",
    "filled",
    "maker",
    "taker",
    "quoted",
    "spread",
    "markout",
    "markout_fills",
    "markout_qty",
    "adverse",
    "inv_sum",
    "inv_sq",
    "pnl_sum",
    "pnl_sq",
    "max_dd",
    "fees",
    "reduced",
    "self_cross",
    "rejected",
    "dropped",
    "touch",
    "fill_log_dropped",
    "post_only_repriced",
    "quote_intervals",
    "filled_quote_intervals",
    "liquidation_beyond",
)
