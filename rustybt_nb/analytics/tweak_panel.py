"""Widget-driven parameter tweaking: the :class:`TweakPanel`.

``tweak(Strategy, data=..., ...)`` (:mod:`rustybt_nb.analytics.tweaking`; also
``Backtest.tweak()`` and ``%%backtest --tweak``) returns a panel with one control per
declared parameter, a metrics strip, live plotly figures and a status line. Moving a
control re-runs the backtest (through the one :class:`~rustybt_nb.Backtest`) and updates
the figures in place; ``pin()`` keeps a
result as the baseline and ``diff()`` says which metrics moved and which orders changed
fate (:func:`rustybt_nb.diff`).

Controls. Each parameter's default picks its control: ``int`` -> ``IntSlider``, ``float``
-> ``FloatSlider`` (a range around the default that stays on the default's side of zero),
``bool`` -> ``Checkbox``, ``str`` -> ``Text``, a ``list`` -> ``Dropdown`` of its items; a
:class:`~rustybt_nb.Param` gives its own range, step, options and tooltip. Keyword
arguments given to ``tweak`` override that, as ipywidgets' ``interact`` reads them
(``fast=(2, 30, 1)``, ``stop=(0.01, 0.1, 0.005)``, ``mode=["a", "b"]``, a widget, or
``ipywidgets.fixed(value)``). Parameters of other types (None, dicts, functions) stay
fixed at their default.

Running. Controls send their value on release (``continuous_update=False``). A change
from the browser is run once the kernel has taken every queued message, so a burst of
changes runs once, with the latest values. Once a run has taken longer than
:data:`SLOW_RUN` seconds the panel switches to an explicit Run button and shows a
progress bar. Everything a control does is a method, and a control's ``.value`` set from
Python has re-run by the time the assignment returns, so the panel works without a browser.

Figures are ``plotly.graph_objects.FigureWidget``\\s built by the same pure view functions
as ``result.plot()`` and friends; a re-run updates them inside ``batch_update()`` with a
fixed ``uirevision``, so the user's zoom and pan survive and nothing flickers. Where
widgets cannot be drawn (nbconvert, GitHub, nbval) the panel's display carries a static
fallback: the text summary, and the HTML summary and equity figure.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import math
import time
import traceback
from collections.abc import Callable, Mapping
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd

from ..algorithm import Param
from ..comparison import ResultDiff, diff
from ..errors import did_you_mean
from ..formatting import escape
from ..metrics import metric_label, metric_text
from ._deps import require_figure_widget, require_widgets
from .style import without_template

__all__ = ["SLOW_RUN", "TweakPanel", "control_for", "for_widget", "new_figure_widget", "update_in_place"]

#: Runs slower than this many seconds switch the panel to an explicit Run button.
SLOW_RUN = 1.0
#: The metrics of the panel's strip, with their change against the baseline.
STRIP = ("total_return", "cagr", "sharpe", "max_drawdown", "trade_count", "win_rate", "exposure")
_NEUTRAL = ("trade_count", "exposure")  # more is neither better nor worse
UIREVISION = "rustybt-nb-tweak"
_VIEW_NAMES = {"plot": "equity", "plot_order_timeline": "timeline", "plot_trailing_stops": "trailing",
               "partial_fills": "partial_fills"}


# ====================================================================== controls
def control_for(name: str, default: Any, declared: Any = None, abbreviation: Any = None) -> Any:
    """The widget for parameter ``name`` (None: it stays fixed at ``default``).

    ``abbreviation`` (what the user passed to ``tweak``) wins and is read as ipywidgets'
    ``interact`` reads it; else a :class:`~rustybt_nb.Param` declaration; else the type of
    the default."""
    widgets = require_widgets()
    if abbreviation is not None:
        if isinstance(abbreviation, widgets.fixed):
            return None
        widget = widgets.interactive.widget_from_abbrev(abbreviation, default)
        if widget is None:
            raise ValueError(f"`{name}`={abbreviation!r} is not a control: give (min, max[, step]), a list of "
                             "choices, a widget or ipywidgets.fixed(value)")
    elif isinstance(declared, Param):
        widget = _declared(widgets, declared)
    else:
        widget = _inferred(widgets, default)
    if widget is None:
        return None
    widget.description = name
    widget.style = {"description_width": "initial"}
    if hasattr(widget, "continuous_update"):
        widget.continuous_update = False
    if isinstance(declared, Param) and declared.doc:
        widget.tooltip = declared.doc
    return widget


def _is_abbreviation(widgets: Any, value: Any) -> bool:
    """Whether a keyword given to ``tweak`` describes a control (ipywidgets' ``interact``
    abbreviations) rather than the value a control starts at."""
    return isinstance(value, tuple | list | Mapping | widgets.ValueWidget | widgets.fixed)


def _nice_step(span: float) -> float:
    """A round step (1, 2 or 5 times a power of ten) close to ``span``."""
    if not span > 0 or not math.isfinite(span):
        return 0.01
    power = 10.0 ** math.floor(math.log10(span))
    for m in (5, 2, 1):
        if m * power <= span:
            return m * power
    return power


def _decimals(step: float) -> int:
    return max(0, -math.floor(math.log10(step))) if step > 0 else 2


def _float_slider(widgets: Any, value: float, low: float, high: float, step: float) -> Any:
    return widgets.FloatSlider(value=value, min=low, max=high, step=step, readout_format=f".{_decimals(step)}f")


def _inferred(widgets: Any, default: Any) -> Any:
    """A control from the default's type, with a range around it that keeps its sign (a
    window length stays positive, a stop distance above zero)."""
    if isinstance(default, bool):
        return widgets.Checkbox(value=default)
    if isinstance(default, Integral):
        v = int(default)
        if v > 0:
            return widgets.IntSlider(value=v, min=1, max=max(3 * v, v + 10), step=max(1, v // 20))
        if v < 0:
            return widgets.IntSlider(value=v, min=min(3 * v, v - 10), max=-1, step=max(1, -v // 20))
        return widgets.IntSlider(value=0, min=0, max=10)
    if isinstance(default, Real):
        v = float(default)
        if v == 0 or not math.isfinite(v):
            return _float_slider(widgets, 0.0 if not math.isfinite(v) else v, -1.0, 1.0, 0.01)
        step = _nice_step(abs(v) / 20)
        top = round(3 * abs(v) / step) * step
        return _float_slider(widgets, v, step, top, step) if v > 0 else _float_slider(widgets, v, -top, -step, step)
    if isinstance(default, str):
        return widgets.Text(value=default)
    if isinstance(default, list) and default:
        return widgets.Dropdown(options=list(default), value=default[0])
    return None


def _declared(widgets: Any, p: Param) -> Any:
    if p.options is not None:
        return widgets.Dropdown(options=list(p.options), value=p.default)
    if p.low is None and p.high is None:
        return _inferred(widgets, p.default)
    base = _inferred(widgets, p.default)
    if isinstance(p.default, Integral) and not isinstance(p.default, bool) \
            and all(isinstance(x, Integral) for x in (p.low, p.high, p.step) if x is not None):
        return widgets.IntSlider(value=p.default, min=p.low if p.low is not None else base.min,
                           max=p.high if p.high is not None else base.max, step=p.step or 1)
    low = float(p.low) if p.low is not None else float(base.min)
    high = float(p.high) if p.high is not None else float(base.max)
    step = float(p.step) if p.step else _nice_step((high - low) / 100)
    return _float_slider(widgets, float(p.default), low, high, step)


def _first_value(default: Any) -> Any:
    """What a run uses for a parameter whose default lists choices: the first one."""
    return default[0] if isinstance(default, list) and default else default


# ====================================================================== the panel
class TweakPanel:
    """A live backtest panel (see the module docstring).

    ``initial`` sets where the controls start (default: the strategy's parameters).

    Attributes: ``controls`` (name -> widget), ``params`` (the current values),
    ``result`` (the current :class:`~rustybt_nb.results.BacktestResult`), ``baseline``,
    ``figures`` (name -> ``FigureWidget``: ``'equity'``, ``'timeline'``, and ``'trailing'``
    / ``'partial_fills'`` when the result has trailing stops / partial fills), ``error``
    (the last failure's traceback text, else None), ``timings`` (seconds of the last
    run and view update), ``code`` (the equivalent ``run_algorithm(...)`` call).
    """

    def __init__(self, backtest: Any, *, run_button: bool = False, initial: Mapping[str, Any] | None = None,
                 **controls: Any) -> None:
        widgets = require_widgets()
        require_figure_widget()
        self.backtest = backtest
        defaults = backtest.params
        strategy = backtest.strategy
        raw = dict(getattr(strategy if isinstance(strategy, type) else type(strategy), "params", None) or {}) \
            if strategy is not None else {}
        if defaults:  # a strategy that declares its parameters: controls only for those
            unknown = [k for k in controls if k not in defaults]
            if unknown:
                k = unknown[0]
                raise TypeError(f"tweak: {backtest.strategy_name} has no parameter {k!r}; its parameters are "
                                f"{', '.join(sorted(defaults))}.{did_you_mean(k, sorted(defaults))}")
        # a value (10, 0.05, "x", True) says where a control starts; a range, a list of
        # choices, a widget or fixed(...) says what the control is
        starts = {k: v for k, v in controls.items() if not _is_abbreviation(widgets, v)}
        self.controls: dict[str, Any] = {}
        self._fixed: dict[str, Any] = {}
        self._order = [*defaults, *(k for k in controls if k not in defaults)]
        for name in self._order:
            default = defaults.get(name, starts.get(name))
            abbreviation = None if name in starts else controls.get(name)
            widget = control_for(name, default, raw.get(name), abbreviation)
            if widget is None:
                fixed = abbreviation.value if isinstance(abbreviation, widgets.fixed) else _first_value(default)
                self._fixed[name] = fixed
            else:
                self.controls[name] = widget
        self.result: Any = None
        self.baseline: Any = None
        self.error: str | None = None
        self.figures: dict[str, Any] = {}
        self.timings: dict[str, float] = {}
        self.auto = not run_button
        self._quiet = False
        self._pending = False
        self._scheduled = False
        self._dirty = False
        self._build_widgets(widgets)
        initial = {**starts, **(initial or {})}
        if initial:  # where the controls start (e.g. a sweep's best parameters)
            backtest.check_params(initial)
            for name, value in initial.items():
                if name in self.controls:
                    _set_control(self.controls[name], value)
                else:
                    self._fixed[name] = value
        for widget in self.controls.values():
            widget.observe(self._on_control, names="value")
        self._rerun(raise_errors=True)

    # ------------------------------------------------------------------ state
    @property
    def params(self) -> dict[str, Any]:
        """The parameter values the next run uses (controls and fixed ones)."""
        return {name: self.controls[name].value if name in self.controls else self._fixed[name]
                for name in self._order}

    @property
    def code(self) -> str:
        """The ``run_algorithm(...)`` call that gives :attr:`result` (to copy into a script)."""
        return self.backtest.call_text(self.params)

    def set(self, **params: Any) -> Any:
        """Set parameters (moving their controls), re-run once, and return the new result.
        A failing run shows its traceback in the panel, keeps the previous result and
        figures, and is re-raised."""
        self.backtest.check_params(params)
        with self._holding():
            for name, value in params.items():
                widget = self.controls.get(name)
                if widget is None:
                    self._fixed[name] = value
                else:
                    _set_control(widget, value)
        return self._rerun(raise_errors=True)

    def run(self) -> Any:
        """Re-run with the current values (what the Run button does)."""
        return self._rerun(raise_errors=True)

    def pin(self) -> Any:
        """Make the current result the baseline that metrics and orders are compared with."""
        self.baseline = self.result
        self._draw_text()
        return self.baseline

    def diff(self) -> ResultDiff:
        """Baseline vs current (:func:`rustybt_nb.diff`): metric changes and the orders whose
        fate changed."""
        return diff(self.baseline, self.result)

    # ------------------------------------------------------------------ running
    def _on_control(self, change: Any) -> None:
        if self._quiet:
            return
        from_browser = bool(getattr(change.get("owner"), "_property_lock", None))
        if not from_browser:  # set from Python: run now, so the assignment returns with the result
            self._rerun(raise_errors=False)
            return
        if not self.auto:
            self._dirty = True
            self._status.value = self._status_html("changed: press Run to re-run with the new values")
            return
        self._pending = True
        loop = _running_loop()
        if loop is None:
            self._flush()
        elif not self._scheduled:  # after the kernel has taken every queued change: one run, latest values
            self._scheduled = True
            loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        if self._pending:
            self._pending = False
            self._rerun(raise_errors=False)

    def _on_run_button(self, _button: Any) -> None:
        self._rerun(raise_errors=False)

    def _on_pin_button(self, _button: Any) -> None:
        self.pin()

    def _rerun(self, raise_errors: bool) -> Any:
        params = self.params
        self._dirty = False
        self._progress.layout.visibility = "visible" if not self.auto else "hidden"
        self._progress.value = 0.0
        self._status.value = self._status_html("running ...")
        t0 = time.perf_counter()
        try:
            result = self.backtest.run(self._report_progress, **params)
        except Exception as exc:
            self.error = "".join(traceback.format_exception(exc))
            self._output.outputs = ()
            self._output.append_stdout(self.error)
            self._restore_controls()
            self._status.value = self._status_html(
                f"the run with these values failed ({type(exc).__name__}: {exc}); the figures show the previous "
                "result; the traceback is below", error=True)
            if raise_errors:
                raise
            return self.result
        t_run = time.perf_counter() - t0
        if self.error is not None:
            self.error = None
            self._output.outputs = ()
        self.result = result
        if self.baseline is None:
            self.baseline = result
        t1 = time.perf_counter()
        self._draw_figures(result)
        self.timings = {"run": t_run, "views": time.perf_counter() - t1}
        if self.auto and t_run > SLOW_RUN:
            self.auto = False
            self._run_button.button_style = "warning"
        self._progress.layout.visibility = "hidden"
        self._draw_text()
        return result

    def _restore_controls(self) -> None:
        """After a failed run: the controls back at the values of the result shown."""
        if self.result is None:
            return
        ran = self.result.settings.get("params", {})
        with self._holding():
            for name, widget in self.controls.items():
                if name in ran and widget.value != ran[name]:
                    _set_control(widget, ran[name])
            for name in self._fixed:
                if name in ran:
                    self._fixed[name] = ran[name]

    def _report_progress(self, done: int, total: int) -> None:
        if not self.auto:
            self._progress.value = done / total if total else 1.0

    # ------------------------------------------------------------------ drawing
    def _draw_figures(self, result: Any) -> None:
        go = require_figure_widget()
        from .display import views_for

        names = ["equity", "timeline"]
        names += [_VIEW_NAMES[v] for v in views_for(result) if _VIEW_NAMES.get(v) not in (None, "equity", "timeline")]
        for name in names:
            widget = self.figures.get(name)
            if widget is None:
                fresh = _VIEWS[name](result)
            else:  # (the live figure keeps its template: not built again)
                with without_template():
                    fresh = _VIEWS[name](result)
            fresh.layout.uirevision = UIREVISION
            if widget is None or not update_in_place(widget, fresh):
                # a first figure, or one whose set of traces changed: a new widget (adding and
                # removing traces are separate messages the browser may apply out of order)
                template = widget._layout.get("template") if widget is not None else None
                self.figures[name] = new_figure_widget(go, fresh, template)
        for name in [n for n in self.figures if n not in names]:
            del self.figures[name]
        self._figure_box.children = [self.figures[n] for n in names]

    def _draw_text(self) -> None:
        self._strip.value = self._strip_html()
        self._code.value = self.code
        t = self.timings
        timing = f" in {t['run']:.2f} s (+{t['views']:.2f} s to draw)" if t else ""
        n_orders = len(self.result.orders) if self.result is not None else 0
        mode = "" if self.auto else " · runs are slow: move the controls, then press Run"
        compare = ""
        if self.baseline is not None and self.baseline is not self.result:
            d = self.diff()
            compare = (f" · vs the pinned baseline: {len(d.changed_metrics)} metrics and {len(d.orders)} orders "
                       "differ (panel.diff())")
        fixed = f" · fixed: {', '.join(self._fixed)}" if self._fixed else ""
        if self.error is None:
            self._status.value = self._status_html(f"ran{timing} · {n_orders} orders{compare}{mode}{fixed}")

    def _strip_html(self) -> str:
        if self.result is None:
            return ""
        m, b = self.result.metrics, (self.baseline.metrics if self.baseline is not None else None)
        cells = []
        for key in STRIP:
            if key not in m.index:
                continue
            value = metric_text(key, m[key])
            change = ""
            if b is not None and self.baseline is not self.result and key in b.index:
                delta = float(m[key]) - float(b[key])
                if delta == delta and delta != 0:
                    color = "#666" if key in _NEUTRAL else ("#2ca02c" if delta > 0 else "#d62728")
                    change = (f"<div style='font-size:11px;color:{color}'>"
                              f"{escape(metric_text(key, delta, delta=True))}</div>")
            cells.append(f"<div style='margin-right:18px'><div style='font-size:11px;color:#666'>"
                         f"{escape(metric_label(key))}</div><div style='font-size:15px'>{escape(value)}</div>"
                         f"{change}</div>")
        return f"<div style='display:flex;flex-wrap:wrap'>{''.join(cells)}</div>"

    @staticmethod
    def _status_html(text: str, error: bool = False) -> str:
        return f"<span style='color:{'#d62728' if error else '#555'};font-size:12px'>{escape(text)}</span>"

    def _build_widgets(self, widgets: Any) -> None:
        self._run_button = widgets.Button(description="Run", tooltip="re-run with the current values", icon="play")
        self._run_button.on_click(self._on_run_button)
        self._pin_button = widgets.Button(description="Pin baseline", tooltip="compare later runs with this one",
                                    icon="thumb-tack")
        self._pin_button.on_click(self._on_pin_button)
        self._progress = widgets.FloatProgress(value=0.0, min=0.0, max=1.0, layout=widgets.Layout(width="200px"))
        self._progress.layout.visibility = "hidden"
        self._status = widgets.HTML()
        self._strip = widgets.HTML()
        self._code = widgets.Text(description="code", disabled=False, layout=widgets.Layout(width="100%"),
                            tooltip="the run_algorithm call for these values: select and copy it")
        self._output = widgets.Output()
        self._figure_box = widgets.VBox()
        controls = widgets.Box(list(self.controls.values()),
                         layout=widgets.Layout(display="flex", flex_flow="row wrap", grid_gap="4px 16px"))
        buttons = widgets.HBox([self._run_button, self._pin_button, self._progress])
        self.widget = widgets.VBox([controls, buttons, self._strip, self._status, self._output, self._figure_box,
                              self._code])

    @contextlib.contextmanager
    def _holding(self) -> Any:
        """Controls moved inside the block do not each start a run."""
        self._quiet = True
        try:
            yield
        finally:
            self._quiet = False

    # ------------------------------------------------------------------ display
    def summary(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"TweakPanel({self.backtest.strategy_name}: {params})\n{self.result.summary()}"

    def __repr__(self) -> str:
        return self.summary()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """The live widget, plus a static fallback for frontends that cannot draw widgets."""
        from .display import result_html

        bundle = dict(self.widget._repr_mimebundle_(include=include, exclude=exclude) or {})
        static = [result_html(self.result)]
        equity = self.figures.get("equity")
        if equity is not None:
            import plotly.io as pio

            static.append(pio.to_html(equity, include_plotlyjs="cdn", full_html=False))
        bundle["text/plain"] = self.summary()
        bundle["text/html"] = "".join(static)
        return bundle


def update_in_place(widget: Any, fresh: Any) -> bool:
    """Make ``widget`` (a ``FigureWidget``) show figure ``fresh`` (built, and so validated,
    by a view function) in one update message, keeping the user's zoom and pan
    (``uirevision``): the usual re-run, whose traces keep their number and kinds. Returns
    False, changing nothing, when the traces changed in number or kind (the caller makes a
    new widget). Properties that ``fresh`` no longer has are cleared; the template stays."""
    new = [for_widget(t.to_plotly_json()) for t in fresh.data]
    old = widget._data  # the widget's own trace dicts (what plotly_update edits)
    if len(old) != len(new) or any(a.get("type") != b.get("type") for a, b in zip(old, new)):
        return False
    # one restyle per kind of trace (a key of one kind, e.g. a candlestick's 'close', is not a
    # property of another), the layout with the last: messages of one kind, applied in order
    kinds: dict[str, list[int]] = {}
    for i, d in enumerate(new):
        kinds.setdefault(d.get("type", "scatter"), []).append(i)
    layout = for_widget(fresh.layout.to_plotly_json())
    relayout = {k: layout.get(k) for k in {*layout, *widget._layout} if k != "template"}
    relayout["uirevision"] = UIREVISION
    for n, indexes in enumerate(kinds.values(), 1):
        keys = {k for i in indexes for d in (old[i], new[i]) for k in d} - {"type", "uid"}
        restyle = {k: [new[i].get(k) for i in indexes] for k in keys}
        widget.plotly_update(restyle_data=restyle, relayout_data=relayout if n == len(kinds) else None,
                             trace_indexes=indexes)
    return True


def new_figure_widget(go: Any, fresh: Any, template: Any = None) -> Any:
    """A ``FigureWidget`` of figure ``fresh`` (with ``template`` when ``fresh`` was built
    without one), its times as text (see :func:`for_widget`)."""
    spec = for_widget(fresh.to_plotly_json())
    if template is not None:
        spec.setdefault("layout", {})["template"] = template
    return go.FigureWidget(spec)


def for_widget(value: Any) -> Any:
    """``value`` (a figure's JSON, as nested dicts, lists and arrays) with every time as ISO
    text. A ``FigureWidget`` sends numpy arrays with ``tolist()``, which turns
    ``datetime64[ns]`` values into integers the browser would plot as numbers."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "M":
            return np.datetime_as_string(value, unit="ms")
        if value.dtype == object and len(value) and isinstance(value[0], _TIMES):
            return np.array([for_widget(v) for v in value], dtype=object)
        return value
    if isinstance(value, dict):
        return {k: for_widget(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [for_widget(v) for v in value]
    if isinstance(value, np.datetime64):
        return str(np.datetime_as_string(value, unit="ms"))
    if isinstance(value, pd.Timestamp | datetime.datetime | datetime.date):
        return value.isoformat()
    return value


_TIMES = (np.datetime64, pd.Timestamp, datetime.date)


def _set_control(widget: Any, value: Any) -> None:
    """Set a control, widening a slider's range when the value lies outside it."""
    if hasattr(widget, "min") and hasattr(widget, "max") and isinstance(value, Real):
        if value < widget.min:
            widget.min = value
        if value > widget.max:
            widget.max = value
    if hasattr(widget, "options") and value not in _option_values(widget):
        widget.options = [*widget.options, value]
    widget.value = value


def _option_values(widget: Any) -> list[Any]:
    return [o[1] if isinstance(o, tuple) else o for o in widget.options]


def _running_loop() -> Any:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _equity(result: Any) -> Any:
    from .equity import plot_result

    return plot_result(result)


def _timeline(result: Any) -> Any:
    from .timeline import plot_order_timeline

    return plot_order_timeline(result)


def _trailing(result: Any) -> Any:
    from .trailing import plot_trailing_stops

    return plot_trailing_stops(result)


def _partial(result: Any) -> Any:
    from .tables import plot_partial_fills

    return plot_partial_fills(result)


_VIEWS: Mapping[str, Callable[[Any], Any]] = {"equity": _equity, "timeline": _timeline, "trailing": _trailing,
                                              "partial_fills": _partial}
