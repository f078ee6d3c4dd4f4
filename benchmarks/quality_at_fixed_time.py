"""Sample quality after a fixed wall time of training: how the quick suite's settings were chosen.

    PYTHONPATH=. python benchmarks/quality_at_fixed_time.py MODEL [--seconds 100 | --steps N] [--batch 64]
        [--set KEY=VALUE ...] [--sampling KEY=VALUE,KEY=VALUE ...] [--n 500] [--grid DIR]
        [--lr-schedule constant|cosine|linear] [--lr-warmup STEPS] [--eval-every K] [--seed 0]

Trains MODEL on MNIST train for ``--seconds`` of wall time or ``--steps`` steps (seed 0, on the CPU
unless ``--device``; ``--lr-schedule`` as the harness applies a budget's lr_schedule, which needs
``--steps``), then for each ``--sampling`` setting (the model's own when none is given) draws
``--n`` samples and prints one JSON line: steps, training images/s, and fid and class entropy
on mnist-lenet against MNIST test (a collapsed model scores a low class entropy; look at the grids
too, ``--grid DIR`` saves an 8x8 grid per setting). Settings compare fairly only within one
machine, one at a time: the budget is wall time, so a busy machine trains less. A ``--steps`` budget
trains the same on any machine (the images/s it prints is then the machine's, busy or not), and
``--eval-every K`` prints every setting's line every K steps as well: curves from one run (of two
samplers on the same weights, say, and how their ratio moves with training). A table-valued field
takes dotted keys: ``sampler_options.clipped_eps=true``.

Example, the two DDPM samplers on the same weights after 150 s:
    python benchmarks/quality_at_fixed_time.py ddpm --seconds 150 --batch 32 \\
        --set noise_sampling=logit-normal --sampling sampler=ddpm,sample_steps=50 --sampling sampler=ddim,sample_steps=20

The quick suite's flow-matching, 3,000 steps on a cosine schedule, scored every 1,000 steps:
    python benchmarks/quality_at_fixed_time.py flow-matching --steps 3000 --eval-every 1000 --n 1000 \
        --set channels=16,32 --set lr=8e-3 --set noise_sampling=mixed --set sample_steps=20 \
        --lr-schedule cosine --lr-warmup 100
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torchvision.utils import save_image

from gmbench.bench.lr_schedule import LR_SCHEDULES
from gmbench.bench.runner import scheduled_step
from gmbench.bench.suite import Budget
from gmbench.bench.timing import sync
from gmbench.config import apply_overrides
from gmbench.data import DeviceBatches, load_dataset, to_uint8
from gmbench.metrics.evaluate import evaluate
from gmbench.registry import MODELS, ensure_loaded


def key_values(items: list[str]) -> dict[str, str | dict[str, str]]:
    """["lr=1e-3", "sampler_options.clipped_eps=true"] -> {"lr": "1e-3", "sampler_options": {"clipped_eps": "true"}}."""
    out: dict = {}
    for item in items:
        key, value = item.split("=", 1)
        table, dot, name = key.partition(".")
        if dot:
            out.setdefault(table, {})[name] = value
        else:
            out[key] = value
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("--seconds", type=float, default=100.0)
    p.add_argument("--steps", type=int, help="a step budget instead of --seconds")
    p.add_argument("--lr-schedule", default="constant", choices=LR_SCHEDULES, help="needs --steps")
    p.add_argument("--lr-warmup", type=int, default=0, metavar="STEPS")
    p.add_argument("--eval-every", type=int, default=0, metavar="K", help="also score every setting every K steps (with --steps)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="model config override")
    p.add_argument("--sampling", action="append", default=[], metavar="KEY=VALUE,...", help="one sampling setting")
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--device", default="cpu")
    p.add_argument("--grid", type=Path)
    args = p.parse_args()

    ensure_loaded()
    if args.lr_schedule != "constant" and args.steps is None:
        p.error("--lr-schedule needs --steps (a schedule decays over a known number of steps)")
    device = torch.device(args.device)
    cls = MODELS.get(args.model)
    config = apply_overrides(cls.default_config(), key_values(args.set))
    torch.manual_seed(args.seed)
    model = cls(config).to(device)
    budget = Budget(steps=args.steps, batch_size=args.batch, lr_schedule=args.lr_schedule, lr_warmup=args.lr_warmup)
    batches = DeviceBatches(load_dataset("mnist", "train")[0], args.batch, device, seed=args.seed)
    steps, seconds, started = 0, 0.0, time.perf_counter()

    def report(settings: list[str]) -> None:
        model.eval()
        rng = torch.get_rng_state()
        for setting in settings:
            sampling = key_values(setting.split(",")) if setting else {}
            model.set_sampling(**sampling)
            samples = to_uint8(model.sample(args.n, generator=torch.Generator(device).manual_seed(0)))  # [n,1,28,28]
            scores = {s.metric: round(s.value, 2) for s in evaluate(samples.cpu(), reference="mnist:test", extractor="mnist-lenet",
                                                                      metrics=["fid", "class_entropy"], device=device)}
            if args.grid:
                args.grid.mkdir(parents=True, exist_ok=True)
                save_image(samples[:64].float() / 255, args.grid / f"{args.model}-{setting.replace(',', '_') or 'default'}.png", nrow=8)
            print(json.dumps({"model": args.model, "set": key_values(args.set), "sampling": sampling, "batch": args.batch,
                              "lr_schedule": args.lr_schedule, "lr_warmup": args.lr_warmup, "seed": args.seed,
                              "steps": steps, "train_images_per_s": round(steps * args.batch / seconds),
                              **scores,
                              "n": args.n, "device": str(device), "torch": torch.__version__}), flush=True)
        torch.set_rng_state(rng)
        model.train()

    while (steps < args.steps) if args.steps is not None else (time.perf_counter() - started < args.seconds):
        scheduled_step(model, batches.next(), budget, steps)  # the harness's step, lr schedule included
        steps += 1
        if args.eval_every and steps % args.eval_every == 0 and steps != args.steps:
            sync(device)
            seconds += time.perf_counter() - started
            report(args.sampling or [""])
            started = time.perf_counter()
    sync(device)
    seconds += time.perf_counter() - started
    report(args.sampling or [""])

if __name__ == "__main__":
    main()
