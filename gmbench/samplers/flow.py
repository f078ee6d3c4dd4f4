"""Samplers of velocity fields: fixed-grid "euler" and "heun" ODE solvers (flow matching, Lipman et al. 2023).

They integrate dx/dt = v(x, t) from t=0 (noise x) to t=1 on a uniform grid of ``steps`` steps. These are
torchdiffeq's fixed-grid "euler" and "heun2" with that grid as ``t``. diffusers' FlowMatchEulerDiscreteScheduler
(shift 1) runs sigma = 1 - t from 1 to 1/T in steps - 1 equal steps, then one step to sigma = 0; here t = 0 is
noise, t = 1 is data, and every step is 1 / steps long.
"""
from __future__ import annotations

import torch
from torch import Tensor

from gmbench.registry import register_sampler
from gmbench.samplers.base import DenoiserFn, Sampler, VelocityField


class UniformGrid(Sampler):
    """One ``step`` per interval of the uniform grid on [0,1]; subclasses give ``step``."""

    kind = VelocityField.kind

    def step(self, v: DenoiserFn, x: Tensor, t0: Tensor, t1: Tensor, ones: Tensor) -> Tensor:
        raise NotImplementedError

    def sample(self, denoiser: VelocityField, x: Tensor, steps: int, generator: torch.Generator | None = None) -> Tensor:
        grid = torch.linspace(0.0, 1.0, steps + 1, device=x.device)  # [steps+1]
        ones = torch.ones(x.shape[0], device=x.device)  # [B]
        for t0, t1 in zip(grid[:-1], grid[1:]):
            x = self.step(denoiser.fn, x, t0, t1, ones)
        return x


class Euler(UniformGrid):
    """Euler's method: one evaluation per step (nfe = steps)."""

    def step(self, v, x, t0, t1, ones):
        return x + (t1 - t0) * v(x, t0 * ones)  # [B,C,H,W]


class Heun(UniformGrid):
    """Heun's method: Euler predictor plus trapezoidal corrector, two evaluations per step (nfe = 2 * steps:
    the corrector's evaluation at t+h cannot be reused at the next step because the state moved)."""

    def step(self, v, x, t0, t1, ones):
        h = t1 - t0
        v0 = v(x, t0 * ones)  # [B,C,H,W]
        v1 = v(x + h * v0, t1 * ones)  # at the Euler predictor
        return x + h * 0.5 * (v0 + v1)

    def nfe(self, steps: int, **options) -> int:
        return 2 * steps


register_sampler("euler", Euler())
register_sampler("heun", Heun())
