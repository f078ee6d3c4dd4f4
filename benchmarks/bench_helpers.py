"""Helpers of the micro-benchmarks (a plain module: conftest.py is not importable by name reliably)."""
from __future__ import annotations

import torch

BATCH = 32


def sync(device: torch.device) -> None:
    """Wait for queued CUDA work on ``device``; a no-op on the CPU. Call it inside every timed function."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
