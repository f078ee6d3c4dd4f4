"""FID: the eigenvalue form equals pytorch-fid's scipy.linalg.sqrtm formula; errors on bad input."""
import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F

from gmbench.data import load_dataset
from gmbench.errors import GmbenchError
from gmbench.metrics.fid import fid_from_features, frechet_distance, gaussian_stats
from tests.conftest import requires_mnist

pytestmark = requires_mnist  # every test here reads MNIST


def pooled_pixels(start: int, n: int) -> torch.Tensor:
    """Real MNIST test images, central 20x20 avg-pooled to 5x5: 25-d float64 features [n,25] (full rank)."""
    images, _ = load_dataset("mnist", "test")
    return F.avg_pool2d(images[start: start + n, :, 4:24, 4:24].double(), 4).flatten(1)  # [n,25]


def sqrtm_frechet(mu1, sigma1, mu2, sigma2, eps=1e-6):
    """pytorch-fid's calculate_frechet_distance (scipy.linalg.sqrtm), as published."""
    diff = mu1 - mu2
    covmean, _ = scipy.linalg.sqrtm(sigma1.dot(sigma2), disp=False)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    return diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean)


@pytest.mark.parametrize("second", [(1000, 1000), (5000, 700)])
def test_fid_equals_sqrtm_formula(second):
    a, b = pooled_pixels(0, 1000), pooled_pixels(*second)
    b = b.flip(1) if second[0] == 5000 else b  # a clearly different distribution too
    mu1, s1 = np.mean(a.numpy(), axis=0), np.cov(a.numpy(), rowvar=False)
    mu2, s2 = np.mean(b.numpy(), axis=0), np.cov(b.numpy(), rowvar=False)
    expected = sqrtm_frechet(mu1, s1, mu2, s2)
    assert fid_from_features(a, b) == pytest.approx(expected, rel=1e-6)


def test_gaussian_stats_match_numpy():
    x = pooled_pixels(0, 300)
    mu, sigma = gaussian_stats(x)
    np.testing.assert_allclose(mu.numpy(), x.numpy().mean(0), rtol=1e-12)
    np.testing.assert_allclose(sigma.numpy(), np.cov(x.numpy(), rowvar=False), rtol=1e-10, atol=1e-10)


def test_fid_of_a_set_with_itself_is_zero():
    x = pooled_pixels(0, 500)
    assert abs(fid_from_features(x, x)) < 1e-6


def test_non_finite_statistics_are_a_clear_error():
    x = pooled_pixels(0, 100)
    mu, sigma = gaussian_stats(x)
    with pytest.raises(GmbenchError, match="NaN or infinite"):
        frechet_distance(mu, sigma, mu * float("nan"), sigma)
    bad = x.clone()
    bad[0, 0] = float("inf")
    with pytest.raises(GmbenchError, match="NaN or infinite"):
        gaussian_stats(bad)


@pytest.mark.parametrize("scale", [1.0, 1 / 255])  # pixel units; [0,1] units, where every eigenvalue is < 1
def test_fid_with_a_singular_covariance_equals_sqrtm_formula(scale):
    """A dead feature (always 0) makes sigma singular: no Cholesky, the eigh square-root path is used."""
    zeros = torch.zeros(1000, 1, dtype=torch.float64)
    a = torch.cat([pooled_pixels(0, 1000) * scale, zeros], 1)  # [1000,26]
    b = torch.cat([pooled_pixels(1000, 1000).flip(1) * scale, zeros], 1)
    mu1, s1 = np.mean(a.numpy(), axis=0), np.cov(a.numpy(), rowvar=False)
    mu2, s2 = np.mean(b.numpy(), axis=0), np.cov(b.numpy(), rowvar=False)
    assert torch.linalg.cholesky_ex(torch.from_numpy(s1))[1].item() != 0
    assert fid_from_features(a, b) == pytest.approx(sqrtm_frechet(mu1, s1, mu2, s2), rel=1e-6)
