"""Command line: `gmbench list | run | eval | stats | report | compare | history | train-classifier`.

User mistakes (GmbenchError) print one paragraph on stderr and exit 2; `--debug` shows tracebacks.
`run` exits 1 when a job failed (its error is in the run folder), 0 when every job is done or diverged;
under torchrun every rank exits 1 when any job of the run failed.
Each command is a ``cmd_<name>(args) -> int`` function with its parser in ``build_parser``.
"""
from __future__ import annotations

import argparse
import json
import sys
import textwrap

from gmbench.errors import GmbenchError


def cmd_list(args) -> int:
    from gmbench.bench.suite import builtin_suites
    from gmbench.registry import DATASETS, EXTRACTORS, METRICS, MODELS, PLUGIN_FAILURES, SAMPLERS

    listing = {
        "suites": builtin_suites(),
        "models": [{"name": n, "family": MODELS.get(n).family, "source": MODELS.source(n)} for n in MODELS.names()],
        "samplers": [{"name": n, "kind": SAMPLERS.get(n).kind, "source": SAMPLERS.source(n),
                      "options": dict(SAMPLERS.get(n).defaults)} for n in SAMPLERS.names()],
        "datasets": [{"name": n, "source": DATASETS.source(n), "image_shape": list(DATASETS.get(n).image_shape),
                      "num_classes": DATASETS.get(n).num_classes} for n in DATASETS.names()],
        "extractors": [{"name": n, "source": EXTRACTORS.source(n)} for n in EXTRACTORS.names()],
        "metrics": [{"name": m.name, "higher_is_better": m.higher_is_better, "unit": m.unit,
                     "needs": sorted(m.needs), "extra_outputs": list(m.extra_outputs), "source": METRICS.source(m.name)}
                    for m in METRICS.in_order()],
        "plugin_failures": [{"name": f.name, "error": f.error} for f in PLUGIN_FAILURES],
    }
    if args.json:
        print(json.dumps(listing, indent=2))
        return 0
    print("suites:\n  " + "\n  ".join(listing["suites"]))
    print("models:")
    for m in listing["models"]:
        print(f"  {m['name']:<16} {m['family']:<10} {m['source']}")
    print("samplers:")
    for m in listing["samplers"]:
        options = ", ".join(f"{k}={v}" for k, v in m["options"].items())
        print(f"  {m['name']:<16} {m['kind']:<10} {m['source']}" + (f"  (options: {options})" if options else ""))
    print("datasets:")
    for d in listing["datasets"]:
        shape = "x".join(map(str, d["image_shape"]))
        print(f"  {d['name']:<16} {shape:<10} {d['num_classes']:>4} classes  {d['source']}")
    print("extractors:\n  " + ("\n  ".join(f"{x['name']:<16} {x['source']}" for x in listing["extractors"]) or "(none)"))
    print("metrics:")
    for m in listing["metrics"]:
        better = f"{'higher' if m['higher_is_better'] else 'lower'} is better"
        print(f"  {m['name']:<26} {better:<17} {m['unit'] or '-':<8} {m['source']}")
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
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise GmbenchError(f"--seeds {text!r} names seed {', '.join(map(str, repeated))} more than once, which would "
                           "run the same job twice; list each seed once.")
    return seeds


def cmd_run(args) -> int:
    """Exit 0 when every job is done or diverged (a measured outcome), 1 when any job failed."""
    from gmbench.bench.distributed import team
    from gmbench.bench.session import read_manifest, run_folder, run_suite
    from gmbench.bench.suite import load_suite, suite_name
    from gmbench.config import parse_set_options

    if not args.checkpoint_every >= 0:
        raise GmbenchError(f"--checkpoint-every {args.checkpoint_every:g}: expected seconds >= 0 (0: no training "
                           "checkpoints).")
    resume = args.resume or args.extend
    name = suite_name(args.suite)
    run_dir = run_folder(name, args.out, resume)
    kept = read_manifest(run_dir) if resume else {}  # --resume: what the command line leaves out is the run's
    if kept.get("suite") != name:
        kept = {}  # another suite's run, which run_suite refuses
    suite = load_suite(args.suite, set_options=parse_set_options(args.set) if args.set else kept.get("set_options"),
                       seeds=_seeds(args.seeds) if args.seeds else kept.get("seeds"),
                       models=[m.strip() for m in args.models.split(",")] if args.models else kept.get("models"))
    log = (lambda *a, **k: None) if args.quiet else (lambda *a: print(*a, flush=True))
    processes = team(args.shard, args.device)  # under torchrun: joins the process group
    try:
        outcome = run_suite(suite, run_dir, device=args.device, resume=resume, extend=args.extend,
                            data_root=args.data_root, quiet=args.quiet, log=log, checkpoint_every=args.checkpoint_every,
                            team=processes)
    finally:
        processes.close()
    failed = [job_id for job_id, status in outcome.statuses.items() if status == "failed"]
    if failed:
        print(f"gmbench: {outcome.summary}; the errors are in {outcome.run_dir / 'jobs'} "
              f"({', '.join(f + '.json' for f in failed)}); --resume runs the failed jobs again.", file=sys.stderr)
    return 1 if failed else 0


def cmd_train_classifier(args) -> int:
    from gmbench.device import resolve_device
    from gmbench.metrics.lenet import SHIPPED_WEIGHTS, train_shipped_weights

    device = resolve_device(args.device)  # before the datasets are read
    command = f"gmbench train-classifier --epochs {args.epochs} --seed {args.seed} --device {args.device}" + (
        f" --out {args.out}" if args.out else "")
    manifest = train_shipped_weights(args.out or SHIPPED_WEIGHTS, epochs=args.epochs, seed=args.seed,
                                     device=device, data_root=args.data_root, command=command)
    print(f"mnist-lenet: test accuracy {100 * manifest['test_accuracy']:.2f}% after {manifest['epochs']} epochs "
          f"(seed {manifest['seed']}, {manifest['train_seconds']} s); sha256 {manifest['sha256']}; "
          f"written to {args.out or SHIPPED_WEIGHTS}")
    return 0


def _batch_size(args) -> int:
    if args.batch_size < 1:
        raise GmbenchError(f"--batch-size {args.batch_size}: expected the number of images per feature-extraction batch, "
                           "a positive integer such as 500.")
    return args.batch_size


def _extractor_options(args) -> dict:
    return {"weights": args.inception_weights} if args.inception_weights else {}


def _eval_reference(ref: str, n: int | None):
    """--ref: an existing sample-set path, else ``dataset:split`` (first ``n`` images when --n is given)."""
    from pathlib import Path

    from gmbench.metrics.sample_sets import load_sample_set

    if Path(ref).exists() or ":" not in ref:
        return load_sample_set(ref, n)
    return f"{ref}:{n}" if n is not None and ref.count(":") == 1 else ref


def cmd_eval(args) -> int:
    from dataclasses import asdict

    import torch

    import gmbench
    from gmbench.metrics import check_metrics, evaluate
    from gmbench.metrics.sample_sets import load_sample_set
    from gmbench.ranks import leads, world_group

    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    check_metrics(args.extractor, metrics)
    batch_size = _batch_size(args)
    samples = load_sample_set(args.samples, args.n)
    reference = _eval_reference(args.ref, args.n)
    with world_group(args.device) as (device, group):  # under torchrun: every rank extracts a shard
        scores = evaluate(samples, reference=reference, extractor=args.extractor, metrics=metrics, device=device,
                          dtype=args.dtype, data_root=args.data_root, seed=args.seed, batch_size=batch_size,
                          extractor_options=_extractor_options(args), group=group)
        if not leads(group):
            return 0  # rank 0 prints
    provenance = {
        "samples": args.samples, "reference": args.ref, "extractor": scores[0].extractor,
        "weights_sha256": scores[0].extractor_sha256, "n_samples": scores[0].n_samples,
        "n_reference": scores[0].n_reference, "seed": args.seed, "device": str(device), "dtype": args.dtype,
        "torch_version": torch.__version__, "gmbench_version": gmbench.__version__,
    }
    if args.json:
        print(json.dumps({"scores": [asdict(s) for s in scores], "provenance": provenance}, indent=2))
        return 0
    print(f"{'metric':<28}{'value':>14}  better")
    for s in scores:
        print(f"{s.metric:<28}{s.value:>14.6g}  {'higher' if s.higher_is_better else 'lower'}")
    print()
    for key, value in provenance.items():
        print(f"{key + ':':<17} {value}")
    return 0


def cmd_stats(args) -> int:
    from gmbench.metrics import build_extractor
    from gmbench.metrics.evaluate import parse_dtype
    from gmbench.ranks import leads, world_group
    from gmbench.metrics.stats_cache import reference_stats

    batch_size, dtype = _batch_size(args), parse_dtype(args.dtype)
    with world_group(args.device) as (device, group):  # under torchrun: every rank extracts a shard
        extractor = build_extractor(args.extractor, device=device, **_extractor_options(args))
        stats, path, reused = reference_stats(extractor, args.dataset, args.split, args.n, data_root=args.data_root,
                                              dtype=dtype, batch_size=batch_size, group=group)
        if not leads(group):
            return 0  # rank 0 prints
    print(f"{'reused' if reused else 'computed'} {args.dataset}:{args.split} statistics on {extractor.name} "
          f"(sha256 {extractor.weights_sha256[:16]}, N={len(stats.features)}, D={stats.features.shape[1]}, "
          f"{args.dtype}): {path}")
    return 0


def cmd_compare(args) -> int:
    from gmbench.report import compare
    from gmbench.report.runs import load_run

    baseline, current = load_run(args.baseline), load_run(args.current)
    known = set(baseline.records["metric"].dropna()) | set(current.records["metric"].dropna())
    tolerances = compare.parse_tolerances(args.tolerance, known)
    table = compare.compare_runs(baseline, current, tolerances, args.allow_missing_seeds)
    compare.check_comparable_at_all(table, baseline, current)
    render = compare.to_json if args.format == "json" else compare.to_markdown
    print(render(table, baseline, current, tolerances, args.allow_missing_seeds))
    return 1 if args.fail_on == "regression" and compare.has_regression(table) else 0


def cmd_report(args) -> int:
    import tempfile
    from pathlib import Path

    from gmbench.report.render import default_out_dir, write_report
    from gmbench.report.runs import load_run

    runs = [load_run(path) for path in args.runs]
    out = Path(args.out) if args.out else default_out_dir(runs)
    if not out.is_file():  # write_report explains an --out that is a file
        try:  # a read-only folder is a one-paragraph error, not a traceback halfway through the figures
            out.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=out).close()
        except OSError as exc:
            raise GmbenchError(f"Cannot write the report into {out}: {exc.strerror or exc}. "
                               "Pass --out with a folder you can write to.") from None
    for path in write_report(runs, args.format or ["md"], out):
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

    p = sub.add_parser("list", help="built-in suites, registered models, datasets and extractors")
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
    p.add_argument("--resume", action="store_true",
                   help="finish the run in --out (or the suite's latest run): skip its finished jobs; --set, --seeds and "
                        "--models default to the run's and must not change its jobs")
    p.add_argument("--extend", action="store_true", help="--resume that may add jobs (seeds, models) to the run")
    p.add_argument("--checkpoint-every", type=float, default=300.0, metavar="SECONDS",
                   help="save each job's whole training state this often (default 300; 0: never), so that --resume "
                        "continues an interrupted job where its last training checkpoint left it")
    p.add_argument("--quiet", action="store_true", help="no progress bars or job lines")
    p.add_argument("--shard", metavar="K/N", help="run only shard K of N (every N-th job of the suite), beside the "
                                                  "other shards writing into the same --out (a job array)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("eval", help="score a sample set (.npy/.npz/.pt/PNG folder) against a dataset split or another set")
    p.add_argument("samples", help=".npy/.npz uint8 [N,28,28] or [N,1,28,28], a .pt tensor, or a folder of .png files")
    p.add_argument("--ref", default="mnist:test", help="dataset:split (default mnist:test) or a second sample set")
    p.add_argument("--extractor", default="mnist-lenet")
    p.add_argument("--metrics", default="fid", help="comma-separated registered metrics (`gmbench list` names them, "
                                                     "plugins' too), e.g. fid,kid,is,precision,recall")
    p.add_argument("--n", type=int, help="use the first N images of each side")
    p.add_argument("--json", action="store_true")
    p.add_argument("--seed", type=int, default=0, help="seed of KID subsets and of the CAS classifier")
    p.add_argument("--batch-size", type=int, default=500)
    _add_extractor_arguments(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("stats", help="precompute cached reference statistics of a dataset split")
    p.add_argument("dataset")
    p.add_argument("--split", default="test")
    p.add_argument("--extractor", default="mnist-lenet")
    p.add_argument("--n", type=int, help="first N images (default: the whole split)")
    p.add_argument("--batch-size", type=int, default=500)
    _add_extractor_arguments(p)
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("train-classifier", help="retrain the mnist-lenet feature extractor")
    p.add_argument("--out", help="weights file to write (default: the shipped gmbench/weights/mnist-lenet.pt); "
                                 "its manifest goes beside it as .json")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--data-root", help="dataset root (default: $GMBENCH_DATA_ROOT)")
    p.set_defaults(func=cmd_train_classifier)

    p = sub.add_parser("compare", help="compare two runs and flag regressions (a CI gate)")
    p.add_argument("baseline", help="baseline run folder (or records.csv)")
    p.add_argument("current", help="current run folder (or records.csv)")
    p.add_argument("--tolerance", action="append", metavar="METRIC=PCT",
                   help="relative tolerance in percent for one metric, e.g. fid=3 (repeatable); "
                        "defaults: 10%% performance, 5%% quality")
    p.add_argument("--fail-on", choices=["regression", "never"], default="never",
                   help="exit 1 when anything regressed (default: never)")
    p.add_argument("--allow-missing-seeds", action="store_true",
                   help="a seed done in the baseline but failed, diverged or missing in the current run does not "
                        "fail its model's rows; they are judged on the seeds left (default: it does)")
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


def _add_extractor_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    p.add_argument("--dtype", default="fp32", help="fp32 | bf16 (autocast during feature extraction)")
    p.add_argument("--data-root", help="dataset root (default: $GMBENCH_DATA_ROOT)")
    p.add_argument("--inception-weights", help="Inception weights file (TorchScript or state dict) for inception-v3-tf")


def _fail(message: str) -> int:
    print("gmbench: error: " + textwrap.fill(" ".join(str(message).split()), width=100,
                                                 break_on_hyphens=False, break_long_words=False), file=sys.stderr)
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
        _close_progress_bars()
        print("gmbench: interrupted; finished jobs are saved (resume with --resume).", file=sys.stderr)
        return 130


def _close_progress_bars() -> None:
    """Clear live progress bars, so that what comes next starts on a line of its own."""
    if "tqdm" in sys.modules:
        from tqdm import tqdm

        for bar in list(tqdm._instances):
            bar.close()
