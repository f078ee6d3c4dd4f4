import gzip
import struct

import numpy as np
import pytest
import torch

from gmbench.data import DeviceBatches, load_dataset, to_float, to_uint8
from gmbench.datasets.idx import read_idx
from gmbench.errors import GmbenchError
from tests.conftest import requires_mnist


def idx_bytes(array: np.ndarray, dtype_code: int = 0x08) -> bytes:
    header = bytes([0, 0, dtype_code, array.ndim]) + b"".join(struct.pack(">i", d) for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


@pytest.fixture
def images():
    return np.random.default_rng(0).integers(0, 256, size=(5, 28, 28), dtype=np.uint8)


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trip(tmp_path, images, compress):
    data = idx_bytes(images)
    path = tmp_path / ("x.gz" if compress else "x")
    path.write_bytes(gzip.compress(data) if compress else data)
    np.testing.assert_array_equal(read_idx(path, 3, 5, (28, 28)), images)


@pytest.mark.parametrize("mutate, message", [
    (lambda b: b[:-10], "truncated or padded"),
    (lambda b: b + b"\0", "truncated or padded"),
    (lambda b: b"\x01" + b[1:], "bad magic number"),
    (lambda b: b[:2] + b"\x0d" + b[3:], "type 0x0d"),
    (lambda b: b[:10], "header is incomplete"),
    (lambda b: b"", "bad magic number"),
])
def test_read_idx_rejects_corrupted_files_naming_them(tmp_path, images, mutate, message):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(mutate(idx_bytes(images)))
    with pytest.raises(GmbenchError, match=message) as err:
        read_idx(path, 3, 5, (28, 28))
    assert str(path) in str(err.value)


def test_read_idx_checks_counts_and_shape(tmp_path, images):
    path = tmp_path / "x"
    path.write_bytes(idx_bytes(images))
    with pytest.raises(GmbenchError, match="holds 5 items; expected 6"):
        read_idx(path, 3, 6, (28, 28))
    with pytest.raises(GmbenchError, match=r"shape \(28, 28\); expected \(32, 32\)"):
        read_idx(path, 3, 5, (32, 32))


def test_truncated_gzip_is_an_error_naming_the_file(tmp_path, images):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(idx_bytes(images))[:-40])
    with pytest.raises(GmbenchError, match="corrupted or truncated") as err:
        read_idx(path, 3, 5)
    assert str(path) in str(err.value)


@pytest.fixture
def torchvision_calls(monkeypatch):
    """Replace torchvision's dataset classes by a fake that records its arguments and fails like an offline machine."""
    calls = []

    def offline(root, train, download):
        calls.append((root, train, download))
        raise OSError("network unreachable")

    for name in ("MNIST", "FashionMNIST"):
        monkeypatch.setattr(f"torchvision.datasets.{name}", offline)
    return calls


def test_missing_data_is_an_error_that_creates_and_downloads_nothing(tmp_path, monkeypatch, torchvision_calls):
    monkeypatch.delenv("GMBENCH_DOWNLOAD", raising=False)
    with pytest.raises(GmbenchError, match="GMBENCH_DATA_ROOT") as err:
        load_dataset("fashion-mnist", "test", root=tmp_path)
    assert torchvision_calls == [] and list(tmp_path.iterdir()) == []
    message = str(err.value)
    for expected in ("FashionMNIST/raw/t10k-images-idx3-ubyte", "FashionMNIST/raw/t10k-labels-idx1-ubyte", str(tmp_path),
                     "GMBENCH_DOWNLOAD=1"):
        assert expected in message


def test_gmbench_download_1_asks_torchvision_and_says_so(tmp_path, monkeypatch, capsys, torchvision_calls):
    monkeypatch.setenv("GMBENCH_DOWNLOAD", "1")
    with pytest.raises(GmbenchError, match="network unreachable"):
        load_dataset("mnist", "test", root=tmp_path)
    assert torchvision_calls == [(str(tmp_path), True, True)]
    assert f"downloading dataset 'mnist' into {tmp_path / 'MNIST'}" in capsys.readouterr().err


@requires_mnist
def test_mnist_counts_and_label_histogram():
    images, labels = load_dataset("mnist", "test")
    assert images.shape == (10000, 1, 28, 28) and images.dtype == torch.uint8
    assert torch.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    train, _ = load_dataset("mnist", "train")
    assert len(train) == 60000
    assert to_float(train[:10000]).add(1).div(2).mean().item() == pytest.approx(0.1307, abs=0.002)


def test_uint8_conversion_round_trips_and_clamps():
    x = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    assert torch.equal(to_uint8(to_float(x)), x)
    assert to_uint8(torch.tensor([-3.0, 3.0])).tolist() == [0, 255]


def test_device_batches_cover_each_epoch_without_repeats():
    images = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1)
    batches = DeviceBatches(images, batch_size=5, device=torch.device("cpu"), seed=0)
    epoch = torch.cat([batches.next() for _ in range(2)])  # [10,1,1,1] float
    assert sorted(to_uint8(epoch).flatten().tolist()) == list(range(10))
    with pytest.raises(GmbenchError, match="Batch size 11"):
        DeviceBatches(images, 11, torch.device("cpu"))
