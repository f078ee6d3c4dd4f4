"""Screenshot an HTML file with headless Chromium: the check that the self-contained report renders."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from gmbench.errors import GmbenchError

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


def find_chromium() -> str | None:
    return next((path for name in CHROMIUM_CANDIDATES if (path := shutil.which(name))), None)


def screenshot(html: Path, png: Path, width: int = 1280, height: int = 2000, timeout_s: float = 180.0) -> Path:
    """Render ``html`` offline in headless Chromium and write a ``width`` x ``height`` PNG of its top."""
    chromium = find_chromium()
    if chromium is None:
        raise GmbenchError("Chromium is not installed (Debian: apt-get install chromium); cannot take the screenshot.")
    png = Path(png).resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gmbench-chromium-") as profile:
        command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                   "--disable-background-networking", "--disable-component-update", "--disable-sync",
                   "--hide-scrollbars", f"--user-data-dir={profile}", f"--screenshot={png}",
                   f"--window-size={width},{height}", Path(html).resolve().as_uri()]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    if result.returncode != 0 or not png.is_file():
        raise GmbenchError(f"Chromium could not screenshot {html} (exit {result.returncode}): {result.stderr[-500:]}")
    return png
