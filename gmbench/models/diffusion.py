"""Diffusion models: ddpm (noise prediction) and flow-matching (velocity prediction) on one U-Net.

As in diffusers, samplers are separate from the network: each model exposes its EMA network as a
denoiser (``denoiser()``: an eps predictor with its alpha-bar schedule, or a velocity field) and runs
the registered sampler (gmbench/samplers/) its config names (``sampler``, ``sampler_options`` and
``sample_steps`` are sampling fields, so DDPM-1000 and DDIM-50 share one set of weights). Both models
train with EMA weights and sample from them.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gmbench.config import check_range
from gmbench.device import Bf16Setting
from gmbench.models.base import GenerativeModel
from gmbench.models.blocks import UNet
from gmbench.models.ema import ema_decay_at, ema_update
from gmbench.registry import SAMPLERS, register_model
from gmbench.samplers.base import EpsDenoiser, Sampler, VelocityField
from gmbench.samplers.lookup import sampler_for

# --- DDPM schedule and forward process (Ho et al. 2020) -------------------------------------------
def linear_beta_schedule(num_timesteps: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> Tensor:
    """beta_1..beta_T linearly spaced (Ho et al. 2020): float64 [T]."""
    return torch.linspace(beta_start, beta_end, num_timesteps, dtype=torch.float64)


def q_sample(x0: Tensor, alpha_bar_t: Tensor, noise: Tensor) -> Tensor:
    """Draw x_t ~ q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I); alpha_bar_t: [B] (Ho et al. eq. 4)."""
    a = alpha_bar_t.view(-1, *([1] * (x0.dim() - 1)))  # [B,1,1,1]
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


def v_target(x0: Tensor, alpha_bar_t: Tensor, noise: Tensor) -> Tensor:
    """v = sqrt(abar_t) eps - sqrt(1 - abar_t) x_0 (Salimans & Ho 2022, sec. 4); alpha_bar_t: [B]."""
    a = alpha_bar_t.view(-1, *([1] * (x0.dim() - 1)))  # [B,1,1,1]
    return a.sqrt() * noise - (1 - a).sqrt() * x0


def eps_from_v(x_t: Tensor, v: Tensor, alpha_bar_t: Tensor) -> Tensor:
    """The noise that a v-prediction implies: eps = sqrt(abar_t) v + sqrt(1 - abar_t) x_t; alpha_bar_t: [B]."""
    a = alpha_bar_t.view(-1, *([1] * (x_t.dim() - 1)))  # [B,1,1,1]
    return a.sqrt() * v + (1 - a).sqrt() * x_t


# --- flow matching path (Lipman et al. 2023; Liu et al. 2022) -------------------------------------
def flow_interpolate(x_noise: Tensor, x_data: Tensor, t: Tensor) -> Tensor:
    """x_t = (1 - t) x_noise + t x_data, the straight (rectified / optimal-transport) path; t: [B]."""
    t = t.view(-1, *([1] * (x_data.dim() - 1)))  # [B,1,1,1]
    return (1 - t) * x_noise + t * x_data


def flow_target_velocity(x_noise: Tensor, x_data: Tensor) -> Tensor:
    """d x_t / dt along that path: x_data - x_noise (the regression target u_t)."""
    return x_data - x_noise


def logit_normal_log_snr(n: int, device: torch.device) -> Tensor:
    """Training noise levels as log signal-to-noise ratios, logSNR ~ N(0, 2^2): [n]. On the straight
    flow path SNR = (t / (1 - t))^2, so this is t = sigmoid(N(0, 1)), the logit-normal sampling of
    Esser et al. 2024 (SD3): training steps go to mid noise levels rather than near-clean or
    near-pure-noise inputs."""
    return 2.0 * torch.randn(n, device=device)


def _mix_uniform(draws: Tensor, uniform: Callable[[], Tensor], uniform_fraction: float) -> Tensor:
    """Replace each draw [n] by one of ``uniform()`` [n] with probability ``uniform_fraction``."""
    pick = torch.rand(draws.shape, device=draws.device) < uniform_fraction  # [n]
    return torch.where(pick, uniform(), draws)


def flow_training_times(n: int, noise_sampling: str, device: torch.device, uniform_fraction: float = 0.0) -> Tensor:
    """t [n] in (0,1) for the flow-matching loss: U[0,1] ("uniform"), sigmoid(N(0,1)) ("logit-normal"),
    or ("mixed") U[0,1] with probability ``uniform_fraction`` and sigmoid(N(0,1)) otherwise."""
    if noise_sampling == "uniform":
        return torch.rand(n, device=device)
    t = torch.sigmoid(0.5 * logit_normal_log_snr(n, device))  # logSNR = 2 logit(t)
    return _mix_uniform(t, lambda: torch.rand(n, device=device), uniform_fraction) if noise_sampling == "mixed" else t


def ddpm_training_timesteps(log_snr: Tensor, n: int, noise_sampling: str, uniform_fraction: float = 0.0) -> Tensor:
    """Timesteps t [n] (int64) for the DDPM loss: uniform on {0..T-1} (Ho et al.); ("logit-normal") the
    first timestep whose logSNR is at or below a draw of logSNR ~ N(0, 2^2); or ("mixed") uniform with
    probability ``uniform_fraction`` and logit-normal otherwise. log_snr: [T], decreasing."""
    T, device = len(log_snr), log_snr.device
    if noise_sampling == "uniform":
        return torch.randint(0, T, (n,), device=device)
    t = torch.searchsorted(-log_snr, -logit_normal_log_snr(n, device)).clamp(max=T - 1)  # [n]
    return _mix_uniform(t, lambda: torch.randint(0, T, (n,), device=device), uniform_fraction) if noise_sampling == "mixed" else t


def _mixture_bin_probs(log_snr_edges: Tensor, noise_sampling: str, uniform_fraction: float) -> Tensor:
    """Probabilities of the bins between consecutive logSNR edges (float64 [K+1], monotone, from an
    infinite end to the other): the uniform component gives each bin 1/K, the logit-normal one
    P(edge_i, edge_i+1) under logSNR ~ N(0, 2^2). Returns [K]."""
    k = len(log_snr_edges) - 1
    cdf = torch.special.ndtr(log_snr_edges.double() / 2)  # [K+1]
    logit_normal = (cdf[1:] - cdf[:-1]).abs()  # [K]
    uniform = torch.full((k,), 1.0 / k, dtype=torch.float64)
    weight = {"uniform": 1.0, "logit-normal": 0.0}.get(noise_sampling, uniform_fraction)
    return weight * uniform + (1 - weight) * logit_normal


def ddpm_timestep_probs(log_snr: Tensor, noise_sampling: str, uniform_fraction: float = 0.0) -> Tensor:
    """P(t = k) for k = 0..T-1 under ``ddpm_training_timesteps``: float64 [T]. Timestep k collects the
    logSNR draws d with log_snr[k] <= d < log_snr[k-1]; timestep 0 every d >= log_snr[0], and T-1
    (the clamp) every d < log_snr[T-2]."""
    inf = torch.tensor([float("inf")], dtype=torch.float64)
    edges = torch.cat([inf, log_snr.double().cpu()[:-1], -inf])  # [T+1], decreasing
    return _mixture_bin_probs(edges, noise_sampling, uniform_fraction)


def flow_time_bin_probs(bins: int, noise_sampling: str, uniform_fraction: float = 0.0) -> Tensor:
    """P(t in [i/bins, (i+1)/bins)) for i = 0..bins-1 under ``flow_training_times``: float64 [bins]."""
    t = torch.linspace(0, 1, bins + 1, dtype=torch.float64)  # [bins+1]
    return _mixture_bin_probs(2 * torch.logit(t), noise_sampling, uniform_fraction)  # logit(0) = -inf, logit(1) = inf


# --- models ---------------------------------------------------------------------------------------
class UNetDiffusion(GenerativeModel):
    """Shared training loop of the U-Net models: Adam, gradient clipping at 1, optional bf16 autocast
    and channels_last, EMA of the weights (decay warmed up as min(decay, (1+n)/(10+n)) so short runs
    are not dominated by the initial weights), sampling with the registered sampler the config names on
    the model's ``denoiser()``. Subclasses give ``loss(x)`` and ``denoiser()``."""

    family = "diffusion"
    training_counters = ("steps_done",)
    ddp_networks = ("net",)

    def __init__(self, config=None, image_shape=(1, 28, 28)):
        super().__init__(config, image_shape)
        c = self.config
        self.net = UNet(image_shape[0], c.channels, c.patch_size)
        self.ema = copy.deepcopy(self.net).requires_grad_(False)
        if c.channels_last:
            self.net.to(memory_format=torch.channels_last)
            self.ema.to(memory_format=torch.channels_last)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=c.lr)
        self.steps_done = 0  # host-side counter for the EMA warm-up (a training counter)

    @classmethod
    def check_job(cls, config, batch_size: int, n_train: int | None, image_shape: tuple[int, int, int]) -> None:
        h, w = image_shape[1:]
        if h % config.patch_size or w % config.patch_size:
            raise ValueError(f"patch_size={config.patch_size} does not divide the {h}x{w} images (the stem folds "
                             "patch_size x patch_size pixel blocks into channels); choose a patch_size that divides both")

    def _input(self, x: Tensor) -> Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.config.channels_last else x

    def ema_model(self, x: Tensor, t: Tensor) -> Tensor:
        """The EMA network as a denoiser for the samplers, under the same precision options; float32 out."""
        with self.autocast():
            return self.ema(self._input(x), t).float()

    def loss(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def denoiser(self) -> EpsDenoiser | VelocityField:
        """The EMA network as the samplers see it, of the kind ``Config.denoiser_kind``."""
        raise NotImplementedError

    @property
    def sampler(self) -> Sampler:
        return SAMPLERS.get(self.config.sampler)

    def sampler_options(self) -> dict[str, Any]:
        """The sampler's options: its defaults, then the sampling fields of the config named like one of them
        (DDPM's ``clip_sample``), then ``sampler_options``."""
        c, sampler = self.config, self.sampler
        fields = {k: getattr(c, k) for k in sampler.defaults if k in c.sampling_fields}
        return sampler.options({**fields, **c.sampler_options})

    @classmethod
    def sampling_config(cls, config, overrides: dict[str, Any], where: str):
        """Options belong to their sampler: an override naming another sampler without ``sampler_options``
        runs it with its defaults, not with the options of the sampler it replaces."""
        if "sampler" in overrides and "sampler_options" not in overrides:
            overrides = {**overrides, "sampler_options": {}}
        return super().sampling_config(config, overrides, where)

    @property
    def nfe(self) -> int:
        return self.sampler.nfe(self.config.sample_steps, **self.sampler_options())

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        x = self.randn(n, *self.image_shape, generator=generator)  # [n,C,H,W]: x_T, or the flow at t = 0
        x = self.sampler.sample(self.denoiser(), x, self.config.sample_steps, generator, **self.sampler_options())
        return x.clamp(-1, 1)

    def training_noise(self, x: Tensor) -> Tensor:
        """Standard normal noise like x [B,C,H,W]: this rank's rows of the global batch's (``rows``)."""
        return self.rows(lambda n: torch.randn(n, *x.shape[1:], dtype=x.dtype, device=x.device), x.shape[0])

    def train_step(self, x: Tensor) -> dict[str, Tensor]:
        with self.autocast():
            loss = self.loss(self._input(x))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = nn.utils.clip_grad_norm_(self.net.parameters(), 1.0)
        self.opt.step()
        self.steps_done += 1
        ema_update(self.ema, self.net, ema_decay_at(self.steps_done, self.config.ema_decay))
        return {"loss": loss.detach().float(), "grad_norm": grad_norm.detach()}


@dataclass(frozen=True)
class UNetTrainingConfig:
    """What both diffusion models share: the U-Net, its optimiser, EMA and speed options."""

    channels: tuple[int, ...] = (32, 64)  # U-Net widths per resolution (14, 7 with patch_size 2)
    patch_size: int = 2  # pixel-unshuffle stem: the U-Net runs at 14x14
    lr: float = 2e-3
    ema_decay: float = 0.999
    bf16: Bf16Setting = False
    channels_last: bool = False
    sample_steps: int = 50
    sampler: str = ""  # a registered sampler of the model's denoiser kind (gmbench list)
    sampler_options: dict[str, Any] = field(default_factory=dict)  # the sampler's options, e.g. { order = 2 }
    noise_sampling: Literal["uniform", "logit-normal", "mixed"] = "uniform"
    uniform_fraction: float = 0.2  # "mixed": the share of training noise levels drawn uniformly

    def __post_init__(self):
        check_range(self, "channels", "patch_size", "sample_steps", low=1)
        check_range(self, "lr", low=0, open_low=True)
        check_range(self, "ema_decay", "uniform_fraction", low=0, high=1)
        sampler = sampler_for(self.sampler, self.denoiser_kind)
        named = sorted(set(self.sampler_options) & set(self.sampling_fields))
        if named:
            raise ValueError(f"sampler_options name {', '.join(named)}, which the config sets as its own field; "
                             f"set {named[0]} = ... instead")
        options = sampler.options(self.sampler_options, f"sampler_options of sampler {self.sampler!r}")  # kept as the sampler's types: --set's "2" is TOML's 2
        object.__setattr__(self, "sampler_options", {k: options[k] for k in self.sampler_options})

    sampling_fields = ("sampler", "sampler_options", "sample_steps")
    denoiser_kind: ClassVar[str]


@dataclass(frozen=True)
class DDPMConfig(UNetTrainingConfig):
    num_timesteps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    sampler: str = "ddim"
    prediction: Literal["eps", "v"] = "eps"  # what the network predicts (diffusers' prediction_type epsilon / v_prediction)
    clip_sample: bool = True  # clip x0_hat to [-1,1] in each step (samplers with that option), as diffusers' clip_sample

    sampling_fields = UNetTrainingConfig.sampling_fields + ("clip_sample",)
    denoiser_kind = EpsDenoiser.kind

    def __post_init__(self):
        super().__post_init__()
        check_range(self, "num_timesteps", low=1)
        check_range(self, "beta_start", "beta_end", low=0, high=1, open_low=True, open_high=True)
        if self.beta_start > self.beta_end:
            raise ValueError(f"beta_start must be <= beta_end, got {self.beta_start} > {self.beta_end}")
        if self.sample_steps > self.num_timesteps:
            raise ValueError(f"sample_steps must be in [1, num_timesteps={self.num_timesteps}], got {self.sample_steps}")


@register_model("ddpm")
class DDPM(UNetDiffusion):
    """DDPM (Ho et al. 2020): epsilon prediction with the simple loss ||eps - eps_theta(x_t, t)||^2,
    linear beta schedule 1e-4..0.02, T = 1000, EMA weights for sampling. Samplers on the same
    weights: any registered eps sampler, built in ancestral "ddpm" and "ddim" (Song et al. 2021;
    deterministic, eta = 0, unless ``sampler_options`` set its eta), each with ``sample_steps`` evenly
    spaced timesteps; nfe = sample_steps.

    Defaults differ from the paper for short CPU runs: a 0.38 M-parameter U-Net (2x2 pixel-unshuffle
    stem, widths 32/64 at 14x14 and 7x7, no attention) instead of 35.7 M, lr 2e-3 instead of 2e-4,
    EMA decay 0.999 instead of 0.9999 (with warm-up); sampler defaults to DDIM with 50 steps. GPU
    suites widen it (e.g. channels=64,128,128 with patch_size=1). ``noise_sampling`` replaces the
    uniform timesteps with "logit-normal" or "mixed" ones (see ``ddpm_training_timesteps``). bf16
    autocast and channels_last are opt-in speed options: bf16 pays where the device computes in bf16
    natively (``gmbench.device.fast_bf16``; a 2-core AMD EPYC with AVX512-BF16 trained 1.27x and sampled
    1.57x as fast as fp32 at batch 32), while on a CPU without it a bf16 U-Net step was ~10x slower.

    Training noise levels and samplers, measured after the quick suite's 2,100 steps at batch 32
    (fid on mnist-lenet, 1,000 samples, seed 0; ancestral-50 / DDIM-50 on the same weights):
    uniform 180 / 301, logit-normal 139 / 624, mixed with 20% uniform 149 / 314, with 50% 161 / 319.
    Pure logit-normal puts 2e-5 of its mass on t >= 900, so the network is untrained exactly where
    DDIM starts, and DDIM's x0 estimate there (x0 = (x_t - sqrt(1 - abar) eps) / sqrt(abar), with
    sqrt(abar_999) = 0.006) turns the eps errors into saturated blobs; ancestral sampling hides them
    under fresh noise. "mixed" keeps three quarters of logit-normal's ancestral gain and removes the
    blobs. The gap that is left, DDIM about twice the ancestral fid at every coverage, is not
    coverage. Part of it was the step itself: with x0 clipped, diffusers' default DDIM step pairs the
    clipped x0 with the unclipped eps; re-deriving eps from the clipped x0 (sampler option
    ``clipped_eps``, as guided-diffusion's DDIM does) took DDIM-50 from fid 333 to 231 on the quick
    reference's weights (ancestral-50: 156), and the quick suite's ddim-50 row uses it.

    ``prediction="v"`` trains the network on v = sqrt(abar) eps - sqrt(1 - abar) x0 (Salimans & Ho 2022)
    and hands the samplers the eps it implies (``eps_from_v``), so every eps sampler runs unchanged.
    Its x0 estimate, sqrt(abar) x_t - sqrt(1 - abar) v, does not divide by sqrt(abar), so an error at
    high noise stays an error of its own size. After 2,100 steps (mixed, same seed): ancestral-50 /
    DDIM-50 fid 141 / 162 against eps's 152 / 229; after 4,200, 84 / 104. The quick suite uses it.
    The DDIM gap that is left lies in the low-noise steps: on the quick reference's weights, DDIM down
    to t = 489 then ancestral steps scores 67.5 against ancestral-50's 82.4 and DDIM-50's 103.6
    (``benchmarks/sampler_handover.py``; README, "Few-step samplers"). Nor is it training length:
    over 8x the quick suite's steps DDIM-50 trails ancestral-50 by a near-constant 16-22 fid while both
    improve, so their ratio grows, from 1.20x at 4,200 steps to 2.04x at 33,600.
    """

    Config = DDPMConfig
    tiny_overrides = {"channels": (8, 8), "num_timesteps": 20, "sample_steps": 5}

    def __init__(self, config: DDPMConfig | None = None, image_shape=(1, 28, 28)):
        super().__init__(config, image_shape)
        c = self.config
        betas = linear_beta_schedule(c.num_timesteps, c.beta_start, c.beta_end)
        alpha_bars = torch.cumprod(1 - betas, 0)  # [T] float64
        self.register_buffer("alpha_bars", alpha_bars.float())
        self.register_buffer("log_snr", (alpha_bars / (1 - alpha_bars)).log().float(), persistent=False)  # [T], decreasing

    def loss(self, x: Tensor) -> Tensor:
        c = self.config
        t = self.rows(lambda n: ddpm_training_timesteps(self.log_snr, n, c.noise_sampling, c.uniform_fraction),
                      x.shape[0])  # [B]
        noise = self.training_noise(x)  # [B,C,H,W]
        x_t = q_sample(x, self.alpha_bars[t], noise)  # [B,C,H,W]
        target = v_target(x, self.alpha_bars[t], noise) if c.prediction == "v" else noise  # [B,C,H,W]
        return F.mse_loss(self.replica("net")(x_t, t.float()).float(), target)

    def eps(self, x_t: Tensor, t: Tensor) -> Tensor:
        """The EMA network's noise estimate at float timesteps t [B]: its output, or with ``prediction="v"``
        the noise its v implies (``eps_from_v``)."""
        out = self.ema_model(x_t, t)  # [B,C,H,W]
        return eps_from_v(x_t, out, self.alpha_bars[t.long()]) if self.config.prediction == "v" else out

    def denoiser(self) -> EpsDenoiser:
        return EpsDenoiser(self.eps, self.alpha_bars)


@dataclass(frozen=True)
class FlowMatchingConfig(UNetTrainingConfig):
    time_scale: float = 1000.0  # t in [0,1] is embedded as t * time_scale, the range DDPM's embedding sees
    sampler: str = "euler"

    denoiser_kind = VelocityField.kind

    def __post_init__(self):
        super().__post_init__()
        check_range(self, "time_scale", low=0, open_low=True)


@register_model("flow-matching")
class FlowMatching(UNetDiffusion):
    """Conditional flow matching with the straight path (Lipman et al. 2023, sigma_min = 0; the
    rectified-flow objective of Liu et al. 2022): x_t = (1-t) noise + t x, t ~ U[0,1], regress
    v_theta(x_t, t) on x - noise. Same U-Net, optimiser, EMA and CPU-sized defaults as ddpm
    (0.38 M parameters, lr 2e-3); ``noise_sampling="logit-normal"`` draws t = sigmoid(N(0,1))
    (Esser et al. 2024) instead of U[0,1], and "mixed" replaces ``uniform_fraction`` of those draws
    by U[0,1] ones, so that t near 0, where every sampler takes its first step, is trained (quick
    suite, 3,250 steps: Euler-20 fid 130 against 120 for pure logit-normal). Samplers: any registered
    velocity sampler, built in "euler" (nfe = sample_steps) and "heun" (nfe = 2 * sample_steps);
    default Euler, 50 steps.

    The quick suite (widths 16/32, 3,000 steps at batch 64) trains at lr 8e-3 after a 100-step linear
    warm-up (its budget's ``lr_warmup``): Euler-20 fid 123 / 129 (seeds 0 / 1) against 135 / 138 at a
    constant 4e-3 (1,000 samples); 8e-3 without the warm-up scored 155, and a cosine decay of the lr
    to 0 did not help (124; 146 from 4e-3; seed 0): at this length the model is short of training,
    not of a settled average.
    """

    Config = FlowMatchingConfig
    tiny_overrides = {"channels": (8, 8), "sample_steps": 3}

    def velocity(self, x: Tensor, t: Tensor) -> Tensor:
        return self.ema_model(x, t * self.config.time_scale)

    def denoiser(self) -> VelocityField:
        return VelocityField(self.velocity)

    def loss(self, x: Tensor) -> Tensor:
        c = self.config
        t = self.rows(lambda n: flow_training_times(n, c.noise_sampling, x.device, c.uniform_fraction), x.shape[0])  # [B]
        noise = self.training_noise(x)  # [B,C,H,W]
        x_t = flow_interpolate(noise, x, t)  # [B,C,H,W]
        return F.mse_loss(self.replica("net")(x_t, t * self.config.time_scale).float(), flow_target_velocity(noise, x))

