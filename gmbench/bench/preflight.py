"""The checks of a suite that read files, done before its first job (suite.py checks the rest at load).

Every job reads its dataset's train split and reference split (images and labels; the test split too
where a metric needing the dataset, such as classifier_accuracy_score, is scored) and builds its
extractors from their weights files.
A dataset that declares no split sizes (npz, image folders) has its batch sizes checked here.
Opening them all costs seconds, so a missing, truncated or wrong file stops the run here instead of
failing after the first job has trained and sampled.
"""
from __future__ import annotations

from gmbench.bench.suite import Job, Suite, check_job_data
from gmbench.data import load_dataset
from gmbench.registry import DATASETS, MODELS


def preflight(suite: Suite, data_root: str | None = None) -> None:
    """Raise, before any job runs, the GmbenchError a job would raise on reading its data or extractor weights."""
    from gmbench.metrics import build_extractor
    from gmbench.metrics.evaluate import check_heads, needing

    scored = suite.scored_metrics()
    labelled = any(needing("dataset", metrics) for metrics in scored.values())  # they read the test split
    splits = dict.fromkeys(["train", suite.metrics.reference] + (["test"] if labelled else []))  # in the jobs' order
    for dataset in suite.datasets:
        for split in splits:
            load_dataset(dataset, split, data_root)  # cached per process: the jobs reuse what is read here
        if DATASETS.get(dataset).count("train") is None:  # suite.py could not check the training-set size
            n_train, shape = len(load_dataset(dataset, "train", data_root)[0]), DATASETS.get(dataset).image_shape
            for entry in suite.models:
                check_job_data(MODELS.get(entry.name), Job(suite.name, entry, dataset, 0).config(), entry.budget,
                               dataset, shape, n_train, f"suite {suite.name!r} [models.{entry.name}]")
    for name, metrics in scored.items():
        extractor = build_extractor(name, **suite.metrics.options_of(name))  # opens and checks its weights, on the CPU
        for dataset in suite.datasets:
            check_heads(extractor, sorted(metrics), dataset)
