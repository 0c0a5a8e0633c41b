"""The README pictures come from a real run: the script that draws them works here, end to end.

Runs ``tools/make_readme_images.py`` into a scratch folder (real backtests, the package's own
figures and tables, headless Chromium; the tweak panel in a real JupyterLab) and checks that each
picture is a PNG of a sensible size, and that the README shows each committed picture.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NAMES = ["equity_drawdown", "order_timeline", "trailing_stops", "partial_fills", "tweak_panel", "sweep_heatmap",
         "walk_forward"]


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def test_readme_shows_each_committed_picture():
    readme = (ROOT / "README.md").read_text()
    for name in NAMES:
        assert f"docs/images/{name}.png" in readme
        width, height = png_size(ROOT / "docs" / "images" / f"{name}.png")
        assert width >= 600 and height >= 100


@pytest.mark.skipif(os.environ.get("RUSTYBT_NB_SKIP_BROWSER") == "1", reason="RUSTYBT_NB_SKIP_BROWSER=1")
def test_the_picture_script_draws_every_view_from_a_real_run(tmp_path):
    run = subprocess.run([sys.executable, str(ROOT / "tools" / "make_readme_images.py"), "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    for name in NAMES:
        path = tmp_path / f"{name}.png"
        width, height = png_size(path)
        assert width >= 600 and height >= 100, (name, width, height)
        assert path.stat().st_size > 5_000, f"{name}.png is nearly empty"
