"""Optional notebook dependencies, imported only when a view is built.

Each ``require_*`` function imports its package on call (never at module import time)
and turns a missing install into an ``ImportError`` that says how to get it.
"""

from __future__ import annotations

from typing import Any

INSTALL_HINT = 'pip install "rustybt_nb[notebook]"'


def require_plotly() -> Any:
    """Return ``plotly.graph_objects``; raise ``ImportError`` with the install hint
    when plotly is not installed."""
    try:
        import plotly.graph_objects as go
    except ImportError as exc:
        raise ImportError(
            f"the rustybt_nb figures need plotly, which is not installed; install the notebook extras with "
            f"{INSTALL_HINT} (or pip install plotly)"
        ) from exc
    return go


def require_subplots() -> Any:
    """Return ``plotly.subplots.make_subplots`` (same install hint as :func:`require_plotly`)."""
    require_plotly()
    from plotly.subplots import make_subplots

    return make_subplots


def require_styler() -> None:
    """Check that pandas' ``Styler`` can be used (it needs jinja2); raise ``ImportError``
    with the install hint otherwise."""
    try:
        import jinja2  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"the rustybt_nb styled tables need jinja2 (used by pandas' Styler), which is not installed; "
            f"install the notebook extras with {INSTALL_HINT} (or pip install jinja2)"
        ) from exc


def require_widgets() -> Any:
    """Return the ``ipywidgets`` module (version 8); raise ``ImportError`` with the install
    hint when it is missing or older."""
    try:
        import ipywidgets
    except ImportError as exc:
        raise ImportError(f"the tweak panel needs ipywidgets 8, which is not installed; install the notebook "
                          f"extras with {INSTALL_HINT} (or pip install 'ipywidgets>=8')") from exc
    if int(ipywidgets.__version__.split(".")[0]) < 8:
        raise ImportError(f"the tweak panel needs ipywidgets 8, found {ipywidgets.__version__}; "
                          "pip install -U 'ipywidgets>=8' jupyterlab_widgets")
    return ipywidgets


def require_figure_widget() -> Any:
    """Return ``plotly.graph_objects`` once ``FigureWidget`` can be built: plotly draws it
    with ``anywidget``, which plotly does not install itself."""
    go = require_plotly()
    try:
        import anywidget  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"the tweak panel's live figures (plotly FigureWidget) need anywidget, which is not "
                          f"installed; install the notebook extras with {INSTALL_HINT} (or pip install anywidget)"
                          ) from exc
    return go
