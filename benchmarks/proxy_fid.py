"""A provisional FID for picking training budgets before gmbench's own mnist-lenet extractor exists.

NOT the benchmark's metric: a small CNN (two convs, 128-d penultimate layer) trained here for one
epoch on MNIST train (seed 0, cached in the temp folder), Fréchet distance on its penultimate
features between generated images and the MNIST test set, in float64 via the symmetric eigen
form. Use it only to compare models with each other on this machine.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gmbench.data import load_dataset, to_float

CACHE = Path(tempfile.gettempdir()) / "gmbench_proxy_lenet_v1.pt"


class ProxyLeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 28 -> 14
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 14 -> 7
            nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(),
        )
        self.head = nn.Linear(128, 10)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def proxy_lenet() -> ProxyLeNet:
    net = ProxyLeNet()
    if CACHE.exists():
        net.load_state_dict(torch.load(CACHE, weights_only=True))
        return net.eval()
    torch.manual_seed(0)
    images, labels = load_dataset("mnist", "train")
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    order = torch.randperm(len(images))
    for start in range(0, len(images), 128):
        idx = order[start:start + 128]
        loss = F.cross_entropy(net(to_float(images[idx])), labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    tmp = CACHE.with_suffix(f".{os.getpid()}.tmp")
    torch.save(net.state_dict(), tmp)
    tmp.replace(CACHE)
    return net.eval()


@torch.no_grad()
def features(net: ProxyLeNet, images_uint8: Tensor) -> Tensor:
    return torch.cat([net.features(to_float(b)) for b in images_uint8.split(500)]).double()  # [N,128]


def frechet_distance(f1: Tensor, f2: Tensor) -> float:
    """||mu1-mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1^1/2 S2 S1^1/2)^1/2), float64."""
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = torch.cov(f1.T), torch.cov(f2.T)
    evals, evecs = torch.linalg.eigh(s1)
    root1 = evecs @ torch.diag(evals.clamp_min(0).sqrt()) @ evecs.T
    cross = torch.linalg.eigvalsh(root1 @ s2 @ root1).clamp_min(0).sqrt().sum()
    return float((mu1 - mu2).pow(2).sum() + s1.trace() + s2.trace() - 2 * cross)


def proxy_fid(samples_uint8: Tensor) -> float:
    net = proxy_lenet()
    test, _ = load_dataset("mnist", "test")
    return frechet_distance(features(net, samples_uint8.cpu()), features(net, test))
