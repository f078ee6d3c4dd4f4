"""FLOPs per image of a model's training step and sampling call, the device's measured peak, and MFU.

The counts come from ``torch.utils.flop_counter.FlopCounterMode``: matrix multiplications, convolutions
and attention, forward and backward (2 FLOPs per multiply-add), whatever dtype they run in. Elementwise
work is not counted (activations, normalisation, losses, optimizer and EMA updates, the samplers'
arithmetic), so the model FLOPs utilisation (MFU) made from them is a lower bound.

MFU = achieved FLOP/s (images/s x FLOPs per image) / the device's peak, in percent. The peak is measured,
not taken from a data sheet: the median rate of a square matmul in the job's dtype (fp32 or bf16) with
the run's threads, so a CPU and a GPU are read against what torch attains on them.
"""
from __future__ import annotations

import copy
from typing import Callable

import torch
from torch import Tensor
from torch.utils.flop_counter import FlopCounterMode

from gmbench.bench.rng import preserved_rng
from gmbench.bench.timing import time_repeated
from gmbench.models.base import GenerativeModel

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
PEAK_SIZE = {"cuda": 8192, "cpu": 2048}  # matmul side per device type (a CPU does the 17 GFLOP of 2048 in ~0.1 s)
PEAK_WARMUP, PEAK_REPEATS = 2, 7
SAMPLE_COUNT_IMAGES = 2  # images of the counted sampling call: FLOPs per image do not depend on it


class _TotalOnly:
    """Stands in for FlopCounterMode's per-module tracker, whose hooks break ``torch.autograd.grad`` on a
    leaf (WGAN-GP's gradient penalty; pytorch/pytorch#131753); gmbench reads only the total."""

    parents = ("Global",)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None


def counted_flops(work: Callable[[], object]) -> int:
    """FLOPs that ``work()`` runs, as FlopCounterMode counts them."""
    counter = FlopCounterMode(display=False)
    counter.mod_tracker = _TotalOnly()
    with counter:
        work()
    return counter.get_total_flops()


def train_flops_per_image(model: GenerativeModel, x: Tensor) -> float:
    """FLOPs of one ``train_step(x)`` per image of x (float [B,C,H,W] in [-1,1]).

    The step runs on a deep copy of the model (its optimizers are copied with it, pointing at the copy's
    parameters) with the global RNG states restored afterwards, so the model, its optimizer state and
    the random streams are as they were: training goes on exactly as without counting.
    """
    with preserved_rng(x.device):
        twin = copy.deepcopy(model)
        return counted_flops(lambda: twin.train_step(x)) / x.shape[0]


def sample_flops_per_image(model: GenerativeModel, n: int = SAMPLE_COUNT_IMAGES) -> float:
    """FLOPs of one ``sample(n)`` call per image, in eval mode with the model's current sampling settings
    (so nfe network calls for a diffusion sampler), on a deep copy with the RNG states restored."""
    with preserved_rng(model.device):
        twin = copy.deepcopy(model).eval()
        generator = torch.Generator(device=model.device).manual_seed(0)
        return counted_flops(lambda: twin.sample(n, generator=generator)) / n


def _matmul_side(device: torch.device) -> int:
    return PEAK_SIZE.get(device.type, PEAK_SIZE["cpu"])


def measured_peak(device: torch.device, dtype: str = "fp32") -> float:
    """FLOP/s of a square matmul in ``dtype`` on ``device``: 2 n^3 over the median time of ``PEAK_REPEATS``
    calls after ``PEAK_WARMUP`` untimed ones (CUDA events, synchronised; perf_counter on CPU)."""
    n = _matmul_side(device)
    a, b = torch.rand(2, n, n, generator=torch.Generator().manual_seed(0)).to(device, DTYPES[dtype])  # 2 x [n,n]
    seconds = time_repeated(lambda: torch.mm(a, b), device, warmup=PEAK_WARMUP, repeats=PEAK_REPEATS).median
    return 2 * n**3 / seconds


def peak_method(device: torch.device, device_name: str) -> str:
    """How ``measured_peak`` measured, for the manifest."""
    n = _matmul_side(device)
    threads = f", {torch.get_num_threads()} threads" if device.type == "cpu" else ""
    return (f"torch.mm of two {n}x{n} matrices per dtype on {device_name} ({device}{threads}): "
            f"median of {PEAK_REPEATS} timed calls after {PEAK_WARMUP} warm-up calls")


def peaks(device: torch.device, dtypes: list[str], known: dict[str, float]) -> dict[str, float]:
    """``known`` peak FLOP/s per dtype, with those of ``dtypes`` it lacks measured."""
    return {**known, **{dtype: measured_peak(device, dtype) for dtype in dtypes if dtype not in known}}


def mfu(images_per_s: float, flops_per_image: float, peak: float) -> float:
    """Model FLOPs utilisation in percent: achieved FLOP/s over the peak."""
    return 100.0 * images_per_s * flops_per_image / peak
