"""mnist-lenet's inference body (batch norm folded, ReLU after pooling, channels_last) against the
trained network as is, interleaved in one process: uint8 -> features and uint8 -> FID.

    PYTHONPATH=. python benchmarks/lenet_inference.py [--n 10000] [--rounds 3] [--threads N] [--device cpu]

Each round extracts the features of ``--n`` MNIST train images with both networks (batch 500, as
``evaluate`` does), and the folded one also scores FID end to end: the features of ``--n`` train
and ``--n`` test images and the Frechet distance between them (no stats cache). Prints images/s and
the largest feature difference between the two networks.
"""
from __future__ import annotations

import argparse
import statistics

import torch

from gmbench.bench.timing import Stopwatch
from gmbench.data import load_dataset
from gmbench.metrics.features import extract
from gmbench.metrics.fid import fid_from_features
from gmbench.metrics.lenet import SHIPPED_WEIGHTS, MnistLeNet, build_mnist_lenet, load_verified_state_dict


def unfolded(device: torch.device) -> MnistLeNet:
    state_dict, sha = load_verified_state_dict(SHIPPED_WEIGHTS)
    extractor = MnistLeNet(sha)
    extractor.net.load_state_dict(state_dict)
    return extractor.to(device)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    train, test = load_dataset("mnist", "train")[0][: args.n], load_dataset("mnist", "test")[0][: args.n]
    nets = {"as trained": unfolded(device), "folded": build_mnist_lenet(device)}
    features = {name: extract(net, train)[0] for name, net in nets.items()}  # warm-up, [n,128] each
    print(f"threads {torch.get_num_threads()}, {args.n} images; largest feature difference "
          f"{(features['folded'] - features['as trained']).abs().max().item():.2e}")
    speeds: dict[str, list[float]] = {"as trained": [], "folded": [], "folded, uint8 -> fid": []}
    for r in range(args.rounds):
        for name, net in list(nets.items())[:: 1 if r % 2 == 0 else -1]:
            watch = Stopwatch(device).start()
            extract(net, train)
            speeds[name].append(args.n / watch.stop().seconds())
        watch = Stopwatch(device).start()
        fid = fid_from_features(extract(nets["folded"], train)[0], extract(nets["folded"], test)[0])
        speeds["folded, uint8 -> fid"].append(2 * args.n / watch.stop().seconds())
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:,.0f} images/s" for k, v in speeds.items())
              + f" (fid {fid:.2f})", flush=True)
    print("median: " + ", ".join(f"{k} {statistics.median(v):,.0f} images/s" for k, v in speeds.items()))


if __name__ == "__main__":
    main()
