"""Rich display: the HTML of results and orders (content, determinism, escaping), the
IPython formatter registration, and which figures ``display_result`` shows."""

from __future__ import annotations

import math
import re
from types import SimpleNamespace

import pandas as pd
import pytest

from rustybt_nb import TradingAlgorithm, run_algorithm
from rustybt_nb.analytics import display as disp
from rustybt_nb.data import from_frame, load_sample
from rustybt_nb.finance.execution import BracketOrder, MarketOrder, TrailingStopOrder
from rustybt_nb.finance.order import OrderEvent
from rustybt_nb.finance.slippage import VolumeShareSlippage
from rustybt_nb.formatting import escape, short_number

HOSTILE = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>alert(2)</script>"


class Bracketed(TradingAlgorithm):
    """One bracket on AAPL; keeps its orders for the test."""

    params = {"note": "plain"}
    kept: list = []

    def initialize(self, context):
        context.asset = self.symbol(self.params.get("symbol", "AAPL"))
        context.ticket = None

    def handle_data(self, context, data):
        if context.ticket is None:
            px = data.current(context.asset, "price")
            context.ticket = self.order(context.asset, 50, tag=self.params.note, style=BracketOrder(
                entry_style=MarketOrder(), stop_loss_price=px * 0.9, take_profit_price=px * 1.05))
            self.log.info(f"entry {self.params.note}")

    def analyze(self, context, results):
        entry = self.get_order(context.ticket)
        Bracketed.kept = [entry] + [self.get_order(i) for i in entry.child_ids]


class Hostile(Bracketed):
    params = {"note": HOSTILE + SCRIPT, "symbol": HOSTILE}


class TrailsAndSlices(TradingAlgorithm):
    """A big market entry that fills in slices, then a trailing stop."""

    def initialize(self, context):
        context.asset = self.symbol("AAPL")
        self.set_slippage(VolumeShareSlippage(volume_limit=0.00005))

    def handle_data(self, context, data):
        pos = context.portfolio.positions[context.asset].amount
        if self.get_open_orders(context.asset):
            return
        if pos == 0:
            self.order(context.asset, 20_000)
        else:
            self.order(context.asset, -pos, style=TrailingStopOrder(trail_percent=0.03))


def aapl(start="2012-01-01", end="2012-03-31", **kw):
    return run_algorithm(Bracketed, data="AAPL", start=start, end=end, **kw)


@pytest.fixture(scope="module")
def result():
    return aapl()


@pytest.fixture(scope="module")
def hostile():
    frame = load_sample("AAPL").to_frame("AAPL").loc["2012-01-01":"2012-02-29"]
    return run_algorithm(Hostile, data=from_frame(frame, symbol=HOSTILE)), list(Bracketed.kept)


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# ------------------------------------------------------------------ result HTML
def test_result_html_has_the_header_metrics_order_counts_and_views(result):
    html = disp.result_html(result)
    text = text_of(html)
    assert "Backtest Bracketed on AAPL" in text
    assert "2012-01-03 → 2012-03-30" in text and "daily bars" in text
    m = result.metrics
    assert f"{m['total_return']:.2%}" in text and f"{m['sharpe']:.2f}" in text
    assert f"{m['end_value']:,.2f}" in text and "Max drawdown" in text and "Win rate" in text
    counts = result.orders["status"].value_counts()
    for status, n in counts.items():
        assert re.search(rf"{status}\s*</span> {n}", html), status
    for call in ("result.plot()", "result.plot_order_timeline()", "result.plot_trailing_stops()",
                 "result.partial_fills()"):
        assert call in text
    assert "synthetic" not in text and "stopped early" not in text
    assert "note=&#x27;plain&#x27;" in html  # the parameters, escaped


def test_result_html_is_deterministic(result):
    again = aapl()
    html = disp.result_html(result)
    assert html == disp.result_html(again)
    assert " id=" not in html and "<script" not in html
    assert str(pd.Timestamp.now().year) not in html


def test_result_html_escapes_user_strings(hostile):
    res, _ = hostile
    html = disp.result_html(res)
    assert "<img" not in html and "<script" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html  # the asset, its orders' tags, the log line
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html
    assert text_of(html).count("entry &lt;img") >= 1  # the log line


def test_synthetic_and_stopped_early_badges():
    minute = run_algorithm(Bracketed, data=load_sample("AAPL", "minute", start="2012-06-01", end="2012-06-01"))
    assert "synthetic data" in disp.result_html(minute)

    class Fails(Bracketed):
        def handle_data(self, context, data):
            raise ValueError("bad <b>bar</b>")

    with pytest.raises(ValueError) as info:
        run_algorithm(Fails, start="2012-01-01", end="2012-01-31")
    html = disp.result_html(info.value.partial_result)
    assert "stopped early" in html and "ValueError: bad &lt;b&gt;bar&lt;/b&gt;" in html


# ------------------------------------------------------------------ order HTML
def test_order_html_shows_status_levels_legs_and_events(result):
    aapl()  # Bracketed.kept: the orders of this run
    entry, *children = Bracketed.kept
    html = disp.order_html(entry)
    text = text_of(html)
    assert f"Order #{entry.id} buy 50 AAPL" in text and "filled" in text
    assert "children " + ", ".join(f"#{i}" for i in entry.child_ids) in text
    for e in entry.events:
        assert escape(e.reason) in html
    stop_leg = next(o for o in children if o.stop is not None)
    leg_text = text_of(disp.order_html(stop_leg))
    assert f"parent #{entry.id}" in leg_text and "one-cancels-other with #" in leg_text
    assert "sell" in leg_text and short_number(stop_leg.stop) in leg_text
    assert "submitted" in leg_text or "held" in leg_text


def test_order_html_escapes_user_strings(hostile):
    _, orders = hostile
    html = disp.order_html(orders[0])
    assert "<img" not in html and "<script" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_order_html_shortens_long_histories():
    events = [OrderEvent(k, 9, pd.Timestamp("2020-01-01") + pd.Timedelta(days=k), k, "trailed", "open", "open",
                         math.nan, math.nan, f"trailed {k} {SCRIPT}", -5.0, 0.0, None, 10.0 + k) for k in range(100)]
    order = SimpleNamespace(id=9, asset=SimpleNamespace(symbol=HOSTILE), amount=-5.0, filled=0.0, limit=None,
                            stop=109.0, status="open", reason="", style="trailing_stop", role=None, parent_id=None,
                            child_ids=[], oco_ids=[], events=events, trail_amount=2.0, trail_percent=None,
                            limit_offset=None, tif="GTC", created=pd.Timestamp("2020-01-01"), commission=0.0,
                            tag=SCRIPT, avg_fill_price=math.nan)
    html = disp.order_html(order)
    assert "<script" not in html and "<img" not in html
    assert "trailed 0 " in html and "trailed 99 " in html and "trailed 50 " not in html
    assert "40 more events (see order.events)" in html
    assert "trail amount" in html and "events (100)" in html


# ------------------------------------------------------------------ formatters
def test_formatters_render_results_and_orders_in_a_shell(result):
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.testing.globalipapp import start_ipython

    ip = start_ipython() or InteractiveShell.instance()
    disp.register_formatters(ip)
    assert disp.register_formatters(ip) is False  # idempotent
    fmt = ip.display_formatter.formatters["text/html"]
    assert fmt.lookup(result) is disp.result_html
    assert fmt.lookup(Bracketed.kept[0]) is disp.order_html
    assert disp.formatters_registered(ip)


# ------------------------------------------------------------------ display_result / views
class StubResult:
    """Just enough of a result for the views logic."""

    def __init__(self, orders, fills, broken=()):
        self.orders, self.fills, self.broken, self.calls = orders, fills, set(broken), []

    def summary(self):
        return "stub summary"

    def _view(self, name):
        self.calls.append(name)
        if name in self.broken:
            raise self.broken_error(f"{name} cannot draw")
        return f"<{name} figure>"

    broken_error = RuntimeError

    def plot(self):
        return self._view("plot")

    def plot_order_timeline(self):
        return self._view("plot_order_timeline")

    def plot_trailing_stops(self):
        return self._view("plot_trailing_stops")

    def partial_fills(self):
        return self._view("partial_fills")


def stub(styles=(), slices=()):
    orders = pd.DataFrame({"id": range(1, len(styles) + 1), "style": list(styles),
                           "trail_amount": [math.nan] * len(styles), "trail_percent": [math.nan] * len(styles)})
    fills = pd.DataFrame({"order_id": [oid for oid, n in slices for _ in range(n)]})
    return StubResult(orders, fills)


def test_views_for_picks_the_signature_views():
    assert disp.views_for(stub()) == ["plot"]
    assert disp.views_for(stub(["market"], [(1, 1)])) == ["plot", "plot_order_timeline"]
    assert disp.views_for(stub(["market", "trailing_stop"], [(1, 1)])) == \
        ["plot", "plot_order_timeline", "plot_trailing_stops"]
    assert disp.views_for(stub(["market"], [(1, 3)])) == ["plot", "plot_order_timeline", "partial_fills"]


def test_views_for_a_real_run_with_trailing_stops_and_slices():
    res = run_algorithm(TrailsAndSlices, start="2012-01-01", end="2012-03-31")
    assert disp.views_for(res) == ["plot", "plot_order_timeline", "plot_trailing_stops", "partial_fills"]


def test_display_result_shows_the_summary_then_the_views(result):
    shown = []
    names = disp.display_result(result, display=lambda obj, **kw: shown.append((obj, kw)))
    bundle, kw = shown[0]
    assert kw == {"raw": True} and bundle["text/html"] == disp.result_html(result)
    assert bundle["text/plain"] == result.summary()
    assert names == disp.views_for(result) and len(shown) == 1 + len(names)
    assert disp.display_result(result, views=False, display=lambda obj, **kw: None) == []


def test_a_view_that_fails_becomes_a_note_and_the_others_still_show():
    res = stub(["market", "trailing_stop"], [(1, 2)])
    res.broken = {"plot_order_timeline"}
    shown = []
    names = disp.display_views(res, display=lambda obj, **kw: shown.append(obj))
    assert names == ["plot", "plot_trailing_stops", "partial_fills"]
    assert shown[1] == {"text/plain": "result.plot_order_timeline() failed: RuntimeError: plot_order_timeline "
                                      "cannot draw"}

    res = stub(["market"], [(1, 1)])
    res.broken, res.broken_error = {"plot"}, ImportError
    shown.clear()
    assert disp.display_views(res, display=lambda obj, **kw: shown.append(obj)) == ["plot_order_timeline"]
    assert "pip install 'rustybt_nb[notebook]'" in shown[0]["text/plain"]


def test_parameter_reprs_in_the_html_carry_no_memory_addresses(result):
    def helper():
        return None

    fake = SimpleNamespace(**{k: getattr(result, k) for k in ("metrics", "run_info", "orders", "fills", "logs")})
    fake.settings = {**result.settings, "params": {"fn": helper, "big": list(range(1000))}}
    html = disp.result_html(fake)
    assert "0x" not in html and "fn=&lt;function" in html and "…" in html
