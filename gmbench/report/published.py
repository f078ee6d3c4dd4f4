"""Published MNIST FID numbers (Inception track) shown beside measured ones, never mixed with them.

Sources (DESIGN.md, "Reference numbers"):
- Lucic, Kurach, Michalski, Gelly, Bousquet. "Are GANs Created Equal? A Large-Scale Study."
  NeurIPS 2018 (arXiv:1711.10337): FID of the best models, 10k generated vs 10k MNIST test images.
- Dai, Wipf. "Diagnosing and Enhancing VAE Models." ICLR 2019 (arXiv:1903.05789), Table 1.

Both use the TF Inception graph of 2015-12-05 (pool3), gmbench's "inception-v3-tf" extractor.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

LUCIC = "Lucic et al. 2018"
DAI_WIPF = "Dai & Wipf 2019"
EXTRACTOR = "inception-v3-tf"
DATASET = "mnist"
METRIC = "fid"


@dataclass(frozen=True)
class PublishedScore:
    """One published number; ``models`` are the gmbench built-ins that reimplement the published model
    (same loss and training objective), empty for a row shown as a reference only."""

    source: str
    model: str  # the model's name in the source
    mean: float
    std: float
    models: tuple[str, ...] = ()


PUBLISHED = [
    PublishedScore(LUCIC, "NS GAN", 6.8, 0.5, ("dcgan", "gan-mlp")),
    PublishedScore(LUCIC, "WGAN", 6.7, 0.4),
    PublishedScore(LUCIC, "LSGAN", 7.8, 0.6),
    PublishedScore(LUCIC, "DRAGAN", 7.6, 0.4),
    PublishedScore(LUCIC, "MM GAN", 9.8, 0.9),
    PublishedScore(LUCIC, "WGAN-GP", 20.3, 5.0, ("wgan-gp",)),
    PublishedScore(LUCIC, "BEGAN", 13.1, 1.0),
    PublishedScore(DAI_WIPF, "VAE (cross-entropy decoder)", 16.6, 0.4, ("vae",)),
    PublishedScore(DAI_WIPF, "2-Stage VAE", 12.6, 1.5, ("vae-2stage",)),
]
REFERENCE_ONLY = "none (reference only)"


def published_for(model: str) -> PublishedScore | None:
    return next((p for p in PUBLISHED if model in p.models), None)


def published_frame() -> pd.DataFrame:
    """All published rows, with the gmbench models they stand beside (or ``REFERENCE_ONLY``)."""
    return pd.DataFrame([
        {"source": p.source, "published_model": p.model, "dataset": DATASET, "metric": METRIC, "extractor": EXTRACTOR,
         "mean": p.mean, "std": p.std, "gmbench_models": ", ".join(p.models) or REFERENCE_ONLY}
        for p in PUBLISHED
    ])
