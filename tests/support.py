"""Helpers the tests import (kept out of conftest.py: the benchmarks have a conftest too, and
pytest keeps one module named ``conftest`` at a time)."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import numpy as np

LOBSTER_DIR = Path(
    os.environ.get(
        "FASTLOB_LOBSTER_DIR",
        Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "lobster",
    )
).resolve()
LOBSTER_MESSAGES = LOBSTER_DIR / "AAPL_2012-06-21_34200000_57600000_message_10.csv"
LOBSTER_ORDERBOOK = LOBSTER_DIR / "AAPL_2012-06-21_34200000_57600000_orderbook_10.csv"


def states_equal(a, b) -> bool:
    """Every array of two BookStates is identical."""
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


@contextlib.contextmanager
def no_hang(seconds: int = 30):
    """Fail (instead of hanging the suite) if the block runs longer than ``seconds`` (checked
    when the block returns to Python: a compiled kernel finishes its call first)."""

    def alarm(signum, frame):
        raise AssertionError(f"no answer within {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def one_line_error(capsys, *words) -> str:
    """The command's stderr: one line, no traceback, holding every one of ``words``."""
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, err
    return err
