"""``mean-l2``: the distance between the mean features of the generated and the real images.

FID's first term without its covariance term (||mu_fake - mu_real||_2), with the largest per-feature gap as a
spread-like extra output; it needs features only, so it runs on any extractor.
"""
from __future__ import annotations


def mean_l2(fake, real, ctx) -> dict[str, float]:
    """fake, real: FeatureStats (float64 features [N,D], mu [D]); ctx: MetricContext (unused: no randomness)."""
    gap = fake.mu - real.mu  # [D]
    return {"mean-l2": gap.norm().item(), "mean-l2_max": gap.abs().max().item()}
