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
from pathlib import Path

from fastlob._checks import check_output_file, write_text_whole
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
#: a count of episodes that a confidence interval or a variance is taken over
AT_LEAST_TWO_INT = _number(int, 2)


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
    """The engine's subcommands (replay, calibrate, simulate, realism, bench-guard,
    bench-history) on the subparsers ``sub``."""
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
        "change and the noise; SLOWER when every run of this tree is below every run of REV. "
        "Exits 2 when REV is not a commit, -k selects no benchmark or none ran; stopped by "
        "SIGTERM it removes its worktree first (exit 143).",
    )
    bench_guard.add_argument("against", metavar="REV", help="the commit to compare with")
    bench_guard.add_argument(
        "--rounds", type=POSITIVE_INT, default=3, help="runs of each tree (default 3)"
    )
    bench_guard.add_argument(
        "-k", dest="select", default=None, help="pytest -k expression selecting benchmarks"
    )
    bench_guard.set_defaults(func=_bench_guard)

    calibrate = sub.add_parser(
        "calibrate",
        help="fit the simulated market to a LOBSTER day and write it as a market file",
        description="Estimates the background flow from a LOBSTER pair (any level count): the "
        "tick and lot, lambda(i) and theta(i) for i = 1..D ticks from the opposite best, mu, "
        "the limit- and market-order size distributions and Hawkes (alpha, beta) by maximum "
        "likelihood, with standard errors and what the estimators left out; prints them and "
        "writes the fitted MarketMakingConfig as JSON (--env-config of every command).",
    )
    calibrate.add_argument("message_file", help="LOBSTER *_message_*.csv")
    calibrate.add_argument("orderbook_file", help="LOBSTER *_orderbook_*.csv")
    calibrate.add_argument("--out", default="market.json", help="market file (default market.json)")
    calibrate.add_argument(
        "--lot-size", type=POSITIVE_REAL, default=None,
        help="shares per lot (default: the median submission size)",
    )  # fmt: skip
    calibrate.add_argument(
        "--tick-size", type=POSITIVE_INT, default=None,
        help="price units per tick (default: inferred from the prices)",
    )  # fmt: skip
    calibrate.add_argument(
        "--levels", type=POSITIVE_INT, default=None,
        help="D, distances to fit (default: those the data keep in view 90%% of the time)",
    )  # fmt: skip
    calibrate.add_argument("--no-hawkes", action="store_true", help="fit Poisson market orders")
    calibrate.set_defaults(func=_calibrate)

    simulate = sub.add_parser(
        "simulate",
        help="write a market's simulated flow (one book, no market maker) as a LOBSTER pair",
        description="Runs one book of the market in --env-config (default: the default market) "
        "for --seconds and writes its messages and orderbook rows as LOBSTER files in "
        "--lobster-out; prints their paths.",
    )
    simulate.add_argument("--env-config", default=None, metavar="MARKET.json")
    simulate.add_argument("--seconds", type=POSITIVE_REAL, required=True)
    simulate.add_argument("--seed", type=NON_NEGATIVE_INT, default=0)
    simulate.add_argument("--lobster-out", required=True, metavar="DIR")
    simulate.add_argument("--levels", type=POSITIVE_INT, default=10, help="levels of the rows")
    simulate.add_argument(
        "--warmup", type=NON_NEGATIVE_REAL, default=0.0,
        help="seconds of flow before the first logged message (default 0: from the empty book)",
    )  # fmt: skip
    simulate.set_defaults(func=_simulate)

    realism = sub.add_parser(
        "realism",
        help="compare a market file's simulated market with a LOBSTER day, side by side",
        description="Simulates the market of MARKET.json for as long as the data cover (--runs "
        "times) and compares spread, depth, returns, their autocorrelation, the volatility "
        "signature, inter-arrival times, order sizes, price impact and event rates with the "
        "data's, each with a distance; prints the table and writes one HTML page.",
    )
    realism.add_argument("market", metavar="MARKET.json")
    realism.add_argument("message_file")
    realism.add_argument("orderbook_file")
    realism.add_argument("--out", default="realism.html")
    realism.add_argument("--runs", type=POSITIVE_INT, default=3)
    realism.add_argument("--seed", type=NON_NEGATIVE_INT, default=0)
    realism.add_argument("--warmup", type=NON_NEGATIVE_REAL, default=300.0)
    realism.add_argument("--json", action="store_true", help="print the table as JSON")
    realism.set_defaults(func=_realism)

    history = sub.add_parser(
        "bench-history",
        help="draw the saved benchmark runs (.benchmarks/) across commits as one HTML page",
        description="Reads every pytest-benchmark JSON under DIR (pytest --benchmark-only "
        "--benchmark-autosave saves them in .benchmarks/) and draws each benchmark's throughput "
        "and its ratio to the in-run reference across the runs, by commit, as one "
        "self-contained plotly page. Prints its path. Exits 2, writing nothing, when a JSON "
        "file under DIR is not a pytest-benchmark run (each such file named).",
    )
    history.add_argument("--dir", default=".benchmarks", help="saved runs (default .benchmarks)")
    history.add_argument(
        "--out", default="bench-history.html", help="the page (default bench-history.html)"
    )
    history.set_defaults(func=_bench_history)


def _calibrate(args) -> int:
    from fastlob.calibration import fit_lobster

    check_output_file(args.out, "--out")  # before the fit
    fit = fit_lobster(
        args.message_file, args.orderbook_file, lot_size=args.lot_size,
        tick_size=args.tick_size, levels=args.levels, hawkes=not args.no_hawkes,
    )  # fmt: skip
    write_text_whole(args.out, fit.config().to_json())
    print(fit.summary())
    print(f"market: {args.out}")
    return 0


def _simulate(args) -> int:
    from fastlob.data.lobster import write_day
    from fastlob.data.simulated import simulate_day
    from fastlob.env import MarketMakingConfig

    config = (
        MarketMakingConfig()
        if args.env_config is None
        else MarketMakingConfig.from_file(args.env_config)
    )
    day = simulate_day(config, args.seconds, seed=args.seed, levels=args.levels, warmup=args.warmup)
    for path in write_day(day, args.lobster_out):
        print(path)
    return 0


def _realism(args) -> int:
    from fastlob.data.lobster import read_day
    from fastlob.env import MarketMakingConfig
    from fastlob.realism import realism, write_realism

    check_output_file(args.out, "--out")  # before the simulations
    config = MarketMakingConfig.from_file(args.market)
    day = read_day(args.message_file, args.orderbook_file)
    comparison = realism(config, day, runs=args.runs, seed=args.seed, warmup=args.warmup)
    table = comparison.table()
    path = write_realism(comparison, args.out, title=Path(args.message_file).name)
    if args.json:
        print(json.dumps(table))
    else:
        for row in table:
            dist = ", ".join(
                f"{k} {v:.4g}" for k, v in row.items() if k in ("wasserstein", "ks", "l1")
            )
            print(f"{row['statistic']:<16} real {row['real']:>10.4g}  simulated "
                  f"{row['simulated']:>10.4g}  {dist}")  # fmt: skip
        print(f"report: {path}")
    return 0


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
