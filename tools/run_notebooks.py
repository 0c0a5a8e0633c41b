"""Execute the tutorial notebooks in place, so that their committed outputs come from the current code.

    python tools/run_notebooks.py                      # every notebooks/*.ipynb
    python tools/run_notebooks.py notebooks/03_*.ipynb # some of them
    python tools/run_notebooks.py --out build/nb      # write executed copies elsewhere (headless run)

Each notebook runs top to bottom in a fresh kernel of this Python environment, from the
``notebooks/`` folder, with progress bars off (``TQDM_DISABLE=1``) - the same conditions under
which nbval checks them. Cell timing metadata is not recorded, so re-running unchanged code gives
an unchanged file. Prints the wall time of each notebook.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def execute(path: Path, out: Path, timeout: int = 600) -> float:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        record_timing=False,
    )
    started = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - started
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out)
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to run (default: notebooks/*.ipynb)")
    parser.add_argument("--out", type=Path, help="write executed copies to this folder instead of in place")
    args = parser.parse_args(argv)
    os.environ["TQDM_DISABLE"] = "1"
    os.environ.setdefault("PYTHONHASHSEED", "0")
    paths = args.notebooks or sorted(NOTEBOOKS.glob("*.ipynb"))
    if not paths:
        print("no notebooks found in", NOTEBOOKS, file=sys.stderr)
        return 1
    total = 0.0
    for path in paths:
        path = path.resolve()
        out = (args.out / path.name) if args.out else path
        elapsed = execute(path, out)
        total += elapsed
        print(f"{path.name:<45} {elapsed:6.1f} s  -> {out}")
    print(f"{len(paths)} notebooks in {total:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
