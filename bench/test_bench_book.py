"""Order-book throughput: random message streams through one book and through N = 4096 books,
and the LOBSTER sample replay, each with the plain-Python reference measured in the same run.

Figures go into ``benchmark.extra_info`` (messages/s, ratio to the reference, bytes per book) and
are printed at the end; ``pytest --benchmark-only`` runs them.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from bench_support import LOBSTER_DIR, host_now, host_text, machine, sized, smoke_run
from reference_book import ReferenceBook

from fastlob import BookBatch
from fastlob._kernels import book as K
from fastlob._kernels.book_layout import copy_state
from fastlob.data.synthetic import random_message_stream

SINGLE_MESSAGES = sized(1_000_000, 2_000)
BATCH_BOOKS, BATCH_MESSAGES = sized((4096, 256), (8, 64))
REFERENCE_MESSAGES = sized(20_000, 500)
RESULTS = {}


def reference_rate(messages) -> float:
    """Messages/s of the plain-Python reference book on the same stream."""
    ref = ReferenceBook(ladder_levels=1024, order_capacity=4096)
    rows = messages[0, :REFERENCE_MESSAGES].tolist()
    start = time.perf_counter()
    for row in rows:
        ref.apply(*row)
    return len(rows) / (time.perf_counter() - start)


def run_kernel(benchmark, batch, messages, rounds):
    """Benchmark the batched driver over fresh copies of ``batch``'s state; returns messages/s."""
    counts = np.full(messages.shape[0], messages.shape[1], np.int64)
    status = np.zeros(messages.shape[:2], np.int8)
    pristine = copy_state(batch.state)
    K.apply_messages(copy_state(pristine), messages[:, :10], counts * 0 + 10, status)  # warm-up

    def setup():
        return (copy_state(pristine), messages, counts, status), {}

    benchmark.pedantic(K.apply_messages, setup=setup, rounds=rounds, iterations=1)
    if smoke_run():
        return float("nan")  # ran once, timed nothing
    return messages.size // messages.shape[2] / benchmark.stats.stats.median


def report(benchmark, name, rate, ref_rate, nbytes=None):
    if smoke_run():
        return
    RESULTS[name] = (rate, ref_rate)
    host = host_now()
    benchmark.extra_info.update(
        messages_per_s=rate,
        reference_messages_per_s=ref_rate,
        ratio=rate / ref_rate,
        **host,
        **machine(),
    )
    if nbytes is not None:
        benchmark.extra_info["bytes_per_book"] = nbytes
    per_book = "" if nbytes is None else f", {nbytes / 1024:.0f} KiB of state per book"
    print(
        f"\n{name}: {rate / 1e6:.2f} M msg/s, reference {ref_rate / 1e3:.1f} k msg/s, "
        f"ratio {rate / ref_rate:.0f}x{per_book}; {host_text(host)}  [{machine()}]"
    )


@pytest.fixture(scope="module")
def single_stream():
    return random_message_stream(1, SINGLE_MESSAGES, seed=1)


def test_random_stream_one_book(benchmark, single_stream):
    batch = BookBatch(1, ladder_levels=1024, order_capacity=4096, trade_capacity=SINGLE_MESSAGES)
    rate = run_kernel(benchmark, batch, single_stream, rounds=5)
    # no bytes figure here: this book's trade buffer holds a million undrained fills
    report(benchmark, "random stream, 1 book", rate, reference_rate(single_stream))


def test_random_stream_4096_books(benchmark, single_stream):
    messages = random_message_stream(BATCH_BOOKS, BATCH_MESSAGES, seed=2)
    batch = BookBatch(
        BATCH_BOOKS, ladder_levels=256, order_capacity=256, trade_capacity=BATCH_MESSAGES
    )
    rate = run_kernel(benchmark, batch, messages, rounds=5)
    report(
        benchmark,
        f"random stream, {BATCH_BOOKS} books",
        rate,
        reference_rate(single_stream),
        nbytes=batch.nbytes // BATCH_BOOKS,
    )


def test_lobster_replay(benchmark):
    from fastlob._kernels import replay as R
    from fastlob._kernels.book_layout import BookParams, allocate_book_state
    from fastlob.data.lobster import prepare_replay

    message = LOBSTER_DIR / "AAPL_2012-06-21_34200000_57600000_message_10.csv"
    orderbook = LOBSTER_DIR / "AAPL_2012-06-21_34200000_57600000_orderbook_10.csv"
    if not message.is_file():
        pytest.skip(f"LOBSTER sample not found in {LOBSTER_DIR}")
    initial, messages, rows = prepare_replay(message, orderbook)
    out_rows = np.zeros_like(rows)
    matched = np.zeros(len(rows), np.bool_)

    def setup():
        state = allocate_book_state(1, BookParams(4096, 1 << 16, 1 << 16))
        counters = np.zeros(R.NUM_COUNTERS, np.int64)
        return (state, initial, messages, rows, out_rows, matched, counters), {}

    R.replay_lobster_kernel(*setup()[0])  # compile / load from cache, first-call cost
    benchmark.pedantic(R.replay_lobster_kernel, setup=setup, rounds=20, iterations=1)
    assert matched.all()
    if smoke_run():
        return
    rate = len(messages) / benchmark.stats.stats.median
    benchmark.extra_info.update(messages_per_s=rate, **machine())
    print(
        f"\nLOBSTER replay (999 AAPL messages, 10 levels compared after each): "
        f"{rate / 1e6:.2f} M msg/s  [{machine()}]"
    )
