"""Do gmbench's timers add up? The sum of Stopwatch intervals around each call of a synchronised loop against the
wall time of the whole loop.

    PYTHONPATH=. python benchmarks/timing_sanity.py [--device cuda] [--size 8192] [--calls 20]

On CUDA a Stopwatch reads CUDA events recorded on the stream, so its intervals cover the device's work only;
the host clock around the loop (synchronised before and after) also covers launch gaps. With calls long
against a launch (an 8192^2 fp32 matmul), the two agree to within 5% when the events are recorded and read
correctly; a timer that read the host clock without synchronising would report launch time only, far less.
On the CPU a Stopwatch is the host clock, so the check is of the bookkeeping. Prints one line and exits 1
when the difference is over 5%.
"""
from __future__ import annotations

import argparse
import sys
import time

import torch

from gmbench.bench.timing import Stopwatch, sync

TOLERANCE = 0.05


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", type=int, default=None, help="matmul size (default 8192 on CUDA, 512 on the CPU)")
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args()
    device = torch.device(args.device)
    n = args.size or (8192 if device.type == "cuda" else 512)
    a, b = (torch.randn(n, n, device=device) for _ in range(2))  # [n,n] fp32
    torch.backends.cuda.matmul.allow_tf32 = False  # full fp32, as gmbench runs by default
    for _ in range(3):
        a @ b  # warm-up: kernel selection and allocation out of the timed loop
    sync(device)
    watches = []
    start = time.perf_counter()
    for _ in range(args.calls):
        watches.append(Stopwatch(device).start())
        a @ b
        watches[-1].stop()
    sync(device)
    wall = time.perf_counter() - start
    timed = sum(w.seconds() for w in watches)
    gap = (wall - timed) / wall
    ok = abs(gap) <= TOLERANCE
    print(f"timing sanity on {device}: {args.calls} x {n}^2 matmul, stopwatch total {timed * 1e3:.1f} ms, "
          f"wall {wall * 1e3:.1f} ms, difference {100 * gap:+.2f}% ({'within' if ok else 'OVER'} "
          f"{100 * TOLERANCE:.0f}%), {2 * n ** 3 * args.calls / timed / 1e12:.2f} TFLOP/s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
