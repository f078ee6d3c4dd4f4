"""The timer's arithmetic (a known sleep is measured right), not a performance claim."""
import time

import pytest

from gmbench.bench.timing import PeakMemory, Stopwatch, Summary, time_repeated


def test_stopwatch_measures_a_known_sleep_within_10_percent():
    watch = Stopwatch("cpu").start()
    time.sleep(0.2)
    assert watch.stop().seconds() == pytest.approx(0.2, rel=0.10)


def test_time_repeated_excludes_warmup_and_reports_median():
    delays = iter([0.3, 0.05, 0.05, 0.05])  # the slow first call is warm-up
    summary = time_repeated(lambda: time.sleep(next(delays)), "cpu", warmup=1, repeats=3)
    assert summary.n == 3
    assert summary.median == pytest.approx(0.05, rel=0.10)


def test_time_repeated_defaults_to_one_warmup_and_five_timed_calls():
    calls = []
    assert time_repeated(lambda: calls.append(1), "cpu").n == 5 and len(calls) == 6


def test_summary_median_and_iqr_match_definitions():
    s = Summary.of([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (s.median, s.iqr, s.n) == (3.0, 2.0, 5)  # quartiles 2 and 4 (inclusive method)
    skewed = Summary.of([10.0, 1.0, 3.0, 2.0])  # mean 4; quartiles 1.75 and 4.75 (linear interpolation)
    assert (skewed.median, skewed.iqr, skewed.n) == (2.5, 3.0, 4)
    assert Summary.of([7.0]) == Summary(7.0, 0.0, 1)
    with pytest.raises(ValueError):
        Summary.of([])


def test_peak_memory_sees_a_large_allocation():
    import numpy as np

    mem = PeakMemory("cpu")
    mem.reset()
    before = mem.peak_mib()
    block = np.ones(256 * 2**20 // 8)  # 256 MiB touched
    assert mem.peak_mib() - before > 200
    del block
