"""The ``mnist-lenet`` extractor: a small CNN classifier trained by gmbench on MNIST train.

Its 128-d penultimate activations are the features of track B (FID, KID, precision/recall,
density/coverage) and its 10-class logits serve IS, class entropy and the Classifier Accuracy
Score. ``train_lenet`` trains the shipped weights and, unchanged, the fresh classifiers of CAS.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from gmbench.data import DeviceBatches, to_float
from gmbench.errors import GmbenchError
from gmbench.io import file_sha256
from gmbench.metrics.features import FeatureExtractor
from gmbench.metrics.weights_file import load_strict, read_state_dict, require_file
from gmbench.registry import register_extractor

SHIPPED_WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "mnist-lenet.pt"
ADVICE = ("Restore the file (the shipped one is gmbench/weights/mnist-lenet.pt) or retrain it with "
          "`gmbench train-classifier --out PATH`.")


class LeNet(nn.Module):
    """Conv(5x5,32)-pool-Conv(3x3,64)-pool-Conv(3x3,128)-pool-FC(128)-FC(10), batch norm after each conv.

    Input float [-1,1] [B,1,28,28] (``gmbench.data.to_float`` of uint8).
    """

    feature_dim = 128

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 5, padding=2, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True), nn.MaxPool2d(2),  # 28 -> 14
            nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True), nn.MaxPool2d(2),  # 14 -> 7
            nn.Conv2d(64, 128, 3, padding=1, bias=False), nn.BatchNorm2d(128), nn.ReLU(inplace=True), nn.MaxPool2d(2),  # 7 -> 3
            nn.Flatten(), nn.Linear(128 * 3 * 3, self.feature_dim), nn.ReLU(inplace=True),
        )
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(self.feature_dim, num_classes)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        features = self.body(x)  # [B,128]
        return features, self.head(self.dropout(features))  # [B,128], [B,10]


class LabelledBatches(DeviceBatches):
    """``DeviceBatches`` that also returns the labels of the drawn images (resident on the device)."""

    def __init__(self, images: Tensor, labels: Tensor, batch_size: int, device: torch.device, seed: int = 0):
        super().__init__(images, batch_size, device, seed)
        self.labels = labels.to(device)  # [N] int64

    def next_labelled(self) -> tuple[Tensor, Tensor]:
        """float [B,1,28,28] in [-1,1] with a random shift of up to 2 pixels, and int64 labels [B]."""
        idx = self.next_indices()
        return random_shift(to_float(self.images[idx]), 2, self.generator), self.labels[idx]


def random_shift(x: Tensor, max_shift: int, generator: torch.Generator) -> Tensor:
    """Translate each image by an integer offset in [-max_shift, max_shift]^2, filling with -1 (black)."""
    b, _, h, w = x.shape
    padded = F.pad(x[:, 0], (max_shift,) * 4, value=-1.0)  # [B,h+2s,w+2s]
    offsets = torch.randint(0, 2 * max_shift + 1, (b, 2), device=x.device, generator=generator)  # [B,2]
    rows = (offsets[:, 0, None] + torch.arange(h, device=x.device))[:, :, None]  # [B,h,1]
    cols = (offsets[:, 1, None] + torch.arange(w, device=x.device))[:, None, :]  # [B,1,w]
    batch = torch.arange(b, device=x.device)[:, None, None]  # [B,1,1]
    return padded[batch, rows, cols].unsqueeze(1)  # [B,1,h,w]


@dataclass(frozen=True)
class TrainResult:
    state_dict: dict[str, Tensor]
    test_accuracy: float


def train_lenet(images: Tensor, labels: Tensor, test_images: Tensor, test_labels: Tensor, *,
                epochs: int = 8, seed: int = 0, device: str | torch.device = "cpu",
                batch_size: int = 128, lr: float = 3e-3, autocast_dtype: torch.dtype | None = None) -> TrainResult:
    """Train a fresh LeNet on uint8 ``images`` [N,1,28,28] with int64 ``labels`` and report its accuracy on the test set.

    AdamW with a one-cycle learning rate, random shifts of up to 2 pixels, fixed seed. Used for the
    shipped ``mnist-lenet`` weights and for the Classifier Accuracy Score (Ravuri & Vinyals 2019).
    """
    device = torch.device(device)
    torch.manual_seed(seed)
    net = LeNet().to(device)
    batches = LabelledBatches(images, labels, batch_size, device, seed)
    steps = max(1, epochs * len(images) // batch_size)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    net.train()
    for _ in range(steps):
        x, y = batches.next_labelled()  # [B,1,28,28], [B]
        with torch.autocast(device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
            loss = F.cross_entropy(net(x)[1], y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        schedule.step()
    return TrainResult({k: v.detach().cpu() for k, v in net.state_dict().items()},
                       classifier_accuracy(net, test_images, test_labels))


@torch.no_grad()
def classifier_accuracy(net: LeNet, images: Tensor, labels: Tensor, batch_size: int = 1000) -> float:
    """Fraction of uint8 ``images`` whose argmax logit equals ``labels`` (one host sync at the end)."""
    device = next(net.parameters()).device
    net.eval()
    correct = torch.zeros((), dtype=torch.int64, device=device)
    for start in range(0, len(images), batch_size):
        x = to_float(images[start: start + batch_size].to(device))  # [b,1,28,28]
        correct += (net(x)[1].argmax(1) == labels[start: start + batch_size].to(device)).sum()
    return correct.item() / len(images)


def weights_manifest(path: str | Path) -> Path:
    """The JSON beside a weights file: ``mnist-lenet.pt`` -> ``mnist-lenet.json``."""
    return Path(path).with_suffix(".json")


def inference_body(body: nn.Sequential) -> nn.Sequential:
    """``LeNet.body`` rewritten for inference, equal in value (to float rounding) and about 1.8x as fast on a CPU:
    each batch norm folded into the convolution before it (running statistics, eval mode), each ReLU moved
    after the max pool that follows it (max and ReLU commute, and the pooled tensor is 4x smaller), and the
    weights in channels_last, where CPU convolutions and pools need no layout reorders."""
    layers, out = list(body), []
    while layers:
        layer = layers.pop(0)
        if isinstance(layer, nn.Conv2d) and layers and isinstance(layers[0], nn.BatchNorm2d):
            out.append(fuse_conv_bn_eval(layer.eval(), layers.pop(0).eval()))
        elif isinstance(layer, nn.ReLU) and layers and isinstance(layers[0], nn.MaxPool2d):
            out += [layers.pop(0), layer]
        else:
            out.append(layer)
    return nn.Sequential(*out).eval().to(memory_format=torch.channels_last)


class MnistLeNet(FeatureExtractor):
    """Penultimate (128-d) features and 10-class logits of the gmbench MNIST classifier; ``fold()`` turns its
    body into the faster ``inference_body`` once the weights are loaded."""

    name = "mnist-lenet"
    feature_dim = LeNet.feature_dim
    # uint8 -> x/127.5 - 1, no resize; "2": the folded inference body, whose features differ from "1"'s by up to
    # 6e-6, so reference stats cached by "1" are not reused (a fid from them differed at the 8th digit)
    preprocessing_version = "2"

    def __init__(self, weights_sha256: str):
        super().__init__(weights_sha256, num_classes=10)
        self.net = LeNet()
        self.eval()

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        if images.dtype != torch.uint8 or images.dim() != 4 or tuple(images.shape[1:]) != (1, 28, 28):
            raise GmbenchError(f"mnist-lenet takes uint8 images [N,1,28,28] (MNIST-shaped); got {images.dtype} "
                               f"{tuple(images.shape)}. Score other images with inception-v3-tf.")
        return self.net(to_float(images).contiguous(memory_format=torch.channels_last))  # [N,128], [N,10]

    def fold(self) -> "MnistLeNet":
        self.net.body = inference_body(self.net.body)
        return self


def load_verified_state_dict(path: str | Path) -> tuple[dict[str, Tensor], str]:
    """Load weights whose sha256 equals the one recorded in the JSON beside them; refuse others."""
    path, manifest = Path(path), weights_manifest(path)
    require_file(path, f"mnist-lenet weights {path}", ADVICE)
    require_file(manifest, f"The manifest {manifest} of mnist-lenet weights", ADVICE)
    expected = json.loads(manifest.read_text()).get("sha256")
    actual = file_sha256(path)
    if actual != expected:
        raise GmbenchError(f"mnist-lenet weights {path} have sha256 {actual} but {manifest} records {expected}; "
                           f"the file is corrupted or was replaced. {ADVICE}")
    return read_state_dict(path, f"mnist-lenet weights {path}", ADVICE), actual


@register_extractor("mnist-lenet")
def build_mnist_lenet(device: str | torch.device = "cpu", weights: str | Path | None = None) -> MnistLeNet:
    """The ``mnist-lenet`` extractor on ``device`` from the shipped weights (or a retrained ``weights`` file)."""
    path = Path(weights or SHIPPED_WEIGHTS)
    state_dict, sha = load_verified_state_dict(path)
    extractor = MnistLeNet(sha)
    load_strict(extractor.net, state_dict, f"mnist-lenet weights {path}", ADVICE)
    return extractor.fold().to(device)


build_mnist_lenet.image_shape = (1, 28, 28)  # MNIST-shaped images only (checked against a suite's datasets at load)


def train_shipped_weights(out: str | Path = SHIPPED_WEIGHTS, *, epochs: int = 6, seed: int = 0,
                          device: str | torch.device = "cpu", data_root: str | None = None,
                          command: str = "") -> dict:
    """Train ``mnist-lenet`` on MNIST train, test on MNIST test, and write ``out`` plus its JSON manifest."""
    import time

    from gmbench.data import load_dataset
    from gmbench.io import atomic_path, write_json

    train_x, train_y = load_dataset("mnist", "train", data_root)
    test_x, test_y = load_dataset("mnist", "test", data_root)
    start = time.perf_counter()
    result = train_lenet(train_x, train_y, test_x, test_y, epochs=epochs, seed=seed, device=device)
    seconds = time.perf_counter() - start
    with atomic_path(out) as tmp:
        torch.save(result.state_dict, tmp)
    manifest = {
        "extractor": MnistLeNet.name, "sha256": file_sha256(out), "test_accuracy": result.test_accuracy,
        "seed": seed, "epochs": epochs, "trained_on": "mnist:train", "tested_on": "mnist:test",
        "device": str(device), "train_seconds": round(seconds, 1), "command": command, "torch_version": torch.__version__,
    }
    write_json(weights_manifest(out), manifest)
    return manifest
