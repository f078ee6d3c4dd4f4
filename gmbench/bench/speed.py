"""Speed options of a job: how its steps run, never what they compute (within float tolerance).

A suite sets them in ``[speed]`` (every model), a model's ``speed = {...}`` or ``--set speed.KEY=V``:

- ``optimizer``: "default" (torch's choice: a per-parameter loop on CPU, foreach on CUDA),
  "foreach" (one multi-tensor kernel per update stage) or "fused" (one fused kernel per step).
- ``compile``: ``torch.compile`` every network of the model in place (the train step's forward and
  backward and the sampler's network; state_dict keys are unchanged). Compilation happens in the
  untimed warm-up block; the ``compile_time`` row says how long it took.
- ``cuda_graphs``: compile with ``mode="reduce-overhead"`` (CUDA graphs: one launch per graph),
  CUDA only; implies ``compile``.

Two precision and layout choices are model config fields instead: ``bf16`` (every trained built-in
model: bf16 autocast of the forward passes, ``GenerativeModel.autocast``; it sets the records' ``dtype``)
and the U-Net models' ``channels_last``, which ``speed_label`` names in the records' ``speed`` column.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from gmbench.errors import GmbenchError
from gmbench.models.base import GenerativeModel


@dataclass(frozen=True)
class SpeedSettings:
    optimizer: Literal["default", "foreach", "fused"] = "default"
    compile: bool = False
    cuda_graphs: bool = False  # torch.compile(mode="reduce-overhead"); CUDA only, implies compile

    @property
    def compiles(self) -> bool:
        return self.compile or self.cuda_graphs


def check_speed(speed: SpeedSettings, model_cls: type[GenerativeModel], warmup_steps: int, where: str) -> None:
    """Refuse settings a job cannot run with, when the suite loads (the device is checked in ``apply_speed``)."""
    if speed.compiles and model_cls.compile_unsupported:
        raise GmbenchError(f"{where}: speed compile is not available for this model ({model_cls.compile_unsupported}); "
                           "set compile = false and cuda_graphs = false for it.")
    if speed.compiles and warmup_steps < 1:
        raise GmbenchError(f"{where}: speed compile needs timing.warmup_steps >= 1, so that compilation happens in the "
                           "untimed warm-up block and not in a timed one; raise timing.warmup_steps.")


def apply_speed(model: GenerativeModel, speed: SpeedSettings, device: torch.device) -> None:
    """Rebuild the model's (still unused) optimizers and compile its networks as ``speed`` asks."""
    if speed.cuda_graphs and torch.device(device).type != "cuda":
        raise GmbenchError(f"speed cuda_graphs needs a CUDA device; this run is on {device}. Set cuda_graphs = false "
                           "(compile = true compiles without CUDA graphs).")
    if speed.optimizer != "default":
        flags = {"foreach": speed.optimizer == "foreach", "fused": speed.optimizer == "fused"}
        for name, opt in model._optimizers():
            if opt.state or not flags.keys() <= opt.defaults.keys():
                raise GmbenchError(f"speed optimizer={speed.optimizer!r}: {type(model).__name__}.{name} is a "
                                   f"{type(opt).__name__} that has stepped or has no foreach/fused implementation.")
            groups = [{**g, **flags} for g in opt.param_groups]
            setattr(model, name, type(opt)(groups, **{**opt.defaults, **flags}))
    if speed.compiles:
        mode = "reduce-overhead" if speed.cuda_graphs else None
        for network in model.children():
            network.compile(mode=mode)


def speed_label(model: GenerativeModel, speed: SpeedSettings) -> str:
    """The records' ``speed`` column: the options in effect joined by "+" in a fixed order, "plain" for none."""
    parts = ["cuda_graphs" if speed.cuda_graphs else "compile" if speed.compile else "",
             "" if speed.optimizer == "default" or not model._optimizers() else speed.optimizer,
             "channels_last" if getattr(model.config, "channels_last", False) else ""]
    return "+".join(p for p in parts if p) or "plain"
