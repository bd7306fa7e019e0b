"""Background order flow: the zero-intelligence Poisson model of Cont, Stoikov & Talreja (2010).

Per book, in continuous time, simulated event by event (Gillespie) and matched the moment each
event arrives, through the matching kernels:

- a limit order at distance ``i`` (1..D) ticks from the opposite best quote arrives at rate
  ``limit_rates[i - 1]`` on each side (a buy at ``best_ask - i``, a sell at ``best_bid + i``;
  with the anchor, below, the opposite best is capped by the fair value);
- a market order arrives at rate ``market_rate`` on each side;
- every resting order at distance ``i`` from the opposite best is cancelled at rate
  ``cancel_rates[i - 1]`` (orders farther than D ticks at ``cancel_rates[D - 1]``).

Every event is O(1), whatever the depth of the book, by thinning (Lewis & Shedler; Ogata). The
candidate events arrive at the bound ``R = 2 sum(lambda) + 2 mu + e + theta_max * K``, where
``K`` counts every resting order and ``theta_max = max(theta)``; a candidate is

- a limit order, with probability ``2 sum(lambda) / R`` (its side and distance in proportion to
  lambda);
- a market order, with probability ``(2 mu + e_now) / R``;
- rejected, with probability ``(e - e_now) / R``, where ``e`` is the Hawkes excitation at the
  previous event and ``e_now`` its decayed value now (see below);
- otherwise a cancellation candidate: one resting order drawn uniformly (from the engine's dense
  list of resting orders), cancelled with probability ``theta(d) / theta_max`` for a background
  order at distance ``d`` from the opposite best (``theta(D)`` beyond D), and never for the market
  maker's orders.

So each background order is cancelled at exactly its rate ``theta(d)``, with no sum over levels.

Hawkes market orders (off by default): the market-order rate is ``2 market_rate + e(t)``, where
the excitation ``e`` jumps by ``hawkes_alpha`` at every market order and decays at rate
``hawkes_beta`` (stationary when ``alpha / beta < 1``). The intensity only decays between
events, so its value at the previous event bounds it, and the rejected share above thins it
exactly.

Informed flow (off by default): a latent fair value ``v`` (ticks) moves at the start of every
span, as a random walk with volatility ``fair_sigma`` ticks per sqrt(second), or, with
``fair_reversion > 0``, as the exact Ornstein-Uhlenbeck transition towards its long-run level.
A market order is then a buy with probability ``1 / (1 + exp(-informed_tilt * (v - mid)))``, so
order flow leans towards the fair value and quotes on the wrong side of it are picked off:
adverse selection is real. With ``informed_tilt = 0`` buys and sells are equally likely.

Anchor (off by default): with ``anchor_width = w`` finite, a limit order's distance is measured
from the opposite best capped by the fair value ``v``: a buy at distance ``i`` is placed at
``min(best_ask, floor(v + w)) - i``, a sell at ``max(best_bid, ceil(v - w)) + i``. Without it
(``w = inf``) nothing pulls the price back when the informed flow is off: a push of one side
(a sweep, or quotes held away from the touch) moves the new orders of the other side with it,
and the move is permanent. With it, a buy is never placed above ``floor(v + w) - 1`` nor a
sell below ``ceil(v - w) + 1``, so the side that was not pushed keeps receiving orders around
``v`` and the book returns to the fair value once a push stops (the half-life is measured by
``fastlob.realism.push_response``); within about ``w`` of ``v`` the book wanders as without it.
The fair value moves as the informed flow's (``fair_sigma``, ``fair_reversion``) and stays at
the initial price when ``fair_sigma = 0``; ``informed_tilt`` may stay 0. Limit orders never
cross the book, anchored or not. The anchor draws nothing.

The market maker's own orders (ids below ``FIRST_FLOW_ID``: its bid and its ask quote) are not
background orders: the flow never cancels them. Books driven by the flow assign their ids from
``FIRST_FLOW_ID`` up.

The kernels take the flow as two bundles: the model (:class:`FlowModel`: the parameters and
rate curves) and the per-book state (:class:`FlowState`, or any state with its fields:
generators, last best prices, fair value and excitation, counters). Rates are per second;
``advance_flow`` runs the events of one time span; ``begin_span`` and ``next_event`` are its two
halves, for callers that act between events (the market-making simulator accounts for every
fill as it happens). When one side of a book is empty, distances on the other side are
measured from that side's last known best price.
Order sizes are uniform integers in ``[size_min, size_max]`` (fixed when equal), or drawn from
a distribution over 1..K lots, one for limit and one for market orders (a calibrated market's).

The draws per span: one standard normal for the fair value (only if ``fair_sigma > 0``;
``rng.standard_normal``, a ziggurat: one 64-bit word, rarely more); then per
candidate event, in order: the waiting time (``rng.exponential``, a ziggurat: one 64-bit word,
rarely more), the event choice (which also decides a market order's direction), then the order size
for a limit or market order (only if ``size_max > size_min``), or, for a cancellation candidate,
the order and the acceptance test.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from fastlob._kernels.book import _remove, limit_order, market_order, side_of
from fastlob._kernels.book_layout import ASK, AUTO_ID, BID, EMPTY_PRICE
from fastlob._kernels.rng import exponential, standard_normal, uniform
from fastlob._numba import njit, prange

#: event counter column: limit orders
EVENT_LIMIT = 0
#: event counter column: market orders
EVENT_MARKET = 1
#: event counter column: cancellations
EVENT_CANCEL = 2
#: event counter column: limit orders the book rejected (capacity or ladder span)
EVENT_REJECTED = 3
#: event counter column: market orders that were buys
EVENT_MARKET_BUY = 4
#: event counter column: cancellation candidates (accepted or not)
EVENT_CANCEL_CANDIDATE = 5
#: number of event counters
NUM_EVENTS = 6

#: column of ``intensity_integral``: integral of the limit-order intensity
INTEGRAL_LIMIT = 0
#: column of ``intensity_integral``: integral of the market-order intensity
INTEGRAL_MARKET = 1
#: column of ``intensity_integral``: sum over cancellation candidates of the probability of
#: acceptance (the compensator of the cancellations given the candidates)
INTEGRAL_CANCEL = 2
#: column of ``intensity_integral``: integral of the cancellation candidates' rate
INTEGRAL_CANCEL_CANDIDATE = 3
#: width of ``intensity_integral``
NUM_INTEGRALS = 4

#: column of ``flow_state`` holding the fair value (ticks)
FAIR_VALUE = 0
#: column of ``flow_state`` holding its long-run level (ticks), the pull of the OU process
FAIR_LEVEL = 1
#: column of ``flow_state`` holding the Hawkes excitation of the market-order rate (1/s)
EXCITATION = 2
#: width of ``flow_state``
FLOW_STATE_WIDTH = 3

#: order ids below this one belong to the market maker and are never cancelled by the flow
FIRST_FLOW_ID = 2

#: Cont, Stoikov & Talreja (2010), Table 2: limit-order rates at distance 1..5 (per second)
CST_LIMIT_RATES = (1.85, 1.51, 1.09, 0.88, 0.77)
#: Cont, Stoikov & Talreja (2010), Table 2: cancellation rates at distance 1..5 (per order, per s)
CST_CANCEL_RATES = (0.71, 0.81, 0.68, 0.56, 0.47)
#: Cont, Stoikov & Talreja (2010): market-order rate (per second, each side)
CST_MARKET_RATE = 0.94


def cst_limit_rates(levels: int) -> np.ndarray:
    """lambda(1..levels): the paper's five values, then the power law 1.92 / i**0.52."""
    i = np.arange(1, levels + 1, dtype=np.float64)
    rates = 1.92 / i**0.52
    k = min(levels, 5)
    rates[:k] = CST_LIMIT_RATES[:k]
    return rates


def cst_cancel_rates(levels: int) -> np.ndarray:
    """theta(1..levels): the paper's five values, then theta(5) beyond."""
    rates = np.full(levels, CST_CANCEL_RATES[-1], np.float64)
    k = min(levels, 5)
    rates[:k] = CST_CANCEL_RATES[:k]
    return rates


class FlowParams(NamedTuple):
    """Scalar parameters of the background flow (the rate curves are arrays beside it)."""

    #: market orders per second, on each side
    market_rate: float = CST_MARKET_RATE
    #: smallest order size (lots)
    size_min: int = 1
    #: largest order size (lots)
    size_max: int = 1
    #: informed flow: slope of the buy probability in the fair value's lead over the mid (1/tick)
    informed_tilt: float = 0.0
    #: informed flow: volatility of the fair value (ticks per sqrt(second)); 0 keeps it fixed
    fair_sigma: float = 0.0
    #: informed flow: mean-reversion rate of the fair value (1/second); 0 is a random walk
    fair_reversion: float = 0.0
    #: Hawkes market orders: jump of the market-order rate (both sides, 1/s) at each market order
    hawkes_alpha: float = 0.0
    #: Hawkes market orders: decay rate of that excitation (1/s); needs alpha / beta < 1
    hawkes_beta: float = 1.0
    #: anchor: a limit order's distance is measured from the opposite best capped at this many
    #: ticks beyond the fair value (a buy's from ``min(best_ask, floor(v + w))``, a sell's from
    #: ``max(best_bid, ceil(v - w))``), so that the book returns to the fair value after a
    #: push; inf (the default) is the unanchored Cont-Stoikov-Talreja flow
    anchor_width: float = math.inf


class FlowModel(NamedTuple):
    """The background flow's model, as the kernels take it (read only)."""

    #: scalar parameters
    params: FlowParams
    #: float64 (D,): lambda(1..D), limit orders per second per side at distance i
    limit_rates: np.ndarray
    #: float64 (D,): theta(1..D), cancellations per resting order per second at distance i
    cancel_rates: np.ndarray
    #: float64 (K,): cumulative probabilities of limit-order sizes 1..K lots (the last 1.0);
    #: empty for sizes uniform in ``[size_min, size_max]``
    limit_size_cdf: np.ndarray = np.zeros(0)
    #: float64 (K,): the same for market orders
    market_size_cdf: np.ndarray = np.zeros(0)


class FlowState(NamedTuple):
    """The flow's per-book state, mutated in place by the kernels. The kernels read it by field
    name, so any state with these fields serves: the market-making simulator passes its
    ``MMState``, which holds them (a tuple of views built inside a kernel lost its writes in
    the compiled step)."""

    #: uint64 (N,): each book's generator
    rng: np.ndarray
    #: int64 (N, 2): last known best bid and ask, the reference of an empty side
    last_best: np.ndarray
    #: float64 (N, FLOW_STATE_WIDTH): fair value and its long-run level (ticks), and the
    #: Hawkes excitation of the market-order rate (1/s)
    flow_state: np.ndarray
    #: int64 (N, NUM_EVENTS): event counters (``EVENT_*``)
    events: np.ndarray
    #: float64 (N, NUM_INTEGRALS): the compensators of the counts (``INTEGRAL_*``)
    intensity_integral: np.ndarray


def flow_model(params, limit_rates, cancel_rates, limit_sizes=None, market_sizes=None):
    """A :class:`FlowModel`; the rates as contiguous float64, and the size distributions (the
    probabilities of sizes 1..K lots, or None for uniform sizes) as cumulative tables."""
    return FlowModel(
        params,
        np.ascontiguousarray(limit_rates, np.float64),
        np.ascontiguousarray(cancel_rates, np.float64),
        size_cdf(limit_sizes),
        size_cdf(market_sizes),
    )


def size_cdf(probabilities) -> np.ndarray:
    """The cumulative table of a size distribution over 1..K lots (empty for None); the last
    entry is exactly 1 so that every draw lands."""
    if probabilities is None:
        return np.zeros(0)
    cdf = np.cumsum(np.asarray(probabilities, np.float64))
    cdf /= cdf[-1]
    cdf[-1] = 1.0
    return cdf


def allocate_flow_state(num_books: int) -> FlowState:
    """The flow state of ``num_books`` books, zeroed (generators unseeded)."""
    n = num_books
    return FlowState(
        rng=np.ones(n, np.uint64),
        last_best=np.zeros((n, 2), np.int64),
        flow_state=np.zeros((n, FLOW_STATE_WIDTH)),
        events=np.zeros((n, NUM_EVENTS), np.int64),
        intensity_integral=np.zeros((n, NUM_INTEGRALS)),
    )


@njit
def _reference_best(s, n, side, last_best):
    """Best price of ``side``, or its last known value when the side is empty."""
    best = s.best[n, side]
    if best == EMPTY_PRICE:
        return last_best[n, side]
    return best


@njit
def _price_at_distance(side, opposite_best, distance):
    """Price of an order on ``side`` at ``distance`` ticks from the opposite best quote."""
    if side == BID:
        return opposite_best - distance
    return opposite_best + distance


@njit
def _anchored_reference(side, opposite_best, fair, anchor_width):
    """The price a limit order on ``side`` is placed below (a buy) or above (a sell):
    ``opposite_best``, capped by the fair value ``fair`` plus (a buy) or minus (a sell)
    ``anchor_width`` ticks, rounded towards the fair value; ``opposite_best`` itself when the
    width is infinite (the unanchored flow). The cap never moves the reference beyond the
    opposite best, so an order at distance >= 1 never crosses the book."""
    if math.isinf(anchor_width):
        return opposite_best
    if side == BID:
        return min(opposite_best, math.floor(fair + anchor_width))
    return max(opposite_best, math.ceil(fair - anchor_width))


@njit
def rate_totals(model):
    """``(sum(lambda), max(theta))`` of a :class:`FlowModel`: computed once per span (or once
    per batch of books) by the callers of :func:`next_event`."""
    side_limit = 0.0
    for i in range(model.limit_rates.shape[0]):
        side_limit += model.limit_rates[i]
    cancel_max = 0.0
    for i in range(model.cancel_rates.shape[0]):
        cancel_max = max(cancel_max, model.cancel_rates[i])
    return side_limit, cancel_max


@njit
def _cancel_rate_of(s, n, slot, cancel_rates, last_best):
    """theta(d) of the background order in ``slot`` (0 for the market maker's orders)."""
    if s.order_id[n, slot] < FIRST_FLOW_ID:
        return 0.0
    side = side_of(s, n, slot)
    price = s.order_price[n, slot]
    opposite = _reference_best(s, n, 1 - side, last_best)
    distance = opposite - price if side == BID else price - opposite
    levels = cancel_rates.shape[0]
    if distance < 1 or distance > levels:
        return cancel_rates[levels - 1]
    return cancel_rates[distance - 1]


@njit
def _draw_size(rng, n, fp, cdf):
    """An order size in lots: from the cumulative table ``cdf`` (one uniform), or, with an empty
    table, uniform in ``[size_min, size_max]`` (one uniform, none when they are equal)."""
    if cdf.shape[0] > 0:
        u = uniform(rng, n)
        k = 0
        while k < cdf.shape[0] - 1 and u >= cdf[k]:
            k += 1
        return k + 1
    if fp.size_max == fp.size_min:
        return fp.size_min
    return fp.size_min + min(
        int(uniform(rng, n) * (fp.size_max - fp.size_min + 1)), fp.size_max - fp.size_min
    )


@njit
def _remember_best(s, n, last_best):
    for side in (BID, ASK):
        if s.best[n, side] != EMPTY_PRICE:
            last_best[n, side] = s.best[n, side]


@njit
def _evolve_fair(rng, n, fp, flow_state, duration):
    """Move the fair value of book ``n`` over ``duration`` seconds (one normal draw)."""
    if fp.fair_sigma <= 0.0:
        return
    z = standard_normal(rng, n)
    if fp.fair_reversion > 0.0:
        decay = math.exp(-fp.fair_reversion * duration)
        sd = fp.fair_sigma * math.sqrt((1.0 - decay * decay) / (2.0 * fp.fair_reversion))
        level = flow_state[n, FAIR_LEVEL]
        flow_state[n, FAIR_VALUE] = level + (flow_state[n, FAIR_VALUE] - level) * decay + sd * z
    else:
        flow_state[n, FAIR_VALUE] += fp.fair_sigma * math.sqrt(duration) * z


@njit
def _buy_probability(s, n, fp, flow_state, last_best):
    """Probability that a market order of book ``n`` is a buy (1/2 without informed flow)."""
    if fp.informed_tilt == 0.0:
        return 0.5
    mid = 0.5 * (_reference_best(s, n, BID, last_best) + _reference_best(s, n, ASK, last_best))
    return 1.0 / (1.0 + math.exp(-fp.informed_tilt * (flow_state[n, FAIR_VALUE] - mid)))


@njit
def _add_integral(intensity_integral, n, limit, market, candidates, span, excited):
    """Add the integrals over ``span``; ``excited`` is that of the Hawkes excitation."""
    intensity_integral[n, INTEGRAL_LIMIT] += limit * span
    intensity_integral[n, INTEGRAL_MARKET] += market * span + excited
    intensity_integral[n, INTEGRAL_CANCEL_CANDIDATE] += candidates * span


@njit
def _decayed(excite, fp, span):
    """Hawkes excitation after ``span`` seconds of exponential decay."""
    if excite == 0.0:
        return 0.0
    return excite * math.exp(-fp.hawkes_beta * span)


@njit
def begin_span(model, fs, n, duration):
    """Start a span of ``duration`` seconds: the fair value of book ``n`` moves (one normal
    draw when ``fair_sigma > 0``). Follow with :func:`next_event` until it returns -1."""
    _evolve_fair(fs.rng, n, model.params, fs.flow_state, duration)


#: kinds of event :func:`draw_event` returns (what :func:`apply_event` does to the book)
KIND_LIMIT = 0
#: a market order
KIND_MARKET = 1
#: a cancellation of the order in a slot
KIND_CANCEL = 2


@njit(inline="always")
def draw_event(s, n, model, fs, totals, t, duration):
    """Draw book ``n``'s next event from time ``t`` of the span, without applying it.

    Arguments and their updates as :func:`next_event`, except that the book is only read: the
    event is counted (``EVENT_LIMIT``, ``EVENT_MARKET``, ``EVENT_MARKET_BUY``, ``EVENT_CANCEL``;
    rejections are counted when it is applied) and a market order's Hawkes excitation added.

    Returns
    -------
    tuple of (float, int, int, int, int, int)
        ``(t, kind, direction, price, size, slot)``: the event's time (-1.0 if the span ended
        first, the rest then meaningless), ``KIND_*``, +1 buy / -1 sell, the limit price in
        ticks, the size in lots, and the slot of the order to cancel.
    """
    fp = model.params
    limit_rates = model.limit_rates
    cancel_rates = model.cancel_rates
    side_limit, cancel_max = totals
    all_limit = 2.0 * side_limit
    base_market = 2.0 * fp.market_rate
    while True:
        excite = fs.flow_state[n, EXCITATION]
        candidates = cancel_max * (s.side_orders[n, BID] + s.side_orders[n, ASK])
        total = all_limit + base_market + excite + candidates
        if total <= 0.0:
            _add_integral(
                fs.intensity_integral, n, all_limit, base_market, candidates, duration - t, 0.0
            )
            return -1.0, KIND_LIMIT, 0, 0, 0, 0
        wait = exponential(fs.rng, n, total)
        span = duration - t if t + wait > duration else wait
        decayed = _decayed(excite, fp, span)
        excited_integral = 0.0 if excite == 0.0 else (excite - decayed) / fp.hawkes_beta
        _add_integral(
            fs.intensity_integral, n, all_limit, base_market, candidates, span, excited_integral
        )
        fs.flow_state[n, EXCITATION] = decayed
        if t + wait > duration:
            return -1.0, KIND_LIMIT, 0, 0, 0, 0
        t += wait
        target = uniform(fs.rng, n) * total
        if target < all_limit:
            side = BID if target < side_limit else ASK
            within = target if side == BID else target - side_limit
            levels = limit_rates.shape[0]
            distance = levels
            acc = 0.0
            for i in range(levels):
                acc += limit_rates[i]
                if within < acc:
                    distance = i + 1
                    break
            opposite = _anchored_reference(
                side,
                _reference_best(s, n, 1 - side, fs.last_best),
                fs.flow_state[n, FAIR_VALUE],
                fp.anchor_width,
            )
            price = _price_at_distance(side, opposite, distance)
            size = _draw_size(fs.rng, n, fp, model.limit_size_cdf)
            fs.events[n, EVENT_LIMIT] += 1
            return t, KIND_LIMIT, 1 if side == BID else -1, price, size, 0
        market = base_market + decayed
        if target < all_limit + market:
            # the event draw is uniform within the market segment: it also decides the side
            buy_share = _buy_probability(s, n, fp, fs.flow_state, fs.last_best)
            buy = target - all_limit < buy_share * market
            size = _draw_size(fs.rng, n, fp, model.market_size_cdf)
            fs.events[n, EVENT_MARKET] += 1
            fs.events[n, EVENT_MARKET_BUY] += buy
            fs.flow_state[n, EXCITATION] += fp.hawkes_alpha
            return t, KIND_MARKET, 1 if buy else -1, 0, size, 0
        if target < all_limit + base_market + excite:
            continue  # Hawkes thinning: the excitation decayed since the bound was taken
        resting = s.side_orders[n, BID] + s.side_orders[n, ASK]
        if resting == 0 or cancel_max == 0.0:
            continue  # only reachable by rounding at the very top of [0, total)
        slot = s.live_slot[n, min(int(uniform(fs.rng, n) * resting), resting - 1)]
        rate = _cancel_rate_of(s, n, slot, cancel_rates, fs.last_best)
        fs.events[n, EVENT_CANCEL_CANDIDATE] += 1
        fs.intensity_integral[n, INTEGRAL_CANCEL] += rate / cancel_max
        if uniform(fs.rng, n) * cancel_max < rate:
            fs.events[n, EVENT_CANCEL] += 1
            return t, KIND_CANCEL, 0, 0, 0, slot


@njit(inline="always")
def apply_event(s, n, fs, kind, direction, price, size, slot):
    """Apply an event of :func:`draw_event` to book ``n`` through the engine (the matching);
    counts a rejected order in ``fs.events[n, EVENT_REJECTED]`` and remembers the best prices
    in ``fs.last_best``."""
    if kind == KIND_LIMIT:
        if price < 1 or limit_order(s, n, direction, price, size, AUTO_ID) != 0:
            fs.events[n, EVENT_REJECTED] += 1
    elif kind == KIND_MARKET:
        if market_order(s, n, direction, size, AUTO_ID) != 0:
            fs.events[n, EVENT_REJECTED] += 1
    else:
        _remove(s, n, slot)
    _remember_best(s, n, fs.last_best)


@njit(inline="always")
def next_event(s, n, model, fs, totals, t, duration):
    """Run book ``n``'s flow from time ``t`` of the span to its next event and apply that event
    (:func:`draw_event`, then :func:`apply_event`).

    Parameters
    ----------
    s : BookState
        Books; book ``n`` is mutated in place (fills land in its trade buffer).
    n : int
        Book index.
    model : FlowModel
        The flow's parameters and rate curves: lambda(1..D) per side, theta(1..D) per order.
    fs : FlowState
        The books' flow state, book ``n``'s row updated: its generator, its last known best
        prices, its Hawkes excitation, its event counters (incremented) and
        ``intensity_integral``, incremented by the compensators of the counts: the exact
        integrals of the limit, market and cancellation-candidate intensities (piecewise
        constant, or exponentially decaying for the Hawkes part), and the sum of the
        candidates' acceptance probabilities. ``count - compensator`` has mean 0 and variance
        at most the compensator: the tests use it to check the realised rates.
    totals : tuple of (float, float)
        ``rate_totals(model)``.
    t, duration : float
        Seconds since the span began, and the span's length.

    Returns
    -------
    float
        Time of the event within the span, or -1.0 if the span ended first (the overshoot of
        the last waiting time is discarded: by memorylessness the next span starts afresh).
    """
    t, kind, direction, price, size, slot = draw_event(s, n, model, fs, totals, t, duration)
    if t >= 0.0:
        apply_event(s, n, fs, kind, direction, price, size, slot)
    return t


@njit
def advance_flow(s, n, model, fs, duration):
    """Run the background flow of book ``n`` for ``duration`` seconds, event by event.

    Arguments as :func:`next_event`; the fair value moves once at the start. Fills land in the
    book's trade buffer: its capacity must hold the span's fills (an event whose fills would not
    fit is rejected and counted in ``EVENT_REJECTED``).

    Returns
    -------
    int
        Number of events applied.
    """
    begin_span(model, fs, n, duration)
    totals = rate_totals(model)
    applied = 0
    t = 0.0
    while True:
        t = next_event(s, n, model, fs, totals, t, duration)
        if t < 0.0:
            return applied
        applied += 1


#: books per chunk of the parallel flow driver
CHUNK = 64


@njit
def _advance_range(s, fp, lr, cr, lc, mc, fs, duration, applied, start, stop):
    model = FlowModel(fp, lr, cr, lc, mc)
    for n in range(start, stop):
        applied[n] = advance_flow(s, n, model, fs, duration)


@njit
def advance_flow_batch(s, model, fs, duration, applied):
    """:func:`advance_flow` for every book, in parallel chunks of ``CHUNK`` books.

    ``applied`` (int64 (N,)) is written with each book's number of events. Each book draws only
    from its own generator, so results do not depend on the number of threads.
    """
    # a parallel kernel cannot take a tuple holding a tuple: the model goes in by its parts
    fp, lr, cr, lc, mc = model
    _advance_all(s, fp, lr, cr, lc, mc, fs, duration, applied)


@njit(parallel=True)
def _advance_all(s, fp, lr, cr, lc, mc, fs, duration, applied):
    num_books = fs.rng.shape[0]
    for chunk in prange((num_books + CHUNK - 1) // CHUNK):
        start = chunk * CHUNK
        stop = min(start + CHUNK, num_books)
        _advance_range(s, fp, lr, cr, lc, mc, fs, duration, applied, start, stop)
