"""Train one model on MNIST for a short budget, report its speed and save an 8x8 grid of samples.

    GMBENCH_DATA_ROOT=../shared/datasets PYTHONPATH=. python benchmarks/train_preview.py ddpm \
        --seconds 120 --batch-size 128 --set bf16=true --set sample_steps=50 --fid 2000

Prints parameters (trainable), training images/s (steps after ``--warmup`` steps, timed with one
device sync at the end), sampling images/s at batch 256 (one timed call after a warm-up call) and
NFE; with ``--fid N``, a provisional FID of N samples (benchmarks/proxy_fid.py, not the
benchmark's metric). Used to choose the quick suite's budgets; figures on a shared machine are noisy.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torchvision.utils import save_image

from gmbench.config import apply_overrides, parse_set_options
from gmbench.data import DeviceBatches, load_dataset, to_float, to_uint8
from gmbench.registry import MODELS


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--warmup", type=int, default=10, help="steps excluded from the training throughput")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fid", type=int, default=0, metavar="N", help="provisional FID of N samples")
    p.add_argument("--out", type=Path, default=None, help="grid PNG (default previews/<model>.png)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    cls = MODELS.get(args.model)
    overrides = parse_set_options([f"model.{s}" for s in args.set]).get("model", {})
    config = apply_overrides(cls.Config(), overrides, where=args.model)
    torch.manual_seed(args.seed)
    model = cls(config).to(device)
    images, _ = load_dataset("mnist", "train")
    model.fit_data(to_float(images.to(device)))
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f"{args.model}: {params:,} trainable parameters; config {config}")

    if cls.trainable:
        batches = DeviceBatches(images, args.batch_size, device, seed=args.seed)
        step, start, timed_from, timed_steps = 0, time.perf_counter(), None, 0
        while (args.steps is None or step < args.steps) and time.perf_counter() - start < args.seconds:
            losses = model.train_step(batches.next())
            step += 1
            if step == args.warmup:
                sync(device)
                timed_from = time.perf_counter()
            elif step > args.warmup:
                timed_steps += 1
            if step % 200 == 0:
                print(f"  step {step:5d}  {time.perf_counter() - start:6.1f}s  " + "  ".join(f"{k}={v.item():.4f}" for k, v in losses.items()))
        sync(device)
        elapsed = time.perf_counter() - start
        rate = timed_steps * args.batch_size / (time.perf_counter() - timed_from) if timed_steps else float("nan")
        print(f"trained {step} steps ({step * args.batch_size / len(images):.2f} epochs) in {elapsed:.1f}s; "
              f"training {rate:,.0f} images/s (batch {args.batch_size}, after {args.warmup} warm-up steps)")

    gen = torch.Generator(device=device).manual_seed(args.seed)
    model.sample(8, generator=gen)  # warm-up
    sync(device)
    t0 = time.perf_counter()
    x = model.sample(256, generator=gen)
    sync(device)
    print(f"sampling {256 / (time.perf_counter() - t0):,.1f} images/s at batch 256, nfe {model.nfe}")

    out = args.out or Path("previews") / f"{args.model}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    save_image((x[:64].float().cpu() + 1) / 2, out, nrow=8)
    print(f"grid: {out}")
    if args.fid:
        from proxy_fid import proxy_fid

        samples = torch.cat([to_uint8(model.sample(256, generator=gen)) for _ in range((args.fid + 255) // 256)])[: args.fid]
        print(f"proxy FID ({args.fid} samples vs MNIST test, provisional CNN): {proxy_fid(samples):.2f}")


if __name__ == "__main__":
    main()
