"""LOBSTER replay against the real sample, malformed files, and the ``fastlob replay`` command."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from fastlob.cli import main
from fastlob.data.lobster import (
    LobsterFormatError,
    read_messages,
    read_orderbook,
    reconstruct_rows,
    replay_lobster,
)


def file_rows(path):
    """The orderbook file read with the csv module (independent of the code under test)."""
    with open(path) as fh:
        rows = np.array([[int(x) for x in r] for r in csv.reader(fh)], dtype=np.int64)
    return rows.reshape(len(rows), -1, 4)


def test_sample_is_reproduced_row_by_row(lobster_sample):
    messages, orderbook = lobster_sample
    result = replay_lobster(messages, orderbook)
    expected = file_rows(orderbook)
    assert result.rows.shape == expected.shape == (999, 10, 4)
    assert result.rows_compared == 999 and result.rows_matched == 999
    sizes = expected[:, :, [1, 3]]
    assert np.array_equal(result.rows[:, :, [1, 3]], sizes)
    shown = sizes > 0
    assert np.array_equal(result.rows[:, :, [0, 2]][shown], expected[:, :, [0, 2]][shown])
    assert result.counters["mismatched_rows"] == 0
    assert result.counters["unexplained_cancel_qty"] == 0
    assert result.counters["rejected_submissions"] == 0
    assert result.counters["fills"] > 0  # executions went through the matching kernels


def test_reconstruct_rows_returns_the_window(lobster_sample):
    rows = reconstruct_rows(*lobster_sample)
    assert rows.dtype == np.int64 and rows.shape == (999, 10, 4)


def test_a_tampered_row_is_caught(lobster_sample, tmp_path):
    messages, orderbook = lobster_sample
    lines = orderbook.read_text().splitlines()
    fields = lines[500].split(",")
    fields[1] = str(int(fields[1]) + 1)  # best ask size off by one lot
    lines[500] = ",".join(fields)
    bad = tmp_path / "orderbook.csv"
    bad.write_text("\n".join(lines) + "\n")
    result = replay_lobster(messages, bad)
    assert not result.matched[500]
    assert result.rows_matched < result.rows_compared
    assert main(["replay", str(messages), str(bad)]) == 1


def test_cli_replay_prints_summary(lobster_sample, capsys):
    assert main(["replay", *map(str, lobster_sample), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rows_compared"] == out["rows_matched"] == 999
    assert out["messages_per_second"] > 0


def test_cli_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("fastlob ")


GOOD_MESSAGE = "34200.1,1,16113575,18,5853300,1"


@pytest.mark.parametrize(
    ("lines", "line_no", "field", "word"),
    [
        ([GOOD_MESSAGE, "34200.2,1,16113576,18,5853300"], 2, "direction", "columns"),
        ([GOOD_MESSAGE, GOOD_MESSAGE + ",7"], 2, "direction", "columns"),
        ([GOOD_MESSAGE, "34200.2,9,16113576,18,5853300,1"], 2, "type", "unknown event type"),
        (["34200.2,1,16113576,abc,5853300,1"], 1, "size", "not an integer"),
        ([GOOD_MESSAGE, GOOD_MESSAGE, "x,1,1,1,1,1"], 3, "time", "not a time"),
        ([GOOD_MESSAGE, "34200.2,1,16113576,18,5853300,0"], 2, "direction", "direction"),
    ],
)
def test_malformed_message_file_names_file_line_and_field(tmp_path, lines, line_no, field, word):
    path = tmp_path / "msg.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(LobsterFormatError, match=word) as info:
        read_messages(path)
    assert (info.value.line, info.value.field) == (line_no, field)
    assert str(path) in str(info.value)


def test_malformed_orderbook_file(tmp_path):
    path = tmp_path / "ob.csv"
    path.write_text("5859400,200,5853300,18\n5859400,2x0,5853300,18\n")
    with pytest.raises(LobsterFormatError, match="line 2, field ask_size_1"):
        read_orderbook(path)
    path.write_text("5859400,200,5853300\n")
    with pytest.raises(LobsterFormatError, match="4 per level"):
        read_orderbook(path)


def test_cli_reports_malformed_files(tmp_path, capsys):
    msg = tmp_path / "msg.csv"
    ob = tmp_path / "ob.csv"
    msg.write_text("34200.2,8,1,18,5853300,1\n")
    ob.write_text("5859400,200,5853300,18\n")
    assert main(["replay", str(msg), str(ob)]) == 2
    assert "line 1, field type" in capsys.readouterr().err


def test_price_off_the_tick_grid_is_an_error(tmp_path):
    msg = tmp_path / "msg.csv"
    ob = tmp_path / "ob.csv"
    msg.write_text("34200.2,1,1,18,5853350,1\n")
    ob.write_text("5859400,200,5853350,18\n")
    with pytest.raises(LobsterFormatError, match="tick_size"):
        replay_lobster(msg, ob)
