"""The built-in metrics, registered in report order: one table of names, needs, directions and sample minima.

Each entry adapts a metric family's pure function (fid.py, kid.py, ...) to ``fn(fake, real, ctx)``.
Minima: IS has 10 splits, the k-NN scores need k+1 points per set, CAS trains on 10 images at least.
"""
from __future__ import annotations

from gmbench.metrics.classifier_scores import class_entropy, classifier_accuracy_score
from gmbench.metrics.context import MetricContext
from gmbench.metrics.fid import frechet_distance
from gmbench.metrics.inception_score import inception_score
from gmbench.metrics.kid import kernel_inception_distance
from gmbench.metrics.prdc import density_coverage, precision_recall
from gmbench.metrics.stats_cache import FeatureStats
from gmbench.registry import register_metric


@register_metric("fid", higher_is_better=False)
def fid(fake: FeatureStats, real: FeatureStats, ctx: MetricContext) -> float:
    return frechet_distance(fake.mu, fake.sigma, real.mu, real.sigma)


@register_metric("kid", higher_is_better=False, extra_outputs={"kid_std": False})
def kid(fake: FeatureStats, real: FeatureStats, ctx: MetricContext) -> dict[str, float]:
    mean, std = kernel_inception_distance(fake.features, real.features, seed=ctx.seed)
    return {"kid": mean, "kid_std": std}


@register_metric("is", needs="logits", higher_is_better=True, min_samples=10, extra_outputs={"is_std": False})
def inception(fake: FeatureStats, real: FeatureStats, ctx: MetricContext) -> dict[str, float]:
    mean, std = inception_score(fake.logits)
    return {"is": mean, "is_std": std}


def precision_and_recall(fake: FeatureStats, real: FeatureStats, ctx: MetricContext) -> dict[str, float]:
    precision, recall = precision_recall(real.features, fake.features)
    return {"precision": precision, "recall": recall}


def density_and_coverage(fake: FeatureStats, real: FeatureStats, ctx: MetricContext) -> dict[str, float]:
    density, coverage = density_coverage(real.features, fake.features)
    return {"density": density, "coverage": coverage}


# Each pair is one function under two names, so evaluate computes its neighbours once.
for _name in ("precision", "recall"):
    register_metric(_name, precision_and_recall, higher_is_better=True, min_samples=4)
for _name in ("density", "coverage"):
    register_metric(_name, density_and_coverage, higher_is_better=True, min_samples=6)


@register_metric("class_entropy", needs="logits", higher_is_better=True, min_samples=1)
def entropy_of_classes(fake: FeatureStats, real: FeatureStats, ctx: MetricContext) -> float:
    return class_entropy(fake.logits)


@register_metric("classifier_accuracy_score", needs=("logits", "dataset"), higher_is_better=True, min_samples=10)
def cas(fake: FeatureStats, real: FeatureStats, ctx: MetricContext) -> float:
    test_images, test_labels = ctx.test_split()
    return classifier_accuracy_score(ctx.samples, fake.logits, test_images, test_labels, seed=ctx.seed,
                                     device=ctx.device)
