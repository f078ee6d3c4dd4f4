"""benchmarks/sampler_handover.py: its two ends are the built-in samplers, and the handover changes the samples."""
from __future__ import annotations

import dataclasses

import torch

from benchmarks.sampler_handover import handover_samples
from gmbench.registry import MODELS, ensure_loaded


def _model(**sampling):
    ensure_loaded()
    cls = MODELS.get("ddpm")
    torch.manual_seed(0)
    model = cls(dataclasses.replace(cls.tiny_config(), sample_steps=5, **sampling)).eval()
    with torch.no_grad():  # random EMA weights: a denoiser whose steps differ from one sampler to the other
        for p in model.ema.parameters():
            p.normal_(0, 0.2)
    return model


def test_handover_at_zero_is_ancestral_and_at_the_end_is_ddim():
    ancestral = _model(sampler="ddpm")
    ddim = _model(sampler="ddim", sampler_options={"clipped_eps": True})
    expected_a = ancestral.sample(6, generator=torch.Generator().manual_seed(0))  # [6,1,28,28]
    expected_d = ddim.sample(6, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(handover_samples(ancestral, 6, 5, k=0), expected_a, rtol=0, atol=1e-6)
    torch.testing.assert_close(handover_samples(ancestral, 6, 5, k=5), expected_d, rtol=0, atol=1e-6)
    middle = handover_samples(ancestral, 6, 5, k=2)
    assert (middle - expected_a).abs().max() > 1e-3 and (middle - expected_d).abs().max() > 1e-3
