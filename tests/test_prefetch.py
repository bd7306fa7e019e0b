"""``fastlob._numba.prefetch``: a hint the compiler turns into a prefetch instruction, that
changes no value, and that is a no-op as plain Python."""

from __future__ import annotations

import platform
import re

import numba
import numpy as np
import pytest

from fastlob._numba import prefetch


@numba.njit
def _sum_prefetching(values, table, ahead):
    total = 0.0
    for i in range(values.shape[0]):
        prefetch(values, i + ahead)  # past the end, and negative: a hint faults on nothing
        prefetch(values, i - ahead)
        prefetch(table, (i % table.shape[0], np.int32(i)))  # mixed integer types
        total += values[i]
    return total


def test_prefetch_changes_no_value():
    values = np.random.default_rng(0).standard_normal(1000)
    table = np.arange(12.0).reshape(3, 4)
    before = (values.copy(), table.copy())
    expected = sum(float(v) for v in values)  # the same left-to-right order
    assert _sum_prefetching(values, table, 64) == expected
    assert _sum_prefetching.py_func(values, table, 64) == expected
    assert np.array_equal(values, before[0]) and np.array_equal(table, before[1])
    assert prefetch(table, (1, 2)) is None  # plain Python: nothing happens


@pytest.mark.skipif(
    platform.machine() not in ("x86_64", "AMD64", "aarch64", "arm64"),
    reason="the prefetch instruction's name is known for x86-64 and AArch64 only",
)
def test_prefetch_compiles_to_a_prefetch_instruction():
    values = np.zeros(8)
    _sum_prefetching(values, values.reshape(2, 4), 1)
    asm = _sum_prefetching.inspect_asm(_sum_prefetching.signatures[0]).lower()
    # an instruction, not a name (the function's own symbol contains "prefetch"): prefetchw
    # where the CPU has it (write intent), else prefetcht0; prfm on AArch64
    instruction = re.compile(r"^\s*(prefetch(w|t0|t1|t2|nta)?|prfm)\s", re.MULTILINE)
    assert instruction.search(asm)


def test_prefetch_rejects_an_index_that_does_not_fit_the_array():
    @numba.njit
    def one_index_for_two_dimensions(table):
        prefetch(table, 1)

    @numba.njit
    def float_index(values):
        prefetch(values, 1.5)

    with pytest.raises(numba.core.errors.TypingError):
        one_index_for_two_dimensions(np.zeros((2, 2)))
    with pytest.raises(numba.core.errors.TypingError):
        float_index(np.zeros(2))
