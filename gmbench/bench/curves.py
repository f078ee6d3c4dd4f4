"""Quality against training time: when a job scores itself during training, and when it reached a target.

Pure bookkeeping, no models and no metrics (the runner samples and scores). A curve point is due at
the first block boundary at or after each multiple of ``every_steps`` training steps or of
``every_seconds`` seconds of training time (evaluation time excluded), whichever comes first; the
runner adds one more point at the end of training. ``time_to_<metric>@X`` is the training time of the
first point whose value reaches X (``<=`` X where lower is better, ``>=`` where higher is), or
``NOT_REACHED`` (+inf) when no point does within the budget.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from gmbench.bench.suite import CurveSettings
from gmbench.report.metrics_info import CURVE_PREFIX, TIME_TO_PREFIX
NOT_REACHED = math.inf  # the value of a time_to_* row whose target no curve point reached


@dataclass(frozen=True)
class CurvePoint:
    steps: int  # training steps done when the point was scored
    time: float  # training seconds done (curve evaluations excluded)
    value: float  # the curve metric


def curve_id(metric: str) -> str:
    """Record metric id of a curve point: ``curve_fid`` (never mixed with the final ``fid``)."""
    return f"{CURVE_PREFIX}{metric}"


def format_target(target: float) -> str:
    """A target as it appears in a metric id: 200 -> "200", 12.5 -> "12.5" (exact, stable across runs)."""
    target = float(target)
    return str(int(target)) if target.is_integer() and abs(target) < 1e15 else repr(target)


def time_to_id(metric: str, target: float) -> str:
    """Record metric id of a target: ``time_to_fid@200``."""
    return f"{TIME_TO_PREFIX}{metric}@{format_target(target)}"


def reached(value: float, target: float, higher_is_better: bool) -> bool:
    return value >= target if higher_is_better else value <= target


def time_to_targets(points: list[CurvePoint], targets: tuple[float, ...],
                    higher_is_better: bool) -> list[tuple[float, CurvePoint | None]]:
    """(target, the first point in training order that reaches it, or None) for each target."""
    ordered = sorted(points, key=lambda p: p.steps)
    return [(t, next((p for p in ordered if reached(p.value, t, higher_is_better)), None)) for t in targets]


class CurveSchedule:
    """Says after which training block a curve point is due (``due``), and moves on once scored (``scored``)."""

    def __init__(self, settings: CurveSettings):
        self.settings = settings
        self.next_steps = settings.every_steps if settings.every_steps is not None else math.inf
        self.next_seconds = settings.every_seconds if settings.every_seconds is not None else math.inf

    def due(self, steps: int, seconds: float) -> bool:
        return self.settings.enabled and (steps >= self.next_steps or seconds >= self.next_seconds)

    def scored(self, steps: int, seconds: float) -> None:
        """Advance both intervals to their next multiple beyond (steps, seconds): a point scored for one
        interval also counts for the other, and a long block never queues several points."""
        s = self.settings
        if s.every_steps is not None:
            self.next_steps = (steps // s.every_steps + 1) * s.every_steps
        if s.every_seconds is not None:
            self.next_seconds = (math.floor(seconds / s.every_seconds) + 1) * s.every_seconds
