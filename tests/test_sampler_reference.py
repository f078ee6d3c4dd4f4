"""gmbench's samplers against reference implementations, on the same network and the same noise.

DDIM (eta 0 and its stochastic eta > 0) and ancestral DDPM run against diffusers' DDIMScheduler and
DDPMScheduler, the flow samplers against torchdiffeq's fixed-grid odeint. Each side drives one tiny
seeded network from the same x_T (and, for DDPM and DDIM with eta > 0, an identically seeded
generator for the per-step noise, drawn in the same order). These comparisons run in float64 with
the same float64 alpha_bars on both sides (measured differences: 0 to 2e-13 for DDIM/DDPM, 1e-8 for
the flows, whose time grid is float32). diffusers' own schedule is float32: its rounding, amplified
by 1/sqrt(abar_999) = 157, moved T = 1000 samples by 2e-6 to 1e-2 (measured), so it is compared on
its own at float32 precision, and end to end only in the model-API tests, with T = 20.
"""
from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from gmbench.errors import GmbenchError
from gmbench.models import diffusion as dm
from gmbench.models.diffusion import DDPM
from gmbench.registry import SAMPLERS
from gmbench.samplers.base import EpsDenoiser, VelocityField
from gmbench.samplers.ddpm import sampling_timesteps

diffusers = pytest.importorskip("diffusers", reason="reference samplers: pip install -e '.[dev]'")
torchdiffeq = pytest.importorskip("torchdiffeq", reason="reference ODE solvers: pip install -e '.[dev]'")

ATOL = 1e-5
GRIDS = [(1000, 10), (1000, 50), (1000, 1000), (20, 5), (20, 20)]  # (T, steps)


@pytest.fixture(scope="module")
def denoiser():
    """A seeded nonlinear (x [B,2,H,W], t [B]) -> [B,2,H,W] in float64, outputs of order 1; its
    sinusoidal time features vary over both DDPM's t in [0, 999] and flow matching's t in [0, 1]."""
    g = torch.Generator().manual_seed(0)
    w_in = torch.randn(8, 2, 3, 3, generator=g, dtype=torch.float64) / 3  # [8,2,3,3]
    w_t = torch.randn(8, 8, generator=g, dtype=torch.float64) / 2  # [8,8]
    w_out = torch.randn(2, 8, 1, 1, generator=g, dtype=torch.float64) / 2  # [2,8,1,1]
    freqs = torch.logspace(-3, 1, 4, dtype=torch.float64)  # [4]

    def net(x, t):
        angles = t.double()[:, None] * freqs  # [B,4]
        temb = torch.cat([angles.sin(), angles.cos()], 1) @ w_t  # [B,8]
        return F.conv2d(torch.tanh(F.conv2d(x, w_in, padding=1) + temb[:, :, None, None]), w_out)  # [B,2,H,W]

    return net


@pytest.fixture
def x_start():
    """The starting noise both sides get: float64 [2,2,4,4]."""
    return torch.randn(2, 2, 4, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


def alpha_bars(T: int) -> torch.Tensor:
    """gmbench's linear-beta alpha_bar: float64 [T]."""
    return torch.cumprod(1 - dm.linear_beta_schedule(T), 0)


def diffusers_timesteps(T: int, steps: int) -> torch.Tensor:
    """diffusers' "linspace" timestep spacing: int64 [steps], from T-1 down to 0."""
    sched = diffusers.DDPMScheduler(num_train_timesteps=T, timestep_spacing="linspace")
    sched.set_timesteps(steps)
    return sched.timesteps


def diffusers_ddim(net, x, abar, timesteps, clip_sample, use_clipped_model_output=False, prediction_type="epsilon",
                   eta=0.0, generator=None):
    """diffusers' DDIMScheduler (set_alpha_to_one) over ``timesteps`` of the chain with alpha_bars ``abar`` [T].
    Its step goes to t - T // steps, not to the next of these timesteps, so the scheduler runs their
    sub-chain: T' = steps, index k for the k-th smallest timestep, alphas_cumprod taken there. With
    eta > 0 each step but the last gets variance_noise drawn from ``generator`` (x's shape and dtype), the
    last zeros (its variance is 0): gmbench's order of draws."""
    steps = len(timesteps)
    sched = diffusers.DDIMScheduler(num_train_timesteps=steps, clip_sample=clip_sample, set_alpha_to_one=True,
                                    prediction_type=prediction_type)
    sched.alphas_cumprod = abar[timesteps.flip(0)]  # [steps], increasing timestep
    sched.set_timesteps(steps)  # steps-1, ..., 0: each step to k-1, the last to final_alpha_cumprod = 1
    for i, (k, t) in enumerate(zip(sched.timesteps, timesteps)):
        eps = net(x, t.float().expand(x.shape[0]))  # [B,C,H,W]
        noise = None if eta == 0 else (torch.zeros_like(x) if i + 1 == steps else
                                       torch.randn(x.shape, generator=generator, dtype=x.dtype))  # [B,C,H,W]
        x = sched.step(eps, k, x, eta=eta, use_clipped_model_output=use_clipped_model_output,
                       variance_noise=noise).prev_sample
    return x


def diffusers_ddpm(net, x, abar, timesteps, clip_sample, generator, prediction_type="epsilon"):
    """diffusers' DDPMScheduler ("fixed_small" variance) over custom ``timesteps`` (it steps to the next
    one, the last to alpha_bar 1), drawing its noise from ``generator``."""
    sched = diffusers.DDPMScheduler(num_train_timesteps=len(abar), variance_type="fixed_small", clip_sample=clip_sample,
                                    prediction_type=prediction_type)
    sched.alphas_cumprod = abar
    sched.set_timesteps(timesteps=timesteps.tolist())
    for t in sched.timesteps:
        eps = net(x, t.float().expand(x.shape[0]))  # [B,C,H,W]
        x = sched.step(eps, t, x, generator=generator).prev_sample
    return x


@pytest.mark.parametrize("T", [20, 1000])
def test_linear_schedule_matches_diffusers(T):
    """gmbench's float64 alpha_bars against diffusers' float32 cumprod: 1000 float32 products
    drift by up to ~4e-7 relative (measured), hence rtol 1e-6."""
    ref = diffusers.DDPMScheduler(num_train_timesteps=T, beta_schedule="linear").alphas_cumprod
    torch.testing.assert_close(alpha_bars(T), ref.double(), rtol=1e-6, atol=0)


@pytest.mark.parametrize("T,steps", GRIDS + [(1000, 2), (1000, 250), (7, 3)])
def test_sampling_timesteps_are_diffusers_linspace_spacing(T, steps):
    assert sampling_timesteps(T, steps).tolist() == diffusers_timesteps(T, steps).tolist()


def test_one_sampling_step_starts_from_the_noisiest_timestep():
    """The documented exception: diffusers' "linspace" spacing with one step is [0]."""
    assert sampling_timesteps(1000, 1).tolist() == [999]
    assert diffusers_timesteps(1000, 1).tolist() == [0]


@pytest.mark.parametrize("clip_sample", [True, False])
@pytest.mark.parametrize("T,steps", GRIDS)
def test_ddim_matches_diffusers(denoiser, x_start, T, steps, clip_sample):
    abar = alpha_bars(T)
    out = SAMPLERS.get("ddim").sample(EpsDenoiser(denoiser, abar), x_start, steps, clip_sample=clip_sample)
    ref = diffusers_ddim(denoiser, x_start, abar, diffusers_timesteps(T, steps), clip_sample)
    torch.testing.assert_close(out, ref, rtol=0, atol=ATOL)


@pytest.mark.parametrize("T,steps", GRIDS)
def test_ddim_with_clipped_eps_matches_diffusers_use_clipped_model_output(denoiser, x_start, T, steps):
    """eps re-derived from the clipped x0 (guided-diffusion's ddim_sample), and not the default's result."""
    abar = alpha_bars(T)
    out = SAMPLERS.get("ddim").sample(EpsDenoiser(denoiser, abar), x_start, steps, clipped_eps=True)
    ref = diffusers_ddim(denoiser, x_start, abar, diffusers_timesteps(T, steps), True, use_clipped_model_output=True)
    torch.testing.assert_close(out, ref, rtol=0, atol=ATOL)
    assert not torch.allclose(out, SAMPLERS.get("ddim").sample(EpsDenoiser(denoiser, abar), x_start, steps), atol=1e-3)


@pytest.mark.parametrize("eta", [0.3, 1.0])
@pytest.mark.parametrize("clip_sample,clipped_eps", [(True, False), (True, True), (False, False)])
@pytest.mark.parametrize("T,steps", [(1000, 10), (1000, 50), (20, 5)])
def test_ddim_with_eta_matches_diffusers(denoiser, x_start, T, steps, clip_sample, clipped_eps, eta):
    """DDIM's stochastic family (Song et al. 2021, sigma = eta * sqrt(beta_tilde)), same noise on both sides."""
    abar = alpha_bars(T)
    out = SAMPLERS.get("ddim").sample(EpsDenoiser(denoiser, abar), x_start, steps, torch.Generator().manual_seed(2),
                                      clip_sample=clip_sample, clipped_eps=clipped_eps, eta=eta)
    ref = diffusers_ddim(denoiser, x_start, abar, diffusers_timesteps(T, steps), clip_sample, clipped_eps,
                         eta=eta, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(out, ref, rtol=0, atol=ATOL)


@pytest.mark.parametrize("clip_sample", [True, False])
def test_ddim_with_eta_1_and_clipped_eps_is_the_ancestral_sampler(denoiser, x_start, clip_sample):
    """eta = 1 gives DDIM's step the ancestral variance; with eps taken from the (clipped) x0 estimate its
    mean is the posterior mean too, so from the same generator the two samplers give the same samples."""
    den = EpsDenoiser(denoiser, alpha_bars(1000))
    ddim = SAMPLERS.get("ddim").sample(den, x_start, 50, torch.Generator().manual_seed(3), clip_sample=clip_sample,
                                       clipped_eps=True, eta=1.0)
    ancestral = SAMPLERS.get("ddpm").sample(den, x_start, 50, torch.Generator().manual_seed(3), clip_sample=clip_sample)
    torch.testing.assert_close(ddim, ancestral, rtol=0, atol=1e-10)


def test_ddim_eta_is_checked_and_eta_0_draws_no_noise(denoiser, x_start):
    ddim = SAMPLERS.get("ddim")
    with pytest.raises(GmbenchError, match=r"eta=1\.5 must be in \[0, 1\]"):
        ddim.options({"eta": 1.5})
    g = torch.Generator().manual_seed(5)
    ddim.sample(EpsDenoiser(denoiser, alpha_bars(20)), x_start, 5, g, eta=0.0)
    assert torch.equal(g.get_state(), torch.Generator().manual_seed(5).get_state())


@pytest.mark.parametrize("clip_sample", [True, False])
@pytest.mark.parametrize("T,steps", GRIDS)
def test_ddpm_matches_diffusers(denoiser, x_start, T, steps, clip_sample):
    abar = alpha_bars(T)
    out = SAMPLERS.get("ddpm").sample(EpsDenoiser(denoiser, abar), x_start, steps, torch.Generator().manual_seed(2),
                                      clip_sample=clip_sample)
    ref = diffusers_ddpm(denoiser, x_start, abar, diffusers_timesteps(T, steps), clip_sample, torch.Generator().manual_seed(2))
    torch.testing.assert_close(out, ref, rtol=0, atol=ATOL)


@pytest.mark.parametrize("steps", [1, 10, 50])
@pytest.mark.parametrize("sampler,method", [("euler", "euler"), ("heun", "heun2")])
def test_flow_sampler_matches_torchdiffeq(denoiser, x_start, sampler, method, steps):
    """gmbench's time grid is float32: h differs from torchdiffeq's float64 one by ~1e-8, far below 1e-5."""
    out = SAMPLERS.get(sampler).sample(VelocityField(denoiser), x_start, steps)
    grid = torch.linspace(0, 1, steps + 1, dtype=torch.float64)  # [steps+1]
    ref = torchdiffeq.odeint(lambda t, x: denoiser(x, t.expand(x.shape[0])), x_start, grid, method=method)[-1]
    torch.testing.assert_close(out, ref, rtol=0, atol=ATOL)


@pytest.fixture(scope="module", params=["eps", "v"])
def tiny_ddpm(request):
    """A tiny float32 DDPM (T = 20), predicting eps or v, whose EMA network's zero-initialised output layer
    is replaced by seeded weights, so the network's output is of order 1 rather than 0."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = DDPM(dataclasses.replace(DDPM.tiny_config(), prediction=request.param))
    out = model.ema.out.weight
    with torch.no_grad():
        out.copy_(0.2 * torch.randn(out.shape, generator=torch.Generator().manual_seed(3)))
    return model


@pytest.mark.parametrize("sampler,steps,clip_sample",
                         [("ddim", 5, True), ("ddim", 20, False), ("ddpm", 5, True), ("ddpm", 20, False)])
def test_model_samples_match_diffusers(tiny_ddpm, sampler, steps, clip_sample):
    """DDPM.sample against the diffusers loop on ``model.ema_model`` (the raw network output, which diffusers
    reads as eps, or as v with prediction_type="v_prediction"), end to end in float32 with diffusers' own
    float32 schedule, from the same generator for x_T and then for the per-step noise. T = 20 keeps
    1/sqrt(abar) <= 1.11, so float32 rounding stays small (measured <= 3e-6)."""
    model, c = tiny_ddpm, tiny_ddpm.config
    prediction_type = {"eps": "epsilon", "v": "v_prediction"}[c.prediction]
    model.set_sampling(sampler=sampler, sample_steps=steps, clip_sample=clip_sample)
    out = model.sample(2, generator=torch.Generator().manual_seed(4))
    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, *model.image_shape, generator=g)  # [2,1,28,28] = x_T
    abar = diffusers.DDPMScheduler(num_train_timesteps=c.num_timesteps, beta_start=c.beta_start,
                                   beta_end=c.beta_end).alphas_cumprod  # [T] float32
    ts = diffusers_timesteps(c.num_timesteps, steps)
    if sampler == "ddim":
        ref = diffusers_ddim(model.ema_model, x, abar, ts, clip_sample, prediction_type=prediction_type)
    else:
        ref = diffusers_ddpm(model.ema_model, x, abar, ts, clip_sample, g, prediction_type=prediction_type)
    torch.testing.assert_close(out, ref.clamp(-1, 1), rtol=0, atol=ATOL)
