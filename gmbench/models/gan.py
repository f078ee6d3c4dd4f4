"""Generative adversarial networks.

Losses are small pure functions on discriminator logits so tests can check them against their
formulas; each model class owns its networks and optimizers and runs its own steps.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gmbench.models.base import GenerativeModel
from gmbench.registry import register_model


def discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """-log D(x) - log(1 - D(G(z))), with D = sigmoid(logits) (Goodfellow et al. 2014)."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_loss_nonsaturating(fake_logits: Tensor) -> Tensor:
    """-log D(G(z)): the non-saturating generator loss of Goodfellow et al. 2014."""
    return F.softplus(-fake_logits).mean()


@dataclass(frozen=True)
class DCGANConfig:
    z_dim: int = 100
    width: int = 64  # channels of the last generator / first discriminator conv
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999


class DCGANGenerator(nn.Module):
    def __init__(self, z_dim: int, width: int, channels: int):
        super().__init__()
        self.width = width
        self.project = nn.Sequential(nn.Linear(z_dim, 2 * width * 7 * 7, bias=False), nn.BatchNorm1d(2 * width * 7 * 7), nn.ReLU(True))
        self.up = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(True),  # 7 -> 14
            nn.ConvTranspose2d(width, channels, 4, 2, 1), nn.Tanh(),  # 14 -> 28
        )

    def forward(self, z: Tensor) -> Tensor:
        h = self.project(z).view(-1, 2 * self.width, 7, 7)  # [B,2w,7,7]
        return self.up(h)  # [B,C,28,28]


class DCGANDiscriminator(nn.Module):
    def __init__(self, width: int, channels: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2, True),  # 28 -> 14
            nn.Conv2d(width, 2 * width, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * width), nn.LeakyReLU(0.2, True),  # 14 -> 7
            nn.Flatten(), nn.Linear(2 * width * 7 * 7, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(1)  # [B] logits


@register_model("dcgan")
class DCGAN(GenerativeModel):
    """DCGAN (Radford et al. 2016) sized for 28x28: transposed-conv generator with batch norm,
    strided-conv discriminator with LeakyReLU, non-saturating loss, Adam(2e-4, betas 0.5/0.999)."""

    family = "gan"
    Config = DCGANConfig

    def __init__(self, config: DCGANConfig | None = None, image_shape=(1, 28, 28)):
        super().__init__(config, image_shape)
        c = self.config
        if tuple(image_shape[1:]) != (28, 28):
            raise ValueError("dcgan is built for 28x28 images")
        self.generator = DCGANGenerator(c.z_dim, c.width, image_shape[0])
        self.discriminator = DCGANDiscriminator(c.width, image_shape[0])
        betas = (c.beta1, c.beta2)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=c.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=c.lr, betas=betas)

    def train_step(self, x: Tensor) -> dict[str, Tensor]:
        z = self.randn(x.shape[0], self.config.z_dim)
        fake = self.generator(z)  # [B,C,28,28]
        loss_d = discriminator_loss(self.discriminator(x), self.discriminator(fake.detach()))
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        loss_g = generator_loss_nonsaturating(self.discriminator(fake))
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach()}

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        was_training = self.generator.training
        self.generator.eval()
        out = self.generator(self.randn(n, self.config.z_dim, generator=generator))
        self.generator.train(was_training)
        return out
