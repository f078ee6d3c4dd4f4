"""The package's ``gmbench.plugins`` entry point: gmbench calls ``register()`` once per process."""
from gmbench import register_extractor, register_model

from gmbench_example.extractor import build_pooled_pixels
from gmbench_example.model import PixelGaussian


def register() -> None:
    register_model("pixel-gaussian", PixelGaussian)
    register_extractor("pooled-pixels", build_pooled_pixels)
