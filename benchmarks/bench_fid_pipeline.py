"""Images/s from uint8 images to FID: gmbench (``extract`` + ``fid``) vs torchmetrics'
``FrechetInceptionDistance`` given the same feature module, side by side in one run.

    PYTHONPATH=. python benchmarks/bench_fid_pipeline.py [--extractor mnist-lenet] [--n 10000] [--device cpu] [--repeats 3]

N MNIST train images are scored against N test images; both pipelines see the same uint8 batches
and the same network; the script prints images/s of each, the ratio and the two FID values.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance

from gmbench.bench.timing import sync
from gmbench.data import load_dataset
from gmbench.metrics import build_extractor
from gmbench.metrics.features import extract
from gmbench.metrics.fid import fid_from_features


class FeaturesOnly(nn.Module):
    """The extractor's features alone, as torchmetrics expects of a custom ``feature`` module."""

    def __init__(self, extractor):
        super().__init__()
        self.extractor = extractor
        self.num_features = extractor.feature_dim

    def forward(self, images):
        return self.extractor(images)[0]  # [B,D]


def gmbench_fid(extractor, fake, real, batch_size: int) -> float:
    return fid_from_features(extract(extractor, fake, batch_size)[0], extract(extractor, real, batch_size)[0])


@torch.no_grad()
def torchmetrics_fid(extractor, fake, real, batch_size: int, device: torch.device) -> float:
    metric = FrechetInceptionDistance(feature=FeaturesOnly(extractor)).to(device)
    for images, is_real in ((real, True), (fake, False)):
        for start in range(0, len(images), batch_size):
            metric.update(images[start: start + batch_size].to(device), real=is_real)
    return metric.compute().item()


def timed(fn, device: torch.device) -> tuple[float, float]:
    sync(device)
    start = time.perf_counter()
    value = fn()
    sync(device)
    return time.perf_counter() - start, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extractor", default="mnist-lenet")
    parser.add_argument("--n", type=int, default=10000, help="images per side")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs of each pipeline; medians reported")
    args = parser.parse_args()
    device = torch.device(args.device)
    extractor = build_extractor(args.extractor, device=device)
    fake, real = load_dataset("mnist", "train")[0][: args.n], load_dataset("mnist", "test")[0][: args.n]
    gmbench_fid(extractor, fake[: 2 * args.batch_size], real[: 2 * args.batch_size], args.batch_size)  # warm-up
    runs_gm, runs_tm = [], []
    for _ in range(args.repeats):  # interleaved, so load from other processes hits both alike
        runs_gm.append(timed(lambda: gmbench_fid(extractor, fake, real, args.batch_size), device))
        runs_tm.append(timed(lambda: torchmetrics_fid(extractor, fake, real, args.batch_size, device), device))
    (t_gm, fid_gm), (t_tm, fid_tm) = (statistics.median_low(runs) for runs in (runs_gm, runs_tm))
    images = 2 * args.n
    print(f"{args.extractor} on {device}, N={args.n} per side, batch {args.batch_size}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, median of {args.repeats}")
    print(f"gmbench     : {images / t_gm:10.1f} images/s ({t_gm:.2f} s)  FID {fid_gm:.10g}")
    print(f"torchmetrics: {images / t_tm:10.1f} images/s ({t_tm:.2f} s)  FID {fid_tm:.10g}")
    print(f"speed ratio gmbench/torchmetrics: {t_tm / t_gm:.2f}x; relative FID difference "
          f"{abs(fid_gm - fid_tm) / abs(fid_tm):.2e}")


if __name__ == "__main__":
    main()
