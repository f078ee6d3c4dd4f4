"""benchmarks/gan_vs_tutorial.py compares like with like: the tutorial loop and gan-mlp take the same step."""
from __future__ import annotations

import pytest
import torch
from tests.conftest import requires_mnist

from benchmarks import tutorial_gan_loop
from benchmarks.tutorial_gan_loop import TutorialGAN
from gmbench.bench.speed import SpeedSettings, apply_speed
from gmbench.registry import MODELS, ensure_loaded


@requires_mnist
@pytest.mark.parametrize("optimizer", ["default", "fused"])
def test_one_tutorial_step_and_one_gan_mlp_step_leave_the_same_weights(tmp_path, monkeypatch, optimizer):
    """From the same weights, real batch and noise, one step of the tutorial loop (BCE on a sigmoid, torch's
    Adam) and one of gan-mlp as the ratio script runs it (softplus on logits, one discriminator call on real
    and fake, generator backward into G only, fp32) give the same generator and discriminator."""
    monkeypatch.setattr(tutorial_gan_loop, "EXTRACTED", tmp_path)  # where it unpacks MNIST, not ~/.cache
    tutorial = TutorialGAN(batch_size=8)
    ensure_loaded()
    cls = MODELS.get("gan-mlp")
    model = cls(cls.Config())  # no batch norm, Adam(2e-4, 0.5/0.999): the paper's and the tutorial's
    apply_speed(model, SpeedSettings(optimizer=optimizer), torch.device("cpu"))
    pairs = [(tutorial.G, model.generator), (tutorial.D, model.discriminator)]
    with torch.no_grad():
        for theirs, ours in pairs:
            shapes = [p.shape for p in theirs.parameters()]
            assert shapes == [p.shape for p in ours.parameters()]  # the same networks, layer by layer
            for p, q in zip(theirs.parameters(), ours.parameters()):
                q.copy_(p)
    before = [p.detach().clone() for theirs, _ in pairs for p in theirs.parameters()]
    real = torch.rand(8, 1, 28, 28) * 2 - 1  # [8,1,28,28] in [-1,1]
    tutorial._next_batch = lambda: real.view(8, -1)  # [8,784]: the same batch, no loader randomness
    torch.manual_seed(1)
    tutorial.step()
    torch.manual_seed(1)  # both draw z first: the same noise
    model.train_step(real)
    after = [(p, q) for theirs, ours in pairs for p, q in zip(theirs.parameters(), ours.parameters())]
    for (p, q), p0 in zip(after, before):
        assert (p - p0).abs().max() > 1e-5  # the step moved this tensor (Adam's first step: about lr = 2e-4)
        torch.testing.assert_close(q, p, rtol=0, atol=1e-5)  # 5% of the step: where |grad| ~ Adam eps, rounding shows
