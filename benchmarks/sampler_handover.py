"""Where a deterministic DDPM sampler loses quality: DDIM for the first k steps, ancestral for the rest.

    python -m benchmarks.sampler_handover RUN_DIR [--job ddpm-mnist-s0] [--steps 50] [--at 0,10,25,40,50] [--n 1000]

Loads a finished ddpm job's weights from ``RUN_DIR/checkpoints/`` (any gmbench run, e.g. the quick
suite's), then for each k in ``--at`` samples ``--n`` images on the ``--steps``-step grid of the
built-in samplers (``sampling_timesteps``): DDIM steps (eta 0, ``clipped_eps``, as the quick suite's
ddim-50 row) while i < k, ancestral DDPM steps from there on, with the same starting noise and the
same per-step noise for every k. k = steps is pure DDIM, k = 0 pure ancestral. It prints one JSON line
per k: the timestep of the handover and fid on mnist-lenet against MNIST test. If the fid stays at the
ancestral one until k is large, the deterministic steps lose nothing while noise is high and the gap
lies in the low-noise steps, where fresh noise lets the network correct earlier errors.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from gmbench.config import apply_overrides
from gmbench.data import to_uint8
from gmbench.metrics.evaluate import evaluate
from gmbench.registry import MODELS, ensure_loaded
from gmbench.samplers.ddpm import ddim_step, ddpm_step, sampling_timesteps


@torch.no_grad()
def handover_samples(model, n: int, steps: int, k: int, seed: int = 0) -> torch.Tensor:
    """[n,C,H,W] in [-1,1]: DDIM (clipped_eps) for the first k of ``steps`` timesteps, ancestral after."""
    denoiser, clip = model.denoiser(), model.config.clip_sample
    alpha_bars = denoiser.alpha_bars  # [T]
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, *model.image_shape, generator=generator)  # [n,C,H,W]: x_T
    ts = sampling_timesteps(len(alpha_bars), steps).tolist()
    for i, t in enumerate(ts):
        a_t = alpha_bars[t]
        a_prev = alpha_bars[ts[i + 1]] if i + 1 < len(ts) else torch.ones(())
        eps = denoiser.fn(x, torch.full((n,), t, dtype=torch.float32))  # [n,C,H,W]
        noise = torch.randn(x.shape, generator=generator)  # drawn at every step, so each k sees the same noise
        if i < k:
            x = ddim_step(x, eps, a_t, a_prev, clip, clipped_eps=True)
        else:
            x = ddpm_step(x, eps, a_t, a_prev, None if i + 1 == len(ts) else noise, clip)
    return x.clamp(-1, 1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("--job", default="ddpm-mnist-s0")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--at", default="0,10,25,40,50", help="comma-separated k: DDIM steps before the handover")
    p.add_argument("--n", type=int, default=1000)
    args = p.parse_args()

    at = [int(v) for v in args.at.split(",") if v.strip().lstrip("-").isdigit()]
    if len(at) != len(args.at.split(",")) or not all(0 <= k <= args.steps for k in at):
        p.error(f"--at takes comma-separated integers from 0 to --steps ({args.steps}), got {args.at!r}")
    ensure_loaded()
    stem = args.run_dir / "checkpoints" / args.job
    if not stem.with_suffix(".pt").is_file():
        p.error(f"no weights at {stem}.pt: give the folder of a gmbench run whose job {args.job!r} finished")
    meta = json.loads(stem.with_suffix(".json").read_text())
    if meta.get("model") != "ddpm":
        p.error(f"job {args.job!r} is a {meta.get('model')!r} model; the handover needs a ddpm one")
    cls = MODELS.get("ddpm")
    model = cls(apply_overrides(cls.default_config(), meta["config"]))
    model.load_state_dict(torch.load(stem.with_suffix(".pt"), map_location="cpu", weights_only=True))
    model.eval()
    ts = sampling_timesteps(model.config.num_timesteps, args.steps).tolist()
    for k in at:
        samples = to_uint8(handover_samples(model, args.n, args.steps, k))  # [n,C,H,W] uint8
        fid = next(s.value for s in evaluate(samples, reference="mnist:test", extractor="mnist-lenet", metrics=["fid"]))
        print(json.dumps({"job": args.job, "steps": args.steps, "ddim_steps": k,
                          "handover_timestep": ts[k] if k < len(ts) else None, "fid": round(fid, 1), "n": args.n,
                          "extractor": "mnist-lenet", "seed": 0, "device": "cpu", "torch": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()
