"""Test lanes: the kernel tests again under other Numba settings, each in a fresh subprocess.

- ``NUMBA_BOUNDSCHECK=1``: every array index in the kernels is checked. Numba's on-disk cache
  does not key on this flag, so the lane compiles into its own cache directory.
- ``NUMBA_DISABLE_JIT=1``: the kernels run as plain Python (they are kept valid Python for
  exactly this: debugging and coverage).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
KERNEL_TESTS = [
    "test_book_api.py",
    "test_book_reference.py",
    "test_batched.py",
    "test_as_env.py",
    "test_flow.py",
    "test_mm_env.py",
]
IN_LANE = "FASTLOB_TEST_LANE"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bool(os.environ.get(IN_LANE)), reason="already inside a lane"),
]


def run_lane(tmp_path, extra_env, tests, *pytest_args):
    env = dict(os.environ, **extra_env, NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"))
    env[IN_LANE] = "1"
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        *pytest_args,
        *(str(TESTS / t) for t in tests),
    ]
    proc = subprocess.run(
        cmd, cwd=TESTS.parent, env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert " passed" in proc.stdout


def test_kernel_tests_with_boundscheck(tmp_path):
    run_lane(tmp_path, {"NUMBA_BOUNDSCHECK": "1"}, KERNEL_TESTS)


def test_kernel_tests_without_jit(tmp_path):
    run_lane(tmp_path, {"NUMBA_DISABLE_JIT": "1"}, KERNEL_TESTS)
