"""The notebook tables: the partial-fill table's numbers on a volume-capped scripted run,
the styled tables' formatting and status colours, and HTML escaping of user strings."""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest
from helpers import bars, run

from rustybt_nb.analytics.tables import (
    ORDER_TABLE_COLUMNS,
    PARTIAL_FILL_COLUMNS,
    orders_frame,
    orders_table,
    partial_fill_table,
    partial_fills,
)
from rustybt_nb.data import from_frame
from rustybt_nb.finance.execution import BracketOrder, LimitOrder, MarketOrder
from rustybt_nb.finance.slippage import NoSlippage

pytest.importorskip("jinja2")

HOSTILE = "<img src=x onerror=alert(1)>"
# (open, high, low, close, volume); with volume_limit 0.1 at most 100, 90, 55, 100, 100 shares fill per bar
CAPPED_BARS = [(10, 11, 9, 10, 1000), (10, 11, 9, 10.5, 1000), (11, 12, 10, 11.5, 900), (12, 12.5, 11, 12, 555),
               (12, 13, 11, 12.5, 1000), (12, 13, 11, 12.5, 1000)]


def _capped(symbol="X", tag=None):
    """Bar 0: buy 250 at market and sell 120 with a limit of 10.2. The buy fills 100, 90, 55
    (the whole cap of bars 1-3) and its last 5 on bar 4; the sell limit is reached on bar 4
    (open 12 >= 10.2, filled at the open) and gets the 95 left of that bar's cap, then its
    last 25 on bar 5."""
    idx = pd.date_range("2021-01-04", periods=len(CAPPED_BARS), freq="B")
    df = pd.DataFrame(CAPPED_BARS, index=idx, columns=["open", "high", "low", "close", "volume"])

    def place(algo, ctx, data):
        algo.order(ctx.asset, 250, tag=tag)
        algo.order(ctx.asset, -120, limit_price=10.2)

    return run({0: place}, from_frame(df, symbol=symbol), symbol=symbol, slippage=NoSlippage(volume_limit=0.1))


@pytest.fixture(scope="module")
def capped():
    return _capped()


@pytest.fixture(scope="module")
def brackets():
    """A filled long bracket (target hit), an open limit order and a rejected bracket."""
    def place(algo, ctx, data):
        algo.order(ctx.asset, 10, style=BracketOrder(entry_style=MarketOrder(), stop_loss_price=95,
                                                     take_profit_price=104))
        algo.order(ctx.asset, 3, limit_price=50)
        algo.order(ctx.asset, 10, style=BracketOrder(entry_style=LimitOrder(99), stop_loss_price=101,
                                                     take_profit_price=110))

    return run({0: place}, bars([(100, 101, 99, 100), (100, 101, 99, 100), (101, 105, 100, 103), (103, 104, 102, 103)]))


# ================================================================ partial_fill_table
def test_partial_fill_slices_caps_cumulative_and_remaining(capped):
    t = partial_fill_table(capped)
    assert list(t.columns) == PARTIAL_FILL_COLUMNS
    assert t["order_id"].tolist() == [1, 1, 1, 1, 2, 2]
    assert t["slice"].tolist() == [1, 2, 3, 4, 1, 2]
    assert t["asset"].tolist() == ["X"] * 6
    assert list(t["dt"]) == list(pd.to_datetime(["2021-01-05", "2021-01-06", "2021-01-07", "2021-01-08",
                                                 "2021-01-08", "2021-01-11"]))
    assert t["qty"].tolist() == [100, 90, 55, 5, -95, -25]
    assert t["price"].tolist() == [10, 11, 12, 12, 12, 12]
    assert t["bar_volume"].tolist() == [1000, 900, 555, 1000, 1000, 1000]
    assert t["volume_cap"].tolist() == [100, 90, 55, 100, 100, 100]  # bar 4's 100 is shared: 5 + 95
    assert t["cum_filled"].tolist() == [100, 190, 245, 250, -95, -120]
    assert t["remaining"].tolist() == [150, 60, 5, 0, -25, 0]
    # the cap is respected per bar and asset, across orders
    per_bar = t.groupby("dt")["qty"].apply(lambda q: q.abs().sum())
    caps = t.groupby("dt")["volume_cap"].first()
    assert (per_bar <= caps).all()


def test_partial_fill_vwap_arrival_and_slippage(capped):
    t = partial_fill_table(capped)
    buy, sell = t[t["order_id"] == 1], t[t["order_id"] == 2]
    vwap_buy = (100 * 10 + 90 * 11 + 55 * 12 + 5 * 12) / 250
    assert vwap_buy == 10.84
    assert buy["vwap"].tolist() == pytest.approx([vwap_buy] * 4)
    assert sell["vwap"].tolist() == pytest.approx([12.0, 12.0])
    # arrival = the open of the first bar each order could fill on (bar 1, open 10)
    assert t["arrival_price"].tolist() == [10.0] * 6
    # buy paid 8.4 % more than arrival -> +840 bps (worse); sell received 20 % more -> -2000 bps (better)
    assert buy["slippage_bps"].tolist() == pytest.approx([840.0] * 4)
    assert sell["slippage_bps"].tolist() == pytest.approx([-2000.0] * 2)


def test_partial_fill_table_filters_and_empty_cases(capped, brackets):
    assert len(partial_fill_table(capped, asset="x")) == 6
    empty = partial_fill_table(brackets)
    assert empty.empty and list(empty.columns) == PARTIAL_FILL_COLUMNS
    assert empty["order_id"].dtype == np.int64 and empty["slice"].dtype == np.int64
    with pytest.raises(ValueError, match="`asset`"):
        partial_fill_table(capped, asset="NOPE")


def test_volume_cap_is_nan_without_a_volume_limit(capped):
    no_limit = copy.copy(capped)
    no_limit.settings = {**capped.settings, "volume_limit": None}
    t = partial_fill_table(no_limit)
    assert len(t) == 6 and t["volume_cap"].isna().all()
    assert "no volume limit" in partial_fills(no_limit).caption


# ================================================================ partial_fills (Styler)
def test_partial_fills_styler_formats_groups_and_captions(capped):
    styler = partial_fills(capped)
    assert styler.caption.startswith("Partial fills: 2 orders filled in 6 slices (volume limit 0.1 of bar volume")
    html = styler.to_html()
    assert 'rowspan="4"' in html and 'rowspan="2"' in html  # each order's label spans its slices
    assert "#1 buy 250 X market (filled)" in html and "#2 sell 120 X limit 10.2 (filled)" in html
    assert ">10.84<" in html and ">+840.0<" in html and ">-2000.0<" in html
    assert ">1,000<" in html and ">+100<" in html and ">-95<" in html
    assert "border-top: 2px solid" in html  # a rule between orders
    # the per-order numbers appear once per order
    assert html.count(">10.84<") == 1
    data = styler.data
    assert data.index.names == ["order", "slice"] and len(data) == 6


def test_partial_fills_empty_caption(brackets):
    styler = partial_fills(brackets)
    assert styler.caption.startswith("No order filled in several slices")
    assert styler.data.empty
    assert "No order filled in several slices" in styler.to_html()


# ================================================================ orders_table
def test_orders_frame_types_links_and_values(brackets):
    f = orders_frame(brackets)
    assert list(f.columns) == ORDER_TABLE_COLUMNS
    rows = f.set_index("id")
    assert rows.loc[1, "type"] == "entry market" and rows.loc[1, "links"] == "children #2, #3"
    assert rows.loc[2, "type"] == "stop-loss stop 95"
    assert rows.loc[2, "links"] == "stop-loss of #1; OCO with #3"
    assert rows.loc[3, "status"] == "filled" and rows.loc[3, "avg_price"] == 104.0
    assert rows.loc[2, "status"] == "canceled" and rows.loc[2, "reason"] == "OCO sibling #3 filled"
    assert rows.loc[4, "status"] == "open" and pd.isna(rows.loc[4, "closed_at"])
    assert rows.loc[5, "status"] == "rejected" and "stop-loss 101 is above the entry limit 99" in rows.loc[5, "reason"]
    assert rows.loc[2, "side"] == "sell" and rows.loc[4, "side"] == "buy"


def test_orders_table_status_colours_and_filters(brackets):
    styler = orders_table(brackets)
    html = styler.to_html()
    assert styler.caption == "Orders: 7 — 1 open, 2 filled, 1 canceled, 3 rejected"
    assert "background-color: #dcf2dc" in html  # filled
    assert "background-color: #f9d6d6" in html  # rejected
    assert "OCO sibling #3 filled" in html
    assert ">+10<" in html and ">104.00<" in html and ">#1<" in html
    assert "tag" not in list(styler.data.columns)  # no order has a tag
    only = orders_table(brackets, status=["rejected"])
    assert only.data["id"].tolist() == [5, 6, 7] and "status rejected" in only.caption
    assert orders_table(brackets, status="open").data["id"].tolist() == [4]
    assert orders_table(brackets, asset="X").data.shape[0] == 7
    short = orders_table(brackets, max_rows=2)
    assert len(short.data) == 2 and "showing the first 2" in short.caption
    with pytest.raises(ValueError, match="`status`"):
        orders_table(brackets, status="gone")
    with pytest.raises(ValueError, match="`max_rows`"):
        orders_table(brackets, max_rows=0)


# ================================================================ escaping
def test_hostile_symbol_and_tag_are_escaped_in_the_tables():
    res = _capped(symbol=HOSTILE, tag="<script>alert('t')</script>")
    t = partial_fill_table(res)
    assert t["asset"].tolist() == [HOSTILE] * 6  # the data keeps the raw value
    for styler in (partial_fills(res), orders_table(res), res.partial_fills(), res.orders_table()):
        html = styler.to_html()
        assert "<img" not in html.lower() and "<script" not in html.lower()
        assert "&lt;img src=x onerror=alert(1)&gt;" in html
    orders_html = orders_table(res).to_html()
    assert "&lt;script&gt;" in orders_html
    caption = partial_fills(res, asset=HOSTILE).caption
    assert "<img" not in caption and "&lt;img" in caption


def test_missing_values_render_blank(brackets):
    styler = orders_table(brackets)
    html = styler.to_html()
    assert "nan" not in html.lower() and ">NaT<" not in html and ">Na<" not in html
    open_row = styler.data[styler.data["id"] == 4].iloc[0]
    assert open_row["closed_at"] == "" and open_row["created"] == "2021-01-04"
    assert not any(isinstance(v, float) and math.isnan(v) for v in styler.data["side"])


def test_styled_tables_have_a_readable_text_form():
    from helpers import bars, run

    from rustybt_nb.finance.slippage import NoSlippage

    result = run({0: lambda a, c, d: a.order(c.asset, 250)}, bars([(10, 11, 9, 10, 100)] * 4),
                 slippage=NoSlippage(volume_limit=1.0))
    text = repr(result.partial_fills())
    assert text.startswith("Partial fills: 1 order filled in 3 slices") and "0x" not in text
    assert "#1 buy 250" in text
    orders = repr(result.orders_table())
    assert orders.startswith("Orders: 1") and "filled" in orders
    assert "trades 0 (+1 open)" in result.summary()  # metrics count closed round trips only
