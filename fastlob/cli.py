"""The ``fastlob`` command line (argparse subcommands; each is a thin shell over the public API)."""

from __future__ import annotations

import argparse
import json
import sys

from fastlob._version import __version__


def _replay(args) -> int:
    from fastlob.data.lobster import LobsterFormatError, replay_lobster

    try:
        result = replay_lobster(
            args.message_file,
            args.orderbook_file,
            tick_size=args.tick_size,
            ladder_levels=args.ladder_levels,
            repeat=args.repeat,
        )
    except (LobsterFormatError, FileNotFoundError, ValueError) as err:
        print(f"fastlob replay: error: {err}", file=sys.stderr)
        return 2
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastlob",
        description="Reinforcement-learning market making on an exact, Numba-compiled order book.",
    )
    parser.add_argument("--version", action="version", version=f"fastlob {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

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
        type=int,
        default=100,
        help="price units per tick (default 100: one cent in dollars x 10000)",
    )
    replay.add_argument(
        "--ladder-levels",
        type=int,
        default=4096,
        help="ladder width of the engine's book, a power of two (default 4096)",
    )
    replay.add_argument(
        "--repeat",
        type=int,
        default=5,
        help="timed replays after a warm-up; throughput is their median (default 5)",
    )
    replay.add_argument("--json", action="store_true", help="print the summary as JSON")
    replay.set_defaults(func=_replay)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
