"""Calibrate the Avellaneda-Stoikov fill intensity ``lambda(delta) = A exp(-k delta)`` and the mid's
volatility from the order-book simulator itself, so that the classical baselines can run on it.

For each offset ``delta`` on a grid, every env quotes one lot ``delta`` ticks either side of the
mid (re-posting after each fill), and we count steps in which each quote was filled. A quote is
exposed for ``T = dt - latency`` seconds per step; if fills arrived at rate ``lambda`` the chance
of at least one in a step would be ``p = 1 - exp(-lambda T)``, so ``lambda = -ln(1 - p) / T``.
``A`` and ``k`` are then the least-squares fit of ``ln lambda = ln A - k delta``. (Queues are
real here, so fills are not exactly Poisson: a quote kept for several steps moves up its queue.
The fit is the Poisson intensity that matches the per-step fill frequency at each distance, which
is what the closed-form strategies assume.)

``sigma`` is the standard deviation of the mid's change per step over ``sqrt(dt)``: ticks per
sqrt(second).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fastlob._checks import check_int, check_real
from fastlob.env import MarketMakingConfig, MarketMakingVectorEnv
from fastlob.historical import load_market


@dataclass(frozen=True)
class Calibration:
    """Fitted parameters, in ticks and seconds, with the measurements behind them."""

    #: A, fills per second at offset 0
    intensity: float
    #: k, per tick of offset
    decay: float
    #: mid volatility, ticks per sqrt(second)
    sigma: float
    #: offsets measured (ticks), float64 (G,)
    offsets: np.ndarray
    #: fill intensity measured at each offset (per second, per side), float64 (G,)
    rates: np.ndarray
    #: fraction of quote-steps with a fill at each offset, float64 (G,)
    fill_probability: np.ndarray


def intensity_from_fill_probability(p: np.ndarray, exposure: float) -> np.ndarray:
    """``lambda = -ln(1 - p) / exposure``: the Poisson rate with per-step fill probability p."""
    return -np.log1p(-np.asarray(p, np.float64)) / exposure


def fit_exponential_intensity(offsets: np.ndarray, rates: np.ndarray) -> tuple[float, float]:
    """Least-squares ``(A, k)`` of ``ln rate = ln A - k offset`` over the positive rates."""
    offsets = np.asarray(offsets, np.float64)
    rates = np.asarray(rates, np.float64)
    keep = rates > 0
    if keep.sum() < 2:
        raise ValueError("need fills at two offsets or more to fit A and k; quote closer")
    slope, intercept = np.polyfit(offsets[keep], np.log(rates[keep]), 1)
    return float(np.exp(intercept)), float(-slope)


def _mid_ticks(env: MarketMakingVectorEnv) -> np.ndarray:
    """Each env's mid in ticks (a multiple of half a tick, rounded back to one exactly)."""
    return np.rint(env.mid * (2.0 / env.params.tick_size)) / 2.0


def _steps_that_fit(config: MarketMakingConfig, steps: int) -> int:
    """``steps``, or fewer on a historical market whose part is shorter than ``steps + 1``
    steps (the measurement is one episode per env)."""
    if not config.lobster:
        return steps
    market = load_market(
        *config.lobster,
        tick_size=config.lobster_tick or None,
        train_fraction=config.train_fraction,
        lot_size=config.lobster_lot,
    )
    start, end = market.part_seconds(config.lobster_part)
    return max(1, min(steps, int((end - start) / config.dt) - 1))


def calibrate(
    config: MarketMakingConfig | None = None,
    offsets=(0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0),
    num_envs: int = 256,
    steps: int = 200,
    seed: int = 0,
) -> Calibration:
    """Measure the fill intensity against quote distance, and the mid's volatility, in the
    order-book simulator with ``config`` (see the module docstring); on a historical market,
    over at most as many steps as its part holds."""
    config = config if config is not None else MarketMakingConfig()
    offsets = np.asarray(offsets, np.float64)
    if offsets.ndim != 1 or offsets.size < 2 or not np.all(np.isfinite(offsets)):
        raise ValueError(f"offsets must be two or more finite values, got {offsets!r}")
    steps = _steps_that_fit(config, check_int("steps", steps, 1, 10**7))
    # one long episode per env: no reset inside the measurement; the market's action bound
    # widened to the offsets measured (the fill intensity is the market's, not the bound's)
    run_config = config.replace(
        episode_steps=steps + 1,
        max_drawdown=float("inf"),
        terminate_on_max_inventory=False,
        max_inventory=max(config.max_inventory, 2 * steps + 2),
        max_offset=max(config.max_offset, float(np.abs(offsets).max())),
    )
    env = MarketMakingVectorEnv(num_envs, config=run_config, seed=seed)
    maker = env.running_metric("maker_qty")
    inventory = env.inventory
    probability = np.zeros(offsets.size)
    mid_changes = []
    for g, delta in enumerate(offsets):
        env.reset(seed=seed + g)
        action = np.tile(np.float32([delta, delta, 1.0, 1.0, 0.0]), (num_envs, 1))
        filled_steps = 0
        maker_before = maker.copy()
        inventory_before = inventory.copy()
        mid_before = _mid_ticks(env)
        for _ in range(steps):
            env.step(action)
            # a step with maker fills on both sides moves inventory by bought - sold
            bought = (maker - maker_before + (inventory - inventory_before)) / 2
            sold = (maker - maker_before - (inventory - inventory_before)) / 2
            filled_steps += int((bought > 0).sum() + (sold > 0).sum())
            maker_before = maker.copy()
            inventory_before = inventory.copy()
            mid = _mid_ticks(env)
            mid_changes.append(mid - mid_before)
            mid_before = mid
        probability[g] = filled_steps / (2 * num_envs * steps)
    exposure = run_config.dt - run_config.latency
    rates = intensity_from_fill_probability(np.minimum(probability, 1 - 1e-9), exposure)
    intensity, decay = fit_exponential_intensity(offsets, rates)
    sigma = float(np.std(np.concatenate(mid_changes)) / np.sqrt(run_config.dt))
    return Calibration(intensity, decay, sigma, offsets, rates, probability)


# ---------------------------------------------------------------------------------------------
# a market fitted to LOBSTER data
# ---------------------------------------------------------------------------------------------

#: sizes above this many lots are counted as this many (``counters["sizes_capped"]``)
LARGEST_SIZE = 1000
#: fewest events each estimator needs (below: a named error, never a NaN)
FEWEST_EVENTS = 20


@dataclass(frozen=True)
class Estimate:
    """An estimate and its standard error."""

    value: float
    se: float

    def within(self, truth: float, sds: float = 3.0) -> bool:
        """Is ``truth`` within ``sds`` standard errors?"""
        return abs(self.value - truth) <= sds * self.se


@dataclass(frozen=True)
class HawkesFit:
    """Market-order arrivals (both sides together) as a Hawkes process with an exponential kernel,
    by maximum likelihood: intensity ``2 mu + e(t)``, ``e`` jumping by ``alpha`` at every market
    order and decaying at rate ``beta``."""

    market_rate: Estimate  #: mu, the baseline per side (1/s)
    alpha: Estimate  #: jump of the rate at each market order (1/s)
    beta: Estimate  #: decay rate of the excitation (1/s)
    log_likelihood: float
    poisson_log_likelihood: float  #: of the Poisson fit (rate n / T) on the same times

    @property
    def likelihood_ratio(self) -> float:
        """``2 (LL_hawkes - LL_poisson)``: above 5.99 the Hawkes part is kept (chi-square, two
        degrees of freedom, 5%)."""
        return 2.0 * (self.log_likelihood - self.poisson_log_likelihood)

    @property
    def significant(self) -> bool:
        return self.likelihood_ratio > 5.99


@dataclass(frozen=True)
class MarketFit:
    """The background flow fitted to a LOBSTER day (see :func:`fit_lobster`); rates per second,
    prices in ticks, sizes in lots. ``*_by_side`` arrays are (2, D) or (2,), bids first."""

    tick_units: int  #: price units (dollars x 10000) per tick
    lot_size: float  #: shares per lot
    seconds: float  #: the span of the data
    levels: int  #: D, the distances fitted (the flow's levels)
    limit_rates: list  #: lambda(1..D) per side, both sides pooled, ``Estimate`` each
    limit_rates_by_side: np.ndarray
    cancel_rates: list  #: theta(1..D) per resting order, pooled, ``Estimate`` each
    cancel_rates_by_side: np.ndarray
    market_rate: Estimate  #: mu per side, as a Poisson rate
    market_rate_by_side: np.ndarray
    hawkes: HawkesFit | None  #: None when not fitted
    limit_sizes: np.ndarray  #: float64 (K,): probabilities of limit-order sizes 1..K lots
    market_sizes: np.ndarray  #: the same for market orders (executions grouped)
    initial_price: int  #: the mid at the start, ticks
    counters: dict  #: what the estimators used and left out

    @property
    def tick_size(self) -> float:
        """Currency per tick."""
        return self.tick_units * 1e-4

    def config(self, **changes) -> MarketMakingConfig:
        """The fitted market as a ``MarketMakingConfig`` (the flow's rates and sizes, the tick
        and lot, levels, the book's capacities), with ``changes`` (any config field) applied.
        The Hawkes part is used when significant; no informed flow and no anchor (not identified
        here: the fitted market is unanchored, see ``FlowParams.anchor_width``)."""
        from fastlob.env import FlowParams

        lam = np.array([e.value for e in self.limit_rates])
        theta = np.array([e.value for e in self.cancel_rates])
        per_level = lam / theta  # stationary orders per level and side (M/M/infinity)
        depth = max(1, round(float(per_level.mean())))
        largest = max(len(self.limit_sizes), len(self.market_sizes), 5)
        orders = 2.0 * float(per_level.sum())
        capacity = _power_of_two(max(128, 4 * orders, 4 * self.levels * depth + 2))
        capacity = min(capacity, _power_of_two_below((2**31 - 1) // largest))
        hawkes = self.hawkes if self.hawkes is not None and self.hawkes.significant else None
        flow = FlowParams(
            market_rate=self.market_rate.value if hawkes is None else hawkes.market_rate.value,
            hawkes_alpha=0.0 if hawkes is None else hawkes.alpha.value,
            hawkes_beta=1.0 if hawkes is None else hawkes.beta.value,
            informed_tilt=0.0,
            fair_sigma=0.0,
        )
        fitted = MarketMakingConfig(
            tick_size=self.tick_size,
            lot_size=self.lot_size,
            initial_price=self.initial_price,
            initial_depth=depth,
            flow_levels=self.levels,
            flow=flow,
            limit_rates=tuple(float(x) for x in lam),
            cancel_rates=tuple(float(x) for x in theta),
            limit_sizes=tuple(float(x) for x in self.limit_sizes),
            market_sizes=tuple(float(x) for x in self.market_sizes),
            ladder_levels=_power_of_two(max(128, 4 * (self.levels + 10) + 1)),
            order_capacity=capacity,
        )
        return fitted.replace(**changes) if changes else fitted

    def summary(self) -> str:
        """The estimates with their standard errors and the counters, as text."""
        lines = [
            f"tick {self.tick_units} price units ({self.tick_size:g} per tick), lot "
            f"{self.lot_size:g} shares, {self.seconds:.1f} s, {self.levels} levels",
            f"{'i':>3} {'lambda(i) /s':>16} {'theta(i) /order/s':>20}",
        ]
        for i, (lam, theta) in enumerate(zip(self.limit_rates, self.cancel_rates, strict=True)):
            lines.append(
                f"{i + 1:>3} {lam.value:>9.4f} ± {lam.se:<6.4f}{theta.value:>12.4f} ± "
                f"{theta.se:.4f}"
            )
        mu = self.market_rate
        lines.append(f"mu (market orders per side per s, Poisson): {mu.value:.4f} ± {mu.se:.4f}")
        if self.hawkes is not None:
            h = self.hawkes
            lines.append(
                f"Hawkes: mu {h.market_rate.value:.4f} ± {h.market_rate.se:.4f}, alpha "
                f"{h.alpha.value:.4f} ± {h.alpha.se:.4f}, beta {h.beta.value:.4f} ± "
                f"{h.beta.se:.4f}; log-likelihood {h.log_likelihood:.1f} against Poisson "
                f"{h.poisson_log_likelihood:.1f} ({'kept' if h.significant else 'not kept'})"
            )
        for name, pmf in (("limit", self.limit_sizes), ("market", self.market_sizes)):
            mean = float(np.dot(np.arange(1, len(pmf) + 1), pmf))
            lines.append(f"{name}-order sizes: 1..{len(pmf)} lots, mean {mean:.2f}")
        lines += [f"{k}: {v}" for k, v in self.counters.items()]
        return "\n".join(lines)


def _power_of_two(x: float) -> int:
    return 1 << max(0, math.ceil(math.log2(max(x, 1.0))))


def _power_of_two_below(x: int) -> int:
    return 1 << (int(x).bit_length() - 1)


def fit_lobster(
    message_path,
    orderbook_path,
    *,
    lot_size: float | None = None,
    lot_quantile: float = 0.5,
    tick_size: int | None = None,
    hawkes: bool = True,
    levels: int | None = None,
) -> MarketFit:
    """Fit the background flow to a LOBSTER pair (see :func:`fit_day`); the files are read and
    checked as ``fastlob replay`` reads them (``LobsterFormatError`` naming file, line, field)."""
    from fastlob.data.lobster import check_not_crossed, read_day

    day = read_day(message_path, orderbook_path, tick_size=tick_size)
    check_not_crossed(day, orderbook_path)
    return fit_day(day, lot_size=lot_size, lot_quantile=lot_quantile, hawkes=hawkes, levels=levels)


def view_depth(day) -> int:
    """D, the distances the data show: the 10th percentile, over the rows whose levels are all
    full on both sides, of the ticks between the opposite best and the deepest visible level
    (the nearer side's), so that distances 1..D are in view at least 90% of the time; the
    largest submission distance seen when no row is full; at least 1, at most 1000."""
    rows = day.rows
    full = (rows[:, -1, 1] > 0) & (rows[:, -1, 3] > 0) & (rows[:, 0, 1] > 0) & (rows[:, 0, 3] > 0)
    if full.any():
        bid_reach = rows[full, 0, 0] - rows[full, -1, 2]
        ask_reach = rows[full, -1, 0] - rows[full, 0, 2]
        depth = int(np.floor(np.quantile(np.minimum(bid_reach, ask_reach), 0.1)))
    else:
        both = (rows[:, 0, 1] > 0) & (rows[:, 0, 3] > 0)
        spread_reach = (rows[both, 0, 0] - rows[both, :, 2].clip(min=1).min(1)) if both.any() else 0
        depth = int(np.max(spread_reach)) if np.size(spread_reach) else 1
    return int(min(max(depth, 1), 1000))


def _pooled(counts: np.ndarray, exposures: np.ndarray, fewest: int) -> list[Estimate]:
    """Rates count / exposure per distance, each pooled with its nearest neighbours until the
    pool holds ``fewest`` events (a distance seen too rarely borrows its neighbours' rate);
    ``ValueError`` when all of them together hold fewer."""
    if counts.sum() < fewest:
        raise ValueError(f"{int(counts.sum())} events: fewer than {fewest}")
    out = []
    for i in range(len(counts)):
        low, high = i, i + 1
        while counts[low:high].sum() < fewest or exposures[low:high].sum() <= 0:
            low, high = max(0, low - 1), min(len(counts), high + 1)
        c, e = float(counts[low:high].sum()), float(exposures[low:high].sum())
        out.append(Estimate(c / e, math.sqrt(c) / e))
    return out


def fit_day(
    day,
    *,
    lot_size=None,
    lot_quantile: float = 0.5,
    hawkes: bool = True,
    levels: int | None = None,
) -> MarketFit:
    """Fit the Cont-Stoikov-Talreja flow (and, optionally, Hawkes market orders) to a
    :class:`~fastlob.data.lobster.LobsterDay`.

    The estimators (the docs' model page gives them in full):

    - the lot: ``lot_size`` shares, else the ``lot_quantile`` quantile of submission sizes;
    - D: ``levels``, else :func:`view_depth` (the distances the data keep in view);
    - lambda(i): submissions at i ticks from the opposite best per second of view, each side,
      i = 1..D (a level-k file logs only what touches its k levels, so each distance counts
      only while in view); standard error sqrt(count) / time;
    - theta(i): deletions at distance i over the time-integrated number of orders resting at
      distance i, both in view (the book replayed order by order; the levels before the first
      message split into orders of the median size); standard error sqrt(count) / exposure; a
      distance with fewer than five deletions is pooled with its neighbours;
    - mu: market orders per side per second, executions of visible orders grouped into one
      market order per timestamp and direction; standard error sqrt(n) / 2T;
    - the size distributions of submissions and of market orders, in lots;
    - Hawkes (mu, alpha, beta) of the market orders' times by maximum likelihood, standard errors
      from the observed information, beside the Poisson fit's log-likelihood.

    Too little data for an estimator (no market orders, no resting order at some distance) is a
    ``ValueError`` naming it.
    """
    from fastlob._kernels import estimate as _estimate
    from fastlob._kernels import replay as _replay
    from fastlob._kernels.book_layout import BookParams, allocate_book_state

    messages, times, rows = day.messages, day.times, day.rows
    seconds = day.seconds
    if len(messages) < FEWEST_EVENTS or seconds <= 0:
        raise ValueError(
            f"the data hold {len(messages)} messages over {seconds:.3g} s: too little to fit a "
            f"market (at least {FEWEST_EVENTS} messages over a positive time)"
        )
    submissions = messages[messages[:, 0] == 1, 2]
    if len(submissions) < FEWEST_EVENTS:
        raise ValueError(f"only {len(submissions)} submissions (type 1): lambda cannot be fitted")
    if lot_size is None:
        lot_size = float(max(1.0, np.quantile(submissions, lot_quantile)))
    lot_size = check_real("lot_size", lot_size, 0.0, 1e12, low_open=True)
    unit = max(1, round(float(np.median(submissions))))
    depth = view_depth(day) if levels is None else check_int("levels", levels, 1, 1000)
    limit_counts = np.zeros((2, depth), np.int64)
    cancel_counts = np.zeros((2, depth), np.int64)
    exposure = np.zeros((2, depth))
    visible = np.zeros((2, depth))
    counters = np.zeros(_estimate.NUM_ESTIMATE_COUNTERS, np.int64)
    replay_counters = np.zeros(_replay.NUM_COUNTERS, np.int64)
    books = allocate_book_state(1, BookParams(4096, 1 << 16, 1 << 16))
    _estimate.flow_exposures(
        books, day.initial_row, messages, times, rows, unit, limit_counts, cancel_counts,
        exposure, visible, counters, replay_counters, np.zeros((day.levels, 4), np.int64),
    )  # fmt: skip

    # lambda and theta, each side and both sides pooled
    seen = visible.sum(0)
    for i in np.flatnonzero(seen <= 0):
        raise ValueError(f"distance {i + 1} (ticks from the opposite best) is never in view")
    pooled = limit_counts.sum(0)
    limit_rates = [Estimate(c / v, math.sqrt(c) / v) for c, v in zip(pooled, seen, strict=True)]
    try:
        cancel_rates = _pooled(cancel_counts.sum(0), exposure.sum(0), fewest=5)
    except ValueError as err:
        raise ValueError(f"deletions in view: {err}: theta cannot be fitted") from None
    with np.errstate(invalid="ignore", divide="ignore"):
        limit_by_side = np.where(visible > 0, limit_counts / visible, np.nan)
        cancel_by_side = np.where(exposure > 0, cancel_counts / exposure, np.nan)

    # market orders: executions grouped by timestamp and direction
    start_times, aggressor, sizes = market_orders(times, messages)
    if len(start_times) < FEWEST_EVENTS:
        raise ValueError(
            f"only {len(start_times)} market orders (executions, type 4): mu cannot be fitted"
        )
    buys = int((aggressor == 1).sum())
    by_side = np.array([buys, len(aggressor) - buys]) / seconds
    market_rate = Estimate(
        len(start_times) / (2 * seconds), math.sqrt(len(start_times)) / (2 * seconds)
    )
    limit_sizes, capped_limit = size_distribution(submissions / lot_size)
    market_sizes, capped_market = size_distribution(sizes / lot_size)
    fit_hawkes = fit_hawkes_process(start_times - times[0], seconds) if hawkes else None

    bid, ask = day.initial_row[0, 2], day.initial_row[0, 0]
    if bid <= 0 or ask <= 0:
        first = day.rows[0]
        bid, ask = first[0, 2], first[0, 0]
    initial_price = int((bid + ask) // 2) if bid > 0 and ask > 0 else int(max(bid, ask))
    names = (
        "aggressive_submissions", "submissions_beyond_levels", "deletions_outside_levels",
        "partial_cancels", "hidden_executions", "cross_trades", "halt_messages",
        "events_with_an_empty_opposite_side", "mismatched_rows",
    )  # fmt: skip
    used = {
        "messages": len(messages),
        "submissions_used": int(limit_counts.sum()),
        "deletions_used": int(cancel_counts.sum()),
        "executions": int((messages[:, 0] == 4).sum()),
        "market_orders": len(start_times),
    }
    left_out = {name: int(v) for name, v in zip(names, counters, strict=True)}
    left_out["levels_taken_from_file"] = int(replay_counters[_replay.CTR_LEVELS_TAKEN])
    left_out["sizes_capped"] = int(capped_limit + capped_market)
    return MarketFit(
        tick_units=int(day.tick_units),
        lot_size=float(lot_size),
        seconds=float(seconds),
        levels=int(depth),
        limit_rates=limit_rates,
        limit_rates_by_side=limit_by_side,
        cancel_rates=cancel_rates,
        cancel_rates_by_side=cancel_by_side,
        market_rate=market_rate,
        market_rate_by_side=by_side,
        hawkes=fit_hawkes,
        limit_sizes=limit_sizes,
        market_sizes=market_sizes,
        initial_price=max(initial_price, depth + 1),
        counters={**used, **left_out},
    )


def market_orders(times: np.ndarray, messages: np.ndarray):
    """Market orders from executions of visible orders (type 4): one per run of consecutive
    executions with the same time and direction. Returns (start times, aggressor side +1 buy
    / -1 sell, sizes in shares)."""
    executed = np.flatnonzero(messages[:, 0] == 4)
    if executed.size == 0:
        return np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64)
    t, direction = times[executed], messages[executed, 4]
    new = np.ones(executed.size, bool)
    new[1:] = (np.diff(executed) != 1) | (t[1:] != t[:-1]) | (direction[1:] != direction[:-1])
    starts = np.flatnonzero(new)
    sizes = np.add.reduceat(messages[executed, 2], starts)
    return t[starts], -direction[starts], sizes


def size_distribution(sizes_in_lots: np.ndarray) -> tuple[np.ndarray, int]:
    """Probabilities of sizes 1..K lots (sizes rounded to whole lots, at least 1; above
    ``LARGEST_SIZE`` counted as it) and how many were capped."""
    lots = np.maximum(1, np.rint(np.asarray(sizes_in_lots, np.float64))).astype(np.int64)
    capped = int((lots > LARGEST_SIZE).sum())
    lots = np.minimum(lots, LARGEST_SIZE)
    counts = np.bincount(lots)[1:].astype(np.float64)
    return counts / counts.sum(), capped


def fit_hawkes_process(times: np.ndarray, horizon: float) -> HawkesFit:
    """Maximum-likelihood Hawkes fit of event times (both sides of the market orders) in
    ``[0, horizon]``; see :class:`HawkesFit`."""
    from scipy.optimize import minimize

    from fastlob._kernels.estimate import hawkes_log_likelihood

    times = np.ascontiguousarray(times, np.float64)
    n = len(times)
    poisson = n * math.log(n / horizon) - n

    def natural(x):
        """(baseline, alpha, beta) from unconstrained x: alpha / beta in (0, 1)."""
        beta = math.exp(x[2])
        return math.exp(x[0]), beta / (1.0 + math.exp(-x[1])), beta

    def loss(x):
        value = hawkes_log_likelihood(times, horizon, *natural(x))
        return -value if math.isfinite(value) else 1e300

    gaps = np.diff(times)
    scale = 1.0 / float(np.mean(gaps)) if gaps.size else 1.0
    best = None
    for beta0 in (0.3 * scale, scale, 3.0 * scale):
        x0 = np.array([math.log(0.5 * n / horizon), 0.0, math.log(beta0)])
        result = minimize(loss, x0, method="Nelder-Mead",
                          options={"xatol": 1e-8, "fatol": 1e-8, "maxiter": 4000})  # fmt: skip
        if best is None or result.fun < best.fun:
            best = result
    baseline, alpha, beta = natural(best.x)
    se = _standard_errors(
        lambda p: hawkes_log_likelihood(times, horizon, p[0], p[1], p[2]),
        np.array([baseline, alpha, beta]),
    )
    return HawkesFit(
        market_rate=Estimate(baseline / 2.0, se[0] / 2.0),
        alpha=Estimate(alpha, se[1]),
        beta=Estimate(beta, se[2]),
        log_likelihood=-float(best.fun),
        poisson_log_likelihood=float(poisson),
    )


def _standard_errors(log_likelihood, point: np.ndarray) -> np.ndarray:
    """Standard errors from the observed information: the inverse of the log-likelihood's
    negative Hessian at ``point``, by central differences (NaN where it is not positive
    definite)."""
    k = len(point)
    h = 1e-4 * np.maximum(np.abs(point), 1e-6)

    def shifted(i, j, di, dj):
        p = point.copy()
        p[i] += di * h[i]
        p[j] += dj * h[j]
        return log_likelihood(p)

    hessian = np.zeros((k, k))
    for i in range(k):
        for j in range(i, k):
            value = (
                shifted(i, j, 1, 1) - shifted(i, j, 1, -1) - shifted(i, j, -1, 1)
                + shifted(i, j, -1, -1)
            ) / (4 * h[i] * h[j])  # fmt: skip
            hessian[i, j] = hessian[j, i] = value
    try:
        covariance = np.linalg.inv(-hessian)
    except np.linalg.LinAlgError:
        return np.full(k, np.nan)
    variances = np.diag(covariance)
    return np.where(variances > 0, np.sqrt(np.abs(variances)), np.nan)
