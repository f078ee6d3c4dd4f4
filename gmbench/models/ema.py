"""Exponential moving averages of weights, for sampling from a smoothed generator or denoiser
(Polyak averaging; Karras et al. 2018 for GAN generators, Ho et al. 2020 for diffusion)."""
from __future__ import annotations

import torch
from torch import nn


def ema_decay_at(step: int, decay: float) -> float:
    """The decay after ``step`` updates, warmed up as min(decay, (1 + step) / (10 + step)) so that
    short runs are not dominated by the initial weights."""
    return min(decay, (1 + step) / (10 + step))


def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model, parameter by parameter; buffers (batch-norm running
    statistics) are copied, since they describe the live network's activations. No host sync."""
    with torch.no_grad():
        for e, p in zip(ema.parameters(), model.parameters()):
            e.lerp_(p, 1.0 - decay)
        for e, b in zip(ema.buffers(), model.buffers()):
            e.copy_(b)
