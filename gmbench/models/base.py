"""The model contract every generative model in gmbench implements (see DESIGN.md, "Contracts")."""
from __future__ import annotations

import dataclasses
from typing import Callable, ClassVar

import torch
from torch import Tensor, nn

from gmbench.config import apply_overrides
from gmbench.device import uses_bf16


class GenerativeModel(nn.Module):
    """Base class of all models; one subclass per registered name.

    Subclasses set ``family`` ("gan" | "vae" | "diffusion" | "other") and ``Config`` (a frozen
    dataclass whose fields all have defaults), build their networks and optimizers in
    ``__init__`` and implement ``train_step`` and ``sample``. The harness owns devices, seeds,
    timing, uint8 conversion and checkpoints.

    Sampling settings (e.g. a diffusion sampler and its step count) are config fields listed in
    ``Config.sampling_fields``; the harness changes them between sampling runs with
    ``set_sampling``, so ``sample`` and ``nfe`` must read them from ``self.config`` each call.
    """

    family: ClassVar[str] = "other"
    Config: ClassVar[type]
    trainable: ClassVar[bool] = True  # False for reference rows fitted in ``fit_data`` (no training loop)
    # Config overrides that make the model tiny enough for the contract test on 2 CPU cores
    # (see ``tiny_config``); a model whose defaults are already tiny leaves it empty.
    tiny_overrides: ClassVar[dict] = {}
    # The (H, W) sizes the networks are built for, checked at suite load and on construction; None accepts any size.
    image_sizes: ClassVar[tuple[tuple[int, int], ...] | None] = None
    # Host-side attributes (ints, floats) that training advances and ``train_step`` reads, e.g. a step
    # counter: saved and restored with the training state (``training_state``).
    training_counters: ClassVar[tuple[str, ...]] = ()
    # The networks ``train_step`` runs, by attribute name, which data-parallel training wraps in
    # DistributedDataParallel (``data_parallel``); empty: the model trains in one process only.
    ddp_networks: ClassVar[tuple[str, ...]] = ()
    # (rank, world) of this process in data-parallel training; (0, 1) when it trains alone.
    data_shard: tuple[int, int] = (0, 1)
    # Why ``torch.compile`` of the model's networks (speed option ``compile``) cannot train it; "" when it can.
    compile_unsupported: ClassVar[str] = ""

    def __init__(self, config=None, image_shape: tuple[int, int, int] = (1, 28, 28)):
        super().__init__()
        if config is None:
            config = self.Config()
        if not isinstance(config, self.Config):
            raise TypeError(f"{type(self).__name__} expects a {self.Config.__name__}, got {type(config).__name__}")
        self.config = config
        self.image_shape = tuple(image_shape)
        self.check_image_shape(self.image_shape)

    # --- the contract -------------------------------------------------------------------------
    def train_step(self, x: Tensor) -> dict[str, Tensor]:
        """One optimisation step on x: float [B,C,H,W] in [-1,1]. Returns detached scalar losses.

        Must not call ``.item()`` or otherwise synchronise with the host.
        """
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n samples: float [n,C,H,W] in [-1,1], drawn with ``generator`` when given."""
        raise NotImplementedError

    @property
    def nfe(self) -> int:
        """Network evaluations per sample (1 for one-shot generators, steps for diffusion)."""
        return 1

    @classmethod
    def check_image_shape(cls, image_shape: tuple[int, int, int]) -> None:
        """Raise ValueError unless the networks are built for images of ``image_shape`` (C, H, W) (``image_sizes``)."""
        if cls.image_sizes is not None and tuple(image_shape[1:]) not in cls.image_sizes:
            sizes = " or ".join(f"{h}x{w}" for h, w in cls.image_sizes)
            raise ValueError(f"{cls.__name__} is built for {sizes} images, got {image_shape[1]}x{image_shape[2]}")

    @classmethod
    def check_job(cls, config, batch_size: int, n_train: int | None, image_shape: tuple[int, int, int]) -> None:
        """Raise ValueError when ``config`` cannot work with a job's batch size, training-set size (None: not known
        before the data is read) or image shape; called when the suite loads, so such a job fails before anything
        runs. Accepts by default."""

    def fit_data(self, data: Tensor) -> None:
        """Optional hook called once before training with the training images (float [-1,1] [N,C,H,W],
        on the training device). Non-iterative reference models fit themselves here."""

    def training_state(self) -> dict:
        """Everything later ``train_step`` calls depend on, as tensors and plain data (loadable with
        ``torch.load(weights_only=True)``): the state_dict, the state of every ``torch.optim.Optimizer``
        attribute and the ``training_counters``. A model with more state (a scheduler, a host-side
        buffer) overrides this pair; the contract test checks that training continues identically."""
        return {"model": self.state_dict(), "optimizers": {k: opt.state_dict() for k, opt in self._optimizers()},
                "counters": {k: getattr(self, k) for k in self.training_counters}}

    def load_training_state(self, state: dict) -> None:
        """Restore what ``training_state`` returned, into a model built with the same config."""
        self.load_state_dict(state["model"])
        for k, opt in self._optimizers():
            opt.load_state_dict(state["optimizers"][k])
        for k in self.training_counters:
            setattr(self, k, state["counters"][k])

    def data_parallel(self, wrap: Callable[[nn.Module], nn.Module], rank: int, world: int) -> None:
        """Train as rank ``rank`` of ``world`` data-parallel processes: ``train_step`` then gets this rank's
        share of the global batch and runs each of ``ddp_networks`` through ``wrap`` of it (DistributedDataParallel,
        which averages the gradients over the ranks in backward). Parameters, buffers and the state_dict stay the
        model's own; sampling uses the bare networks."""
        if not self.ddp_networks:
            raise NotImplementedError(f"{type(self).__name__} does not support data-parallel training")
        self.data_shard = (rank, world)
        self._replicas = {name: wrap(getattr(self, name)) for name in self.ddp_networks}  # a dict: not submodules

    def __getstate__(self) -> dict:
        """A copy (deepcopy, pickle) trains alone: the DDP wrappers and the rank's share stay the original's."""
        state = super().__getstate__()
        state.pop("_replicas", None)
        state.pop("data_shard", None)
        return state

    def replica(self, name: str) -> nn.Module:
        """The network ``name`` as ``train_step`` runs it: its DDP wrapper in data-parallel training, else itself."""
        replicas = getattr(self, "_replicas", {})
        return replicas[name] if name in replicas else getattr(self, name)

    def rows(self, draw: Callable[[int], Tensor], n: int) -> Tensor:
        """This rank's n rows of ``draw(n * world)``: training randomness is drawn for the whole global batch (every
        rank draws the same, from the same seed) and each rank keeps its rows, so data-parallel ranks together use
        exactly what one process draws for the concatenated batch. Alone: ``draw(n)``."""
        rank, world = self.data_shard
        return draw(n * world)[rank * n:(rank + 1) * n]

    def _optimizers(self) -> list[tuple[str, torch.optim.Optimizer]]:
        return sorted((k, v) for k, v in vars(self).items() if isinstance(v, torch.optim.Optimizer))

    # --- helpers for subclasses and the harness -----------------------------------------------
    @property
    def device(self) -> torch.device:
        for t in self.parameters():
            return t.device
        for t in self.buffers():
            return t.device
        return torch.device("cpu")

    def set_sampling(self, **overrides) -> None:
        """Change sampling-only config fields (checked against ``Config.sampling_fields``)."""
        self.config = self.sampling_config(self.config, overrides, where=f"{type(self).__name__} sampling")

    @classmethod
    def sampling_config(cls, config, overrides: dict, where: str):
        """``config`` with the sampling-only ``overrides`` applied and checked: what ``set_sampling`` sets, and how
        a suite checks its variants when it loads."""
        allowed = set(getattr(cls.Config, "sampling_fields", ()))
        return apply_overrides(config, overrides, where=where, allowed=allowed)

    def autocast(self) -> torch.autocast:
        """bf16 autocast on the model's device where the config opts in (a ``bf16`` field set true, or "auto" on a
        device with native bf16: ``gmbench.device.uses_bf16``), else a no-op. Models run their forward passes under
        it and compute losses and outputs in fp32: matmuls and convolutions run in bf16 while weights, gradients
        and optimiser state stay fp32 (mixed precision)."""
        device = self.device
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=uses_bf16(getattr(self.config, "bf16", False), device))

    def randn(self, *shape: int, generator: torch.Generator | None = None) -> Tensor:
        """Standard normal noise on the model's device, from ``generator`` when given."""
        return torch.randn(*shape, generator=generator, device=self.device)

    @classmethod
    def default_config(cls):
        return cls.Config()

    @classmethod
    def tiny_config(cls):
        """The default config with ``tiny_overrides`` applied: what the contract test builds."""
        return apply_overrides(cls.Config(), cls.tiny_overrides, where=f"{cls.__name__}.tiny_overrides")

    @classmethod
    def config_fields(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls.Config)]
