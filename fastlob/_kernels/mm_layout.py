"""Data layout of the market-making simulator: the per-env state beside the books
(``MMState``), its parameters (``MMParams``), the columns of its actions, observations, running
metrics, markout ring and fill log, and the bundles its kernels take (``StepOutputs``,
``ActionBuffers``; the flow's ``FlowModel``/``FlowState``).

Every array has the env index ``n`` first. Money is float64 currency, prices int64 ticks (the
mid as twice its value in ticks, exact), quantities int64 lots. The flow's per-env state lives
in ``MMState`` (``rng``, ``last_best``, ``flow_state``, ``events``, ``intensity_integral``, the
fields of ``flow.FlowState``): the flow's kernels take the ``MMState`` itself as their state.

The kernels read a bundle's arrays by attribute where they use them (``out.obs[n, ...]``):
compiled without reference counting, an inlined kernel that first unpacked a tuple of arrays
into local names, or built one, lost some of its writes.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from fastlob._kernels.book_layout import EMPTY_PRICE, NO_SLOT, aligned_zeros
from fastlob._kernels.flow import allocate_flow_state

#: order id of the market maker's bid quote
MM_BID_ID = 0
#: order id of the market maker's ask quote
MM_ASK_ID = 1

# Action columns.
#: ticks below the mid at which to bid
ACT_BID_OFFSET = 0
#: ticks above the mid at which to offer
ACT_ASK_OFFSET = 1
#: lots to bid (rounded half up; 0 withdraws the bid)
ACT_BID_SIZE = 2
#: lots to offer (rounded half up; 0 withdraws the ask)
ACT_ASK_SIZE = 3
#: inventory target as a fraction of max_inventory (used by the reward's tracking term)
ACT_INVENTORY_TARGET = 4
#: action width
ACT_DIM = 5

# Observation columns (float32); see the owner's docstring for scales.
#: inventory / max_inventory
OBS_INVENTORY = 0
#: PnL / (tick_size * lot_size * max_inventory): PnL in ticks of a full position
OBS_PNL = 1
#: (bid qty - ask qty) / (bid qty + ask qty) at the touch, 0 if both are empty
OBS_IMBALANCE = 2
#: best ask - best bid in ticks
OBS_SPREAD = 3
#: lots ahead of the market maker's bid in its queue / depth_scale, -1 without a live bid
OBS_BID_QUEUE = 4
#: lots ahead of the market maker's ask in its queue / depth_scale, -1 without a live ask
OBS_ASK_QUEUE = 5
#: mid - live bid price in ticks, 0 without a live bid
OBS_BID_DISTANCE = 6
#: live ask price - mid in ticks, 0 without a live ask
OBS_ASK_DISTANCE = 7
#: short-term alpha: exponential average of the mid's change per step, in ticks
OBS_ALPHA = 8
#: exponential average of signed traded volume per step (buyer- minus seller-initiated lots)
#: / depth_scale
OBS_SIGNED_FLOW = 9
#: first of 5 columns: price - mid in ticks of the 5 best bid levels (then 5 sizes)
OBS_BID_LEVELS = 10
#: first of 5 columns: price - mid in ticks of the 5 best ask levels (then 5 sizes)
OBS_ASK_LEVELS = 20
#: levels per side in the observation
OBS_LEVELS = 5
#: fraction of the episode left, 1 at reset, 0 at the last step
OBS_TIME_LEFT = 30
#: observation width
OBS_DIM = 31

# Per-episode metric columns (float64, ``metrics[n, column]``), accumulated in the kernel.
#: sum of rewards
M_RETURN = 0
#: fills (trade records with the market maker on one side)
M_FILLS = 1
#: lots filled
M_FILLED_QTY = 2
#: lots filled as maker
M_MAKER_QTY = 3
#: lots filled as taker
M_TAKER_QTY = 4
#: lots quoted (sizes of the quotes that reached the book)
M_QUOTED_QTY = 5
#: spread captured: sum of side * (mid - price) * qty over fills, ticks x lots
M_SPREAD_CAPTURED = 6
#: markout: sum of side * (mid at horizon - price) * qty, ticks x lots
M_MARKOUT = 7
#: fills marked out
M_MARKOUT_FILLS = 8
#: lots marked out
M_MARKOUT_QTY = 9
#: fills followed by an unfavourable mid move at the horizon (side * move < 0)
M_ADVERSE_FILLS = 10
#: sum over steps of the inventory (lots)
M_INVENTORY_SUM = 11
#: sum over steps of the squared inventory
M_INVENTORY_SQ = 12
#: sum over steps of the PnL change (money)
M_PNL_STEP_SUM = 13
#: sum over steps of the squared PnL change
M_PNL_STEP_SQ = 14
#: largest fall of the PnL from its running peak (money)
M_MAX_DRAWDOWN = 15
#: fees paid, net of rebates (money)
M_FEES = 16
#: quotes cut by the position limit
M_QUOTE_REDUCED = 17
#: lots withdrawn from both sides of a self-crossing pair of quotes (the market maker never
#: trades with itself: the crossing lots are netted, no trade, no fee)
M_SELF_CROSS_LOTS = 18
#: quotes the book rejected (outside the ladder, pool full)
M_REJECTED_QUOTES = 19
#: fills not marked out because the markout buffer was full
M_MARKOUT_DROPPED = 20
#: steps with a live quote at the best price of its side (bid or ask counted separately)
M_TOUCH_STEPS = 21
#: fills not written to the per-step fill log because it was full
M_FILL_LOG_DROPPED = 22
#: quotes re-priced behind the other traders' opposite best by the post-only rule
M_POST_ONLY_REPRICED = 23
#: quote intervals (a side's quote resting from one quote update to the next, or to the end)
M_QUOTE_INTERVALS = 24
#: quote intervals in which the resting quote was filled, at least in part
M_FILLED_QUOTE_INTERVALS = 25
#: lots of the final inventory that the other traders' book could not take at the liquidation
#: mark (valued at the deepest price reached)
M_LIQUIDATION_BEYOND = 26
#: number of metric columns
NUM_METRICS = 27

#: pending markouts per env (a fill beyond this many outstanding ones is counted, not marked)
MARKOUT_CAPACITY = 64

# Columns of a pending markout (int64 (N, MARKOUT_CAPACITY, MARKOUT_WIDTH)): one 32-byte record
# per fill, so that pushing, checking and taking one touches one cache line, not four.
#: step at which the fill is marked
MARKOUT_DUE = 0
#: signed lots (+ bought)
MARKOUT_QTY = 1
#: twice the other traders' mid (the market maker's quotes left out) the fill is marked from:
#: just before the event that filled a resting quote, just after a quote update that took
#: (so that the market maker's own impact is never counted)
MARKOUT_MID2 = 2
#: execution price (ticks)
MARKOUT_PRICE = 3
#: width of a markout record
MARKOUT_WIDTH = 4
#: fills of one step kept in the per-step fill log (beyond: counted in M_FILL_LOG_DROPPED)
FILL_LOG_CAPACITY = 32

# Columns of the fill log (float64 (N, FILL_LOG_CAPACITY, FILL_LOG_WIDTH)).
#: +1 the market maker bought, -1 sold
FILL_SIDE = 0
#: execution price (ticks)
FILL_PRICE = 1
#: lots
FILL_QTY = 2
#: mid just before the fill (ticks)
FILL_MID = 3
#: 1 if the market maker was the taker
FILL_TAKER = 4
#: the other traders' mid the fill is marked out from (ticks; see ``MARKOUT_MID2``)
FILL_REFERENCE_MID = 5
#: width of a fill-log row
FILL_LOG_WIDTH = 6


class MMParams(NamedTuple):
    """Scalar parameters of the market-making simulator (the owner validates them)."""

    dt: float
    episode_steps: int
    latency: float
    tick_size: float
    lot_size: float
    initial_price: int
    initial_depth: int
    warmup: float
    max_inventory: int
    maker_fee: float
    taker_fee: float
    max_drawdown: float
    terminate_on_max_inventory: bool
    markout_steps: int
    signal_decay: float
    depth_scale: float
    reward_scale: float
    inventory_penalty: float
    target_penalty: float
    spread_capture: float
    post_only: bool
    liquidation_mark: bool


class MMState(NamedTuple):
    """Per-env state besides the book (float64 money, int64 ticks and lots)."""

    rng: np.ndarray  #: uint64 (N,) generator state
    last_best: np.ndarray  #: int64 (N, 2) last known best bid and ask
    flow_state: np.ndarray  #: float64 (N, 3) fair value, its level, Hawkes excitation
    events: np.ndarray  #: int64 (N, NUM_EVENTS) background events, ever
    intensity_integral: np.ndarray  #: float64 (N, NUM_INTEGRALS) compensators of the counts, ever
    cash: np.ndarray  #: float64 (N,) money
    inventory: np.ndarray  #: int64 (N,) lots
    pnl: np.ndarray  #: float64 (N,) cash + inventory * lot_size * mid * tick_size
    #: float64 (N,) cash + the inventory traded against the other traders' book (taker fee
    #: paid), at the last step's end where the reward uses it and at the episode's end
    liquidation_pnl: np.ndarray
    peak_pnl: np.ndarray  #: float64 (N,) running maximum of the PnL this episode
    quote_price: np.ndarray  #: int64 (N, 2) price of the live quote per side, or EMPTY_PRICE
    quote_size: np.ndarray  #: int64 (N, 2) requested size of that quote (before any cut)
    quote_slot: np.ndarray  #: int64 (N, 2) its slot in the order pool, or NO_SLOT
    quote_left: np.ndarray  #: int64 (N, 2) its remaining lots
    #: bool (N, 2) a quote rested on the side after the last quote update
    quote_rested: np.ndarray
    #: bool (N, 2) that quote has been filled since, at least in part
    quote_hit: np.ndarray
    step: np.ndarray  #: int64 (N,) steps taken this episode
    prev_done: np.ndarray  #: bool (N,) the last step ended the episode
    prev_mid2: np.ndarray  #: int64 (N,) twice the mid at the end of the last step
    alpha: np.ndarray  #: float64 (N,) EMA of the mid change per step (ticks)
    signed_flow: np.ndarray  #: float64 (N,) EMA of signed traded lots per step
    step_flow: np.ndarray  #: int64 (N,) signed traded lots so far this step
    metrics: np.ndarray  #: float64 (N, NUM_METRICS) this episode's accumulators
    markouts: np.ndarray  #: int64 (N, F, MARKOUT_WIDTH) ring of pending fills (MARKOUT_* columns)
    markout_head: np.ndarray  #: int64 (N,) oldest pending entry of the ring
    markout_pending: np.ndarray  #: int64 (N,) pending entries
    quote_reduced: np.ndarray  #: int64 (N,) quotes cut by the position limit, ever
    fill_log: np.ndarray  #: float64 (N, FILL_LOG_CAPACITY, FILL_LOG_WIDTH) this step's fills
    fill_count: np.ndarray  #: int64 (N,) rows of fill_log written this step


def allocate_mm_state(num_envs: int) -> MMState:
    """The state of ``num_envs`` envs besides their books, zeroed (no quotes, generators
    unseeded): the owner seeds and resets them."""
    n, f = num_envs, MARKOUT_CAPACITY
    flow = allocate_flow_state(n)
    return MMState(
        rng=flow.rng,
        last_best=flow.last_best,
        flow_state=flow.flow_state,
        events=flow.events,
        intensity_integral=flow.intensity_integral,
        cash=np.zeros(n),
        inventory=np.zeros(n, np.int64),
        pnl=np.zeros(n),
        liquidation_pnl=np.zeros(n),
        peak_pnl=np.zeros(n),
        quote_price=np.full((n, 2), EMPTY_PRICE, np.int64),
        quote_size=np.zeros((n, 2), np.int64),
        quote_slot=np.full((n, 2), NO_SLOT, np.int64),
        quote_left=np.zeros((n, 2), np.int64),
        quote_rested=np.zeros((n, 2), np.bool_),
        quote_hit=np.zeros((n, 2), np.bool_),
        step=np.zeros(n, np.int64),
        prev_done=np.zeros(n, np.bool_),
        prev_mid2=np.zeros(n, np.int64),
        alpha=np.zeros(n),
        signed_flow=np.zeros(n),
        step_flow=np.zeros(n, np.int64),
        metrics=np.zeros((n, NUM_METRICS)),
        markouts=aligned_zeros((n, f, MARKOUT_WIDTH), np.int64),
        markout_head=np.zeros(n, np.int64),
        markout_pending=np.zeros(n, np.int64),
        quote_reduced=np.zeros(n, np.int64),
        fill_log=np.zeros((n, FILL_LOG_CAPACITY, FILL_LOG_WIDTH)),
        fill_count=np.zeros(n, np.int64),
    )


class StepOutputs(NamedTuple):
    """What a step writes for the caller, per env (preallocated by the owner)."""

    #: float32 (N, OBS_DIM)
    obs: np.ndarray
    #: float32 (N,)
    reward: np.ndarray
    #: bool (N,)
    terminated: np.ndarray
    #: bool (N,)
    truncated: np.ndarray


class ActionBuffers(NamedTuple):
    """The action space's bounds and what the step's clip writes, per env."""

    #: float32 (ACT_DIM,): lower bounds of the action space
    low: np.ndarray
    #: float32 (ACT_DIM,): upper bounds
    high: np.ndarray
    #: float32 (N, ACT_DIM): written, the actions after clipping (what the envs used)
    clipped_actions: np.ndarray
    #: bool (N,): written, whether env n's action was clipped
    clipped: np.ndarray
    #: int64 (N,): incremented for each clipped action
    clip_count: np.ndarray
