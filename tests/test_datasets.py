"""Dataset factories: npz, image folder, CIFAR-10 batches, the contract the harness checks, suite-defined datasets,
stale-cache protection, image-size refusals of models and extractors, and RGB 32x32 through the models."""
import json
import os
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from gmbench.bench.preflight import preflight
from gmbench.bench.suite import parse_suite
from gmbench.cli import main
from gmbench.data import load_dataset, to_float
from gmbench.dataset_spec import Dataset
from gmbench.datasets.cifar10 import Cifar10
from gmbench.datasets.image_folder import ImageFolderDataset
from gmbench.datasets.npz import NpzDataset
from gmbench.errors import GmbenchError
from gmbench.metrics import build_extractor
from gmbench.metrics.features import FeatureExtractor
from gmbench.metrics.stats_cache import reference_stats
from gmbench.registry import DATASETS, MODELS, register_dataset
from gmbench.testing import check_dataset
from tests.conftest import inception_weights_path


def write_npz(path, n=(12, 6), shape=(32, 32, 3), seed=0, classes=4):
    """An npz dataset of random uint8 images of ``shape`` (per image) and labels below ``classes``; returns its arrays."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, count in zip(("train", "test"), n):
        arrays[f"x_{split}"] = rng.integers(0, 256, size=(count, *shape), dtype=np.uint8)
        arrays[f"y_{split}"] = np.arange(count) % classes
    np.savez(path, **arrays)
    return arrays


def suite_text(datasets: str, models: str = "[models.gan-mlp]\n", extractor: str = "inception-v3-tf") -> str:
    return (f"seeds = [0]\n{datasets}\n[budget]\nsteps = 1\nbatch_size = 2\n"
            f"[metrics]\nextractors = [\"{extractor}\"]\nn_samples = 4\n{models}")


@pytest.fixture
def scratch_datasets():
    """Names registered by a test, unregistered after it."""
    names = []
    yield names
    for name in names:
        DATASETS.unregister(name)


# --- npz ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape, to_nchw", [
    ((32, 32, 3), lambda x: x.transpose(0, 3, 1, 2)),  # channels last
    ((3, 32, 32), lambda x: x),  # channels first
    ((28, 28), lambda x: x[:, None]),  # grayscale [N,H,W]
])
def test_npz_round_trip(tmp_path, shape, to_nchw):
    arrays = write_npz(tmp_path / "d.npz", shape=shape)
    dataset = NpzDataset(tmp_path / "d.npz")
    assert dataset.image_shape == to_nchw(arrays["x_test"]).shape[1:] and dataset.num_classes == 4
    for split in ("train", "test"):
        images, labels = dataset.load(split, tmp_path)
        np.testing.assert_array_equal(images.numpy(), to_nchw(arrays[f"x_{split}"]))
        assert labels.dtype == torch.int64 and labels.tolist() == arrays[f"y_{split}"].tolist()


def test_npz_mistakes_name_the_file(tmp_path):
    np.savez(tmp_path / "a.npz", x_train=np.zeros((2, 8, 8), np.uint8), y_train=np.zeros(2, np.int64))
    with pytest.raises(GmbenchError, match="has no array x_test, y_test"):
        NpzDataset(tmp_path / "a.npz")
    np.savez(tmp_path / "b.npz", x_train=np.zeros((2, 8, 8), np.float32), y_train=np.zeros(2, np.int64),
             x_test=np.zeros((2, 8, 8), np.float32), y_test=np.zeros(2, np.int64))
    with pytest.raises(GmbenchError, match="x_train is float32"):
        NpzDataset(tmp_path / "b.npz")
    with pytest.raises(GmbenchError, match="does not exist"):
        NpzDataset(tmp_path / "missing.npz")


# --- image folder ---------------------------------------------------------------------------------
def write_png(path, rgb, size=(6, 5)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, rgb).save(path)


def test_image_folder_labels_follow_sorted_folder_names(tmp_path):
    colours = {"zebra": (250, 0, 0), "ant": (0, 250, 0), "moth": (0, 0, 250)}
    for split, count in (("train", 2), ("test", 1)):
        for name, rgb in colours.items():
            for i in range(count):
                write_png(tmp_path / split / name / f"{i}.png", rgb)
    dataset = ImageFolderDataset(tmp_path)
    assert dataset.classes == ("ant", "moth", "zebra") and dataset.image_shape == (3, 5, 6) and dataset.num_classes == 3
    images, labels = dataset.load("train", tmp_path)
    assert images.shape == (6, 3, 5, 6) and images.dtype == torch.uint8
    assert labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert images[:, :, 0, 0].tolist() == [[0, 250, 0]] * 2 + [[0, 0, 250]] * 2 + [[250, 0, 0]] * 2  # each class's colour


def test_image_folder_refuses_images_of_another_size_naming_the_file(tmp_path):
    write_png(tmp_path / "train" / "a" / "0.png", (1, 2, 3))
    write_png(tmp_path / "train" / "a" / "1.png", (1, 2, 3), size=(7, 5))
    (tmp_path / "test").mkdir()
    with pytest.raises(GmbenchError, match=r"1.png is 7x5 pixels where the dataset's images are 6x5"):
        ImageFolderDataset(tmp_path).load("train", tmp_path)


# --- CIFAR-10 -------------------------------------------------------------------------------------
def write_cifar(root, per_batch=3):
    """Tiny batches in CIFAR-10's python format; returns the images [N,3,32,32] and labels of train and test."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    out = {"train": ([], []), "test": ([], [])}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, size=per_batch).tolist()
        with open(folder / name, "wb") as fh:
            pickle.dump({b"batch_label": name.encode(), b"labels": labels, b"data": data}, fh)
        xs, ys = out["test" if name == "test_batch" else "train"]
        xs.append(data.reshape(-1, 3, 32, 32))
        ys.extend(labels)
    return {split: (np.concatenate(xs), ys) for split, (xs, ys) in out.items()}


def test_cifar10_reads_python_batches(tmp_path):
    expected = write_cifar(tmp_path)
    for split, (x, y) in expected.items():
        images, labels = Cifar10().load(split, tmp_path)
        np.testing.assert_array_equal(images.numpy(), x)
        assert labels.tolist() == y and labels.dtype == torch.int64
    # red plane first: pixel (0, 0)'s red value is byte 0 of the row, green byte 1024, blue byte 2048
    assert images[0, :, 0, 0].tolist() == [x[0, 0, 0, 0], x[0, 1, 0, 0], x[0, 2, 0, 0]]


def test_cifar10_missing_says_where_it_looked_and_code_is_never_unpickled(tmp_path):
    with pytest.raises(GmbenchError, match=r"looked for cifar-10-batches-py/test_batch .*never downloads"):
        load_dataset("cifar10", "test", tmp_path)
    write_cifar(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps(os.system))
    with pytest.raises(GmbenchError, match="refused global"):
        Cifar10().load("test", tmp_path)


# --- the contract ---------------------------------------------------------------------------------
class Broken(Dataset):
    image_shape = (3, 8, 8)
    num_classes = 2

    def __init__(self, images, labels):
        self.images, self.labels = images, labels

    def load(self, split, root):
        return self.images, self.labels


@pytest.mark.parametrize("images, labels, message", [
    (torch.zeros(4, 3, 8, 8), torch.zeros(4, dtype=torch.int64), "images must be a uint8 tensor"),
    (torch.zeros(4, 1, 8, 8, dtype=torch.uint8), torch.zeros(4, dtype=torch.int64), r"\(1, 8, 8\) per image where image_shape declares \(3, 8, 8\)"),
    (torch.zeros(4, 3, 8, 8, dtype=torch.uint8), torch.zeros(4, dtype=torch.int32), "labels must be an int64 tensor"),
    (torch.zeros(4, 3, 8, 8, dtype=torch.uint8), torch.tensor([0, 1, 2, 0]), "num_classes = 2 allows 0..1"),
])
def test_factory_breaking_the_contract_is_named(scratch_datasets, images, labels, message):
    register_dataset("test-broken", Broken(images, labels))
    scratch_datasets.append("test-broken")
    with pytest.raises(GmbenchError, match=message) as err:
        load_dataset("test-broken", "train")
    assert "Dataset 'test-broken' (train) broke the dataset contract" in str(err.value)


def test_contract_kit_checks_datasets(tmp_path):
    write_npz(tmp_path / "d.npz")
    check_dataset(NpzDataset(tmp_path / "d.npz"))
    check_dataset(DATASETS.get("synthetic-rgb32"))
    with pytest.raises(AssertionError, match="split 'train': labels span 0..2 where num_classes = 2"):
        check_dataset(Broken(torch.zeros(3, 3, 8, 8, dtype=torch.uint8), torch.tensor([0, 1, 2])))


def test_registering_a_non_dataset_says_what_was_expected():
    with pytest.raises(GmbenchError, match="Dataset subclass"):
        register_dataset("test-bad", lambda split, root: None)
    bad = Broken(None, None)
    bad.image_shape = (3, 8)
    with pytest.raises(GmbenchError, match=r"image_shape as a tuple \(C, H, W\)"):
        register_dataset("test-bad", bad)
    assert "test-bad" not in DATASETS


# --- suites name datasets by path; the cache sees edits ----------------------------------------------
def test_suite_defines_a_dataset_by_path(tmp_path, scratch_datasets):
    write_npz(tmp_path / "d.npz", shape=(28, 28))
    scratch_datasets.append("mine")
    text = suite_text(f'[datasets.mine]\nkind = "npz"\npath = "{tmp_path / "d.npz"}"\n[datasets.mnist]\n')
    suite = parse_suite(text, "t")
    assert suite.datasets == ("mine", "mnist") and [j.job_id for j in suite.jobs()] == ["gan-mlp-mine-s0", "gan-mlp-mnist-s0"]
    assert DATASETS.get("mine").image_shape == (1, 28, 28) and load_dataset("mine", "test")[0].shape == (6, 1, 28, 28)
    with pytest.raises(GmbenchError, match="'mnist' is already a registered dataset"):
        parse_suite(suite_text(f'[datasets.mnist]\nkind = "npz"\npath = "{tmp_path / "d.npz"}"\n'), "t")
    with pytest.raises(GmbenchError, match="expected kind = one of 'npz', 'image-folder'"):
        parse_suite(suite_text(f'[datasets.mine]\nkind = "zip"\npath = "{tmp_path / "d.npz"}"\n'), "t")


def test_preflight_checks_batch_size_against_a_dataset_of_unknown_size(tmp_path, scratch_datasets):
    write_npz(tmp_path / "d.npz", n=(6, 4), shape=(28, 28))
    scratch_datasets.append("mine")
    text = suite_text(f'[datasets.mine]\nkind = "npz"\npath = "{tmp_path / "d.npz"}"\n', extractor="mnist-lenet")
    suite = parse_suite(text.replace("batch_size = 2", "batch_size = 8"), "t")  # the size is not known yet
    with pytest.raises(GmbenchError, match=r"\[models.gan-mlp\]: budget batch_size 8 is larger than the 6 training images of 'mine'"):
        preflight(suite)
    preflight(parse_suite(text, "t"))


class MeanColour(FeatureExtractor):
    """Mean of each channel: a cheap extractor for cache tests."""

    name = "test-mean-colour"
    feature_dim = 3

    def __init__(self):
        super().__init__("0" * 64, None)

    def forward(self, images):
        return images.float().mean((2, 3)), None  # [N,3]


def test_editing_a_dataset_file_never_reuses_stale_statistics(tmp_path, scratch_datasets, monkeypatch):
    monkeypatch.setenv("GMBENCH_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "d.npz"
    write_npz(path, seed=0)
    scratch_datasets.append("mine")
    register_dataset("mine", NpzDataset(path))
    first, first_path, _ = reference_stats(MeanColour(), "mine", "test")
    assert reference_stats(MeanColour(), "mine", "test")[2]  # unchanged: reused
    write_npz(path, seed=1)  # same shapes and size, other pixels
    edited, edited_path, reused = reference_stats(MeanColour(), "mine", "test")
    assert not reused and edited_path != first_path and not torch.equal(edited.mu, first.mu)
    assert torch.equal(edited.features.float(), load_dataset("mine", "test")[0].float().mean((2, 3)))


# --- models and extractors refuse image sizes they are not built for ---------------------------------
@pytest.mark.parametrize("model, shape, message", [
    ("dcgan", (64, 64, 3), "DCGAN is built for 28x28 or 32x32 images, got 64x64"),
    ("vae", (64, 64), "VAE is built for 28x28 or 32x32 images, got 64x64"),
    ("wgan-gp", (30, 30), "WGANGP is built for 28x28 or 32x32 images, got 30x30"),
    ("ddpm", (29, 29), "patch_size=2 does not divide the 29x29 images"),
])
def test_models_refuse_image_sizes_at_suite_load(tmp_path, scratch_datasets, model, shape, message):
    write_npz(tmp_path / "d.npz", shape=shape)
    scratch_datasets.append("mine")
    text = suite_text(f'[datasets.mine]\nkind = "npz"\npath = "{tmp_path / "d.npz"}"\n', f"[models.{model}]\n")
    with pytest.raises(GmbenchError, match=message) as err:
        parse_suite(text, "t")
    assert "dataset 'mine'" in str(err.value)


def test_gan_mlp_takes_any_image_shape(tmp_path, scratch_datasets):
    write_npz(tmp_path / "d.npz", shape=(12, 10, 3))
    scratch_datasets.append("mine")
    parse_suite(suite_text(f'[datasets.mine]\nkind = "npz"\npath = "{tmp_path / "d.npz"}"\n'), "t")
    assert MODELS.get("gan-mlp")(MODELS.get("gan-mlp").tiny_config(), (3, 12, 10)).sample(2).shape == (2, 3, 12, 10)


def test_mnist_lenet_refuses_other_shapes_at_suite_load_and_in_forward():
    with pytest.raises(GmbenchError, match=r"dataset 'synthetic-rgb32' has images of shape \(3, 32, 32\), but extractor "
                                           r"'mnist-lenet' takes only \(1, 28, 28\)"):
        parse_suite(suite_text('datasets = ["synthetic-rgb32"]', extractor="mnist-lenet"), "t")
    with pytest.raises(GmbenchError, match="mnist-lenet takes uint8 images"):
        build_extractor("mnist-lenet")(torch.zeros(2, 3, 32, 32, dtype=torch.uint8))


@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 32, 32), (3, 28, 28)])
@pytest.mark.parametrize("name", ["dcgan", "vae", "ddpm", "flow-matching"])
def test_models_train_and_sample_at_32x32_and_in_rgb(name, shape):
    torch.manual_seed(0)
    cls = MODELS.get(name)
    model = cls(cls.tiny_config(), image_shape=shape)
    images, _ = load_dataset("synthetic-rgb32", "train")  # [256,3,32,32]
    x = to_float(images[:4, :shape[0], :shape[1], :shape[2]])  # [4,*shape]
    losses = model.train_step(x)
    assert all(torch.isfinite(v) for v in losses.values())
    assert model.sample(3).shape == (3, *shape)


# --- the RGB smoke suite end to end ----------------------------------------------------------------
def test_smoke_rgb_suite_runs_every_model(tmp_path, monkeypatch):
    weights = inception_weights_path()
    if not weights.is_file():
        pytest.skip(f"smoke-rgb scores with inception-v3-tf, whose weights are not at {weights}")
    monkeypatch.setenv("GMBENCH_INCEPTION_WEIGHTS", str(weights))
    assert main(["run", "smoke-rgb", "--out", str(tmp_path / "run"), "--quiet"]) == 0
    from gmbench import load_records

    records = load_records(tmp_path / "run")
    kid = records[records.metric == "kid"]
    assert sorted(kid.model) == ["dcgan", "ddpm", "flow-matching", "vae"] and set(kid.dataset) == {"synthetic-rgb32"}
    assert kid.value.notna().all() and set(kid.extractor) == {"inception-v3-tf"}
    grid = Image.open(tmp_path / "run" / "samples" / "dcgan-synthetic-rgb32-s0.png")
    assert grid.mode == "RGB" and grid.size == (8 * 34 + 2, 34 + 2)  # 8 samples of 32x32 in a row, padding 2
    assert json.loads((tmp_path / "run" / "checkpoints" / "vae-synthetic-rgb32-s0.json").read_text())["image_shape"] == [3, 32, 32]
