"""One job: build a model, train it on its budget, time it, sample, score, save.

The only module where models and metrics meet. Every output of a job is written atomically;
``jobs/<job_id>.json`` is written last and marks the job finished (``done`` / ``diverged``)
or ``failed`` with its error.
"""
from __future__ import annotations

import math
import random
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torchvision.utils import save_image

from gmbench.bench.suite import Job, MetricSettings, TimingSettings, Variant
from gmbench.bench.timing import PeakMemory, Stopwatch, Summary, sync
from gmbench.config import config_to_dict
from gmbench.data import DeviceBatches, load_dataset, to_float, to_uint8
from gmbench.errors import GmbenchError
from gmbench.io import atomic_path, write_json
from gmbench.models.base import GenerativeModel
from gmbench.registry import DATASETS, MODELS


MAX_EXTRA_SAMPLE_BATCHES = 100


@dataclass
class JobContext:
    """What the suite runner hands to each job."""

    run_id: str
    run_dir: Path
    device: torch.device
    metrics: MetricSettings
    timing: TimingSettings
    data_root: str | None = None
    quiet: bool = False


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def model_dtype(model: GenerativeModel) -> str:
    """The training/sampling precision a model's config opts into (``bf16 = true``), else fp32."""
    return "bf16" if getattr(model.config, "bf16", False) else "fp32"


class JobRecorder:
    """Builds the tidy record rows of one job."""

    def __init__(self, job: Job, ctx: JobContext, family: str):
        self.base = dict(run_id=ctx.run_id, suite=job.suite, model=job.model.name, family=family, dataset=job.dataset,
                         seed=job.seed, device=str(ctx.device), dtype="fp32", extractor="", extractor_sha256="",
                         n_samples=None, variant="", status="done")
        self.rows: list[dict] = []

    def add(self, metric: str, value: float, unit: str, higher_is_better: bool | None, **extra) -> None:
        self.rows.append({**self.base, **extra, "metric": metric, "value": float(value), "unit": unit,
                          "higher_is_better": higher_is_better})

    def set_status(self, status: str) -> None:
        for row in self.rows:
            row["status"] = status


def train(model: GenerativeModel, job: Job, ctx: JobContext, rec: JobRecorder, train_images: torch.Tensor) -> bool:
    """Train on the job's budget in timed blocks; returns False if a loss went non-finite."""
    budget, timing, device = job.model.budget, ctx.timing, ctx.device
    batches = DeviceBatches(train_images, budget.batch_size, device, seed=job.seed)
    max_steps = budget.steps if budget.steps is not None else math.inf
    memory = PeakMemory(device)
    memory.reset()
    steps, block_times, block_sizes, finite = 0, [], [], True
    model.train()
    started = time.perf_counter()
    progress = _progress(ctx, total=None if max_steps == math.inf else int(max_steps), desc=f"train {job.job_id}")
    while steps < max_steps and (budget.seconds is None or time.perf_counter() - started < budget.seconds):
        first = steps == 0 and timing.warmup_steps > 0
        size = int(min(timing.warmup_steps if first else timing.block_steps, max_steps - steps))
        watch = Stopwatch(device).start()
        losses = [model.train_step(batches.next()) for _ in range(size)]
        watch.stop()
        seconds = watch.seconds()  # the block's one host sync
        if not first:
            block_times.append(seconds)
            block_sizes.append(size)
        steps += size
        stacked = {k: torch.stack([step[k] for step in losses]) for k in losses[-1]}  # name -> [size]
        if not all(bool(torch.isfinite(v).all()) for v in stacked.values()):
            finite = False
            break
        progress.update(size)
        progress.set_postfix({k: f"{v[-1].item():.3g}" for k, v in stacked.items()})
    sync(device)
    progress.close()
    rec.add("train_time", time.perf_counter() - started, "s", None)
    rec.add("train_steps", steps, "", None)
    rec.add("peak_memory", memory.peak_mib(), "MiB", False)
    if block_times:
        per_step = Summary.of([t / n for t, n in zip(block_times, block_sizes)])
        throughput = Summary.of([budget.batch_size * n / t for t, n in zip(block_times, block_sizes)])
        rec.add("train_throughput", throughput.median, "images/s", True)
        rec.add("step_time", per_step.median * 1000, "ms", False)
        rec.add("step_time_iqr", per_step.iqr * 1000, "ms", None)
    return finite


def sample_variant(model: GenerativeModel, job: Job, ctx: JobContext, rec: JobRecorder, variant: Variant) -> torch.Tensor:
    """Draw the variant's samples in timed batches; returns uint8 [n,C,H,W] on the CPU."""
    model.set_sampling(**variant.sampling)
    n = variant.n_samples or ctx.metrics.n_samples
    batch = min(ctx.timing.sample_batch, n)
    generator = torch.Generator(device=ctx.device).manual_seed(job.seed)
    n_batches = math.ceil(n / batch)  # the first batch is warm-up when there are several
    memory = PeakMemory(ctx.device)
    memory.reset()
    model.eval()
    chunks, times = [], []
    started = time.perf_counter()
    for i in _progress(ctx, range(n_batches), desc=f"sample {job.job_id} {variant.name}".rstrip()):
        watch = Stopwatch(ctx.device).start()
        x = model.sample(batch, generator=generator)  # [B,C,H,W] float in [-1,1]
        watch.stop()
        if len(chunks) * batch < n:
            chunks.append(to_uint8(x))
        if i > 0 or n_batches == 1:
            times.append(watch.seconds())
    while sum(times) < ctx.timing.sample_min_seconds and len(times) < MAX_EXTRA_SAMPLE_BATCHES:
        watch = Stopwatch(ctx.device).start()  # fast samplers: more timed batches, not kept
        model.sample(batch, generator=generator)
        times.append(watch.stop().seconds())
    sync(ctx.device)
    model.train()
    v = dict(variant=variant.name)
    rec.add("sample_time", time.perf_counter() - started, "s", None, **v)
    rec.add("sample_throughput", Summary.of([batch / t for t in times]).median, "images/s", True, **v)
    rec.add("sample_batch", batch, "images", None, **v)
    rec.add("nfe", model.nfe, "", None, **v)
    rec.add("sample_peak_memory", memory.peak_mib(), "MiB", False, **v)
    return torch.cat(chunks)[:n].cpu()  # [n,C,H,W] uint8


def score(samples: torch.Tensor, job: Job, ctx: JobContext, rec: JobRecorder, variant: Variant) -> None:
    from gmbench.metrics import evaluate

    m = ctx.metrics
    names = m.names if variant.metrics is None else variant.metrics
    for extractor in m.extractors if names else ():
        for s in evaluate(samples, reference=f"{job.dataset}:{m.reference}", extractor=extractor, metrics=names,
                          device=ctx.device, dtype=m.dtype, data_root=ctx.data_root, seed=job.seed):
            rec.add(s.metric, s.value, s.unit, s.higher_is_better, variant=variant.name, extractor=s.extractor,
                    extractor_sha256=s.extractor_sha256, n_samples=s.n_samples, dtype=m.dtype)


def save_checkpoint(model: GenerativeModel, job: Job, ctx: JobContext) -> None:
    stem = ctx.run_dir / "checkpoints" / job.job_id
    with atomic_path(stem.with_suffix(".pt")) as tmp:
        torch.save(model.state_dict(), tmp)
    write_json(stem.with_suffix(".json"), {"model": job.model.name, "config": config_to_dict(model.config),
                                           "image_shape": list(model.image_shape)})


def save_grid(samples: torch.Tensor, job: Job, ctx: JobContext, variant: Variant) -> None:
    name = "-".join(p for p in (job.model.name, variant.name, job.dataset, f"s{job.seed}") if p)
    with atomic_path(ctx.run_dir / "samples" / f"{name}.png") as tmp:
        save_image(samples[:64].float() / 255.0, tmp, nrow=8, padding=2, format="png")


def build_model(job: Job, device: torch.device) -> GenerativeModel:
    from gmbench.config import apply_overrides

    cls = MODELS.get(job.model.name)
    config = apply_overrides(cls.Config(), job.model.overrides, where=f"model {job.model.name}")
    return cls(config, image_shape=DATASETS.get(job.dataset).image_shape).to(device)


def run_job(job: Job, ctx: JobContext) -> dict:
    """Run one job; returns its job record (status, error, rows). Never raises for model errors."""
    started = time.time()
    rec = JobRecorder(job, ctx, MODELS.get(job.model.name).family)
    status, error = "done", None
    try:
        seed_everything(job.seed)
        model = build_model(job, ctx.device)
        rec.base["dtype"] = model_dtype(model)
        rec.add("params", sum(p.numel() for p in model.parameters() if p.requires_grad), "", None)  # EMA copies excluded
        train_images, _ = load_dataset(job.dataset, "train", ctx.data_root)
        if type(model).fit_data is not GenerativeModel.fit_data:
            model.fit_data(to_float(train_images.to(ctx.device)))
        if model.trainable and not train(model, job, ctx, rec, train_images):
            status = "diverged"
        else:
            save_checkpoint(model, job, ctx)
            for variant in (Variant("", {}),) + job.model.variants:  # the configured sampler, then the extras
                samples = sample_variant(model, job, ctx, rec, variant)
                save_grid(samples, job, ctx, variant)
                score(samples, job, ctx, rec, variant)
    except GmbenchError:
        raise  # a user mistake (e.g. missing data) stops the suite with its message
    except Exception as exc:  # a model's bug fails its job only; the suite goes on
        status, error = "failed", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
    rec.add("job_time", time.time() - started, "s", None)
    rec.set_status(status)
    return {"job_id": job.job_id, "model": job.model.name, "dataset": job.dataset, "seed": job.seed,
            "status": status, "error": error, "overrides": job.model.overrides, "started": started,
            "finished": time.time(), "rows": rec.rows}


def _progress(ctx: JobContext, iterable=None, total=None, desc=""):
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, disable=ctx.quiet, leave=False, dynamic_ncols=True)
