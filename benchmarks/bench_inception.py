"""inception-v3-tf side by side: native module vs NVIDIA's TorchScript, fp32 vs bf16 autocast.

    GMBENCH_DATA_ROOT=../shared/datasets GMBENCH_INCEPTION_WEIGHTS=../shared/weights/fid-inception-2015-12-05.torchscript.pt \
        PYTHONPATH=. python benchmarks/bench_inception.py [--device cuda] [--batch 64] [--fid-images 500]

Prints, in one run on the same MNIST batch: images/s of each (implementation, dtype) with the
native/TorchScript ratio (both include the same preprocessing; warm-up excluded, device synchronised),
bf16's relative difference on the features, and the Fréchet distance of --fid-images train vs test
images in fp32 and bf16. fp32 stays the default; bf16 is an opt-in measured here.
"""
from __future__ import annotations

import argparse
import time
import warnings

import torch

from gmbench.bench.timing import sync
from gmbench.data import load_dataset
from gmbench.metrics.features import extract
from gmbench.metrics.fid import fid_from_features
from gmbench.metrics.inception_weights import find_weights
from gmbench.registry import EXTRACTORS

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def images_per_second(run, images: torch.Tensor, dtype: torch.dtype, repeats: int) -> float:
    """Best of ``repeats`` timed calls after one warm-up call; the device is synchronised around each."""
    device = images.device
    best = float("inf")
    for i in range(repeats + 1):
        sync(device)
        start = time.perf_counter()
        with torch.no_grad(), torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            run(images)
        sync(device)
        best = best if i == 0 else min(best, time.perf_counter() - start)
    return len(images) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=64, help="images per timed call")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtypes", default="fp32,bf16")
    parser.add_argument("--fid-images", type=int, default=500, help="train and test images per side (0: skip)")
    args = parser.parse_args()
    device, dtypes = torch.device(args.device), [DTYPES[d] for d in args.dtypes.split(",")]

    native = EXTRACTORS.get("inception-v3-tf")(device=device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation notice
        torchscript = torch.jit.load(str(find_weights()), map_location=device).eval()
    test_images = load_dataset("mnist", "test")[0]
    batch = test_images[: args.batch].to(device)  # [B,1,28,28] uint8
    print(f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else f'{torch.get_num_threads()} threads'}), "
          f"torch {torch.__version__}, batch {args.batch}, best of {args.repeats}")

    for dtype in dtypes:
        ours = images_per_second(native, batch, dtype, args.repeats)
        theirs = images_per_second(lambda x: torchscript(native.preprocess(x)), batch, dtype, args.repeats)
        print(f"{str(dtype):15s} native {ours:8.2f} img/s   torchscript {theirs:8.2f} img/s   native/torchscript {ours / theirs:.3f}")

    features = {dtype: extract(native, batch, batch_size=args.batch, dtype=dtype)[0] for dtype in dtypes}  # [B,2048] float64
    for dtype in dtypes[1:]:
        rel = (features[dtype] - features[dtypes[0]]).abs() / features[dtypes[0]].abs().max()  # [B,2048]
        print(f"{dtype} vs {dtypes[0]} features: max |diff|/max|f| {rel.max():.2e}, mean {rel.mean():.2e}")

    if args.fid_images:
        train = load_dataset("mnist", "train")[0][: args.fid_images]  # [n,1,28,28] uint8
        test = test_images[: args.fid_images]
        distances = {}
        for dtype in dtypes:
            start = time.perf_counter()
            distances[dtype] = fid_from_features(*(extract(native, x, batch_size=args.batch, dtype=dtype)[0] for x in (train, test)))
            print(f"{dtype}: Frechet distance train[:{args.fid_images}] vs test[:{args.fid_images}] = {distances[dtype]:.4f} "
                  f"({time.perf_counter() - start:.0f} s)")
        for dtype in dtypes[1:]:
            print(f"{dtype} vs {dtypes[0]} Frechet distance: relative difference "
                  f"{(distances[dtype] - distances[dtypes[0]]) / distances[dtypes[0]]:+.2e}")


if __name__ == "__main__":
    main()
