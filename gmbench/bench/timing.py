"""Timers that are correct on CPU and CUDA, and robust summaries of repeated measurements.

On CUDA, kernels run asynchronously: a host clock read without synchronising measures launch
time, not work. `Stopwatch` records CUDA events on the current stream and synchronises only when
the interval is read; on CPU it uses `time.perf_counter`. Steady-state loops put one
stopwatch around a block of steps, so there is no host sync per step.
"""
from __future__ import annotations

import os
import resource
import statistics
import time
from dataclasses import dataclass

import torch


def sync(device: torch.device | str) -> None:
    """Wait for all queued work on ``device`` (a no-op on CPU)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Stopwatch:
    """Measures one interval of device work: ``start()``, ``stop()``, then ``seconds()``."""

    def __init__(self, device: torch.device | str):
        self.device = torch.device(device)
        self._cuda = self.device.type == "cuda"

    def start(self) -> "Stopwatch":
        if self._cuda:
            self._begin = torch.cuda.Event(enable_timing=True)
            self._end = torch.cuda.Event(enable_timing=True)
            self._begin.record()
        else:
            self._t0 = time.perf_counter()
        return self

    def stop(self) -> "Stopwatch":
        if self._cuda:
            self._end.record()
        else:
            self._t1 = time.perf_counter()
        return self

    def seconds(self) -> float:
        if self._cuda:
            self._end.synchronize()
            return self._begin.elapsed_time(self._end) / 1000.0
        return self._t1 - self._t0


@dataclass(frozen=True)
class Summary:
    """Median and interquartile range of repeated measurements (robust to outliers)."""

    median: float
    iqr: float
    n: int

    @classmethod
    def of(cls, values: list[float]) -> "Summary":
        if not values:
            raise ValueError("no measurements to summarise")
        if len(values) == 1:
            return cls(values[0], 0.0, 1)
        q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
        return cls(statistics.median(values), q3 - q1, len(values))


def time_repeated(fn, device: torch.device | str, warmup: int = 1, repeats: int = 5) -> Summary:
    """Seconds per call of ``fn()``: ``warmup`` untimed calls, then ``repeats`` timed ones."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        watch = Stopwatch(device).start()
        fn()
        times.append(watch.stop().seconds())
    return Summary.of(times)


class PeakMemory:
    """Peak memory of a phase: CUDA allocator peak on GPU, process peak RSS (VmHWM) on CPU.

    On Linux the RSS high-water mark is reset per phase through /proc/self/clear_refs, so each
    phase reports its own peak; elsewhere it falls back to the process-lifetime ru_maxrss.
    """

    def __init__(self, device: torch.device | str):
        self.device = torch.device(device)

    def reset(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            try:
                with open("/proc/self/clear_refs", "w") as fh:
                    fh.write("5")
            except OSError:
                pass

    def peak_mib(self) -> float:
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        try:
            with open("/proc/self/status") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024  # kB -> MiB
        except OSError:
            pass
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if os.uname().sysname == "Darwin" else peak / 1024  # bytes on macOS, kB elsewhere
