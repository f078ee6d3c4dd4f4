"""Extractor "inception-v3-tf": the TensorFlow Inception graph of 2015-12-05 as a native PyTorch module.

The graph is the one FID was defined on (Heusel et al. 2017, TTUR), also used by compare_gan
(Lucic et al. 2018) and torch-fidelity. Parameter names equal those of NVIDIA's TorchScript port
(StyleGAN2-ADA's ``inception-2015-12-05.pt``; ``shared/weights``), so that file's ``state_dict()``
loads unchanged; torch-fidelity's weights (torchvision names, with the 1008-way softmax layer)
are renamed on load (see ``inception_weights.py``).

TF quirks reproduced from the graph: batch norm without scale (gamma is identically 1 in the
release, tensorflow/tensorflow#564) and eps 1e-3; "SAME" average pools average over valid
pixels only (count_include_pad=False); the pooling tower of mixed_10 is a 3x3 max pool (stride 1)
where torchvision's Inception has an average pool; pool3 is an 8x8 average pool.
"""
from __future__ import annotations

import os
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gmbench.errors import GmbenchError
from gmbench.io import file_sha256
from gmbench.metrics.features import FeatureExtractor
from gmbench.metrics.inception_weights import ADVICE, find_weights, load_native_state_dict
from gmbench.metrics.resize import RESIZE_MODES, resize_bilinear
from gmbench.metrics.weights_file import load_strict
from gmbench.registry import register_extractor

BATCH_NORM_EPS = 1e-3
INPUT_SIZE = (299, 299)
FEATURE_DIM = 2048


class ConvBN(nn.Module):
    """Convolution without bias -> batch norm without scale (running statistics, eps 1e-3) -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int | tuple[int, int],
                 stride: int = 1, padding: int | tuple[int, int] = 0):
        super().__init__()
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kh, kw), requires_grad=False)
        self.beta = nn.Parameter(torch.empty(out_channels), requires_grad=False)
        self.mean = nn.Parameter(torch.empty(out_channels), requires_grad=False)
        self.var = nn.Parameter(torch.empty(out_channels), requires_grad=False)
        self.stride = stride
        self.padding = padding

    def forward(self, x: Tensor) -> Tensor:
        x = F.conv2d(x, self.weight, None, self.stride, self.padding)  # [N,out,h,w]
        x = F.batch_norm(x, self.mean, self.var, None, self.beta, training=False, eps=BATCH_NORM_EPS)
        return F.relu(x)


def _conv_chain(*convs: ConvBN) -> nn.Sequential:
    """A TF "tower": convolutions applied in turn, named conv, conv_1, conv_2, ... as in the graph."""
    names = ["conv"] + [f"conv_{i}" for i in range(1, len(convs))]
    return nn.Sequential(OrderedDict(zip(names, convs)))


def _avg_pool_same() -> nn.AvgPool2d:
    """TF's 3x3 stride-1 "SAME" average pool: padded pixels are not counted in the mean."""
    return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)


def _pool_tower(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(OrderedDict(pool=_avg_pool_same(), conv=ConvBN(in_channels, out_channels, 1)))


class InceptionA(nn.Module):
    """35x35 block (mixed, mixed_1, mixed_2): 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avgpool-1x1."""

    def __init__(self, in_channels: int, pool_channels: int):
        super().__init__()
        self.conv = ConvBN(in_channels, 64, 1)
        self.tower = _conv_chain(ConvBN(in_channels, 48, 1), ConvBN(48, 64, 5, padding=2))
        self.tower_1 = _conv_chain(ConvBN(in_channels, 64, 1), ConvBN(64, 96, 3, padding=1), ConvBN(96, 96, 3, padding=1))
        self.tower_2 = _pool_tower(in_channels, pool_channels)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.conv(x), self.tower(x), self.tower_1(x), self.tower_2(x)], 1)  # [N,224+pool,35,35]


class InceptionB(nn.Module):
    """Grid reduction 35 -> 17 (mixed_3): 3x3/2 | 1x1-3x3-3x3/2 | maxpool/2."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.conv = ConvBN(in_channels, 384, 3, stride=2)
        self.tower = _conv_chain(ConvBN(in_channels, 64, 1), ConvBN(64, 96, 3, padding=1), ConvBN(96, 96, 3, stride=2))
        self.pool = nn.MaxPool2d(3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.conv(x), self.tower(x), self.pool(x)], 1)  # [N,768,17,17]


class InceptionC(nn.Module):
    """17x17 block with factorised 7x7 convolutions (mixed_4 .. mixed_7)."""

    def __init__(self, in_channels: int, mid: int):
        super().__init__()
        self.conv = ConvBN(in_channels, 192, 1)
        self.tower = _conv_chain(
            ConvBN(in_channels, mid, 1), ConvBN(mid, mid, (1, 7), padding=(0, 3)), ConvBN(mid, 192, (7, 1), padding=(3, 0)))
        self.tower_1 = _conv_chain(
            ConvBN(in_channels, mid, 1), ConvBN(mid, mid, (7, 1), padding=(3, 0)), ConvBN(mid, mid, (1, 7), padding=(0, 3)),
            ConvBN(mid, mid, (7, 1), padding=(3, 0)), ConvBN(mid, 192, (1, 7), padding=(0, 3)))
        self.tower_2 = _pool_tower(in_channels, 192)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.conv(x), self.tower(x), self.tower_1(x), self.tower_2(x)], 1)  # [N,768,17,17]


class InceptionD(nn.Module):
    """Grid reduction 17 -> 8 (mixed_8): 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | maxpool/2."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.tower = _conv_chain(ConvBN(in_channels, 192, 1), ConvBN(192, 320, 3, stride=2))
        self.tower_1 = _conv_chain(
            ConvBN(in_channels, 192, 1), ConvBN(192, 192, (1, 7), padding=(0, 3)), ConvBN(192, 192, (7, 1), padding=(3, 0)),
            ConvBN(192, 192, 3, stride=2))
        self.pool = nn.MaxPool2d(3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.tower(x), self.tower_1(x), self.pool(x)], 1)  # [N,1280,8,8]


class InceptionE(nn.Module):
    """8x8 block with split 1x3 / 3x1 outputs (mixed_9, mixed_10); ``pool`` is the pooling tower's pool."""

    def __init__(self, in_channels: int, pool: nn.Module):
        super().__init__()
        self.conv = ConvBN(in_channels, 320, 1)
        self.tower_conv = ConvBN(in_channels, 384, 1)
        self.tower_mixed_conv = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.tower_mixed_conv_1 = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.tower_1_conv = ConvBN(in_channels, 448, 1)
        self.tower_1_conv_1 = ConvBN(448, 384, 3, padding=1)
        self.tower_1_mixed_conv = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.tower_1_mixed_conv_1 = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.tower_2_pool = pool
        self.tower_2_conv = ConvBN(in_channels, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        a = self.tower_conv(x)  # [N,384,8,8]
        b = self.tower_1_conv_1(self.tower_1_conv(x))  # [N,384,8,8]
        return torch.cat([
            self.conv(x), self.tower_mixed_conv(a), self.tower_mixed_conv_1(a),
            self.tower_1_mixed_conv(b), self.tower_1_mixed_conv_1(b), self.tower_2_conv(self.tower_2_pool(x)),
        ], 1)  # [N,2048,8,8]


class InceptionV3TF(nn.Module):
    """float [N,3,299,299] in [-1,1] -> pool3 features [N,2048] and, with a softmax layer, logits [N,K].

    The logits are ``pool3 @ W.T`` without the bias, as in the Inception Score code of Salimans et al.
    2016 (``softmax/logits/MatMul``) and torch-fidelity's ``logits_unbiased`` default for IS.
    """

    def __init__(self, num_classes: int | None = None):
        super().__init__()
        self.layers = nn.Sequential(OrderedDict(
            conv=ConvBN(3, 32, 3, stride=2),  # [N,32,149,149]
            conv_1=ConvBN(32, 32, 3),  # [N,32,147,147]
            conv_2=ConvBN(32, 64, 3, padding=1),  # [N,64,147,147]
            pool0=nn.MaxPool2d(3, stride=2),  # [N,64,73,73]
            conv_3=ConvBN(64, 80, 1),  # [N,80,73,73]
            conv_4=ConvBN(80, 192, 3),  # [N,192,71,71]
            pool1=nn.MaxPool2d(3, stride=2),  # [N,192,35,35]
            mixed=InceptionA(192, 32),  # [N,256,35,35]
            mixed_1=InceptionA(256, 64),  # [N,288,35,35]
            mixed_2=InceptionA(288, 64),  # [N,288,35,35]
            mixed_3=InceptionB(288),  # [N,768,17,17]
            mixed_4=InceptionC(768, 128),
            mixed_5=InceptionC(768, 160),
            mixed_6=InceptionC(768, 160),
            mixed_7=InceptionC(768, 192),  # [N,768,17,17]
            mixed_8=InceptionD(768),  # [N,1280,8,8]
            mixed_9=InceptionE(1280, _avg_pool_same()),  # [N,2048,8,8]
            mixed_10=InceptionE(2048, nn.MaxPool2d(3, stride=1, padding=1)),  # [N,2048,8,8]
            pool2=nn.AvgPool2d(8),  # TF's "pool_3": [N,2048,1,1]
        ))
        self.fc = nn.Linear(FEATURE_DIM, num_classes) if num_classes else None

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        features = self.layers(x).flatten(1)  # [N,2048]
        logits = F.linear(features, self.fc.weight) if self.fc is not None else None  # [N,K]
        return features, logits


class InceptionV3TFExtractor(FeatureExtractor):
    """uint8 [N,1|3,H,W] -> (pool3 features [N,2048], logits [N,1008] | None), preprocessing included.

    Preprocessing as TTUR / compare_gan / torch-fidelity: grayscale tiled to 3 channels, bilinear
    resize to 299x299 (``resize="tf1"``, TF1 legacy; or ``"torch"``, as pytorch-fid), then (x-128)/128.
    """

    name = "inception-v3-tf"
    feature_dim = FEATURE_DIM

    def __init__(self, weights_sha256: str, num_classes: int | None = None, resize: str = "tf1"):
        if resize not in RESIZE_MODES:
            raise GmbenchError(f"Extractor {self.name!r}: unknown resize {resize!r}; choose one of {', '.join(RESIZE_MODES)} "
                               "(tf1 = TensorFlow 1.x legacy bilinear, the FID convention; torch = as pytorch-fid).")
        super().__init__(weights_sha256, num_classes)
        self.resize = resize
        self.preprocessing_version = f"{resize}-bilinear-299-x128"  # keys the stats cache: differs per resize
        self.net = InceptionV3TF(num_classes)

    def preprocess(self, images: Tensor) -> Tensor:
        """uint8 [N,1|3,H,W] -> float32 [N,3,299,299] in [-1,1) on the images' device."""
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] not in (1, 3):
            raise GmbenchError(f"Extractor {self.name!r} takes uint8 images [N,1,H,W] or [N,3,H,W]; "
                               f"got {images.dtype} {tuple(images.shape)}.")
        x = resize_bilinear(images.float(), INPUT_SIZE, self.resize)  # [N,C,299,299], values in [0,255]
        x = (x - 128) / 128  # [N,C,299,299]
        return x.expand(-1, 3, -1, -1)  # [N,3,299,299]; grayscale tiled (resizing one channel is 3x cheaper)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor | None]:
        return self.net(self.preprocess(images))


def build_inception_extractor(device: str | torch.device = "cpu", weights: str | os.PathLike | None = None,
                              resize: str = "tf1") -> InceptionV3TFExtractor:
    """Factory of "inception-v3-tf": weights from ``weights`` > $GMBENCH_INCEPTION_WEIGHTS > the torch hub cache.

    Built on the meta device and filled by a strict ``load_state_dict``: a missing tensor is an
    error, never a random weight.
    """
    path = find_weights(weights)
    state = load_native_state_dict(path)  # keys of InceptionV3TF: layers.*, fc.*
    num_classes = state["fc.weight"].shape[0] if "fc.weight" in state else None
    with torch.device("meta"):
        extractor = InceptionV3TFExtractor(file_sha256(path), num_classes, resize)
    load_strict(extractor.net, state, f"Inception weights {path}", ADVICE)
    extractor.requires_grad_(False)
    return extractor.to(device).eval()


register_extractor(InceptionV3TFExtractor.name, build_inception_extractor)
