"""Shared layers: a small time-conditioned U-Net for small images (28x28, 32x32), used by ddpm and flow-matching.

The U-Net follows Ho et al. 2020 (itself after PixelCNN++ / Wide ResNet): residual blocks with
group norm and SiLU, a sinusoidal time embedding (Vaswani et al. 2017) passed through an MLP and
added inside every block, skip connections between resolutions. It is cut down for speed on
small images: one residual block per resolution, no attention, resolutions 28 -> 14 -> 7 (32 -> 16 -> 8).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def sinusoidal_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """t: [B] (any real values) -> [B,dim]: cat(sin(t*f_k), cos(t*f_k)), f_k = max_period^(-k/(dim/2))."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)  # [half]
    args = t.float()[:, None] * freqs[None]  # [B,half]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)  # [B,dim]


def _group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, channels), channels)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv, add the projected time embedding, GroupNorm-SiLU-conv, residual."""

    def __init__(self, cin: int, cout: int, tdim: int):
        super().__init__()
        self.norm1, self.conv1 = _group_norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.temb = nn.Linear(tdim, cout)
        self.norm2, self.conv2 = _group_norm(cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: Tensor, temb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))  # [B,cout,H,W]
        h = h + self.temb(temb)[:, :, None, None]  # [B,cout,H,W]
        h = self.conv2(F.silu(self.norm2(h)))  # [B,cout,H,W]
        return self.skip(x) + h


class UNet(nn.Module):
    """Time-conditioned U-Net: x [B,C,H,W], t [B] -> [B,C,H,W] (noise or velocity prediction).

    ``patch_size`` p > 1 folds p x p pixel blocks into channels first (pixel unshuffle, as a
    patchify stem) and unfolds them at the end, so the top level runs at H/p: 4x fewer FLOPs
    for p = 2, the main speed lever on CPU. ``channels[i]`` is the width at level i; each stride-2
    downsampling rounds odd sizes up (14 -> 7 -> 4) and each upsampling returns to its skip's size.
    """

    def __init__(self, image_channels: int = 1, channels: tuple[int, ...] = (32, 64, 64), patch_size: int = 1):
        super().__init__()
        self.patch_size = patch_size
        image_channels = image_channels * patch_size**2
        base = channels[0]
        tdim = 4 * base
        self.embed_dim = base
        self.time_mlp = nn.Sequential(nn.Linear(base, tdim), nn.SiLU(), nn.Linear(tdim, tdim))
        self.stem = nn.Conv2d(image_channels, base, 3, padding=1)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        prev = base
        for i, ch in enumerate(channels):
            self.down.append(ResBlock(prev, ch, tdim))
            prev = ch
            if i < len(channels) - 1:
                self.downsample.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))
        self.mid = ResBlock(prev, prev, tdim)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i, ch in reversed(list(enumerate(channels))):
            self.up.append(ResBlock(prev + ch, ch, tdim))
            prev = ch
            if i > 0:
                self.upsample.append(nn.Conv2d(ch, channels[i - 1], 3, padding=1))
                prev = channels[i - 1]
        self.out_norm = _group_norm(prev)
        self.out = nn.Conv2d(prev, image_channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)  # start as the zero function, as Ho et al.'s output layer
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        temb = self.time_mlp(sinusoidal_embedding(t, self.embed_dim))  # [B,tdim]
        if self.patch_size > 1:
            x = F.pixel_unshuffle(x, self.patch_size)  # [B,C*p*p,H/p,W/p]; below H, W mean H/p, W/p
        h = self.stem(x)  # [B,c0,H,W]
        skips = []
        for i, block in enumerate(self.down):
            h = block(h, temb)  # [B,ci,H/2^i,W/2^i]
            skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)  # [B,ci,H/2^(i+1),W/2^(i+1)]
        h = self.mid(h, temb)
        for j, block in enumerate(self.up):
            h = block(torch.cat([h, skips.pop()], dim=1), temb)  # [B,ci,H/2^i,W/2^i]
            if j < len(self.upsample):
                h = self.upsample[j](F.interpolate(h, size=skips[-1].shape[-2:], mode="nearest"))  # [B,c(i-1),H/2^(i-1),W/2^(i-1)]
        out = self.out(F.silu(self.out_norm(h)))  # [B,C*p*p,H,W]
        return F.pixel_shuffle(out, self.patch_size) if self.patch_size > 1 else out  # [B,C,H*p,W*p]
