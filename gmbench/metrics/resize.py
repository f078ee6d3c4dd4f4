"""Bilinear image resize in the two conventions FID code uses, batched and on the tensor's device.

- ``"tf1"``: TensorFlow 1.x ``tf.image.resize_bilinear`` with align_corners=False and
  half_pixel_centers=False (the "legacy" scaler of TF's ``resize_bilinear_op.cc``), which the
  Inception graph of TTUR / compare_gan / torch-fidelity applies to every image: output pixel
  ``i`` samples the source at ``i * in/out`` (no half-pixel offset; ``in/out`` as float32),
  clamped at the last pixel.
- ``"torch"``: ``F.interpolate(mode="bilinear", align_corners=False)`` (half-pixel centres), as
  pytorch-fid resizes.

Both run without host synchronisation: index and weight vectors are built on the device from
Python scalars (no host-to-device copy, which would synchronise a CUDA stream).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from gmbench.errors import GmbenchError

RESIZE_MODES = ("tf1", "torch")


def _tf1_sample_points(in_size: int, out_size: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """Lower and upper source indices (int64 [out]) and the fraction toward the upper (float32 [out])."""
    scale = float(np.float32(in_size) / np.float32(out_size))  # float32 division, as TF's CalculateResizeScale
    src = torch.arange(out_size, dtype=torch.float32, device=device) * scale  # [out], LegacyScaler: float32 out * scale
    lower = src.floor()  # [out]
    frac = src - lower  # [out]
    lower = lower.long()
    upper = (lower + 1).clamp_max(in_size - 1)  # TF takes min(ceil(src), in-1); equal wherever frac > 0
    return lower, upper, frac


def resize_bilinear_tf1(x: Tensor, size: tuple[int, int]) -> Tensor:
    """TF1 legacy bilinear resize of float [N,C,H,W] to [N,C,size[0],size[1]].

    Same operation order as TF's kernel: interpolate along the width first
    (``top = tl + (tr - tl) * dx``), then along the height (``top + (bottom - top) * dy``).
    """
    out_h, out_w = size
    y_lo, y_hi, dy = _tf1_sample_points(x.shape[-2], out_h, x.device)
    x_lo, x_hi, dx = _tf1_sample_points(x.shape[-1], out_w, x.device)
    left = x.index_select(-1, x_lo)  # [N,C,H,out_w]
    along_w = left + (x.index_select(-1, x_hi) - left) * dx.to(x.dtype)  # [N,C,H,out_w]
    top = along_w.index_select(-2, y_lo)  # [N,C,out_h,out_w]
    bottom = along_w.index_select(-2, y_hi)  # [N,C,out_h,out_w]
    return top + (bottom - top) * dy.to(x.dtype).unsqueeze(-1)  # [N,C,out_h,out_w]


def resize_bilinear(x: Tensor, size: tuple[int, int], mode: str = "tf1") -> Tensor:
    """Resize float [N,C,H,W] to ``size`` with the ``"tf1"`` or ``"torch"`` bilinear convention."""
    if mode == "tf1":
        return resize_bilinear_tf1(x, size)
    if mode == "torch":
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    raise GmbenchError(f"Unknown resize mode {mode!r}: choose one of {', '.join(RESIZE_MODES)} "
                       "(tf1 = TensorFlow 1.x legacy bilinear, as TTUR and torch-fidelity; torch = as pytorch-fid).")
