"""Shared fixtures. Test sizes stay small: Numba compile time is part of the suite's time."""

from __future__ import annotations

import pytest
from support import LOBSTER_DIR, LOBSTER_MESSAGES, LOBSTER_ORDERBOOK


@pytest.fixture
def lobster_sample():
    if not (LOBSTER_MESSAGES.is_file() and LOBSTER_ORDERBOOK.is_file()):
        pytest.skip(
            f"LOBSTER sample not found in {LOBSTER_DIR} (it lives in ../shared/data/lobster "
            "beside the checkout; set FASTLOB_LOBSTER_DIR to point elsewhere)"
        )
    return LOBSTER_MESSAGES, LOBSTER_ORDERBOOK
