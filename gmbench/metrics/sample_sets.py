"""Sample sets from files for ``gmbench eval``: .npy / .npz arrays, .pt tensors or a folder of PNGs.

Images are uint8 ``[N,H,W]`` or ``[N,1,H,W]`` (integer arrays of another dtype are accepted when
every value is in 0..255; 16-bit grayscale PNGs are scaled to 0..255). Float arrays are refused: their
scale cannot be told from their values (0s and 1s may be black and white or two near-black pixel
values), so the user converts them once with the formula of their range. Anything else is a
GmbenchError that says what was found.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from gmbench.errors import GmbenchError

NPZ_KEYS = ("images", "samples", "arr_0")


def load_sample_set(path: str | Path, n: int | None = None) -> Tensor:
    """uint8 [N,1,H,W] from ``path``; the first ``n`` images when ``n`` is given."""
    path = Path(path)
    if not path.exists():
        raise GmbenchError(f"Sample set {path} does not exist.")
    if path.is_dir():
        array = _read_png_folder(path)
    elif path.suffix == ".npy":
        array = _safe(lambda: np.load(path, allow_pickle=False), path)
    elif path.suffix == ".npz":
        array = _read_npz(path)
    elif path.suffix == ".pt":
        array = _safe(lambda: torch.load(path, map_location="cpu", weights_only=True), path)
    else:
        raise GmbenchError(f"Sample set {path}: unknown format {path.suffix!r}; use .npy, .npz, .pt or a folder of .png files.")
    images = as_uint8_images(array, str(path))
    if n is not None:
        if n < 2 or n > len(images):
            raise GmbenchError(f"--n {n} is not possible for {path}, which holds {len(images)} images (need 2..{len(images)}).")
        images = images[:n]
    return images


def _safe(read, path: Path):
    try:
        return read()
    except Exception as exc:
        raise GmbenchError(f"Cannot read sample set {path}: {type(exc).__name__}: {exc}") from None


def _read_npz(path: Path) -> np.ndarray:
    with _safe(lambda: np.load(path, allow_pickle=False), path) as archive:
        keys = list(archive.keys())
        key = keys[0] if len(keys) == 1 else next((k for k in NPZ_KEYS if k in keys), None)
        if key is None:
            raise GmbenchError(f"Sample set {path} holds arrays {keys}; store one array, or name it one of {', '.join(NPZ_KEYS)}.")
        return archive[key]


def _read_png_folder(folder: Path) -> Tensor:
    from PIL import Image

    files = sorted(folder.glob("*.png"))
    if not files:
        raise GmbenchError(f"Sample folder {folder} holds no .png files.")
    images = [torch.from_numpy(_safe(lambda f=f: _png_pixels(Image.open(f)), f))[None] for f in files]  # [1,H,W]
    shapes = {tuple(im.shape) for im in images}
    if len(shapes) > 1:
        raise GmbenchError(f"The PNG files in {folder} differ in size ({sorted(shapes)}); all must have one size.")
    return torch.stack(images)  # [N,1,H,W]


def _png_pixels(image) -> np.ndarray:
    """uint8 [H,W] of a PNG: 16-bit grayscale (Pillow mode I;16, or I) scaled by 255/65535 with rounding."""
    if image.mode.startswith("I"):
        wide = np.array(image).astype(np.int64)  # [H,W] in 0..65535
        return ((wide * 255 + 32767) // 65535).astype(np.uint8)
    return np.array(image.convert("L"))


def as_uint8_images(array, source: str) -> Tensor:
    """Check an array-like of images and return it as uint8 [N,1,H,W]."""
    if isinstance(array, np.ndarray):
        if array.dtype.kind not in "uif":
            raise GmbenchError(f"{source}: images have dtype {array.dtype}; expected uint8.")
        array = torch.from_numpy(np.ascontiguousarray(array))
    if not isinstance(array, Tensor):
        raise GmbenchError(f"{source} holds a {type(array).__name__}, not an image array or tensor.")
    if array.dtype == torch.bool or array.is_complex():
        raise GmbenchError(f"{source}: images have dtype {array.dtype}; expected uint8.")
    if array.dim() == 3:
        array = array.unsqueeze(1)  # [N,H,W] -> [N,1,H,W]
    if array.dim() != 4 or array.shape[1] != 1:
        raise GmbenchError(f"{source}: images have shape {tuple(array.shape)}; expected [N,H,W] or [N,1,H,W] "
                           "(grayscale, e.g. [N,28,28]).")
    if len(array) < 2:
        raise GmbenchError(f"{source} holds {len(array)} image(s); at least 2 are needed.")
    if array.dtype == torch.uint8:
        return array
    if array.is_floating_point():
        values = (f"values in [{array.min().item():g}, {array.max().item():g}]" if torch.isfinite(array).all()
                  else "NaN or infinite values")
        raise GmbenchError(f"{source}: images are {array.dtype} with {values}; gmbench reads only uint8 pixels, because "
                           "a float array does not say its scale (0s and 1s may be black and white, or two near-black "
                           "pixel values). Convert it once with the formula of its range and save uint8: [-1,1]: "
                           "round((x+1)*127.5); [0,1]: round(x*255); [0,255]: round(x); each clipped to 0..255.")
    low, high = array.min().item(), array.max().item()
    if low < 0 or high > 255:
        raise GmbenchError(f"{source}: integer values range over [{low}, {high}]; expected uint8 pixels in 0..255 "
                           "(for 16-bit pixels, round(x*255/65535)).")
    return array.to(torch.uint8)
