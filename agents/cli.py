"""The ``fastlob`` command: the engine's commands (``fastlob.cli``) and the agents' (train,
eval, report, demo, as2008).

It lives here, in the top layer, because it composes the layers below: the engine's command line
(``fastlob.cli``) knows nothing of the agents, and this one adds them to it. ``python -m
fastlob_agents`` is the same command; ``python -m fastlob`` offers the engine's commands alone.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from fastlob import MarketMakingConfig
from fastlob.cli import (
    AT_LEAST_TWO_INT,
    NON_NEGATIVE_INT,
    NON_NEGATIVE_REAL,
    POSITIVE_INT,
    POSITIVE_REAL,
    Parser,
    add_engine_commands,
    new_parser,
    run,
)


def _as2008(args) -> int:
    from .as2008 import PUBLISHED, run_as2008

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


def _market(args) -> MarketMakingConfig | None:
    """The market of ``--env-config`` (None when not given)."""
    return None if args.env_config is None else MarketMakingConfig.from_file(args.env_config)


def _add_env_config(parser, default_text: str) -> None:
    parser.add_argument(
        "--env-config",
        metavar="MARKET.json",
        default=None,
        help=f"the market, a file of MarketMakingConfig.to_json() (default: {default_text})",
    )


def _eval(args) -> int:
    from .evaluate import evaluate, format_table
    from .tuning import format_baselines

    result = evaluate(
        args.runs,
        episodes=args.episodes,
        seed=args.seed,
        risk_aversion=args.risk_aversion,
        tuning_episodes=args.tuning_episodes,
        config=_market(args),
    )
    for run_dir in args.runs:
        if Path(run_dir) not in result["written"]:
            print(
                f"fastlob eval: {run_dir} trained on another market: eval.json and baselines.json "
                "not written into it",
                file=sys.stderr,
            )
    if result["episodes"] < args.episodes:  # a historical part's non-overlapping windows
        print(
            f"fastlob eval: {result['episodes']} held-out episodes played, not {args.episodes}: "
            "the held-out part holds no more non-overlapping windows",
            file=sys.stderr,
        )
    if args.json:
        print(json.dumps(result["table"]))
    else:
        print(format_table(result["table"]))
        print()
        print(format_baselines(result["baselines"]))
    return 0


def _report(args) -> int:
    from .report import write_report

    path = write_report(
        args.run_dir, out=args.out, episodes=args.episodes, seed=args.seed, bench=args.bench
    )
    print(path)
    return 0


def _demo(args) -> int:
    from .demo import run_demo

    run_demo(
        runs_dir=args.runs_dir,
        steps=args.steps,
        seed=args.seed,
        env=_market(args),
        time_limit=args.time_limit,
    )
    return 0


def _study(args) -> int:
    from .study import main_study

    return main_study(
        args.study_file, out=args.out, address=args.address, reevaluate=args.reevaluate
    )


def _optimum(args) -> int:
    from .optimum import format_result, run_optimum

    result = run_optimum(
        seeds=tuple(args.seeds),
        algos=tuple(args.algos),
        out=args.out,
        steps=args.steps,
        episodes=args.episodes,
        workers=args.workers,
        eval_seed=args.eval_seed,
    )
    print(format_result(result))
    print(f"result: {Path(args.out) / 'optimum.json'}; figure: {Path(args.out) / 'optimum.html'}")
    return 0


#: the training algorithms: each a module of this package with a ``main(argv, prog)``
ALGORITHMS = ("dqn", "ppo", "sac")


def _train(argv: list[str]) -> int:
    """``fastlob train --algo A [config flags]``: the flags are the fields of the algorithm's
    config dataclass (tyro); ``fastlob train --algo A --help`` lists them."""
    import importlib

    parser = Parser(prog="fastlob train", add_help=False)
    parser.add_argument("--algo", choices=ALGORITHMS, default="ppo")
    parser.add_argument("--env-config", default=None)
    parser.add_argument("--lobster", nargs=2, default=None)
    known, rest = parser.parse_known_args(argv)
    if known.lobster is not None:  # the historical market: the config's env.lobster field
        rest = ["--env.lobster", *(str(Path(f).resolve()) for f in known.lobster), *rest]
    if not argv or argv in (["-h"], ["--help"]):
        print(
            "usage: fastlob train --algo {" + ",".join(ALGORITHMS) + "} [--env-config "
            "MARKET.json] [--lobster MESSAGE.csv ORDERBOOK.csv] [flags]\n"
            "  fastlob train --algo ALGO --help   lists the flags of that algorithm's config\n"
            "  --env-config MARKET.json           the market (MarketMakingConfig.to_json()); "
            "--env.* flags change it further\n"
            "  --lobster MESSAGE.csv ORDERBOOK.csv  train against that LOBSTER data's historical "
            "flow (its train part; fastlob eval plays its held-out part)"
        )
        return 0
    env = None if known.env_config is None else MarketMakingConfig.from_file(known.env_config)
    module = importlib.import_module(f".{known.algo}", __package__)
    result = module.main(rest, prog=f"fastlob train --algo {known.algo}", env=env)
    print(json.dumps({k: v for k, v in result.items() if isinstance(v, (int, float, str))}))
    return 0


#: the demo's training budget (agents.demo.DEMO.total_steps; not imported: it loads torch)
DEMO_STEPS = 15_000_000


def add_agent_commands(sub) -> None:
    """The agents' subcommands, on the subparsers ``sub`` of :func:`fastlob.cli.new_parser`."""
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
        description="Prints mean and 95%% CI of the mean-variance utility and episode PnL under "
        "the liquidation mark (then under the mid), Sharpe, inventory std, fill ratio and "
        "probability, spread captured, adverse-selection rate and max drawdown for each trained "
        "agent (run directories) and each baseline (AS and GLFT calibrated in the simulator, "
        "fixed spread, touch quoter with an inventory cap, each tuned over its quote size and "
        "its own parameter on episodes disjoint from the evaluation's; random), then each "
        "baseline's choice and the tuning budget in env-steps; writes eval.json and "
        "baselines.json into each run.",
    )
    evaluate.add_argument("runs", nargs="*", help="run directories of trained agents")
    evaluate.add_argument(
        "--episodes", type=AT_LEAST_TWO_INT, default=256, help="held-out episodes (at least 2)"
    )
    evaluate.add_argument("--seed", type=NON_NEGATIVE_INT, default=123_456, help="held-out seed")
    evaluate.add_argument(
        "--risk-aversion",
        type=NON_NEGATIVE_REAL,
        default=0.01,
        help="gamma of E[PnL] - gamma/2 Var[PnL]",
    )
    evaluate.add_argument(
        "--tuning-episodes",
        type=AT_LEAST_TWO_INT,
        default=128,
        help="episodes to tune the baselines on (at least 2)",
    )
    evaluate.add_argument("--json", action="store_true", help="print the table as JSON")
    _add_env_config(evaluate, "the market the first run trained on")
    evaluate.set_defaults(func=_eval)

    demo = sub.add_parser(
        "demo",
        help="train PPO on the default market (about six minutes), evaluate it, print the table "
        "and write the HTML report",
    )
    demo.add_argument("--runs-dir", default="runs", help="where runs/demo goes")
    demo.add_argument(
        "--steps",
        type=POSITIVE_INT,
        default=DEMO_STEPS,
        help=f"training env-steps (default {DEMO_STEPS:,}: about six minutes of training here)",
    )
    demo.add_argument(
        "--time-limit",
        type=POSITIVE_REAL,
        default=None,
        metavar="MINUTES",
        help="stop training early after this long (a safety stop, recorded in the run)",
    )
    demo.add_argument("--seed", type=NON_NEGATIVE_INT, default=1, help="training seed")
    _add_env_config(demo, "the default market with 200-step episodes")
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

    study = sub.add_parser(
        "study",
        help="run a grid of trainings and held-out evaluations over seeds on Ray",
        description="Reads STUDY.toml (algorithms, seeds, fixed and swept config fields: see "
        "fastlob_agents.study), runs every trial not yet finished as a Ray task (one Numba and "
        "one torch thread each, as many at once as the CPUs allow) and writes results.parquet, "
        "summary.parquet (means and 95%% between-seed intervals) and study.html into "
        "OUT/NAME. Exit 1 when trials failed (the rest is kept; rerun to retry them).",
    )
    study.add_argument("study_file", metavar="STUDY.toml")
    study.add_argument("--out", default="studies", help="where the study's folder goes")
    study.add_argument(
        "--address", default=None, help="join this Ray cluster (default: start a local one)"
    )
    study.add_argument(
        "--reevaluate",
        action="store_true",
        help="train nothing: evaluate every finished trial again (baselines tuned anew once per "
        "grid point, this version's metrics) and write the outputs again",
    )
    study.set_defaults(func=_study)

    optimum = sub.add_parser(
        "optimum",
        help="train on the linear-quadratic problem whose optimum is known; compare with it",
        description="Trains each algorithm once per seed on the linear-quadratic market-making "
        "problem (fastlob.LinearQuadraticVectorEnv; fastlob_agents.optimum.LQ_PARAMS), plays "
        "every trained policy, the closed-form optimum and the best fixed spread on the same "
        "held-out paths and prints each learner's share of the optimum's objective (per seed "
        "and its between-seed 95%% interval). Writes OUT/optimum.json and OUT/optimum.html "
        "(the quoted depths beside the optimal ones).",
    )
    optimum.add_argument(
        "--seeds", type=NON_NEGATIVE_INT, nargs="+", default=[1, 2, 3, 4, 5],
        help="training seeds (default 1 2 3 4 5)",
    )  # fmt: skip
    optimum.add_argument(
        "--algos", nargs="+", choices=("ppo", "sac"), default=["ppo"],
        help="learners (default ppo)",
    )  # fmt: skip
    optimum.add_argument(
        "--steps", type=POSITIVE_INT, default=None,
        help="training env-steps per run (default: each learner's own, LQ_PPO / LQ_SAC)",
    )  # fmt: skip
    optimum.add_argument(
        "--episodes", type=POSITIVE_INT, default=8192, help="held-out paths (default 8192)"
    )
    optimum.add_argument(
        "--eval-seed", type=NON_NEGATIVE_INT, default=123_456,
        help="seed of the held-out paths (default 123456)",
    )  # fmt: skip
    optimum.add_argument(
        "--workers", type=POSITIVE_INT, default=1,
        help="runs trained at a time, each in its own process on one thread (default 1: one "
        "after another, torch on its default threads)",
    )  # fmt: skip
    optimum.add_argument("--out", default="runs/optimum", help="where the runs and results go")
    optimum.set_defaults(func=_optimum)

    sub.add_parser(
        "train",
        help="train an agent on the order-book env (fastlob train --algo ppo --help)",
        add_help=False,
    )


def build_parser():
    parser, sub = new_parser()
    add_engine_commands(sub)
    add_agent_commands(sub)
    return parser


def main(argv=None) -> int:
    """Run the ``fastlob`` command (``argv`` defaults to ``sys.argv[1:]``); returns the exit
    code: 0, 1 for a replay mismatch, 2 for bad input (one line on stderr)."""
    return run(argv, build_parser, {"train": _train})


if __name__ == "__main__":  # pragma: no cover
    import sys

    sys.exit(main())
