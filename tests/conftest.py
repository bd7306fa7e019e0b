"""Shared test helpers. Test sizes stay small: Numba compile time is part of the suite's time."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

LOBSTER_DIR = Path(
    os.environ.get(
        "FASTLOB_LOBSTER_DIR",
        Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "lobster",
    )
).resolve()
LOBSTER_MESSAGES = LOBSTER_DIR / "AAPL_2012-06-21_34200000_57600000_message_10.csv"
LOBSTER_ORDERBOOK = LOBSTER_DIR / "AAPL_2012-06-21_34200000_57600000_orderbook_10.csv"


@pytest.fixture
def lobster_sample():
    if not (LOBSTER_MESSAGES.is_file() and LOBSTER_ORDERBOOK.is_file()):
        pytest.skip(
            f"LOBSTER sample not found in {LOBSTER_DIR} (it lives in ../shared/data/lobster "
            "beside the checkout; set FASTLOB_LOBSTER_DIR to point elsewhere)"
        )
    return LOBSTER_MESSAGES, LOBSTER_ORDERBOOK
