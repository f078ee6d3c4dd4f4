"""Device names from the command line and suites -> torch.device, with clear errors."""
from __future__ import annotations

import torch

from gmbench.errors import GmbenchError


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
