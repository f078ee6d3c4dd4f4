"""Device names from the command line and suites -> torch.device, with clear errors."""
from __future__ import annotations

from typing import Literal

import torch

from gmbench.errors import GmbenchError

Bf16Setting = bool | Literal["auto"]  # a model config's ``bf16``: on, off, or on where ``fast_bf16`` holds


def resolve_device(spec: str | torch.device) -> torch.device:
    """``cpu`` | ``cuda[:i]`` | ``auto`` (CUDA when available) -> torch.device.

    Other device types (mps, xpu, meta, ...) are a GmbenchError, as is CUDA without a GPU: gmbench's timing,
    synchronisation and memory peaks are written for CPU and CUDA only.
    """
    if str(spec) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except (RuntimeError, TypeError):
        raise GmbenchError(f"Unknown device {spec!r}; use cpu, cuda, cuda:N or auto.") from None
    if device.type not in ("cpu", "cuda"):
        raise GmbenchError(f"Device {spec!r} is not supported: gmbench times, synchronises and measures memory on CPU "
                           "and CUDA devices only; use cpu, cuda, cuda:N or auto.")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GmbenchError(f"Device {spec!r} was requested, but PyTorch sees no CUDA GPU here (torch {torch.__version__}, "
                           f"CUDA build {torch.version.cuda}); use --device cpu or auto.")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise GmbenchError(f"Device {spec!r} does not exist: this machine has {torch.cuda.device_count()} CUDA device(s).")
    return device


def fast_bf16(device: torch.device) -> bool:
    """Whether bf16 matmuls and convolutions run natively on ``device``: CUDA with bf16 support, or a CPU with
    AVX512-BF16 or AMX (elsewhere oneDNN emulates bf16 and it runs several times slower than fp32)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def uses_bf16(setting: Bf16Setting, device: torch.device) -> bool:
    """Whether a model config's ``bf16`` setting turns bf16 autocast on for ``device``."""
    return setting is True or (setting == "auto" and fast_bf16(torch.device(device)))
