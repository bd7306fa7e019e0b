"""Tune the classical baselines over everything the trained agent controls, quote size included.

Every quoting baseline is tuned jointly over its quote size and its own parameters, on the full
grid of them (the grids are small): Avellaneda-Stoikov and GLFT over their risk aversion
``gamma`` (A, k and sigma calibrated in the simulator, ``fastlob.calibration``), the fixed spread
over its half-width and an inventory cap (no quote on a side that would carry |inventory| past
it), the touch quoter (``baselines.TouchQuotes``) over its inventory cap. Random quotes stay an
untuned sanity baseline at 1 lot.

The grids (:func:`initial_grids`):

- ``size``: 0 to ``min(max_quote_size, max_inventory)`` lots, every integer. Size 0 stands aside
  (no order, PnL 0 in every episode, utility 0): a candidate, not played, so that not quoting
  wins where every quote loses;
- ``gamma``: 1e-4, 3e-4, 1e-3, ..., 0.3, 1 (log grid, ~3x steps);
- ``half_width``: 0 (join or cross the mid), 0.5, 1, 1.5, 2, 3, 4, 6, 8, 10, 15, 20, 30, 50 ticks,
  cut at the market's ``max_offset`` and ending on it (0 .. 10 on the default market);
- ``cap``: 1, 2, 3, 5, 8, 12, 20, 30, 50, 80, 120, 200 lots, cut at the market's
  ``max_inventory`` and ending on it (1 .. 20 on the default market).

Widening: the best quoting candidate (size >= 1) of each baseline is found on its grid; when one
of its parameters lands on an edge of its axis and the axis can extend there, the next value
beyond the edge is added (``gamma``: the 1-3 log steps on, down to 1e-6 and up to 100), every
combination of the other axes' values and every size is played at it, and the search repeats
until the choice is interior or the edge is the axis's hard bound (``gamma``: 1e-6 or 100;
``half_width``: 0 or ``max_offset``; ``cap``: 1 or ``max_inventory``; ``size``: 0 or the largest
size). The choice is the best quoting candidate, or size 0 where that
one's utility is not positive. Ties go to the first candidate in grid order.

Common random numbers: every candidate plays the same ``episodes`` tuning episodes (one per env,
env ``n`` seeded from ``(seed, n)``), so that candidates differ by their quotes and not by their
luck. They play side by side (:func:`play_side_by_side`): one env of ``episodes`` envs is reset
once, and its state is copied into a wider env, ``episodes`` rows per candidate, so that each
candidate's rows replay exactly the episodes ``evaluate.play`` would give it alone, at the cost of
one kernel call per step for many candidates.

The tuning episodes are disjoint from the evaluation's: ``evaluate`` tunes on its seed + 1 (other
draws of the flow), and on a historical market on its train part while agents are evaluated on
its held-out eval part. The score is the mean-variance utility of the PnL under the liquidation
mark (:func:`utility`), as the evaluation table leads with.

Budget: every env-step the tuning used is counted and saved as ``tuning_env_steps``, so that a
table can state it beside the trained agent's env-steps: each played candidate's ``episodes`` x
``episode_steps``, and the calibration's 7 offsets x ``min(256, max(32, episodes))`` envs x 100
steps (on a historical part shorter than 101 steps the calibration steps fewer: the count is then
an upper bound). On the default market, 128 episodes of 200 steps: 475 candidates (350 of them
the fixed spread's), 12.25 M env-steps.

``baselines.json`` (``TunedBaselines.choices``, format 3)::

    {"format": 3, "risk_aversion": 0.01, "tuning_seed": ..., "tuning_episodes": 128,
     "episode_steps": 200, "tuning_part": null (or a historical market's part),
     "tuning_env_steps": ..., "calibration": {"intensity", "decay", "sigma", "env_steps"},
     "baselines": {
       "avellaneda_stoikov": {
         "params": {"gamma": 0.01, "size": 3},     # the choice
         "utility": 12.3,                          # its utility on the tuning episodes
         "axes": ["gamma", "size"],
         "grid": {"gamma": [...], "size": [0, ..., 5]},   # searched, after widening
         "utilities": [[...], ...],                # [gamma index][size index], size 0 column 0
         "widened": {"gamma": [...], "size": []},  # values added beyond the initial grid
         "edges": {"gamma": {"on_edge": false, "at_bound": false},
                   "size": {"on_edge": false, "at_bound": false}},
         "env_steps": ...},
       "glft": {...},
       "fixed_spread": {"params": {"half_width": 1.0, "cap": 5, "size": 2},
                        "axes": ["half_width", "cap", "size"],
                        "utilities": [[[...], ...], ...],   # [half_width][cap][size]
                        ...},
       "touch": {... "cap" ...},
       "random": {"params": {"low": 0.0, "high": 10.0, "size": 1}, "tuned": false}}}

``on_edge``: the chosen value is the first or last of its searched grid; ``at_bound``: that
edge is the axis's hard bound (the search could not widen past it).
"""

from __future__ import annotations

import itertools
import math
import numbers
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fastlob import MarketMakingConfig, MarketMakingVectorEnv
from fastlob._checks import check_int, check_real, read_json_file
from fastlob.calibration import Calibration, calibrate
from fastlob.historical import PARTS

from .baselines import (
    AvellanedaStoikov,
    FixedSpread,
    GueantLehalleFernandezTapia,
    OrderBookQuotes,
    RandomQuotes,
    TouchQuotes,
)
from .common import RunError

#: the layout of ``baselines.json`` written by :func:`tune_baselines`
FORMAT = 3
#: tuned baseline -> the strategy parameters tuned beside its quote size
TUNED_AXES = {
    "avellaneda_stoikov": ("gamma",),
    "glft": ("gamma",),
    "fixed_spread": ("half_width", "cap"),
    "touch": ("cap",),
}
#: every baseline :func:`tuned_policies` builds, in table order
BASELINES = (*TUNED_AXES, "random")
#: gamma grid as 1-3 log-step indices (gamma(i) = 1e(i // 2) times 1 or 3): 1e-4 .. 1
GAMMA_STEPS = (-8, 0)
#: how far the gamma grid may widen: 1e-6 .. 100
GAMMA_BOUNDS = (-12, 4)
#: half-widths (ticks) of the fixed spread's grid, cut at the market's max_offset (and ending on it)
HALF_WIDTHS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 10.0, 15.0, 20.0, 30.0, 50.0)
#: the touch quoter's caps (lots), cut at the market's max_inventory (and ending on it)
CAPS = (1, 2, 3, 5, 8, 12, 20, 30, 50, 80, 120, 200)
#: steps per offset of the calibration (``fastlob.calibration.calibrate``)
CALIBRATION_STEPS = 100
#: env rows of one side-by-side play at most (and at most MAX_PLAY_BYTES of state)
MAX_PLAY_ENVS = 4096
MAX_PLAY_BYTES = 256 * 2**20


def utility(pnl: np.ndarray, risk_aversion: float) -> float:
    """Mean-variance utility ``E[PnL] - (risk_aversion / 2) Var[PnL]`` of episode PnLs."""
    return float(np.mean(pnl) - 0.5 * risk_aversion * np.var(pnl))


# ---------------------------------------------------------------------------------------------
# the grids
# ---------------------------------------------------------------------------------------------


def _gamma(step: int) -> float:
    """The 1-3 log grid's value at ``step``: 1e(step // 2), times 3 for odd steps."""
    return float(f"{(1, 3)[step % 2]}e{step // 2}")


def _gamma_step(gamma: float) -> int:
    return round(2.0 * math.log10(gamma))


def max_size(config: MarketMakingConfig) -> int:
    """The largest quote size a baseline is tuned over: ``min(max_quote_size, max_inventory)``
    lots (a larger quote is cut to the position limit's reach)."""
    return int(min(config.max_quote_size, config.max_inventory))


def _cut(values, top: float) -> list[float]:
    """``values`` below ``top``, then ``top``: a grid that ends on its hard bound."""
    return [float(v) for v in values if v < top] + [float(top)]


def _ladder(axis: str, config: MarketMakingConfig) -> list[float]:
    """Every value a bounded axis may take, in order (its whole range)."""
    if axis == "half_width":
        return _cut(HALF_WIDTHS, config.max_offset)
    if axis == "cap":
        return _cut(CAPS, config.max_inventory)
    if axis == "size":
        return [float(s) for s in range(max_size(config) + 1)]
    raise ValueError(f"unknown axis {axis!r}")


def initial_grids(config: MarketMakingConfig) -> dict[str, dict[str, list[float]]]:
    """{baseline: {axis: values, "size": values}}: the grids the search starts from (see the
    module docstring). The half-width, cap and size grids span their whole range already; the
    gamma grid may widen."""
    values = {"gamma": [_gamma(i) for i in range(GAMMA_STEPS[0], GAMMA_STEPS[1] + 1)]}
    return {
        name: {
            **{axis: list(values.get(axis) or _ladder(axis, config)) for axis in axes},
            "size": _ladder("size", config),
        }
        for name, axes in TUNED_AXES.items()
    }


def beyond(axis: str, value: float, direction: int, config: MarketMakingConfig) -> float | None:
    """The value after ``value`` on ``axis`` in ``direction`` (-1 down, +1 up), or None where
    ``value`` is the axis's hard bound: ``gamma`` moves by 1-3 log steps within 1e-6 .. 100
    (:data:`GAMMA_BOUNDS`); the half-width (0 .. ``max_offset``), the cap (1 ..
    ``max_inventory``) and the size (0 .. :func:`max_size`) move along their grids'
    values."""
    if axis == "gamma":
        step = _gamma_step(value)
        while (_gamma(step) - value) * direction <= 0:
            step += direction
        return _gamma(step) if GAMMA_BOUNDS[0] <= step <= GAMMA_BOUNDS[1] else None
    further = [v for v in _ladder(axis, config) if (v - value) * direction > 0]
    if not further:
        return None
    return min(further) if direction > 0 else max(further)


# ---------------------------------------------------------------------------------------------
# policies
# ---------------------------------------------------------------------------------------------


def baseline_policy(name: str, config: MarketMakingConfig, calibration: Calibration, params: dict):
    """The baseline ``name`` on the order-book env with ``params`` (its tuned axes, as in
    ``baselines.json``'s ``params``), A, k and sigma from ``calibration``."""
    size = float(params["size"])
    if name == "avellaneda_stoikov":
        strategy = AvellanedaStoikov(
            gamma=float(params["gamma"]), sigma=calibration.sigma, k=calibration.decay
        )
    elif name == "glft":
        strategy = GueantLehalleFernandezTapia(
            gamma=float(params["gamma"]),
            sigma=calibration.sigma,
            k=calibration.decay,
            intensity=calibration.intensity,
        )
    elif name == "fixed_spread":
        strategy = FixedSpread(half_spread=float(params["half_width"]))
        return OrderBookQuotes.for_config(strategy, config, size, cap=float(params["cap"]))
    elif name == "touch":
        return TouchQuotes.for_config(config, quote_size=size, cap=float(params["cap"]))
    elif name == "random":
        strategy = RandomQuotes(low=float(params["low"]), high=float(params["high"]))
    else:
        raise ValueError(f"unknown baseline {name!r} (one of {', '.join(BASELINES)})")
    return OrderBookQuotes.for_config(strategy, config, quote_size=size)


# ---------------------------------------------------------------------------------------------
# playing many policies on the same episodes
# ---------------------------------------------------------------------------------------------


def _tiled(state: dict, copies: int, rows: int) -> dict:
    """``state`` (``get_state`` of an env of ``rows`` envs) repeated ``copies`` times along
    the env axis."""
    out = {}
    for key, value in state.items():
        if isinstance(value, np.ndarray):
            if value.ndim == 0 or value.shape[0] != rows:
                raise RuntimeError(f"env state {key!r} has no leading env axis: cannot tile it")
            value = np.concatenate([value] * copies)
        out[key] = value
    return out


def play_side_by_side(
    policies: list,
    config: MarketMakingConfig,
    episodes: int,
    seed: int,
    max_envs: int = MAX_PLAY_ENVS,
) -> tuple[list[dict[str, np.ndarray]], list[int]]:
    """Every policy plays the same ``episodes`` episodes: exactly those ``evaluate.play(policy,
    config, episodes, seed)`` gives it (one per env, env ``n`` from ``(seed, n)``).

    One env of ``episodes`` envs is reset from ``seed``; its state (``get_state``) is repeated
    into a wider env, ``episodes`` rows per policy, as many policies at once as ``max_envs``
    rows (and ``MAX_PLAY_BYTES`` of state) allow; each step, each policy acts on its rows, and
    the env steps them all in one call. Each env is independent of the others, so a policy's
    rows replay its episodes bit for bit.

    Parameters
    ----------
    policies : list
        Batched policies (``act(obs)``: float32 (n, 31) -> (n, 5)).
    config : MarketMakingConfig
    episodes : int
    seed : int
    max_envs : int
        Env rows stepped together at most (at least ``episodes``).

    Returns
    -------
    results : list of dict
        Per policy, the per-episode arrays of ``info["episode"]``, each float64 (episodes,).
    env_steps : list of int
        Per policy, the env-steps its rows were stepped (``episodes`` x the steps of its play,
        which ends when every row has finished an episode).
    """
    episodes = check_int("episodes", episodes, 1, 2**24)
    first = MarketMakingVectorEnv(episodes, config=config, seed=seed)
    first.reset(seed=seed)
    start = first.get_state()
    rows_allowed = min(max_envs, MAX_PLAY_BYTES // max(1, first.bytes_per_env))
    per_play = max(1, rows_allowed // episodes)
    envs: dict[int, MarketMakingVectorEnv] = {}  # reused by width
    results: list[dict[str, np.ndarray]] = []
    env_steps: list[int] = []
    for lo in range(0, len(policies), per_play):
        group = policies[lo : lo + per_play]
        rows = len(group) * episodes
        if rows not in envs:
            envs[rows] = MarketMakingVectorEnv(rows, config=config, seed=seed)
        env = envs[rows]
        env.set_state(_tiled(start, len(group), episodes))
        obs = env.observation
        actions = np.zeros((rows, 5), np.float32)
        finished: dict[str, np.ndarray] = {}
        done = np.zeros(rows, bool)
        steps = 0
        for _ in range(config.episode_steps):
            for i, policy in enumerate(group):
                block = slice(i * episodes, (i + 1) * episodes)
                actions[block] = policy.act(obs[block])
            obs, _, _, _, info = env.step(actions)
            steps += 1
            if "episode" in info:
                ended = np.asarray(info["_episode"]) & ~done
                for key, values in info["episode"].items():
                    finished.setdefault(key, np.zeros(rows))[ended] = values[ended]
                done |= ended
            if done.all():
                break
        for i in range(len(group)):
            block = slice(i * episodes, (i + 1) * episodes)
            results.append({key: values[block].copy() for key, values in finished.items()})
            env_steps.append(episodes * steps)
    return results, env_steps


# ---------------------------------------------------------------------------------------------
# the search
# ---------------------------------------------------------------------------------------------


def _start_grids(config: MarketMakingConfig, given: dict | None) -> dict:
    """:func:`initial_grids` with the axis values ``given`` ({baseline: {axis: values}}) for
    some baselines' axes, checked."""
    grids = initial_grids(config)
    for name, axes in (given or {}).items():
        if name not in TUNED_AXES:
            raise ValueError(f"grids: {name!r} is not a tuned baseline ({', '.join(TUNED_AXES)})")
        if not isinstance(axes, dict) or not set(axes) <= set(TUNED_AXES[name]):
            raise ValueError(
                f"grids[{name!r}] must map some of {', '.join(TUNED_AXES[name])} to values"
            )
        for axis, values in axes.items():
            grids[name][axis] = _start_values(name, axis, values, config)
    return grids


def _start_values(name: str, axis: str, values, config: MarketMakingConfig) -> list[float]:
    """The start grid ``values`` of ``name``'s ``axis``, sorted, checked against its range."""
    values = sorted({float(v) for v in values})
    if axis == "gamma":
        fits, bounds = bool(values) and values[0] > 0.0, "(0, inf)"
    else:
        ladder = _ladder(axis, config)
        fits = bool(values) and ladder[0] <= values[0] and values[-1] <= ladder[-1]
        bounds = f"[{ladder[0]:g}, {ladder[-1]:g}]"
    if not fits:
        raise ValueError(f"grids[{name!r}]: {axis} values in {bounds} needed, got {values}")
    return values


@dataclass
class TunedBaselines:
    """The tuned baselines: ``policies`` {name: policy} and ``choices`` (``baselines.json``)."""

    policies: dict
    choices: dict


def _best_quoting(utilities: dict[tuple[float, ...], float]) -> tuple[float, ...]:
    """(values..., size) of the best candidate with size >= 1; ties to the first in grid
    order."""
    best = None
    for key in sorted(k for k in utilities if k[-1] >= 1):
        if best is None or utilities[key] > utilities[best]:
            best = key
    return best


def _edge(value: float, grid: list[float], axis: str, config: MarketMakingConfig) -> dict:
    lo, hi = min(grid), max(grid)
    on_edge = value in (lo, hi)
    at_bound = (value == lo and beyond(axis, value, -1, config) is None) or (
        value == hi and beyond(axis, value, +1, config) is None
    )
    return {"on_edge": bool(on_edge), "at_bound": bool(at_bound)}


def _number(value: float, axis: str):
    return int(value) if axis in ("size", "cap") else float(value)


def _candidates(grid: dict[str, list[float]], only: dict | None = None) -> list[tuple]:
    """Every (values..., size) of ``grid`` (its axes in order, size last) with size >= 1,
    with the axes in ``only`` held to the values given there."""
    axes = {axis: (only or {}).get(axis, values) for axis, values in grid.items()}
    axes["size"] = [v for v in axes["size"] if v >= 1]
    return list(itertools.product(*axes.values()))


def _params(name: str, key: tuple) -> dict:
    """``params`` of ``baselines.json`` for ``name``'s candidate ``key`` (values..., size)."""
    return dict(zip((*TUNED_AXES[name], "size"), key, strict=True))


def _tuned_row(axes, grid, scores, widened, config) -> dict:
    """``baselines.json``'s row of a tuned baseline (all but its ``env_steps``): the best
    quoting candidate, or size 0 where its utility is not positive."""
    *values, size = _best_quoting(scores)
    best = scores[(*values, size)]
    if best <= 0.0:  # standing aside (utility 0) does as well as every quote, or better
        size, best = 0.0, 0.0
    names = (*axes, "size")
    table = np.zeros([len(grid[a]) for a in names])
    for index in itertools.product(*(range(len(grid[a])) for a in names)):
        key = tuple(grid[a][i] for a, i in zip(names, index, strict=True))
        table[index] = scores.get(key, 0.0)
    return {
        "params": {a: _number(v, a) for a, v in zip(names, (*values, size), strict=True)},
        "utility": best,
        "axes": list(names),
        "grid": {a: [_number(v, a) for v in grid[a]] for a in names},
        "utilities": table.tolist(),
        "widened": {a: [_number(v, a) for v in widened[a]] for a in names},
        "edges": {
            a: _edge(v, grid[a], a, config) for a, v in zip(names, (*values, size), strict=True)
        },
    }


def tune_baselines(
    config: MarketMakingConfig,
    episodes: int,
    seed: int,
    risk_aversion: float,
    max_envs: int = MAX_PLAY_ENVS,
    grids: dict[str, dict[str, list[float]]] | None = None,
) -> TunedBaselines:
    """Calibrate A, k and sigma, then tune every quoting baseline over its quote size and its
    own parameters jointly, on the full grid of them, widened at its edges (see the module
    docstring), by the utility under the liquidation mark on ``episodes`` tuning episodes from
    ``seed``: the same episodes for every candidate (common random numbers), which the caller
    keeps disjoint from its evaluation's (``evaluate`` passes its seed + 1, and on a historical
    market its train part).

    Parameters
    ----------
    config : MarketMakingConfig
        The market tuned on.
    episodes : int
        Tuning episodes (one per env), at least 2: the utility's variance needs two.
    seed : int
        Their seed (env ``n`` from ``(seed, n)``); the calibration uses ``seed`` .. ``seed + 6``.
    risk_aversion : float
        Of the mean-variance utility (finite, >= 0).
    max_envs : int
        Env rows stepped together at most (:func:`play_side_by_side`).
    grids : dict, optional
        {baseline: {axis: values}}: where the search over those axes starts for the baselines
        it names (the other axes start from :func:`initial_grids`; the sizes always span 0 ..
        :func:`max_size`); it still widens them.

    Returns
    -------
    TunedBaselines
        The policies (every baseline of :data:`BASELINES`) and ``choices``, the layout of
        ``baselines.json`` in the module docstring.
    """
    episodes = check_int("episodes", episodes, 2, 2**24)
    seed = check_int("seed", seed, 0, 2**63 - 7)  # the calibration seeds seed .. seed + 6
    risk_aversion = check_real("risk_aversion", risk_aversion, 0.0, math.inf)
    calibration_envs = min(256, max(32, episodes))
    cal = calibrate(config, num_envs=calibration_envs, steps=CALIBRATION_STEPS, seed=seed)
    if not (
        all(map(math.isfinite, (cal.intensity, cal.decay, cal.sigma)))
        and cal.intensity > 0.0
        and cal.decay > 0.0
        and cal.sigma >= 0.0
    ):  # AS and GLFT need A, k > 0 (and baselines.json is refused without them)
        raise ValueError(
            f"the calibration of this market gave A = {cal.intensity:g}, k = {cal.decay:g}, "
            f"sigma = {cal.sigma:g}: Avellaneda-Stoikov and GLFT need A > 0, k > 0 and a finite "
            "sigma >= 0 (fills that fall with the quote's distance from the mid)"
        )
    calibration_steps = len(cal.offsets) * calibration_envs * CALIBRATION_STEPS
    grids = _start_grids(config, grids)
    scores: dict[str, dict[tuple[float, ...], float]] = {name: {} for name in TUNED_AXES}
    widened = {name: {axis: [] for axis in grids[name]} for name in TUNED_AXES}
    spent = dict.fromkeys(TUNED_AXES, 0)
    pending = [(name, key) for name in TUNED_AXES for key in _candidates(grids[name])]
    while pending:
        policies = [baseline_policy(name, config, cal, _params(name, key)) for name, key in pending]
        results, steps = play_side_by_side(policies, config, episodes, seed, max_envs)
        for (name, key), played, used in zip(pending, results, steps, strict=True):
            scores[name][key] = utility(played["liquidation_pnl"], risk_aversion)
            spent[name] += used
        pending = []
        for name, axes in TUNED_AXES.items():
            best = _best_quoting(scores[name])
            for i, axis in enumerate(axes):
                grid = grids[name][axis]
                for direction, edge in ((-1, min(grid)), (+1, max(grid))):
                    new = beyond(axis, best[i], direction, config) if best[i] == edge else None
                    if new is not None and new not in grid:
                        pending += [(name, k) for k in _candidates(grids[name], {axis: [new]})]
                        grid.append(new)
                        widened[name][axis].append(new)
                grid.sort()
    baselines = {}
    for name, axes in TUNED_AXES.items():
        baselines[name] = _tuned_row(axes, grids[name], scores[name], widened[name], config)
        baselines[name]["env_steps"] = spent[name]
    baselines["random"] = {
        "params": {"low": 0.0, "high": float(config.max_offset), "size": 1},
        "tuned": False,
    }
    choices = {
        "format": FORMAT,
        "risk_aversion": float(risk_aversion),
        "tuning_seed": int(seed),
        "tuning_episodes": int(episodes),
        "episode_steps": int(config.episode_steps),
        "tuning_part": config.lobster_part if config.lobster else None,
        "tuning_env_steps": int(calibration_steps + sum(spent.values())),
        "calibration": {
            "intensity": cal.intensity,
            "decay": cal.decay,
            "sigma": cal.sigma,
            "env_steps": int(calibration_steps),
        },
        "baselines": baselines,
    }
    return TunedBaselines(tuned_policies(config, choices), choices)


def _finite_number(value, integer: bool = False) -> bool:
    """A finite JSON number (an integer where ``integer``), not a bool."""
    kind = int if integer else numbers.Real
    if not isinstance(value, kind) or isinstance(value, bool):
        return False
    try:  # a JSON integer may be too large for a float
        return math.isfinite(value)
    except OverflowError:
        return False


class _Fields:
    """Checks of one object of ``baselines.json``, each error a :class:`RunError` naming the
    file and the field's dotted path."""

    def __init__(self, source: str, path: str, value):
        self.source, self.path = source, path
        if not isinstance(value, dict):
            raise RunError(f"{source}: {path or 'the file'} must be an object, got {value!r}")
        self.value = value

    def keys(self, needed) -> None:
        """The object holds exactly the keys ``needed``."""
        missing = [k for k in needed if k not in self.value]
        if missing:
            raise RunError(f"{self.source}: lacks {self.name(missing[0])}")
        unknown = sorted(str(k) for k in self.value if k not in needed)
        if unknown:
            raise RunError(
                f"{self.source}: {self.path or 'the file'} has no field {', '.join(unknown)} "
                f"(its fields: {', '.join(needed)})"
            )

    def name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key: str, allowed: str):
        raise RunError(
            f"{self.source}: {self.name(key)} must be {allowed}, got {self.value[key]!r}"
        )

    def real(self, key: str, low: float = -math.inf, high: float = math.inf, low_open=False):
        v = self.value[key]
        if not (_finite_number(v) and (v > low if low_open else v >= low) and v <= high):
            if math.isinf(high):
                bound = "" if math.isinf(low) else f" {'>' if low_open else '>='} {low:g}"
                self.fail(key, f"a finite number{bound}")
            self.fail(key, f"a finite number in {'(' if low_open else '['}{low:g}, {high:g}]")
        return float(v)

    def integer(self, key: str, low: int, high: float = math.inf) -> int:
        v = self.value[key]
        if not (isinstance(v, int) and not isinstance(v, bool) and low <= v <= high):
            self.fail(
                key,
                f"an integer >= {low}" if math.isinf(high) else f"an integer in [{low}, {high}]",
            )
        return v

    def boolean(self, key: str) -> bool:
        if not isinstance(self.value[key], bool):
            self.fail(key, "true or false")
        return self.value[key]

    def numbers(self, key: str, integers: bool = False) -> list:
        v = self.value[key]
        if not (isinstance(v, list) and all(_finite_number(x, integers) for x in v)):
            self.fail(key, f"a list of finite {'integers' if integers else 'numbers'}")
        return v

    def child(self, key: str) -> _Fields:
        return _Fields(self.source, self.name(key), self.value[key])


#: the top-level fields of ``baselines.json`` and those of each tuned baseline
_TOP_FIELDS = (
    "format", "risk_aversion", "tuning_seed", "tuning_episodes", "episode_steps", "tuning_part",
    "tuning_env_steps", "calibration", "baselines",
)  # fmt: skip
_TUNED_FIELDS = (
    "params", "utility", "axes", "grid", "utilities", "widened", "edges", "env_steps",
)  # fmt: skip


def check_choices(config: MarketMakingConfig, choices, source: str = "baselines.json") -> None:
    """Refuse ``choices`` (a parsed ``baselines.json``) unless it is the layout
    :func:`tune_baselines` writes (the module docstring) with every value in its range on the
    market ``config``: gamma > 0, a half-width in [0, max_offset], a cap in [1, max_inventory],
    a size in [0, :func:`max_size`], a calibration with A, k > 0 and sigma >= 0, all finite;
    a :class:`~agents.common.RunError` naming ``source`` and the field (a missing one, one of
    the wrong type or out of range, or one the layout has not)."""
    if not isinstance(choices, dict) or choices.get("format") != FORMAT:
        found = choices.get("format") if isinstance(choices, dict) else None
        raise RunError(
            f"{source}: format {found!r}, not {FORMAT}: written before the baselines were tuned "
            "over their quote size (format 1) or the fixed spread over an inventory cap "
            "(format 2); run fastlob eval again"
        )
    top = _Fields(source, "", choices)
    top.keys(_TOP_FIELDS)
    top.real("risk_aversion", 0.0)
    for key in ("tuning_seed", "tuning_env_steps"):
        top.integer(key, 0)
    for key in ("tuning_episodes", "episode_steps"):
        top.integer(key, 1)
    if choices["tuning_part"] is not None and choices["tuning_part"] not in PARTS:
        top.fail("tuning_part", f"null or one of {', '.join(PARTS)}")
    calibration = top.child("calibration")
    calibration.keys(("intensity", "decay", "sigma", "env_steps"))
    calibration.real("intensity", 0.0, low_open=True)
    calibration.real("decay", 0.0, low_open=True)
    calibration.real("sigma", 0.0)
    calibration.integer("env_steps", 0)
    baselines = top.child("baselines")
    baselines.keys(BASELINES)
    sizes = max_size(config)
    for name in BASELINES:
        row = baselines.child(name)
        if name not in TUNED_AXES:
            row.keys(("params", "tuned"))
            if row.boolean("tuned"):
                row.fail("tuned", "false (random quotes are not tuned)")
            params = row.child("params")
            params.keys(("low", "high", "size"))
            low = params.real("low", 0.0, config.max_offset)
            params.real("high", low, config.max_offset)
            params.integer("size", 0, sizes)
            continue
        axes = (*TUNED_AXES[name], "size")
        row.keys(_TUNED_FIELDS)
        params = row.child("params")
        params.keys(axes)
        for axis in axes:
            if axis == "gamma":
                params.real(axis, 0.0, low_open=True)
            elif axis == "half_width":
                params.real(axis, 0.0, config.max_offset)
            elif axis == "cap":
                params.integer(axis, 1, config.max_inventory)
            else:
                params.integer(axis, 0, sizes)
        row.real("utility")
        row.integer("env_steps", 0)
        if row.value["axes"] != list(axes):
            row.fail("axes", str(list(axes)))
        for key in ("grid", "widened"):
            lists = row.child(key)
            lists.keys(axes)
            for axis in axes:
                lists.numbers(axis, integers=axis in ("cap", "size"))
        if not all(row.value["grid"][axis] for axis in axes):
            row.fail("grid", "non-empty lists of the values searched")
        grid = row.child("grid")
        for axis in axes:  # every value searched in its axis's range, the choice among them
            for value in grid.value[axis]:
                if not _in_range(axis, value, config):
                    grid.fail(axis, f"values in the range of {axis} on this market")
            if params.value[axis] not in grid.value[axis]:
                params.fail(axis, f"one of the values searched (grid.{axis})")
        shape = [len(row.value["grid"][axis]) for axis in axes]
        if not _table_fits(row.value["utilities"], shape):
            row.fail(
                "utilities",
                f"a {' x '.join(map(str, shape))} table of finite numbers "
                f"({' x '.join(f'grid.{a}' for a in axes)})",
            )
        edges = row.child("edges")
        edges.keys(axes)
        for key in axes:
            flags = edges.child(key)
            flags.keys(("on_edge", "at_bound"))
            flags.boolean("on_edge")
            flags.boolean("at_bound")


def _in_range(axis: str, value: float, config: MarketMakingConfig) -> bool:
    """``value`` lies in the range :func:`check_choices` allows ``axis`` on ``config``."""
    if axis == "gamma":
        return value > 0.0
    if axis == "half_width":
        return 0.0 <= value <= config.max_offset
    if axis == "cap":
        return 1 <= value <= config.max_inventory
    return 0 <= value <= max_size(config)


def _table_fits(table, shape: list[int]) -> bool:
    """``table`` is nested lists of ``shape`` holding finite numbers."""
    if not shape:
        return _finite_number(table)
    return (
        isinstance(table, list)
        and len(table) == shape[0]
        and all(_table_fits(row, shape[1:]) for row in table)
    )


def tuned_policies(
    config: MarketMakingConfig, choices: dict, source: str = "baselines.json"
) -> dict:
    """The baselines of :func:`tune_baselines` rebuilt from its ``choices`` (as saved in a
    run's ``baselines.json``): {name: policy} for every name of :data:`BASELINES`.

    A :class:`~agents.common.RunError` naming ``source`` and the field if ``choices`` is not
    of this layout (:func:`check_choices`), e.g. a file written before the baselines were tuned
    over their quote size (rather than defaulting the size), or a value out of its range."""
    check_choices(config, choices, source)
    c = choices["calibration"]
    empty = np.empty(0)
    cal = Calibration(
        float(c["intensity"]), float(c["decay"]), float(c["sigma"]), empty, empty, empty
    )
    return {
        name: baseline_policy(name, config, cal, choices["baselines"][name]["params"])
        for name in BASELINES
    }


def read_choices(config: MarketMakingConfig, path) -> dict:
    """A run's ``baselines.json``, read and checked (:func:`check_choices`); a
    :class:`~agents.common.RunError` naming the file if it is missing, not JSON or not that
    layout."""
    path = Path(path)
    try:
        choices = read_json_file(path, "baselines file")
    except FileNotFoundError:
        raise RunError(f"{path}: missing (run fastlob eval on the run first)") from None
    except ValueError as err:
        raise RunError(str(err)) from None
    check_choices(config, choices, str(path))
    return choices


def format_baselines(choices: dict) -> str:
    """The tuned choices as plain text: a line per baseline (its parameters, its utility on the
    tuning episodes, the axes whose choice sits on an edge) and the tuning budget."""
    lines = []
    for name, row in choices["baselines"].items():
        params = ", ".join(f"{k}={v:g}" for k, v in row["params"].items())
        if not row.get("tuned", True):
            lines.append(f"{name:<20}{params} (not tuned)")
            continue
        edges = [
            f"{axis} at its {'bound' if flags['at_bound'] else 'edge'}"
            for axis, flags in row["edges"].items()
            if flags["on_edge"]
        ]
        widened = [f"{axis} widened to {row['grid'][axis][0]:g}..{row['grid'][axis][-1]:g}"
                   for axis, added in row["widened"].items() if added]  # fmt: skip
        notes = "; ".join(edges + widened)
        lines.append(
            f"{name:<20}{params}  tuning utility {row['utility']:.3f}"
            + (f"  ({notes})" if notes else "")
        )
    part = f", {choices['tuning_part']} part" if choices.get("tuning_part") else ""
    lines.append(
        f"tuning budget: {choices['tuning_env_steps']:,} env-steps ({choices['tuning_episodes']} "
        f"episodes of {choices['episode_steps']} steps from seed {choices['tuning_seed']}{part}, "
        f"calibration {choices['calibration']['env_steps']:,} of them)"
    )
    return "\n".join(lines)
