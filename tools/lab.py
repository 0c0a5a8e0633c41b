"""`make lab`: open JupyterLab on the tutorials, or, with no browser to open, run them headless.

    python tools/lab.py              # decide by whether a browser can be opened
    python tools/lab.py --headless   # always run headless

Headless: every notebook in ``notebooks/`` is executed in a fresh kernel (copies are written to
``build/notebooks/``; the committed notebooks are not touched) and, for each one, its run time and
the first backtest summary it printed are shown.
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import webbrowser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIRST = "notebooks/01_quickstart.ipynb"
OUT = ROOT / "build" / "notebooks"


def browser_available() -> bool:
    """True when a graphical browser can be opened: a display on Linux and one that webbrowser finds."""
    if os.environ.get("CI"):
        return False
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    try:
        webbrowser.get()
    except webbrowser.Error:
        return False
    return True


def first_summary(path: Path) -> tuple[str, str]:
    """The notebook's title (its first heading) and the first backtest summary it printed."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    title = path.stem
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.lstrip().startswith("#"):
            title = cell.source.lstrip().splitlines()[0].lstrip("# ").strip()
            break
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            text = output.get("text") or output.get("data", {}).get("text/plain", "")
            if isinstance(text, str) and text.startswith("Backtest "):
                lines = text.splitlines()
                block = [lines[0], *itertools.takewhile(lambda line: line.startswith("  "), lines[1:])]
                return title, "\n".join(block)
    return title, ""


def headless() -> int:
    sys.path.insert(0, str(ROOT / "tools"))
    import run_notebooks

    print(f"No browser here: running the tutorials headless (executed copies in {OUT.relative_to(ROOT)}/).")
    status = run_notebooks.main(["--out", str(OUT)])
    for path in sorted(OUT.glob("*.ipynb")):
        title, summary = first_summary(path)
        print(f"\n## {path.name}: {title}")
        if summary:
            print(summary)
    print(f"\nOpen them in JupyterLab with: {sys.executable} -m jupyter lab {FIRST}")
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--headless", action="store_true", help="run the tutorials without opening JupyterLab")
    args = parser.parse_args(argv)
    if args.headless or not browser_available():
        return headless()
    return subprocess.call([sys.executable, "-m", "jupyter", "lab", FIRST], cwd=ROOT)


if __name__ == "__main__":
    raise SystemExit(main())
