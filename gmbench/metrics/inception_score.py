"""Inception Score (Salimans et al. 2016) from classifier logits: exp(E_x KL(p(y|x) || p(y))) per split.

Splits are consecutive chunks (``torch.chunk``) and the std is the unbiased one, as torchmetrics'
``InceptionScore`` computes them (which additionally shuffles the samples first; the samples of a
set are i.i.d., so gmbench keeps their order to stay deterministic). Salimans et al. and
torch-fidelity report the population std (ddof=0) instead; the means agree.
"""
from __future__ import annotations

import torch
from torch import Tensor

from gmbench.errors import GmbenchError


def inception_score(logits: Tensor, splits: int = 10) -> tuple[float, float]:
    """IS mean and std over ``splits`` chunks of logits [N,K], float64."""
    if logits.dim() != 2 or len(logits) < splits or not torch.isfinite(logits).all():
        raise GmbenchError(f"Inception Score needs finite logits [N,K] with N >= {splits} splits; "
                           f"got shape {tuple(logits.shape)}.")
    log_p = logits.double().log_softmax(dim=1)  # [N,K]
    scores = []
    for chunk in log_p.chunk(splits, dim=0):  # [n,K]
        log_marginal = chunk.exp().mean(0).log()  # [K]
        kl = (chunk.exp() * (chunk - log_marginal)).sum(1).mean()  # mean KL(p(y|x) || p(y))
        scores.append(kl.exp())
    scores = torch.stack(scores)  # [splits]
    return scores.mean().item(), scores.std().item()
