"""Reference (real-data) features and Gaussian statistics, cached on disk.

One file per key (dataset and the fingerprint of its data, split, extractor, weights sha256, preprocessing
version, N, dtype: a dataset file the user edits is never scored against stale statistics) in
``$GMBENCH_CACHE`` or ``~/.cache/gmbench/stats``, written atomically (after removing the temporaries
that killed writers left there, some MB each). The key is stored inside the
file too; a file whose key differs (or that cannot be read) is rebuilt. Features are stored in
float32, which is what the network produced, so reuse is lossless.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch import Tensor

from gmbench.data import dataset_fingerprint, load_dataset
from gmbench.errors import GmbenchError
from gmbench.io import atomic_path, remove_stale_temporaries
from gmbench.metrics.features import FeatureExtractor, extract
from gmbench.metrics.fid import gaussian_stats
from gmbench.metrics.sharding import everywhere
from gmbench.ranks import leads

ENV_CACHE = "GMBENCH_CACHE"
DTYPE_NAMES = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


@dataclass(frozen=True)
class StatsKey:
    dataset: str
    split: str
    extractor: str
    weights_sha256: str
    preprocessing_version: str
    n: int
    dtype: str
    data_fingerprint: str = ""  # the dataset's ``fingerprint``: "" for fixed data (mnist), a hash for files

    def filename(self) -> str:
        data = f"{self.dataset}-{self.data_fingerprint[:16]}" if self.data_fingerprint else self.dataset
        return (f"{data}-{self.split}-{self.extractor}-{self.weights_sha256[:16]}-"
                f"p{self.preprocessing_version}-n{self.n}-{self.dtype}.pt")


@dataclass(frozen=True)
class FeatureStats:
    """Features float64 [N,D], logits float64 [N,K] or None, and their Gaussian mu [D], sigma [D,D]."""

    features: Tensor
    logits: Tensor | None
    mu: Tensor
    sigma: Tensor

    @classmethod
    def of(cls, features: Tensor, logits: Tensor | None) -> "FeatureStats":
        return cls(features, logits, *gaussian_stats(features))


def cache_dir() -> Path:
    return Path(os.environ.get(ENV_CACHE) or Path.home() / ".cache" / "gmbench" / "stats").expanduser()


def reference_stats(extractor: FeatureExtractor, dataset: str, split: str = "test", n: int | None = None, *,
                    data_root: str | None = None, dtype: torch.dtype = torch.float32,
                    batch_size: int = 500, group: dist.ProcessGroup | None = None) -> tuple[FeatureStats, Path, bool]:
    """Stats of the first ``n`` images (all when None) of a dataset split: (stats, cache file, reused?).

    ``group``: its ranks extract a shard each (see ``extract``), unless every rank can read the cache; rank 0
    writes the file, and no rank returns before it is written.
    """
    images, _ = load_dataset(dataset, split, data_root)
    n = len(images) if n is None else n
    if not 2 <= n <= len(images):
        raise GmbenchError(f"Reference {dataset}:{split} has {len(images)} images; cannot use N={n} (need 2..{len(images)}).")
    key = StatsKey(dataset, split, extractor.name, extractor.weights_sha256, str(extractor.preprocessing_version),
                   n, DTYPE_NAMES.get(dtype, str(dtype)), dataset_fingerprint(dataset, data_root))
    path = cache_dir() / key.filename()
    cached = _read(path, key)
    if everywhere(cached is not None, group):
        return cached, path, True
    features, logits = extract(extractor, images[:n], batch_size, dtype, group)  # [n,D], [n,K] | None
    stats = FeatureStats.of(features, logits)
    if leads(group):
        remove_stale_temporaries(cache_dir())
        with atomic_path(path) as tmp:
            torch.save({"key": asdict(key), "features": features.float(),
                        "logits": None if logits is None else logits.float(),
                        "mu": stats.mu, "sigma": stats.sigma}, tmp)
    if group is not None:
        dist.barrier(group)
    return stats, path, False


def _read(path: Path, key: StatsKey) -> FeatureStats | None:
    """The cached stats when the file exists, loads and carries exactly ``key``; else None."""
    if not path.is_file():
        return None
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a damaged cache file is rebuilt, never trusted
        return None
    if not isinstance(blob, dict) or blob.get("key") != asdict(key):
        return None
    logits = blob["logits"]
    return FeatureStats(blob["features"].double(), None if logits is None else logits.double(), blob["mu"], blob["sigma"])
