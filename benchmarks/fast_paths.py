"""Each speed option against the plain path, interleaved, on a model's training step and its sampler.

    PYTHONPATH=. python benchmarks/fast_paths.py [--device cpu|cuda] [--models dcgan,ddpm] [--batch 64,256]
        [--options foreach,fused,compile,channels_last,bf16,cuda_graphs] [--rounds 3] [--steps 20]
        [--sample-steps 10] [--set KEY=VALUE ...] [--threads N] [--quick]

For every model and batch size it builds one model per option (same seed, same config apart from the
option), warms each up (compilation happens there and is printed as ``compile s``), then times
``--steps`` training steps and one sampling call of ``batch`` images per option in each of
``--rounds`` rounds, the options in turn (their order reversed every other round), with
``gmbench.bench.timing.Stopwatch`` (CUDA events on a GPU). Data are random images resident on the
device, so no dataset is needed. It prints images/s (median over rounds), the speedup over plain
(median of the per-round ratios) and MFU: images/s x FLOPs per image (gmbench.bench.flops, counted on
the plain model) over the device's matmul peak in the option's dtype, measured at the start. Options a model has no use for (channels_last exists for
the U-Net models only, bf16 for every trained built-in) are skipped; ``cuda_graphs`` runs by default on CUDA
only, ``bf16`` where the device computes in bf16 natively (``gmbench.device.fast_bf16``: CUDA, or a CPU with
AVX512-BF16 or AMX; elsewhere it is several times slower than fp32). ``--quick``: tiny configs, batch 8, 2 steps, 2
rounds, no compile unless ``--options`` asks for it: a check that every path runs, in seconds.
"""
from __future__ import annotations

import argparse
import statistics

import torch

from gmbench.bench.flops import measured_peak, mfu, sample_flops_per_image, train_flops_per_image
from gmbench.bench.runner import model_dtype
from gmbench.bench.speed import SpeedSettings, apply_speed
from gmbench.bench.timing import Stopwatch, sync
from gmbench.config import apply_overrides
from gmbench.data import DeviceBatches
from gmbench.device import fast_bf16
from gmbench.models.base import GenerativeModel
from gmbench.registry import MODELS, ensure_loaded

SPEED = {"foreach": SpeedSettings(optimizer="foreach"), "fused": SpeedSettings(optimizer="fused"),
         "compile": SpeedSettings(compile=True), "cuda_graphs": SpeedSettings(cuda_graphs=True)}
CONFIG = {"channels_last": {"channels_last": True}, "bf16": {"bf16": True}}  # model config fields


def default_options(device: torch.device, quick: bool) -> list[str]:
    options = ["foreach", "fused"] + ([] if quick else ["compile"]) + ["channels_last"]
    return options + (["bf16"] if fast_bf16(device) else []) + (["cuda_graphs"] if device.type == "cuda" else [])


class TimedModel:
    """One model built with one option, with its batches and timers."""

    def __init__(self, name: str, option: str, batch: int, device: torch.device, quick: bool, sample_steps: int | None,
                 overrides: dict[str, str]):
        cls = MODELS.get(name)
        config = apply_overrides(cls.tiny_config() if quick else cls.default_config(), overrides, where=name)
        config = apply_overrides(config, CONFIG.get(option, {}), where=f"{name} {option}")
        torch.manual_seed(0)
        self.model: GenerativeModel = cls(config).to(device)
        apply_speed(self.model, SPEED.get(option, SpeedSettings()), device)
        if sample_steps and "sample_steps" in getattr(cls.Config, "sampling_fields", ()):
            self.model.set_sampling(sample_steps=sample_steps)
        pool = torch.randint(0, 256, (max(4 * batch, 256), *self.model.image_shape), dtype=torch.uint8)  # [N,C,H,W]
        self.batches = DeviceBatches(pool, batch, device, seed=0)
        self.device, self.batch = device, batch
        self.generator = torch.Generator(device=device).manual_seed(0)

    def train(self, steps: int) -> float:
        """images/s over ``steps`` training steps."""
        self.model.train()
        watch = Stopwatch(self.device).start()
        for _ in range(steps):
            self.model.train_step(self.batches.next())
        return self.batch * steps / watch.stop().seconds()

    def sample(self) -> float:
        """images/s of one sampling call of ``batch`` images."""
        self.model.eval()
        watch = Stopwatch(self.device).start()
        self.model.sample(self.batch, generator=self.generator)
        return self.batch / watch.stop().seconds()

    def warm_up(self, steps: int) -> float:
        """Seconds of the first training steps and sampling calls (compilation included)."""
        watch = Stopwatch(self.device).start()
        for _ in range(2):
            self.train(steps)
            self.sample()
        sync(self.device)
        return watch.stop().seconds()


def applies(name: str, option: str, device: torch.device) -> bool:
    cls = MODELS.get(name)
    if option in CONFIG:
        return option in cls.config_fields()
    if option in ("compile", "cuda_graphs") and cls.compile_unsupported:
        return False
    return option != "cuda_graphs" or device.type == "cuda"


def measure(name: str, batch: int, options: list[str], args, device: torch.device, peaks: dict[str, float]) -> list[dict]:
    """One row per (phase, option): images/s, speedup over plain, MFU (%) against ``peaks`` (FLOP/s per dtype,
    completed here), warm-up seconds."""
    overrides = dict(kv.split("=", 1) for kv in args.set)
    paths = {o: TimedModel(name, o, batch, device, args.quick, args.sample_steps, overrides)
             for o in ["plain"] + [o for o in options if applies(name, o, device)]}
    plain = paths["plain"]
    work = {"train": train_flops_per_image(plain.model, plain.batches.next()),  # per image, on a copy
            "sample": sample_flops_per_image(plain.model)}
    warm = {o: p.warm_up(args.steps) for o, p in paths.items()}
    speeds = {(phase, o): [] for phase in ("train", "sample") for o in paths}
    for r in range(args.rounds):
        for o in list(paths)[:: 1 if r % 2 == 0 else -1]:
            speeds["train", o].append(paths[o].train(args.steps))
            speeds["sample", o].append(paths[o].sample())
    rows = []
    for (phase, o), values in speeds.items():
        ratios = [v / p for v, p in zip(values, speeds[phase, "plain"])]
        dtype = model_dtype(paths[o].model.config, device)
        if dtype not in peaks:
            peaks[dtype] = measured_peak(device, dtype)
        rows.append({"model": name, "phase": phase, "batch": batch, "option": o,
                     "images/s": statistics.median(values), "speedup": statistics.median(ratios),
                     "MFU %": mfu(statistics.median(values), work[phase], peaks[dtype]), "warm-up s": warm[o]})
    return rows


def print_table(rows: list[dict]) -> None:
    formats = {"images/s": "{:,.1f}", "speedup": "{:.2f}x", "MFU %": "{:.1f}", "warm-up s": "{:.1f}"}
    cells = [[formats.get(k, "{}").format(v) for k, v in row.items()] for row in rows]
    header = list(rows[0])
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
    print("  ".join(h.rjust(w) for h, w in zip(header, widths)))
    for c in cells:
        print("  ".join(v.rjust(w) for v, w in zip(c, widths)), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--models", default="dcgan,ddpm")
    p.add_argument("--batch", default=None, help="comma-separated batch sizes (default 64; 8 with --quick)")
    p.add_argument("--options", default=None, help=f"comma-separated, from {', '.join([*SPEED, *CONFIG])}")
    p.add_argument("--rounds", type=int, default=None)
    p.add_argument("--steps", type=int, default=None, help="training steps per timed block")
    p.add_argument("--sample-steps", type=int, default=None, help="sampler steps of the diffusion models")
    p.add_argument("--threads", type=int, help="torch intra-op threads (CPU)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="model config override for every path, e.g. width=32 (the quick suite's dcgan)")
    p.add_argument("--quick", action="store_true", help="tiny configs and sizes: check every path runs")
    args = p.parse_args()
    ensure_loaded()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    options = args.options.split(",") if args.options else default_options(device, args.quick)
    unknown = set(options) - set(SPEED) - set(CONFIG)
    if unknown:
        p.error(f"unknown options {', '.join(sorted(unknown))}; known: {', '.join([*SPEED, *CONFIG])}")
    batches = [int(b) for b in (args.batch or ("8" if args.quick else "64")).split(",")]
    args.rounds = args.rounds or (2 if args.quick else 3)
    args.steps = args.steps or (2 if args.quick else 20)
    args.sample_steps = args.sample_steps or (2 if args.quick else None)
    print(f"device {device}, threads {torch.get_num_threads()}, {args.rounds} rounds of {args.steps} training steps "
          f"and one sampling call per option" + (f", {args.sample_steps} sampler steps" if args.sample_steps else ""))
    peaks = {"fp32": measured_peak(device, "fp32")}
    print(f"fp32 matmul peak {peaks['fp32'] / 1e9:,.1f} GFLOP/s")
    print_table([row for name in args.models.split(",") for batch in batches
                 for row in measure(name, batch, options, args, device, peaks)])


if __name__ == "__main__":
    main()
