"""Learning-rate schedules the harness applies to every model: a factor of each optimiser's base lr,
a pure function of the step about to run and the budget's steps, so that a run resumed from a
checkpoint continues on exactly the same learning rates.

Each param group's base lr is kept in ``initial_lr``, as torch's ``LRScheduler`` keeps it, and the
group's ``lr`` is set to ``initial_lr * factor`` before every ``train_step``; "constant" without a
warm-up never touches the optimisers (today's runs, bit for bit). A plugin model gets the schedule too: the harness
finds its optimisers as ``training_state`` does (``GenerativeModel._optimizers``).
"""
from __future__ import annotations

import math

import torch

LR_SCHEDULES = ("constant", "cosine", "linear")


def lr_factor(schedule: str, step: int, total_steps: int, warmup_steps: int = 0) -> float:
    """The factor of the base lr for the update after ``step`` completed updates of ``total_steps``:
    after a linear warm-up over the first ``warmup_steps`` updates ((step + 1) / warmup_steps), 1
    ("constant"), "cosine" 0.5 (1 + cos(pi p)) or "linear" 1 - p, with p = (step - warmup_steps) /
    (total_steps - warmup_steps) the progress through the rest: 1 at the first update after warm-up,
    falling towards 0 at the last."""
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"unknown lr_schedule {schedule!r}; choose one of {', '.join(LR_SCHEDULES)}")
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    p = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return 0.5 * (1 + math.cos(math.pi * p)) if schedule == "cosine" else 1.0 - p


def set_lr_factor(optimizers: list[torch.optim.Optimizer], factor: float) -> None:
    """lr = initial_lr * factor in every param group, ``initial_lr`` set from the group's lr the first time."""
    for opt in optimizers:
        for group in opt.param_groups:
            group.setdefault("initial_lr", group["lr"])
            group["lr"] = group["initial_lr"] * factor
