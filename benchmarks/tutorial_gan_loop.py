"""The classic tutorial MLP-GAN training loop, as a yardstick for gmbench's ``gan-mlp``.

    PYTHONPATH=. python benchmarks/tutorial_gan_loop.py [--steps 300] [--batch 64]

What the PyTorch GAN tutorials write (and train correctly): torchvision's ``MNIST`` dataset read
from ``GMBENCH_DATA_ROOT`` (``download=False``), ``ToTensor`` + ``Normalize((0.5,), (0.5,))`` to
[-1, 1], a shuffling ``DataLoader`` of batch 64, G 100 -> 256 -> 512 -> 784 (LeakyReLU 0.2,
tanh), D 784 -> 512 -> 256 -> 1 (LeakyReLU 0.2, sigmoid), ``BCELoss``, Adam(2e-4, betas
0.5/0.999) on each network, one D step on real and detached fake, one non-saturating G step
(fakes labelled real). The layer sizes and optimiser are gan-mlp's without batch norm; the loss
is the same function (BCE on a sigmoid equals softplus on logits). Prints images/s.
"""
from __future__ import annotations

import argparse
import gzip
import shutil
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from gmbench.data import data_root

EXTRACTED = Path.home() / ".cache" / "gmbench" / "tutorial-datasets"


def mnist_root() -> Path:
    """A root where torchvision's ``MNIST(download=False)`` finds the files: ``GMBENCH_DATA_ROOT`` itself
    when it holds the extracted IDX files, else a copy under ``EXTRACTED`` with the ``.gz`` files there
    unpacked, as torchvision's own download step would leave them (the shared data root is read-only)."""
    root = data_root()
    names = [f"{split}-{kind}-ubyte" for split in ("train", "t10k") for kind in ("images-idx3", "labels-idx1")]
    if all((root / "MNIST" / "raw" / n).is_file() for n in names):
        return root
    raw = EXTRACTED / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for n in names:
        if not (raw / n).is_file():
            with gzip.open(root / "MNIST" / "raw" / f"{n}.gz") as src, open(raw / f"{n}.tmp", "wb") as dst:
                shutil.copyfileobj(src, dst)
            (raw / f"{n}.tmp").rename(raw / n)
    return EXTRACTED


def generator(z_dim: int = 100) -> nn.Module:
    return nn.Sequential(nn.Linear(z_dim, 256), nn.LeakyReLU(0.2), nn.Linear(256, 512), nn.LeakyReLU(0.2),
                         nn.Linear(512, 784), nn.Tanh())


def discriminator() -> nn.Module:
    return nn.Sequential(nn.Linear(784, 512), nn.LeakyReLU(0.2), nn.Linear(512, 256), nn.LeakyReLU(0.2),
                         nn.Linear(256, 1), nn.Sigmoid())


class TutorialGAN:
    """The tutorial's networks, optimisers and data loader; ``train(steps)`` returns images/s."""

    def __init__(self, batch_size: int = 64, z_dim: int = 100, seed: int = 0):
        torch.manual_seed(seed)
        transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
        dataset = datasets.MNIST(str(mnist_root()), train=True, download=False, transform=transform)
        self.loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True)
        self.batches = iter(self.loader)
        self.z_dim = z_dim
        self.G, self.D = generator(z_dim), discriminator()
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.criterion = nn.BCELoss()

    def _next_batch(self) -> torch.Tensor:
        try:
            images, _ = next(self.batches)
        except StopIteration:
            self.batches = iter(self.loader)
            images, _ = next(self.batches)
        return images.view(images.size(0), -1)  # [B,784] in [-1,1]

    def step(self) -> tuple[float, float]:
        real = self._next_batch()  # [B,784]
        b = real.size(0)
        ones, zeros = torch.ones(b, 1), torch.zeros(b, 1)
        fake = self.G(torch.randn(b, self.z_dim))  # [B,784]
        loss_d = self.criterion(self.D(real), ones) + self.criterion(self.D(fake.detach()), zeros)
        self.opt_d.zero_grad()
        loss_d.backward()
        self.opt_d.step()
        loss_g = self.criterion(self.D(fake), ones)
        self.opt_g.zero_grad()
        loss_g.backward()
        self.opt_g.step()
        return loss_d.item(), loss_g.item()  # the tutorial logs its losses every step

    def train(self, steps: int) -> float:
        """Run ``steps`` steps; images per second of the whole loop (data loading included)."""
        started = time.perf_counter()
        for _ in range(steps):
            self.step()
        return steps * self.loader.batch_size / (time.perf_counter() - started)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch", type=int, default=64)
    args = p.parse_args()
    gan = TutorialGAN(args.batch)
    gan.train(20)  # warm-up
    print(f"tutorial loop: {gan.train(args.steps):,.0f} images/s")


if __name__ == "__main__":
    main()
