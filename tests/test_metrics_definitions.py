"""Hand-computed answers for the metric definitions' edges: ties on a k-NN ball, the protocol's IS splits,
and the inputs each metric refuses (no dataset needed)."""
import pytest
import torch
import torch.nn.functional as F

from gmbench.errors import GmbenchError
from gmbench.metrics.inception_score import inception_score
from gmbench.metrics import kid
from gmbench.metrics.prdc import density_coverage, kth_neighbour_radii, precision_recall


def test_a_point_on_a_ball_is_inside_for_precision_recall_and_outside_for_density_coverage():
    """Kynkäänniemi et al.'s code compares with <=, Naeem et al.'s with <. Reals 0..4 on a line have
    3rd-nearest-neighbour radii 3 2 2 2 3, so the fakes 7 and -3 lie exactly on the balls of 4 and 0."""
    real = torch.arange(5.0)[:, None]  # [5,1]
    fake = torch.tensor([[7.0], [-3.0], [50.0], [100.0]])  # [4,1]
    assert kth_neighbour_radii(real, 3).tolist() == [3.0, 2.0, 2.0, 2.0, 3.0]
    assert precision_recall(real, fake, k=3) == (0.5, 1.0)
    assert precision_recall(fake, real, k=3)[1] == 0.5  # the same two ties, counted as recall
    assert density_coverage(real, fake, k=3) == (0.0, 0.0)


def test_knn_scores_need_more_than_k_points():
    with pytest.raises(GmbenchError, match="need more than 3 points"):
        kth_neighbour_radii(torch.zeros(3, 2), 3)


def test_inception_score_uses_10_splits():
    """120 confident predictions cycling through 12 classes: each of 10 splits of 12 holds every class
    once, so IS = 12 in each (11 splits of 11 would give 11 and less)."""
    logits = 50.0 * F.one_hot(torch.arange(120) % 12, 12).double()  # [120,12]
    mean, std = inception_score(logits)
    assert mean == pytest.approx(12.0, rel=1e-12) and std == pytest.approx(0.0, abs=1e-9)


def test_inception_score_accepts_one_sample_per_split_and_refuses_bad_logits():
    assert inception_score(torch.randn(10, 4)) == pytest.approx((1.0, 0.0))  # KL of one sample to itself is 0
    for bad in (torch.randn(9, 4), torch.randn(10, 4, 1), torch.full((10, 4), float("nan"))):
        with pytest.raises(GmbenchError, match="finite logits"):
            inception_score(bad)


def test_kid_defaults_are_100_subsets_of_1000_drawn_with_seed_0(monkeypatch):
    """torch-fidelity's protocol, seen through the subsets handed to the MMD (1,100 points a side)."""
    drawn = []
    monkeypatch.setattr(kid, "mmd2_unbiased", lambda a, b: drawn.append((a, b)) or 0.0)
    x, y = torch.arange(1100.0)[:, None], -torch.arange(1100.0)[:, None]  # row i holds +-i
    assert kid.kernel_inception_distance(x, y) == (0.0, 0.0)
    assert len(drawn) == 100 and {(len(a), len(b)) for a, b in drawn} == {(1000, 1000)}
    generator = torch.Generator().manual_seed(0)
    assert drawn[0][0][:, 0].long().tolist() == torch.randperm(1100, generator=generator)[:1000].tolist()


def test_kid_needs_two_samples_a_side_and_one_subset():
    x = torch.randn(2, 3, dtype=torch.float64)
    assert kid.kernel_inception_distance(x, x + 1, subsets=1)[1] == 0.0  # the smallest valid call
    for bad in ((x[:1], x), (x, x[:1])):
        with pytest.raises(GmbenchError, match="at least 2 samples"):
            kid.kernel_inception_distance(*bad)
    with pytest.raises(GmbenchError, match=">= 1 subset"):
        kid.kernel_inception_distance(x, x, subsets=0)
