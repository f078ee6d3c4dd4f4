"""inception-v3-tf: TF1 resize against hand-computed values, the native network against the TorchScript,
weights discovery and errors, and the Fréchet distance growing with noise (Heusel et al. 2017, Fig. 2).

The network costs ~6 GFLOP per image; tests needing weights use a few dozen images and skip
without the weights file (shared/weights or $GMBENCH_INCEPTION_WEIGHTS).
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from gmbench.errors import GmbenchError
from gmbench.metrics import inception_weights
from gmbench.metrics.features import extract
from gmbench.metrics.inception import InceptionV3TFExtractor, build_inception_extractor
from gmbench.metrics.resize import resize_bilinear
from gmbench.io import file_sha256
from gmbench.registry import EXTRACTORS
from tests.conftest import inception_weights_path, requires_mnist

# 3x3 -> 5x5, TF1 legacy: source coordinate = dst * 3/5 = 0, .6, 1.2, 1.8, 2.4 (the last clamps to pixel 2).
IMAGE_3X3 = [[0, 90, 30], [60, 0, 120], [30, 60, 0]]
TF1_5X5_BY_HAND = [
    [0.0, 54.0, 78.0, 42.0, 30.0],  # row 0: 0+90*.6, 90-60*.2, 90-60*.8, pixel 2
    [36.0, 36.0, 45.6, 74.4, 84.0],  # row 0 + (row 1 - row 0) * .6
    [54.0, 28.8, 28.8, 79.2, 96.0],  # row 1 + (row 2 - row 1) * .2
    [36.0, 43.2, 43.2, 28.8, 24.0],  # row 1 + (row 2 - row 1) * .8
    [30.0, 48.0, 48.0, 12.0, 0.0],  # row 2
]


@pytest.fixture(scope="module")
def weights_path() -> Path:
    path = inception_weights_path()
    if not path.is_file():
        pytest.skip(f"Inception weights not found at {path} (set {inception_weights.ENV_WEIGHTS})")
    return path


@pytest.fixture(scope="module")
def extractor(weights_path) -> InceptionV3TFExtractor:
    return build_inception_extractor("cpu", weights=str(weights_path))


@pytest.fixture(scope="module")
def torchscript(weights_path) -> torch.jit.ScriptModule:
    return torch.jit.load(str(weights_path), map_location="cpu").eval()


def test_tf1_resize_equals_hand_computed_interpolation():
    x = torch.tensor(IMAGE_3X3, dtype=torch.float32).view(1, 1, 3, 3)
    out = resize_bilinear(x, (5, 5), "tf1")
    torch.testing.assert_close(out[0, 0], torch.tensor(TF1_5X5_BY_HAND), rtol=0, atol=1e-4)


def test_torch_resize_uses_half_pixel_centres_where_tf1_does_not():
    x = torch.tensor(IMAGE_3X3, dtype=torch.float32).view(1, 1, 3, 3)
    tf1, torch_style = resize_bilinear(x, (5, 5), "tf1"), resize_bilinear(x, (5, 5), "torch")
    torch.testing.assert_close(torch_style, F.interpolate(x, size=(5, 5), mode="bilinear", align_corners=False))
    assert torch_style[0, 0, 2, 2] == 0.0  # (2+.5)*.6-.5 = 1: exactly the centre pixel
    assert tf1[0, 0, 2, 2] == pytest.approx(28.8, abs=1e-4)  # 2*.6 = 1.2: between pixels
    assert tf1[0, 0, 0, 0] == torch_style[0, 0, 0, 0] == 0.0  # both clamp to the corner


def test_tf1_resize_is_identity_at_same_size_and_batched():
    x = torch.randint(0, 256, (3, 2, 7, 5), generator=torch.Generator().manual_seed(0)).float()
    torch.testing.assert_close(resize_bilinear(x, (7, 5), "tf1"), x, rtol=0, atol=0)
    one_by_one = torch.cat([resize_bilinear(x[i: i + 1], (11, 13), "tf1") for i in range(3)])
    torch.testing.assert_close(resize_bilinear(x, (11, 13), "tf1"), one_by_one, rtol=0, atol=0)


def test_preprocessing_version_keys_the_resize_mode():
    with torch.device("meta"):
        tf1, torch_style = InceptionV3TFExtractor("0" * 64), InceptionV3TFExtractor("0" * 64, resize="torch")
    assert tf1.preprocessing_version != torch_style.preprocessing_version
    with pytest.raises(GmbenchError, match="resize"):
        InceptionV3TFExtractor("0" * 64, resize="bicubic")


def test_missing_weights_error_says_where_to_put_them(monkeypatch, tmp_path):
    monkeypatch.delenv(inception_weights.ENV_WEIGHTS, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(GmbenchError) as info:
        EXTRACTORS.get("inception-v3-tf")(device="cpu")
    message = str(info.value)
    for expected in (inception_weights.ENV_WEIGHTS, "--inception-weights", str(tmp_path / "hub" / "checkpoints"),
                     inception_weights.HUB_FILENAMES[0]):
        assert expected in message
    monkeypatch.setenv(inception_weights.ENV_WEIGHTS, str(tmp_path / "nowhere.pt"))
    with pytest.raises(GmbenchError, match="nowhere.pt"):
        build_inception_extractor("cpu")


def test_state_dict_names_and_shapes_equal_the_torchscript(extractor, torchscript, weights_path):
    ours, theirs = extractor.state_dict(), torchscript.state_dict()
    assert list(ours) == list(theirs)
    assert all(ours[k].shape == theirs[k].shape for k in theirs)
    assert extractor.num_classes is None and extractor.feature_dim == 2048
    assert extractor.weights_sha256 == file_sha256(weights_path)


@requires_mnist
def test_native_features_equal_the_torchscript_on_mnist(extractor, torchscript):
    from gmbench.data import load_dataset

    images = load_dataset("mnist", "test")[0][:4]  # [4,1,28,28] uint8
    with torch.no_grad():
        ours, logits = extractor(images)  # [4,2048]
        theirs = torchscript(extractor.preprocess(images))  # [4,2048]
    assert logits is None and ours.shape == (4, 2048)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5 * theirs.abs().max().item())


def test_torch_fidelity_weights_in_hub_cache_load_with_logits(extractor, monkeypatch, tmp_path):
    """A file with torchvision names (as torch-fidelity's), found in the hub cache, gives the same
    network plus 1008 logits; every renamed tensor has the shape torchvision gives that name."""
    import torchvision

    with torch.device("meta"):
        names = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False, num_classes=1008).state_dict()
    native = {k.removeprefix("net."): v for k, v in extractor.state_dict().items()}
    fc = torch.randn(1008, 2048, generator=torch.Generator().manual_seed(0)) * 0.01
    state = {}
    for key, meta in names.items():
        if key.endswith("bn.weight"):
            state[key] = torch.ones(meta.shape)
        elif key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(0)
        elif key.startswith("fc."):
            state[key] = fc if key == "fc.weight" else torch.zeros(1008)
        else:
            (graph_name,) = inception_weights._rename_torchvision({key: meta}, tmp_path)
            assert native[graph_name].shape == meta.shape, key
            state[key] = native[graph_name]
    hub = tmp_path / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    torch.save(state, hub / inception_weights.HUB_FILENAMES[0])
    monkeypatch.delenv(inception_weights.ENV_WEIGHTS, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    with_logits = build_inception_extractor("cpu")
    assert with_logits.num_classes == 1008
    for key, value in extractor.state_dict().items():
        assert torch.equal(with_logits.state_dict()[key], value), key
    images = torch.randint(0, 256, (1, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        features, logits = with_logits(images)
    torch.testing.assert_close(logits, features @ fc.T)  # pool3 @ W.T, without the bias (as Salimans et al.)

    state["Mixed_5b.branch1x1.bn.weight"] = torch.full_like(state["Mixed_5b.branch1x1.bn.weight"], 2.0)
    torch.save(state, hub / inception_weights.HUB_FILENAMES[0])
    with pytest.raises(GmbenchError, match="not all ones"):
        build_inception_extractor("cpu")


@requires_mnist
def test_frechet_distance_grows_with_gaussian_noise(extractor):
    """Heusel et al. 2017, Fig. 2: FD to real test images grows with the strength of added noise."""
    fid = pytest.importorskip("gmbench.metrics.fid")
    from gmbench.data import load_dataset

    n = 16
    images = load_dataset("mnist", "test")[0]
    reference, base = images[:n], images[n: 2 * n]  # [n,1,28,28] uint8 each, disjoint
    noise = torch.randn(base.shape, generator=torch.Generator().manual_seed(0))  # [n,1,28,28]
    stats = []
    for sigma in (0.0, 0.15, 0.4, None):
        batch = reference if sigma is None else (base.float() + sigma * 255 * noise).round().clamp(0, 255).to(torch.uint8)
        f = extract(extractor, batch)[0]  # [n,2048] float64
        stats.append((f.mean(0), torch.cov(f.T)))
    *noisy, ref = stats
    distances = [float(fid.frechet_distance(mu, sigma, *ref)) for mu, sigma in noisy]
    assert distances == sorted(distances) and len(set(distances)) == len(distances), distances
