"""Fréchet step at d=2048: gmbench's symmetric eigen form vs pytorch-fid's scipy.linalg.sqrtm, side by side.

    PYTHONPATH=. python benchmarks/bench_frechet.py [--dim 2048] [--repeats 3]

Both get the same float64 statistics (covariances of correlated random features, as Inception pool3
features are); the script prints each median time, the speed ratio and the relative difference of
the two distances (the same trace, so they must agree).
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import scipy.linalg
import torch

from gmbench.metrics.fid import frechet_distance


def sqrtm_frechet(mu1, sigma1, mu2, sigma2) -> float:
    """pytorch-fid's calculate_frechet_distance without its eps retry."""
    diff = mu1 - mu2
    covmean = scipy.linalg.sqrtm(sigma1.dot(sigma2)).real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def random_stats(dim: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    mixing = rng.standard_normal((dim, dim)) / np.sqrt(dim)
    features = np.maximum(rng.standard_normal((n, dim)) @ mixing, 0)  # ReLU features, correlated [n,dim]
    return features.mean(0), np.cov(features, rowvar=False)


def median_time(fn, repeats: int) -> tuple[float, float]:
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--n", type=int, default=4096, help="feature vectors behind each covariance")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    mu1, s1 = random_stats(args.dim, args.n, 0)
    mu2, s2 = random_stats(args.dim, args.n, 1)
    t1 = [torch.from_numpy(a) for a in (mu1, s1, mu2, s2)]
    eig_time, eig_value = median_time(lambda: frechet_distance(*t1), args.repeats)
    sqrtm_time, sqrtm_value = median_time(lambda: sqrtm_frechet(mu1, s1, mu2, s2), args.repeats)
    print(f"d={args.dim}, torch {torch.__version__}, {torch.get_num_threads()} threads, median of {args.repeats}")
    print(f"gmbench eigen form : {eig_time:8.3f} s   distance {eig_value:.10g}")
    print(f"scipy sqrtm        : {sqrtm_time:8.3f} s   distance {sqrtm_value:.10g}")
    print(f"speed ratio sqrtm/gmbench: {sqrtm_time / eig_time:.2f}x; relative difference "
          f"{abs(eig_value - sqrtm_value) / abs(sqrtm_value):.2e}")


if __name__ == "__main__":
    main()
