"""The metric pipeline: uint8 images -> features (gmbench.metrics.features.extract) -> Fréchet distance.

Runs for every registered extractor that builds here (the Inception track needs its weights;
without them it is skipped).
"""
from __future__ import annotations

import pytest
import torch

from gmbench.bench.timing import sync
from gmbench.errors import GmbenchError
from gmbench.metrics.features import FeatureExtractor, build_extractor, extract
from gmbench.metrics.fid import frechet_distance, gaussian_stats
from gmbench.registry import EXTRACTORS

N_IMAGES = 1000


def _extractor(name: str, device: torch.device) -> FeatureExtractor:
    try:
        return build_extractor(name, device)
    except GmbenchError as exc:  # e.g. Inception weights not present here
        pytest.skip(f"extractor {name} unavailable: {exc}")


@pytest.mark.parametrize("name", EXTRACTORS.names())
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


@pytest.mark.parametrize("name", EXTRACTORS.names())
def test_images_to_frechet_distance(benchmark, name, device):
    extractor = _extractor(name, device)
    generator = torch.Generator().manual_seed(0)
    real = torch.randint(0, 256, (N_IMAGES, 1, 28, 28), dtype=torch.uint8, generator=generator)
    fake = torch.randint(0, 256, (N_IMAGES, 1, 28, 28), dtype=torch.uint8, generator=generator)
    mu_r, sigma_r = gaussian_stats(extract(extractor, real)[0])

    def run():
        mu_f, sigma_f = gaussian_stats(extract(extractor, fake)[0])
        sync(device)
        return frechet_distance(mu_r, sigma_r, mu_f, sigma_f)

    benchmark.extra_info.update(extractor=name, n_images=N_IMAGES, device=str(device))
    assert benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1) >= 0
