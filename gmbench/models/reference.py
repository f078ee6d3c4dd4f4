"""Reference rows shown beside the models (family "other", not trained): real-data and pca-gaussian.

Both fit themselves in ``fit_data`` and keep what they fitted in fixed-size buffers, so their
``state_dict`` round-trips through ``torch.save`` / ``torch.load(weights_only=True)`` into a
fresh instance of the same config.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from gmbench.config import check_range
from gmbench.data import to_float, to_uint8
from gmbench.models.base import GenerativeModel
from gmbench.registry import register_model


def _check_fit(model: GenerativeModel, data: Tensor, needed: int) -> None:
    if data.dim() != 4 or tuple(data.shape[1:]) != model.image_shape:
        raise ValueError(f"{type(model).__name__}.fit_data expects [N,{','.join(map(str, model.image_shape))}] images, got {tuple(data.shape)}")
    if len(data) < needed:
        raise ValueError(f"{type(model).__name__} needs at least {needed} training images, got {len(data)}")


def _require_fitted(model: GenerativeModel) -> None:
    if not bool(model.fitted):  # a host read once per sample call; reference rows are not timed for sync
        raise RuntimeError(f"{type(model).__name__}.sample called before fit_data (or loading a fitted state_dict)")


@dataclass(frozen=True)
class RealDataConfig:
    n_images: int = 10000  # training images kept (a fixed random subset, seed 0)

    def __post_init__(self):
        check_range(self, "n_images", low=1)


@register_model("real-data")
class RealData(GenerativeModel):
    """Real training images as "samples": the floor a model's scores can reach against the test set.

    ``fit_data`` keeps a fixed random subset (seed 0) of ``n_images`` training images as uint8;
    ``sample(n)`` draws n of them without replacement (with replacement when n > n_images) using
    the given generator, returned as float [-1,1]."""

    Config = RealDataConfig
    trainable = False
    tiny_overrides = {"n_images": 16}

    @classmethod
    def check_job(cls, config, batch_size: int, n_train: int | None, image_shape: tuple[int, int, int]) -> None:
        if n_train is not None and config.n_images > n_train:
            raise ValueError(f"n_images={config.n_images} is more than the {n_train} training images; lower n_images")

    def __init__(self, config: RealDataConfig | None = None, image_shape=(1, 28, 28)):
        super().__init__(config, image_shape)
        self.register_buffer("images", torch.zeros(self.config.n_images, *self.image_shape, dtype=torch.uint8))  # [N,C,H,W]
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    def fit_data(self, data: Tensor) -> None:
        n = self.config.n_images
        _check_fit(self, data, n)
        pick = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))[:n].to(data.device)  # [n]
        self.images.copy_(to_uint8(data[pick]))
        self.fitted.fill_(True)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        _require_fitted(self)
        N = len(self.images)
        if n <= N:
            idx = torch.randperm(N, generator=generator, device=self.device)[:n]  # [n]
        else:
            idx = torch.randint(0, N, (n,), generator=generator, device=self.device)  # [n]
        return to_float(self.images[idx])  # [n,C,H,W]


@dataclass(frozen=True)
class PCAGaussianConfig:
    n_components: int = 40

    def __post_init__(self):
        check_range(self, "n_components", low=1)


@register_model("pca-gaussian")
class PCAGaussian(GenerativeModel):
    """A Gaussian in the top principal components of the training images (probabilistic PCA without
    the isotropic residual noise; Tipping & Bishop 1999): x = mean + sum_k sqrt(lambda_k) z_k v_k,
    z ~ N(0, I), clipped to [-1,1]. The non-neural baseline every neural model must beat.
    Default: 40 components (fitted by an eigendecomposition of the covariance in float64)."""

    Config = PCAGaussianConfig
    trainable = False
    tiny_overrides = {"n_components": 4}

    @classmethod
    def check_job(cls, config, batch_size: int, n_train: int | None, image_shape: tuple[int, int, int]) -> None:
        d = image_shape[0] * image_shape[1] * image_shape[2]
        if not 1 <= config.n_components <= d:
            raise ValueError(f"n_components must be in [1, {d}] (the pixels of an image), got {config.n_components}")

    def __init__(self, config: PCAGaussianConfig | None = None, image_shape=(1, 28, 28)):
        super().__init__(config, image_shape)
        d = self.image_shape[0] * self.image_shape[1] * self.image_shape[2]
        k = self.config.n_components
        self.check_job(self.config, batch_size=1, n_train=1, image_shape=self.image_shape)  # only the shape matters
        self.register_buffer("mean", torch.zeros(d))  # [D]
        self.register_buffer("components", torch.zeros(k, d))  # [k,D], rows orthonormal
        self.register_buffer("stds", torch.zeros(k))  # [k], sqrt of the eigenvalues
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    def fit_data(self, data: Tensor) -> None:
        _check_fit(self, data, 2)
        x = data.flatten(1).double()  # [N,D]
        mean = x.mean(0)  # [D]
        xc = x - mean
        cov = xc.T @ xc / (len(x) - 1)  # [D,D]
        evals, evecs = torch.linalg.eigh(cov)  # ascending
        top = evals.flip(0)[: self.config.n_components].clamp_min(0)  # [k]
        self.mean.copy_(mean)
        self.components.copy_(evecs.flip(1)[:, : self.config.n_components].T)
        self.stds.copy_(top.sqrt())
        self.fitted.fill_(True)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        _require_fitted(self)
        z = self.randn(n, self.config.n_components, generator=generator)  # [n,k]
        x = self.mean + (z * self.stds) @ self.components  # [n,D]
        return x.view(n, *self.image_shape).clamp(-1, 1)
