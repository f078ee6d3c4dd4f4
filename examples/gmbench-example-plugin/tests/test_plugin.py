"""The plugin's own tests: gmbench's contract kit, called as the README tells plugin authors to."""
from gmbench.registry import EXTRACTORS, MODELS
from gmbench.testing import check_extractor, check_model

from gmbench_example.extractor import build_pooled_pixels
from gmbench_example.model import PixelGaussian


def test_model_contract():
    check_model(PixelGaussian)


def test_extractor_contract():
    check_extractor(build_pooled_pixels)
    check_extractor(build_pooled_pixels, image_shape=(3, 32, 32), channels=3)


def test_registered_through_the_entry_point():
    assert MODELS.source("pixel-gaussian") == EXTRACTORS.source("pooled-pixels") == "gmbench-example-plugin"
