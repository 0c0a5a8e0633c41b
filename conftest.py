"""Repository-wide pytest configuration: how the tutorial notebooks are checked by nbval.

The notebooks in ``notebooks/`` are executed top to bottom in a fresh kernel and every text
output (``text/plain``, printed streams, tracebacks of cells marked as raising) is compared with
the output committed in the notebook. Rich outputs are executed but not compared:

- ``text/html``: pandas and plotly HTML carry random element ids;
- ``application/vnd.plotly.v1+json``: figures are checked by the unit tests through ``to_dict()``;
- widget views: model ids are random.

Progress bars are switched off for the kernels (``TQDM_DISABLE``) so that no timing text lands in
the outputs. Volatile text that remains (elapsed times, memory addresses) is replaced by the
patterns in ``notebooks/nbval_sanitize.cfg``.
"""

from __future__ import annotations

import os

NOT_COMPARED = (
    "text/html",
    "application/javascript",
    "application/vnd.plotly.v1+json",
    "application/vnd.jupyter.widget-view+json",
    "application/vnd.jupyter.widget-state+json",
)


def pytest_configure(config) -> None:
    # Kernels started by nbval inherit this process's environment.
    os.environ["TQDM_DISABLE"] = "1"
    os.environ.setdefault("PYTHONHASHSEED", "0")


def pytest_collectstart(collector) -> None:
    path = getattr(collector, "path", None)
    if path is not None and path.suffix == ".ipynb":
        collector.skip_compare = tuple(collector.skip_compare) + NOT_COMPARED
