"""The sampler contract: a registered object that turns a model's denoiser and starting noise into samples.

As diffusers separates schedulers from networks, a model exposes its network as a denoiser of one of
two kinds, and any registered sampler of that kind runs it (DDPM-1000 and DDIM-50 on the same weights):

- ``EpsDenoiser``: a noise predictor eps(x_t, t) on timesteps t in {0..T-1}, with its alpha-bar
  schedule (Ho et al. 2020);
- ``VelocityField``: a velocity v(x_t, t) on t in [0,1], from noise (t = 0) to data (t = 1)
  (flow matching, Lipman et al. 2023).

A sampler declares the kind it needs, its options with their defaults, and ``nfe``, the denoiser
calls per sample it makes for ``steps`` steps (``gmbench.testing.check_sampler`` checks all of it).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import torch
from torch import Tensor

from gmbench.config import coerce
from gmbench.errors import GmbenchError

DenoiserFn = Callable[[Tensor, Tensor], Tensor]  # (x [B,C,H,W], t [B] float32) -> [B,C,H,W]


@dataclass(frozen=True)
class EpsDenoiser:
    """A noise predictor and its schedule: ``fn(x_t, t)`` with t the float timestep, alpha_bars float [T]
    on x's device (alpha_bars[t] = prod_{s<=t} (1 - beta_s))."""

    fn: DenoiserFn
    alpha_bars: Tensor
    kind: ClassVar[str] = "eps"


@dataclass(frozen=True)
class VelocityField:
    """dx/dt = ``fn(x, t)`` with t in [0,1]: t = 0 is noise, t = 1 is data."""

    fn: DenoiserFn
    kind: ClassVar[str] = "velocity"


KINDS = {EpsDenoiser.kind: "an eps denoiser (noise prediction with an alpha-bar schedule)",
         VelocityField.kind: "a velocity field (flow matching, t from noise 0 to data 1)"}


class Sampler:
    """Base class of samplers: set ``kind`` ("eps" or "velocity") and ``defaults`` (option -> default value,
    whose type the options are coerced to), implement ``sample`` and, when it is not one call per step, ``nfe``.
    Registered as an instance: ``register_sampler("name", MySampler())``."""

    kind: ClassVar[str]
    defaults: ClassVar[dict[str, Any]] = {}

    def sample(self, denoiser, x: Tensor, steps: int, generator: torch.Generator | None = None, **options) -> Tensor:
        """Samples [B,C,H,W] from starting noise x [B,C,H,W] in ``steps`` steps; draws any further noise from
        ``generator``; leaves x unchanged."""
        raise NotImplementedError

    def nfe(self, steps: int, **options) -> int:
        """Denoiser evaluations per sample for ``steps`` steps."""
        return steps

    def options(self, given: dict[str, Any], where: str = "sampler_options") -> dict[str, Any]:
        """``defaults`` updated by ``given``, each coerced to its default's type; unknown names raise GmbenchError."""
        unknown = sorted(set(given) - set(self.defaults))
        if unknown:
            raise GmbenchError(f"{where}: no option {', '.join(map(repr, unknown))}; the sampler's options are "
                               f"{', '.join(sorted(self.defaults)) or '(none)'}.")
        return {**self.defaults, **{k: coerce(k, v, type(self.defaults[k]), where) for k, v in given.items()}}


def is_sampler(obj: Any) -> bool:
    """A Sampler instance of a known kind (what the sampler registry accepts)."""
    return isinstance(obj, Sampler) and getattr(obj, "kind", None) in KINDS
