"""Where the Inception 2015-12-05 weights come from and how their tensors are renamed (read by ``weights_file``).

Accepted files:
- NVIDIA's TorchScript port (StyleGAN2-ADA's ``inception-2015-12-05.pt``; ``shared/weights``), or
  a plain state dict with its names (``net.layers.conv.weight`` ...), loaded as they are;
- torch-fidelity's ``weights-inception-2015-12-05-6726825d.pth`` (pytorch-fid's
  ``pt_inception-2015-12-05-6726825d.pth`` has the same names): torchvision names
  (``Mixed_5b.branch1x1.conv.weight`` ...) renamed to the graph's, plus the 1008-way ``fc``.
  Their batch-norm gammas must be all ones (the graph ignores them, tensorflow/tensorflow#564).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor

from gmbench.errors import GmbenchError
from gmbench.metrics.weights_file import read_state_dict, require_file

ENV_WEIGHTS = "GMBENCH_INCEPTION_WEIGHTS"
HUB_FILENAMES = ("weights-inception-2015-12-05-6726825d.pth", "pt_inception-2015-12-05-6726825d.pth")
TORCH_FIDELITY_URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
ADVICE = (f"Point --inception-weights or ${ENV_WEIGHTS} at the TorchScript fid-inception-2015-12-05.torchscript.pt "
          f"(shared/weights) or at torch-fidelity's {HUB_FILENAMES[0]}.")

# torchvision / torch-fidelity module names -> the TF graph's, block by block.
_STEM = {"Conv2d_1a_3x3": "conv", "Conv2d_2a_3x3": "conv_1", "Conv2d_2b_3x3": "conv_2",
         "Conv2d_3b_1x1": "conv_3", "Conv2d_4a_3x3": "conv_4"}
_BRANCHES_A = {"branch1x1": "conv", "branch5x5_1": "tower.conv", "branch5x5_2": "tower.conv_1",
               "branch3x3dbl_1": "tower_1.conv", "branch3x3dbl_2": "tower_1.conv_1", "branch3x3dbl_3": "tower_1.conv_2",
               "branch_pool": "tower_2.conv"}
_BRANCHES_B = {"branch3x3": "conv", "branch3x3dbl_1": "tower.conv", "branch3x3dbl_2": "tower.conv_1",
               "branch3x3dbl_3": "tower.conv_2"}
_BRANCHES_C = {"branch1x1": "conv", "branch7x7_1": "tower.conv", "branch7x7_2": "tower.conv_1", "branch7x7_3": "tower.conv_2",
               **{f"branch7x7dbl_{i + 1}": "tower_1." + ("conv" if i == 0 else f"conv_{i}") for i in range(5)},
               "branch_pool": "tower_2.conv"}
_BRANCHES_D = {"branch3x3_1": "tower.conv", "branch3x3_2": "tower.conv_1",
               **{f"branch7x7x3_{i + 1}": "tower_1." + ("conv" if i == 0 else f"conv_{i}") for i in range(4)}}
_BRANCHES_E = {"branch1x1": "conv", "branch3x3_1": "tower_conv", "branch3x3_2a": "tower_mixed_conv",
               "branch3x3_2b": "tower_mixed_conv_1", "branch3x3dbl_1": "tower_1_conv", "branch3x3dbl_2": "tower_1_conv_1",
               "branch3x3dbl_3a": "tower_1_mixed_conv", "branch3x3dbl_3b": "tower_1_mixed_conv_1", "branch_pool": "tower_2_conv"}
_MIXED = {"Mixed_5b": ("mixed", _BRANCHES_A), "Mixed_5c": ("mixed_1", _BRANCHES_A), "Mixed_5d": ("mixed_2", _BRANCHES_A),
          "Mixed_6a": ("mixed_3", _BRANCHES_B), "Mixed_6b": ("mixed_4", _BRANCHES_C), "Mixed_6c": ("mixed_5", _BRANCHES_C),
          "Mixed_6d": ("mixed_6", _BRANCHES_C), "Mixed_6e": ("mixed_7", _BRANCHES_C), "Mixed_7a": ("mixed_8", _BRANCHES_D),
          "Mixed_7b": ("mixed_9", _BRANCHES_E), "Mixed_7c": ("mixed_10", _BRANCHES_E)}
_PARAMS = {"conv.weight": "weight", "bn.bias": "beta", "bn.running_mean": "mean", "bn.running_var": "var"}


def hub_weights_paths() -> list[Path]:
    return [Path(torch.hub.get_dir()) / "checkpoints" / name for name in HUB_FILENAMES]


def find_weights(explicit: str | os.PathLike | None = None) -> Path:
    """The weights file: ``explicit`` (option / --inception-weights) > $GMBENCH_INCEPTION_WEIGHTS > torch hub cache."""
    for value, origin in ((explicit, "the weights option (--inception-weights)"), (os.environ.get(ENV_WEIGHTS), f"${ENV_WEIGHTS}")):
        if value:
            path = Path(value).expanduser()
            require_file(path, f"Inception weights file {path} (from {origin})", ADVICE)
            return path
    for path in hub_weights_paths():
        if path.is_file():
            return path
    raise GmbenchError(
        f"No weights for the 'inception-v3-tf' extractor (gmbench never uses random weights). Set {ENV_WEIGHTS} or pass "
        "--inception-weights (the 'weights' option) to a TorchScript of the TF Inception 2015-12-05 graph (such as "
        "shared/weights/fid-inception-2015-12-05.torchscript.pt) or a state dict; or put torch-fidelity's "
        f"{HUB_FILENAMES[0]} ({TORCH_FIDELITY_URL}), whose softmax layer also enables Inception Score, at "
        f"{hub_weights_paths()[0]}. Offline, the 'mnist-lenet' extractor needs no download."
    )


def _rename_torchvision(state: dict[str, Tensor], path: Path) -> dict[str, Tensor]:
    """torch-fidelity / pytorch-fid names -> the graph's; unit gammas and num_batches_tracked dropped."""
    renamed = {}
    for key, value in state.items():
        if key.startswith("fc."):
            renamed[key] = value
            continue
        block, _, module_param = key.partition(".")
        if block in _STEM:
            module, param = f"layers.{_STEM[block]}", module_param
        elif block in _MIXED and module_param.split(".", 1)[0] in _MIXED[block][1]:
            branch, param = module_param.split(".", 1)
            module = f"layers.{_MIXED[block][0]}.{_MIXED[block][1][branch]}"
        else:
            raise GmbenchError(f"Inception weights {path}: unexpected tensor {key!r} (not the TF Inception 2015-12-05 graph).")
        if param == "bn.weight":
            if not bool((value == 1).all()):
                raise GmbenchError(f"Inception weights {path}: {key} is not all ones, but the TF graph has batch norm without "
                                   "scale; these are not the 2015-12-05 weights.")
        elif param in _PARAMS:
            renamed[f"{module}.{_PARAMS[param]}"] = value
        elif param != "bn.num_batches_tracked":
            raise GmbenchError(f"Inception weights {path}: unexpected tensor {key!r}.")
    return renamed


def load_native_state_dict(path: Path) -> dict[str, Tensor]:
    """A state dict with ``InceptionV3TF``'s names (``layers.*``, and ``fc.*`` where the file has logits)."""
    state = read_state_dict(path, f"Inception weights {path}", ADVICE)
    if "Conv2d_1a_3x3.conv.weight" in state:
        return _rename_torchvision(state, path)
    return {key.removeprefix("net."): value for key, value in state.items()}
