"""``midpoint``: the explicit midpoint method (2nd-order Runge-Kutta) for flow-matching velocity fields.

Two evaluations per step: one at the start, one at the half-step the first one predicts. torchdiffeq's
fixed-grid "midpoint" on the same uniform grid computes the same thing; the package's tests check that.
"""
from __future__ import annotations

import torch
from torch import Tensor

from gmbench.samplers.base import Sampler, VelocityField


class Midpoint(Sampler):
    kind = VelocityField.kind  # dx/dt = v(x, t), t = 0 noise, t = 1 data

    def sample(self, denoiser: VelocityField, x: Tensor, steps: int, generator: torch.Generator | None = None) -> Tensor:
        h = 1.0 / steps
        for i in range(steps):
            t = torch.full((x.shape[0],), i * h, device=x.device)  # [B]
            v0 = denoiser.fn(x, t)  # [B,C,H,W]
            x = x + h * denoiser.fn(x + 0.5 * h * v0, t + 0.5 * h)  # [B,C,H,W]
        return x

    def nfe(self, steps: int, **options) -> int:
        return 2 * steps
