"""Synthetic run folders for the report tests, written with the real records writer.

A run has GAN, VAE, diffusion (three sampler variants) and the two reference rows on MNIST, plus
one model on Fashion-MNIST, and one failed job; optionally quality curves. Values are fixed base numbers times a small
per-seed jitter, so tests know the answers.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from gmbench.report.records import to_frame, write_records

HIGHER_IS_BETTER = {
    "train_throughput": True, "sample_throughput": True, "step_time": False, "peak_memory": False,
    "train_time": False, "sample_time": False, "params": None, "nfe": None, "train_steps": None,
    "fid": False, "kid": False, "is": True, "precision": True, "recall": True,
}
UNITS = {"train_throughput": "images/s", "sample_throughput": "images/s", "step_time": "ms", "peak_memory": "MiB",
         "train_time": "s", "sample_time": "s"}
LENET, INCEPTION = "mnist-lenet", "inception-v3-tf"
SHA = {LENET: "a" * 64, INCEPTION: "b" * 64}
TRAIN = {"train_throughput": 5000.0, "step_time": 6.4, "peak_memory": 300.0, "train_time": 120.0, "params": 1.0e6,
         "train_steps": 2000.0}
SAMPLE = {"sample_throughput": 20000.0, "sample_time": 0.5, "nfe": 1.0}
QUALITY = {(LENET, "fid"): 4.0, (LENET, "kid"): 0.004, (LENET, "is"): 9.0, (LENET, "precision"): 0.8,
           (LENET, "recall"): 0.7, (INCEPTION, "fid"): 12.0}
# (model, family, variant, dataset, scale of the quality numbers, sampler NFE)
JOBS = [
    ("dcgan", "gan", "", "mnist", 1.0, 1),
    ("wgan-gp", "gan", "", "mnist", 1.5, 1),
    ("vae", "vae", "", "mnist", 3.0, 1),
    ("ddpm", "diffusion", "ddpm-1000", "mnist", 0.5, 1000),
    ("ddpm", "diffusion", "ddim-50", "mnist", 0.7, 50),
    ("ddpm", "diffusion", "ddim-10", "mnist", 1.2, 10),
    ("real-data", "other", "", "mnist", 0.01, 0),
    ("pca-gaussian", "other", "", "mnist", 8.0, 1),
    ("dcgan", "gan", "", "fashion-mnist", 2.0, 1),
]


CURVE_TARGETS = (100.0, 20.0)
CURVE_N = 500


def curve_points(scale: float, seed: int) -> list[tuple[int, float, float]]:
    """(train_steps, train_time, fid) of a synthetic curve: 4 points, 30 s apart, fid falling linearly,
    higher for later seeds (x1, x1.3, x1.6)."""
    return [(500 * k, 30.0 * k, 40.0 * scale * (5 - k) * (1 + 0.3 * seed)) for k in range(1, 5)]


def _curve_rows(job: dict, scale: float, seed: int) -> list[dict]:
    """curve_fid rows and time_to_fid@X rows as the runner writes them (+inf where X is never reached)."""
    common = dict(variant="", unit="", higher_is_better=False, extractor=LENET, extractor_sha256=SHA[LENET],
                  n_samples=CURVE_N)
    points = curve_points(scale, seed)
    rows = [job | common | dict(metric="curve_fid", value=fid, train_steps=steps, train_time=t) for steps, t, fid in points]
    for target in CURVE_TARGETS:
        hit = next(((steps, t) for steps, t, fid in points if fid <= target), None)
        rows.append(job | common | dict(metric=f"time_to_fid@{target:g}", unit="s", value=hit[1] if hit else float("inf"),
                                        train_steps=hit[0] if hit else None, train_time=hit[1] if hit else None))
    return rows


def _rows(seeds: int, suite: str, run_id: str, device: str, n_samples: int, jitter: float,
          curves: bool = False) -> list[dict]:
    rng = np.random.default_rng(0)
    rows, trained = [], set()
    for model, family, variant, dataset, scale, nfe in JOBS:
        for seed in range(seeds):
            job = dict(run_id=run_id, suite=suite, model=model, family=family, dataset=dataset, seed=seed,
                       device=device, dtype="float32", status="done")

            def add(metric, value, variant, extractor=""):
                rows.append(job | dict(
                    variant=variant, metric=metric, value=float(value) * (1 if metric in ("params", "nfe", "train_steps") else 1 + jitter * rng.standard_normal()),
                    unit=UNITS.get(metric, ""), higher_is_better=HIGHER_IS_BETTER[metric], extractor=extractor,
                    extractor_sha256=SHA.get(extractor, ""), n_samples=n_samples if extractor else None))

            if model != "real-data":
                if (model, dataset, seed) not in trained:  # one training per job, several samplers
                    trained.add((model, dataset, seed))
                    for metric, value in TRAIN.items():
                        add(metric, value, "")
                    if curves and family != "other":
                        rows.extend(_curve_rows(job, scale, seed))
                for metric, value in SAMPLE.items():
                    add(metric, nfe if metric == "nfe" else value / max(nfe, 1), variant)
            for (extractor, metric), value in QUALITY.items():
                higher = HIGHER_IS_BETTER[metric]
                add(metric, value / scale if higher else value * scale, variant, extractor)
    return rows


def make_run(root: Path, name: str = "quick-20261128T120000Z", seeds: int = 1, suite: str = "quick",
             device: str = "cuda", device_name: str = "NVIDIA H200", n_samples: int = 10000,
             jitter: float = 0.01, samples: bool = False, failed: bool = True,
             started: str = "2026-11-28T12:00:00Z", commit: str = "0123456789abcdef", curves: bool = False) -> Path:
    """Write a run folder under ``root`` and return its path (``curves``: quality curves and time_to_fid rows
    for the trained models, see ``curve_points``)."""
    run = root / name
    rows = _rows(seeds, suite, name, device, n_samples, jitter, curves)
    if failed:
        rows.append(dict(run_id=name, suite=suite, model="began", family="gan", variant="", dataset="mnist", seed=0,
                         metric="train_time", value=None, unit="s", higher_is_better=False, extractor="",
                         extractor_sha256="", n_samples=None, device=device, dtype="float32", status="diverged"))
    write_records(to_frame(rows), run / "records.csv")
    manifest = {
        "gmbench_version": "0.1.0", "git_commit": commit, "python": "3.11.9", "torch": "2.14.1", "cuda": "12.8",
        "device": device, "device_name": device_name, "cpu": "x86_64", "threads": 16, "suite": suite,
        "suite_file": f'name = "{suite}"\n', "started": started, "finished": started, "run_id": name,
        "argv": ["gmbench", "run", suite], "settings": {},
    }
    (run / "manifest.json").write_text(json.dumps(manifest, indent=2))
    if samples:
        _write_sample_grids(run, seeds)
    return run


def _write_sample_grids(run: Path, seeds: int) -> None:
    import matplotlib.image

    (run / "samples").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for model, _, variant, dataset, _, _ in JOBS:
        stem = f"{model}-{variant}" if variant else model
        for seed in range(seeds):
            grid = rng.random((8 * 28, 8 * 28))
            matplotlib.image.imsave(run / "samples" / f"{stem}-{dataset}-s{seed}.png", grid, cmap="gray")


def scale_metric(run: Path, factor: float, model: str, metric: str, variant: str = "", dataset: str = "mnist",
                 extractor: str | None = None) -> None:
    """Multiply one model's metric in place (all seeds) — a synthetic regression."""
    from gmbench.report.records import load_records

    frame = load_records(run)
    hit = (frame["model"] == model) & (frame["metric"] == metric) & (frame["variant"] == variant) & (frame["dataset"] == dataset)
    if extractor is not None:
        hit &= frame["extractor"] == extractor
    assert hit.any()
    frame.loc[hit, "value"] = frame.loc[hit, "value"] * factor
    write_records(frame, run / "records.csv")
