"""gmbench's gan-mlp against the classic tutorial loop, side by side in one process.

    PYTHONPATH=. python benchmarks/gan_vs_tutorial.py [--rounds 3] [--steps 1500] [--optimizer fused] [--compile] [--bf16] [--threads N]

Both train the same networks (G 100-256-512-784, D 784-512-256-1, no batch norm) with the same
loss and Adam(2e-4, 0.5/0.999) at batch 64 on MNIST; each round trains the tutorial loop
(``tutorial_gan_loop.py``: torchvision dataset, DataLoader, per-step loss logging) and gmbench's
``gan-mlp`` (resident uint8 data, batches drawn on the device, one host sync per block, the
``--optimizer`` / ``--compile`` speed options, and bf16 autocast with ``--bf16``: worth it only where
``gmbench.device.fast_bf16`` holds) for ``--steps`` steps each, alternating which goes
first, and prints both images/s and their ratio. Both warm up first (compilation included).
1,500 steps, not fewer: where bf16 gan-mlp trains at ~20,000 images/s, 300 steps are one second of
it, and such rounds read 2.5x to 3.7x on an idle machine against 3.0x to 3.9x for rounds of 1,500.
"""
from __future__ import annotations

import argparse

import torch

from benchmarks.tutorial_gan_loop import TutorialGAN
from gmbench.bench.speed import SpeedSettings, apply_speed
from gmbench.bench.timing import Stopwatch
from gmbench.data import DeviceBatches, load_dataset
from gmbench.registry import MODELS, ensure_loaded


class GmbenchGAN:
    """gan-mlp (no batch norm, the paper's lr) trained the way ``gmbench run`` trains it; ``train(steps)`` -> images/s."""

    def __init__(self, speed: SpeedSettings, bf16: bool = False, batch_size: int = 64, seed: int = 0):
        ensure_loaded()
        torch.manual_seed(seed)
        device = torch.device("cpu")
        cls = MODELS.get("gan-mlp")
        self.model = cls(cls.Config(bf16=bf16))
        apply_speed(self.model, speed, device)
        self.batches = DeviceBatches(load_dataset("mnist", "train")[0], batch_size, device, seed=seed)

    def train(self, steps: int) -> float:
        watch = Stopwatch("cpu").start()
        losses = [self.model.train_step(self.batches.next()) for _ in range(steps)]
        torch.stack([step["loss_d"] for step in losses]).isfinite().all().item()  # the runner's one check per block
        return steps * self.batches.batch_size / watch.stop().seconds()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--optimizer", default="fused", choices=["default", "foreach", "fused"])
    p.add_argument("--compile", action="store_true")
    p.add_argument("--bf16", action="store_true", help="gan-mlp with bf16 autocast (the tutorial stays fp32)")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's); 1 is steadier on a busy machine")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    tutorial = TutorialGAN(batch_size=64)
    ours = GmbenchGAN(SpeedSettings(optimizer=args.optimizer, compile=args.compile), bf16=args.bf16)
    tutorial.train(30)
    ours.train(30)
    print(f"threads {torch.get_num_threads()}, {args.steps} steps of batch 64 each, gan-mlp with "
          f"optimizer={args.optimizer} compile={args.compile} bf16={args.bf16}")
    ratios = []
    for r in range(args.rounds):
        order = [("tutorial", tutorial), ("gan-mlp", ours)][:: 1 if r % 2 == 0 else -1]
        speeds = {name: loop.train(args.steps) for name, loop in order}
        ratios.append(speeds["gan-mlp"] / speeds["tutorial"])
        print(f"round {r + 1}: tutorial {speeds['tutorial']:,.0f} images/s, gan-mlp {speeds['gan-mlp']:,.0f} images/s, "
              f"ratio {ratios[-1]:.2f}x", flush=True)
    print(f"median ratio {sorted(ratios)[len(ratios) // 2]:.2f}x")


if __name__ == "__main__":
    main()
