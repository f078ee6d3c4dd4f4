"""TensorBoard event files of a job, written while it trains (``tensorboard --logdir results/runs``).

Layout: ``<run_dir>/tensorboard/<job_id>/events.out.tfevents.*`` with the scalars

    loss/<name>                the mean of each loss over a timed block
    train/images_per_s         the block's training throughput (warm-up block excluded)
    curve/<metric>             each curve point (e.g. curve/fid)

all at ``global_step`` = training steps, and with the event wall time set to the training start plus
the training seconds done (curve evaluations excluded), so TensorBoard's "relative" axis is training
time. Written through ``torch.utils.tensorboard`` when the ``tensorboard`` package is installed (the
``tensorboard`` extra); without it nothing is written and the suite log says so once.
"""
from __future__ import annotations

import shutil
import time
from functools import lru_cache
from pathlib import Path

TENSORBOARD_DIR = "tensorboard"


@lru_cache(maxsize=1)
def available() -> bool:
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401  (imports the tensorboard package)
    except ImportError:
        return False
    return True


class EventLog:
    """Scalars of one job; the folder and writer are made on the first scalar, so a job that never trains
    (or runs without tensorboard, ``folder=None``) leaves no files."""

    def __init__(self, folder: Path | None):
        self.folder = folder
        self._writer = None
        self.start_walltime = time.time()  # reset by ``start`` when training begins

    def start(self) -> None:
        self.start_walltime = time.time()

    def scalars(self, values: dict[str, float], step: int, train_seconds: float) -> None:
        if self.folder is None or not values:
            return
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.folder), flush_secs=10)
        walltime = self.start_walltime + train_seconds
        for tag, value in values.items():
            self._writer.add_scalar(tag, float(value), global_step=int(step), walltime=walltime)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()  # flushes
            self._writer = None


def job_event_log(run_dir: Path, job_id: str, enabled: bool) -> EventLog:
    """The job's event log; a job run again (``--resume`` after a failure) starts from an empty folder."""
    folder = run_dir / TENSORBOARD_DIR / job_id
    if folder.exists():
        shutil.rmtree(folder)
    return EventLog(folder if enabled else None)
