"""Sample-set files read for `gmbench eval`: no guessing of a float array's scale, 16-bit PNGs scaled."""
import numpy as np
import pytest
from PIL import Image

from gmbench.cli import main
from gmbench.metrics.sample_sets import load_sample_set

PIXELS = np.random.default_rng(0).integers(0, 256, (4, 28, 28), dtype=np.uint8)  # [N,28,28]


@pytest.mark.parametrize("array", [(PIXELS > 127).astype(np.float32),  # black and white as 0.0 / 1.0
                                   PIXELS.astype(np.float64),  # integer-valued floats in 0..255
                                   PIXELS / 127.5 - 1], ids=["binary", "integer-valued", "signed"])
def test_float_images_are_refused_with_the_conversion_of_each_range(tmp_path, capsys, array):
    np.save(tmp_path / "floats.npy", array)
    assert main(["eval", str(tmp_path / "floats.npy")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gmbench: error: ") and "\n\n" not in err.strip()
    for advice in ("uint8", "round((x+1)*127.5)", "round(x*255)"):
        assert advice in " ".join(err.split()), err


def test_16_bit_grayscale_png_is_scaled_to_0_255_with_rounding(tmp_path):
    values = np.array([[0, 128, 129, 257, 32767, 32768, 65278, 65535]], dtype=np.uint16)  # [1,8]
    for i in range(2):
        Image.fromarray(values).save(tmp_path / f"{i}.png")
    assert Image.open(tmp_path / "0.png").mode == "I;16"
    images = load_sample_set(tmp_path)  # [2,1,1,8]
    assert images[0, 0, 0].tolist() == [0, 0, 1, 1, 127, 128, 254, 255]
