"""One job: build a model, train it on its budget, time it, sample, score, save.

The only module where models and metrics meet. Every output of a job is written atomically;
``jobs/<job_id>.json`` is written last and marks the job finished (``done`` / ``diverged``)
or ``failed`` with its error.
"""
from __future__ import annotations

import math
import random
import socket
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torchvision.utils import save_image

from gmbench.bench.checkpoint import DEFAULT_EVERY as DEFAULT_CHECKPOINT_EVERY, TrainingCheckpoint
from gmbench.bench.data_parallel import Alone
from gmbench.bench.curves import NOT_REACHED, CurvePoint, CurveSchedule, curve_id, time_to_id, time_to_targets
from gmbench.bench.flops import mfu, sample_flops_per_image, train_flops_per_image
from gmbench.bench.lr_schedule import lr_factor, set_lr_factor
from gmbench.bench.rng import preserved_rng
from gmbench.bench.speed import apply_speed, speed_label
from gmbench.bench.suite import Budget, Job, MetricSettings, TimingSettings, Variant
from gmbench.bench.tensorboard_log import EventLog, job_event_log
from gmbench.bench.timing import PeakMemory, Stopwatch, Summary, sync
from gmbench.config import config_to_dict
from gmbench.data import DeviceBatches, load_dataset, to_float, to_uint8
from gmbench.device import uses_bf16
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
    tensorboard: bool = False  # write event files under <run_dir>/tensorboard/<job_id>/
    checkpoint_every: float = DEFAULT_CHECKPOINT_EVERY  # seconds between training checkpoints; 0: none
    peak_flops: dict[str, float] = field(default_factory=dict)  # dtype -> the device's measured FLOP/s ({}: no MFU)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def model_dtype(config, device: torch.device) -> str:
    """The training/sampling precision a model config gives on ``device`` (``bf16 = true``, or "auto" where the
    device computes in bf16 natively), else fp32."""
    return "bf16" if uses_bf16(getattr(config, "bf16", False), device) else "fp32"


class JobRecorder:
    """Builds the tidy record rows of one job."""

    def __init__(self, job: Job, ctx: JobContext, family: str, world_size: int = 1):
        self.base = dict(run_id=ctx.run_id, suite=job.suite, model=job.model.name, family=family, dataset=job.dataset,
                         seed=job.seed, device=str(ctx.device), host=socket.gethostname(), world_size=world_size,
                         dtype="fp32", extractor="", extractor_sha256="", n_samples=None, variant="", status="done",
                         train_steps=None, train_time=None, speed="")
        self.rows: list[dict] = []
        self.resumed_from_step: int | None = None  # set when training continued from a training checkpoint

    def add(self, metric: str, value: float, unit: str, higher_is_better: bool | None, **extra) -> None:
        self.rows.append({**self.base, **extra, "metric": metric, "value": float(value), "unit": unit,
                          "higher_is_better": higher_is_better})

    def set_status(self, status: str) -> None:
        for row in self.rows:
            row["status"] = status

    def add_utilisation(self, phase: str, flops_per_image: float, peak_flops: dict[str, float], **extra) -> None:
        """``<phase>_flops`` ("train", "sample"), and ``<phase>_mfu`` from the ``<phase>_throughput`` row of the
        same variant where there is one and the peak of the job's dtype was measured."""
        self.add(f"{phase}_flops", flops_per_image, "FLOP/image", None, **extra)
        devices = self.base["world_size"] if phase == "train" else 1  # data-parallel training uses every rank's
        peak = peak_flops.get(self.base["dtype"], 0.0) * devices
        variant = extra.get("variant", "")
        timed = [r["value"] for r in self.rows if r["metric"] == f"{phase}_throughput" and r["variant"] == variant]
        if timed and peak:
            self.add(f"{phase}_mfu", mfu(timed[-1], flops_per_image, peak), "%", True, **extra)


def train(model: GenerativeModel, job: Job, ctx: JobContext, rec: JobRecorder, train_images: torch.Tensor,
          events: EventLog | None = None, team: Alone = Alone()) -> bool:
    """Train on the job's budget in timed blocks; returns False if a loss went non-finite.

    With the model's ``curve`` on, a small quality score is taken between blocks when due and once at
    the end (``curve_point``), outside the timed blocks and outside the training time: the budget's
    ``seconds``, ``train_time`` and each point's time count training only. Training checkpoints
    (``checkpoint.py``) are written between blocks too, off the clock; a job that finds one continues
    from it (``rec.resumed_from_step``), and its first block there is a warm-up, not timed.

    ``team``: the processes training the job together (data_parallel.py); they end training at the same
    block, and only the leader scores curve points and writes checkpoints. The budget's batch_size is the
    global batch, so the leader's throughput is the team's.
    """
    budget, timing, device, curve = job.model.budget, ctx.timing, ctx.device, job.model.curve
    events = events or EventLog(None)
    batches = DeviceBatches(train_images, budget.batch_size, device, seed=job.seed, rows=(team.rank, team.world))
    max_steps = budget.steps if budget.steps is not None else math.inf
    memory = PeakMemory(device)
    checkpoint = TrainingCheckpoint(ctx.run_dir, job, model, device, ctx.checkpoint_every)
    steps, block_times, block_sizes, finite = 0, [], [], True
    schedule, points, eval_seconds, paused, peak = CurveSchedule(curve), [], 0.0, 0.0, 0.0
    untimed_at, resumed_seconds, first_row = (0 if timing.warmup_steps > 0 else None), 0.0, len(rec.rows)
    warmup = None  # (seconds, steps) of the untimed block: compilation happens there (speed compile)
    saved = checkpoint.load(model, batches)
    if saved is not None:
        t = saved["timing"]
        steps, block_times, block_sizes, eval_seconds, peak = (t["steps"], t["block_times"], t["block_sizes"],
                                                               t["eval_seconds"], t["peak"])
        points = [CurvePoint(*p) for p in t["points"]]
        schedule.next_steps, schedule.next_seconds = t["next_point"]
        untimed_at, resumed_seconds, rec.resumed_from_step = steps, t["train_seconds"], steps
        rec.rows.extend(saved["rows"])
    memory.reset()
    model.train()
    out_of_time = budget.seconds is not None and resumed_seconds >= budget.seconds
    started = time.perf_counter() - resumed_seconds
    events.start()

    def training_seconds() -> float:
        return time.perf_counter() - started - paused

    @contextmanager
    def off_the_clock():
        """Neither the time nor the memory of what runs inside is training's; yields the training time."""
        nonlocal paused, peak
        at = training_seconds()
        peak = max(peak, memory.peak_mib())  # training's peak so far
        yield at
        paused += training_seconds() - at
        memory.reset()

    def score_point() -> None:
        nonlocal eval_seconds
        before = paused
        with off_the_clock() as at:
            points.append(curve_point(model, job, ctx, rec, steps, at, events))
            schedule.scored(steps, at)
        eval_seconds += paused - before

    def save_checkpoint_now() -> None:
        with off_the_clock() as at:
            checkpoint.save(model, batches, rows=rec.rows[first_row:], timing={
                "steps": steps, "block_times": block_times, "block_sizes": block_sizes, "train_seconds": at,
                "eval_seconds": eval_seconds, "peak": peak, "points": [[p.steps, p.time, p.value] for p in points],
                "next_point": [schedule.next_steps, schedule.next_seconds]})

    progress = _progress(ctx, total=None if max_steps == math.inf else int(max_steps), desc=f"train {job.job_id}")
    progress.update(steps)
    while steps < max_steps and not out_of_time:
        first = steps == 0 and timing.warmup_steps > 0
        size = int(min(timing.warmup_steps if first else timing.block_steps, max_steps - steps))
        watch = Stopwatch(device).start()
        losses = [scheduled_step(model, batches.next(), budget, steps + i) for i in range(size)]
        watch.stop()
        seconds = watch.seconds()  # the block's one host sync
        if steps != untimed_at:
            block_times.append(seconds)
            block_sizes.append(size)
        else:
            warmup = (seconds, size)
        steps += size
        stacked = {k: torch.stack([step[k] for step in losses]) for k in losses[-1]}  # name -> [size]
        out_of_time, finite = team.decide(budget.seconds is not None and training_seconds() >= budget.seconds,
                                          all(bool(torch.isfinite(v).all()) for v in stacked.values()))
        if not finite:
            break
        progress.update(size)
        progress.set_postfix({k: f"{v[-1].item():.3g}" for k, v in stacked.items()})
        if events.folder is not None:
            scalars = {f"loss/{k}": v.float().mean().item() for k, v in stacked.items()}
            if not first:
                scalars["train/images_per_s"] = budget.batch_size * size / seconds
            events.scalars(scalars, steps, training_seconds())
        if team.leads and schedule.due(steps, training_seconds()):
            score_point()
        if team.leads and steps < max_steps and checkpoint.due():
            save_checkpoint_now()
    if team.leads and finite and curve.enabled and steps > 0 and (not points or points[-1].steps != steps):
        score_point()  # the end of training is always on the curve
    sync(device)
    progress.close()
    rec.add("train_time", training_seconds(), "s", None)
    rec.add("train_steps", steps, "", None)
    rec.add("peak_memory", max(peak, memory.peak_mib()), "MiB", False)
    if block_times:
        per_step = Summary.of([t / n for t, n in zip(block_times, block_sizes)])
        throughput = Summary.of([budget.batch_size * n / t for t, n in zip(block_times, block_sizes)])
        rec.add("train_throughput", throughput.median, "images/s", True)
        rec.add("step_time", per_step.median * 1000, "ms", False)
        rec.add("step_time_iqr", per_step.iqr * 1000, "ms", None)
        if job.model.speed.compiles and warmup:  # the warm-up block's time beyond its steps' share
            rec.add("compile_time", max(0.0, warmup[0] - warmup[1] * per_step.median), "s", None)
    if curve.enabled and points:
        rec.add("curve_time", eval_seconds, "s", None)
        if finite:
            record_time_to_targets(points, job, ctx, rec)
    return finite


def scheduled_step(model: GenerativeModel, x: torch.Tensor, budget: Budget, step: int) -> dict[str, torch.Tensor]:
    """``model.train_step(x)`` as update ``step`` (0-based) of the budget: first every optimiser's lr is set by
    the budget's lr_schedule, a pure function of ``step`` (so a resumed run continues on the same lrs); "constant"
    without lr_warmup leaves the optimisers alone."""
    if budget.lr_schedule != "constant" or budget.lr_warmup:
        set_lr_factor([opt for _, opt in model._optimizers()],
                      lr_factor(budget.lr_schedule, step, budget.steps, budget.lr_warmup))
    return model.train_step(x)


def curve_point(model: GenerativeModel, job: Job, ctx: JobContext, rec: JobRecorder, steps: int,
                train_seconds: float, events: EventLog) -> CurvePoint:
    """Score ``curve.n_samples`` images of the model's configured sampler, in eval mode, as ``curve_<metric>``
    rows at (``steps``, ``train_seconds``).

    The noise comes from a generator of its own, seeded with the job's seed afresh at every point, so
    every point scores the same noise and the curve moves with the model, not with the draw. The global
    RNG states are restored afterwards (building the extractor draws its initial weights from them), so
    the training streams, and thus the trained weights, are the same with and without curves.
    """
    with preserved_rng(ctx.device):
        return _curve_point(model, job, ctx, rec, steps, train_seconds, events)


def _curve_point(model: GenerativeModel, job: Job, ctx: JobContext, rec: JobRecorder, steps: int,
                 train_seconds: float, events: EventLog) -> CurvePoint:
    from gmbench.metrics import evaluate

    c = job.model.curve
    generator = torch.Generator(device=ctx.device).manual_seed(job.seed)
    batch = min(ctx.timing.sample_batch, c.n_samples)
    was_training = model.training
    model.eval()
    chunks, drawn = [], 0
    with torch.no_grad():
        while drawn < c.n_samples:
            chunks.append(to_uint8(model.sample(min(batch, c.n_samples - drawn), generator=generator)))  # [b,C,H,W]
            drawn += len(chunks[-1])
    model.train(was_training)
    samples = torch.cat(chunks).cpu()  # [n,C,H,W] uint8
    scores = evaluate(samples, reference=f"{job.dataset}:{ctx.metrics.reference}", extractor=c.extractor,
                      metrics=[c.metric], device=ctx.device, dtype=ctx.metrics.dtype, data_root=ctx.data_root,
                      seed=job.seed, extractor_options=ctx.metrics.options_of(c.extractor))
    for s in scores:
        rec.add(curve_id(s.metric), s.value, s.unit, s.higher_is_better, extractor=s.extractor,
                extractor_sha256=s.extractor_sha256, n_samples=s.n_samples, dtype=ctx.metrics.dtype,
                train_steps=steps, train_time=train_seconds)
    main = next(s for s in scores if s.metric == c.metric)
    events.scalars({f"curve/{c.metric}": main.value}, steps, train_seconds)
    return CurvePoint(steps, train_seconds, main.value)


def record_time_to_targets(points: list[CurvePoint], job: Job, ctx: JobContext, rec: JobRecorder) -> None:
    """One ``time_to_<metric>@X`` row per target: the training time of the first point reaching X, or
    ``NOT_REACHED`` (+inf, with empty train_steps and train_time) when none did."""
    from gmbench.registry import METRICS

    c = job.model.curve
    last = next(r for r in reversed(rec.rows) if r["metric"] == curve_id(c.metric))  # its provenance
    provenance = {k: last[k] for k in ("extractor", "extractor_sha256", "n_samples", "dtype")}
    for target, hit in time_to_targets(points, c.targets, METRICS.get(c.metric).higher_is_better):
        rec.add(time_to_id(c.metric, target), hit.time if hit else NOT_REACHED, "s", False, **provenance,
                train_steps=hit.steps if hit else None, train_time=hit.time if hit else None)


def sample_variant(model: GenerativeModel, job: Job, ctx: JobContext, rec: JobRecorder, variant: Variant) -> torch.Tensor:
    """Draw the variant's samples in timed batches; returns uint8 [n,C,H,W] on the CPU."""
    model.set_sampling(**variant.sampling)
    flops = sample_flops_per_image(model)  # on a copy, before the phase's clock and memory peak
    n = variant.n_samples or ctx.metrics.n_samples
    batch = min(ctx.timing.sample_batch, n)
    generator = torch.Generator(device=ctx.device).manual_seed(job.seed)
    n_batches = math.ceil(n / batch)  # the first batch is warm-up when there are several
    memory = PeakMemory(ctx.device)
    memory.reset()
    model.eval()
    chunks, times = [], []
    started = time.perf_counter()
    if job.model.speed.compiles and n_batches == 1:  # the one batch is timed: compile for it beforehand
        model.sample(batch, generator=torch.Generator(device=ctx.device).manual_seed(job.seed))
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
    rec.add_utilisation("sample", flops, ctx.peak_flops, **v)
    return torch.cat(chunks)[:n].cpu()  # [n,C,H,W] uint8


def score(samples: torch.Tensor, job: Job, ctx: JobContext, rec: JobRecorder, variant: Variant,
          team: Alone = Alone()) -> None:
    """Score the variant's uint8 samples [n,C,H,W] with every extractor of the suite; the team's ranks
    extract a share of the features each."""
    from gmbench.metrics import evaluate

    m = ctx.metrics
    names = m.names if variant.metrics is None else variant.metrics
    for extractor in m.extractors if names else ():
        for s in evaluate(samples, reference=f"{job.dataset}:{m.reference}", extractor=extractor, metrics=names,
                          device=ctx.device, dtype=m.dtype, data_root=ctx.data_root, seed=job.seed,
                          extractor_options=m.options_of(extractor), group=team.group):
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
    return MODELS.get(job.model.name)(job.config(), image_shape=DATASETS.get(job.dataset).image_shape).to(device)


def run_job(job: Job, ctx: JobContext, team: Alone = Alone()) -> dict:
    """Run one job; returns its job record (status, error, rows). Never raises for model errors.

    ``team``: the processes running it together (data_parallel.py); the leader's record is the job's.
    """
    started = time.time()
    rec = JobRecorder(job, ctx, MODELS.get(job.model.name).family, team.world)
    status, error = "done", None
    events = job_event_log(ctx.run_dir, job.job_id, ctx.tensorboard and team.leads)
    try:
        seed_everything(job.seed)
        model = build_model(job, ctx.device)
        apply_speed(model, job.model.speed, ctx.device)
        rec.base["dtype"], rec.base["speed"] = model_dtype(model.config, ctx.device), speed_label(model, job.model.speed)
        rec.add("params", sum(p.numel() for p in model.parameters() if p.requires_grad), "", None)  # EMA copies excluded
        train_images, _ = load_dataset(job.dataset, "train", ctx.data_root)
        if type(model).fit_data is not GenerativeModel.fit_data:
            model.fit_data(to_float(train_images.to(ctx.device)))
        if model.trainable:  # counted on a copy of the model, before training and off its clock
            first = to_float(train_images[:job.model.budget.batch_size].to(ctx.device))  # [B,C,H,W]
            train_flops = train_flops_per_image(model, first)
            team.prepare(model)
        if model.trainable and not train(model, job, ctx, rec, train_images, events, team):
            status = "diverged"
        else:
            if model.trainable:
                rec.add_utilisation("train", train_flops, ctx.peak_flops)
            if team.leads:
                save_checkpoint(model, job, ctx)
            for variant in (Variant("", {}),) + job.model.variants:  # the configured sampler, then the extras
                n = variant.n_samples or ctx.metrics.n_samples
                samples = team.share(sample_variant(model, job, ctx, rec, variant) if team.leads else None,
                                     (n, *model.image_shape))  # [n,C,H,W] uint8
                if team.leads:
                    save_grid(samples, job, ctx, variant)
                score(samples, job, ctx, rec, variant, team)
    except GmbenchError:
        raise  # a user mistake (e.g. missing data) stops the suite with its message
    except Exception as exc:  # a model's bug fails its job only; the suite goes on
        status, error = "failed", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
    finally:
        events.close()
    rec.add("job_time", time.time() - started, "s", None)
    rec.set_status(status)
    return {"job_id": job.job_id, "model": job.model.name, "dataset": job.dataset, "seed": job.seed,
            "status": status, "error": error, "overrides": job.model.overrides,
            "resumed_from_step": rec.resumed_from_step, "started": started,
            "finished": time.time(), "rows": rec.rows}


def _progress(ctx: JobContext, iterable=None, total=None, desc=""):
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, disable=ctx.quiet, leave=False, dynamic_ncols=True)
