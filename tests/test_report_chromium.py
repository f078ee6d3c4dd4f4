"""The self-contained HTML report renders in headless Chromium (skipped where Chromium is missing)."""
from __future__ import annotations

import shutil

import matplotlib.image
import pytest
from tests.report_runs import make_run

from gmbench.report.render import write_report
from gmbench.report.runs import load_run
from gmbench.report.screenshot import find_chromium, screenshot

pytestmark = pytest.mark.skipif(find_chromium() is None, reason="Chromium not installed (apt-get install chromium)")


def test_html_report_renders_offline_in_chromium(tmp_path):
    run = make_run(tmp_path / "runs", seeds=3, samples=True)
    [html] = write_report([load_run(run)], ["html"], tmp_path / "report")
    shutil.rmtree(tmp_path / "report" / "figures")  # the page must not need the files beside it
    png = screenshot(html, tmp_path / "shot.png", width=1000, height=1400)
    pixels = matplotlib.image.imread(png)  # [H,W,C] floats in [0,1]
    assert pixels.shape[:2] == (1400, 1000)
    assert pixels[..., :3].std() > 0.05  # text, tables and figures, not a blank page
