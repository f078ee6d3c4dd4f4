"""The model contract every generative model in gmbench implements (see DESIGN.md, "Contracts")."""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch
from torch import Tensor, nn

from gmbench.config import apply_overrides


class GenerativeModel(nn.Module):
    """Base class of all models; one subclass per registered name.

    Subclasses set ``family`` ("gan" | "vae" | "diffusion" | "other") and ``Config`` (a frozen
    dataclass whose fields all have defaults), build their networks and optimizers in
    ``__init__`` and implement ``train_step`` and ``sample``. The harness owns devices, seeds,
    timing, uint8 conversion and checkpoints.

    Sampling settings (e.g. a diffusion sampler and its step count) are config fields listed in
    ``Config.sampling_fields``; the harness changes them between sampling runs with
    ``set_sampling``, so ``sample`` and ``nfe`` must read them from ``self.config`` each call.
    """

    family: ClassVar[str] = "other"
    Config: ClassVar[type]
    trainable: ClassVar[bool] = True  # False for reference rows fitted in ``fit_data`` (no training loop)
    # Config overrides that make the model tiny enough for the contract test on 2 CPU cores
    # (see ``tiny_config``); a model whose defaults are already tiny leaves it empty.
    tiny_overrides: ClassVar[dict] = {}
    # (H, W) the networks are built for, checked on construction; None accepts any image size.
    image_size: ClassVar[tuple[int, int] | None] = None

    def __init__(self, config=None, image_shape: tuple[int, int, int] = (1, 28, 28)):
        super().__init__()
        if config is None:
            config = self.Config()
        if not isinstance(config, self.Config):
            raise TypeError(f"{type(self).__name__} expects a {self.Config.__name__}, got {type(config).__name__}")
        self.config = config
        self.image_shape = tuple(image_shape)
        if self.image_size is not None and self.image_shape[1:] != self.image_size:
            raise ValueError(f"{type(self).__name__} is built for {self.image_size[0]}x{self.image_size[1]} images, "
                             f"got {self.image_shape[1]}x{self.image_shape[2]}")

    # --- the contract -------------------------------------------------------------------------
    def train_step(self, x: Tensor) -> dict[str, Tensor]:
        """One optimisation step on x: float [B,C,H,W] in [-1,1]. Returns detached scalar losses.

        Must not call ``.item()`` or otherwise synchronise with the host.
        """
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n samples: float [n,C,H,W] in [-1,1], drawn with ``generator`` when given."""
        raise NotImplementedError

    @property
    def nfe(self) -> int:
        """Network evaluations per sample (1 for one-shot generators, steps for diffusion)."""
        return 1

    def fit_data(self, data: Tensor) -> None:
        """Optional hook called once before training with the training images (float [-1,1] [N,C,H,W],
        on the training device). Non-iterative reference models fit themselves here."""

    # --- helpers for subclasses and the harness -----------------------------------------------
    @property
    def device(self) -> torch.device:
        for t in self.parameters():
            return t.device
        for t in self.buffers():
            return t.device
        return torch.device("cpu")

    def set_sampling(self, **overrides) -> None:
        """Change sampling-only config fields (checked against ``Config.sampling_fields``)."""
        allowed = set(getattr(self.Config, "sampling_fields", ()))
        self.config = apply_overrides(self.config, overrides, where=f"{type(self).__name__} sampling", allowed=allowed)

    def randn(self, *shape: int, generator: torch.Generator | None = None) -> Tensor:
        """Standard normal noise on the model's device, from ``generator`` when given."""
        return torch.randn(*shape, generator=generator, device=self.device)

    @classmethod
    def default_config(cls):
        return cls.Config()

    @classmethod
    def tiny_config(cls):
        """The default config with ``tiny_overrides`` applied: what the contract test builds."""
        return apply_overrides(cls.Config(), cls.tiny_overrides, where=f"{cls.__name__}.tiny_overrides")

    @classmethod
    def config_fields(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls.Config)]
