"""Samplers of eps denoisers: ancestral "ddpm" (Ho et al. 2020) and "ddim" (Song et al. 2021), deterministic
unless its ``eta`` asks for part of the ancestral sampler's noise.

Both run ``steps`` timesteps of the alpha-bar schedule (``sampling_timesteps``), one denoiser evaluation
per step, and clip each x0 estimate to [-1,1] unless ``clip_sample=False`` (diffusers' clip_sample).
DDIM's ``clipped_eps`` re-derives the noise from the clipped x0 estimate.
"""
from __future__ import annotations

import torch
from torch import Tensor

from gmbench.errors import GmbenchError
from gmbench.registry import register_sampler
from gmbench.samplers.base import EpsDenoiser, Sampler


def predict_x0(x_t: Tensor, eps: Tensor, alpha_bar_t: Tensor) -> Tensor:
    """x_0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t), inverting q_sample; alpha_bar_t a scalar tensor."""
    return (x_t - (1 - alpha_bar_t).sqrt() * eps) / alpha_bar_t.sqrt()


def posterior_mean_variance(x0: Tensor, x_t: Tensor, alpha_bar_t: Tensor, alpha_bar_prev: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and variance of q(x_prev | x_t, x_0) (Ho et al. eq. 6-7) between two (possibly strided)
    timesteps, with beta = 1 - abar_t / abar_prev:
    mean = sqrt(abar_prev) beta / (1 - abar_t) x_0 + sqrt(1 - beta) (1 - abar_prev) / (1 - abar_t) x_t,
    variance = (1 - abar_prev) / (1 - abar_t) beta."""
    beta = 1 - alpha_bar_t / alpha_bar_prev
    mean = (alpha_bar_prev.sqrt() * beta / (1 - alpha_bar_t)) * x0 + ((1 - beta).sqrt() * (1 - alpha_bar_prev) / (1 - alpha_bar_t)) * x_t
    return mean, (1 - alpha_bar_prev) / (1 - alpha_bar_t) * beta


def _x0_hat(x_t: Tensor, eps: Tensor, alpha_bar_t: Tensor, clip_sample: bool) -> Tensor:
    """predict_x0, clipped to [-1,1] when ``clip_sample`` (diffusers' clip_sample, clip_sample_range 1)."""
    x0 = predict_x0(x_t, eps, alpha_bar_t)  # [B,C,H,W]
    return x0.clamp(-1, 1) if clip_sample else x0


def ddpm_step(x_t: Tensor, eps: Tensor, alpha_bar_t: Tensor, alpha_bar_prev: Tensor, noise: Tensor | None,
              clip_sample: bool = True) -> Tensor:
    """Ancestral step x_t -> x_prev ~ p(x_prev | x_t) = q(x_prev | x_t, x0_hat), x0_hat clipped to
    [-1,1] by default as in Ho et al.'s code, variance beta_tilde (diffusers' DDPMScheduler,
    variance_type="fixed_small"); ``noise`` None on the last step."""
    mean, var = posterior_mean_variance(_x0_hat(x_t, eps, alpha_bar_t, clip_sample), x_t, alpha_bar_t, alpha_bar_prev)
    return mean if noise is None else mean + var.sqrt() * noise


def ddim_step(x_t: Tensor, eps: Tensor, alpha_bar_t: Tensor, alpha_bar_prev: Tensor, clip_sample: bool = True,
              clipped_eps: bool = False, eta: float = 0.0, noise: Tensor | None = None) -> Tensor:
    """DDIM step (Song et al. 2021 eq. 12): sqrt(abar_prev) x0_hat + sqrt(1 - abar_prev - sigma^2) eps + sigma noise,
    sigma^2 = eta^2 (1 - abar_prev) / (1 - abar_t) (1 - abar_t / abar_prev), with x0_hat clipped to [-1,1] by
    default (diffusers' DDIMScheduler default, clip_sample=True). eta = 0, the default, is the deterministic
    step (then ``noise`` is not used); eta = 1 gives sigma^2 the ancestral step's variance beta_tilde.

    ``clipped_eps``: eps re-derived from the clipped x0_hat, eps = (x_t - sqrt(abar_t) x0_hat) / sqrt(1 - abar_t),
    so that the step lands on the DDIM path through x_t and x0_hat (guided-diffusion's ddim_sample, which
    re-derives eps from the clipped x0; diffusers' use_clipped_model_output=True). Without it, the step mixes
    the clipped x0_hat with the unclipped eps, off that path whenever clipping acts. With it and eta = 1 the
    step is the ancestral one (``ddpm_step``), noise for noise."""
    x0 = _x0_hat(x_t, eps, alpha_bar_t, clip_sample)  # [B,C,H,W]
    if clipped_eps:
        eps = (x_t - alpha_bar_t.sqrt() * x0) / (1 - alpha_bar_t).sqrt()
    var = eta ** 2 * (1 - alpha_bar_prev) / (1 - alpha_bar_t) * (1 - alpha_bar_t / alpha_bar_prev)  # [], 0 at eta 0
    x_prev = alpha_bar_prev.sqrt() * x0 + (1 - alpha_bar_prev - var).clamp(min=0).sqrt() * eps
    return x_prev if eta == 0 or noise is None else x_prev + var.sqrt() * noise


def sampling_timesteps(num_timesteps: int, steps: int) -> Tensor:
    """``steps`` timesteps evenly spaced from T-1 down to 0, rounded (all of them when steps == T): int64 [steps].

    So the chain starts at the noisiest trained timestep and ends at the cleanest. This is diffusers'
    timestep_spacing="linspace", not DDIMScheduler's and DDPMScheduler's default "leading" (multiples
    of T // steps from 0: 900, ..., 0 for T=1000, 10 steps) nor "trailing" (T-1 down by T / steps:
    999, ..., 99). Two exceptions: one step gives [T-1] (diffusers' linspace: [0]), and an exact
    half-integer (832.5 for T=1000, 103 steps) may round to the other neighbour than in diffusers,
    which reverses linspace(0, T-1)."""
    return torch.linspace(num_timesteps - 1, 0, steps, dtype=torch.float64).round().long()


class TimestepChain(Sampler):
    """From x = x_T [B,C,H,W] over ``steps`` timesteps (``sampling_timesteps``), one evaluation per step.

    Each step goes to the next timestep of the grid, as diffusers' DDPMScheduler's do, and the last
    one to abar = 1 (DDPMScheduler; DDIMScheduler with set_alpha_to_one=True, its default).
    DDIMScheduler steps to t - T // steps instead, the next grid timestep only with "leading"
    spacing (or "trailing" when steps divides T), not on this grid. Subclasses give ``step``."""

    kind = EpsDenoiser.kind
    defaults = {"clip_sample": True}

    def step(self, x: Tensor, eps: Tensor, a_t: Tensor, a_prev: Tensor, last: bool,
             generator: torch.Generator | None, **options) -> Tensor:
        raise NotImplementedError

    @staticmethod
    def step_noise(x: Tensor, generator: torch.Generator | None) -> Tensor:
        """A step's fresh noise, of x's shape, dtype and device: drawn alike by every stochastic step."""
        return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)

    def sample(self, denoiser: EpsDenoiser, x: Tensor, steps: int, generator: torch.Generator | None = None,
               **options) -> Tensor:
        alpha_bars, options = denoiser.alpha_bars, self.options(options)  # defaults filled in
        ts = sampling_timesteps(len(alpha_bars), steps).tolist()
        one = torch.ones((), dtype=alpha_bars.dtype, device=alpha_bars.device)
        for i, t in enumerate(ts):
            a_prev = alpha_bars[ts[i + 1]] if i + 1 < len(ts) else one
            eps = denoiser.fn(x, torch.full((x.shape[0],), t, device=x.device, dtype=torch.float32))  # [B,C,H,W]
            x = self.step(x, eps, alpha_bars[t], a_prev, i + 1 == len(ts), generator, **options)
        return x


class Ancestral(TimestepChain):
    """Ancestral DDPM sampling (Ho et al. 2020): draws noise of x's shape and dtype from ``generator`` after
    every evaluation but the last (at t = 0), as DDPMScheduler draws it at t > 0."""

    def step(self, x, eps, a_t, a_prev, last, generator, clip_sample):
        noise = None if last else self.step_noise(x, generator)
        return ddpm_step(x, eps, a_t, a_prev, noise, clip_sample)


class DDIM(TimestepChain):
    """DDIM sampling (Song et al. 2021), deterministic by default (``eta`` 0); ``clipped_eps`` as in
    ``ddim_step`` (off by default, as in diffusers). With ``eta`` in (0, 1] it draws noise of x's shape
    and dtype from ``generator`` after every evaluation but the last, as ``Ancestral`` does, so eta = 1
    with ``clipped_eps`` is that sampler, sample for sample (the DDIM paper's eta sweep, its Table 1)."""

    defaults = {**TimestepChain.defaults, "clipped_eps": False, "eta": 0.0}

    def options(self, given, where="sampler_options"):
        options = super().options(given, where)
        if not 0 <= options["eta"] <= 1:
            raise GmbenchError(f"{where}: eta={options['eta']!r} must be in [0, 1]: 0 is deterministic DDIM, 1 "
                               f"the ancestral sampler's variance.")
        return options

    def step(self, x, eps, a_t, a_prev, last, generator, clip_sample, clipped_eps, eta):
        noise = None if last or eta == 0 else self.step_noise(x, generator)
        return ddim_step(x, eps, a_t, a_prev, clip_sample, clipped_eps, eta, noise)


register_sampler("ddpm", Ancestral())
register_sampler("ddim", DDIM())
