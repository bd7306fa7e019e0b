"""The ``fastlob`` command line (argparse subcommands; each is a thin shell over the public API).

Bad input (an argument out of range, a malformed or missing file, a run that cannot be used)
ends the command with exit code 2 and one line on stderr naming what is wrong; exit code 1 is
kept for a replay that does not match its orderbook file. ``FASTLOB_DEBUG=1`` shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

from fastlob._version import __version__


class UsageError(Exception):
    """Bad input at the command line: exit code 2, one line."""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage block): ``fastlob replay: error: ...``."""

    def error(self, message):
        raise UsageError(f"{self.prog}: error: {message}")


def _number(kind, low: float, high: float = math.inf, low_open: bool = False):
    """An argparse type: a ``kind`` (int or float) in [low, high] ((low, high] if low_open)."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {_KIND_WORDS[kind]}") from None
        if not math.isfinite(value) or value < low or (low_open and value == low) or value > high:
            allowed = f"{'>' if low_open else '>='} {low}"
            if math.isfinite(high):
                allowed += f" and <= {high}"
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


_KIND_WORDS = {int: "an integer", float: "a number"}

#: argparse types of the command-line numbers
POSITIVE_INT = _number(int, 1)
NON_NEGATIVE_INT = _number(int, 0)
NON_NEGATIVE_REAL = _number(float, 0.0)
POSITIVE_REAL = _number(float, 0.0, low_open=True)


def _replay(args) -> int:
    from fastlob.data.lobster import replay_lobster

    result = replay_lobster(
        args.message_file,
        args.orderbook_file,
        tick_size=args.tick_size,
        ladder_levels=args.ladder_levels,
        repeat=args.repeat,
    )
    summary = {
        "rows_compared": result.rows_compared,
        "rows_matched": result.rows_matched,
        "messages_per_second": round(result.messages_per_second),
        "seconds": result.seconds,
        **result.counters,
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"rows compared:    {result.rows_compared}")
        print(f"rows matched:     {result.rows_matched}")
        print(
            f"throughput:       {result.messages_per_second:,.0f} messages/s "
            f"(median of {args.repeat} replays of {result.messages} messages: "
            f"{result.seconds * 1e3:.3f} ms each, files read and JIT warm)"
        )
        for key, value in result.counters.items():
            print(f"{key + ':':<34}{value}")
    if result.rows_matched != result.rows_compared:
        first = int((~result.matched).argmax())
        print(f"MISMATCH: first differing row is message {first + 1} (1-based)", file=sys.stderr)
        return 1
    return 0


def new_parser() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    """The ``fastlob`` parser with its ``--version`` and no command yet; returns it and its
    subparsers (the layers above add their commands to them)."""
    parser = Parser(
        prog="fastlob",
        description="Reinforcement-learning market making on an exact, Numba-compiled order book.",
    )
    parser.add_argument("--version", action="version", version=f"fastlob {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    return parser, sub


def add_engine_commands(sub) -> None:
    """The engine's subcommands (replay, bench-guard, bench-history) on the subparsers ``sub``."""
    replay = sub.add_parser(
        "replay",
        help="replay a LOBSTER message file and check every row of its orderbook file",
        description="Replay a LOBSTER message file through the engine; after every message compare "
        "the engine's visible levels with the orderbook file's row. Exits 1 on any mismatch, "
        "2 on a malformed file.",
    )
    replay.add_argument("message_file", help="LOBSTER *_message_*.csv")
    replay.add_argument("orderbook_file", help="LOBSTER *_orderbook_*.csv")
    replay.add_argument(
        "--tick-size",
        type=POSITIVE_INT,
        default=100,
        help="price units per tick (default 100: one cent in dollars x 10000)",
    )
    replay.add_argument(
        "--ladder-levels",
        type=POSITIVE_INT,
        default=4096,
        help="ladder width of the engine's book, a power of two (default 4096)",
    )
    replay.add_argument(
        "--repeat",
        type=POSITIVE_INT,
        default=5,
        help="timed replays after a warm-up; throughput is their median (default 5)",
    )
    replay.add_argument("--json", action="store_true", help="print the summary as JSON")
    replay.set_defaults(func=_replay)

    bench_guard = sub.add_parser(
        "bench-guard",
        help="compare the benchmarks of this tree with a commit's, interleaved",
        description="Runs the benchmarks in bench/ of the working tree and of commit REV (in a "
        "temporary git worktree) in alternation, ROUNDS times each, and prints per benchmark "
        "both arms' median [min, max] of its ratio to the in-run reference (else its rate), the "
        "change and the noise; SLOWER when every run of this tree is below every run of REV.",
    )
    bench_guard.add_argument("against", metavar="REV", help="the commit to compare with")
    bench_guard.add_argument(
        "--rounds", type=POSITIVE_INT, default=3, help="runs of each tree (default 3)"
    )
    bench_guard.add_argument(
        "-k", dest="select", default=None, help="pytest -k expression selecting benchmarks"
    )
    bench_guard.set_defaults(func=_bench_guard)

    history = sub.add_parser(
        "bench-history",
        help="draw the saved benchmark runs (.benchmarks/) across commits as one HTML page",
        description="Reads every pytest-benchmark JSON under DIR (pytest --benchmark-only "
        "--benchmark-autosave saves them in .benchmarks/) and draws each benchmark's throughput "
        "and its ratio to the in-run reference across the runs, by commit, as one "
        "self-contained plotly page. Prints its path.",
    )
    history.add_argument("--dir", default=".benchmarks", help="saved runs (default .benchmarks)")
    history.add_argument(
        "--out", default="bench-history.html", help="the page (default bench-history.html)"
    )
    history.set_defaults(func=_bench_history)


def _bench_history(args) -> int:
    from fastlob.benchmarks import write_history

    print(write_history(args.dir, args.out))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The engine's command line alone (``python -m fastlob``)."""
    parser, sub = new_parser()
    add_engine_commands(sub)
    return parser


def _bench_guard(args) -> int:
    from fastlob.benchmarks import format_comparisons, guard

    def progress(text):
        print(text, file=sys.stderr, flush=True)

    rows = guard(args.against, rounds=args.rounds, select=args.select, progress=progress)
    print(format_comparisons(rows, args.against))
    return 0


#: what bad input raises below the command line: argument checks (ValueError, TypeError, their
#: subclasses LobsterFormatError and RunError) and files that cannot be read (OSError)
INPUT_ERRORS = (UsageError, ValueError, TypeError, OSError)


def run(argv, build, direct: dict) -> int:
    """Parse ``argv`` with the parser ``build()`` makes and run its command; ``direct`` maps a
    command name to a function of the remaining arguments that parses them itself (``train``).
    Bad input: one line on stderr and exit code 2 (the module docstring)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        if argv[:1] and argv[0] in direct:
            return direct[argv[0]](argv[1:])
        parser = build()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 0
        return args.func(args)
    except INPUT_ERRORS as err:
        if os.environ.get("FASTLOB_DEBUG"):
            raise
        text = " ".join(str(err).split())  # one line, whatever the message held
        if not isinstance(err, UsageError):
            command = " ".join(["fastlob", *argv[:1]])
            text = f"{command}: error: {text}"
        print(text, file=sys.stderr)
        return 2


def main(argv=None) -> int:
    """The engine's command line (``python -m fastlob``); the ``fastlob`` command adds the
    agents' commands to it (``fastlob_agents.cli``)."""
    return run(argv, build_parser, {})


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
