"""Reading a feature extractor's weights file, the same way and with the same messages for every extractor.

A file is a TorchScript archive or a ``torch.save``d state dict, read with ``weights_only=True``:
gmbench never unpickles code. Its tensors must be finite and fit the network exactly; what does
not fit is summarised (counts and the first few names), never listed in full. ``what`` names the
file in messages ("Inception weights PATH"); ``advice`` says where to find good weights.
"""
from __future__ import annotations

import pickle
import re
import textwrap
import warnings
import zipfile
from pathlib import Path

import torch
from torch import Tensor, nn

from gmbench.errors import GmbenchError

SHOWN = 5  # names shown per kind of mismatch
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def require_file(path: Path, what: str, advice: str) -> None:
    """A GmbenchError unless ``path`` is a file (a directory is named as one, not as missing)."""
    if path.is_dir():
        raise GmbenchError(f"{what} is a directory, not a file. {advice}")
    if not path.is_file():
        raise GmbenchError(f"{what} does not exist. {advice}")


def _is_torchscript(path: Path) -> bool:
    """TorchScript archives are zip files holding ``<name>/constants.pkl``; plain torch.save files do not."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/constants.pkl") for name in archive.namelist())


def _load(path: Path):
    if _is_torchscript(path):
        with warnings.catch_warnings():  # torch.jit.load's deprecation notice is not the user's concern
            warnings.simplefilter("ignore", FutureWarning)
            return dict(torch.jit.load(str(path), map_location="cpu").state_dict())
    return torch.load(path, map_location="cpu", weights_only=True)


def _unreadable(exc: Exception, what: str, advice: str) -> str:
    if isinstance(exc, pickle.UnpicklingError) and "Weights only load failed" in str(exc):
        return (f"{what} is a pickled Python object (such as a whole network saved with torch.save(model)), not a "
                "state dict or TorchScript, and gmbench will not unpickle arbitrary code from a file. Save the "
                f"network's state_dict() instead. {advice}")
    detail = textwrap.shorten(_ANSI.sub("", str(exc)), 300, placeholder=" ...")
    return f"Cannot read {what} ({type(exc).__name__}: {detail}); the file is damaged or not a weights file. {advice}"


def _first(names: list[str]) -> str:
    return ", ".join(names[:SHOWN]) + (", ..." if len(names) > SHOWN else "")


def read_state_dict(path: Path, what: str, advice: str) -> dict[str, Tensor]:
    """The tensors of a TorchScript or state-dict file, all finite; GmbenchError otherwise."""
    try:
        state = _load(path)
    except Exception as exc:  # torch raises RuntimeError, pickle errors, zip errors, ... for unreadable files
        raise GmbenchError(_unreadable(exc, what, advice)) from None
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise GmbenchError(f"{what} holds a {type(state).__name__}, not a state dict of tensors. {advice}")
    broken = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if broken:
        raise GmbenchError(f"{what} is broken: {len(broken)} of its {len(state)} tensors hold NaN or infinite values "
                           f"({_first(broken)}). Replace the file with an intact copy. {advice}")
    return state


def load_strict(module: nn.Module, state: dict[str, Tensor], what: str, advice: str) -> None:
    """``module.load_state_dict(state, strict=True, assign=True)``, or one paragraph on what does not fit."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    reshaped = [f"{k} {list(state[k].shape)} for {list(v.shape)}" for k, v in expected.items()
                if k in state and state[k].shape != v.shape]
    mismatches = [f"{len(names)} {kind} ({_first(names)})" for kind, names in (
        (f"of the network's {len(expected)} tensors are missing", missing), ("in the file are unexpected", unexpected),
        ("have another shape", reshaped)) if names]
    if mismatches:
        raise GmbenchError(f"{what} does not fit the {type(module).__name__} network: {'; '.join(mismatches)}. {advice}")
    module.load_state_dict(state, strict=True, assign=True)
