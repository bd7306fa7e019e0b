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


class _Parser(argparse.ArgumentParser):
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


def _as2008(args) -> int:
    from agents.as2008 import PUBLISHED, run_as2008

    result = run_as2008(args.gamma, paths=args.paths, seed=args.seed)
    if args.json:
        print(json.dumps(result))
        return 0
    published = PUBLISHED.get(args.gamma)
    print(f"Avellaneda-Stoikov (2008), gamma={args.gamma}, {args.paths} paths, seed {args.seed}")
    print(
        f"{'strategy':<10} {'spread':>7} {'profit mean':>12} {'profit std':>11} "
        f"{'final q mean':>13} {'final q std':>12}"
    )
    for name, row in result.items():
        print(
            f"{name:<10} {row['spread']:>7.2f} {row['profit_mean']:>12.2f} "
            f"{row['profit_std']:>11.2f} {row['q_mean']:>13.2f} {row['q_std']:>12.2f}"
        )
        if published:
            mean, std, q_std = published[name]
            print(
                f"{'  paper':<10} {published['spread']:>7.2f} {mean:>12.2f} {std:>11.2f} "
                f"{'':>13} {q_std:>12.2f}"
            )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="fastlob",
        description="Reinforcement-learning market making on an exact, Numba-compiled order book.",
    )
    parser.add_argument("--version", action="version", version=f"fastlob {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

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

    as2008 = sub.add_parser(
        "as2008",
        help="reproduce the simulation tables of Avellaneda & Stoikov (2008)",
        description="Simulate the inventory strategy and the symmetric strategy (same average "
        "spread, centred on the mid) in the Avellaneda-Stoikov model with the paper's "
        "parameters (s=100, T=1, sigma=2, dt=0.005, q0=0, k=1.5, A=140).",
    )
    as2008.add_argument(
        "--gamma", type=POSITIVE_REAL, default=0.1, help="risk aversion (default 0.1)"
    )
    as2008.add_argument(
        "--paths", type=POSITIVE_INT, default=1000, help="simulated paths (default 1000)"
    )
    as2008.add_argument("--seed", type=NON_NEGATIVE_INT, default=0, help="seed (default 0)")
    as2008.add_argument(
        "--json", action="store_true", help='print {"inventory": {...}, "symmetric": {...}} as JSON'
    )
    as2008.set_defaults(func=_as2008)

    evaluate = sub.add_parser(
        "eval",
        help="evaluate trained agents and every baseline on the same held-out episodes",
        description="Prints mean and 95%% CI of episode PnL, Sharpe, mean-variance utility, "
        "inventory std, fill rate, spread captured, adverse-selection rate and max drawdown for "
        "each trained agent (run directories) and each baseline (AS and GLFT calibrated in the "
        "simulator, fixed spread at its best width, random); writes eval.json into each run.",
    )
    evaluate.add_argument("runs", nargs="*", help="run directories of trained agents")
    evaluate.add_argument("--episodes", type=POSITIVE_INT, default=256, help="held-out episodes")
    evaluate.add_argument("--seed", type=NON_NEGATIVE_INT, default=123_456, help="held-out seed")
    evaluate.add_argument(
        "--risk-aversion",
        type=NON_NEGATIVE_REAL,
        default=0.01,
        help="gamma of E[PnL] - gamma/2 Var[PnL]",
    )
    evaluate.add_argument(
        "--tuning-episodes",
        type=POSITIVE_INT,
        default=128,
        help="episodes to tune the baselines on",
    )
    evaluate.add_argument("--json", action="store_true", help="print the table as JSON")
    evaluate.set_defaults(func=_eval)

    demo = sub.add_parser(
        "demo",
        help="train PPO on the default market (about five minutes), evaluate it, print the table "
        "and write the HTML report",
    )
    demo.add_argument("--runs-dir", default="runs", help="where runs/demo goes")
    demo.add_argument(
        "--minutes", type=POSITIVE_REAL, default=4.0, help="training time budget (default 4)"
    )
    demo.add_argument("--seed", type=NON_NEGATIVE_INT, default=1, help="training seed")
    demo.set_defaults(func=_demo)

    report = sub.add_parser(
        "report",
        help="write a run's self-contained HTML report (table, heatmaps, learning curves)",
        description="One HTML file (plotly embedded, opens offline): the evaluation table "
        "(eval.json, computed first if the run has none), the learning curves, the heatmaps of "
        "the trained agent beside the best classical baseline on held-out episodes, the "
        "inventory distribution and, with --bench, the simulator's throughput against N and "
        "threads. Prints the file's path.",
    )
    report.add_argument("run_dir", help="a training run's directory (runs/NAME)")
    report.add_argument("--out", default=None, help="output file (default RUN_DIR/report.html)")
    report.add_argument(
        "--episodes",
        type=POSITIVE_INT,
        default=64,
        help="held-out episodes for the heatmaps (default 64)",
    )
    report.add_argument("--seed", type=NON_NEGATIVE_INT, default=123_456, help="held-out seed")
    report.add_argument(
        "--bench",
        default=None,
        help="pytest-benchmark JSON of bench/test_bench_mm.py (--benchmark-json FILE) to plot",
    )
    report.set_defaults(func=_report)

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

    sub.add_parser(
        "train",
        help="train an agent on the order-book env (fastlob train --algo ppo --help)",
        add_help=False,
    )
    return parser


def _bench_guard(args) -> int:
    from fastlob.benchmarks import format_comparisons, guard

    def progress(text):
        print(text, file=sys.stderr, flush=True)

    rows = guard(args.against, rounds=args.rounds, select=args.select, progress=progress)
    print(format_comparisons(rows, args.against))
    return 0


def _eval(args) -> int:
    from agents.evaluate import evaluate, format_table

    result = evaluate(
        args.runs,
        episodes=args.episodes,
        seed=args.seed,
        risk_aversion=args.risk_aversion,
        tuning_episodes=args.tuning_episodes,
    )
    if args.json:
        print(json.dumps(result["table"]))
    else:
        print(format_table(result["table"]))
        print("baselines: " + json.dumps(result["baselines"]))
    return 0


def _report(args) -> int:
    from agents.report import write_report

    path = write_report(
        args.run_dir, out=args.out, episodes=args.episodes, seed=args.seed, bench=args.bench
    )
    print(path)
    return 0


def _demo(args) -> int:
    from agents.demo import run_demo

    run_demo(runs_dir=args.runs_dir, minutes=args.minutes, seed=args.seed)
    return 0


#: training entry points by algorithm: module of the agent, its config class, its train function
ALGORITHMS = {"ppo": "agents.ppo", "sac": "agents.sac", "dqn": "agents.dqn"}


def _train(argv: list[str]) -> int:
    """``fastlob train --algo A [config flags]``: the flags are the fields of the algorithm's
    config dataclass (tyro); ``fastlob train --algo A --help`` lists them."""
    import importlib

    parser = argparse.ArgumentParser(prog="fastlob train", add_help=False)
    parser.add_argument("--algo", choices=sorted(ALGORITHMS), default="ppo")
    known, rest = parser.parse_known_args(argv)
    if not argv or argv in (["-h"], ["--help"]):
        print(
            "usage: fastlob train --algo {" + ",".join(sorted(ALGORITHMS)) + "} [flags]\n"
            "  fastlob train --algo ALGO --help   lists the flags of that algorithm's config"
        )
        return 0
    module = importlib.import_module(ALGORITHMS[known.algo])
    result = module.main(rest, prog=f"fastlob train --algo {known.algo}")
    print(json.dumps({k: v for k, v in result.items() if isinstance(v, (int, float, str))}))
    return 0


#: what bad input raises below the command line: argument checks (ValueError, TypeError, their
#: subclasses LobsterFormatError and RunError) and files that cannot be read (OSError)
INPUT_ERRORS = (UsageError, ValueError, TypeError, OSError)


def _run(argv: list[str]) -> int:
    if argv[:1] == ["train"]:
        return _train(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    return args.func(args)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        return _run(argv)
    except INPUT_ERRORS as err:
        if os.environ.get("FASTLOB_DEBUG"):
            raise
        text = " ".join(str(err).split())  # one line, whatever the message held
        if not isinstance(err, UsageError):
            command = " ".join(["fastlob", *argv[:1]])
            text = f"{command}: error: {text}"
        print(text, file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
