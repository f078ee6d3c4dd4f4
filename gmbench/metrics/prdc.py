"""k-NN manifold scores: precision and recall (Kynkäänniemi et al. 2019, k=3) and density and
coverage (Naeem et al. 2020, k=5).

Each real (fake) point x carries the ball of radius r_k(x) = distance to its k-th nearest other
point of the same set. precision: fraction of fakes inside some real ball; recall: fraction of
reals inside some fake ball (both with <=, as Kynkäänniemi et al.'s code). density: number of real
balls holding a fake, averaged over fakes, divided by k; coverage: fraction of reals whose nearest
fake lies inside its ball (both with <, as Naeem et al.'s code). Distances are computed in blocks
so 10k x 10k never needs the full matrix at once.
"""
from __future__ import annotations

import torch
from torch import Tensor

from gmbench.errors import GmbenchError

BLOCK = 2048


def _distances(a: Tensor, b: Tensor) -> Tensor:
    return torch.cdist(a, b)  # [n,m] float64


def kth_neighbour_radii(x: Tensor, k: int) -> Tensor:
    """Distance of each row of x [N,D] to its k-th nearest other row -> [N]."""
    if len(x) <= k:
        raise GmbenchError(f"k-NN scores with k={k} need more than {k} points per set; got {len(x)}.")
    return torch.cat([_distances(x[i: i + BLOCK], x).topk(k + 1, dim=1, largest=False).values[:, k]
                      for i in range(0, len(x), BLOCK)])  # [N] (the smallest distance is the point itself)


def precision_recall(real: Tensor, fake: Tensor, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) of fake [M,D] against real [N,D]."""
    real, fake = real.double(), fake.double()
    real_radii, fake_radii = kth_neighbour_radii(real, k), kth_neighbour_radii(fake, k)  # [N], [M]
    precise = torch.cat([(_distances(fake[i: i + BLOCK], real) <= real_radii).any(1)
                         for i in range(0, len(fake), BLOCK)])  # [M]
    recalled = torch.cat([(_distances(real[i: i + BLOCK], fake) <= fake_radii).any(1)
                          for i in range(0, len(real), BLOCK)])  # [N]
    return precise.double().mean().item(), recalled.double().mean().item()


def density_coverage(real: Tensor, fake: Tensor, k: int = 5) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020) of fake [M,D] against real [N,D]."""
    real, fake = real.double(), fake.double()
    real_radii = kth_neighbour_radii(real, k)  # [N]
    inside = torch.cat([(_distances(fake[i: i + BLOCK], real) < real_radii).sum(1)
                        for i in range(0, len(fake), BLOCK)])  # [M] real balls holding each fake
    nearest_fake = torch.cat([_distances(real[i: i + BLOCK], fake).min(1).values
                              for i in range(0, len(real), BLOCK)])  # [N]
    return inside.double().mean().item() / k, (nearest_fake < real_radii).double().mean().item()
