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


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise GmbenchError(f"--seeds {text!r}: expected comma-separated non-negative integers, e.g. 0,1,2.") from None
    if not seeds or min(seeds) < 0:
        raise GmbenchError(f"--seeds {text!r}: expected comma-separated non-negative integers, e.g. 0,1,2.")
    return seeds


def cmd_run(args) -> int:
    from gmbench.bench.session import run_suite
    from gmbench.bench.suite import load_suite
    from gmbench.config import parse_set_options

    suite = load_suite(args.suite, set_options=parse_set_options(args.set),
                       seeds=_seeds(args.seeds) if args.seeds else None,
                       models=[m.strip() for m in args.models.split(",")] if args.models else None)
    log = (lambda *a, **k: None) if args.quiet else print
    run_suite(suite, args.out, device=args.device, resume=args.resume, data_root=args.data_root, quiet=args.quiet, log=log)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gmbench", description="Benchmark generative image models.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="registered models, datasets and extractors")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("run", help="run a suite: train, time, sample and score every job")
    p.add_argument("suite", nargs="?", default="quick", help="built-in suite name (smoke, quick, standard) or a .toml path")
    p.add_argument("--out", help="run folder (default results/runs/<suite>-<UTC time>)")
    p.add_argument("--data-root", help="folder with MNIST/raw/... (default $GMBENCH_DATA_ROOT or ~/.cache/gmbench/datasets)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    p.add_argument("--seeds", help="comma-separated seeds, replacing the suite's")
    p.add_argument("--models", help="comma-separated subset of the suite's models")
    p.add_argument("--set", action="append", default=[], metavar="SCOPE.KEY=VALUE",
                   help="override a config value: model.lr=1e-4 (every model), dcgan.lr=1e-4, budget.steps=100, metrics.n_samples=500")
    p.add_argument("--resume", action="store_true", help="skip jobs already finished in the run folder (or the latest run of the suite)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or job lines")
    p.set_defaults(func=cmd_run)
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
