"""The baselines as the evaluation tunes them: the touch quoter with an inventory cap, side-by-side
play on common episodes, the joint grid over quote size and each baseline's own parameter, its
widening at the edges, the tuning budget, and ``baselines.json``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fastlob import MarketMakingConfig, MarketMakingVectorEnv
from fastlob_agents import tuning
from fastlob_agents.baselines import (
    AvellanedaStoikov,
    FixedSpread,
    OrderBookQuotes,
    TouchQuotes,
)
from fastlob_agents.common import RunError
from fastlob_agents.evaluate import play
from fastlob_agents.tuning import (
    TUNED_AXES,
    play_side_by_side,
    tune_baselines,
    tuned_policies,
    utility,
)

CONFIG = MarketMakingConfig(episode_steps=16, warmup=5.0, max_quote_size=3)
EPISODES = 4
SEED = 11
RISK_AVERSION = 0.01


@pytest.fixture(scope="module")
def tuned():
    return tune_baselines(CONFIG, EPISODES, SEED, RISK_AVERSION)


# ---------------------------------------------------------------------------------------------
# the touch quoter
# ---------------------------------------------------------------------------------------------


def test_touch_quoter_reads_the_best_levels_and_withdraws_the_side_beyond_its_cap():
    q = np.arange(-3, 4, dtype=np.float64)
    obs = np.zeros((q.size, 31), np.float32)
    obs[:, 0] = q / 20.0
    obs[:, 10] = -1.5  # best bid 1.5 ticks below the mid
    obs[:, 20] = 0.5  # best ask half a tick above it
    actions = TouchQuotes(max_inventory=20.0, max_offset=10.0, quote_size=2.0, cap=2.0).act(obs)
    assert actions.dtype == np.float32 and actions.shape == (q.size, 5)
    assert (actions[:, 0] == 1.5).all() and (actions[:, 1] == 0.5).all()
    assert actions[:, 2].tolist() == [2, 2, 2, 2, 2, 0, 0]  # no bid once inventory >= 2
    assert actions[:, 3].tolist() == [0, 0, 2, 2, 2, 2, 2]  # no ask once inventory <= -2
    assert (actions[:, 4] == 0).all()
    # one cap and size per env row
    per_row = TouchQuotes(20.0, 10.0, quote_size=np.arange(1.0, 8.0), cap=np.full(7, 4.0))
    assert per_row.act(obs)[:, 2].tolist() == [1, 2, 3, 4, 5, 6, 7]
    # a touch beyond max_offset, or on the wrong side of the mid, is not joined
    obs[:, 10], obs[:, 20] = -12.0, -0.5
    far = TouchQuotes(20.0, 10.0, quote_size=1.0, cap=20.0).act(obs)
    assert (far[:, 2:4] == 0).all() and (np.abs(far[:, :2]) <= 10.0).all()


def test_touch_quoter_joins_exactly_the_books_best_prices_in_the_env():
    config = CONFIG.replace(episode_steps=40)
    env = MarketMakingVectorEnv(16, config=config, seed=3)
    obs, _ = env.reset(seed=3)
    policy = TouchQuotes.for_config(config, quote_size=1.0, cap=1.0)
    quoted = capped = 0
    for _ in range(30):
        actions = policy.act(obs)
        quotes = env.quotes_for(actions)
        best = env.depth(1)[:, 0]  # [ask_px, ask_qty, bid_px, bid_qty]
        inventory = env.inventory
        bid, ask = quotes["bid_size"] > 0, quotes["ask_size"] > 0
        np.testing.assert_array_equal(quotes["bid_price"][bid], best[bid, 2])
        np.testing.assert_array_equal(quotes["ask_price"][ask], best[ask, 0])
        assert not bid[inventory >= 1].any() and not ask[inventory <= -1].any()
        assert (bid == (inventory < 1)).mean() > 0.9  # it quotes wherever its cap allows
        quoted += int(bid.sum() + ask.sum())
        capped += int((np.abs(inventory) >= 1).sum())
        obs, *_ = env.step(actions)
    assert quoted > 100 and capped > 20  # both rules were exercised


# ---------------------------------------------------------------------------------------------
# side-by-side play
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("market", ["simulated", "historical"])
def test_side_by_side_play_gives_every_policy_its_own_plays_episodes_bit_for_bit(market, tmp_path):
    config = CONFIG
    if market == "historical":  # a LOBSTER day written from the simulator
        from fastlob.data.lobster import write_day
        from fastlob.data.simulated import simulate_day

        day = simulate_day(MarketMakingConfig(flow_levels=5), 120.0, seed=1, levels=5, warmup=5)
        files = tuple(str(f) for f in write_day(day, tmp_path / "data"))
        config = CONFIG.replace(episode_steps=8, lobster=files, lobster_lot=100)
    policies = [
        OrderBookQuotes.for_config(FixedSpread(half_spread=1.0), config, quote_size=1.0),
        TouchQuotes.for_config(config, quote_size=2.0, cap=2.0),
        OrderBookQuotes.for_config(
            AvellanedaStoikov(gamma=0.1, sigma=1.0, k=1.5), config, quote_size=3.0
        ),
    ]
    # two policies per env: a full play, then one of one policy
    results, env_steps = play_side_by_side(policies, config, EPISODES, SEED, max_envs=8)
    assert env_steps == [EPISODES * config.episode_steps] * 3
    for policy, result in zip(policies, results, strict=True):
        alone = play(policy, config, EPISODES, SEED)
        assert result.keys() == alone.keys()
        for key in alone:
            np.testing.assert_array_equal(result[key], alone[key], err_msg=key)
    assert len({float(r["liquidation_pnl"].sum()) for r in results}) == 3  # not one policy


def test_a_capped_fixed_spread_withdraws_the_side_that_would_carry_it_past_its_cap():
    q = np.arange(-3, 4, dtype=np.float64)
    obs = np.zeros((q.size, 31), np.float32)
    obs[:, 0] = q / 20.0
    capped = OrderBookQuotes(FixedSpread(half_spread=1.5), 20.0, 200.0, 10.0, 2.0, cap=2.0)
    actions = capped.act(obs)
    assert (actions[:, 0] == 1.5).all() and (actions[:, 1] == 1.5).all()
    assert actions[:, 2].tolist() == [2, 2, 2, 2, 2, 0, 0]  # no bid once inventory >= 2
    assert actions[:, 3].tolist() == [0, 0, 2, 2, 2, 2, 2]  # no ask once inventory <= -2
    uncapped = OrderBookQuotes(FixedSpread(half_spread=1.5), 20.0, 200.0, 10.0, 2.0)
    assert (uncapped.act(obs)[:, 2:4] == 2.0).all()
    with pytest.raises(ValueError, match="cap must be >= 0"):
        OrderBookQuotes(FixedSpread(), 20.0, 200.0, 10.0, cap=-1.0)


# ---------------------------------------------------------------------------------------------
# the search
# ---------------------------------------------------------------------------------------------


def test_each_choice_is_the_best_of_its_grid_on_the_tuning_episodes(tuned):
    rows = tuned.choices["baselines"]
    for name, axes in TUNED_AXES.items():
        row = rows[name]
        grid, table = row["grid"], np.asarray(row["utilities"])
        assert row["axes"] == [*axes, "size"]
        assert grid["size"] == [0, 1, 2, 3]
        assert table.shape == (*(len(grid[a]) for a in axes), 4)
        assert (table[..., 0] == 0.0).all()  # size 0 stands aside
        best = table[..., 1:].max()
        if best > 0:
            index = np.unravel_index(np.argmax(table[..., 1:]), table[..., 1:].shape)
            chosen = {a: grid[a][i] for a, i in zip(axes, index[:-1], strict=True)}
            assert row["params"] == {**chosen, "size": int(index[-1]) + 1}
            assert row["utility"] == best
        else:
            assert row["params"]["size"] == 0 and row["utility"] == 0.0
    # a few candidates played again, alone, built by hand: the same utilities
    fixed, touch = rows["fixed_spread"], rows["touch"]
    widths, caps = fixed["grid"]["half_width"], fixed["grid"]["cap"]
    for w, c, s in ((widths[0], caps[-1], 1), (1.5, 2, 3), (0.5, 1, 2)):
        by_hand = FixedSpread(half_spread=w)
        policy = OrderBookQuotes.for_config(by_hand, CONFIG, quote_size=s, cap=c)
        alone = utility(play(policy, CONFIG, EPISODES, SEED)["liquidation_pnl"], RISK_AVERSION)
        assert alone == fixed["utilities"][widths.index(w)][caps.index(c)][s]
    for c, s in ((1, 2), (touch["grid"]["cap"][-1], 1)):
        policy = TouchQuotes.for_config(CONFIG, quote_size=s, cap=c)
        alone = utility(play(policy, CONFIG, EPISODES, SEED)["liquidation_pnl"], RISK_AVERSION)
        assert alone == touch["utilities"][touch["grid"]["cap"].index(c)][s]
    # the cap matters: the capped candidates do not all score as the uncapped one
    assert len({round(u, 9) for u in np.asarray(fixed["utilities"])[0, :, 1]}) > 1


def test_the_grids_span_each_axis_and_the_budget_counts_every_env_step(tuned):
    choices = tuned.choices
    rows = choices["baselines"]
    assert rows["fixed_spread"]["grid"]["half_width"][0] == 0.0
    assert rows["fixed_spread"]["grid"]["half_width"][-1] == CONFIG.max_offset
    for name in ("touch", "fixed_spread"):
        assert rows[name]["grid"]["cap"][0] == 1
        assert rows[name]["grid"]["cap"][-1] == CONFIG.max_inventory
    gammas = rows["glft"]["grid"]["gamma"]
    assert gammas[0] <= 1e-4 and gammas[-1] >= 1.0
    calibration = 7 * 32 * tuning.CALIBRATION_STEPS  # offsets x envs x steps
    assert choices["calibration"]["env_steps"] == calibration
    played = 0
    for name, axes in TUNED_AXES.items():
        quoting = int(np.prod([len(rows[name]["grid"][a]) for a in axes]))
        quoting *= len(rows[name]["grid"]["size"]) - 1
        assert rows[name]["env_steps"] == quoting * EPISODES * CONFIG.episode_steps
        played += rows[name]["env_steps"]
    assert choices["tuning_env_steps"] == calibration + played
    assert (choices["tuning_seed"], choices["tuning_episodes"]) == (SEED, EPISODES)
    assert choices["risk_aversion"] == RISK_AVERSION and choices["tuning_part"] is None


def test_a_choice_on_the_edge_of_its_grid_widens_the_grid():
    # every value of these grids is an edge, and none is its axis's hard bound
    start = {
        "avellaneda_stoikov": {"gamma": [0.01, 0.03]},
        "glft": {"gamma": [0.1]},
        "fixed_spread": {"half_width": [1.0, 1.5], "cap": [5]},
        "touch": {"cap": [5]},
    }
    tuned = tune_baselines(CONFIG, EPISODES, SEED, RISK_AVERSION, grids=start)
    rows = tuned.choices["baselines"]
    for name, axes in start.items():
        row = rows[name]
        for axis, values in axes.items():
            assert row["widened"][axis], (name, axis)
            assert row["grid"][axis] == sorted(values + row["widened"][axis])
            chosen = row["params"][axis]
            flags = row["edges"][axis]
            assert flags["on_edge"] == (chosen in (row["grid"][axis][0], row["grid"][axis][-1]))
            assert not flags["on_edge"] or flags["at_bound"], name  # widened until interior
        # every combination of the widened axes was played, once
        combinations = int(np.prod([len(row["grid"][a]) for a in TUNED_AXES[name]])) * 3
        assert row["env_steps"] == combinations * EPISODES * CONFIG.episode_steps, name
    for gamma in rows["avellaneda_stoikov"]["widened"]["gamma"]:
        assert gamma in (0.003, 0.001, 0.0003, 0.0001, 3e-5, 1e-5, 3e-6, 1e-6, 0.1, 0.3, 1.0, 3.0)


def test_an_edge_that_is_its_axis_bound_is_reported_and_not_widened(monkeypatch):
    monkeypatch.setattr(tuning, "GAMMA_STEPS", (-4, -3))  # 0.01, 0.03
    monkeypatch.setattr(tuning, "GAMMA_BOUNDS", (-4, -3))  # and no further
    rows = tune_baselines(CONFIG, EPISODES, SEED, RISK_AVERSION).choices["baselines"]
    for name in ("avellaneda_stoikov", "glft"):
        assert rows[name]["grid"]["gamma"] == [0.01, 0.03] and rows[name]["widened"]["gamma"] == []
        assert rows[name]["edges"]["gamma"] == {"on_edge": True, "at_bound": True}
    size = rows["fixed_spread"]["params"]["size"]
    assert rows["fixed_spread"]["edges"]["size"]["on_edge"] == (size in (0, 3))
    assert rows["fixed_spread"]["edges"]["size"]["at_bound"] == (size in (0, 3))


def test_the_size_is_tuned_bigger_quotes_win_where_fills_pay_and_none_where_they_cost():
    paying = CONFIG.replace(maker_fee=-0.001)  # a 10-currency rebate per lot filled
    grids = {"avellaneda_stoikov": {"gamma": [0.01]}, "glft": {"gamma": [0.01]},
             "fixed_spread": {"cap": [20]}, "touch": {"cap": [20]}}  # fmt: skip
    rows = tune_baselines(paying, EPISODES, SEED, RISK_AVERSION, grids=grids).choices
    fixed = rows["baselines"]["fixed_spread"]
    assert fixed["params"]["size"] == 3 and fixed["edges"]["size"] == {
        "on_edge": True,
        "at_bound": True,
    }
    row = fixed["grid"]["half_width"].index(fixed["params"]["half_width"])
    assert fixed["utilities"][row][0][1] < fixed["utility"]  # one lot earns less
    assert rows["baselines"]["touch"]["params"]["size"] > 1
    costly = CONFIG.replace(maker_fee=0.005)  # a 50-currency fee per lot filled
    tuned = tune_baselines(costly, EPISODES, SEED, RISK_AVERSION, grids=grids)
    obs, _ = MarketMakingVectorEnv(4, config=costly, seed=1).reset(seed=1)
    for name in TUNED_AXES:
        assert tuned.choices["baselines"][name]["params"]["size"] == 0, name
        assert tuned.choices["baselines"][name]["utility"] == 0.0
        assert (tuned.policies[name].act(obs)[:, 2:4] == 0).all()  # it stands aside


# ---------------------------------------------------------------------------------------------
# baselines.json
# ---------------------------------------------------------------------------------------------


def test_baselines_json_round_trips_and_an_old_one_is_refused_naming_the_field(tuned):
    saved = json.loads(json.dumps(tuned.choices))
    rebuilt = tuned_policies(CONFIG, saved)
    assert set(rebuilt) == {*TUNED_AXES, "random"} == set(tuned.policies)
    env = MarketMakingVectorEnv(8, config=CONFIG, seed=5)
    obs, _ = env.reset(seed=5)
    for _ in range(3):
        obs, *_ = env.step(rebuilt["fixed_spread"].act(obs))
    for name, policy in rebuilt.items():
        np.testing.assert_array_equal(policy.act(obs), tuned.policies[name].act(obs), name)
    for name in TUNED_AXES:
        assert rebuilt[name].act(obs)[:, 2:4].max() == saved["baselines"][name]["params"]["size"]
    old = {"avellaneda_stoikov_gamma": 0.01, "glft_gamma": 0.1, "fixed_spread_half_width": 1.0,
           "intensity": 1.0, "decay": 1.5, "sigma": 0.8}  # fmt: skip
    with pytest.raises(RunError, match=r"run/baselines\.json: format None.*quote size"):
        tuned_policies(CONFIG, old, "run/baselines.json")
    del saved["baselines"]["touch"]["params"]["size"]
    with pytest.raises(RunError, match=r"baselines\.json: lacks baselines\.touch\.params\.size"):
        tuned_policies(CONFIG, saved)


def _changed(choices: dict, path: str, value) -> dict:
    """A deep copy of ``choices`` with the dotted ``path`` set to ``value`` (deleted for
    ``_DELETE``)."""
    out = json.loads(json.dumps(choices))
    *parents, last = path.split(".")
    node = out
    for key in parents:
        node = node[key]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return out


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "words"),
    [
        ("baselines.avellaneda_stoikov.params.gamma", float("nan"), "params.gamma must be"),
        ("baselines.avellaneda_stoikov.params.gamma", "0.1", "params.gamma must be"),
        ("baselines.glft.params.gamma", 0, "baselines.glft.params.gamma must be a finite"),
        ("baselines.avellaneda_stoikov.params.gamma", -1.0, "params.gamma must be"),
        ("baselines.fixed_spread.params.size", -1, r"size must be an integer in \[0, 3\]"),
        ("baselines.fixed_spread.params.size", 1.5, r"size must be an integer in \[0, 3\]"),
        ("baselines.fixed_spread.params.size", True, r"size must be an integer in \[0, 3\]"),
        ("baselines.touch.params.size", 99, r"size must be an integer in \[0, 3\]"),
        ("baselines.touch.params.cap", -3, r"touch.params.cap must be an integer in \[1, 20\]"),
        ("baselines.touch.params.cap", float("nan"), "touch.params.cap"),
        ("baselines.fixed_spread.params.cap", 0, r"fixed_spread.params.cap must be .*\[1, 20\]"),
        ("baselines.fixed_spread.params", {"half_width": 1.0, "size": 1}, "lacks .*params.cap"),
        ("baselines.fixed_spread.utilities", [[1.0]], "utilities must be a .* x .* x 4 table"),
        ("baselines.fixed_spread.axes", ["half_width", "size"], "axes must be"),
        ("baselines.fixed_spread.utility", 10**400, "fixed_spread.utility must be a finite"),
        ("risk_aversion", 10**400, "risk_aversion must be a finite"),
        ("baselines.fixed_spread.grid.cap", [0, 1, 2], "grid.cap must be values in the range"),
        ("baselines.touch.grid.cap", [1, 10**6], "touch.grid.cap must be values in the range"),
        ("baselines.fixed_spread.params.half_width", 0.7, "half_width must be one of the values"),
        ("baselines.fixed_spread.params.half_width", -2.0, r"half_width must be .*\[0, 10\]"),
        ("baselines.fixed_spread.params.half_width", float("inf"), "half_width must be"),
        ("baselines.random.params.high", -1.0, "random.params.high"),
        ("calibration.sigma", float("nan"), "calibration.sigma"),
        ("calibration.decay", -1.0, "calibration.decay must be a finite number > 0"),
        ("calibration", "x", "calibration must be an object"),
        ("baselines.glft.params", [1, 2], "baselines.glft.params must be an object"),
        ("baselines.glft.utility", "x", "baselines.glft.utility"),
        ("baselines.touch", _DELETE, "lacks baselines.touch"),
        ("baselines.glft.edges", _DELETE, "lacks baselines.glft.edges"),
        ("tuning_env_steps", _DELETE, "lacks tuning_env_steps"),
        ("extra", 1, "has no field extra"),
        ("baselines.foo", {"params": {}}, "baselines has no field foo"),
        ("baselines.avellaneda_stoikov.params.half_width", 3.0, "params has no field half_w"),
    ],
)
def test_a_baselines_json_out_of_its_layout_or_range_is_refused_naming_the_field(
    tuned, path, value, words
):
    # each of these was accepted (NaN quotes, clipped sizes, caps that never quote, a field
    # ignored) or raised an error that named neither the file nor the field
    with pytest.raises(RunError, match=r"run/baselines\.json: .*" + words):
        tuned_policies(CONFIG, _changed(tuned.choices, path, value), "run/baselines.json")


def test_read_choices_names_a_file_that_is_not_json(tuned, tmp_path):
    path = tmp_path / "baselines.json"
    text = json.dumps(tuned.choices)
    for broken in (text[: len(text) // 2], "", "\xff\xfe"):
        path.write_bytes(broken.encode("latin-1") if broken == "\xff\xfe" else broken.encode())
        with pytest.raises(RunError, match=f"{path}: not (valid JSON|UTF-8 text)"):
            tuning.read_choices(CONFIG, path)
    path.write_text(text)
    assert tuning.read_choices(CONFIG, path) == json.loads(text)


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [({"episodes": 1}, "episodes"), ({"risk_aversion": float("nan")}, "risk_aversion"),
     ({"seed": 2**63 - 1}, "seed")],
)  # fmt: skip
def test_tuning_refuses_one_episode_and_bad_arguments_before_calibrating(kwargs, word):
    # one episode has no variance: the risk aversion had no effect on the choice
    args = {"config": CONFIG, "episodes": EPISODES, "seed": SEED, "risk_aversion": 0.01, **kwargs}
    with pytest.raises(ValueError, match=word):
        tune_baselines(**args)


@pytest.mark.parametrize(
    ("kwargs", "error", "word"),
    [
        ({"quote_size": -1.0}, ValueError, "quote_size must be finite and >= 0"),
        ({"quote_size": float("nan")}, ValueError, "quote_size"),
        ({"quote_size": "2"}, TypeError, "quote_size"),
        ({"cap": float("nan")}, ValueError, "cap must be >= 0"),
        ({"cap": -2.0}, ValueError, "cap must be >= 0"),
        ({"max_inventory": 0.0}, ValueError, "max_inventory"),
        ({"max_offset": float("nan")}, ValueError, "max_offset"),
    ],
)
def test_the_touch_quoter_refuses_sizes_and_caps_out_of_range(kwargs, error, word):
    # each was accepted: NaN or negative sizes reached the env, a NaN or negative cap never quoted
    args = {"max_inventory": 20.0, "max_offset": 10.0, **kwargs}
    with pytest.raises(error, match=word):
        TouchQuotes(**args)


def test_the_touch_quoter_names_an_observation_it_cannot_read():
    import torch

    policy = TouchQuotes(max_inventory=20.0, max_offset=10.0, quote_size=1.0, cap=5.0)
    obs = np.zeros((3, 31), np.float32)
    obs[:, 10], obs[:, 20] = -0.5, 0.5
    assert (policy.act(torch.from_numpy(obs)) == policy.act(obs)).all()
    obs[1, 10] = np.nan  # a NaN offset went to the env with size 0
    with pytest.raises(ValueError, match=r"obs\[1, 10\] is nan"):
        policy.act(obs)
    with pytest.raises(ValueError, match=r"obs must have shape \(N, 31\)"):
        policy.act(obs[0])
    with pytest.raises(ValueError, match="quote_size holds 2 values"):
        TouchQuotes(20.0, 10.0, quote_size=np.ones(2)).act(np.zeros((3, 31), np.float32))


# ---------------------------------------------------------------------------------------------
# the paired margin over the best baseline
# ---------------------------------------------------------------------------------------------


def test_the_utility_margin_is_paired_over_the_same_episodes():
    from fastlob_agents.evaluate import utility_margin

    rng = np.random.default_rng(3)
    luck = rng.normal(0.0, 40.0, 256)  # what the episodes' draws give every policy alike
    better = luck + 2.0 + rng.normal(0.0, 1.0, 256)
    worse = luck + rng.normal(0.0, 1.0, 256)
    margin = utility_margin(better, worse, 0.0)
    assert margin["mean"] == pytest.approx(np.mean(better) - np.mean(worse))
    assert 0.0 < margin["ci_low"] < margin["mean"] < margin["ci_high"]
    assert margin["ci_high"] - margin["ci_low"] < 0.5  # the luck is paired out
    # unpaired, the same means are indistinguishable: each one's interval is ~10 wide
    assert 1.96 * 2 * np.std(better) / np.sqrt(256) > 5.0
    # a constant shift is exactly that shift in every resample (variance unchanged)
    shifted = utility_margin(worse + 3.0, worse, 0.01)
    assert shifted["mean"] == pytest.approx(3.0)
    assert shifted["ci_low"] == pytest.approx(3.0) and shifted["ci_high"] == pytest.approx(3.0)
    with pytest.raises(ValueError, match="alike"):
        utility_margin(better, worse[:10], 0.0)


def test_each_rows_margin_is_against_the_best_baseline_other_than_itself():
    from fastlob_agents.evaluate import add_margins

    pnl = {"trained": [5.0, 7.0], "a": [1.0, 3.0], "b": [4.0, 6.0]}
    plays = {k: {"liquidation_pnl": np.asarray(v)} for k, v in pnl.items()}
    table = {k: {"utility": {"mean": float(np.mean(v))}} for k, v in pnl.items()}
    add_margins(table, plays, ["a", "b"], 0.0)
    assert table["trained"]["utility_margin"]["mean"] == pytest.approx(1.0)  # against b
    assert table["b"]["utility_margin"]["mean"] == pytest.approx(3.0)  # b against a
    assert table["a"]["utility_margin"]["mean"] == pytest.approx(-3.0)  # a against b


def test_the_fair_mark_is_in_the_table_only_where_the_market_has_a_fair_value():
    from fastlob_agents.evaluate import METRICS, format_table, summarize, table_metrics

    episodes = {
        key: np.zeros(4)
        for key in (
            "pnl_step_mean", "pnl_step_std", "inventory_std", "fill_ratio", "fill_probability",
            "spread_captured", "adverse_rate", "max_drawdown", "liquidation_beyond_book",
        )
    }  # fmt: skip
    episodes |= {"liquidation_pnl": np.array([1.0, 2, 3, 4]), "pnl": np.array([2.0, 3, 4, 5])}
    plain = summarize(episodes, 0.0)
    assert "utility_fair" not in plain and "pnl_fair" not in plain
    fair = summarize(episodes | {"fair_pnl": np.array([4.0, 4, 6, 6])}, 0.5)
    assert fair["utility_fair"]["mean"] == pytest.approx(5.0 - 0.25 * 1.0)  # mean - g/2 var
    assert fair["pnl_fair"]["mean"] == pytest.approx(5.0)
    for row in (plain, fair):
        row["utility_margin"] = {"mean": 0.0, "ci_low": 0.0, "ci_high": 0.0}
    assert table_metrics({"a": plain}) == METRICS
    order = table_metrics({"a": fair})
    assert order[order.index("pnl_mid") + 1 : order.index("pnl_mid") + 3] == (
        "utility_fair",
        "pnl_fair",
    )
    assert "utility_fair" in format_table({"a": fair}) and "utility_fair" not in format_table(
        {"a": plain}
    )
    # one row without the fair mark: no row shows it
    assert table_metrics({"a": fair, "b": plain}) == METRICS
