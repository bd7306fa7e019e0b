"""The historical market: with no quotes every env's book is the file's row after every step
(the exact replay), with quotes the kernel agrees with the plain-Python reference on every fill,
queue position and divergence; determinism, reset_mask, the Gymnasium contract, and named
errors for bad data and bad windows."""

from __future__ import annotations

from pathlib import Path

import gymnasium
import numba
import numpy as np
import pytest
from reference_as import seed_state
from reference_historical import COUNTERS, ReferenceHistorical
from reference_mm import METRICS
from support import LOBSTER_DIR, LOBSTER_MESSAGES, LOBSTER_ORDERBOOK, states_equal

from fastlob import HistoricalMarket, MarketMakingConfig, MarketMakingVectorEnv
from fastlob._kernels import mm_layout as M
from fastlob.data.lobster import LobsterDay, LobsterFormatError, write_day
from fastlob.data.simulated import simulate_day
from fastlob.env import DIVERGENCE_COUNTERS

AAPL = (LOBSTER_MESSAGES, LOBSTER_ORDERBOOK)
ABSENT = f"LOBSTER sample not found in {LOBSTER_DIR} (set FASTLOB_LOBSTER_DIR)"
needs_aapl = pytest.mark.skipif(not AAPL[0].is_file(), reason=ABSENT)

#: a simulated market exported as LOBSTER (5 levels): small, fast, and a file the replay matches
SIMULATED = MarketMakingConfig(flow_levels=6, limit_sizes=(0.5, 0.3, 0.2), dt=1.0)
#: the envs' market on the simulated file: 0.5 s steps, 20 s episodes
ON_SIMULATED = MarketMakingConfig(
    dt=0.5, latency=0.1, episode_steps=40, max_quote_size=4, max_inventory=6, max_offset=3.0,
    markout_steps=3, train_fraction=0.6,
)  # fmt: skip
#: on AAPL (49 s of data, shares): 0.2 s steps, 8 s episodes; offsets that reach through its
#: spread (about 22 ticks)
ON_AAPL = MarketMakingConfig(
    dt=0.2, latency=0.02, episode_steps=40, max_quote_size=300, max_inventory=600,
    max_offset=16.0, depth_scale=100.0, markout_steps=5, train_fraction=0.5,
)  # fmt: skip


@pytest.fixture(scope="module")
def simulated_files(tmp_path_factory):
    day = simulate_day(SIMULATED, 240.0, seed=3, levels=5, warmup=20.0)
    return write_day(day, tmp_path_factory.mktemp("sim"), ticker="SIM")


@pytest.fixture(scope="module")
def simulated(simulated_files):
    return HistoricalMarket(*simulated_files, train_fraction=0.6)


@pytest.fixture(scope="module")
def aapl():
    if not AAPL[0].is_file():
        pytest.skip(ABSENT)
    return HistoricalMarket(*AAPL, train_fraction=0.5)


def file_row(market, row):
    """The orderbook file's row as written (prices in the file's units, an empty level 0, 0)."""
    out = market.data.rows[row].copy()
    out[:, [0, 2]] *= market.tick_units
    out[:, [1, 3]] *= market.lot_size
    out[:, [0, 2]] = np.where(out[:, [1, 3]] > 0, out[:, [0, 2]], 0)
    return out


def never_quote(num_envs):
    return np.tile(np.float32([1, 1, 0, 0, 0]), (num_envs, 1))


@pytest.mark.parametrize("which", ["simulated", pytest.param("aapl", marks=needs_aapl)])
@pytest.mark.parametrize("part", ["train", "eval"])
def test_without_quotes_every_book_is_the_files_row_after_every_step(which, part, request):
    market = request.getfixturevalue(which)
    config = (ON_SIMULATED if which == "simulated" else ON_AAPL).replace(lobster_part=part)
    env = MarketMakingVectorEnv(6, config=config, market=market, seed=7)
    _, info = env.reset()
    assert (env.data_row >= 0).all()
    first, stop = market.part_rows(part)
    starts = set()
    for _ in range(2 * config.episode_steps + 1):  # two windows per env (autoreset)
        _, _, _, _, info = env.step(never_quote(6))
        depth = env.depth(market.levels)
        for n in range(6):
            row = int(info["data_row"][n])
            assert first <= row < stop
            assert np.array_equal(depth[n], file_row(market, row)), (n, row)
        starts.update(env.hist.window_start.tolist())
    assert len(starts) >= 12  # each env drew its own windows
    assert (info["exec_missing_qty"] == 0).all() and (info["cancel_missing_qty"] == 0).all()
    assert (info["rejected_messages"] == 0).all()


def reference_envs(env):
    return [
        ReferenceHistorical(
            env.params,
            env.book_params,
            seed_state(env._seed, n),
            env.market.data,
            env.hist_params,
        )
        for n in range(env.num_envs)
    ]


def quoting_actions(rng, env, steps):
    """Quotes at and near the touch (fills as maker), some through it (taker fills: the
    largest offset through the mid the space allows), zero sizes, sizes beyond the position
    limit, repeated actions (queue priority kept)."""
    n = env.num_envs
    high = env.single_action_space.high
    through = -float(high[0])
    actions = []
    for _ in range(steps):
        a = np.zeros((n, M.ACT_DIM), np.float32)
        offsets = [through, -1.5, 0.0, 0.5, 1.0, 2.0]
        a[:, :2] = rng.choice(offsets, size=(n, 2), p=[0.1, 0.1, 0.25, 0.25, 0.2, 0.1])
        a[:, 2:4] = rng.uniform(0, high[2] * 1.2, size=(n, 2)) * (rng.random((n, 2)) > 0.1)
        if actions and rng.random() < 0.5:
            a = actions[-1].copy()
        actions.append(a)
    return actions


@pytest.mark.parametrize("which", ["simulated", pytest.param("aapl", marks=needs_aapl)])
def test_with_quotes_the_kernel_is_the_reference(which, request):
    market = request.getfixturevalue(which)
    config = ON_SIMULATED if which == "simulated" else ON_AAPL
    env = MarketMakingVectorEnv(3, config=config, market=market, seed=11)
    refs = reference_envs(env)
    for ref in refs:
        log_fills(ref)
    obs, _ = env.reset()
    for n, ref in enumerate(refs):
        assert np.array_equal(obs[n], ref.reset())
    low, high = env.single_action_space.low, env.single_action_space.high
    seen = dict.fromkeys(("maker", "taker", "exec_missing_qty", "levels_taken"), 0.0)
    for actions in quoting_actions(np.random.default_rng(5), env, 2 * config.episode_steps + 2):
        obs, reward, terminated, truncated, info = env.step(actions)
        fills = env.step_fills()
        clipped = np.clip(actions, low, high)
        for n, ref in enumerate(refs):
            ref.fill_log.clear()
            r_obs, r_reward, r_term, r_trunc = ref.step(clipped[n])
            assert np.array_equal(obs[n], r_obs), (n, obs[n], r_obs)  # queue ahead: cols 4, 5
            assert reward[n] == r_reward and (terminated[n], truncated[n]) == (r_term, r_trunc)
            assert info["cash"][n] == ref.cash and info["inventory"][n] == ref.inventory
            assert env.state.metrics[n].tolist() == [ref.m[k] for k in METRICS]
            assert int(info["data_row"][n]) == ref.data_row
            assert env.hist.counters[n].tolist() == [ref.counters[k] for k in COUNTERS]
            mine = fills["env"] == n
            columns = (fills[k][mine].tolist() for k in ("side", "price", "qty", "taker"))
            assert list(zip(*columns, strict=True)) == ref.fill_log, (n, ref.fill_log)
            assert env.depth(market.levels)[n].tolist() == _ref_depth(ref, market)
        for key in ("maker", "taker"):
            seen[key] = max(seen[key], max(ref.m[key] for ref in refs))
        for key in ("exec_missing_qty", "levels_taken"):
            seen[key] = max(seen[key], max(ref.counters[key] for ref in refs))
    # the paths that matter were taken: maker and taker fills, and the file meeting a book the
    # quotes changed
    assert all(v > 0 for v in seen.values()), seen


def log_fills(ref):
    """Keep the reference's fills of the current step in ``ref.fill_log``: (side, price in
    ticks, lots, taker), as ``env.step_fills()`` gives them."""
    ref.fill_log = []
    fill = ref.agent_fill

    def agent_fill(sign, price, qty, fee_rate, mid2_before, markout_mid2, taker):
        ref.fill_log.append((sign, float(price), qty, taker))
        return fill(sign, price, qty, fee_rate, mid2_before, markout_mid2, taker)

    ref.agent_fill = agent_fill


def _ref_depth(ref, market):
    rows = ref.book.depth(market.levels)
    for row in rows:
        row[0] *= market.tick_units
        row[2] *= market.tick_units
    return rows


def rollout(market, seed, threads):
    numba.set_num_threads(threads)
    try:
        env = MarketMakingVectorEnv(70, config=ON_SIMULATED, market=market, seed=seed)
        env.reset()
        out = []
        for actions in quoting_actions(np.random.default_rng(1), env, 25):
            obs, reward, terminated, truncated, _ = env.step(actions)
            out.append((obs.copy(), reward.copy(), terminated.copy(), truncated.copy()))
        return out, env
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


def test_same_seed_same_bits_at_one_and_two_threads(simulated):
    (a, env_a), (b, env_b) = (rollout(simulated, 9, t) for t in (1, 2))
    for x, y in zip(a, b, strict=True):
        assert states_equal(x, y)
    assert states_equal(env_a.books, env_b.books) and states_equal(env_a.hist, env_b.hist)
    other, _ = rollout(simulated, 10, 2)
    assert not all(np.array_equal(x[0], y[0]) for x, y in zip(a, other, strict=True))


def test_reset_mask_and_episode_statistics(simulated):
    env = MarketMakingVectorEnv(4, config=ON_SIMULATED, market=simulated, seed=1)
    env.reset()
    for actions in quoting_actions(np.random.default_rng(0), env, 5):
        obs, *_ = env.step(actions)
    before, rows, starts = obs.copy(), env.data_row.copy(), env.hist.window_start.copy()
    mask = np.array([True, False, True, False])
    obs, _ = env.reset(options={"reset_mask": mask})
    assert np.array_equal(obs[~mask], before[~mask]) and (env.data_row[~mask] == rows[~mask]).all()
    assert (env.hist.window_start[mask] != starts[mask]).all()
    assert (env.state.step[mask] == 0).all() and (env.hist.counters[mask] == 0).all()
    for actions in quoting_actions(np.random.default_rng(0), env, ON_SIMULATED.episode_steps):
        info = env.step(actions)[-1]
        if "episode" in info:
            break
    ended = info["_episode"]
    assert ended.any() and set(DIVERGENCE_COUNTERS) <= set(info["episode"])
    assert (info["episode"]["messages"][ended] > 0).all()
    assert (info["episode"]["l"][ended] == ON_SIMULATED.episode_steps).all()


def test_the_data_is_held_once_and_the_windows_use_their_part_only(simulated):
    small = MarketMakingVectorEnv(2, config=ON_SIMULATED, market=simulated)
    large = MarketMakingVectorEnv(64, config=ON_SIMULATED, market=simulated)
    assert small.market.data.messages is large.market.data.messages
    assert small.bytes_per_env == large.bytes_per_env  # the data is not per env
    assert not simulated.data.messages.flags.writeable
    train_end = simulated.part_seconds("train")[1]
    ev = MarketMakingVectorEnv(
        16, config=ON_SIMULATED.replace(lobster_part="eval"), market=simulated
    )
    ev.reset(seed=3)
    assert (ev.hist.window_start > train_end).all()


@pytest.mark.filterwarnings("ignore:.*(symmetric and normalized|infinity).*")
def test_gymnasium_registration_and_checker(simulated, simulated_files):
    from gymnasium.utils.env_checker import check_env

    vec = gymnasium.make_vec(
        "fastlob/HistoricalMarketMaking-v0", num_envs=3, market=tuple(map(str, simulated_files)),
        config=ON_SIMULATED,
    )  # fmt: skip
    assert isinstance(vec, MarketMakingVectorEnv) and vec.market is not None
    wrapped = gymnasium.wrappers.vector.RecordEpisodeStatistics(vec, stats_key="stats")
    wrapped.reset(seed=0)
    for _ in range(ON_SIMULATED.episode_steps):
        _, _, terminated, _, info = wrapped.step(np.ones((3, 5), np.float32))
    assert terminated.all() and np.allclose(info["stats"]["r"], info["episode"]["r"], atol=1e-3)
    single = gymnasium.make(
        "fastlob/HistoricalMarketMaking-v0", market=simulated, config=ON_SIMULATED
    )
    check_env(single.unwrapped)
    single.reset(seed=1)
    _, _, _, _, info = single.step(single.action_space.sample())
    assert {"data_row", "data_time", "exec_missing_qty"} <= set(info)


def test_a_config_naming_the_files_loads_them_once_and_lots_divide_the_sizes(simulated_files):
    config = ON_SIMULATED.replace(lobster=tuple(map(str, simulated_files)))
    a = MarketMakingVectorEnv(2, config=config)
    b = MarketMakingVectorEnv(3, config=config)
    assert a.market is b.market and a.params.lot_size == 1.0
    assert MarketMakingConfig.from_json(config.to_json()) == config
    # the simulated file's sizes are lots of 100 shares: in lots, the books still are the file's
    lots = MarketMakingVectorEnv(3, config=config.replace(lobster_lot=100), seed=2)
    assert lots.market.lot_size == 100 and lots.params.lot_size == 100.0
    assert lots.market.data.messages[:, 2].max() * 100 == a.market.data.messages[:, 2].max()
    _, info = lots.reset()
    for _ in range(10):
        info = lots.step(never_quote(3))[-1]
        depth = lots.depth(lots.market.levels)
        for n in range(3):
            assert np.array_equal(depth[n], file_row(lots.market, int(info["data_row"][n])))
    with pytest.raises(LobsterFormatError, match=r"line 1.*size .* not a multiple of the lot"):
        HistoricalMarket(*simulated_files, lot_size=7)


def test_bad_windows_and_bad_data_get_named_errors(simulated, simulated_files, tmp_path):
    with pytest.raises(ValueError, match=r"'train' part .* shorter than one episode"):
        MarketMakingVectorEnv(
            2, config=ON_SIMULATED.replace(dt=10.0, latency=0.1), market=simulated
        )
    tiny = HistoricalMarket(*simulated_files, train_fraction=0.01)
    with pytest.raises(ValueError, match="train_fraction"):
        MarketMakingVectorEnv(2, config=ON_SIMULATED, market=tiny)
    with pytest.raises(ValueError, match=r"config.lobster_part"):
        MarketMakingVectorEnv(2, config=ON_SIMULATED.replace(lobster_part="test"), market=simulated)
    with pytest.raises(ValueError, match=r"config.lobster must be"):
        MarketMakingVectorEnv(2, config=ON_SIMULATED.replace(lobster=("only-one.csv",)))
    with pytest.raises(ValueError, match="not both"):
        config = ON_SIMULATED.replace(lobster=tuple(map(str, simulated_files)))
        MarketMakingVectorEnv(2, config=config, market=simulated)
    with pytest.raises(ValueError, match="train_fraction must be in"):
        HistoricalMarket(*simulated_files, train_fraction=1.0)
    with pytest.raises(ValueError, match="cannot read"):
        MarketMakingVectorEnv(2, config=ON_SIMULATED.replace(lobster=("a.csv", "b.csv")))
    message, orderbook = simulated_files
    broken = tmp_path / "message.csv"
    lines = Path(message).read_text().splitlines()
    fields = lines[3].split(",")
    fields[3] = "x"  # the size of line 4
    lines[3] = ",".join(fields)
    broken.write_text("\n".join(lines) + "\n")
    with pytest.raises(LobsterFormatError, match=r"line 4.*size"):
        HistoricalMarket(broken, orderbook)
    with pytest.raises(AttributeError, match="historical market"):
        MarketMakingVectorEnv(1).data_row  # noqa: B018


def test_tiled_windows_are_the_parts_non_overlapping_windows(simulated, simulated_files):
    """An evaluation's episodes on a historical market are independent: env n plays the
    (n mod k)-th of the held-out part's k non-overlapping windows, and an evaluation plays no
    more episodes than there are such windows."""
    from fastlob_agents.evaluate import held_out_market, independent_episodes

    config = ON_SIMULATED.replace(lobster_part="eval", lobster_windows="tiled")
    seconds = config.episode_steps * config.dt
    start, end = simulated.part_seconds("eval")
    k = simulated.independent_windows("eval", seconds)
    assert k == int((end - start) // seconds) and k >= 3
    env = MarketMakingVectorEnv(k + 2, config=config, market=simulated, seed=7)
    env.reset()
    starts = env.hist.window_start.copy()
    np.testing.assert_allclose(starts, start + (np.arange(k + 2) % k) * seconds)
    assert (np.diff(starts[:k]) >= seconds - 1e-9).all() and starts[k - 1] + seconds <= end
    for _ in range(config.episode_steps):  # without quotes each book replays its own window
        _, _, _, _, info = env.step(never_quote(k + 2))
    for n in range(k + 2):
        np.testing.assert_array_equal(env.depth(5)[n], file_row(simulated, info["data_row"][n]))
    on_file = ON_SIMULATED.replace(lobster=tuple(map(str, simulated_files)))
    held = held_out_market(on_file)
    assert (held.lobster_part, held.lobster_windows) == ("eval", "tiled")
    assert independent_episodes(held, 10_000) == k and independent_episodes(held, 2) == 2
    assert independent_episodes(on_file, 10_000) == 10_000  # random windows: as asked
    with pytest.raises(ValueError, match=r"config\.lobster_windows"):
        MarketMakingVectorEnv(1, config=config.replace(lobster_windows="sliding"), market=simulated)


@pytest.mark.parametrize(
    ("seconds", "windows", "error", "word"),
    [
        (10.0, "Tiled", ValueError, "windows must be one of random, tiled"),
        (10.0, "sliding", ValueError, "windows must be one of random, tiled"),
        (10.0, None, ValueError, "windows must be one of random, tiled"),
        (0.0, "tiled", ValueError, "episode_seconds"),
        (0.0, "random", ValueError, "episode_seconds"),
        (-5.0, "tiled", ValueError, "episode_seconds"),
        (float("nan"), "random", ValueError, "episode_seconds"),
        ("10", "random", TypeError, "episode_seconds"),
    ],
)
def test_window_params_checks_its_placement_and_length(simulated, seconds, windows, error, word):
    # an unknown placement drew random windows; 0 s divided by zero, -5 s gave -10 tiles and NaN
    # a NaN latest start
    with pytest.raises(error, match=word):
        simulated.window_params("eval", seconds, windows)
    if windows == "tiled":
        with pytest.raises(error, match=word):
            simulated.independent_windows("eval", seconds)


def test_an_evaluation_on_a_part_holding_one_window_is_refused_before_tuning(
    simulated, simulated_files, monkeypatch
):
    """One independent episode gives intervals of width 0 (as if certain): refused, naming the
    part, before the baselines are tuned."""
    import fastlob_agents.evaluate as ev

    start, end = simulated.part_seconds("eval")
    steps = int((end - start) / 0.5 * 0.75)  # one window of 0.75 of the part, not two
    on_file = ON_SIMULATED.replace(lobster=tuple(map(str, simulated_files)), episode_steps=steps)
    assert ev.independent_episodes(ev.held_out_market(on_file), 100) == 1

    def no_tuning(*args, **kwargs):
        raise AssertionError("the baselines were tuned before the episodes were counted")

    monkeypatch.setattr(ev, "tune_baselines", no_tuning)
    with pytest.raises(ValueError, match=r"'eval' part .* holds 1 non-overlapping window"):
        ev.evaluate([], episodes=8, tuning_episodes=2, config=on_file)


def _crossing_day():
    """One visible level, 4 s: the file's best bid (10006) stays while the market maker's ask
    takes it out of the book, so that the next message brings it back (a level taken from the
    row) across the ask's remainder."""
    ask, bid = (10010, 5), (10006, 1)
    messages = [  # [type, id, size, price, direction]
        (1, 5, 1, 10006, 1),  # the bid the ask will take
        (2, 7, 1, 10010, -1),  # any message: the window is synced, the bid taken back
        (1, 8, 1, 10001, 1),
        (1, 9, 1, 10012, -1),
        (3, 8, 1, 10001, 1),
        (1, 10, 1, 10002, 1),
    ]
    asks = [5, 4, 4, 4, 4, 4]
    rows = np.array([[[ask[0], q, bid[0], bid[1]]] for q in asks], np.int64)
    initial = np.array([[ask[0], ask[1], 0, 0]], np.int64)
    times = np.array([100.0, 100.5, 101.5, 102.5, 103.5, 104.0])
    return LobsterDay(times, np.array(messages, np.int64), rows, initial, 100)


def test_a_level_taken_back_across_a_quote_fills_it_and_the_quote_is_forgotten(tmp_path):
    # the bid taken back from the row fills the ask's remainder: that fill is accounted at
    # once, so that the quote update of the next step does not unlink the filled quote's slot
    # a second time (that corrupted the book, and a later walk of it spun forever)
    market = HistoricalMarket(*write_day(_crossing_day(), tmp_path), train_fraction=0.5)
    config = MarketMakingConfig(
        dt=1.0, latency=0.1, episode_steps=4, max_quote_size=2, max_inventory=5,
        max_offset=5.0, markout_steps=1, lobster_part="all",
    )  # fmt: skip
    env = MarketMakingVectorEnv(1, config=config, market=market, seed=0)
    (ref,) = reference_envs(env)
    log_fills(ref)
    obs, _ = env.reset()
    assert np.array_equal(obs[0], ref.reset())
    actions = [  # bid offset, ask offset, bid size, ask size, target
        [0.0, -4.0, 0.0, 2.0, 0.0],  # an ask of 2 at 10004: sells 1 at 10006, rests 1
        [1.0, 3.0, 1.0, 1.0, 0.0],  # the quotes move
        [1.0, 2.0, 2.0, 1.0, 0.0],
        [0.0, 1.0, 1.0, 2.0, 0.0],
        [0.0, 0.0, 0.0, 0.0, 0.0],  # the reset
    ]
    for k, row in enumerate(actions):
        obs, reward, terminated, truncated, info = env.step(np.array([row], np.float32))
        fills = env.step_fills()
        ref.fill_log.clear()
        r_obs, r_reward, r_term, r_trunc = ref.step(np.array(row, np.float32))
        assert np.array_equal(obs[0], r_obs), (k, obs[0], r_obs)
        assert reward[0] == r_reward and (terminated[0], truncated[0]) == (r_term, r_trunc)
        assert info["cash"][0] == ref.cash and info["inventory"][0] == ref.inventory
        assert env.state.metrics[0].tolist() == [ref.m[key] for key in METRICS]
        assert env.hist.counters[0].tolist() == [ref.counters[key] for key in COUNTERS]
        columns = (fills[key].tolist() for key in ("side", "price", "qty", "taker"))
        assert list(zip(*columns, strict=True)) == ref.fill_log, (k, ref.fill_log)
        assert env.depth(market.levels)[0].tolist() == _ref_depth(ref, market)
        if k == 0:
            # both fills of the ask: the taker fill at the bid, the maker fill of its rest
            assert ref.fill_log == [(-1, 10006.0, 1, True), (-1, 10004.0, 1, False)]
            assert env.state.quote_slot[0, 1] == -1 and ref.counters["levels_taken"] == 1
