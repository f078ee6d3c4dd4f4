"""Render a run's HTML report and screenshot it with headless Chromium.

    python -m benchmarks.screenshot_report results/reference/quick-cpu \
        --out results/reference/quick-cpu/report-screenshot.png

The report goes to ``<run>/report/report.html`` (or --report-dir); the PNG shows the top
``--height`` pixels of the page at ``--width``.
"""
from __future__ import annotations

import argparse
import sys

from gmbench.errors import GmbenchError
from gmbench.report.render import write_report
from gmbench.report.runs import load_run
from gmbench.report.screenshot import screenshot


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="run folder")
    parser.add_argument("--out", required=True, help="PNG to write")
    parser.add_argument("--report-dir", help="where to write the HTML report (default: <run>/report)")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=2400)
    args = parser.parse_args(argv)
    try:
        [html] = write_report([load_run(args.run)], ["html"], args.report_dir)
        print(screenshot(html, args.out, args.width, args.height))
    except GmbenchError as exc:
        print(f"screenshot_report: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
