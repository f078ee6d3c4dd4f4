"""Inception-track Fréchet distance of the first N MNIST train images against the first N test images.

    GMBENCH_DATA_ROOT=../shared/datasets GMBENCH_INCEPTION_WEIGHTS=../shared/weights/fid-inception-2015-12-05.torchscript.pt \
        PYTHONPATH=. python benchmarks/fid_inception_mnist.py --n 2000

Prints the distance, the extraction throughput and the settings. Train and test images are
extracted in alternating chunks; ``--save DIR`` rewrites DIR/{train,test}.npy (float64 features)
after each chunk, and ``--from-saved DIR`` computes the distance from the first N rows saved there
(so an interrupted run still yields the distance for the images it finished).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from gmbench.data import load_dataset
from gmbench.metrics.features import extract
from gmbench.metrics.fid import fid_from_features
from gmbench.registry import EXTRACTORS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--resize", default="tf1", choices=["tf1", "torch"])
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--chunk", type=int, default=250, help="images per split between saves")
    parser.add_argument("--save", type=Path, help="folder for train.npy / test.npy features, rewritten after each chunk")
    parser.add_argument("--from-saved", type=Path, help="no extraction: use the first --n rows saved in this folder")
    args = parser.parse_args()

    if args.from_saved:
        features = {split: torch.from_numpy(np.load(args.from_saved / f"{split}.npy")[: args.n]) for split in ("train", "test")}
        n = min(len(f) for f in features.values())
        print(f"{args.dataset} train[:{n}] vs test[:{n}], features from {args.from_saved}")
    else:
        n = args.n
        features = extract_both_splits(args)
    print(f"Frechet distance {fid_from_features(features['train'][:n], features['test'][:n]):.4f}")


def extract_both_splits(args) -> dict[str, torch.Tensor]:
    """Features float64 [n,2048] of train[:n] and test[:n], chunk by chunk, saved after each chunk."""
    extractor = EXTRACTORS.get("inception-v3-tf")(device=args.device, resize=args.resize)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[args.dtype]
    images = {split: load_dataset(args.dataset, split)[0][: args.n] for split in ("train", "test")}  # [n,1,28,28] uint8
    chunks: dict[str, list[torch.Tensor]] = {"train": [], "test": []}
    print(f"{args.dataset} train[:{args.n}] vs test[:{args.n}], inception-v3-tf ({args.resize} resize, {args.dtype}, "
          f"{args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads)")
    print(f"weights sha256 {extractor.weights_sha256}")
    start = time.perf_counter()
    for begin in range(0, args.n, args.chunk):
        for split, x in images.items():
            chunks[split].append(extract(extractor, x[begin: begin + args.chunk], batch_size=args.batch_size, dtype=dtype)[0])
        done, seconds = min(begin + args.chunk, args.n), time.perf_counter() - start
        print(f"  {done} per split: {2 * done / seconds:.2f} images/s", flush=True)
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            for split, parts in chunks.items():
                np.save(args.save / f"{split}.npy", torch.cat(parts).numpy())
    print(f"extraction {2 * args.n} images in {seconds:.1f} s = {2 * args.n / seconds:.2f} images/s (batch {args.batch_size})")
    return {split: torch.cat(parts) for split, parts in chunks.items()}


if __name__ == "__main__":
    main()
