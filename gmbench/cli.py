"""Command line: `gmbench list | run | eval | stats | report | compare | history | train-classifier`.

User mistakes (GmbenchError) print one paragraph on stderr and exit 2; `--debug` shows tracebacks.
Each command is a ``cmd_<name>(args) -> int`` function with its parser in ``build_parser``.
"""
from __future__ import annotations

import argparse
import json
import sys
import textwrap

from gmbench.errors import GmbenchError


def cmd_list(args) -> int:
    from gmbench.registry import DATASETS, EXTRACTORS, MODELS, PLUGIN_FAILURES

    listing = {
        "models": [{"name": n, "family": MODELS.get(n).family} for n in MODELS.names()],
        "datasets": DATASETS.names(),
        "extractors": EXTRACTORS.names(),
        "plugin_failures": [{"name": f.name, "error": f.error} for f in PLUGIN_FAILURES],
    }
    if args.json:
        print(json.dumps(listing, indent=2))
        return 0
    print("models:")
    for m in listing["models"]:
        print(f"  {m['name']:<16} {m['family']}")
    print("datasets:\n  " + "\n  ".join(listing["datasets"]))
    print("extractors:\n  " + ("\n  ".join(listing["extractors"]) or "(none)"))
    for f in listing["plugin_failures"]:
        print(f"plugin {f['name']!r} failed to load: {f['error']}", file=sys.stderr)
    return 0


def cmd_compare(args) -> int:
    from gmbench.report import compare
    from gmbench.report.runs import load_run

    baseline, current = load_run(args.baseline), load_run(args.current)
    known = set(baseline.records["metric"].dropna()) | set(current.records["metric"].dropna())
    tolerances = compare.parse_tolerances(args.tolerance, known)
    table = compare.compare_runs(baseline, current, tolerances)
    compare.check_comparable_at_all(table, baseline, current)
    render = compare.to_json if args.format == "json" else compare.to_markdown
    print(render(table, baseline, current, tolerances))
    return 1 if args.fail_on == "regression" and compare.has_regression(table) else 0


def cmd_report(args) -> int:
    from gmbench.report.render import write_report
    from gmbench.report.runs import load_run

    runs = [load_run(path) for path in args.runs]
    for path in write_report(runs, args.format or ["md"], args.out):
        print(path)
    return 0


def cmd_history(args) -> int:
    from gmbench.report import history

    table = history.metric_history(args.results_dir, args.metric, args.model)
    png = history.write_history(table, args.metric, args.model, args.out)
    print(history.history_markdown(table, args.metric, args.model))
    print(f"plot: {png}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gmbench", description="Benchmark generative image models.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="registered models, datasets and extractors")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("compare", help="compare two runs and flag regressions (a CI gate)")
    p.add_argument("baseline", help="baseline run folder (or records.csv)")
    p.add_argument("current", help="current run folder (or records.csv)")
    p.add_argument("--tolerance", action="append", metavar="METRIC=PCT",
                   help="relative tolerance in percent for one metric, e.g. fid=3 (repeatable); "
                        "defaults: 10%% performance, 5%% quality")
    p.add_argument("--fail-on", choices=["regression", "never"], default="never",
                   help="exit 1 when anything regressed (default: never)")
    p.add_argument("--format", choices=["md", "json"], default="md")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("report", help="tables and figures of one or more runs")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folder(s), records.csv or a folder of runs")
    p.add_argument("--format", choices=["md", "html", "latex", "csv"], action="append",
                   help="output format (repeatable: --format md --format html draws the figures once); default md")
    p.add_argument("--out", help="output folder (default: <first run>/report)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("history", help="one metric of one model over all runs, in time order, with commits")
    p.add_argument("results_dir", help="folder holding run folders (searched recursively)")
    p.add_argument("--metric", required=True, help="metric id, e.g. train_throughput or fid")
    p.add_argument("--model", required=True, help="model name, e.g. dcgan")
    p.add_argument("--out", default=".", help="folder for history-<model>-<metric>.png/.svg/.csv (default: .)")
    p.set_defaults(func=cmd_history)
    return parser


def _fail(message: str) -> int:
    print("gmbench: error: " + textwrap.fill(" ".join(str(message).split()), width=100), file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except GmbenchError as exc:
        if args.debug:
            raise
        return _fail(str(exc))
    except KeyboardInterrupt:
        print("gmbench: interrupted; finished jobs are saved (resume with --resume).", file=sys.stderr)
        return 130
