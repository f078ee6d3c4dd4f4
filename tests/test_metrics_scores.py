"""KID, precision/recall, density/coverage against brute-force loops over their definitions; IS
against torchmetrics' InceptionScore on the same logits and splits."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchmetrics.image.inception import InceptionScore

from gmbench.data import load_dataset
from gmbench.metrics.classifier_scores import class_entropy
from gmbench.metrics.inception_score import inception_score
from gmbench.metrics.kid import kernel_inception_distance
from gmbench.metrics.prdc import density_coverage, precision_recall
from tests.conftest import requires_mnist

pytestmark = requires_mnist  # every test here reads MNIST


def pooled_pixels(start: int, n: int) -> torch.Tensor:
    """Real MNIST test images, central 20x20 avg-pooled to 5x5: 25-d float64 features [n,25]."""
    images, _ = load_dataset("mnist", "test")
    return F.avg_pool2d(images[start: start + n, :, 4:24, 4:24].double(), 4).flatten(1) / 255.0


@pytest.fixture(scope="module")
def real_fake():
    real = pooled_pixels(0, 50)
    fake = pooled_pixels(100, 40) * 1.25  # brighter digits: a shifted but overlapping distribution
    return real, fake


def brute_mmd2(x, y):
    """Unbiased MMD^2 with k(a,b) = (a.b/d + 1)^3, written out as loops."""
    m, d = len(x), len(x[0])
    k = lambda a, b: (sum(a[i] * b[i] for i in range(d)) / d + 1) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


@pytest.mark.parametrize("swap, subset_size", [(False, 30), (False, 1000), (True, 1000)])
def test_kid_equals_brute_force_over_the_same_subsets(real_fake, swap, subset_size):
    """Subsets of 30, or of the smaller side's 40 points when 1000 is more than either side holds."""
    first, second = real_fake if swap else real_fake[::-1]  # 50 real and 40 fake points
    mean, std = kernel_inception_distance(first, second, subsets=4, subset_size=subset_size, seed=7)
    generator = torch.Generator().manual_seed(7)  # the documented draw: randperm of each side per subset
    m = min(subset_size, 40)
    values = []
    for _ in range(4):
        ix = torch.randperm(len(first), generator=generator)[:m].tolist()
        iy = torch.randperm(len(second), generator=generator)[:m].tolist()
        values.append(brute_mmd2([first[i].tolist() for i in ix], [second[i].tolist() for i in iy]))
    assert mean == pytest.approx(np.mean(values), rel=1e-9)
    assert std == pytest.approx(np.std(values), rel=1e-9)


def test_kid_on_whole_equal_sized_sets_is_the_plain_unbiased_mmd(real_fake):
    real, fake = real_fake[0][:40], real_fake[1]
    mean, std = kernel_inception_distance(fake, real, subsets=3, subset_size=1000)
    assert mean == pytest.approx(brute_mmd2(fake.tolist(), real.tolist()), rel=1e-9)
    assert std == pytest.approx(0.0, abs=1e-12)


def kth_radius(points, i, k):
    return sorted(math.dist(points[i], points[j]) for j in range(len(points)) if j != i)[k - 1]


def test_precision_recall_equal_brute_force(real_fake):
    real, fake = (t.tolist() for t in real_fake)
    r_real = [kth_radius(real, i, 3) for i in range(len(real))]
    r_fake = [kth_radius(fake, j, 3) for j in range(len(fake))]
    precision = sum(any(math.dist(f, real[i]) <= r_real[i] for i in range(len(real))) for f in fake) / len(fake)
    recall = sum(any(math.dist(r, fake[j]) <= r_fake[j] for j in range(len(fake))) for r in real) / len(real)
    assert 0 < precision < 1 and 0 < recall < 1
    assert precision_recall(*real_fake) == pytest.approx((precision, recall), abs=1e-12)  # the protocol's k=3


def test_density_coverage_equal_brute_force(real_fake):
    real, fake = (t.tolist() for t in real_fake)
    k = 5
    r_real = [kth_radius(real, i, k) for i in range(len(real))]
    density = sum(sum(math.dist(f, real[i]) < r_real[i] for i in range(len(real))) for f in fake) / (k * len(fake))
    coverage = sum(min(math.dist(real[i], f) for f in fake) < r_real[i] for i in range(len(real))) / len(real)
    assert 0 < coverage < 1
    assert density_coverage(*real_fake) == pytest.approx((density, coverage), abs=1e-12)  # the protocol's k=5


@pytest.mark.parametrize("n", [1000, 1005])
def test_inception_score_equals_torchmetrics(n):
    features = torch.cat([pooled_pixels(0, 1000), pooled_pixels(1000, 5)])[:n]  # [n,25]
    projection = torch.randn(25, 10, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    logits = 4.0 * features @ projection  # [n,10] logits computed from real data
    torch.manual_seed(123)
    perm = torch.randperm(n)  # the shuffle torchmetrics draws in compute(); feed the inverse so it cancels
    metric = InceptionScore(feature=torch.nn.Identity(), splits=10)
    metric.update(logits[perm.argsort()])
    torch.manual_seed(123)
    expected_mean, expected_std = metric.compute()
    mean, std = inception_score(logits, splits=10)
    assert mean == pytest.approx(expected_mean.item(), rel=1e-9)
    assert std == pytest.approx(expected_std.item(), rel=1e-9)


def test_class_entropy_is_log10_for_balanced_and_0_for_one_class():
    balanced = F.one_hot(torch.arange(1000) % 10, 10).double()  # [1000,10]
    assert class_entropy(balanced) == pytest.approx(math.log(10), rel=1e-12)
    assert class_entropy(F.one_hot(torch.zeros(50, dtype=torch.long), 10).double()) == 0.0
    half = F.one_hot(torch.arange(100) % 2, 10).double()
    assert class_entropy(half) == pytest.approx(math.log(2), rel=1e-12)
