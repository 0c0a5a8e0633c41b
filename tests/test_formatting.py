"""rustybt_nb.formatting: the one vocabulary of numbers, times, escaped user strings and
order descriptions shared by the text reports and the notebook views; and the one list
of live and final order statuses (rustybt_nb.finance.order) they all read."""

from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd
import pytest

from rustybt_nb import TradingAlgorithm, run_algorithm
from rustybt_nb.finance.execution import BracketOrder, LimitOrder, MarketOrder, TrailingStopOrder
from rustybt_nb.finance.order import (
    LIVE,
    LIVE_NAMES,
    LIVE_STATUSES,
    ORDER_STATUS,
    STATUS_NAMES,
    TERMINAL,
    TERMINAL_NAMES,
    TERMINAL_STATUSES,
)
from rustybt_nb.formatting import (
    INF,
    NA,
    TEXT,
    describe_order,
    escape,
    is_daily,
    is_missing,
    number,
    order_description,
    percent,
    role_text,
    short_number,
    time_labels,
    time_text,
)

NAN = math.nan


# ================================================================ missing values
@pytest.mark.parametrize("value", [None, NAN, np.nan, np.float64("nan"), pd.NaT, np.datetime64("NaT"), pd.NA])
def test_missing_values(value):
    assert is_missing(value)


@pytest.mark.parametrize("value", [0, 0.0, -0.0, "", "nan", [], [NAN], np.array([NAN, 1.0]), math.inf,
                                   pd.Timestamp("2018-01-01")])
def test_present_values(value):
    assert not is_missing(value)


# ================================================================ numbers
def test_number_fixed_decimals_and_thousands():
    assert number(1234.5) == "1,234.50"
    assert number(1234.5, 0) == "1,234"
    assert number(-0.125, 3) == "-0.125"
    assert number(np.float64(2.5)) == "2.50" and number(3) == "3.00"


@pytest.mark.parametrize("value", [-0.0, -0.001, -0.004999])
def test_number_never_shows_negative_zero(value):
    assert number(value) == "0.00"
    assert percent(value / 100) == "0.00%"
    assert short_number(value / 100) == "0"
    assert short_number(value / 100, signed=True) == "0"


def test_number_missing_and_infinite_html_and_text_forms():
    for missing in (None, NAN, pd.NaT):
        assert number(missing) == NA == "\N{EN DASH}"
        assert number(missing, **TEXT) == "n/a"
        assert percent(missing, **TEXT) == "n/a"
        assert number(missing, na="") == ""
    assert number(math.inf) == INF == "∞" and number(-math.inf) == "-∞"
    assert number(math.inf, **TEXT) == "inf" and number(-math.inf, **TEXT) == "-inf"
    assert percent(math.inf) == "∞"


def test_number_trims_down_to_min_decimals_and_signs():
    assert number(65.6, 4, min_decimals=2) == "65.60"
    assert number(65.60651, 4, min_decimals=2) == "65.6065"
    assert number(1234.0, 4, min_decimals=0) == "1,234"
    assert number(12.5, 1, signed=True) == "+12.5"
    assert number(-12.5, 1, signed=True) == "-12.5"
    assert number(0.0, 1, signed=True) == "0.0"


def test_percent():
    assert percent(0.0125) == "1.25%"
    assert percent(-0.1587) == "-15.87%"
    assert percent(123.456) == "12,345.60%"
    assert percent(0.05, min_decimals=0) == "5%"
    assert percent(0.025, min_decimals=0) == "2.5%"
    assert percent(0.05) == f"{0.05:.2%}"  # the same rounding as the format spec


def test_short_number_is_a_price_level_or_a_quantity():
    assert short_number(65.6065) == "65.6065"
    assert short_number(210.5) == "210.5"
    assert short_number(12.0) == "12"
    assert short_number(1500) == "1,500"
    assert short_number(1234.56789) == "1,234.5679"
    assert short_number(100, signed=True) == "+100"
    assert short_number(-50, signed=True) == "-50"
    assert short_number(0, signed=True) == "0"
    assert short_number(NAN) == NA and short_number(None, na="") == ""


# ================================================================ times
def test_time_text_daily_intraday_and_tz_aware():
    assert time_text(pd.Timestamp("2018-01-16")) == "2018-01-16"
    assert time_text(pd.Timestamp("2012-01-04 16:35:59")) == "2012-01-04 16:35"
    utc = pd.Timestamp("2012-10-01 13:31", tz="UTC")
    assert time_text(utc) == "2012-10-01 13:31 UTC"
    assert time_text(utc, "America/New_York") == "2012-10-01 09:31 EDT"
    assert time_text(pd.Timestamp("2012-11-19 14:31", tz="UTC"), "America/New_York") == "2012-11-19 09:31 EST"
    assert time_text(pd.Timestamp("2018-01-16", tz="UTC")) == "2018-01-16"  # a session label
    # the zone is applied first: 00:00 UTC is 09:00 in Tokyo, a trading time, not a date
    assert time_text(pd.Timestamp("2018-01-16", tz="UTC"), "Asia/Tokyo") == "2018-01-16 09:00 JST"
    assert time_text(pd.Timestamp("2018-01-16 10:00"), "America/New_York") == "2018-01-16 10:00"  # naive: as is
    assert time_text("2018-01-16") == "2018-01-16"
    assert time_text(np.datetime64("2018-01-16T09:30")) == "2018-01-16 09:30"


def test_time_text_missing_and_not_a_time():
    assert time_text(None) == NA and time_text(pd.NaT) == NA and time_text(NAN) == NA
    assert time_text(None, na="?") == "?"
    assert time_text("soon") == "soon"


def test_time_labels_one_form_per_column():
    daily = np.array(["2018-01-16", "2018-01-17", "NaT", "2018-01-16"], dtype="M8[ns]")
    assert is_daily(daily)
    assert time_labels(daily) == ["2018-01-16", "2018-01-17", "", "2018-01-16"]
    assert time_labels(daily, na=NA)[2] == NA
    intraday = np.array(["2012-01-04T00:00", "2012-01-04T16:35:30", "2012-01-04T00:00"], dtype="M8[ns]")
    assert not is_daily(intraday)
    assert time_labels(intraday) == ["2012-01-04 00:00", "2012-01-04 16:35", "2012-01-04 00:00"]
    assert time_labels(intraday, daily=True) == ["2012-01-04"] * 3
    assert time_labels(np.array([], dtype="M8[ns]")) == []


def test_time_labels_and_time_text_agree_on_single_values():
    for value in ("2018-01-16", "2012-01-04T16:35"):
        t = np.array([value], dtype="M8[ns]")
        assert time_labels(t) == [time_text(pd.Timestamp(value))]


# ================================================================ escaping
def test_escape_every_html_special_character():
    assert escape("""<b a="1">&'</b>""") == "&lt;b a=&#x22;1&#x22;&gt;&amp;&#x27;&lt;/b&gt;"
    hostile = """<img src=x onerror="alert('x')"> & co"""
    out = escape(hostile)
    assert not set("<>\"'") & set(out)
    assert html.unescape(out) == hostile


def test_escape_missing_and_other_values():
    assert escape(None) == "" and escape(NAN) == ""
    assert escape(12) == "12" and escape("plain text") == "plain text"


def test_escape_wraps_long_text_into_hover_lines():
    text = "a <b> " + "word " * 40
    out = escape(text, wrap=30)
    lines = out.split("<br>  ")
    assert len(lines) > 1 and all(len(html.unescape(line)) <= 30 for line in lines)
    assert "&lt;b&gt;" in lines[0] and "<b>" not in out
    assert escape("short", wrap=30) == "short"


# ================================================================ orders
@pytest.mark.parametrize("args,text", [
    (("market", None), "market"),
    (("market", "entry"), "entry market"),
    (("stop", "stop_loss", NAN, 150.0), "stop-loss stop 150"),
    (("limit", "take_profit", 300.0, NAN), "take-profit limit 300"),
    (("stop_limit", NAN, 99.5, 100.0), "stop limit 99.5 100"),
    (("trailing_stop", None, NAN, 95.1234, NAN, 0.05), "trailing stop trail 5%"),
    (("trailing_stop", None, NAN, 95.0, 2.5, NAN), "trailing stop trail 2.5"),
    (("trailing_stop_limit", None, 94.5, 95.0, NAN, 0.025), "trailing stop limit trail 2.5%"),
    (("limit", None, 1234.56789), "limit 1,234.5679"),
    (("limit", "", None), "limit"),
])
def test_order_description(args, text):
    assert order_description(*args) == text


def test_role_text():
    assert role_text("stop_loss") == "stop-loss"
    assert role_text(None) == role_text(NAN) == role_text("") == ""


# ================================================================ statuses
def test_status_sets_come_from_the_ordered_lists():
    assert frozenset(LIVE_STATUSES) == LIVE and frozenset(TERMINAL_STATUSES) == TERMINAL
    assert not LIVE & TERMINAL and set(ORDER_STATUS) == LIVE | TERMINAL
    assert LIVE_NAMES == ("held", "open", "triggered", "partial")
    assert TERMINAL_NAMES == ("filled", "canceled", "rejected", "expired")
    assert STATUS_NAMES == LIVE_NAMES + TERMINAL_NAMES
    assert all(type(n) is str for n in STATUS_NAMES)
    # a str enum hashes as its value: the plain strings of the frames test against the sets too
    assert "open" in LIVE and "partial" in LIVE and "filled" in TERMINAL and "filled" not in LIVE


def test_the_views_use_the_engine_status_lists():
    from rustybt_nb.analytics import display, style, timeline
    from rustybt_nb.finance import level_index

    assert level_index.LIVE is LIVE
    assert display.STATUS_NAMES is STATUS_NAMES
    assert list(style.STATUS_COLORS) == list(STATUS_NAMES)
    assert list(style.STATUS_BACKGROUNDS) == list(STATUS_NAMES)
    assert set(style.TERMINAL_SYMBOLS) == set(TERMINAL_NAMES)
    assert timeline.LIVE_NAMES is LIVE_NAMES and timeline.TERMINAL_NAMES is TERMINAL_NAMES
    assert style.check_status(["partially_filled", "CANCELLED", ORDER_STATUS.HELD]) == ["partial", "canceled", "held"]
    with pytest.raises(ValueError, match="held, open, triggered, partial, filled, canceled, rejected, expired"):
        style.check_status("done")


# ================================================================ one description for log and tables
class BracketAndTrails(TradingAlgorithm):
    """Bar 1: a market bracket, a trailing stop by percent and one by amount, and a resting limit."""

    def initialize(self, context):
        context.asset = self.symbol("AAPL")
        context.bar = 0

    def handle_data(self, context, data):
        context.bar += 1
        if context.bar != 2:
            return
        price = data.current(context.asset, "close")
        a = context.asset
        self.order(a, 100, style=BracketOrder(entry_style=MarketOrder(), stop_loss_price=round(price * 0.9, 2),
                                              take_profit_price=round(price * 1.1, 3)))
        self.order(a, 50)
        self.order(a, -50, style=TrailingStopOrder(trail_percent=0.025))
        self.order(a, 30)
        self.order(a, -30, style=TrailingStopOrder(trail_amount=1.5))
        self.order(a, 10, style=LimitOrder(round(price * 0.5, 4)))


def test_log_text_and_tables_describe_each_order_with_the_one_function():
    from rustybt_nb import results
    from rustybt_nb.analytics import display, equity, tables, timeline, trailing

    for module in (results, tables, timeline, trailing, equity):
        assert module.describe_order is describe_order  # (which calls order_description)
    for module in (results, tables, display):
        assert getattr(module, "time_text", time_text) is time_text

    res = run_algorithm(BracketAndTrails, data="AAPL", start="2012-01-03", end="2012-03-30")
    types = res.orders_table().data.set_index("id")["type"]
    assert {"entry market", "trailing stop trail 2.5%", "trailing stop trail 1.5"} <= set(types)
    assert any(t.startswith("stop-loss stop ") for t in types)
    assert any(t.startswith("take-profit limit ") for t in types)
    log = res.order_log_text().splitlines()
    for o in res.orders.itertuples(index=False):
        desc = order_description(o.style, o.role, o.limit, o.stop, o.trail_amount, o.trail_percent)
        assert types[o.id] == desc
        first = next(line for line in log if f"  #{o.id:<3} " in line)  # submitted or held: as placed
        assert f" {desc} " in first, (desc, first)
