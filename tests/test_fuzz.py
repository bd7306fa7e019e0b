"""The fuzz lane: random and mutated input through every boundary a user reaches.

LOBSTER files (a valid pair, then mutated: fields replaced by odd text and numbers, lines
dropped, repeated or swapped, bytes cut or inserted) go through ``fastlob replay``; random
argument values go through ``OrderBook``, ``BookBatch`` and the market-making env. Settings files
(valid ones, then mutated: keys deleted or added, values of other types, odd and huge numbers,
long and nested lists, text cut or bytes inserted) go through what reads them: market files
through ``fastlob simulate --env-config``, study files through ``read_study``, saved benchmark
runs through ``fastlob bench-history``; hostile revisions and ``-k`` values through ``fastlob
bench-guard`` (in a small repository of its own, the suite's runs replaced). Every outcome
is a success or a named error (one line from the command, exit 2; ``ValueError``/``TypeError``
and the book's own ``OrderRejected``/``KeyError`` from the API, the state then unchanged; a
``StudyError`` of one line naming the file): never a hang (each example runs under an alarm), a
crash or a traceback. Bounded in time by the number of examples.
"""

from __future__ import annotations

import json
import math
import random
import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import no_hang, one_line_error, states_equal

from fastlob import (
    BookBatch,
    FlowParams,
    MarketMakingConfig,
    MarketMakingVectorEnv,
    OrderBook,
    OrderRejected,
    RewardConfig,
    benchmarks,
)
from fastlob import cli as engine_cli
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


# ---------------------------------------------------------------------------------------------
# settings files: market files, study files, saved benchmark runs
# ---------------------------------------------------------------------------------------------

MARKETS_DIR = Path(__file__).resolve().parents[1] / "markets"
MARKET_TEXTS = [p.read_text() for p in sorted(MARKETS_DIR.glob("*.json"))] + [
    MarketMakingConfig().to_json()
]
#: the settings lanes' examples are cheap (a few ms each; a page of bench-history some 50 ms):
#: more of them, derandomized as every lane
FUZZ_FILES = settings(FUZZ, max_examples=80)
LANE_OUTCOMES: dict[tuple[str, int | str], int] = {}  # (lane, outcome) -> examples

#: the text of a value written as it is (a number past any limit, a nest, a long list): a
#: placeholder string stands in the document and is replaced in its written text
RAW = "@@raw{}@@"

JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=8,
)
ODD_NUMBERS = st.sampled_from(
    [-1, 0, -0.0, 0.5, 1e-300, 5e-324, 2**31, 2**53 + 1, 2**63, 2**64, -(2**63) - 1, 1e308,
     -1e308, 10**400, -(10**400), float("nan"), float("inf"), -float("inf"), "nan", "NaN",
     "inf", "-inf", "Infinity", "1e400", "1", "", "0x10"]
)  # fmt: skip
RAW_JSON = st.sampled_from(
    ["1" * 400, "1" * 5000, "-" + "9" * 400, "1e99999", "-1e99999", "NaN", "-Infinity", "01",
     "1.", ".5", "+1", "[", "{", "nul", '"\\ud800"', "1 2", ""]
)  # fmt: skip
LONG = st.sampled_from([0, 1, 2, 31, 1000, 100_001])  # lengths of a list put in place of one
TEXT_CHANGE = st.one_of(
    st.none(),
    st.none(),  # the text of most files left whole: their content is what is tested
    st.none(),
    st.tuples(st.just("cut"), st.integers(0, 10**6)),
    st.tuples(st.just("bytes"), st.integers(0, 10**6), st.binary(min_size=1, max_size=4)),
)


@st.composite
def doc_mutation(draw, values=JSON_VALUES, raw=RAW_JSON):
    """A change to a settings document: (kind, where, what) for `mutate_doc`."""
    kind = draw(
        st.sampled_from(["delete", "retype", "retype", "number", "raw", "list", "nest", "unknown"])
    )
    where = draw(st.integers(0, 10_000))
    if kind == "retype":
        what = draw(values)
    elif kind == "number":
        what = draw(ODD_NUMBERS)
    elif kind == "raw":
        what = draw(raw)
    elif kind == "list":
        what = (draw(st.one_of(ODD_NUMBERS, st.sampled_from([[0.15], 0.15, 1, "ppo"]))), draw(LONG))
    elif kind == "nest":
        what = draw(st.sampled_from([2, 100, 100_000]))
    else:
        key = st.one_of(
            st.sampled_from(["max_trials", "seed", "flow", "env", "stats", ""]), st.text(max_size=6)
        )
        what = (draw(key), draw(values))
    return kind, where, what


def _places(doc, prefix=()) -> list[tuple]:
    """Every place in a document (the root first), as tuples of keys and indices."""
    out = [prefix]
    items = (
        doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    )
    for key, value in items:
        out += _places(value, (*prefix, key))
    return out


def _at(doc, place):
    for key in place:
        doc = doc[key]
    return doc


def mutate_doc(doc, change, raws: list[str], written=json.dumps):
    """``doc`` changed by ``change`` (in place where it can); a raw text is appended to ``raws``
    and its placeholder put in the document; ``written`` writes a value as the file would."""
    kind, where, what = change
    if kind == "set":  # ``where`` is the place itself, set if its parent is still there
        try:
            parent = _at(doc, where[:-1])
            if isinstance(parent, dict) or where[-1] < len(parent):
                parent[where[-1]] = what
        except (KeyError, IndexError, TypeError):
            pass
        return doc
    places = _places(doc)
    place = places[where % len(places)]
    if kind == "unknown":
        tables = [p for p in places if isinstance(_at(doc, p), dict)]
        if tables:
            _at(doc, tables[where % len(tables)])[what[0]] = what[1]
        return doc
    if kind == "delete":
        if place:
            del _at(doc, place[:-1])[place[-1]]
        return doc
    if kind in ("retype", "number"):
        new = what
    else:
        if kind == "raw":
            text = what
        elif kind == "list":
            text = "[" + ", ".join([written(what[0])] * what[1]) + "]"
        else:
            text = "[" * what + written(_at(doc, place)) + "]" * what
        raws.append(text)
        new = RAW.format(len(raws) - 1)
    if not place:
        return new
    _at(doc, place[:-1])[place[-1]] = new
    return doc


def with_raws(text: str, raws: list[str], written=json.dumps) -> str:
    for i in reversed(range(len(raws))):  # the newest first: it may hold an older placeholder
        text = text.replace(written(RAW.format(i)), raws[i])
    return text


def change_bytes(data: bytes, change) -> bytes:
    if change is None:
        return data
    at = change[1] % (len(data) + 1)
    return data[:at] if change[0] == "cut" else data[:at] + change[2] + data[at:]


def json_file(doc, changes, text_change) -> bytes:
    raws: list[str] = []
    for change in changes:
        doc = mutate_doc(doc, change, raws)
    return change_bytes(with_raws(json.dumps(doc, indent=2), raws).encode(), text_change)


def count(lane: str, code: int | str) -> None:
    LANE_OUTCOMES[lane, code] = LANE_OUTCOMES.get((lane, code), 0) + 1


@FUZZ_FILES
@given(
    base=st.integers(0, len(MARKET_TEXTS) - 1),
    changes=st.lists(doc_mutation(), min_size=1, max_size=3),
    text_change=TEXT_CHANGE,
)
def test_mutated_market_files_simulate_or_are_named(capsys, base, changes, text_change):
    data = json_file(json.loads(MARKET_TEXTS[base]), changes, text_change)
    with tempfile.TemporaryDirectory() as folder:
        market, out = Path(folder) / "market.json", Path(folder) / "out"
        market.write_bytes(data)
        capsys.readouterr()
        argv = [
            "simulate",
            "--env-config",
            str(market),
            "--seconds",
            "2",
            "--lobster-out",
            str(out),
        ]
        with no_hang(30):
            code = engine_cli.main(argv)
        count("simulate", code)
        if code == 2:
            one_line_error(capsys, "fastlob simulate: error: ", str(market))
            assert not out.exists(), sorted(out.iterdir())
        else:
            assert code == 0
            assert len(list(out.glob("*_message_*.csv"))) == 1, sorted(out.iterdir())
            assert len(list(out.glob("*_orderbook_*.csv"))) == 1, sorted(out.iterdir())


# study files ---------------------------------------------------------------------------------

STUDY = {
    "name": "fuzz",
    "algorithms": ["ppo"],
    "seeds": [1, 2],
    "episodes": 4,
    "tuning_episodes": 2,
    "eval_seed": 7,
    "risk_aversion": 0.01,
    "config": {
        "num_envs": 4,
        "num_steps": 8,
        "total_steps": 64,
        "hidden_size": 8,
        "update_epochs": 1,
        "num_minibatches": 1,
        "env": {"episode_steps": 8, "warmup": 1.0},
    },
    "grid": {"env.latency": [0.05, 0.2]},
}

TOML_VALUES = st.recursive(
    st.one_of(
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(),
        st.text(max_size=8),
    ),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=8,
)
RAW_TOML = st.sampled_from(
    ["1" * 400, "1" * 5000, "nan", "+inf", "-nan", "1e999", "0x7fffffffffffffffff",
     "9_223_372_036_854_775_808", "1979-05-27", "07:32:00", "1979-05-27T07:32:00Z",
     "'literal'", '"""two\nlines"""', "[", "{", "", "true false", "[1, [2, [3]]]",
     "{ a = { b = {} } }"]
)  # fmt: skip
SWEPT = ["learning_rate", "env.latency", "env.dt", "env.flow.market_rate", "env.limit_rates",
         "env.nosuch", "nosuch", "seed", "runs_dir", "env", "gamma", "env.flow", "hidden_size",
         "market", "total_steps.x", "env.latency.x"]  # fmt: skip
MARKET_FILES = [
    "missing.json", "/dev/zero", "/dev/null", "/", ".", "", "bad.json", "truncated.json",
    "a\x00b", "x" * 300 + ".json", "../nope/../x.json", str(MARKETS_DIR / "anchored.json"),
    str(MARKETS_DIR / "large-tick.json"),
]  # fmt: skip


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return "nan"
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a TOML basic string, escapes and all
    if isinstance(value, list):
        return "[" + ", ".join(map(toml_value, value)) + "]"
    if isinstance(value, dict):
        return (
            "{ " + ", ".join(f"{toml_value(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
        )
    return '"' + type(value).__name__ + '"'  # pragma: no cover


def toml_text(doc) -> str:
    """The study document as TOML: its plain keys, then each table as ``[name]`` (a document
    that is not a table as one key, which TOML refuses)."""
    if not isinstance(doc, dict):
        return f"study = {toml_value(doc)}\n= 1\n"
    lines = [
        f"{toml_value(k)} = {toml_value(v)}" for k, v in doc.items() if not isinstance(v, dict)
    ]
    for key, table in doc.items():
        if isinstance(table, dict):
            lines.append(f"\n[{toml_value(key)}]")
            lines += [f"{toml_value(k)} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


@st.composite
def study_mutation(draw):
    """A `doc_mutation` in TOML values, or a change of the study's own: a swept field, the
    market files, a list of at least 10 001 (more trials than a study may hold)."""
    kind = draw(st.sampled_from(["doc", "doc", "doc", "grid", "market", "long"]))
    if kind == "doc":
        return draw(doc_mutation(values=TOML_VALUES, raw=RAW_TOML))
    if kind == "grid":
        values = st.lists(st.one_of(ODD_NUMBERS, TOML_VALUES), max_size=3)
        return "grid", draw(st.sampled_from(SWEPT)), draw(values)
    if kind == "market":
        paths = st.one_of(st.sampled_from(MARKET_FILES), st.integers(), st.text(max_size=4))
        return "grid", "market", draw(st.lists(paths, max_size=3))
    return (
        "long",
        draw(st.sampled_from(["seeds", "algorithms", "grid"])),
        draw(st.sampled_from([10_001, 100_000])),
    )


def study_file(changes, text_change) -> tuple[object, bytes]:
    doc = json.loads(json.dumps(STUDY))
    raws: list[str] = []
    for change in changes:
        kind, which, what = change
        if kind == "grid" and isinstance(doc, dict) and isinstance(doc.get("grid"), dict):
            doc["grid"][which] = what
        elif kind == "long" and isinstance(doc, dict):
            items = {"seeds": range(what), "algorithms": ["ppo"] * what, "grid": [0.05] * what}
            raws.append(toml_value(list(items[which])))
            if which == "grid" and isinstance(doc.get("grid"), dict):
                doc["grid"]["env.latency"] = RAW.format(len(raws) - 1)
            elif which != "grid":
                doc[which] = RAW.format(len(raws) - 1)
        elif kind not in ("grid", "long"):
            doc = mutate_doc(doc, change, raws, written=toml_value)
    text = with_raws(toml_text(doc), raws, written=toml_value)
    return doc, change_bytes(text.encode(), text_change)


@FUZZ_FILES
@given(changes=st.lists(study_mutation(), min_size=1, max_size=3), text_change=TEXT_CHANGE)
def test_mutated_study_files_are_read_or_named(changes, text_change):
    from fastlob_agents.study import Study, StudyError, read_study

    _, data = study_file(changes, text_change)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "study.toml"
        path.write_bytes(data)
        (Path(folder) / "bad.json").write_text('{"dt": "x"}')
        (Path(folder) / "truncated.json").write_text(MARKET_TEXTS[0][:200])
        try:
            with no_hang(30):
                study = read_study(path)
        except StudyError as err:
            message = str(err)
            assert "\n" not in message and "\r" not in message, message
            assert str(path) in message, message
            count("study", 2)
        else:
            count("study", 0)
            assert isinstance(study, Study)


# the bench tools' arguments ------------------------------------------------------------------

BENCH_RUN = {
    "machine_info": {"node": "fuzz", "python_version": "3.11.9"},
    "commit_info": {"id": "0123456789abcdef0123", "dirty": False, "branch": "main"},
    "benchmarks": [
        {
            "group": None,
            "name": "test_replay",
            "fullname": "bench/test_bench.py::test_replay",
            "params": None,
            "stats": {"min": 0.01, "max": 0.02, "mean": 0.015, "median": 0.015, "rounds": 5},
            "extra_info": {"ratio": 40.0, "messages_per_s": 2.5e6},
        },
        {
            "name": "test_env",
            "fullname": "bench/test_bench.py::test_env",
            "stats": {"median": 0.002, "rounds": 3},
            "extra_info": {"env_steps_per_s": 1e5},
        },
    ],
    "datetime": "2024-05-01T12:00:00.000000",
    "version": "4.0.0",
}
BENCH_RUNS = [BENCH_RUN, {**BENCH_RUN, "benchmarks": BENCH_RUN["benchmarks"][:1]}]
BENCH_FILES = [
    "a.json", "b.json", "sub/c.json", "a.json", "b.json", "sub/c.json", "notes.txt",
    "run.json/inner.json",  # a folder named as a run
]  # fmt: skip


BENCH_FIELDS = [("stats", "median"), ("extra_info", "ratio"), ("extra_info", "messages_per_s"),
                ("extra_info", "env_steps_per_s"), ("fullname",), ("name",), ("stats",),
                ("extra_info",), ("commit_info", "id")]  # fmt: skip


@st.composite
def bench_mutation(draw):
    """A `doc_mutation`, or a field that the history reads set to an odd value."""
    if draw(st.booleans()):
        return draw(doc_mutation())
    field = draw(st.sampled_from(BENCH_FIELDS))
    place = field if field[0] == "commit_info" else ("benchmarks", draw(st.integers(0, 1)), *field)
    return "set", place, draw(ODD_NUMBERS if draw(st.integers(0, 2)) else JSON_VALUES)


def _nests_too_deep(data: bytes) -> bool:
    try:
        json.loads(data)
    except RecursionError:
        return True
    except ValueError:
        pass
    return False


def _name_not_text(data: bytes) -> bool:
    try:
        run = json.loads(data)
    except (ValueError, RecursionError):
        return False
    benches = run.get("benchmarks") if isinstance(run, dict) else None
    return any(
        isinstance(b, dict)
        and not isinstance(b.get("fullname") or b.get("name"), (str, type(None)))
        for b in (benches if isinstance(benches, list) else ())
    )


@FUZZ_FILES
@given(
    files=st.lists(
        st.tuples(
            st.sampled_from(BENCH_FILES),
            st.sampled_from(BENCH_RUNS),
            st.lists(bench_mutation(), max_size=3),
            TEXT_CHANGE,
        ),
        min_size=1,
        max_size=3,
    ),
    runs_at=st.sampled_from(["runs"] * 6 + ["missing", "runs/a.json"]),
    out_at=st.sampled_from(["page.html"] * 6 + ["", ".", "missing/page.html", "runs"]),
)
def test_saved_benchmark_runs_are_drawn_or_named(capsys, files, runs_at, out_at):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "runs").mkdir()
        texts = []
        for name, run, changes, text_change in files:
            data = json_file(json.loads(json.dumps(run)), changes, text_change)
            (root / "runs" / name).parent.mkdir(parents=True, exist_ok=True)
            (root / "runs" / name).write_bytes(data)
            texts.append(data)
        page = str(root / out_at) if out_at else ""
        before = sorted(root.rglob("*"))
        capsys.readouterr()
        with no_hang(30):
            code = engine_cli.main(["bench-history", "--dir", str(root / runs_at), "--out", page])
        count("bench-history", code)
        if code == 2:
            one_line_error(capsys, "fastlob bench-history: error: ")
            assert sorted(root.rglob("*")) == before  # no page, no .tmp
        else:
            assert code == 0 and Path(page).is_file() and Path(page).stat().st_size > 0


@pytest.fixture(scope="module")
def tiny_repo(tmp_path_factory):
    """A git repository of two commits (no bench/: the suite's runs are replaced below)."""
    root = tmp_path_factory.mktemp("guard-repo")

    def git(*args):
        return subprocess.run(
            ["git", "-c", "user.name=fuzz", "-c", "user.email=fuzz@example.invalid",
             "-c", "commit.gpgsign=false", *args],
            cwd=root, check=True, capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip

    git("init", "-q", "-b", "main")
    for text in ("1\n", "2\n"):
        (root / "a.txt").write_text(text)
        git("add", "a.txt")
        git("commit", "-q", "-m", f"commit {text.strip()}")
    return root, git("rev-parse", "HEAD"), git


HOSTILE_REVS = [
    "", "-", "--", "-h", "--help", "--output=x", "-k", "--end-of-options", "--upload-pack=touch x",
    "HEAD;ls", "HEAD; rm -rf .", "HEAD&&id", "$(id)", "`id`", "..", "../..", "HEAD..HEAD~1",
    "HEAD...main", "HEAD~99", "HEAD^{tree}", "HEAD:a.txt", ":/commit", "@{-1}", "HEAD@{upstream}",
    "deadbeef", "0" * 40, "g" * 40, "HEAD\n", " HEAD", "HEAD\x00", "refs/../HEAD", "/etc/passwd",
    "~", "*", "HEAD^^^^^^^^", "FETCH_HEAD", "stash", "{head}x", "{head}\n",
]  # fmt: skip
#: revisions of the small repository below ({head}: its HEAD's hash): compared, then cleaned up
VALID_REVS = ["HEAD", "HEAD~1", "main", "main^", ":/commit 1", "{head}", "{head:.7}"]
HOSTILE_SELECTIONS = ["replay", "", "not", "(", "a and", "-x", "--rounds", "x\ny", "replay or env"]


def _saved_run_written(tree, out, select, lobster_dir) -> list[str]:
    """``benchmarks._run_suite`` without the suite: ``out`` a saved run, nothing skipped."""
    out.write_text(json.dumps(BENCH_RUN))
    return []


@FUZZ_FILES
@given(
    rev=st.one_of(
        st.sampled_from(VALID_REVS),
        st.sampled_from(HOSTILE_REVS),
        st.tuples(st.sampled_from(HOSTILE_REVS), st.text(max_size=4)).map("".join),
        st.text(max_size=8),
    ),
    select=st.one_of(st.sampled_from(HOSTILE_SELECTIONS), st.text(max_size=4)),
)
def test_bench_guard_revisions_are_compared_or_named(capsys, monkeypatch, tiny_repo, rev, select):
    root, head, git = tiny_repo
    rev = rev.replace("{head:.7}", head[:7]).replace("{head}", head)
    # nothing heavy runs: collecting is a no-op and a run of the suite writes a saved run
    monkeypatch.setattr(benchmarks, "_collect", lambda tree, select: None)
    monkeypatch.setattr(benchmarks, "_run_suite", _saved_run_written)
    monkeypatch.chdir(root)
    capsys.readouterr()
    try:
        with no_hang(30):
            code = engine_cli.main(["bench-guard", rev, "-k", select, "--rounds", "1"])
    except SystemExit as exit_:  # -h / --help: argparse prints the help and exits 0
        code = exit_.code
    out, err = capsys.readouterr()
    assert code in (0, 2), (code, err)
    assert "Traceback" not in err, err
    lines = err.splitlines()
    progress = [line for line in lines if line.startswith(("round ", "skipped in "))]
    if code == 2:  # refused before any run: one line
        assert err.endswith("\n") and len(lines) == 1 and not progress, err
        # argparse names the top parser for arguments left over ("fastlob: error: ...")
        assert re.match(r"fastlob( bench-guard)?: error: ", lines[0]), err
    else:  # the help (-h), else the comparison of both trees
        assert out.startswith("usage: ") or "test_replay" in out, out
    count("bench-guard", code if out.startswith("usage: ") or code == 2 else "compared")
    # nothing left behind: one worktree, a clean tree
    assert git("worktree", "list", "--porcelain").count("worktree ") == 1
    assert git("status", "--porcelain", "--ignored") == ""


def test_the_settings_lanes_reach_every_outcome():
    """Each lane above ran files that were accepted and files that were refused."""
    if not LANE_OUTCOMES:
        pytest.skip("counts the outcomes of the settings lanes above")
    for lane, accepted in (("simulate", 0), ("study", 0), ("bench-history", 0),
                           ("bench-guard", "compared")):  # fmt: skip
        if any(key[0] == lane for key in LANE_OUTCOMES):
            assert LANE_OUTCOMES.get((lane, accepted), 0) >= 3, LANE_OUTCOMES
            assert LANE_OUTCOMES.get((lane, 2), 0) >= 10, LANE_OUTCOMES
