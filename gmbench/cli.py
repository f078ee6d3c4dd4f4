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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gmbench", description="Benchmark generative image models.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="registered models, datasets and extractors")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)
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
