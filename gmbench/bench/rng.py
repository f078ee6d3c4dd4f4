"""Work that must not move the global random streams: the states are restored after it."""
from __future__ import annotations

import random
from contextlib import contextmanager

import numpy as np
import torch


@contextmanager
def preserved_rng(device: torch.device):
    """Restore Python's, NumPy's and torch's (CPU and ``device``) global RNG states on exit."""
    py, np_state = random.getstate(), np.random.get_state()
    cuda = device.type == "cuda"
    try:
        with torch.random.fork_rng(devices=[device] if cuda else [], device_type="cuda" if cuda else None):
            yield
    finally:
        random.setstate(py)
        np.random.set_state(np_state)
