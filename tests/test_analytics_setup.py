"""``setup_notebook`` (in a shell and outside IPython), the renderer rules, progress bars,
``%load_ext rustybt_nb`` and the import-time promises of the package."""

from __future__ import annotations

import subprocess
import sys
import weakref

import pandas as pd
import pytest

import rustybt_nb
from rustybt_nb.analytics import display, magics, progress, setup


def _shell():
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.testing.globalipapp import start_ipython

    return start_ipython() or InteractiveShell.instance()


def _run(code: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    full_env = {**os.environ, **(env or {})}
    for name in ("TQDM_DISABLE", "RUSTYBT_NB_NO_PROGRESS"):
        if env is None or name not in env:
            full_env.pop(name, None)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False,
                          env=full_env)


@pytest.fixture
def fresh(monkeypatch):
    """A shell that setup_notebook has not seen yet; plotly's renderer and the progress
    default are restored afterwards."""
    import plotly.io as pio

    monkeypatch.setattr(setup, "_SET_UP", weakref.WeakSet())
    monkeypatch.setattr(progress, "_default_enabled", None)
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    monkeypatch.delenv("RUSTYBT_NB_NO_PROGRESS", raising=False)
    before = pio.renderers.default
    yield _shell()
    pio.renderers.default = before


def _options() -> dict:
    """Every pandas option's value (deprecated ones left out)."""
    from pandas._config.config import _deprecated_options, _registered_options

    return {key: pd.get_option(key) for key in _registered_options if key not in _deprecated_options}


# ------------------------------------------------------------------ in a shell
def test_setup_registers_everything_and_is_idempotent(fresh, capsys):
    import plotly.io as pio

    options = _options()
    first = rustybt_nb.setup_notebook(renderer="json")
    assert first == setup.SetupRecord(True, True, True, "json", True, False, first.notes)
    assert pio.renderers.default == "json"
    assert magics.magics_registered(fresh) and display.formatters_registered(fresh)
    assert fresh.find_line_magic("backtest") is not None

    second = setup.setup_notebook()
    assert second.already_set_up and second.plotly_renderer == "json"  # kept, not re-chosen
    assert second.notes[0] == "already set up: nothing changed"
    assert (second.in_ipython, second.magics_registered, second.formatters_registered) == (True, True, True)
    assert capsys.readouterr().out == ""  # quiet by default
    assert _options() == options  # no pandas options touched

    third = setup.setup_notebook(renderer="png")  # an explicit renderer is always applied
    assert third.plotly_renderer == "png" and "changed: renderer" in third.notes[0]


def test_record_repr_is_one_line_and_quiet_false_prints_it(fresh, capsys):
    record = setup.setup_notebook(renderer="json", quiet=False)
    printed = capsys.readouterr().out
    assert printed == repr(record) + "\n"
    assert "\n" not in repr(record)
    assert repr(record).startswith("SetupRecord(in_ipython=True, magics=True, formatters=True, "
                                   "plotly_renderer='json', progress=True, already_set_up=False")


def test_setup_honours_the_progress_switches(fresh, monkeypatch):
    assert setup.setup_notebook(renderer="json", progress=False).progress_enabled is False
    assert progress.make_progress().disable is True
    record = setup.setup_notebook(renderer="json", progress=True)
    assert record.progress_enabled is True and progress.make_progress().disable is False
    for name in ("TQDM_DISABLE", "RUSTYBT_NB_NO_PROGRESS"):
        monkeypatch.setenv(name, "1")
        record = setup.setup_notebook(renderer="json")
        assert record.progress_enabled is False and f"progress bars off: {name} is set" in record.notes
        assert progress.make_progress().disable is True
        monkeypatch.setenv(name, "0")
        assert progress.make_progress().disable is False


def test_an_unknown_renderer_is_refused(fresh):
    with pytest.raises(ValueError, match="nonsense"):
        setup.setup_notebook(renderer="nonsense")


def test_load_ext_registers_the_magics_and_formatters(fresh):
    fresh.run_line_magic("load_ext", "rustybt_nb")
    assert magics.magics_registered(fresh) and display.formatters_registered(fresh)
    rustybt_nb.load_ipython_extension(fresh)  # again: nothing breaks, one post-cell hook
    hooks = [cb for cb in fresh.events.callbacks["post_run_cell"] if isinstance(cb, magics._ViewsAfterCell)]
    assert len(hooks) == 1


# ------------------------------------------------------------------ renderer rules
@pytest.mark.parametrize("renderer, env, shell_class, expected", [
    ("png", {"VSCODE_PID": "1"}, "ZMQInteractiveShell", "png"),
    (None, {"VSCODE_PID": "1"}, "ZMQInteractiveShell", "vscode"),
    (None, {}, "ZMQInteractiveShell", "plotly_mimetype+notebook_connected"),
    (None, {}, "InteractiveShell", "plotly_mimetype+notebook_connected"),
    (None, {"PLOTLY_RENDERER": "notebook"}, "ZMQInteractiveShell", None),
    (None, {}, "TerminalInteractiveShell", None),
])
def test_choose_renderer(renderer, env, shell_class, expected):
    shell = type(shell_class, (), {})()
    name, reason = setup.choose_renderer(renderer, environ=env, shell=shell)
    assert name == expected and reason


# ------------------------------------------------------------------ outside IPython
def test_setup_outside_ipython_does_nothing_harmful_and_says_so():
    code = ("import sys, rustybt_nb; r = rustybt_nb.setup_notebook(); r2 = rustybt_nb.setup_notebook(); "
            "print(r.in_ipython, r.magics_registered, r.formatters_registered, r.plotly_renderer, r.progress_enabled,"
            " r.already_set_up, r2.already_set_up); print(r.notes[0]); "
            "print(sorted(m for m in ('IPython', 'plotly', 'pandas', 'tqdm') if m in sys.modules))")
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "False False False None True False True"
    assert lines[1].startswith("not running inside IPython")
    assert lines[2] == "[]"
    assert proc.stderr == ""


def test_import_stays_free_of_notebook_packages():
    code = ("import sys, rustybt_nb, rustybt_nb.analytics; f = rustybt_nb.load_ipython_extension; "
            "g = rustybt_nb.setup_notebook; "
            "print(sorted(m for m in ('IPython', 'plotly', 'pandas', 'tqdm', 'ipywidgets') if m in sys.modules))")
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_public_names():
    import rustybt_nb.analytics as analytics

    assert rustybt_nb.setup_notebook is setup.setup_notebook
    assert callable(rustybt_nb.load_ipython_extension)
    for name in ("setup_notebook", "load_ipython_extension", "run_backtest_cell", "plot_result",
                 "plot_order_timeline", "plot_trailing_stops", "partial_fills", "partial_fill_table",
                 "orders_table"):
        assert callable(getattr(analytics, name)), name
        assert name in dir(analytics)
    with pytest.raises(AttributeError):
        analytics.not_a_name  # noqa: B018


# ------------------------------------------------------------------ progress bars
def test_progress_bar_counts_bars_and_closes_at_the_end():
    with progress.make_progress(disable=False) as bar:
        bar(10, 100)
        tq = bar.bar
        assert tq.total == 100 and tq.n == 10 and tq.delay == 0.5 and tq.leave is False and tq.unit == "bar"
        bar(100, 100)
        assert bar.closed
    assert repr(bar) == "<ProgressBar closed>"


def test_progress_bar_is_closed_when_the_run_fails():
    with pytest.raises(RuntimeError), progress.make_progress(disable=False) as bar:
        bar(5, 100)
        raise RuntimeError("strategy failed")
    assert bar.closed and bar.bar.disable  # tqdm marks a closed bar disabled


def test_a_disabled_progress_bar_draws_nothing():
    bar = progress.make_progress(disable=True)
    bar(1, 10)
    assert bar.bar is None and repr(bar) == "<ProgressBar disabled>"


def test_progress_callback_in_a_real_run():
    seen = []
    bar = progress.make_progress(disable=False)
    rustybt_nb.run_algorithm(initialize=lambda context: None, handle_data=lambda context, data: seen.append(1),
                             start="2012-01-01", end="2012-03-31", progress=bar)
    assert bar.closed and bar.bar.n == len(seen) == 62
