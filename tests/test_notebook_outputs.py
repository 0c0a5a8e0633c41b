"""The committed tutorials are saved as `tools/run_notebooks.py` leaves them: every code cell
executed, and no live widget in the outputs or the metadata (a saved widget view whose model is
gone shows "Error displaying widget: model not found" in JupyterLab until the notebook is run,
e.g. on Binder). Reads the .ipynb JSON only; nothing is executed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
WIDGET_MIME = ("application/vnd.jupyter.widget-view+json", "application/vnd.jupyter.widget-state+json")


def code_cells(path: Path) -> list[tuple[int, dict]]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return [(i, c) for i, c in enumerate(cells) if c["cell_type"] == "code"]


def test_there_are_tutorials():
    assert len(NOTEBOOKS) >= 6


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_widget_views_or_widget_state_are_saved(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    assert "widgets" not in notebook["metadata"], "saved widget state: re-run tools/run_notebooks.py"
    found = [(i, mime) for i, cell in code_cells(path) for output in cell.get("outputs", [])
             for mime in WIDGET_MIME if mime in output.get("data", {})]
    assert not found, f"widget outputs in cells {found}: re-run tools/run_notebooks.py"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_code_cell_has_been_executed(path):
    cells = code_cells(path)
    assert cells
    unexecuted = [i for i, cell in cells if cell.get("execution_count") is None]
    assert not unexecuted, f"cells {unexecuted} were not executed: re-run tools/run_notebooks.py"
    counts = [cell["execution_count"] for _, cell in cells]
    assert counts == list(range(1, len(counts) + 1)), "cells not executed top to bottom in one kernel"
