"""Weights files an extractor cannot use: one short paragraph saying what the file is, the same for both extractors."""
import json

import pytest
import torch
from torch import nn

from gmbench.errors import GmbenchError
from gmbench.metrics.inception import build_inception_extractor
from gmbench.metrics.lenet import LeNet, build_mnist_lenet, weights_manifest
from gmbench.io import file_sha256


def other_network(path):
    torch.save(nn.Sequential(*(nn.Linear(2, 2) for _ in range(8))).state_dict(), path)  # 16 tensors: 0.weight ...


def pickled_module(path):
    torch.save(nn.Linear(2, 2), path)


def nan_weights(path):
    state = LeNet().state_dict()
    state["head.bias"][3] = float("nan")
    torch.save(state, path)


CASES = {  # how the file is made -> what the message must say
    "other network": (other_network, ["16 in the file are unexpected", "of the network's", "are missing", "0.weight"]),
    "pickled module": (pickled_module, ["is a pickled Python object", "not a state dict or TorchScript",
                                        "will not unpickle arbitrary code"]),
    "NaN": (nan_weights, ["is broken", "NaN or infinite", "head.bias"]),
    "directory": (lambda path: path.mkdir(), ["is a directory"]),
}


def build(extractor, path):
    if extractor == "inception-v3-tf":
        return build_inception_extractor("cpu", path)
    if path.is_file():  # a manifest that matches, so that the file itself is what gets judged
        weights_manifest(path).write_text(json.dumps({"sha256": file_sha256(path)}))
    return build_mnist_lenet(weights=path)


@pytest.mark.parametrize("extractor", ["inception-v3-tf", "mnist-lenet"])
@pytest.mark.parametrize("case", list(CASES))
def test_unusable_weights_file_is_one_short_paragraph(tmp_path, extractor, case):
    make, expected = CASES[case]
    path = tmp_path / "weights.pt"
    make(path)
    with pytest.raises(GmbenchError) as err:
        build(extractor, path)
    message = str(err.value)
    assert all(part in message for part in expected), message
    assert str(path) in message and "\n" not in message and "\x1b" not in message and "weights_only" not in message
    assert len(message) < 700 and message.endswith("."), message
    assert sum(f"{i}.{p}" in message for i in range(8) for p in ("weight", "bias")) <= 5  # the first few names only
