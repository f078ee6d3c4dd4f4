"""Generative adversarial networks: gan-mlp, dcgan and wgan-gp.

Losses are small pure functions on discriminator outputs so tests can check them against their
formulas; each model class owns its networks and optimizers and runs its own steps. The three
models share sampling (``AdversarialModel``); gan-mlp and dcgan also share the training step
(``NonSaturatingGAN``) and differ only in their networks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gmbench.config import check_range
from gmbench.device import Bf16Setting
from gmbench.models.base import GenerativeModel
from gmbench.registry import register_model


# --- losses ---------------------------------------------------------------------------------------
def discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """-log D(x) - log(1 - D(G(z))), with D = sigmoid(logits) (Goodfellow et al. 2014)."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_loss_nonsaturating(fake_logits: Tensor) -> Tensor:
    """-log D(G(z)): the non-saturating generator loss of Goodfellow et al. 2014."""
    return F.softplus(-fake_logits).mean()


def critic_loss_wasserstein(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """E[C(G(z))] - E[C(x)]: the critic minimises the negative Wasserstein estimate (Arjovsky et al. 2017)."""
    return fake_scores.mean() - real_scores.mean()


def generator_loss_wasserstein(fake_scores: Tensor) -> Tensor:
    """-E[C(G(z))]."""
    return -fake_scores.mean()


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, eps: Tensor) -> Tensor:
    """E[(||grad_x C(x_hat)||_2 - 1)^2] at x_hat = eps*real + (1-eps)*fake (Gulrajani et al. 2017, eq. 3).

    ``eps``: [B,1,1,1] uniform in [0,1]. The graph is kept so the penalty can be backpropagated.
    """
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)  # [B,C,H,W]
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)  # [B,C,H,W]
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()


# --- networks -------------------------------------------------------------------------------------
class MLPGenerator(nn.Module):
    """z -> 256 -> 512 -> prod(image_shape), LeakyReLU(0.2) hidden units (optionally batch-normed), tanh output."""

    def __init__(self, z_dim: int, hidden: tuple[int, int], image_shape: tuple[int, int, int], batch_norm: bool = False):
        super().__init__()
        self.image_shape = image_shape
        out = image_shape[0] * image_shape[1] * image_shape[2]
        norm = nn.BatchNorm1d if batch_norm else (lambda _: nn.Identity())
        self.net = nn.Sequential(
            nn.Linear(z_dim, hidden[0]), norm(hidden[0]), nn.LeakyReLU(0.2, True),
            nn.Linear(hidden[0], hidden[1]), norm(hidden[1]), nn.LeakyReLU(0.2, True),
            nn.Linear(hidden[1], out), nn.Tanh(),
        )

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(-1, *self.image_shape)  # [B,C,H,W]


class FloatLinear(nn.Linear):
    """A Linear layer that runs in fp32 under autocast: for the discriminators' one-logit heads, whose
    one-column products bf16 kernels run 4-5x slower than fp32 ones on the CPU (30-40 us against 7-8 us
    at 64 x 256 -> 1), where the logit is wanted in fp32 anyway."""

    def forward(self, x: Tensor) -> Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return super().forward(x.float())


class MLPDiscriminator(nn.Module):
    """prod(image_shape) -> 512 -> 256 -> 1 logit, LeakyReLU(0.2) hidden units."""

    def __init__(self, hidden: tuple[int, int], image_shape: tuple[int, int, int]):
        super().__init__()
        inp = image_shape[0] * image_shape[1] * image_shape[2]
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(inp, hidden[0]), nn.LeakyReLU(0.2, True),
            nn.Linear(hidden[0], hidden[1]), nn.LeakyReLU(0.2, True),
            FloatLinear(hidden[1], 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(1)  # [B] logits


class DCGANGenerator(nn.Module):
    """z -> linear to s/4 x s/4 -> transposed convs s/4 -> s/2 -> s, for square images of side s (28 or 32)."""

    def __init__(self, z_dim: int, width: int, channels: int, side: int = 28):
        super().__init__()
        self.width, self.start = width, side // 4
        cells = 2 * width * self.start**2
        self.project = nn.Sequential(nn.Linear(z_dim, cells, bias=False), nn.BatchNorm1d(cells), nn.ReLU(True))
        self.up = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(True),  # s/4 -> s/2
            nn.ConvTranspose2d(width, channels, 4, 2, 1), nn.Tanh(),  # s/2 -> s
        )

    def forward(self, z: Tensor) -> Tensor:
        h = self.project(z).view(-1, 2 * self.width, self.start, self.start)  # [B,2w,s/4,s/4]
        return self.up(h)  # [B,C,s,s]


class DCGANDiscriminator(nn.Module):
    """Strided convs s -> s/2 -> s/4 and a linear head; ``batch_norm=False`` gives the WGAN-GP critic."""

    def __init__(self, width: int, channels: int, batch_norm: bool = True, side: int = 28):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2, True),  # s -> s/2
            nn.Conv2d(width, 2 * width, 4, 2, 1, bias=not batch_norm),  # s/2 -> s/4
            nn.BatchNorm2d(2 * width) if batch_norm else nn.Identity(), nn.LeakyReLU(0.2, True),
            nn.Flatten(), FloatLinear(2 * width * (side // 4) ** 2, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(1)  # [B] logits / critic scores


# --- models ---------------------------------------------------------------------------------------
class AdversarialModel(GenerativeModel):
    """Shared parts of the GANs: ``self.generator`` maps z [B,z_dim] to images; sampling runs it in eval mode."""

    family = "gan"
    generator: nn.Module

    def _adam(self, module: nn.Module) -> torch.optim.Adam:
        c = self.config
        return torch.optim.Adam(module.parameters(), lr=c.lr, betas=(c.beta1, c.beta2))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        was_training = self.generator.training
        self.generator.eval()
        z = self.randn(n, self.config.z_dim, generator=generator)  # [n,z]
        with self.autocast():
            out = self.generator(z).float()  # [n,C,H,W]
        self.generator.train(was_training)
        return out


class NonSaturatingGAN(AdversarialModel):
    """One discriminator step on real and (detached) fake, then one non-saturating generator step,
    each with its own backward pass. Subclasses build ``generator`` and ``discriminator``.

    Two savings that leave the math unchanged: the generator's backward pass stops at the
    generator's parameters (``backward(inputs=...)``: no discriminator weight gradients, which its
    next step would discard), and a discriminator whose outputs are per-image functions
    (``per_image_discriminator``: no batch norm) scores real and fake images in one batch."""

    discriminator: nn.Module
    per_image_discriminator: ClassVar[bool] = False
    ddp_networks = ("generator", "discriminator")

    def _build_optimizers(self) -> None:
        self.opt_g = self._adam(self.generator)
        self.opt_d = self._adam(self.discriminator)

    def _real_fake_logits(self, x: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
        """D(x) [B] and D(fake) [B]; one call on both when D treats each image alone (batch statistics
        would otherwise mix real and fake)."""
        discriminator = self.replica("discriminator")
        if self.per_image_discriminator:
            return discriminator(torch.cat([x, fake])).tensor_split(2)  # [2B] -> 2 x [B]
        return discriminator(x), discriminator(fake)

    def train_step(self, x: Tensor) -> dict[str, Tensor]:
        z = self.rows(lambda n: self.randn(n, self.config.z_dim), x.shape[0])  # [B,z]
        with self.autocast():
            fake = self.replica("generator")(z)  # [B,C,H,W]
            real_logits, fake_logits = self._real_fake_logits(x, fake.detach())  # 2 x [B]
        loss_d = discriminator_loss(real_logits.float(), fake_logits.float())
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        # The bare discriminator: its weights get no gradients here, so under DDP its wrapper must not wait for them.
        with self.autocast():
            fake_logits = self.discriminator(fake)  # [B]
        loss_g = generator_loss_nonsaturating(fake_logits.float())
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward(inputs=list(self.generator.parameters()))
        self.opt_g.step()
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach()}


def _check_adam(config) -> None:
    """The Adam settings every GAN config has: lr > 0, betas in [0, 1)."""
    check_range(config, "lr", low=0, open_low=True)
    check_range(config, "beta1", "beta2", low=0, high=1, open_high=True)


@dataclass(frozen=True)
class GANMLPConfig:
    z_dim: int = 100
    hidden_g: tuple[int, int] = (256, 512)
    hidden_d: tuple[int, int] = (512, 256)
    batch_norm_g: bool = False  # batch norm on G's hidden layers (as in Radford et al. 2016)
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    bf16: Bf16Setting = False  # bf16 autocast of the forward passes (GenerativeModel.autocast)

    def __post_init__(self):
        check_range(self, "z_dim", "hidden_g", "hidden_d", low=1)
        _check_adam(self)


@register_model("gan-mlp")
class GANMLP(NonSaturatingGAN):
    """The fully connected GAN of Goodfellow et al. 2014, trained the way that works: G 100 -> 256 ->
    512 -> 784 with tanh output (data in [-1,1]), D 784 -> 512 -> 256 -> 1, LeakyReLU(0.2) in both,
    non-saturating generator loss, Adam(2e-4, betas 0.5/0.999) as in Radford et al. 2016.
    ``batch_norm_g`` adds batch norm to G's two hidden layers (off by default). The CPU quick suite
    turns it on and raises lr to 5e-4: in 30 s of training, both gave more varied digits (fid 398
    against 422 at lr 5e-4 alone; 558 at 2e-4), though all three stayed speckled."""

    Config = GANMLPConfig
    tiny_overrides = {"hidden_g": (16, 16), "hidden_d": (16, 16), "z_dim": 8}
    per_image_discriminator = True

    def __init__(self, config: GANMLPConfig | None = None, image_shape=(1, 28, 28)):
        super().__init__(config, image_shape)
        c = self.config
        self.generator = MLPGenerator(c.z_dim, c.hidden_g, self.image_shape, c.batch_norm_g)
        self.discriminator = MLPDiscriminator(c.hidden_d, self.image_shape)
        self._build_optimizers()


@dataclass(frozen=True)
class DCGANConfig:
    z_dim: int = 100
    width: int = 64  # channels of the last generator / first discriminator conv
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    bf16: Bf16Setting = False  # bf16 autocast of the forward passes (GenerativeModel.autocast)

    def __post_init__(self):
        check_range(self, "z_dim", "width", low=1)
        _check_adam(self)


@register_model("dcgan")
class DCGAN(NonSaturatingGAN):
    """DCGAN (Radford et al. 2016) sized for 28x28 or 32x32: transposed-conv generator with batch norm,
    strided-conv discriminator with LeakyReLU, non-saturating loss, Adam(2e-4, betas 0.5/0.999)."""

    Config = DCGANConfig
    tiny_overrides = {"width": 4, "z_dim": 8}
    image_sizes = ((28, 28), (32, 32))

    def __init__(self, config: DCGANConfig | None = None, image_shape=(1, 28, 28)):
        super().__init__(config, image_shape)
        c = self.config
        self.generator = DCGANGenerator(c.z_dim, c.width, *self.image_shape[:2])
        self.discriminator = DCGANDiscriminator(c.width, self.image_shape[0], side=self.image_shape[1])
        self._build_optimizers()


@dataclass(frozen=True)
class WGANGPConfig:
    z_dim: int = 100
    width: int = 64
    n_critic: int = 5  # critic steps per generator step; each takes 1/n_critic of the batch
    gp_weight: float = 10.0  # lambda
    lr: float = 1e-4
    beta1: float = 0.0
    beta2: float = 0.9
    bf16: Bf16Setting = False  # bf16 autocast of the forward passes (GenerativeModel.autocast)

    def __post_init__(self):
        check_range(self, "z_dim", "width", "n_critic", low=1)
        check_range(self, "gp_weight", low=0)
        _check_adam(self)


@register_model("wgan-gp")
class WGANGP(AdversarialModel):
    """WGAN-GP (Gulrajani et al. 2017): Wasserstein critic without batch norm, gradient penalty with
    lambda = 10, n_critic = 5 critic steps per generator step, Adam(1e-4, betas 0.0/0.9) as in the
    paper's Algorithm 1; DCGAN-shaped generator and critic.

    Batches: ``train_step(x)`` splits its one batch into ``n_critic`` disjoint chunks, one per
    critic step (so every image is seen once and images/s stays comparable with the other GANs);
    the generator step uses a batch of fakes as large as one chunk. The paper's MNIST setting
    (critic batch 50-64) thus corresponds to a harness batch of 5 x 64 = 320.
    The CPU quick suite uses lr 5e-4 and batch 160: the paper's 1e-4 made no digits in the ~100
    generator steps a minute of CPU allows.
    """

    Config = WGANGPConfig
    tiny_overrides = {"width": 4, "z_dim": 8, "n_critic": 2}
    compile_unsupported = "the gradient penalty backpropagates through a gradient, and compiled graphs have no double backward"
    image_sizes = ((28, 28), (32, 32))

    def __init__(self, config: WGANGPConfig | None = None, image_shape=(1, 28, 28)):
        super().__init__(config, image_shape)
        c = self.config
        self.generator = DCGANGenerator(c.z_dim, c.width, *self.image_shape[:2])
        self.critic = DCGANDiscriminator(c.width, self.image_shape[0], batch_norm=False, side=self.image_shape[1])
        self.opt_g = self._adam(self.generator)
        self.opt_c = self._adam(self.critic)

    @classmethod
    def check_job(cls, config, batch_size: int, n_train: int, image_shape: tuple[int, int, int]) -> None:
        if batch_size < config.n_critic:
            raise ValueError(f"budget batch_size {batch_size} is smaller than n_critic={config.n_critic}: each critic "
                             "step takes 1/n_critic of the batch; raise batch_size or lower n_critic")

    def train_step(self, x: Tensor) -> dict[str, Tensor]:
        c = self.config
        if x.shape[0] < c.n_critic:
            raise ValueError(f"wgan-gp needs a batch of at least n_critic={c.n_critic} images, got {x.shape[0]}")
        for real in x.tensor_split(c.n_critic):  # n_critic x [b,C,H,W]
            with torch.no_grad(), self.autocast():
                fake = self.generator(self.randn(real.shape[0], c.z_dim)).float()  # [b,C,H,W]
            eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device)  # [b,1,1,1]
            with self.autocast():
                gp = gradient_penalty(self.critic, real, fake, eps)
                loss_c = critic_loss_wasserstein(self.critic(real).float(), self.critic(fake).float()) + c.gp_weight * gp
            self.opt_c.zero_grad(set_to_none=True)
            loss_c.backward()
            self.opt_c.step()
        with self.autocast():
            fake = self.generator(self.randn(real.shape[0], c.z_dim))  # [b,C,H,W]
            loss_g = generator_loss_wasserstein(self.critic(fake).float())
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward(inputs=list(self.generator.parameters()))  # no critic weight gradients: they are not used
        self.opt_g.step()
        return {"loss_c": loss_c.detach(), "gp": gp.detach(), "loss_g": loss_g.detach()}
