"""The tweak panel without a browser: controls, runs, the baseline and the diff, figures
updated in place, errors, the Run-button mode, coalesced browser changes, the static
fallback, and ``%%backtest --tweak``."""

from __future__ import annotations

import asyncio
import sys
import threading

import ipywidgets as widgets
import pandas as pd
import pytest
from helpers import bars

from rustybt_nb import Backtest, Param, TradingAlgorithm, run_algorithm
from rustybt_nb.analytics import tweak
from rustybt_nb.analytics import tweak_panel as tweak_module
from rustybt_nb.analytics.tweak_panel import UIREVISION, TweakPanel, control_for
from rustybt_nb.finance.execution import BracketOrder, MarketOrder, TrailingStopOrder
from rustybt_nb.finance.slippage import VolumeShareSlippage

WINDOW = {"start": "2011-01-01", "end": "2011-12-31"}


class Breakout(TradingAlgorithm):
    params = {"lookback": 20, "stop": 0.03, "target": Param(0.06, 0.01, 0.2, 0.01, "take-profit distance"),
              "trail": False, "label": "b", "mode": ["bracket", "market"], "hook": None}

    def initialize(self, context):
        context.asset = self.symbol("AAPL")

    def handle_data(self, context, data):
        p = self.params
        if p.lookback < 0:
            raise ValueError("lookback must be positive")
        highs = data.history(context.asset, "high", p.lookback, "1d")
        price = data.current(context.asset, "close")
        if context.portfolio.positions[context.asset].amount or self.get_open_orders(context.asset):
            return
        if price >= highs.iloc[:-1].max():
            if p.trail:
                self.order(context.asset, 100)
                self.order(context.asset, -100, style=TrailingStopOrder(trail_percent=p.stop))
            else:
                self.order(context.asset, 100, style=BracketOrder(entry_style=MarketOrder(),
                                                                  stop_loss_price=price * (1 - p.stop),
                                                                  take_profit_price=price * (1 + p.target)))


@pytest.fixture()
def panel():
    return tweak(Breakout, data="AAPL", **WINDOW)


def frames_equal(a, b):
    for name in ("perf", "trades", "orders"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True)
    pd.testing.assert_series_equal(a.metrics, b.metrics, check_exact=True)


# ------------------------------------------------------------------ controls
def test_a_control_per_parameter_from_its_default(panel):
    c = panel.controls
    assert isinstance(c["lookback"], widgets.IntSlider) and c["lookback"].value == 20
    assert c["lookback"].min >= 1 and c["lookback"].max >= 60
    assert isinstance(c["stop"], widgets.FloatSlider) and c["stop"].value == 0.03 and 0 < c["stop"].min < 0.03
    assert isinstance(c["target"], widgets.FloatSlider)  # a Param: its own range and tooltip
    assert (c["target"].min, c["target"].max, c["target"].step) == (0.01, 0.2, 0.01)
    assert c["target"].tooltip == "take-profit distance"
    assert isinstance(c["trail"], widgets.Checkbox) and isinstance(c["label"], widgets.Text)
    assert isinstance(c["mode"], widgets.Dropdown) and c["mode"].value == "bracket"
    assert "hook" not in c and panel.params["hook"] is None  # not tweakable: fixed at its default
    for w in c.values():
        assert w.description in c
        if hasattr(w, "continuous_update"):
            assert w.continuous_update is False


def test_ipywidgets_abbreviations_override_the_controls():
    p = tweak(Breakout, data="AAPL", lookback=(5, 40, 5), stop=(0.01, 0.1, 0.005), mode=["market", "bracket"],
              label=widgets.fixed("z"), **WINDOW)
    assert (p.controls["lookback"].min, p.controls["lookback"].max, p.controls["lookback"].step) == (5, 40, 5)
    assert p.controls["lookback"].value == 20  # the default, inside the range
    assert isinstance(p.controls["stop"], widgets.FloatSlider) and p.controls["stop"].step == 0.005
    assert p.controls["mode"].options == ("market", "bracket")
    assert "label" not in p.controls and p.params["label"] == "z"


def test_a_value_says_where_a_control_starts_and_keeps_its_declaration():
    p = tweak(Breakout, data="AAPL", target=0.1, lookback=30, mode="market", **WINDOW)
    target = p.controls["target"]
    assert (target.min, target.max, target.step, target.value) == (0.01, 0.2, 0.01, 0.1)  # the Param's slider
    assert isinstance(p.controls["mode"], widgets.Dropdown) and p.controls["mode"].value == "market"
    assert p.result.settings["params"]["lookback"] == 30 and list(p.params)[:3] == ["lookback", "stop", "target"]


def test_unknown_control_names_raise_with_near_matches():
    with pytest.raises(TypeError, match=r"Breakout has no parameter 'lookbak'.*Did you mean 'lookback'"):
        tweak(Breakout, data="AAPL", lookbak=(1, 5), **WINDOW)


@pytest.mark.parametrize("default, kind, low_ok", [
    (10, widgets.IntSlider, lambda w: w.min >= 1), (0.5, widgets.FloatSlider, lambda w: w.min > 0),
    (-2, widgets.IntSlider, lambda w: w.max < 0), (0, widgets.IntSlider, lambda w: w.min == 0),
    (-0.25, widgets.FloatSlider, lambda w: w.max < 0),
])
def test_inferred_ranges_keep_the_default_and_its_sign(default, kind, low_ok):
    w = control_for("x", default)
    assert isinstance(w, kind) and w.min <= default <= w.max and low_ok(w)


# ------------------------------------------------------------------ runs, baseline, diff
def test_the_first_run_happens_when_the_panel_is_made(panel):
    assert panel.result is not None and panel.baseline is panel.result and panel.error is None
    assert panel.result.settings["params"] == {**Breakout().params, "mode": "bracket"}
    assert set(panel.figures) == {"equity", "timeline"}


def test_set_reruns_moves_the_controls_and_equals_a_plain_run(panel):
    first = panel.result
    result = panel.set(stop=0.01, lookback=10)
    assert result is panel.result and result is not first and panel.baseline is first
    assert panel.controls["stop"].value == 0.01 and panel.controls["lookback"].value == 10
    frames_equal(result, Backtest(Breakout, data="AAPL", **WINDOW).run(stop=0.01, lookback=10, mode="bracket"))
    d = panel.diff()
    assert len(d.orders) > 0 and len(d.changed_metrics) > 0


def test_setting_a_control_from_python_has_rerun_when_the_assignment_returns(panel):
    panel.controls["lookback"].value = 15
    assert panel.result.settings["params"]["lookback"] == 15


def test_pin_makes_the_current_result_the_baseline(panel):
    panel.set(stop=0.02)
    pinned = panel.pin()
    assert panel.baseline is pinned is panel.result and not panel.diff()
    panel.set(stop=0.05)
    assert panel.baseline is pinned and panel.diff()


def test_the_code_line_reproduces_the_run(panel):
    panel.set(stop=0.02, lookback=30)
    assert panel.code == ("run_algorithm(Breakout, start='2011-01-01', end='2011-12-31', lookback=30, stop=0.02, "
                          "mode='bracket')")
    again = eval(panel.code, {"run_algorithm": run_algorithm, "Breakout": Breakout})
    frames_equal(again, panel.result)
    assert panel._code.value == panel.code


# ------------------------------------------------------------------ figures
def test_figures_are_updated_in_place_and_keep_the_users_zoom(panel):
    from rustybt_nb.analytics.equity import plot_result

    before = dict(panel.figures)
    panel.set(stop=0.01)
    assert panel.figures["equity"] is before["equity"] and panel.figures["timeline"] is before["timeline"]
    fresh = plot_result(panel.result)
    fig = panel.figures["equity"]
    assert fig.layout.uirevision == UIREVISION
    for shown, want in zip(fig.data, fresh.data):
        assert list(shown.y) == list(want.y)
    assert panel.timings["views"] >= 0 and panel.timings["run"] > 0


def test_times_reach_the_live_figures_as_text_not_integers(panel):
    """A FigureWidget sends numpy arrays with tolist(): datetime64[ns] would arrive as integers."""
    panel.set(stop=0.02)
    for fig in panel.figures.values():
        for trace in fig.data:
            x = getattr(trace, "x", None)
            if x is not None and len(x):
                assert isinstance(x[0], str) and x[0][:4].isdigit() and "-" in x[0], (trace.name, x[0])


def test_a_figure_whose_traces_change_is_replaced_by_a_new_widget():
    from rustybt_nb.analytics.timeline import plot_order_timeline

    p = tweak(Breakout, data="AAPL", **WINDOW)
    before = p.figures["timeline"]
    p.set(trail=True)  # trailing stops: other statuses, other traces
    fresh = plot_order_timeline(p.result)
    now = p.figures["timeline"]
    assert [t.name for t in now.data] == [t.name for t in fresh.data]
    assert now is not before or [t.name for t in before.data] == [t.name for t in fresh.data]
    assert p._figure_box.children[1] is now and now.layout.template.layout.paper_bgcolor is not None


def test_figures_mixing_trace_kinds_update_in_place():
    """The trailing-stop figure is a candlestick plus lines: each kind is restyled apart."""
    p = tweak(Breakout, data="AAPL", trail=True, **WINDOW)
    p.set(stop=0.04)
    before = p.figures["trailing"]
    p.set(stop=0.04)  # the same traces (one per trailing order): an update in place
    assert p.figures["trailing"] is before and p.error is None
    kinds = {t.type for t in before.data}
    assert "candlestick" in kinds and "scatter" in kinds


def test_trailing_and_partial_fill_figures_come_and_go():
    p = tweak(Breakout, data="AAPL", slippage=VolumeShareSlippage(volume_limit=2e-7), **WINDOW)
    assert "partial_fills" in p.figures  # 100 shares against a tiny volume cap fill in slices
    p.set(trail=True)
    assert "trailing" in p.figures
    p.set(trail=False)
    assert "trailing" not in p.figures
    assert [w for w in p._figure_box.children] == [p.figures[n] for n in p.figures]


# ------------------------------------------------------------------ errors
def test_a_failing_run_keeps_the_previous_result_and_the_panel_usable(panel):
    good, figures = panel.result, dict(panel.figures)
    with pytest.raises(ValueError, match="lookback must be positive"):
        panel.set(lookback=-5)
    assert panel.result is good and panel.figures == figures
    assert "ValueError: lookback must be positive" in panel.error
    assert "failed" in panel._status.value
    assert panel.controls["lookback"].value == good.settings["params"]["lookback"]  # back where the result is
    assert panel._output.outputs[0]["text"] == panel.error
    panel.controls["lookback"].value = -3  # from Python: shown, not raised
    assert panel.result is good and "lookback must be positive" in panel.error
    panel.set(lookback=25)
    assert panel.error is None and panel.result.settings["params"]["lookback"] == 25


# ------------------------------------------------------------------ slow runs, browser changes
def test_a_slow_run_switches_to_the_run_button(monkeypatch):
    monkeypatch.setattr(tweak_module, "SLOW_RUN", 0.0)
    p = tweak(Breakout, data="AAPL", **WINDOW)
    assert p.auto is False and p._run_button.button_style == "warning"
    before = p.result
    p.controls["stop"].set_state({"value": 0.05})  # a change from the browser: wait for Run
    assert p.result is before and "press Run" in p._status.value
    p._run_button.click()
    assert p.result is not before and p.result.settings["params"]["stop"] == 0.05


def test_a_burst_of_browser_changes_runs_once_with_the_latest_values():
    p = tweak(Breakout, data="AAPL", **WINDOW)
    runs = []
    original = p.backtest.run

    def counting(*args, **kwargs):
        runs.append(kwargs)
        return original(*args, **kwargs)

    p.backtest.run = counting

    async def drag():
        for value in (10, 12, 14):  # three messages queued before the kernel is free
            p.controls["lookback"].set_state({"value": value})
        await asyncio.sleep(0.01)

    # (in a thread of its own: a test run before this one may leave an event loop running here)
    worker = threading.Thread(target=lambda: asyncio.run(drag()))
    worker.start()
    worker.join(60)
    assert len(runs) == 1 and runs[0]["lookback"] == 14 and p.result.settings["params"]["lookback"] == 14


# ------------------------------------------------------------------ display
def test_the_display_has_the_widget_and_a_static_fallback(panel):
    bundle = panel._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/plain"].startswith("TweakPanel(Breakout: ") and "Sharpe" in bundle["text/plain"]
    assert "rustybt-nb-result" in bundle["text/html"] and "plotly" in bundle["text/html"]
    assert "Error displaying widget" not in str(bundle)


def test_a_missing_anywidget_gives_an_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "anywidget", None)
    with pytest.raises(ImportError, match=r"anywidget.*pip install"):
        tweak(Breakout, data="AAPL", **WINDOW)


def test_backtest_tweak_and_a_zipline_style_strategy():
    def initialize(context):
        from rustybt_nb.api import symbol

        context.asset = symbol("X")

    panel = Backtest(initialize=initialize, data=bars([(10, 11, 9, 10)] * 5)).tweak(size=(1, 10))
    assert isinstance(panel, TweakPanel) and list(panel.controls) == ["size"]
    assert panel.set(size=3).settings["params"] == {"size": 3}


def test_the_magic_returns_a_panel():
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.testing.globalipapp import start_ipython

    ip = start_ipython() or InteractiveShell.instance()
    ip.run_line_magic("load_ext", "rustybt_nb")
    ip.user_ns["Breakout"] = Breakout
    out = ip.run_line_magic("backtest", "Breakout --start 2011-01-01 --end 2011-12-31 --tweak --param stop=0.02 "
                                        "--out live")
    assert isinstance(out, TweakPanel) and ip.user_ns["live"] is out
    assert out.controls["stop"].value == 0.02 and out.result.settings["params"]["stop"] == 0.02
    assert out.code == ("run_algorithm(Breakout, data='AAPL', start='2011-01-01', end='2011-12-31', stop=0.02, "
                        "mode='bracket')")
    frames_equal(eval(out.code, {"run_algorithm": run_algorithm, "Breakout": Breakout}), out.result)
