"""Kernel Inception Distance (Bińkowski et al. 2018): unbiased MMD^2 with the cubic polynomial kernel.

k(x, y) = (x·y / d + 1)^3, averaged over ``subsets`` random subsets of ``subset_size`` points drawn
without replacement from each side (as torch-fidelity and the authors' code); mean and std
(population std, ddof=0, as both) over the subsets.
"""
from __future__ import annotations

import torch
from torch import Tensor

from gmbench.errors import GmbenchError


def polynomial_kernel(x: Tensor, y: Tensor) -> Tensor:
    """(x y^T / d + 1)^3 for x [n,D], y [m,D] -> [n,m]."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: Tensor, y: Tensor) -> float:
    """Unbiased MMD^2 estimate between samples x [m,D] and y [m,D] under the polynomial kernel."""
    m = len(x)
    k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)  # [m,m] each
    off_diagonal = (k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))
    return (off_diagonal - 2.0 * k_xy.sum() / (m * m)).item()


def kernel_inception_distance(features1: Tensor, features2: Tensor, subsets: int = 100, subset_size: int = 1000,
                              seed: int = 0) -> tuple[float, float]:
    """KID mean and std between features [N1,D] and [N2,D]; subsets shrink to the smaller set when needed."""
    x, y = features1.double(), features2.double()
    m = min(subset_size, len(x), len(y))
    if m < 2 or subsets < 1:
        raise GmbenchError(f"KID needs at least 2 samples on each side and >= 1 subset; got {len(x)} and {len(y)} "
                           f"samples, {subsets} subsets.")
    generator = torch.Generator().manual_seed(seed)
    values = torch.tensor([
        mmd2_unbiased(x[torch.randperm(len(x), generator=generator)[:m].to(x.device)],
                      y[torch.randperm(len(y), generator=generator)[:m].to(y.device)])
        for _ in range(subsets)
    ], dtype=torch.float64)  # [subsets]
    return values.mean().item(), values.std(unbiased=False).item()
