"""The plugin's own tests: gmbench's contract kit, called as the README tells plugin authors to, and a
reference implementation beside the sampler."""
import pytest
import torch

from gmbench.registry import DATASETS, EXTRACTORS, METRICS, MODELS, SAMPLERS
from gmbench.samplers.base import VelocityField
from gmbench.testing import check_dataset, check_extractor, check_metric, check_model, check_sampler

from gmbench_example.dataset import Bars28
from gmbench_example.extractor import build_pooled_pixels
from gmbench_example.model import PixelGaussian


def test_model_contract():
    check_model(PixelGaussian)


def test_extractor_contract():
    check_extractor(build_pooled_pixels)
    check_extractor(build_pooled_pixels, image_shape=(3, 32, 32), channels=3)


def test_metric_contract():
    check_metric("mean-l2")


def test_sampler_contract():
    check_sampler("midpoint", kind="velocity")


def test_dataset_contract():
    check_dataset(Bars28())


def test_bars_point_the_way_their_class_says():
    images, labels = Bars28().load("test", None)
    horizontal, vertical = images[labels == 0].float(), images[labels == 1].float()  # [n,1,28,28]
    assert (horizontal.std(dim=3) == 0).all() and (vertical.std(dim=2) == 0).all()  # constant along the bar


def test_midpoint_equals_torchdiffeq():
    odeint = pytest.importorskip("torchdiffeq").odeint
    weight = torch.randn(3, 3, dtype=torch.float64)  # [C,C]

    def v(x, t):  # a nonlinear, time-dependent field
        return torch.tanh(torch.einsum("oc,bchw->bohw", weight, x)) * (1 + t.view(-1, 1, 1, 1))

    x = torch.randn(2, 3, 4, 4, dtype=torch.float64)  # [B,C,H,W]
    ours = SAMPLERS.get("midpoint").sample(VelocityField(v), x, 5)
    grid = torch.linspace(0, 1, 6, dtype=torch.float64)
    reference = odeint(lambda t, y: v(y, t.expand(len(y))), x, grid, method="midpoint")[-1]
    assert torch.allclose(ours, reference, atol=1e-6)  # gmbench passes t as float32


def test_registered_through_the_entry_point():
    sources = {MODELS.source("pixel-gaussian"), EXTRACTORS.source("pooled-pixels"), METRICS.source("mean-l2"),
               SAMPLERS.source("midpoint"), DATASETS.source("bars28")}
    assert sources == {"gmbench-example-plugin"}
