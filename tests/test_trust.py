"""Trust boundaries: what a user hands fastlob (a checkpoint, a run directory, a LOBSTER file,
an argument) cannot run code, overflow a total, hang a loop or damage a run; bad input gets one
line naming what is wrong, and the state and files stay as they were."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from support import one_line_error

from fastlob import (
    MAX_ORDER_QTY,
    REJECT_INVALID,
    BookBatch,
    MarketMakingConfig,
    MarketMakingEnv,
    MarketMakingVectorEnv,
    OrderBook,
)
from fastlob.data.lobster import LobsterFormatError, read_messages, read_orderbook
from fastlob_agents.cli import main
from fastlob_agents.common import RunError, load_checkpoint
from fastlob_agents.ppo import PPOConfig, PPOPolicy
from fastlob_agents.ppo import train as train_ppo

TINY = PPOConfig(
    num_envs=4, total_steps=4 * 8 * 2, num_steps=8, env=MarketMakingConfig(episode_steps=10),
    hidden_size=8, update_epochs=1, num_minibatches=1, progress=False, checkpoint_every=1,
)  # fmt: skip


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    from fastlob_agents.evaluate import evaluate

    runs = tmp_path_factory.mktemp("runs")
    run = train_ppo(dataclasses.replace(TINY, runs_dir=str(runs), run_name="tiny"))["run_dir"]
    evaluate([run], episodes=2, tuning_episodes=2)  # eval.json and baselines.json
    return Path(run)


def copy_run(run: Path, to: Path) -> Path:
    to.mkdir()
    for path in run.iterdir():
        if path.is_file():
            (to / path.name).write_bytes(path.read_bytes())
    return to


def digests(folder: Path) -> dict[str, str]:
    """Every file of a run by name, as a hash of its bytes."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


# ---------------------------------------------------------------------------------------------
# 1. checkpoints cannot run code, and load on a CPU whatever they were saved on
# ---------------------------------------------------------------------------------------------


class _Payload:
    """Pickles as a call of ``os.system``: what a hostile checkpoint would hold."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def hostile_checkpoint(path: Path, marker: Path) -> None:
    torch.save(
        {"format": 2, "algo": "ppo", "config": {}, "agent": _Payload(f"touch {marker}")}, path
    )


@pytest.mark.parametrize("command", ["eval", "report", "resume"])
def test_a_checkpoint_that_calls_os_system_is_refused_and_runs_nothing(
    trained_run, tmp_path, capsys, command
):
    run = copy_run(trained_run, tmp_path / "run")
    marker = tmp_path / "owned"
    hostile_checkpoint(run / "checkpoint.pt", marker)
    before = digests(run)
    argv = {
        "eval": ["eval", str(run), "--episodes", "2", "--tuning-episodes", "2"],
        "report": ["report", str(run)],
        "resume": ["train", "--algo", "ppo", "--resume", "--runs-dir", str(tmp_path),
                   "--run-name", "run", "--num-envs", "4", "--total-steps", "64",
                   "--num-steps", "8", "--env.episode-steps", "10", "--hidden-size", "8",
                   "--update-epochs", "1", "--num-minibatches", "1", "--checkpoint-every", "1",
                   "--no-progress"],
    }[command]  # fmt: skip
    assert main(argv) == 2
    one_line_error(capsys, str(run / "checkpoint.pt"), "refused", "system")
    assert not marker.exists()
    assert digests(run) == before


def test_a_corrupt_or_foreign_checkpoint_is_refused_naming_the_file(trained_run, tmp_path):
    path = tmp_path / "checkpoint.pt"
    path.write_bytes((trained_run / "checkpoint.pt").read_bytes()[:1000])
    with pytest.raises(RunError, match="refused") as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)
    torch.save({"agent": {}}, path)  # loads safely, but is no fastlob checkpoint
    with pytest.raises(RunError, match="format 2"):
        load_checkpoint(path)
    torch.save({"format": 2, "algo": "ppo", "config": {}}, path)
    with pytest.raises(RunError, match="lacks agent"):
        load_checkpoint(path, ("agent",))


def _relocated(data: bytes, location: str) -> bytes:
    """A torch.save archive whose storages claim to live on ``location`` (as one saved on a GPU
    would), rewritten in the pickle's persistent ids."""
    old = b"X\x03\x00\x00\x00cpu"
    new = b"X" + len(location).to_bytes(4, "little") + location.encode()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            body = src.read(item.filename)
            if item.filename.endswith("data.pkl"):
                assert old in body
                body = body.replace(old, new)
            dst.writestr(item, body)
    return out.getvalue()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks loading a GPU checkpoint without one")
def test_a_checkpoint_saved_on_a_gpu_loads_on_a_cpu_only_machine(trained_run, tmp_path):
    run = copy_run(trained_run, tmp_path / "run")
    path = run / "checkpoint.pt"
    path.write_bytes(_relocated(path.read_bytes(), "cuda:0"))
    with pytest.raises(RuntimeError, match="CUDA"):  # what a load without map_location does
        torch.load(path, weights_only=True)
    env = MarketMakingVectorEnv(2, config=MarketMakingConfig(episode_steps=10))
    policy = PPOPolicy.load(run, env)
    original = PPOPolicy.load(trained_run, env)
    for a, b in zip(policy.agent.parameters(), original.agent.parameters(), strict=True):
        assert a.device.type == "cpu" and torch.equal(a, b)


def test_a_checkpoint_holds_only_tensors_and_plain_values(trained_run):
    payload = torch.load(trained_run / "checkpoint.pt", weights_only=True)

    def plain(value) -> bool:
        if isinstance(value, dict):
            return all(isinstance(k, (str, int)) and plain(v) for k, v in value.items())
        if isinstance(value, (list, tuple)):
            return all(plain(v) for v in value)
        return value is None or isinstance(value, (torch.Tensor, bool, int, float, str))

    assert plain(payload)
    assert payload["algo"] == "ppo" and payload["config"]["num_envs"] == TINY.num_envs


# ---------------------------------------------------------------------------------------------
# 3. --resume checks before it writes
# ---------------------------------------------------------------------------------------------


def resume_argv(runs: Path, name: str, *extra: str) -> list[str]:
    return ["train", "--resume", "--runs-dir", str(runs), "--run-name", name, "--num-envs", "4",
            "--total-steps", "64", "--num-steps", "8", "--env.episode-steps", "10",
            "--hidden-size", "8", "--update-epochs", "1", "--num-minibatches", "1",
            "--checkpoint-every", "1", "--no-progress", *extra]  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--algo", "sac"], ["a ppo run, not sac", "--algo ppo"]),
        (["--algo", "ppo", "--learning-rate", "0.01"], ["learning_rate", "0.0003", "0.01"]),
        (["--algo", "ppo", "--seed", "5"], ["seed"]),
    ],
)
def test_resume_with_other_settings_is_refused_and_leaves_the_run_byte_for_byte(
    trained_run, tmp_path, capsys, extra, words
):
    run = copy_run(trained_run, tmp_path / "run")
    before = digests(run)
    argv = resume_argv(tmp_path, "run", *extra)
    if extra[1] == "sac":  # SAC has flags of its own
        argv = ["train", "--resume", "--runs-dir", str(tmp_path), "--run-name", "run",
                "--num-envs", "4", "--no-progress", *extra]  # fmt: skip
    assert main(argv) == 2
    one_line_error(capsys, *words)
    assert digests(run) == before
    assert main(["eval", str(run), "--episodes", "2", "--tuning-episodes", "2", "--json"]) == 0


def test_resume_of_a_run_that_does_not_exist_is_an_error(tmp_path, capsys):
    assert main([*resume_argv(tmp_path, "nothing"), "--algo", "ppo"]) == 2
    one_line_error(capsys, "no run to resume")
    assert not (tmp_path / "nothing").exists()


# ---------------------------------------------------------------------------------------------
# 2. quantities cannot overflow a total
# ---------------------------------------------------------------------------------------------


def test_an_order_above_the_largest_quantity_is_refused_naming_qty():
    book = OrderBook(ladder_levels=64, order_capacity=64)
    for call in (
        lambda: book.limit(-1, 100, MAX_ORDER_QTY + 1),
        lambda: book.market(1, 2**62),
    ):
        with pytest.raises(ValueError, match="qty"):
            call()
    book.limit(-1, 100, 1, order_id=7)
    with pytest.raises(ValueError, match="qty"):
        book.modify(7, qty=MAX_ORDER_QTY + 1)
    assert book.remaining(7) == 1 and len(book) == 1


def test_levels_of_the_largest_orders_keep_exact_totals_and_the_book_still_matches():
    book = OrderBook(ladder_levels=64, order_capacity=64)
    for _ in range(4):
        book.limit(1, 50, MAX_ORDER_QTY)
        book.limit(-1, 60, MAX_ORDER_QTY)
    assert book.depth(1).tolist() == [[60, 4 * MAX_ORDER_QTY, 50, 4 * MAX_ORDER_QTY]]
    book.limit(1, 49, 5)
    book.cancel(book.last_order_id)
    fills = book.market(-1, MAX_ORDER_QTY + 1 - 1)  # a whole order
    assert fills[:, 2].sum() == MAX_ORDER_QTY and book.best_bid() == 50
    assert book.depth(1)[0, 3] == 3 * MAX_ORDER_QTY


def test_a_message_above_the_largest_quantity_is_rejected_and_counted():
    batch = BookBatch(2, ladder_levels=64, order_capacity=64, trade_capacity=64)
    messages = np.array(
        [
            [[1, 1, 10, MAX_ORDER_QTY + 1, -1], [1, 1, 10, 3, -1], [2, -1, 0, 2**62, -1]],
            [[1, -1, 12, 2**62, 5], [4, 0, 0, 0, 5], [1, -1, 12, MAX_ORDER_QTY, -1]],
        ]
    )
    status = batch.apply(messages)
    assert status.tolist() == [[REJECT_INVALID, 0, REJECT_INVALID], [REJECT_INVALID, 5, 0]]
    assert batch.status_counts()["invalid"].tolist() == [2, 1]
    assert batch.depth(1).tolist() == [[[0, 0, 10, 3]], [[12, MAX_ORDER_QTY, 0, 0]]]


def test_a_uint64_id_beyond_int64_is_refused_not_turned_into_an_automatic_id():
    batch = BookBatch(1, ladder_levels=64, order_capacity=64, trade_capacity=64)
    messages = np.array([[[1, 1, 10, 3, 2**64 - 1]]], dtype=np.uint64)
    with pytest.raises(ValueError, match="order_id = 18446744073709551615"):
        batch.apply(messages)
    assert batch.depth(1).tolist() == [[[0, 0, 0, 0]]]


def test_automatic_ids_stop_at_the_largest_id_and_every_order_stays_cancellable():
    book = OrderBook(ladder_levels=64, order_capacity=64)
    book.limit(1, 10, 1, order_id=2**62)
    with pytest.raises(ValueError, match="order_id"):
        book.limit(1, 10, 1)
    assert len(book) == 1 and book.cancel(2**62) and len(book) == 0


# ---------------------------------------------------------------------------------------------
# 4. LOBSTER files: every malformed value named by file, line and field
# ---------------------------------------------------------------------------------------------

GOOD = "34200.1,1,16113575,18,5853300,1"


@pytest.mark.parametrize(
    ("text", "line", "field", "word"),
    [
        (GOOD + "\n34200.2,1, 18,18,5853300,1\n", 2, "order_id", "not an integer"),
        (GOOD + "\n34200.2,1,1_8,18,5853300,1\n", 2, "order_id", "not an integer"),
        ("34200.2,1,1,99999999999999999999,5853300,1\n", 1, "size", "64-bit"),
        ("34200.2,1,1,4611686018427387904,5853300,1\n", 1, "size", "largest order size"),
        (b"34200.2,1,1,\xff8,5853300,1\n", 1, "size", "UTF-8"),
        ("", 1, "time", "empty"),
        ("nan,1,1,1,1,1\n", 1, "time", "not a time"),
        (GOOD + "\n34200.0,1,1,1,5853300,1\n", 2, "time", "earlier"),
        ("34200.2,1,-1,1,5853300,1\n", 1, "order_id", "not an order id"),
        ("34200.2,1,1,1,-5853300,1\n", 1, "price", "not a price"),
        ("34200.2,1,1,0,5853300,1\n", 1, "size", "at least 1"),
        (GOOD + "\n\n" + GOOD + "\n", 2, "time", "blank line"),
        (GOOD + "\n34200.2,1,1\n", 2, "size", "missing value"),
        (GOOD + '\n34200.2,1,"1",1,5853300,1\n', 2, "order_id", "quote"),
        ("34200.2,7,0,0,3,-1\n", 1, "price", "halt"),
    ],
)
def test_every_malformed_message_names_file_line_and_field(tmp_path, text, line, field, word):
    path = tmp_path / "msg.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(LobsterFormatError, match=word) as info:
        read_messages(path)
    assert (info.value.line, info.value.field) == (line, field)
    assert str(path) in str(info.value)


def test_a_halt_and_a_hidden_execution_are_well_formed(tmp_path):
    path = tmp_path / "msg.csv"
    path.write_text(GOOD + "\n34200.2,7,0,0,-1,-1\n34200.3,5,0,100,5857900,-1\n")
    assert read_messages(path).height == 3


@pytest.mark.parametrize(
    ("text", "line", "field", "word"),
    [
        ("5859400,200,5853300,18\n5859400,9999999999999,-1,0\n", 2, "ask_size_1", "largest"),
        ("5859400,200,-5853300,18\n", 1, "bid_price_1", "positive price"),
        ("5859400,200,5853300,-18\n", 1, "bid_size_1", "negative"),
        ("5859400,200,5853300,18\n5859400,200\n", 2, "bid_price_1", "missing"),
    ],
)
def test_every_malformed_orderbook_row_names_file_line_and_field(tmp_path, text, line, field, word):
    path = tmp_path / "ob.csv"
    path.write_text(text)
    with pytest.raises(LobsterFormatError, match=word) as info:
        read_orderbook(path)
    assert (info.value.line, info.value.field) == (line, field)


def test_an_empty_levels_placeholder_price_is_accepted(tmp_path):
    path = tmp_path / "ob.csv"
    path.write_text("5859400,200,5853300,18,9999999999,0,-9999999999,0\n")
    assert read_orderbook(path).height == 1


def write_pair(tmp_path, messages: list[str], rows: list[str]) -> tuple[Path, Path]:
    msg, ob = tmp_path / "msg.csv", tmp_path / "ob.csv"
    msg.write_text("\n".join(messages) + "\n")
    ob.write_text("\n".join(rows) + "\n")
    return msg, ob


def test_the_huge_size_file_that_hung_replay_is_now_an_error(tmp_path, capsys):
    huge = 2**62
    messages = [f"34200.{i},1,{i + 1},{huge},1000{'0' * 2},1" for i in range(4)]
    messages += ["34200.5,1,9,1,99900,1", "34200.6,3,9,1,99900,1", "34200.7,4,1,1,100000,1"]
    rows = [f"200000,1,100000,{huge}"] * 7
    msg, ob = write_pair(tmp_path, messages, rows)
    assert main(["replay", str(msg), str(ob), "--repeat", "1"]) == 2
    one_line_error(capsys, str(msg), "line 1, field size", "largest order size")


def test_a_pair_with_a_missing_orderbook_row_names_the_line(tmp_path, capsys):
    msg, ob = write_pair(tmp_path, [GOOD, GOOD], ["5859400,200,5853300,18"])
    assert main(["replay", str(msg), str(ob)]) == 2
    one_line_error(capsys, str(ob), "line 2", "one orderbook row per message")


def test_a_price_beyond_the_engines_range_is_named(tmp_path):
    from fastlob.data.lobster import replay_lobster

    msg, ob = write_pair(tmp_path, ["34200.1,1,1,18,2000000000000000000,1"], ["300,1,200,1"])
    with pytest.raises(LobsterFormatError, match=r"line 1, field price: price .* ticks"):
        replay_lobster(msg, ob)


# ---------------------------------------------------------------------------------------------
# 5. command-line arguments: one line, exit code 2, before any work
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["replay", "m", "o", "--tick-size", "0"], ["--tick-size", ">= 1"]),
        (["replay", "m", "o", "--tick-size", "-100"], ["--tick-size"]),
        (["replay", "m", "o", "--ladder-levels", "1000"], ["ladder_levels", "power of two"]),
        (["eval", "--risk-aversion", "nan"], ["--risk-aversion"]),
        (["eval", "--episodes", "1"], ["--episodes", ">= 2"]),
        (["eval", "--tuning-episodes", "1"], ["--tuning-episodes", ">= 2"]),
        (["eval", "--tuning-episodes", "x"], ["--tuning-episodes", "not an integer"]),
        (["eval", "--seed", str(2**63)], ["seed", "9223372036854775800"]),
        (["optimum", "--eval-seed", str(2**63 - 1)], ["eval_seed", "9223372036854775806"]),
        (["optimum", "--eval-seed", str(10**20)], ["eval_seed"]),
        (["optimum", "--episodes", "3"], ["episodes", "[4,"]),
        (["report", "r", "--episodes", "-1"], ["--episodes"]),
        (["as2008", "--gamma", "inf"], ["--gamma"]),
        (["demo", "--steps", "0"], ["--steps"]),
        (["demo", "--time-limit", "-1"], ["--time-limit"]),
        (["bogus"], ["invalid choice"]),
    ],
)
def test_bad_arguments_exit_2_with_one_line(tmp_path, capsys, argv, words):
    if argv[0] == "replay" and "--ladder-levels" in argv:
        msg, ob = write_pair(tmp_path, [GOOD], ["5859400,200,5853300,18"])
        argv = ["replay", str(msg), str(ob), *argv[3:]]
    assert main(argv) == 2
    one_line_error(capsys, *words)


def test_eval_opens_and_checks_every_run_before_tuning_the_baselines(
    trained_run, tmp_path, capsys, monkeypatch
):
    import fastlob_agents.evaluate

    def no_tuning(*args, **kwargs):
        raise AssertionError("the baselines were tuned before the run was checked")

    monkeypatch.setattr(fastlob_agents.evaluate, "tune_baselines", no_tuning)
    assert main(["eval", str(tmp_path / "missing")]) == 2
    one_line_error(capsys, "missing", "not a training run")
    bad_json = copy_run(trained_run, tmp_path / "bad_json")
    (bad_json / "config.json").write_text("{not json")
    assert main(["eval", str(bad_json)]) == 2
    one_line_error(capsys, str(bad_json / "config.json"), "JSON")
    corrupt = copy_run(trained_run, tmp_path / "corrupt")
    (corrupt / "checkpoint.pt").write_bytes(b"garbage")
    assert main(["eval", str(corrupt)]) == 2
    one_line_error(capsys, str(corrupt / "checkpoint.pt"), "refused")


def test_report_of_a_run_with_a_corrupt_metrics_file_exits_2(trained_run, tmp_path, capsys):
    run = copy_run(trained_run, tmp_path / "run")
    (run / "metrics.parquet").write_bytes(b"PAR1 not really")
    assert main(["report", str(run)]) == 2
    one_line_error(capsys, str(run / "metrics.parquet"), "not a readable metrics file")
    (run / "metrics.parquet").write_bytes((trained_run / "metrics.parquet").read_bytes())
    (run / "eval.json").write_text('{"ppo": 1}')
    assert main(["report", str(run)]) == 2
    one_line_error(capsys, str(run / "eval.json"), "not an evaluation table")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (lambda good: good[: len(good) // 2], ["not valid JSON"]),
        (lambda good: good.replace('"format": 3', '"format": 2'), ["format 2, not 3"]),
        (lambda good: good.replace('"tuning_env_steps"', '"tuning_env_step"'),
         ["lacks tuning_env_steps"]),
        (lambda good: good.replace('"edges"', '"edge"', 1), ["lacks baselines.", ".edges"]),
        (lambda good: re.sub(r'("gamma": )[^,\n]+', r'\1"nan"', good, count=1),
         ["baselines.avellaneda_stoikov.params.gamma must be"]),
    ],
)  # fmt: skip
def test_report_and_fill_rates_refuse_a_bad_baselines_json_naming_file_and_field(
    trained_run, tmp_path, capsys, text, words
):
    # a missing field was a KeyError traceback (exit 1), a string gamma an error naming no file,
    # a NaN gamma or a negative size a report drawn from them; fill_rates_by_queue let
    # JSONDecodeError through
    from fastlob_agents.evaluate import fill_rates_by_queue

    assert not list(trained_run.glob("*.tmp"))  # evaluate wrote its files whole
    run = copy_run(trained_run, tmp_path / "run")
    choices = run / "baselines.json"
    choices.write_text(text(choices.read_text()))
    out = tmp_path / "report.html"
    assert main(["report", str(run), "--episodes", "2", "--out", str(out)]) == 2
    one_line_error(capsys, str(choices), *words)
    assert not out.exists()
    with pytest.raises(RunError, match=str(choices)):
        fill_rates_by_queue(run, episodes=2)


@pytest.mark.parametrize("algo", ["ppo", "sac", "dqn"])
def test_train_with_a_bad_market_flag_writes_no_run(tmp_path, capsys, algo):
    # the run's directory, config.json and event file were written before the market was checked
    argv = ["train", "--algo", algo, "--env.reward.mark", "liquidaton", "--num-envs", "2",
            "--runs-dir", str(tmp_path / "runs")]  # fmt: skip
    assert main(argv) == 2
    one_line_error(capsys, "config.reward.mark", "liquidaton")
    assert not (tmp_path / "runs").exists()


# ---------------------------------------------------------------------------------------------
# 6. the smaller holes
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("action", [np.array(["1"] * 5), np.ones(5, bool), np.zeros(5, complex)])
def test_the_single_env_refuses_what_the_vector_env_refuses(action):
    env = MarketMakingEnv(MarketMakingConfig(episode_steps=5))
    env.reset()
    with pytest.raises(TypeError, match="action"):
        env.step(action)
    with pytest.raises(TypeError, match="actions"):
        env.vector_env.step(action[None, :])


def test_an_env_too_large_for_memory_is_refused_up_front_naming_the_figure():
    with pytest.raises(ValueError, match=r"num_envs = 16777216 needs [0-9.]+ GiB"):
        MarketMakingVectorEnv(2**24)
    with pytest.raises(ValueError, match=r"num_books = 1 needs [0-9.]+ GiB"):
        BookBatch(1, ladder_levels=1024, order_capacity=2**30)


def test_reset_options_that_are_not_a_dict_are_named():
    env = MarketMakingVectorEnv(2, config=MarketMakingConfig(episode_steps=5))
    with pytest.raises(TypeError, match="options must be a dict"):
        env.reset(options=[1, 2])


def test_rates_given_as_strings_are_named():
    config = MarketMakingConfig(flow_levels=2, limit_rates=("1", "2"))
    with pytest.raises(TypeError, match=r"config\.limit_rates"):
        MarketMakingVectorEnv(1, config=config)


def test_the_bytes_per_book_formula_is_what_the_allocation_holds():
    from fastlob._kernels.book_layout import (
        BookParams,
        allocate_book_state,
        bytes_per_book,
        state_nbytes,
    )

    for params, dtype, records in [
        (BookParams(64, 32, 16), np.int64, False),
        (BookParams(1024, 4096, 4096), np.int64, False),
        (BookParams(128, 128, 64), np.int32, True),
    ]:
        state = allocate_book_state(3, params, order_records=records, level_qty_dtype=dtype)
        # up to one cache line of alignment padding per aligned buffer
        assert 0 <= state_nbytes(state) - 3 * bytes_per_book(params, dtype) <= 3 * 64


def test_the_readme_says_what_a_checkpoint_may_hold():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "weights_only" in readme and "refuse" in readme.lower()
