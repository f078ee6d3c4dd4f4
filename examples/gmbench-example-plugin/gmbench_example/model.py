"""``pixel-gaussian``: every pixel an independent Gaussian, fitted by maximum likelihood with Adam.

The smallest trainable generative model: 2 x C x H x W parameters (a mean and a log standard
deviation per pixel). It draws blurry averages of the training set, a floor any real model beats.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from gmbench.models.base import GenerativeModel


@dataclass(frozen=True)
class PixelGaussianConfig:
    lr: float = 1e-2

    def __post_init__(self):
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")


class PixelGaussian(GenerativeModel):
    """x ~ N(mu, diag(sigma^2)) per pixel; loss: the Gaussian negative log-likelihood per pixel."""

    family = "other"
    Config = PixelGaussianConfig

    def __init__(self, config: PixelGaussianConfig | None = None, image_shape=(1, 28, 28)):
        super().__init__(config, image_shape)
        self.mu = nn.Parameter(torch.zeros(image_shape))  # [C,H,W]
        self.log_sigma = nn.Parameter(torch.zeros(image_shape))  # [C,H,W]
        self.opt = torch.optim.Adam(self.parameters(), lr=self.config.lr)

    def train_step(self, x: Tensor) -> dict[str, Tensor]:
        z = (x - self.mu) * torch.exp(-self.log_sigma)  # [B,C,H,W]
        loss = (0.5 * z.square() + self.log_sigma).mean()  # NLL per pixel, up to log(2 pi) / 2
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"nll": loss.detach()}

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        eps = self.randn(n, *self.image_shape, generator=generator)  # [n,C,H,W]
        return (self.mu + self.log_sigma.exp() * eps).clamp(-1, 1)
