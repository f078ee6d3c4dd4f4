"""What kind of quantity each metric id is: it decides tolerances, gating and table order.

Quality scores and their spreads are the registered metrics (gmbench.registry.METRICS), in registration
order; an id no registered metric scores (a records file written with a plugin not installed here)
counts as quality, sorted after the registered ones.

Two families of ids are known by their prefix:

- ``curve_<metric>`` (``curve_fid``): one point of a quality curve during training, with its
  ``train_steps`` and ``train_time`` columns set. Kind "curve": drawn in the curve figure, kept out of
  the summary tables and of ``compare`` (many points share one key; ``time_to_*`` sums them up).
- ``time_to_<metric>@<X>`` (``time_to_fid@200``): training seconds until the curve first reached X,
  +inf when it never did within the budget. Kind "time_to_quality": gated by ``compare`` like a
  performance metric (10% relative tolerance and Welch's test on the seeds that reached X; not
  comparable across hardware), and a target reached in the baseline but not in the current run is a
  regression (see ``compare._judge_time_to``). Lower is better.
"""
from __future__ import annotations

# train_mfu / sample_mfu (model FLOPs utilisation, %, bench/flops.py) sit beside their throughputs.
PERFORMANCE = (
    "train_throughput", "train_mfu", "sample_throughput", "sample_mfu", "step_time", "peak_memory",
    "sample_peak_memory", "train_time", "sample_time", "job_time", "curve_time",
)
# Spreads measured inside one run (besides the metrics' extra outputs) and counts fixed by the configuration:
# reported, never gated.
SPREAD = ("step_time_iqr",)
SETTING = ("params", "nfe", "train_flops", "sample_flops", "train_steps", "sample_batch")
CURVE_PREFIX = "curve_"
TIME_TO_PREFIX = "time_to_"

DEFAULT_TOLERANCE_PCT = {"performance": 10.0, "quality": 5.0, "time_to_quality": 10.0}


def quality_ids() -> tuple[str, ...]:
    """The registered metrics' names, in registration order."""
    from gmbench.registry import METRICS

    return tuple(m.name for m in METRICS.in_order())


def spread_ids() -> tuple[str, ...]:
    """The registered metrics' extra outputs, then the performance spreads."""
    from gmbench.registry import METRICS

    return tuple(out for m in METRICS.in_order() for out in m.extra_outputs) + SPREAD


def kind(metric: str) -> str:
    """"performance", "quality", "time_to_quality", "curve", "spread" or "setting"; unknown metrics count
    as quality."""
    if metric in PERFORMANCE:
        return "performance"
    if metric in spread_ids():
        return "spread"
    if metric in SETTING:
        return "setting"
    if metric.startswith(TIME_TO_PREFIX):
        return "time_to_quality"
    if metric.startswith(CURVE_PREFIX):
        return "curve"
    return "quality"


def time_to_target(metric: str) -> float:
    """The X of ``time_to_<metric>@X``."""
    return float(metric.rpartition("@")[2])


def order_key(metric: str) -> tuple[int, float, str]:
    """Sort key: quality scores first, then times to quality (by target value), then cost, then settings,
    then spreads; known ids in list order."""
    if kind(metric) == "time_to_quality":
        return 1, time_to_target(metric), metric
    quality = quality_ids()
    for group, ids in ((0, quality), (2, PERFORMANCE), (3, SETTING), (4, spread_ids())):
        if metric in ids:
            return group, ids.index(metric), metric
    return 0, len(quality), metric
