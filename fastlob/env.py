"""The market-making simulator: N order books with background flow and one market maker each,
behind the Gymnasium 1.x vector API (``MarketMakingVectorEnv``) and as a single ``gymnasium.Env``
(``MarketMakingEnv``).

The dynamics of a step (latency, cancel/replace with queue priority, fees, the position limit,
accounting) are documented in ``fastlob._kernels.mm``; the background flow in
``fastlob._kernels.flow``. This module owns the buffers, validates the configuration and the
actions at the boundary, and builds ``info``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
from dataclasses import dataclass, field
from typing import Any

import gymnasium
import numpy as np

from fastlob._checks import (
    check_choice,
    check_fits_memory,
    check_int,
    check_real,
    parse_json,
    read_settings_text,
    shown,
)
from fastlob._kernels import flow as _flow
from fastlob._kernels import historical as _hist
from fastlob._kernels import mm as _mm
from fastlob._kernels import mm_drivers as _drivers
from fastlob._kernels import mm_layout as _layout
from fastlob._kernels import replay as _replay
from fastlob._kernels.book import depth_batch
from fastlob._kernels.book_layout import (
    BookParams,
    allocate_book_state,
    bytes_per_book,
    state_nbytes,
)
from fastlob.historical import PARTS, WINDOWS, HistoricalMarket, load_market
from fastlob.plain import from_plain, to_plain
from fastlob.vector import BatchedVectorEnv, as_float32, check_real_array, read_only

__all__ = [
    "FlowParams",
    "MarketMakingConfig",
    "MarketMakingEnv",
    "MarketMakingVectorEnv",
    "RewardConfig",
]

FlowParams = _flow.FlowParams


@dataclass(frozen=True)
class RewardConfig:
    """Weights of the reward. Per step, in ticks x lots (one tick on one lot is 1):

    ``scale * (dPnL / (tick_size * lot_size) - inventory_penalty * q**2
    - target_penalty * (q - target * max_inventory)**2 + spread_capture * captured)``

    where ``q`` is the inventory in lots after the step, ``target`` the action's inventory target
    and ``captured`` the spread captured by this step's fills (side x (mid - price) x lots).
    ``dPnL`` is the change of the PnL under ``mark``: the mid (``cash + q * mid``) or the
    liquidation mark (``cash`` + what the inventory would fetch traded now against the other
    traders' book, the taker fee paid: a mark the market maker's own quotes do not set). The
    mid-marked PnL is always reported in ``info["pnl"]``, and the liquidation-marked one at the
    end of every episode in ``info["episode"]["liquidation_pnl"]``.
    """

    #: multiplies the whole reward
    scale: float = 1.0
    #: lambda of the quadratic inventory penalty, per lot squared per step
    inventory_penalty: float = 0.0
    #: weight of the squared distance to the inventory target, per lot squared per step
    target_penalty: float = 0.0
    #: weight of the spread captured (the seed design's spread-capture incentive)
    spread_capture: float = 0.0
    #: the mark of the PnL in the reward (and the observation's PnL): "mid" or "liquidation"
    mark: str = "mid"


@dataclass(frozen=True)
class MarketMakingConfig:
    """Every parameter of the market-making simulator, validated when an env is built.

    Prices are in ticks, quantities in lots, times in seconds, money in currency units.
    """

    #: seconds per step
    dt: float = 1.0
    #: steps per episode (then the episode terminates: the time left is observed)
    episode_steps: int = 1000
    #: seconds from an action to its quotes reaching the book; 0 <= latency < dt
    latency: float = 0.05
    #: currency per tick
    tick_size: float = 0.01
    #: units per lot
    lot_size: float = 100.0
    #: mid price at reset (ticks)
    initial_price: int = 10_000
    #: one-lot orders per level at reset, on each of the flow's levels on each side
    initial_depth: int = 2
    #: seconds of background flow run at reset before the first observation
    warmup: float = 10.0
    #: background flow: Cont-Stoikov-Talreja rates, with informed market orders that lean
    #: towards a random-walk fair value (tilt 1 per tick, 0.5 ticks per sqrt(s)). The anchor
    #: matters: with purely zero-intelligence flow nothing pulls the price back, so an agent can
    #: push the mid with its own orders and book the move on its inventory (PPO found that).
    #: ``flow.anchor_width`` anchors it without informed flow (``markets/anchored.json``).
    flow: FlowParams = field(default_factory=lambda: FlowParams(informed_tilt=1.0, fair_sigma=0.5))
    #: D, the levels the flow places orders at (1..D ticks from the opposite best)
    flow_levels: int = 10
    #: lambda(1..D) per second per side; None for the CST curve (``flow.cst_limit_rates``)
    limit_rates: tuple[float, ...] | None = None
    #: theta(1..D) per order per second; None for the CST curve (``flow.cst_cancel_rates``)
    cancel_rates: tuple[float, ...] | None = None
    #: probabilities of limit-order sizes 1..K lots (normalised); None: uniform in
    #: [flow.size_min, flow.size_max]
    limit_sizes: tuple[float, ...] | None = None
    #: probabilities of market-order sizes 1..K lots (normalised); None: as limit orders' None
    market_sizes: tuple[float, ...] | None = None
    #: price levels per side of each book (a power of two): resting prices span fewer ticks
    ladder_levels: int = 128
    #: order slots per book
    order_capacity: int = 128
    #: position limit in lots: quotes are cut so that |inventory| never exceeds it
    max_inventory: int = 20
    #: largest quote size in lots (the action space's bound)
    max_quote_size: int = 5
    #: largest |offset| of a quote from the mid in ticks (the action space's bound)
    max_offset: float = 10.0
    #: fee rate on the notional of a maker fill (negative: a rebate)
    maker_fee: float = -0.00002
    #: fee rate on the notional of a taker fill
    taker_fee: float = 0.00003
    #: terminate when the PnL falls this far (currency) below its running peak
    max_drawdown: float = math.inf
    #: terminate when |inventory| reaches max_inventory
    terminate_on_max_inventory: bool = False
    #: post-only quotes: a quote that would cross the opposite best is re-priced one tick
    #: behind it (counted in ``post_only_repriced``), so every fill of the market maker is a
    #: maker fill
    post_only: bool = False
    #: a fill is marked out at the mid at the end of the step this many steps after its own
    #: (adverse selection, markout PnL), as ``fastlob.metrics.markouts`` counts horizons
    markout_steps: int = 10
    #: weight of the past in the alpha and signed-flow averages (per step)
    signal_decay: float = 0.9
    #: lots that count as 1 in the queue, size and flow features
    depth_scale: float = 10.0
    #: reward weights
    reward: RewardConfig = field(default_factory=RewardConfig)
    #: a LOBSTER pair (message file, orderbook file) to trade against instead of the simulated
    #: flow (``fastlob.HistoricalMarket``: prices on the file's tick grid, sizes in lots of
    #: lobster_lot shares, so tick_size and lot_size come from the file and lobster_lot;
    #: initial_*, warmup and the flow's fields are unused); () for the simulated market
    lobster: tuple[str, ...] = ()
    #: the part of the data's time each episode's window is drawn from: "train" (the first
    #: train_fraction of it), "eval" (the rest) or "all"
    lobster_part: str = "train"
    #: how each env's window is placed in its part: "random" (its start drawn uniformly, from
    #: the env's generator: windows overlap) or "tiled" (env n plays the (n mod k)-th of the
    #: part's k non-overlapping windows: independent episodes, as an evaluation needs)
    lobster_windows: str = "random"
    #: share of the data's time span in its train part, in (0, 1)
    train_fraction: float = 0.75
    #: price units of the LOBSTER files per tick (LOBSTER writes dollars x 10000: a cent is
    #: 100); 0 to infer it from the prices
    lobster_tick: int = 0
    #: shares per lot of the historical market (every size of the files a multiple of it)
    lobster_lot: int = 1

    def to_json(self) -> str:
        """Every field as one JSON object (nested ``flow`` and ``reward``; an infinite float as
        ``"inf"``): a market file that every command reads with ``--env-config``."""
        return json.dumps(to_plain(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> MarketMakingConfig:
        """The config of a JSON object written by :meth:`to_json` (or by hand: a missing field
        takes its default), every field checked, naming it: ``TypeError`` for a wrong type or an
        unknown field, ``ValueError`` for a value out of range or text that is not JSON."""
        values = parse_json(text, "market config")
        config = from_plain(cls, values, "config")
        check_config(config)
        return config

    @classmethod
    def from_file(cls, path) -> MarketMakingConfig:
        """:meth:`from_json` of a file (a regular file of at most
        ``fastlob._checks.MAX_SETTINGS_BYTES``); the error names the file."""
        text = read_settings_text(path, "market config")
        try:
            return cls.from_json(text)
        except (TypeError, ValueError) as err:
            raise type(err)(f"{path}: {err}") from None

    def replace(self, **changes) -> MarketMakingConfig:
        """A copy with ``changes`` (also accepts ``flow=dict`` and ``reward=dict`` updates)."""
        for name, cls in (("flow", None), ("reward", RewardConfig)):
            if isinstance(changes.get(name), dict):
                base = getattr(self, name)
                changes[name] = (
                    base._replace(**changes[name])
                    if cls is None
                    else dataclasses.replace(base, **changes[name])
                )
        return dataclasses.replace(self, **changes)


def check_flow_params(fp: FlowParams, name: str = "config.flow") -> FlowParams:
    """Validate every field of the background flow; returns it with normalised types."""
    if not isinstance(fp, FlowParams):
        raise TypeError(f"{name} must be a FlowParams, got {type(fp).__name__}")
    size_min = check_int(f"{name}.size_min", fp.size_min, 1, 10**6)
    anchor = fp.anchor_width  # ticks: in (0, 1e6], or inf for no anchor
    real = isinstance(anchor, numbers.Real) and not isinstance(anchor, bool)
    if not (real and anchor == math.inf):
        try:
            anchor = check_real(f"{name}.anchor_width", anchor, 0.0, 1e6, low_open=True)
        except ValueError:
            raise ValueError(
                f"{name}.anchor_width must be in (0, 1e6] ticks, or inf for no anchor, got {anchor}"
            ) from None
    checked = FlowParams(
        market_rate=check_real(f"{name}.market_rate", fp.market_rate, 0.0, 1e6),
        size_min=size_min,
        size_max=check_int(f"{name}.size_max", fp.size_max, size_min, 10**6),
        informed_tilt=check_real(f"{name}.informed_tilt", fp.informed_tilt, 0.0, 1e3),
        fair_sigma=check_real(f"{name}.fair_sigma", fp.fair_sigma, 0.0, 1e6),
        fair_reversion=check_real(f"{name}.fair_reversion", fp.fair_reversion, 0.0, 1e6),
        hawkes_alpha=check_real(f"{name}.hawkes_alpha", fp.hawkes_alpha, 0.0, 1e6),
        hawkes_beta=check_real(f"{name}.hawkes_beta", fp.hawkes_beta, 0.0, 1e6, low_open=True),
        anchor_width=float(anchor),
    )
    if checked.hawkes_alpha >= checked.hawkes_beta:
        raise ValueError(
            f"{name}.hawkes_alpha / {name}.hawkes_beta must be < 1 (a stationary Hawkes "
            f"process), got {checked.hawkes_alpha} / {checked.hawkes_beta}"
        )
    return checked


def _reals(name: str, given, what: str) -> np.ndarray:
    """``given`` as float64, refusing anything but real numbers, naming ``name``."""
    values = np.asarray(given, dtype=object).ravel()
    if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values):
        raise TypeError(f"{name} must hold real numbers ({what}), got {shown(given)}")
    return np.asarray(given, dtype=np.float64)


def _sizes(name: str, given) -> tuple[float, ...] | None:
    """A size distribution over 1..K lots: K in 1..10**4 finite non-negative weights with a
    positive sum (None stays None)."""
    if given is None:
        return None
    weights = _reals(name, given, "probabilities of sizes 1..K lots")
    if weights.ndim != 1 or not 1 <= weights.size <= 10**4:
        raise ValueError(f"{name} must list the probabilities of sizes 1..K, K in 1..10000")
    if not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
        raise ValueError(
            f"{name} must be finite, >= 0 and not all 0, got {shown(weights.tolist())}"
        )
    return tuple(weights.tolist())


def _rates(name: str, given, default: np.ndarray) -> np.ndarray:
    if given is None:
        return default
    rates = _reals(name, given, "rates per second")
    if rates.shape != default.shape:
        raise ValueError(
            f"{name} must hold config.flow_levels = {default.shape[0]} rates, got shape "
            f"{rates.shape}"
        )
    if not np.all(np.isfinite(rates)) or np.any(rates < 0) or np.any(rates > MAX_RATE):
        raise ValueError(
            f"{name} must be finite and in [0, {MAX_RATE:g}] per second, got "
            f"{shown(rates.tolist())}"
        )
    return np.ascontiguousarray(rates)


#: the largest rate of any kind of event (per second), as ``flow.market_rate``'s
MAX_RATE = 1e6
#: the most candidate events the flow may draw in one span of simulated time (a step's ``dt`` or
#: the warm-up): the loop a step runs, bounded so that no market file makes a step endless
MAX_EVENTS_PER_SPAN = 1e8


def candidate_rate(flow: FlowParams, limit_rates, cancel_rates, order_capacity: int) -> float:
    """The bound the flow draws candidate events at when every order slot is taken, per second
    (``fastlob._kernels.flow``): ``2 sum(limit_rates) + 2 market_rate + max(cancel_rates) *
    order_capacity``."""
    return float(
        2.0 * np.sum(limit_rates)
        + 2.0 * flow.market_rate
        + np.max(cancel_rates, initial=0.0) * order_capacity
    )


def _check_events_per_span(rate: float, dt: float, warmup: float) -> None:
    span, name = (dt, "config.dt") if dt >= warmup else (warmup, "config.warmup")
    if rate * span > MAX_EVENTS_PER_SPAN:
        raise ValueError(
            f"config.limit_rates, config.cancel_rates, config.flow.market_rate and "
            f"config.order_capacity draw up to {rate:.3g} candidate events per second: over "
            f"{name} = {span:g} s that is {rate * span:.3g}, more than the "
            f"{MAX_EVENTS_PER_SPAN:.0e} one span may draw (lower the rates or {name})"
        )


#: the largest total quantity a level of the simulator's books may reach (they keep it as int32)
LEVEL_QTY_MAX = int(np.iinfo(np.int32).max)


def action_space(config: MarketMakingConfig) -> gymnasium.spaces.Box:
    """One env's action space on the market ``config`` (the columns of
    :class:`MarketMakingVectorEnv`): offsets in [-max_offset, max_offset] ticks, sizes in [0,
    max_quote_size] lots, the inventory target in [-1, 1]; float32."""
    m = float(config.max_offset)
    q = float(config.max_quote_size)
    low = np.array([-m, -m, 0.0, 0.0, -1.0], np.float32)
    high = np.array([m, m, q, q, 1.0], np.float32)
    return gymnasium.spaces.Box(low, high, dtype=np.float32)


def check_config(config: MarketMakingConfig):
    """Validate every field; returns (MMParams, FlowModel, BookParams) for the kernels."""
    if not isinstance(config, MarketMakingConfig):
        raise TypeError(f"config must be a MarketMakingConfig, got {type(config).__name__}")
    c = config
    dt = check_real("config.dt", c.dt, 0.0, 1e6, low_open=True)
    latency = check_real("config.latency", c.latency, 0.0, dt)
    if latency >= dt:
        raise ValueError(f"config.latency must be in [0, config.dt) = [0, {dt}), got {latency}")
    levels = check_int("config.flow_levels", c.flow_levels, 1, 1000)
    ladder = check_int("config.ladder_levels", c.ladder_levels, 16, 1 << 20)
    if ladder & (ladder - 1):
        raise ValueError(f"config.ladder_levels must be a power of two, got {ladder}")
    max_offset = check_real("config.max_offset", c.max_offset, 0.0, 1e6, low_open=True)
    if 4 * (levels + max_offset) >= ladder:
        raise ValueError(
            f"config.ladder_levels must exceed 4 * (config.flow_levels + config.max_offset) = "
            f"{4 * (levels + max_offset)} so that the book and the quotes fit, got {ladder}"
        )
    flow = check_flow_params(c.flow)
    max_quote = check_int("config.max_quote_size", c.max_quote_size, 1, 10**6)
    if not isinstance(c.reward, RewardConfig):
        raise TypeError(f"config.reward must be a RewardConfig, got {type(c.reward).__name__}")
    if not isinstance(c.terminate_on_max_inventory, bool):
        raise TypeError("config.terminate_on_max_inventory must be a bool")
    if not isinstance(c.post_only, bool):
        raise TypeError("config.post_only must be a bool")
    max_drawdown = c.max_drawdown
    if not (isinstance(max_drawdown, (int, float)) and max_drawdown > 0):
        raise ValueError(
            f"config.max_drawdown must be > 0 (inf for none), got {shown(max_drawdown)}"
        )
    params = _layout.MMParams(
        dt=dt,
        episode_steps=check_int("config.episode_steps", c.episode_steps, 1, 10**9),
        latency=latency,
        tick_size=check_real("config.tick_size", c.tick_size, 0.0, 1e6, low_open=True),
        lot_size=check_real("config.lot_size", c.lot_size, 0.0, 1e9, low_open=True),
        initial_price=check_int("config.initial_price", c.initial_price, levels + 1, 2**40),
        initial_depth=check_int("config.initial_depth", c.initial_depth, 0, 1000),
        warmup=check_real("config.warmup", c.warmup, 0.0, 1e6),
        max_inventory=check_int("config.max_inventory", c.max_inventory, 1, 10**9),
        maker_fee=check_real("config.maker_fee", c.maker_fee, -0.01, 0.01),
        taker_fee=check_real("config.taker_fee", c.taker_fee, -0.01, 0.01),
        max_drawdown=float(max_drawdown),
        terminate_on_max_inventory=c.terminate_on_max_inventory,
        markout_steps=check_int("config.markout_steps", c.markout_steps, 1, 10**6),
        signal_decay=check_real("config.signal_decay", c.signal_decay, 0.0, 1.0),
        depth_scale=check_real("config.depth_scale", c.depth_scale, 0.0, 1e9, low_open=True),
        reward_scale=check_real("config.reward.scale", c.reward.scale, 0.0, 1e9, low_open=True),
        inventory_penalty=check_real(
            "config.reward.inventory_penalty", c.reward.inventory_penalty, 0.0, 1e9
        ),
        target_penalty=check_real(
            "config.reward.target_penalty", c.reward.target_penalty, 0.0, 1e9
        ),
        spread_capture=check_real(
            "config.reward.spread_capture", c.reward.spread_capture, 0.0, 1e9
        ),
        post_only=c.post_only,
        liquidation_mark=_reward_mark(c.reward.mark) == "liquidation",
    )
    if params.signal_decay >= 1.0:
        raise ValueError(f"config.signal_decay must be in [0, 1), got {params.signal_decay}")
    _check_lobster(c)
    limit_rates = _rates("config.limit_rates", c.limit_rates, _flow.cst_limit_rates(levels))
    cancel_rates = _rates("config.cancel_rates", c.cancel_rates, _flow.cst_cancel_rates(levels))
    capacity = check_int("config.order_capacity", c.order_capacity, 4, 1 << 24)
    if capacity < 2 * levels * params.initial_depth + 2:
        raise ValueError(
            f"config.order_capacity must hold the initial book and two quotes "
            f"(>= {2 * levels * params.initial_depth + 2}), got {capacity}"
        )
    rate = candidate_rate(flow, limit_rates, cancel_rates, capacity)
    _check_events_per_span(rate, dt, params.warmup)
    limit_sizes = _sizes("config.limit_sizes", c.limit_sizes)
    market_sizes = _sizes("config.market_sizes", c.market_sizes)
    largest_order = max(
        flow.size_max if limit_sizes is None else len(limit_sizes),
        flow.size_max if market_sizes is None else len(market_sizes),
        max_quote,
    )
    # the books keep level quantities as int32 (MarketMakingVectorEnv.__init__): a level holds
    # at most every slot's order, each at most the largest size the flow or a quote can have
    largest_level = capacity * largest_order
    if largest_level > LEVEL_QTY_MAX:
        raise ValueError(
            f"config.order_capacity * the largest order (flow sizes, config.max_quote_size) must "
            f"be at most {LEVEL_QTY_MAX} (a level's quantity is int32), got {largest_level}"
        )
    # one event's fills must always fit: the trade buffer is drained after every event and after
    # the two quotes of an update (each may take up to its size in fills)
    trades = max(64, 2 * largest_order)
    book = BookParams(ladder_levels=ladder, order_capacity=capacity, trade_capacity=trades)
    model = _flow.flow_model(flow, limit_rates, cancel_rates, limit_sizes, market_sizes)
    return params, model, book


#: the marks of ``RewardConfig.mark``
REWARD_MARKS = ("mid", "liquidation")


def _reward_mark(mark) -> str:
    return check_choice("config.reward.mark", mark, REWARD_MARKS)


def _check_lobster(c: MarketMakingConfig) -> None:
    """The historical market's fields (the files themselves are checked when read)."""
    files = c.lobster
    if not (isinstance(files, tuple) and len(files) in (0, 2)) or not all(
        isinstance(f, str) and f for f in files
    ):
        raise ValueError(
            f"config.lobster must be () or (message_csv, orderbook_csv), got {shown(files)}"
        )
    check_choice("config.lobster_part", c.lobster_part, PARTS)
    check_choice("config.lobster_windows", c.lobster_windows, WINDOWS)
    fraction = check_real("config.train_fraction", c.train_fraction, 0.0, 1.0)
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"config.train_fraction must be in (0, 1), got {fraction}")
    check_int("config.lobster_tick", c.lobster_tick, 0, 2**40)
    check_int("config.lobster_lot", c.lobster_lot, 1, 10**9)


#: the running totals of ``MarketMakingVectorEnv.running_metric``: name -> column
RUNNING_METRICS = {
    "return": _layout.M_RETURN,
    "fills": _layout.M_FILLS,
    "filled_qty": _layout.M_FILLED_QTY,
    "maker_qty": _layout.M_MAKER_QTY,
    "taker_qty": _layout.M_TAKER_QTY,
    "quoted_qty": _layout.M_QUOTED_QTY,
    "spread_captured": _layout.M_SPREAD_CAPTURED,
    "markout": _layout.M_MARKOUT,
    "fees": _layout.M_FEES,
    "quote_reduced": _layout.M_QUOTE_REDUCED,
    "self_cross_lots": _layout.M_SELF_CROSS_LOTS,
    "rejected_quotes": _layout.M_REJECTED_QUOTES,
    "touch_steps": _layout.M_TOUCH_STEPS,
    "fill_log_dropped": _layout.M_FILL_LOG_DROPPED,
    "post_only_repriced": _layout.M_POST_ONLY_REPRICED,
    "quote_intervals": _layout.M_QUOTE_INTERVALS,
    "filled_quote_intervals": _layout.M_FILLED_QUOTE_INTERVALS,
    "liquidation_beyond_book": _layout.M_LIQUIDATION_BEYOND,
}

#: the columns of ``MarketMakingVectorEnv.flow_events``
FLOW_EVENTS = ("limit", "market", "cancel", "rejected", "market_buy", "cancel_candidate")

#: the observation's columns by name (the table in ``MarketMakingVectorEnv``'s docstring); the
#: five best levels a side are ``bid_levels`` and ``ask_levels``, 10 columns each (prices, lots)
OBSERVATION_COLUMNS = {
    "inventory": _layout.OBS_INVENTORY,
    "pnl": _layout.OBS_PNL,
    "imbalance": _layout.OBS_IMBALANCE,
    "spread": _layout.OBS_SPREAD,
    "bid_queue": _layout.OBS_BID_QUEUE,
    "ask_queue": _layout.OBS_ASK_QUEUE,
    "bid_distance": _layout.OBS_BID_DISTANCE,
    "ask_distance": _layout.OBS_ASK_DISTANCE,
    "alpha": _layout.OBS_ALPHA,
    "signed_flow": _layout.OBS_SIGNED_FLOW,
    "bid_levels": _layout.OBS_BID_LEVELS,
    "ask_levels": _layout.OBS_ASK_LEVELS,
    "time_left": _layout.OBS_TIME_LEFT,
}

#: the historical market's counters this episode (in ``info`` every step and in
#: ``info["episode"]``): name -> column of ``replay``'s counters. A divergence is a message that
#: found the book other than the file says because the market maker traded: an execution that
#: found less to fill at its price or better (lots), a cancellation of lots no order held, a
#: deletion of an order whose size the market maker's fills changed, a submission that traded
#: on arrival (lots); besides, the window rule's levels taken from the file and forgotten, lots
#: cancelled beyond the window (of orders it forgot), the messages the book rejected, and the
#: messages applied.
DIVERGENCE_COUNTERS = {
    "exec_missing_qty": _replay.CTR_EXEC_MISSING_QTY,
    "cancel_missing_qty": _replay.CTR_UNEXPLAINED_CANCEL_QTY,
    "delete_size_differs": _replay.CTR_DELETE_SIZE_DIFFERS,
    "submit_traded_qty": _replay.CTR_SUBMIT_TRADED_QTY,
    "levels_taken": _replay.CTR_LEVELS_TAKEN,
    "levels_forgotten": _replay.CTR_LEVELS_FORGOTTEN,
    "cancel_beyond_window_qty": _replay.CTR_CANCEL_BEYOND_QTY,
    "rejected_messages": _replay.CTR_REJECTED,
    "messages": _replay.CTR_MESSAGES,
}

_INTEGER_EPISODE_KEYS = (
    "l",
    "fills",
    "quote_reduced",
    "post_only_repriced",
    "self_cross_lots",
    "liquidation_beyond_book",
    *DIVERGENCE_COUNTERS,
)

#: keys of ``info["episode"]``: each a float64 or int64 array (N,), valid where ``_episode``
EPISODE_KEYS = (
    "r",
    "l",
    "pnl",
    "liquidation_pnl",
    "fills",
    "volume",
    "fill_ratio",
    "fill_probability",
    "spread_captured",
    "markout",
    "adverse_rate",
    "inventory_mean",
    "inventory_std",
    "pnl_step_mean",
    "pnl_step_std",
    "max_drawdown",
    "fees",
    "quote_reduced",
    "touch_fraction",
    "post_only_repriced",
    "self_cross_lots",
    "liquidation_beyond_book",
)

#: keys of ``info["episode"]`` added where the simulated flow has a fair value
#: (:attr:`MarketMakingVectorEnv.has_fair_value`)
FAIR_EPISODE_KEYS = ("fair_pnl",)


class MarketMakingVectorEnv(BatchedVectorEnv):
    """N independent market-making episodes on simulated limit order books, one kernel call per
    step (dynamics: ``fastlob._kernels.mm``; flow: ``fastlob._kernels.flow``).

    Action, float32 (5,) per env, clipped into the space (clips counted in
    ``action_clip_count`` and ``info["action_clipped"]``):

    ====  ===================  =====================================  =========================
    col   name                 meaning                                range
    ====  ===================  =====================================  =========================
    0     bid_offset           bid at floor(mid - bid_offset), ticks  [-max_offset, max_offset]
    1     ask_offset           ask at ceil(mid + ask_offset), ticks   [-max_offset, max_offset]
    2     bid_size             lots, rounded half up; 0: no bid       [0, max_quote_size]
    3     ask_size             lots, rounded half up; 0: no ask       [0, max_quote_size]
    4     inventory_target     fraction of max_inventory (reward)     [-1, 1]
    ====  ===================  =====================================  =========================

    ``mid`` here is the other traders' mid (``others_mid``: the market maker's own quotes left
    out), so that a quote alone at the touch does not move the price the next quote is set from;
    the observation's prices (columns 6-7, 10-14, 20-24) are given from the same mid. A negative
    offset quotes through the mid and may trade at once as a taker. Quote skew comes from
    unequal offsets.

    Observation, float32 (31,) per env:

    ======  =================================================================================
    col     feature (scale)
    ======  =================================================================================
    0       inventory / max_inventory, in [-1, 1]
    1       PnL / (tick_size * lot_size * max_inventory): PnL in ticks of a full position
    2       order-book imbalance at the touch, (bid lots - ask lots) / (bid + ask), in [-1, 1]
    3       spread in ticks
    4, 5    lots ahead of the market maker's bid / ask in its queue / depth_scale; -1 if none
    6, 7    distance of the live bid / ask from the mid in ticks (positive when behind the mid)
    8       alpha: exponential average (weight signal_decay) of the mid's change per step, ticks
    9       exponential average of signed traded lots per step (buys - sells) / depth_scale
    10-14   price - mid of the 5 best bid levels, ticks (missing levels: one tick further each)
    15-19   lots at those levels / depth_scale (0 if missing)
    20-24   price - mid of the 5 best ask levels, ticks
    25-29   lots at those levels / depth_scale
    30      fraction of the episode left, 1 after reset, 0 at the last step
    ======  =================================================================================

    Reward: see :class:`RewardConfig`. Episodes terminate after ``episode_steps`` (the time left
    is in the observation, so the horizon is part of the problem and a learner must not
    bootstrap across it) or early on ``max_drawdown`` or (if set) ``terminate_on_max_inventory``;
    ``truncated`` is never set.

    ``info`` every step (arrays (N,), each with an all-True ``_key`` mask): ``pnl``, ``cash``,
    ``fees`` (float64 currency; fees this episode), ``mid`` (float64 currency), ``inventory``
    (int64 lots), ``action_clipped`` (bool), ``quote_reduced`` (int64, ever). At the end of an
    episode ``info["episode"]`` holds the arrays in ``EPISODE_KEYS`` for the envs in
    ``info["_episode"]``: return ``r``, length ``l``, ``pnl`` (marked at the mid),
    ``liquidation_pnl`` (the final inventory traded against the other traders' book, taker fee
    paid; lots beyond their book valued at the deepest price reached and counted in
    ``liquidation_beyond_book``), ``fills``, ``volume`` (lots), ``fill_ratio`` (lots filled /
    lots submitted: how much of what it sends trades, which falls the more often a policy
    re-quotes), ``fill_probability`` (the share of quote intervals — a side's quote resting from
    one update to the next, ``dt`` seconds — in which the resting quote was filled at least in
    part), ``spread_captured`` (ticks per filled lot, against the mid just before the fill),
    ``markout`` (ticks per lot: the fills' PnL at the other traders' mid ``markout_steps``
    later), ``adverse_rate`` (the share of fills after which the other traders' mid moved
    against them: from just before the event that filled a resting quote, or from just after a
    quote update that took, so that the market maker's own quotes and impact never count), the
    inventory's mean and std over steps, the mean and std of the PnL change per step,
    ``max_drawdown``, ``fees``, ``quote_reduced`` (this episode), ``touch_fraction``
    (quote-steps at the best price / (2 * steps)), ``post_only_repriced`` (quotes the post-only
    rule re-priced), ``self_cross_lots`` (lots netted from self-crossing pairs). Fills in the
    last ``markout_steps`` steps are marked at the final mid.
    (Gymnasium's ``RecordEpisodeStatistics`` writes its own ``info["episode"]``: give it another
    ``stats_key``.)

    Parameters
    ----------
    num_envs : int
    config : MarketMakingConfig
    seed : int
        Seed of the per-env generators: env n uses ``(seed, n)``.
    device : None, str or torch.device
        None for numpy outputs; a torch device for tensors (shared memory on CPU).
    """

    def __init__(
        self,
        num_envs: int = 1,
        config: MarketMakingConfig | None = None,
        seed: int | None = 0,
        device=None,
        market: HistoricalMarket | None = None,
    ):
        self.config = config if config is not None else MarketMakingConfig()
        self.params, self.flow_model, self.book_params = check_config(self.config)
        #: the HistoricalMarket traded against, or None for the simulated flow
        self.market = self._historical_market(market)
        if self.market is not None:
            self._fit_to_market()
        self.flow_params = self.flow_model.params
        self.limit_rates = self.flow_model.limit_rates
        self.cancel_rates = self.flow_model.cancel_rates
        check_fits_memory(
            "num_envs", check_int("num_envs", num_envs, 1, 2**24), self._bytes_per_env_needed(),
            "simulator state",
        )  # fmt: skip
        c = self.config
        obs_low = np.full(_layout.OBS_DIM, -np.inf, np.float32)
        obs_high = np.full(_layout.OBS_DIM, np.inf, np.float32)
        obs_low[_layout.OBS_TIME_LEFT], obs_high[_layout.OBS_TIME_LEFT] = 0.0, 1.0
        super().__init__(
            num_envs,
            gymnasium.spaces.Box(obs_low, obs_high, dtype=np.float32),
            action_space(c),
            seed,
            device,
        )
        n = self.num_envs
        # at N in the thousands a step waits for memory: order records, int32 level quantities
        # (check_config bounds them) and each level's head and tail side by side make it touch
        # fewer cache lines (book_layout says how)
        self.books = allocate_book_state(
            n, self.book_params, order_records=True, level_qty_dtype=self._level_qty_dtype,
            level_links=True,
        )  # fmt: skip
        if self.market is None:
            # no id is ever looked up: the flow's orders are cancelled by slot and the market
            # maker tracks its quotes' slots, so every id stays out of the id table
            self.books.index_limit[:] = 0
        self.state = _layout.allocate_mm_state(n)
        self.hist = _hist.allocate_hist_state(n if self.market is not None else 0)
        self._mid = np.zeros(n)
        self._done = np.zeros(n, np.bool_)  # terminated | truncated, written each step
        self._fees = self.state.metrics[:, _layout.M_FEES]  # a view: no copy per step
        keys = self.episode_keys
        self._episode = {
            key: np.zeros(n, np.int64 if key in _INTEGER_EPISODE_KEYS else np.float64)
            for key in keys
        }
        always = np.ones(n, np.bool_)
        s = self.state
        self._info = {
            "pnl": s.pnl,
            "cash": s.cash,
            "fees": self._fees,
            "mid": self._mid,
            "inventory": s.inventory,
            "action_clipped": self._clipped,
            "quote_reduced": s.quote_reduced,
        }
        if self.market is not None:
            self._data_row = np.full(n, -1, np.int64)
            self._data_time = np.zeros(n)
            self._info["data_row"] = self._data_row
            self._info["data_time"] = self._data_time
            for key, column in DIVERGENCE_COUNTERS.items():
                self._info[key] = self.hist.counters[:, column]
        self._info.update({"_" + key: always for key in list(self._info)})

    # -- the historical market -----------------------------------------------------------------
    def _historical_market(self, market) -> HistoricalMarket | None:
        c = self.config
        if market is not None:
            if not isinstance(market, HistoricalMarket):
                raise TypeError(f"market must be a HistoricalMarket, got {type(market).__name__}")
            if c.lobster:
                raise ValueError(
                    "give the historical data either as market or as config.lobster, not both"
                )
            return market
        if not c.lobster:
            return None
        tick = c.lobster_tick if c.lobster_tick > 0 else None
        return load_market(
            *c.lobster, tick_size=tick, train_fraction=c.train_fraction, lot_size=c.lobster_lot
        )

    def _fit_to_market(self) -> None:
        """The units and capacities of the historical market: its tick and lot, a ladder and a
        pool that hold its book and the quotes."""
        c, market = self.config, self.market
        self.hist_params = market.window_params(
            c.lobster_part, c.episode_steps * c.dt, c.lobster_windows
        )
        self.params = self.params._replace(
            tick_size=market.tick_size, lot_size=float(market.lot_size)
        )
        self.book_params = self.book_params._replace(
            ladder_levels=max(self.book_params.ladder_levels, market.ladder_levels(c.max_offset)),
            order_capacity=max(self.book_params.order_capacity, market.order_capacity),
        )

    @property
    def _level_qty_dtype(self):
        # the simulator's sizes are bounded so a level fits int32; the file's only by
        # MAX_ORDER_QTY
        return np.int32 if self.market is None else np.int64

    @property
    def episode_keys(self) -> tuple[str, ...]:
        """The keys of ``info["episode"]``: :data:`EPISODE_KEYS`, for a historical market the
        divergence counters (:data:`DIVERGENCE_COUNTERS`), and where the flow has a fair value
        :data:`FAIR_EPISODE_KEYS`."""
        if self.market is not None:
            return EPISODE_KEYS + tuple(DIVERGENCE_COUNTERS)
        return EPISODE_KEYS + (FAIR_EPISODE_KEYS if self.has_fair_value else ())

    @property
    def has_fair_value(self) -> bool:
        """Whether the simulated flow has a fair value that sets prices: informed flow
        (``flow.informed_tilt > 0``) leans towards it, or the anchor
        (``flow.anchor_width`` finite) pulls the book back to it. A historical market, or a
        flow with neither, has none (the latent value would move nothing)."""
        fp = self.flow_params
        return self.market is None and (fp.informed_tilt > 0 or math.isfinite(fp.anchor_width))

    @property
    def data_row(self) -> np.ndarray:
        """int64 (N,), read-only: for a historical market, the 0-based index of the last data
        row applied in each env (the row its book was loaded from at reset, then the last
        message applied), -1 before the first reset."""
        self._require_market("data_row")
        return read_only(self._data_row)

    def _require_market(self, what: str) -> None:
        if self.market is None:
            raise AttributeError(f"{what} exists only for a historical market (market=...)")

    def depth(self, levels: int = 10) -> np.ndarray:
        """int64 (N, levels, 4): the ``levels`` best levels of every env's book in LOBSTER
        layout ``[ask_px, ask_qty, bid_px, bid_qty]`` (a missing level 0, 0), the market
        maker's quotes included. Prices in ticks and sizes in lots, or for a historical market
        in the file's own units (prices as written, sizes in shares), so that a row compares
        with the orderbook file directly."""
        levels = check_int("levels", levels, 1, 10_000)
        out = np.zeros((self.num_envs, levels, 4), np.int64)
        depth_batch(self.books, out)
        if self.market is not None:
            out[:, :, [0, 2]] *= self.market.tick_units
            out[:, :, [1, 3]] *= self.market.lot_size
        return out

    def _bytes_per_env_needed(self) -> int:
        """Bytes per env the constructor will allocate (book, flow, agent, outputs)."""
        one_env = _layout.allocate_mm_state(1)
        hist = _hist.allocate_hist_state(1) if self.market is not None else ()
        episode = len(EPISODE_KEYS) + len(FAIR_EPISODE_KEYS)
        outputs = 4 * (_layout.OBS_DIM + 2 * _layout.ACT_DIM + 1) + 8 * (episode + 4) + 8
        return (
            bytes_per_book(self.book_params, self._level_qty_dtype)
            + sum(a.nbytes for a in one_env)
            + sum(a.nbytes for a in hist)
            + outputs
        )

    # -- the read-only surface (for tools: recording, calibration, benchmarks) -----------------
    @property
    def inventory(self) -> np.ndarray:
        """int64 (N,), read-only: each env's inventory in lots."""
        return read_only(self.state.inventory)

    @property
    def mid(self) -> np.ndarray:
        """float64 (N,), read-only: each env's mid price in currency (as ``info["mid"]``)."""
        return read_only(self._mid)

    @property
    def others_mid(self) -> np.ndarray:
        """float64 (N,), a new array: each env's mid in currency with the market maker's own
        quotes left out (the other traders' best bid and ask), the reference of markouts and
        the adverse rate."""
        out = np.zeros(self.num_envs)
        _mm.others_mids(self.books, self.state, out)
        return out * self.params.tick_size

    @property
    def step_count(self) -> np.ndarray:
        """int64 (N,), read-only: steps taken in each env's current episode."""
        return read_only(self.state.step)

    @property
    def quote_remaining(self) -> np.ndarray:
        """int64 (N, 2), read-only: lots resting in each env's bid and ask quote (0: none)."""
        return read_only(self.state.quote_left)

    @property
    def flow_events(self) -> np.ndarray:
        """int64 (N, len(FLOW_EVENTS)), read-only: the background flow's events so far in each
        env, by kind (columns in the order of :data:`FLOW_EVENTS`)."""
        return read_only(self.state.events)

    def running_metric(self, name: str) -> np.ndarray:
        """float64 (N,), read-only: one of each env's running totals this episode, by its name
        in :data:`RUNNING_METRICS` (e.g. ``"quoted_qty"``, ``"maker_qty"``, ``"touch_steps"``)."""
        if name not in RUNNING_METRICS:
            raise ValueError(f"name must be one of {', '.join(RUNNING_METRICS)}, got {name!r}")
        return read_only(self.state.metrics[:, RUNNING_METRICS[name]])

    def step_fills(self) -> dict[str, np.ndarray]:
        """The market maker's fills in the last step, every env's in order, as copies: ``env``
        (int64), ``side`` (+1 bought, -1 sold), ``price`` and ``mid`` (just before the fill)
        in ticks (float64), ``qty`` (lots, int64), ``taker`` (bool), ``reference_mid`` (ticks,
        float64: the other traders' mid the fill is marked out from, just before the event
        that filled a resting quote or just after a quote update that took). At most
        ``FILL_LOG_CAPACITY`` fills per env and step are kept (beyond: counted in
        ``running_metric("fill_log_dropped")``)."""
        counts = self.state.fill_count
        envs = np.repeat(np.arange(self.num_envs), counts)
        written = np.arange(_layout.FILL_LOG_CAPACITY) < counts[:, None]
        log = self.state.fill_log[written]  # row-major: env by env, in fill order
        return {
            "env": envs.astype(np.int64),
            "side": log[:, _layout.FILL_SIDE].astype(np.int64),
            "price": log[:, _layout.FILL_PRICE].copy(),
            "mid": log[:, _layout.FILL_MID].copy(),
            "qty": log[:, _layout.FILL_QTY].astype(np.int64),
            "taker": log[:, _layout.FILL_TAKER] > 0,
            "reference_mid": log[:, _layout.FILL_REFERENCE_MID].copy(),
        }

    def quotes_for(self, actions) -> dict[str, np.ndarray]:
        """Where the next step would quote ``actions`` (float (N, 5)), priced by the step's own
        code from the other traders' mids now: ``bid_price``, ``ask_price`` (ticks) and
        ``bid_size``, ``ask_size`` (lots), each int64 (N,). Actions are clipped into the space
        first, as the step clips them."""
        actions = self._check_actions(actions)
        if not np.isfinite(actions).all():
            self._raise_non_finite(actions, int(np.flatnonzero(~np.isfinite(actions))[0]))
        out = np.zeros((self.num_envs, 4), np.int64)
        _mm.quotes_for(self.books, self.state, actions, self._action_low, self._action_high, out)
        return {
            k: out[:, i] for i, k in enumerate(("bid_price", "ask_price", "bid_size", "ask_size"))
        }

    @property
    def bytes_per_env(self) -> int:
        """Bytes of simulator state per env (book, flow, agent, metrics)."""
        total = state_nbytes(self.books) + sum(a.nbytes for a in self.state)
        total += sum(a.nbytes for a in self.hist)
        return total // self.num_envs

    def _state_arrays(self) -> dict[str, np.ndarray]:
        arrays = super()._state_arrays()
        arrays.update({f"book.{k}": v for k, v in self.books._asdict().items()})
        arrays.update({f"mm.{k}": v for k, v in self.state._asdict().items()})
        if self.market is not None:
            arrays.update({f"hist.{k}": v for k, v in self.hist._asdict().items()})
        arrays["mid"] = self._mid
        return arrays

    def _kernel_args(self):
        """The state and parameters every kernel of the step takes: books, state, flow model,
        parameters."""
        # rebuilt from the attributes: an instrument may swap an array (profiling's tracer)
        model = self.flow_model._replace(
            params=self.flow_params, limit_rates=self.limit_rates, cancel_rates=self.cancel_rates
        )
        return self.books, self.state, model, self.params

    def _hist_args(self):
        return self.books, self.state, self.market.data, self.hist_params, self.hist, self.params

    def _reset_kernel(self, seed, mask):
        self._seed_rng(self.state.rng, seed, mask)
        if self.market is None:
            _drivers.reset_envs(*self._kernel_args(), mask, self._obs)
        else:
            _hist.reset_hist_envs(*self._hist_args(), mask, self._obs)
        self._update_mid()

    def _step_kernel(self, actions) -> int:
        bounds = _layout.ActionBuffers(
            self._action_low, self._action_high, self._actions, self._clipped,
            self.action_clip_count,
        )  # fmt: skip
        out = _layout.StepOutputs(self._obs, self._reward, self._terminated, self._truncated)
        if self.market is None:
            bad = _drivers.step_envs(*self._kernel_args(), actions, bounds, out)
        else:
            bad = _hist.step_hist_envs(*self._hist_args(), actions, bounds, out)
        if bad < 0:
            self._update_mid()
        return bad

    def _update_mid(self):
        # twice the mid in ticks is the kernel's prev_mid2 after every step and reset
        np.multiply(self.state.prev_mid2, 0.5 * self.params.tick_size, out=self._mid)
        if self.market is not None:
            np.subtract(self.hist.next_row, 1, out=self._data_row)
            np.multiply(self.state.step, self.params.dt, out=self._data_time)
            self._data_time += self.hist.window_start

    def _step_info(self) -> dict:
        info = dict(self._info)
        done = np.logical_or(self._terminated, self._truncated, out=self._done)
        if done.any():
            self._fill_episode(done)
            info["episode"] = self._episode
            info["_episode"] = done
        return info

    def _fill_episode(self, done):
        met = self.state.metrics
        col = _mm
        ep = self._episode
        steps = self.state.step.astype(np.float64)

        def ratio(key, num, den, scale=1.0):
            ep[key].fill(0)
            np.divide(num * scale, den, out=ep[key], where=done & (den > 0))

        for key, source in (
            ("r", met[:, col.M_RETURN]),
            ("l", self.state.step),
            ("pnl", self.state.pnl),
            ("liquidation_pnl", self.state.liquidation_pnl),
            ("fills", met[:, col.M_FILLS]),
            ("volume", met[:, col.M_FILLED_QTY]),
            ("max_drawdown", met[:, col.M_MAX_DRAWDOWN]),
            ("fees", met[:, col.M_FEES]),
            ("quote_reduced", met[:, col.M_QUOTE_REDUCED]),
            ("post_only_repriced", met[:, col.M_POST_ONLY_REPRICED]),
            ("self_cross_lots", met[:, col.M_SELF_CROSS_LOTS]),
            ("liquidation_beyond_book", met[:, col.M_LIQUIDATION_BEYOND]),
        ):
            ep[key].fill(0)
            np.copyto(ep[key], source, where=done, casting="unsafe")
        if self.market is not None:
            for key, column in DIVERGENCE_COUNTERS.items():
                ep[key].fill(0)
                np.copyto(ep[key], self.hist.counters[:, column], where=done)
        elif "fair_pnl" in ep:
            s, p = self.state, self.params
            fair = s.flow_state[:, _flow.FAIR_VALUE] * (p.tick_size * p.lot_size)
            ep["fair_pnl"].fill(0)
            np.copyto(ep["fair_pnl"], s.cash + s.inventory * fair, where=done)
        ratio("fill_ratio", met[:, col.M_FILLED_QTY], met[:, col.M_QUOTED_QTY])
        ratio(
            "fill_probability", met[:, col.M_FILLED_QUOTE_INTERVALS], met[:, col.M_QUOTE_INTERVALS]
        )
        ratio("spread_captured", met[:, col.M_SPREAD_CAPTURED], met[:, col.M_FILLED_QTY])
        ratio("markout", met[:, col.M_MARKOUT], met[:, col.M_MARKOUT_QTY])
        ratio("adverse_rate", met[:, col.M_ADVERSE_FILLS], met[:, col.M_MARKOUT_FILLS])
        ratio("inventory_mean", met[:, col.M_INVENTORY_SUM], steps)
        ratio("pnl_step_mean", met[:, col.M_PNL_STEP_SUM], steps)
        ratio("touch_fraction", met[:, col.M_TOUCH_STEPS], steps, 0.5)
        for key, squares in (
            ("inventory_std", col.M_INVENTORY_SQ),
            ("pnl_step_std", col.M_PNL_STEP_SQ),
        ):
            mean = ep[key.replace("std", "mean")]
            ratio(key, met[:, squares], steps)  # E[x^2], then sqrt(E[x^2] - E[x]^2)
            np.subtract(ep[key], mean * mean, out=ep[key], where=done)
            np.maximum(ep[key], 0.0, out=ep[key])
            np.sqrt(ep[key], out=ep[key])


def historical_vector_env(
    num_envs: int = 1,
    *,
    market,
    config: MarketMakingConfig | None = None,
    seed: int | None = 0,
    device=None,
) -> MarketMakingVectorEnv:
    """The vector entry point of ``fastlob/HistoricalMarketMaking-v0``: a
    :class:`MarketMakingVectorEnv` on ``market``, a :class:`HistoricalMarket` or a pair
    (message_csv, orderbook_csv) loaded once per process (``load_market``)."""
    if not isinstance(market, HistoricalMarket):
        if not (isinstance(market, (tuple, list)) and len(market) == 2):
            raise TypeError(
                "market must be a HistoricalMarket or a pair (message_csv, orderbook_csv), got "
                f"{type(market).__name__}"
            )
        market = load_market(*market)
    return MarketMakingVectorEnv(num_envs, config=config, seed=seed, device=device, market=market)


class MarketMakingEnv(gymnasium.Env):
    """One market-making episode as a plain ``gymnasium.Env`` (a ``MarketMakingVectorEnv`` with
    one env): the same spaces, dynamics and ``info`` keys (as scalars)."""

    metadata = {"render_modes": []}  # noqa: RUF012 - gymnasium's convention

    def __init__(
        self,
        config: MarketMakingConfig | None = None,
        seed: int | None = 0,
        market: HistoricalMarket | None = None,
    ):
        self.vector_env = MarketMakingVectorEnv(1, config=config, seed=seed, market=market)
        self.observation_space = self.vector_env.single_observation_space
        self.action_space = self.vector_env.single_action_space
        self._action = np.zeros((1, _layout.ACT_DIM), np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        obs, _ = self.vector_env.reset(seed=seed)
        return obs[0].copy(), {}

    def step(self, action):
        action = check_real_array("action", action)  # as the vector env's check
        if action.shape != (_layout.ACT_DIM,):
            raise ValueError(f"action must have shape ({_layout.ACT_DIM},), got {action.shape}")
        self._action[0] = as_float32(action)
        obs, reward, terminated, truncated, info = self.vector_env.step(self._action)
        single = {
            k: v[0].item() for k, v in info.items() if not k.startswith("_") and k != "episode"
        }
        if "episode" in info:
            single["episode"] = {k: v[0].item() for k, v in info["episode"].items()}
        return obs[0].copy(), float(reward[0]), bool(terminated[0]), bool(truncated[0]), single
