"""The fuzz lane: random and mutated input through every boundary a user reaches.

LOBSTER files (a valid pair, then mutated: fields replaced by odd text and numbers, lines
dropped, repeated or swapped, bytes cut or inserted) go through ``fastlob replay``; random
argument values go through ``OrderBook``, ``BookBatch`` and the market-making env. Every outcome
is a success or a named error (one line from the command, exit 2; ``ValueError``/``TypeError``
and the book's own ``OrderRejected``/``KeyError`` from the API, the state then unchanged):
never a hang (each example runs under an alarm), a crash or a traceback. Bounded in time by the
number of examples.
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import no_hang, states_equal

from fastlob import (
    BookBatch,
    FlowParams,
    MarketMakingConfig,
    MarketMakingVectorEnv,
    OrderBook,
    OrderRejected,
    RewardConfig,
)
from fastlob._kernels.book_layout import copy_state
from fastlob_agents.cli import main

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,  # the same examples in every run: a failure reproduces
)


# ---------------------------------------------------------------------------------------------
# LOBSTER files
# ---------------------------------------------------------------------------------------------

LEVELS = 2
EMPTY_ASK, EMPTY_BID = 9999999999, -9999999999


def valid_pair(seed: int, messages: int = 40) -> tuple[list[str], list[str]]:
    """A LOBSTER message file and its 2-level orderbook file, written by a plain-Python book:
    submissions near 100.00 $, deletions of resting orders, executions at the front of the
    best queue (prices in dollars x 10000, one cent a tick)."""
    rng = random.Random(seed)
    book: dict[int, dict[int, list[list[int]]]] = {1: {}, -1: {}}  # side -> price -> [[id, size]]
    message_lines, book_lines = [], []
    next_id, time = 1, 34200.0
    for _ in range(messages):
        time += rng.random()
        resting = [(side, p, o) for side in book for p, q in book[side].items() for o in q]
        kind = 1 if len(resting) < 6 else rng.choice((1, 1, 3, 4))
        if kind == 1:
            side = rng.choice((1, -1))
            best_other = min(book[-1]) if side == 1 and book[-1] else None
            if side == -1 and book[1]:
                best_other = max(book[1])
            tick = rng.randint(1, 6)
            price = 1_000_000 - side * tick * 100
            if best_other is not None and (price - best_other) * side >= 0:
                price = best_other - side * 100
            order = [next_id, rng.randint(1, 300)]
            next_id += 1
            book[side].setdefault(price, []).append(order)
            fields = (1, order[0], order[1], price, side)
        elif kind == 3:
            side, price, order = rng.choice(resting)
            book[side][price].remove(order)
            fields = (3, order[0], order[1], price, side)
        else:
            side = rng.choice([s for s in book if book[s]] or [1])
            price = max(book[side]) if side == 1 else min(book[side])
            order = book[side][price][0]
            size = rng.randint(1, order[1])
            order[1] -= size
            if order[1] == 0:
                book[side][price].pop(0)
            fields = (4, order[0], size, price, side)
        for side in book:
            book[side] = {p: q for p, q in book[side].items() if q}
        message_lines.append(f"{time:.6f}," + ",".join(map(str, fields)))
        asks, bids = sorted(book[-1]), sorted(book[1], reverse=True)
        row = []
        for k in range(LEVELS):
            ask = (
                (asks[k], sum(o[1] for o in book[-1][asks[k]])) if k < len(asks) else (EMPTY_ASK, 0)
            )
            bid = (
                (bids[k], sum(o[1] for o in book[1][bids[k]])) if k < len(bids) else (EMPTY_BID, 0)
            )
            row += [*ask, *bid]
        book_lines.append(",".join(map(str, row)))
    return message_lines, book_lines


def write_pair(folder: Path, message_lines, book_lines) -> tuple[Path, Path]:
    msg, ob = folder / "message.csv", folder / "orderbook.csv"
    msg.write_bytes(message_lines if isinstance(message_lines, bytes) else _join(message_lines))
    ob.write_bytes(book_lines if isinstance(book_lines, bytes) else _join(book_lines))
    return msg, ob


def _join(lines) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def test_the_generated_pair_replays_exactly(tmp_path, capsys):
    msg, ob = write_pair(tmp_path, *valid_pair(0))
    assert main(["replay", str(msg), str(ob), "--repeat", "1"]) == 0, capsys.readouterr()


ODD_TEXT = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(["", " 1", "1 ", "1_0", "+1", "nan", "inf", "-0", "1e3", "0x10", "1.5", "٣",
                     "9223372036854775808", "-9223372036854775809", "4294967297",
                     "2305843009213693952"]),
    st.text(max_size=6),
)  # fmt: skip


@st.composite
def mutation(draw):
    kind = draw(
        st.sampled_from(["field", "field", "field", "drop", "repeat", "swap", "cut", "bytes"])
    )
    return (
        kind,
        draw(st.sampled_from(["message", "orderbook"])),
        draw(st.integers(0, 10_000)),
        draw(st.integers(0, 10_000)),
        draw(ODD_TEXT),
        draw(st.binary(min_size=1, max_size=4)),
    )


def mutate(lines: list[str], change) -> list[str] | bytes:
    kind, _, a, b, text, raw = change
    lines = list(lines)
    i, j = a % len(lines), b % len(lines)
    if kind == "field":
        fields = lines[i].split(",")
        fields[b % len(fields)] = text
        lines[i] = ",".join(fields)
    elif kind == "drop":
        del lines[i]
    elif kind == "repeat":
        lines.insert(i, lines[i])
    elif kind == "swap":
        lines[i], lines[j] = lines[j], lines[i]
    else:
        data = _join(lines)
        cut = a % (len(data) + 1)
        return data[:cut] if kind == "cut" else data[:cut] + raw + data[cut:]
    return lines


OUTCOMES: dict[int, int] = {}  # exit code -> examples, for the check below


@FUZZ
@given(seed=st.integers(0, 3), changes=st.lists(mutation(), min_size=1, max_size=3))
def test_mutated_lobster_files_replay_or_are_named(capsys, seed, changes):
    message_lines, book_lines = valid_pair(seed, messages=25)
    for change in changes:
        if isinstance(message_lines, bytes) or isinstance(book_lines, bytes):
            break
        if change[1] == "message":
            message_lines = mutate(message_lines, change)
        else:
            book_lines = mutate(book_lines, change)
    with tempfile.TemporaryDirectory() as folder:
        msg, ob = write_pair(Path(folder), message_lines, book_lines)
        capsys.readouterr()
        with no_hang():
            code = main(["replay", str(msg), str(ob), "--repeat", "1", "--json"])
        err = capsys.readouterr().err
    assert code in (0, 1, 2)
    OUTCOMES[code] = OUTCOMES.get(code, 0) + 1
    if code == 2:
        assert err.startswith("fastlob replay: error: ") and err.count("\n") == 1, err
        assert str(msg) in err or str(ob) in err, err


def test_the_mutations_reach_every_outcome():
    """The mutated files above were accepted, refused and mismatched (so they test something)."""
    if not OUTCOMES:
        pytest.skip("counts the outcomes of test_mutated_lobster_files_replay_or_are_named")
    assert set(OUTCOMES) == {0, 1, 2}, OUTCOMES
    assert OUTCOMES[2] >= 10, OUTCOMES


# ---------------------------------------------------------------------------------------------
# the API boundaries
# ---------------------------------------------------------------------------------------------

EDGE = st.sampled_from(
    [-1, 0, 1, 2, 3, 7, 16, 1000, 2**31, 2**32, 2**32 + 1, 2**53, 2**53 + 1, 2**62, 2**62 + 1,
     2**63, -(2**63), 2**64 - 1, np.int64(5), np.uint64(2**63), 0.5, 1.0, float("nan"),
     float("inf"), -float("inf"), "1", None, True, False, [1], 1j]
)  # fmt: skip

API_ERRORS = (ValueError, TypeError, KeyError, OrderRejected)


@FUZZ
@given(calls=st.lists(st.tuples(st.integers(0, 4), EDGE, EDGE, EDGE, EDGE), max_size=12))
def test_random_arguments_through_order_book_are_taken_or_named(calls):
    book = OrderBook(ladder_levels=64, order_capacity=16)
    book.limit(1, 100, 5, order_id=1)
    book.limit(-1, 105, 5, order_id=2)
    for which, a, b, c, d in calls:
        method = (book.limit, book.market, book.cancel, book.modify, book.queue_ahead)[which]
        args = [(a, b, c, d), (a, b), (a, b), (a, b, c), (a,)][which]
        before = copy_state(book.state)
        with no_hang(10):
            try:
                method(*args)
            except API_ERRORS:
                # a refused call changes nothing but the count of refusals
                assert unchanged_but_counts(before, book.state), (method.__name__, args)
        assert_book_consistent(book)


def unchanged_but_counts(a, b) -> bool:
    return all(
        np.array_equal(x, y)
        for name, x, y in zip(a._fields, a, b, strict=True)
        if name != "status_count"
    )


def assert_book_consistent(book: OrderBook) -> None:
    depth = book.depth(64)
    asks = depth[:, 1][depth[:, 1] > 0]
    bids = depth[:, 3][depth[:, 3] > 0]
    assert (asks > 0).all() and (bids > 0).all()
    if book.best_bid() is not None and book.best_ask() is not None:
        assert book.best_bid() < book.best_ask()
    assert depth[:, 1].sum() + depth[:, 3].sum() == sum(
        int(q) for q in book.state.order_qty[0] if q > 0
    )


MESSAGE_DTYPES = st.sampled_from(
    [np.int8, np.int32, np.int64, np.uint8, np.uint64, np.float64, np.bool_, object]
)
MESSAGE_VALUES = st.sampled_from(
    [-2, -1, 0, 1, 2, 3, 4, 5, 100, 2**32, 2**32 + 1, 2**53 + 1, 2**62, 2**63 - 1, 2**64 - 1]
)


@FUZZ
@given(
    dtype=MESSAGE_DTYPES,
    values=st.lists(MESSAGE_VALUES, min_size=0, max_size=40),
    shape_kind=st.integers(0, 3),
)
def test_random_message_arrays_are_applied_or_named(dtype, values, shape_kind):
    batch = BookBatch(2, ladder_levels=64, order_capacity=16, trade_capacity=16)
    rows = (len(values) // 10) or 1
    padded = (values + [0] * 10)[: rows * 10]
    shape = [(2, rows, 5), (2, rows * 5), (rows, 2, 5), (2, rows, 5, 1)][shape_kind]
    before = copy_state(batch.state)
    try:
        with np.errstate(all="ignore"):
            array = np.array(padded, dtype=object).astype(dtype).reshape(shape)
    except (OverflowError, ValueError, TypeError):
        return  # numpy itself cannot make that array: nothing reaches fastlob
    try:
        status = batch.apply(array)
    except (ValueError, TypeError):
        assert states_equal(before, batch.state)
        return
    assert status.shape == (2, shape[1]) and ((status >= 0) & (status <= 6)).all()


CONFIG_FIELDS = [f for f in MarketMakingConfig.__dataclass_fields__ if f not in ("flow", "reward")]
FLOW_FIELDS = list(FlowParams._fields)
REWARD_FIELDS = list(RewardConfig.__dataclass_fields__)


@FUZZ
@given(
    where=st.sampled_from(["config", "flow", "reward", "num_envs"]),
    index=st.integers(0, 100),
    value=EDGE,
    action_value=EDGE,
)
def test_random_configs_and_actions_through_the_env_are_taken_or_named(
    where, index, value, action_value
):
    config, num_envs = MarketMakingConfig(episode_steps=3, warmup=1.0), 2
    try:
        if where == "config":
            config = config.replace(**{CONFIG_FIELDS[index % len(CONFIG_FIELDS)]: value})
        elif where == "flow":
            config = config.replace(flow={FLOW_FIELDS[index % len(FLOW_FIELDS)]: value})
        elif where == "reward":
            config = config.replace(reward={REWARD_FIELDS[index % len(REWARD_FIELDS)]: value})
        else:
            num_envs = value
        with no_hang(20):
            env = MarketMakingVectorEnv(num_envs, config=config, seed=index)
    except (ValueError, TypeError):
        return
    with no_hang(20):
        env.reset(seed=index)
        actions = np.full((env.num_envs, 5), 1.0, np.float32)
        try:
            with np.errstate(all="ignore"):
                actions[:, index % 5] = action_value
        except (ValueError, TypeError, OverflowError):
            return
        try:
            env.step(actions)
        except ValueError as err:
            assert "finite" in str(err)


@pytest.mark.parametrize("seed", [1, 2])
def test_generated_pairs_of_other_seeds_replay_exactly(tmp_path, capsys, seed):
    msg, ob = write_pair(tmp_path, *valid_pair(seed))
    assert main(["replay", str(msg), str(ob), "--repeat", "1"]) == 0, capsys.readouterr()
