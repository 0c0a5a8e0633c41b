"""The notebook figures (equity, order timeline, trailing stops), checked through
``fig.to_dict()`` on scripted runs whose every event is known.

Numeric arrays come back from plotly as numpy arrays or as base64 "typed array" specs;
``values()`` turns either into a plain numpy array.
"""

from __future__ import annotations

import base64
import re
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from helpers import bars, run

from rustybt_nb import TradingAlgorithm, run_algorithm
from rustybt_nb.analytics.equity import plot_result
from rustybt_nb.analytics.timeline import order_rows, plot_order_timeline
from rustybt_nb.analytics.trailing import plot_trailing_stops
from rustybt_nb.data import from_frame
from rustybt_nb.finance.execution import (
    BracketOrder,
    LimitOrder,
    MarketOrder,
    OCOOrder,
    StopOrder,
    TrailingStopLimitOrder,
    TrailingStopOrder,
)
from rustybt_nb.finance.slippage import NoSlippage

go = pytest.importorskip("plotly.graph_objects")

HOSTILE = "<img src=x onerror=alert(1)>"


# ================================================================ helpers
def values(v):
    """A trace array from ``to_dict()`` as numpy (decodes plotly's base64 typed arrays)."""
    if isinstance(v, dict) and "bdata" in v:
        arr = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
        return arr.reshape(v["shape"]) if isinstance(v.get("shape"), (list, tuple)) else arr
    return np.asarray(v)


def times(v):
    """x values as tz-naive Timestamps (NaT for gaps)."""
    return list(pd.to_datetime(pd.Series(values(v)), errors="coerce"))


def traces(fig):
    return {t["name"]: t for t in fig.to_dict()["data"]}


def pieces(trace):
    """(x list, y) of each gap-separated piece of a line trace, in order."""
    xs, ys = times(trace["x"]), values(trace["y"]).astype(float)
    out, cur_x, cur_y = [], [], None
    for x, y in zip(xs, ys):
        if np.isnan(y):
            if cur_x:
                out.append((cur_x, cur_y))
            cur_x, cur_y = [], None
            continue
        cur_x.append(x)
        cur_y = y
    if cur_x:
        out.append((cur_x, cur_y))
    return out


def all_strings(obj):
    """Every string anywhere in a figure dict (names, hover texts, labels, titles)."""
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from all_strings(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from all_strings(v)
    elif isinstance(obj, np.ndarray) and obj.dtype == object:
        for v in obj.ravel():
            yield from all_strings(v)


def day(s):
    return pd.Timestamp(s)


# ================================================================ runs
class Blog(TradingAlgorithm):
    """Four brackets on the TestBrackets sample, each placed only when flat; the last one is
    invalid (its stop-loss and target are on the wrong sides of the short entry)."""

    def initialize(self, context):
        context.asset = self.symbol("TestBrackets")

    def handle_data(self, context, data):
        if context.portfolio.positions[context.asset].amount:
            return
        today = str(self.get_datetime().date())
        close = data.current(context.asset, "close")
        plans = {
            "2018-01-11": (1, BracketOrder(entry_style=MarketOrder(), stop_loss_price=close - 50,
                                           take_profit_price=close + 50)),
            "2018-01-21": (-1, BracketOrder(entry_style=StopOrder(200), stop_loss_price=250, take_profit_price=150)),
            "2018-02-11": (-1, BracketOrder(entry_style=LimitOrder(290), stop_loss_price=340, take_profit_price=240)),
            "2018-03-23": (-1, BracketOrder(entry_style=StopOrder(290), stop_loss_price=90, take_profit_price=300)),
        }
        if today in plans:
            amount, style = plans[today]
            self.order(context.asset, amount, style=style)


@pytest.fixture(scope="module")
def blog():
    return run_algorithm(Blog, data="TestBrackets", capital_base=10_000)


TRAIL_BARS = [(100, 101, 99, 100), (100, 101, 99, 100), (100, 104, 99.5, 103), (103, 106, 102.5, 105),
              (105, 105.5, 103, 104), (104, 104.5, 103.5, 104)]


@pytest.fixture(scope="module")
def trail():
    """Bar 0: buy 100 at market and a resting buy limit 95 (modified to 96 on bar 2).
    Bar 1: a trailing stop sell 100 (trail 2: levels 98, 102, 104, filled at 104 on bar 4)
    and a trailing stop-limit sell 50 (trail 10, offset 1), still working at the end."""
    out = {}

    def bar0(algo, ctx, data):
        algo.order(ctx.asset, 100)
        out["limit"] = algo.order(ctx.asset, 10, limit_price=95, tag="dip buy")

    def bar1(algo, ctx, data):
        algo.order(ctx.asset, -100, style=TrailingStopOrder(trail_amount=2))
        algo.order(ctx.asset, -50, style=TrailingStopLimitOrder(trail_amount=10, limit_offset=1))

    def bar2(algo, ctx, data):
        algo.modify_order(out["limit"], limit_price=96)

    return run({0: bar0, 1: bar1, 2: bar2}, bars(TRAIL_BARS))


@pytest.fixture(scope="module")
def hostile():
    """A run on an asset named like an HTML injection, with a hostile tag, a fill, a trailing
    stop and a rejected order."""
    idx = pd.date_range("2021-01-04", periods=6, freq="B")
    df = pd.DataFrame({"open": 10.0, "high": 11.0, "low": 9.0, "close": 10.0, "volume": 1000.0}, index=idx)

    def bar0(algo, ctx, data):
        algo.order(ctx.asset, 250, tag="<b>tag</b><img src=y onerror=alert(2)>")
        algo.order(ctx.asset, 5, style=BracketOrder(entry_style=LimitOrder(9.5), stop_loss_price=12,
                                                    take_profit_price=13))

    def bar1(algo, ctx, data):
        algo.order(ctx.asset, -100, style=TrailingStopOrder(trail_amount=0.5))

    return run({0: bar0, 1: bar1}, from_frame(df, symbol=HOSTILE), symbol=HOSTILE,
               slippage=NoSlippage(volume_limit=0.1))


# ================================================================ timeline
def test_timeline_rows_follow_brackets_and_traces_are_per_status(blog):
    fig = plot_order_timeline(blog)
    d = fig.to_dict()
    labels = list(d["layout"]["yaxis"]["ticktext"])
    assert len(labels) == len(blog.orders) == 12
    assert [int(re.search(r"#(\d+)", s).group(1)) for s in labels] == list(range(1, 13))
    assert labels[0] == "#1 buy 1 entry market"
    assert labels[1] == "↳ #2 sell 1 stop-loss stop 150"
    assert labels[2] == "↳ #3 sell 1 take-profit limit 250"
    assert list(values(d["layout"]["yaxis"]["tickvals"])) == list(range(12))
    names = [t["name"] for t in d["data"]]
    assert names == ["held", "open", "buy fills", "sell fills", "filled", "canceled", "rejected", "bracket link",
                     "OCO link"]
    kinds = {t["name"]: (t["type"], t["mode"]) for t in d["data"]}
    assert kinds["open"] == ("scatter", "lines") and kinds["canceled"] == ("scatter", "markers")
    assert "Order timeline — 12 orders" in d["layout"]["title"]["text"]


def test_status_segments_run_between_the_events_that_set_them(blog):
    tr = traces(plot_order_timeline(blog))
    drawn = {}  # (row, status) -> list of (start, end)
    for status in ("held", "open"):
        for xs, row in pieces(tr[status]):
            drawn.setdefault((int(row), status), []).append((xs[0], xs[-1]))
    expected = {}
    rows = {oid: k for k, oid in enumerate(order_rows(blog.orders))}
    for oid, ev in blog.order_events.groupby("order_id"):
        st = ev["status_after"].tolist()
        dt = list(ev["dt"])
        k = 0
        while k < len(st):
            j = k
            while j + 1 < len(st) and st[j + 1] == st[k]:
                j += 1
            if st[k] in ("held", "open"):
                end = dt[j + 1] if j + 1 < len(st) else blog.prices["dt"].iloc[-1]
                expected.setdefault((rows[oid], st[k]), []).append((dt[k], end))
            k = j + 1
    assert drawn == expected
    # order #2, the first stop-loss: held 01-11 -> 01-12, open 01-12 -> 01-16, canceled on 01-16
    assert drawn[(1, "held")] == [(day("2018-01-11"), day("2018-01-12"))]
    assert drawn[(1, "open")] == [(day("2018-01-12"), day("2018-01-16"))]
    canceled = tr["canceled"]
    assert list(values(canceled["y"])[:1]) == [1.0]
    assert times(canceled["x"])[0] == day("2018-01-16")


def test_terminal_markers_and_hover_texts_carry_every_event_and_reason(blog):
    tr = traces(plot_order_timeline(blog))
    canceled = dict(zip(values(tr["canceled"]["y"]).astype(int), tr["canceled"]["hovertext"]))
    text = canceled[1]
    assert "2018-01-11 held: stop-loss held until entry #1 fills" in text
    assert "2018-01-12 activated: entry #1 filled; working from the next bar" in text
    assert "2018-01-16 canceled: OCO sibling #3 filled" in text
    rejected = dict(zip(values(tr["rejected"]["y"]).astype(int), tr["rejected"]["hovertext"]))
    assert set(rejected) == {9, 10, 11}
    assert "rejected: stop-loss 90 is below the entry stop 290" in rejected[9]
    assert set(values(tr["filled"]["y"]).astype(int)) == {0, 2, 3, 5, 6, 8}
    assert tr["filled"]["marker"]["symbol"] != tr["canceled"]["marker"]["symbol"] != tr["rejected"]["marker"]["symbol"]
    colors = {tr[s]["marker"]["color"] for s in ("filled", "canceled", "rejected")}
    assert len(colors) == 3
    # the segments carry the same full history in their hover text
    open_text = [h for h in tr["open"]["hovertext"] if "#2 sell 1" in h]
    assert open_text and all("OCO sibling #3 filled" in h for h in open_text)


def test_timeline_fill_markers_and_links(blog):
    tr = traces(plot_order_timeline(blog))
    fills = blog.fills
    buys = fills[fills["qty"] > 0]
    assert times(tr["buy fills"]["x"]) == list(buys["dt"])
    rows = {oid: k for k, oid in enumerate(order_rows(blog.orders))}
    assert list(values(tr["buy fills"]["y"]).astype(int)) == [rows[o] for o in buys["order_id"]]
    assert "fill +1 @ 210" in tr["buy fills"]["hovertext"][0]
    links = pieces(tr["bracket link"])
    assert len(links) == 8  # two children for each of the four entries
    first = tr["bracket link"]
    assert list(values(first["y"])[:2]) == [0.0, 1.0] and times(first["x"])[:2] == [day("2018-01-11")] * 2
    assert "#1 → #2" in first["hovertext"][0]
    oco = tr["OCO link"]
    assert list(values(oco["y"])[:2]) == [1.0, 2.0] and "#2 ↔ #3" in oco["hovertext"][0]


def test_timeline_filters_asset_status_window_and_max_orders(blog):
    def rows(fig):
        return list(fig.to_dict()["layout"]["yaxis"]["ticktext"])

    canceled = rows(plot_order_timeline(blog, status="canceled"))
    assert [s.split()[0] for s in canceled] == ["#2", "#5", "#8"]
    both = rows(plot_order_timeline(blog, status=["canceled", "rejected"]))
    assert len(both) == 6
    # alive at some time between 2018-01-25 and 2018-02-01: the second bracket only
    window = plot_order_timeline(blog, start="2018-01-25", end="2018-02-01")
    assert [re.search(r"#(\d+)", s).group(1) for s in rows(window)] == ["4", "5", "6"]
    assert [pd.Timestamp(x) for x in window.to_dict()["layout"]["xaxis"]["range"]] == [day("2018-01-25"),
                                                                                      day("2018-02-01")]
    assert len(rows(plot_order_timeline(blog, max_orders=4))) == 4
    assert "4 of 12 orders" in plot_order_timeline(blog, max_orders=4).layout.title.text
    assert len(rows(plot_order_timeline(blog, asset="testbrackets"))) == 12
    empty = plot_order_timeline(blog, status="expired")
    assert len(empty.data) == 0 and "no orders match" in empty.layout.annotations[0].text
    with pytest.raises(ValueError, match="`status`"):
        plot_order_timeline(blog, status="done")
    with pytest.raises(ValueError, match="`asset`"):
        plot_order_timeline(blog, asset="MSFT")
    with pytest.raises(ValueError, match="`start`"):
        plot_order_timeline(blog, start="2018-03-01", end="2018-02-01")


def test_timeline_asset_filter_on_two_assets():
    idx = pd.date_range("2021-01-04", periods=4, freq="B")
    df = pd.DataFrame({"open": 10.0, "high": 11.0, "low": 9.0, "close": 10.0, "volume": 1e6}, index=idx)

    def place(algo, ctx, data):
        algo.order(algo.symbol("AAA"), 1)
        algo.order(algo.symbol("BBB"), 2)
        algo.order(algo.symbol("BBB"), -3, limit_price=50)

    res = run({0: place}, {"AAA": df, "BBB": df * 2}, symbol="AAA")
    fig = plot_order_timeline(res)
    assert list(fig.layout.yaxis.ticktext) == ["#1 AAA buy 1 market", "#2 BBB buy 2 market",
                                               "#3 BBB sell 3 limit 50"]
    only = plot_order_timeline(res, asset="BBB")
    assert list(only.layout.yaxis.ticktext) == ["#2 buy 2 market", "#3 sell 3 limit 50"]
    # the open limit order runs to the end of the run
    (xs, row), = pieces(traces(only)["open"])[-1:]
    assert row == 1 and xs[-1] == idx[-1]


def test_oco_legs_sit_together_and_link():
    def place(algo, ctx, data):
        algo.order(ctx.asset, 1, limit_price=50)
        algo.order(ctx.asset, 5, style=OCOOrder((5, StopOrder(105)), (-5, StopOrder(95))))

    res = run({0: place}, bars([(100, 101, 99, 100), (100, 106, 99, 104), (104, 105, 103, 104)]))
    assert order_rows(res.orders) == [1, 2, 3]
    tr = traces(plot_order_timeline(res))
    assert "canceled: OCO sibling #2 filled" in tr["canceled"]["hovertext"][0]
    assert "#2 ↔ #3" in tr["OCO link"]["hovertext"][0]


def test_ten_thousand_orders_build_fast_with_few_traces():
    rng = np.random.default_rng(3)
    close = 100 + np.cumsum(rng.normal(0, 1, 502))
    store = bars([(c, c + 1.5, c - 1.5, c) for c in close])

    def every_bar(algo, ctx, data):
        px = data.current(ctx.asset, "close")
        algo.order(ctx.asset, 10, style=BracketOrder(entry_style=LimitOrder(px - 0.5), stop_loss_price=px - 3,
                                                     take_profit_price=px + 3))
        algo.order(ctx.asset, 5, style=OCOOrder((5, StopOrder(px + 1)), (-5, StopOrder(px - 1))))
        algo.order(ctx.asset, -5, style=TrailingStopOrder(trail_amount=1.0))
        for k in range(14):
            algo.order(ctx.asset, 1, limit_price=px - 2 - k % 5, time_in_force="DAY")

    res = run(dict.fromkeys(range(500), every_bar), store)
    assert len(res.orders) == 10_000
    plot_order_timeline(res, max_orders=10)  # warm the plotly imports
    t0 = time.perf_counter()
    fig = plot_order_timeline(res)
    elapsed = time.perf_counter() - t0
    assert elapsed < 2.0, f"timeline of 10k orders took {elapsed:.2f}s"
    d = fig.to_dict()
    assert len(d["layout"]["yaxis"]["ticktext"]) == 10_000
    assert len(d["data"]) <= 11
    assert {t["type"] for t in d["data"] if t["name"] in ("open", "expired", "buy fills")} == {"scattergl"}
    # the view starts on the first rows and pans to the rest
    assert list(d["layout"]["yaxis"]["range"]) == [39.5, -0.5]
    assert d["layout"]["dragmode"] == "pan"


# ================================================================ equity
def test_plot_result_equity_drawdown_and_fills(blog):
    fig = plot_result(blog)
    d = fig.to_dict()
    names = [t["name"] for t in d["data"]]
    assert names == ["portfolio value", "drawdown", "TESTBRACKETS close", "buys", "sells"]
    tr = traces(fig)
    assert (tr["portfolio value"]["xaxis"], tr["drawdown"]["xaxis"], tr["buys"]["xaxis"]) == ("x", "x2", "x3")
    assert d["layout"]["xaxis"]["matches"] == "x3" or d["layout"]["xaxis2"].get("matches") == "x3"
    np.testing.assert_allclose(values(tr["portfolio value"]["y"]), blog.perf["portfolio_value"].to_numpy())
    dd = values(tr["drawdown"]["y"])
    assert tr["drawdown"]["fill"] == "tozeroy"
    assert dd.min() == pytest.approx(blog.metrics["max_drawdown"] * 100)
    buys, sells = blog.fills[blog.fills["qty"] > 0], blog.fills[blog.fills["qty"] < 0]
    assert list(values(tr["buys"]["y"])) == buys["price"].tolist() == [210.0, 150.0, 240.0]
    assert times(tr["buys"]["x"]) == list(buys["dt"])
    assert list(values(tr["sells"]["y"])) == sells["price"].tolist()
    assert tr["buys"]["marker"]["symbol"] == "triangle-up" and tr["sells"]["marker"]["symbol"] == "triangle-down"
    hover = tr["sells"]["hovertext"][0]
    assert "#3 take-profit limit 250" in hover and "-1 @ 250" in hover and "limit 250.0000 reached" in hover


def test_fill_marker_size_grows_with_quantity():
    def place(algo, ctx, data):
        algo.order(ctx.asset, 100)
        algo.order(ctx.asset, 400)

    res = run({0: place}, bars([(10, 11, 9, 10)] * 3))
    sizes = values(traces(plot_result(res))["buys"]["marker"]["size"])
    assert sizes[1] > sizes[0]


def test_plot_result_minute_run_uses_utc_times():
    res = run_algorithm(_MinuteTrail, data="AAPL", data_frequency="minute", start="2012-10-01", end="2012-10-08")
    assert len(res.prices) > 2_000
    fig = plot_result(res)
    tr = traces(fig)
    fills = res.fills
    assert times(tr["buys"]["x"]) == list(fills[fills["qty"] > 0]["dt"].dt.tz_convert(None))
    # equity points sit at each session's last bar
    last_bar = res.prices.groupby(res.prices["dt"].dt.date)["dt"].max().dt.tz_convert(None)
    assert times(tr["portfolio value"]["x"]) == list(last_bar)
    assert fig.layout.xaxis3.title.text == "time (UTC)"
    # thousands of bars: plain SVG lines (WebGL only above WEBGL_THRESHOLD points: starting WebGL contexts
    # costs more than drawing a few thousand points), and the trailing view draws a line, not candles
    assert tr["AAPL close"]["type"] == "scatter"
    trail_fig = plot_trailing_stops(res, max_candles=100)
    assert trail_fig.data[0].type == "scatter"
    assert any(t.name.endswith("trailing stop") for t in trail_fig.data)


class _MinuteTrail(TradingAlgorithm):
    def initialize(self, context):
        context.asset = self.symbol("AAPL")
        context.n = 0

    def handle_data(self, context, data):
        context.n += 1
        if context.n == 5:
            self.order(context.asset, 100)
        elif context.n == 6:
            self.order(context.asset, -100, style=TrailingStopOrder(trail_percent=0.002))


# ================================================================ trailing stops
def test_trailing_step_line_follows_the_event_log(trail):
    fig = plot_trailing_stops(trail)
    tr = traces(fig)
    ev = trail.order_events
    stops = ev[ev["order_id"] == 3]
    line = tr["#3 trailing stop"]
    assert line["line"]["shape"] == "hv"
    assert list(values(line["y"])) == stops["stop"].tolist() == [98.0, 102.0, 104.0, 104.0]
    assert times(line["x"]) == list(stops["dt"])
    assert "trailed: stop 102 (high 104.0000)" in line["hovertext"][1]
    # the trigger (at the stop) and the fill (at the fill price) are marked
    assert list(values(tr["trigger"]["y"])) == [104.0] and times(tr["trigger"]["x"]) == [day("2021-01-08")]
    assert list(values(tr["trailing fills"]["y"])) == [104.0]
    assert "stop 104.0000 reached" in tr["trailing fills"]["hovertext"][0]


def test_live_trailing_stop_limit_runs_to_the_end_with_its_limit(trail):
    tr = traces(plot_trailing_stops(trail))
    ev = trail.order_events
    ev4 = ev[ev["order_id"] == 4]
    stop_line, limit_line = tr["#4 trailing stop limit"], tr["#4 limit"]
    end = trail.prices["dt"].iloc[-1]
    assert list(values(stop_line["y"])) == [*ev4["stop"].tolist(), ev4["stop"].iloc[-1]] == [90, 94, 96, 96]
    assert times(stop_line["x"])[-1] == end
    assert list(values(limit_line["y"])) == [89, 93, 95, 95] and limit_line["line"]["dash"] == "dot"
    assert "still working at the end of the run" in stop_line["hovertext"][-1]


def test_other_orders_levels_split_where_they_were_updated(trail):
    tr = traces(plot_trailing_stops(trail))
    segments = pieces(tr["other order levels"])
    end = trail.prices["dt"].iloc[-1]
    assert segments == [([day("2021-01-04"), day("2021-01-06")], 95.0), ([day("2021-01-06"), end], 96.0)]
    assert "modified: limit=96" in tr["other order levels"]["hovertext"][3]
    assert "dip buy" not in "".join(tr["other order levels"]["hovertext"])  # only the trailing orders show tags
    assert tr["other fills"]["y"] is not None


def test_candles_or_line(trail):
    assert plot_trailing_stops(trail).data[0].type == "candlestick"
    assert plot_trailing_stops(trail, candles=False).data[0].type == "scatter"
    assert plot_trailing_stops(trail, max_candles=3).data[0].type == "scatter"
    assert plot_trailing_stops(trail).layout.xaxis.rangeslider.visible is False


def test_no_trailing_stops_still_draws_price_and_bracket_levels(blog):
    fig = plot_trailing_stops(blog)
    assert fig.layout.title.text.startswith("No trailing-stop orders in this run on TESTBRACKETS")
    tr = traces(fig)
    # TestBrackets bars are close-only (o = h = l = c): a close line instead of flat candles
    assert tr["TESTBRACKETS close"]["type"] == "scatter"
    stop_losses = pieces(tr["stop-loss levels"])
    assert stop_losses[0] == ([day("2018-01-11"), day("2018-01-16")], 150.0)  # held then open, same level
    targets = pieces(tr["take-profit levels"])
    assert targets[0] == ([day("2018-01-11"), day("2018-01-16")], 250.0)
    entries = pieces(tr["entry levels"])
    assert entries[0] == ([day("2018-01-21"), day("2018-01-31")], 200.0)
    # rejected orders were never live: no level for #10-#12
    assert all(level not in (90.0, 300.0) for _, level in stop_losses + targets)


# ================================================================ escaping, layering, methods
def test_user_strings_are_escaped_in_every_figure(hostile):
    figs = [plot_result(hostile), plot_order_timeline(hostile), plot_trailing_stops(hostile)]
    for fig in figs:
        texts = list(all_strings(fig.to_dict()))
        joined = "\n".join(texts)
        assert "<img" not in joined.lower()
        assert "<b>tag" not in joined
    timeline = "\n".join(all_strings(figs[1].to_dict()))
    assert "&lt;img src=x onerror=alert(1)&gt;" in timeline
    assert "tag: &lt;b&gt;tag&lt;/b&gt;&lt;img src=y onerror=alert(2)&gt;" in timeline
    assert "&lt;img src=x onerror=alert(1)&gt; close" in "\n".join(all_strings(figs[0].to_dict()))


def test_result_methods_return_figures(trail):
    assert isinstance(trail.plot(), go.Figure)
    assert isinstance(trail.plot_order_timeline(status="filled"), go.Figure)
    fig = trail.plot_trailing_stops(asset="X")
    assert isinstance(fig, go.Figure) and fig.layout.title.text == "Trailing stops on X — 2 orders"


def test_missing_plotly_gives_the_install_hint(monkeypatch, trail):
    monkeypatch.setitem(sys.modules, "plotly.graph_objects", None)
    with pytest.raises(ImportError, match=re.escape('pip install "rustybt_nb[notebook]"')):
        plot_order_timeline(trail)


def test_importing_the_views_loads_no_plotly():
    code = ("import sys; import rustybt_nb.analytics.equity, rustybt_nb.analytics.timeline, "
            "rustybt_nb.analytics.trailing, rustybt_nb.analytics.tables, rustybt_nb.analytics.style; "
            "print('plotly' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


def test_empty_run_gives_empty_but_valid_figures():
    res = run({}, bars([(10, 11, 9, 10)] * 3))
    tl = plot_order_timeline(res)
    assert "this run placed no orders" in tl.layout.annotations[0].text
    eq = traces(plot_result(res))
    assert list(eq) == ["portfolio value", "drawdown", "X close"]
    tr = plot_trailing_stops(res)
    assert tr.layout.title.text.startswith("No trailing-stop orders")
