"""The package's ``gmbench.plugins`` entry point: gmbench calls ``register()`` once per process."""
from gmbench import register_dataset, register_extractor, register_metric, register_model, register_sampler

from gmbench_example.dataset import Bars28
from gmbench_example.extractor import build_pooled_pixels
from gmbench_example.metric import mean_l2
from gmbench_example.model import PixelGaussian
from gmbench_example.sampler import Midpoint


def register() -> None:
    register_model("pixel-gaussian", PixelGaussian)
    register_extractor("pooled-pixels", build_pooled_pixels)
    register_metric("mean-l2", mean_l2, needs="features", higher_is_better=False, min_samples=2,
                    extra_outputs={"mean-l2_max": False})
    register_sampler("midpoint", Midpoint())
    register_dataset("bars28", Bars28())
