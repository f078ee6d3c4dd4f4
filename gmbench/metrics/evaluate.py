"""``evaluate``: score a set of uint8 images against a reference with the selected metrics.

Features of each image set are extracted once and shared by all metrics; the reference, when it
is a dataset split, comes from the stats cache. Every Score carries its extractor and weights hash.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.distributed as dist
from torch import Tensor

from gmbench.errors import GmbenchError
from gmbench.metrics.context import MetricContext
from gmbench.metrics.features import FeatureExtractor, build_extractor, extract
from gmbench.metrics.stats_cache import FeatureStats, reference_stats
from gmbench.registry import DATASETS, EXTRACTORS, METRICS, Metric


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


DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def check_metrics(extractor: str, metrics: Sequence[str], n_samples: int | None = None) -> None:
    """Validate metric and extractor names (and that ``n_samples`` suffices) without loading any weights."""
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        raise GmbenchError(f"Unknown metric(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
                           f"valid metrics: {', '.join(m.name for m in METRICS.in_order())}.")
    EXTRACTORS.get(extractor)  # raises with the known names
    minima = {m: METRICS.get(m).min_samples for m in metrics}
    too_few = [f"{m} needs {k}" for m, k in minima.items() if n_samples is not None and n_samples < k]
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


def needing(need: str, metrics: Sequence[str]) -> list[str]:
    """The metrics among ``metrics`` whose registered needs include ``need`` ("features", "logits", "dataset")."""
    return [m for m in metrics if need in METRICS.get(m).needs]


def check_heads(net: FeatureExtractor, metrics: Sequence[str], dataset: str | None) -> None:
    """Refuse metrics the extractor's weights cannot compute: those needing logits without a classifier head, and
    those needing a dataset without a classifier over ``dataset``'s classes (``dataset`` None: the reference is a
    set of images, not a dataset)."""
    if net.num_classes is None and needing("logits", metrics):
        raise GmbenchError(f"Metrics {', '.join(needing('logits', metrics))} need classifier logits, "
                           f"but extractor {net.name!r} (with these weights) has no classifier head.")
    on_dataset = needing("dataset", metrics)
    if on_dataset and (dataset is None or net.num_classes != DATASETS.get(dataset).num_classes):
        raise GmbenchError(f"{', '.join(on_dataset)} need a dataset reference (e.g. mnist:test) and an extractor "
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
    check_images(samples, "samples")
    torch_dtype = parse_dtype(dtype)
    dataset = None  # None: the reference is a set of images
    if isinstance(reference, str):
        dataset, split, n_ref = parse_reference(reference)
    else:
        check_images(reference, "reference images")
        n_ref = len(reference)
    check_metrics(extractor, metrics, min(len(samples), n_ref or len(samples)))  # each side has min_samples
    net = build_extractor(extractor, device=device, **(extractor_options or {}))
    check_heads(net, metrics, dataset)

    fake = FeatureStats.of(*extract(net, samples, batch_size, torch_dtype, group))
    if dataset is not None:
        real = reference_stats(net, dataset, split, n_ref, data_root=data_root, dtype=torch_dtype,
                               batch_size=batch_size, group=group)[0]
    else:
        real = FeatureStats.of(*extract(net, reference, batch_size, torch_dtype, group))

    ctx = MetricContext(seed, samples, dataset, data_root, net.device)
    results: dict[Callable, float | dict[str, float]] = {}  # one run per function, shared by the names it serves
    scores = []
    for metric in map(METRICS.get, metrics):
        if metric.fn not in results:
            results[metric.fn] = metric.fn(fake, real, ctx)
        scores += [Score(output, output_value(metric, results[metric.fn], output), higher, metric.unit, net.name,
                         net.weights_sha256, len(samples), len(real.features))
                   for output, higher in metric.outputs.items()]
    return scores


def output_value(metric: Metric, result, output: str) -> float:
    """The value of ``output`` in what ``metric.fn`` returned: a float (its own value) or a dict of its outputs."""
    value = result.get(output) if isinstance(result, dict) else result if output == metric.name else None
    if not isinstance(value, (float, int)) or isinstance(value, bool):
        raise GmbenchError(f"Metric {metric.name!r} returned {result!r}, which lacks a number for {output!r}; a metric "
                           f"returns a float or a dict holding {', '.join(metric.outputs)}.")
    return float(value)
