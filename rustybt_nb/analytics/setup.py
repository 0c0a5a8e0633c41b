"""``setup_notebook()``: get a notebook ready for backtesting in one call.

Inside IPython/Jupyter it

1. registers the ``%%backtest`` / ``%backtest`` magics (as ``%load_ext rustybt_nb`` does);
2. registers the ``text/html`` display of results and orders (:mod:`.display`);
3. picks a plotly renderer (:func:`choose_renderer`);
4. switches progress bars on or off (:mod:`.progress`).

It is idempotent: a second call changes nothing and says so in its record
(``already_set_up=True``), except that an explicit ``renderer=`` is always applied. It
prints nothing unless ``quiet=False``, and it never touches pandas options. Outside
IPython it only sets the progress default and reports that the rest was skipped.

The plotly renderer
-------------------
An explicit ``renderer=`` wins. Otherwise, in this order:

- ``PLOTLY_RENDERER`` set in the environment: plotly already applied it; it is kept.
- ``VSCODE_PID`` set (VS Code's notebook editor): ``'vscode'``.
- a terminal IPython: plotly's own choice is kept (usually ``'browser'``).
- anything else (JupyterLab, Notebook 7, classic Notebook, Binder, nbconvert, nbval):
  ``'plotly_mimetype+notebook_connected'``. Each figure carries plotly's own JSON
  mimetype, which JupyterLab, Notebook 7 and VS Code draw natively (and prefer), plus an
  HTML version that loads plotly.js from the CDN for classic Notebook and exported HTML;
  plotly.js is not embedded, so saved notebooks stay small. The HTML half contains a
  random element id, so notebooks checked with ``nbval`` should compare text outputs and
  skip ``text/html`` and plotly's mimetype (nbval's ``skip_compare`` in a ``conftest.py``).
  ``setup_notebook(renderer='plotly_mimetype')`` drops the HTML half.
"""

from __future__ import annotations

import os
import sys
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .progress import disabled_by_env, progress_enabled, set_progress_default

__all__ = ["DEFAULT_RENDERER", "SetupRecord", "choose_renderer", "setup_notebook"]

DEFAULT_RENDERER = "plotly_mimetype+notebook_connected"

_SET_UP: weakref.WeakSet[Any] = weakref.WeakSet()  # shells already set up
_outside_done = False  # setup_notebook() already ran outside IPython


@dataclass(frozen=True)
class SetupRecord:
    """What :func:`setup_notebook` found and did."""

    in_ipython: bool
    magics_registered: bool
    formatters_registered: bool
    plotly_renderer: str | None
    progress_enabled: bool
    already_set_up: bool
    notes: tuple[str, ...] = field(default=())

    def __repr__(self) -> str:
        notes = "; ".join(self.notes)
        return (f"SetupRecord(in_ipython={self.in_ipython}, magics={self.magics_registered}, "
                f"formatters={self.formatters_registered}, plotly_renderer={self.plotly_renderer!r}, "
                f"progress={self.progress_enabled}, already_set_up={self.already_set_up}"
                + (f", notes: {notes})" if notes else ")"))


def choose_renderer(renderer: str | None = None, environ: Mapping[str, str] | None = None,
                    shell: Any = None) -> tuple[str | None, str]:
    """The plotly renderer to set and why, as ``(name or None, reason)``; None means
    "leave plotly's current renderer alone". See the module docstring for the rules."""
    env = os.environ if environ is None else environ
    if renderer:
        return renderer, f"renderer {renderer!r} as asked"
    if env.get("PLOTLY_RENDERER"):
        return None, "PLOTLY_RENDERER is set in the environment; plotly's renderer kept"
    if env.get("VSCODE_PID"):
        return "vscode", "VS Code detected (VSCODE_PID): renderer 'vscode'"
    if shell is not None and type(shell).__name__ == "TerminalInteractiveShell":
        return None, "terminal IPython: plotly's own renderer kept"
    return DEFAULT_RENDERER, f"renderer {DEFAULT_RENDERER!r} (JupyterLab, Notebook 7, classic Notebook)"


def _current_shell() -> Any:
    """The running IPython shell, without importing IPython when it is not loaded."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    try:
        return ipython.get_ipython()
    except Exception:  # pragma: no cover - a broken IPython
        return None


def _apply_renderer(name: str | None) -> tuple[str | None, str | None]:
    """Set plotly's default renderer to ``name`` (if plotly is installed and it differs);
    returns (renderer in effect, problem note or None)."""
    try:
        import plotly.io as pio
    except ImportError:
        return None, "plotly is not installed, figures are unavailable: pip install 'rustybt_nb[notebook]'"
    if name is not None and pio.renderers.default != name:
        pio.renderers.default = name  # raises ValueError (with the valid names) for an unknown renderer
    return pio.renderers.default or None, None


def setup_notebook(*, renderer: str | None = None, progress: bool = True, quiet: bool = True) -> SetupRecord:
    """Prepare the running notebook (see the module docstring) and return a record.

    Parameters
    ----------
    renderer:
        A plotly renderer name (``'notebook'``, ``'png'``, ``'vscode'``...) to use instead
        of the automatic choice.
    progress:
        Show progress bars during backtests (still off when ``TQDM_DISABLE`` or
        ``RUSTYBT_NB_NO_PROGRESS`` is set).
    quiet:
        False: print the record.
    """
    global _outside_done
    set_progress_default(progress)
    notes: list[str] = []
    env_switch = disabled_by_env()
    if progress and env_switch:
        notes.append(f"progress bars off: {env_switch} is set")
    shell = _current_shell()

    if shell is None:
        already = _outside_done
        _outside_done = True
        notes.insert(0, "not running inside IPython: magics, display formatters and the plotly renderer "
                        "were left alone")
        record = SetupRecord(False, False, False, None, progress_enabled(), already, tuple(notes))
    else:
        from .display import formatters_registered, register_formatters
        from .magics import BacktestMagics, _views_after_cell, magics_registered

        already = shell in _SET_UP
        changed = []
        if not magics_registered(shell):
            shell.register_magics(BacktestMagics)
            changed.append("magics")
        _views_after_cell(shell)
        if register_formatters(shell):
            changed.append("formatters")
        wanted, reason = choose_renderer(renderer, shell=shell)
        if already and renderer is None:
            wanted = None  # keep whatever is in effect now (the user may have changed it)
        try:
            import plotly.io as pio

            before = pio.renderers.default
        except ImportError:
            before = None
        in_effect, problem = _apply_renderer(wanted)
        if problem:
            notes.append(problem)
        elif in_effect != before:
            changed.append("renderer")
            notes.append(reason)
        elif not already:
            notes.append(reason if wanted is None else f"renderer {in_effect!r} was already in effect")
        if already:
            notes.insert(0, "already set up: nothing changed" if not changed
                         else "already set up; changed: " + ", ".join(changed))
        _SET_UP.add(shell)
        record = SetupRecord(True, magics_registered(shell), formatters_registered(shell), in_effect,
                             progress_enabled(), already, tuple(notes))
    if not quiet:
        print(repr(record))
    return record
