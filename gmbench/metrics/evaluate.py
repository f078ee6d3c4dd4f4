"""``evaluate``: score a set of uint8 images against a reference with the selected metrics.

Features of each image set are extracted once and shared by all metrics; the reference, when it
is a dataset split, comes from the stats cache. Every Score carries its extractor and weights hash.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.distributed as dist
from torch import Tensor

from gmbench.data import load_dataset
from gmbench.errors import GmbenchError
from gmbench.metrics.classifier_scores import class_entropy, classifier_accuracy_score
from gmbench.metrics.features import FeatureExtractor, build_extractor, extract
from gmbench.metrics.fid import frechet_distance
from gmbench.metrics.inception_score import inception_score
from gmbench.metrics.kid import kernel_inception_distance
from gmbench.metrics.prdc import density_coverage, precision_recall
from gmbench.metrics.stats_cache import FeatureStats, reference_stats
from gmbench.registry import DATASETS, EXTRACTORS


@dataclass(frozen=True)
class Score:
    metric: str  # stable id, e.g. "fid", "kid_std"
    value: float
    higher_is_better: bool
    unit: str  # "" for unitless
    extractor: str
    extractor_sha256: str
    n_samples: int  # generated images used
    n_reference: int  # real images used


METRIC_NAMES: tuple[str, ...] = ("fid", "kid", "is", "precision", "recall", "density", "coverage",
                                 "class_entropy", "classifier_accuracy_score")
HIGHER_IS_BETTER = {"fid": False, "kid": False, "kid_std": False, "is": True, "is_std": False,
                    "precision": True, "recall": True, "density": True, "coverage": True,
                    "class_entropy": True, "classifier_accuracy_score": True}
NEEDS_LOGITS = ("is", "class_entropy", "classifier_accuracy_score")
# Fewest images per side a metric is defined for: IS has 10 splits, k-NN scores need k+1 points.
MIN_SAMPLES = {"fid": 2, "kid": 2, "is": 10, "precision": 4, "recall": 4, "density": 6, "coverage": 6,
               "class_entropy": 1, "classifier_accuracy_score": 10}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def check_metrics(extractor: str, metrics: Sequence[str], n_samples: int | None = None) -> None:
    """Validate metric and extractor names (and that ``n_samples`` suffices) without loading any weights."""
    unknown = [m for m in metrics if m not in METRIC_NAMES]
    if unknown or not metrics:
        raise GmbenchError(f"Unknown metric(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
                           f"valid metrics: {', '.join(METRIC_NAMES)}.")
    EXTRACTORS.get(extractor)  # raises with the known names
    too_few = [f"{m} needs {MIN_SAMPLES[m]}" for m in metrics if n_samples is not None and n_samples < MIN_SAMPLES[m]]
    if too_few:
        raise GmbenchError(f"{n_samples} samples are too few: {', '.join(too_few)}. Raise n_samples or drop those metrics.")


def parse_reference(reference: str) -> tuple[str, str, int | None]:
    """``dataset:split`` or ``dataset:split:N`` (first N images) -> (dataset, split, N or None)."""
    parts = reference.split(":")
    if len(parts) not in (2, 3) or (len(parts) == 3 and not parts[2].isdigit()):
        raise GmbenchError(f"Reference {reference!r} is not of the form dataset:split or dataset:split:N (e.g. mnist:test).")
    DATASETS.get(parts[0])
    return parts[0], parts[1], int(parts[2]) if len(parts) == 3 else None


def parse_dtype(name: str) -> torch.dtype:
    if name not in DTYPES:
        raise GmbenchError(f"Unknown dtype {name!r}; choose one of {', '.join(DTYPES)}.")
    return DTYPES[name]


def check_heads(net: FeatureExtractor, metrics: Sequence[str], dataset: str | None) -> None:
    """Refuse metrics the extractor's weights cannot compute: logits for is, class_entropy and CAS, and for CAS a
    classifier over ``dataset``'s classes (``dataset`` None: the reference is a set of images, not a dataset)."""
    if net.num_classes is None and any(m in NEEDS_LOGITS for m in metrics):
        raise GmbenchError(f"Metrics {', '.join(m for m in metrics if m in NEEDS_LOGITS)} need classifier logits, "
                           f"but extractor {net.name!r} (with these weights) has no classifier head.")
    if "classifier_accuracy_score" in metrics and (dataset is None or net.num_classes != DATASETS.get(dataset).num_classes):
        raise GmbenchError("classifier_accuracy_score needs a dataset reference (e.g. mnist:test) and an extractor "
                           "whose classifier predicts that dataset's classes (e.g. mnist-lenet).")


def check_images(images: Tensor, what: str) -> None:
    if not isinstance(images, Tensor) or images.dtype != torch.uint8 or images.dim() != 4 or len(images) < 2:
        desc = f"{images.dtype} {tuple(images.shape)}" if isinstance(images, Tensor) else type(images).__name__
        raise GmbenchError(f"The {what} must be a uint8 tensor [N,C,H,W] with N >= 2; got {desc}.")


def evaluate(samples: Tensor, *, reference: str | Tensor = "mnist:test", extractor: str = "mnist-lenet",
             metrics: Sequence[str] = ("fid",), device="cpu", dtype: str = "fp32",
             data_root: str | None = None, seed: int = 0, batch_size: int = 500,
             extractor_options: dict | None = None, group: dist.ProcessGroup | None = None) -> list[Score]:
    """Scores of uint8 ``samples`` [N,C,H,W] against ``reference`` ("dataset:split[:N]" or uint8 images).

    ``group``: every rank of it calls with the same arguments and extracts a shard of the features (see
    ``extract``); each gets all of them back and the scores of a single process.
    """
    metrics = list(dict.fromkeys(metrics))
    check_metrics(extractor, metrics)
    check_images(samples, "samples")
    torch_dtype = parse_dtype(dtype)
    if isinstance(reference, str):
        dataset, split, n_ref = parse_reference(reference)
    else:
        check_images(reference, "reference images")
    net = build_extractor(extractor, device=device, **(extractor_options or {}))
    check_heads(net, metrics, dataset if isinstance(reference, str) else None)

    fake = FeatureStats.of(*extract(net, samples, batch_size, torch_dtype, group))
    if isinstance(reference, str):
        real = reference_stats(net, dataset, split, n_ref, data_root=data_root, dtype=torch_dtype,
                               batch_size=batch_size, group=group)[0]
    else:
        real = FeatureStats.of(*extract(net, reference, batch_size, torch_dtype, group))

    values: dict[str, float] = {}
    for metric in metrics:
        if metric == "fid":
            values["fid"] = frechet_distance(fake.mu, fake.sigma, real.mu, real.sigma)
        elif metric == "kid":
            values["kid"], values["kid_std"] = kernel_inception_distance(fake.features, real.features, seed=seed)
        elif metric == "is":
            values["is"], values["is_std"] = inception_score(fake.logits)
        elif metric in ("precision", "recall") and "precision" not in values:
            values["precision"], values["recall"] = precision_recall(real.features, fake.features)
        elif metric in ("density", "coverage") and "density" not in values:
            values["density"], values["coverage"] = density_coverage(real.features, fake.features)
        elif metric == "class_entropy":
            values["class_entropy"] = class_entropy(fake.logits)
        elif metric == "classifier_accuracy_score":
            test_images, test_labels = load_dataset(dataset, "test", data_root)
            values[metric] = classifier_accuracy_score(samples, fake.logits, test_images, test_labels,
                                                       seed=seed, device=next(net.parameters()).device)
    selected = [name for m in metrics for name in (m, f"{m}_std") if name in values]
    return [Score(name, values[name], HIGHER_IS_BETTER[name], "", net.name, net.weights_sha256,
                  len(samples), len(real.features)) for name in selected]
