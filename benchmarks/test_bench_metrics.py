"""The metric pipeline: uint8 images -> features (gmbench.metrics.features.extract) -> Fréchet distance.

Runs for every registered extractor that builds here (the Inception track needs its weights;
without them it is skipped), or for a small stand-in CNN when none is registered, so the
``extract`` loop itself is always covered.
"""
from __future__ import annotations

import pytest
import torch
from gmbench.bench.timing import sync
from torch import nn

from gmbench.errors import GmbenchError
from gmbench.metrics.features import FeatureExtractor, extract
from gmbench.registry import EXTRACTORS

N_IMAGES = 1000
STAND_IN = "stand-in-cnn"


class StandInExtractor(FeatureExtractor):
    """Two strided convolutions and a linear layer: a LeNet-sized placeholder, 64-d features."""

    name = STAND_IN
    feature_dim = 64

    def __init__(self):
        super().__init__(weights_sha256="", num_classes=None)
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Conv2d(1, 16, 5, 2, 2), nn.ReLU(), nn.Conv2d(16, 32, 5, 2, 2), nn.ReLU(),
                                 nn.Flatten(), nn.Linear(32 * 7 * 7, self.feature_dim))

    def forward(self, images):
        return self.net(images.float() / 127.5 - 1), None  # [N,64]


def _extractor(name: str, device: torch.device) -> FeatureExtractor:
    if name == STAND_IN:
        return StandInExtractor().to(device)
    try:
        return EXTRACTORS.get(name)().to(device)
    except GmbenchError as exc:  # e.g. Inception weights not present here
        pytest.skip(f"extractor {name} unavailable: {exc}")


def _frechet():
    fid = pytest.importorskip("gmbench.metrics.fid")
    if not hasattr(fid, "frechet_distance"):
        pytest.skip("gmbench.metrics.fid has no frechet_distance(mu1, sigma1, mu2, sigma2)")
    return fid.frechet_distance


def _stats(features: torch.Tensor):
    mu = features.mean(0)  # [D]
    centred = features - mu
    return mu, centred.T @ centred / (len(features) - 1)  # [D], [D,D]


@pytest.mark.parametrize("name", EXTRACTORS.names() or [STAND_IN])
def test_extract_features(benchmark, name, device):
    extractor = _extractor(name, device)
    images = torch.randint(0, 256, (N_IMAGES, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))

    def run():
        features, _ = extract(extractor, images)
        sync(device)
        return features

    benchmark.extra_info.update(extractor=name, n_images=N_IMAGES, device=str(device))
    features = benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)
    assert features.shape[0] == N_IMAGES


@pytest.mark.parametrize("name", EXTRACTORS.names() or [STAND_IN])
def test_images_to_frechet_distance(benchmark, name, device):
    frechet_distance = _frechet()
    extractor = _extractor(name, device)
    generator = torch.Generator().manual_seed(0)
    real = torch.randint(0, 256, (N_IMAGES, 1, 28, 28), dtype=torch.uint8, generator=generator)
    fake = torch.randint(0, 256, (N_IMAGES, 1, 28, 28), dtype=torch.uint8, generator=generator)
    mu_r, sigma_r = _stats(extract(extractor, real)[0])

    def run():
        mu_f, sigma_f = _stats(extract(extractor, fake)[0])
        sync(device)
        return float(frechet_distance(mu_r, sigma_r, mu_f, sigma_f))

    benchmark.extra_info.update(extractor=name, n_images=N_IMAGES, device=str(device))
    assert benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1) >= 0
