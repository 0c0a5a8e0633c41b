"""Execute the tutorial notebooks in place, so that their committed outputs come from the current code.

    python tools/run_notebooks.py                      # every notebooks/*.ipynb
    python tools/run_notebooks.py notebooks/03_*.ipynb # some of them
    python tools/run_notebooks.py --out build/nb      # write executed copies elsewhere (headless run)

Each notebook runs top to bottom in a fresh kernel of this Python environment, from the
``notebooks/`` folder, with progress bars off (``TQDM_DISABLE=1``) - the same conditions under
which nbval checks them. Cell timing metadata is not recorded, so re-running unchanged code gives
an unchanged file. Prints the wall time of each notebook.

Live widgets are not saved: the ``application/vnd.jupyter.widget-view+json`` entries of the outputs
are removed (a display of a tweak panel keeps its ``text/plain`` and ``text/html`` fallback) and no
widget state is stored, because a saved widget view whose model is gone shows "Error displaying
widget: model not found" when the notebook is opened without running it (on Binder, on GitHub).
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
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def strip_widget_views(nb) -> int:
    """Remove the widget views from ``nb``'s outputs (an output left with no data is dropped) and
    its saved widget state; return how many views were removed."""
    removed = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for output in cell.get("outputs", []):
            data = output.get("data")
            if data is not None and WIDGET_VIEW in data:
                del data[WIDGET_VIEW]
                output.get("metadata", {}).pop(WIDGET_VIEW, None)
                removed += 1
                if not data:
                    continue
            kept.append(output)
        cell.outputs = kept
    nb.metadata.pop("widgets", None)
    return removed


def quiet_output_widget() -> type:
    """nbclient's stand-in for an ``ipywidgets.Output`` (it collects what a cell prints inside
    ``with output:``) without sending the collected outputs back to the kernel.

    nbclient's own sends a ``comm_msg`` on the shell channel from its IOPub task while the cell's
    ``execute_reply`` is awaited on that channel, and now and then the reply's arrival is missed
    until the cell timeout expires (a tweak panel's failing run stalled a notebook for 600 s). No
    kernel code here reads an Output widget's ``outputs`` back, so nothing needs the sync."""
    from nbclient.output_widget import OutputWidget

    class QuietOutputWidget(OutputWidget):
        def sync_state(self) -> None:
            pass

    return QuietOutputWidget


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
        # Widget state is tracked while running (nbclient's mimic of the Output widget needs it) and
        # dropped before saving, by strip_widget_views.
    )
    client.widget_registry["@jupyter-widgets/output"]["OutputModel"] = quiet_output_widget()
    started = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - started
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    strip_widget_views(nb)
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
