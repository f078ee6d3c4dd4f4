"""What kind of quantity each metric id is: it decides tolerances, gating and table order."""
from __future__ import annotations

QUALITY = (
    "fid", "kid", "is", "precision", "recall", "density", "coverage", "class_entropy",
    "classifier_accuracy_score",
)
PERFORMANCE = (
    "train_throughput", "sample_throughput", "step_time", "peak_memory", "sample_peak_memory",
    "train_time", "sample_time", "job_time",
)
# Spreads measured inside one run and counts fixed by the configuration: reported, never gated.
SPREAD = ("kid_std", "is_std", "step_time_iqr")
SETTING = ("params", "nfe", "train_steps", "sample_batch")

DEFAULT_TOLERANCE_PCT = {"performance": 10.0, "quality": 5.0}


def kind(metric: str) -> str:
    """"performance", "quality", "spread" or "setting"; unknown metrics count as quality."""
    if metric in PERFORMANCE:
        return "performance"
    if metric in SPREAD:
        return "spread"
    if metric in SETTING:
        return "setting"
    return "quality"


def order_key(metric: str) -> tuple[int, int, str]:
    """Sort key: quality scores first, then cost, then settings, then spreads; known ids in list order."""
    for group, ids in enumerate((QUALITY, PERFORMANCE, SETTING, SPREAD)):
        if metric in ids:
            return group, ids.index(metric), metric
    return 0, len(QUALITY), metric
