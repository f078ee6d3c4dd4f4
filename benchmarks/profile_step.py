"""torch.profiler table of a model's training steps (or sampling calls): where the time goes.

    PYTHONPATH=. python benchmarks/profile_step.py MODEL [--batch 64] [--set KEY=VALUE ...]
        [--optimizer fused] [--compile] [--sample] [--steps 50] [--threads N] [--rows 20]

Warms up (compilation included), then profiles ``--steps`` training steps on random images (or
``--steps`` sampling calls of ``--batch`` images with ``--sample``) and prints ``key_averages()``
sorted by self CPU time (CUDA time on a GPU), plus images/s of the profiled stretch.
"""
from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from gmbench.bench.speed import SpeedSettings, apply_speed
from gmbench.bench.timing import sync
from gmbench.config import apply_overrides
from gmbench.data import DeviceBatches
from gmbench.registry import MODELS, ensure_loaded


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="model config override")
    p.add_argument("--optimizer", default="default", choices=["default", "foreach", "fused"])
    p.add_argument("--compile", action="store_true")
    p.add_argument("--sample", action="store_true", help="profile sampling instead of training")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--threads", type=int)
    p.add_argument("--rows", type=int, default=20)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    ensure_loaded()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cls = MODELS.get(args.model)
    torch.manual_seed(0)
    model = cls(apply_overrides(cls.default_config(), dict(kv.split("=", 1) for kv in args.set))).to(device)
    apply_speed(model, SpeedSettings(optimizer=args.optimizer, compile=args.compile), device)
    pool = torch.randint(0, 256, (max(4 * args.batch, 256), *model.image_shape), dtype=torch.uint8)  # [N,C,H,W]
    batches = DeviceBatches(pool, args.batch, device, seed=0)
    if args.sample:
        model.eval()
        step = lambda: model.sample(args.batch)  # noqa: E731
    else:
        step = lambda: model.train_step(batches.next())  # noqa: E731
    for _ in range(5):
        step()
    sync(device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    started = time.perf_counter()
    with profile(activities=activities) as prof:
        for _ in range(args.steps):
            step()
        sync(device)
    seconds = time.perf_counter() - started
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=sort, row_limit=args.rows))
    print(f"{args.model} {'sampling' if args.sample else 'training'}, batch {args.batch}, threads "
          f"{torch.get_num_threads()}: {args.steps * args.batch / seconds:,.1f} images/s under the profiler")


if __name__ == "__main__":
    main()
