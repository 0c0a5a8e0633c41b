"""``rustybt_nb.diff``: metric changes and the orders whose fate changed between two runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import Scripted, bars

from rustybt_nb import Backtest, ResultDiff, TradingAlgorithm, diff
from rustybt_nb.finance.execution import BracketOrder, LimitOrder, MarketOrder
from rustybt_nb.metrics import METRIC_NAMES


class Dip(TradingAlgorithm):
    """Buys dips with a bracket; ``stop`` moves the stop-loss (and so which exit fills)."""

    params = {"stop": 0.03, "target": 0.06, "lookback": 10}

    def initialize(self, context):
        context.asset = self.symbol("AAPL")

    def handle_data(self, context, data):
        p = self.params
        closes = data.history(context.asset, "close", p.lookback, "1d")
        price = closes.iloc[-1]
        if not context.portfolio.positions[context.asset].amount and not self.get_open_orders(context.asset) \
                and price <= closes.min() * 1.01:
            self.order(context.asset, 100, style=BracketOrder(entry_style=MarketOrder(),
                                                              stop_loss_price=price * (1 - p.stop),
                                                              take_profit_price=price * (1 + p.target)))


@pytest.fixture(scope="module")
def backtest():
    return Backtest(Dip, data="AAPL", start="2011-01-01", end="2011-12-31")


def test_the_same_result_has_no_changes(backtest):
    a = backtest.run()
    d = diff(a, backtest.run())
    assert isinstance(d, ResultDiff) and not d
    assert len(d.orders) == 0 and len(d.changed_metrics) == 0
    assert "Metrics: 0 of 16 changed" in str(d) and "Orders whose fate changed: 0" in str(d)


def test_metrics_are_one_row_per_metric_with_the_delta(backtest):
    a, b = backtest.run(), backtest.run(stop=0.01)
    d = diff(a, b)
    assert list(d.metrics.index) == list(METRIC_NAMES) and list(d.metrics.columns) == ["baseline", "current", "delta"]
    pd.testing.assert_series_equal(d.metrics["baseline"], a.metrics.astype(float), check_names=False)
    pd.testing.assert_series_equal(d.metrics["current"], b.metrics.astype(float), check_names=False)
    expected = b.metrics.astype(float) - a.metrics.astype(float)
    np.testing.assert_allclose(d.metrics["delta"].to_numpy(), expected.to_numpy(), equal_nan=True)
    assert bool(d)


def test_a_tighter_stop_changes_which_exits_fill(backtest):
    a, b = backtest.run(), backtest.run(stop=0.01)
    d = diff(a, b)
    changed = d.orders[d.orders["change"] == "changed"]
    assert len(changed) > 0
    stops = changed[changed["role"] == "stop_loss"]
    assert len(stops) > 0
    row = stops.iloc[0]
    assert row["baseline_stop"] != row["current_stop"]  # the parameter moved the level
    for col in ("baseline_status", "current_status", "baseline_filled", "current_filled", "baseline_avg_fill_price",
                "current_avg_fill_price", "baseline_closed_at", "current_closed_at", "baseline_reason",
                "current_reason", "baseline_id", "current_id"):
        assert col in d.orders.columns
    # each listed pair really differs in its fate
    for r in changed.itertuples(index=False):
        fates = [(r.baseline_status, r.baseline_filled, r.baseline_closed_at),
                 (r.current_status, r.current_filled, r.current_closed_at)]
        assert fates[0] != fates[1] or r.baseline_avg_fill_price != r.current_avg_fill_price
    text = str(d)
    assert f"Orders whose fate changed: {len(d.orders)}" in text and "(now stop" in text and " -> " in text
    html = d._repr_html_()
    assert "<table>" in html and "stop-loss" in html


def test_orders_match_by_what_placed_them_not_by_id():
    """A run that places one extra order first shifts every id; the other order did the same
    thing and is not listed (orders pair by asset, placing bar, side, style and role)."""
    store = bars([(100, 101, 99, 100)] * 4 + [(100, 106, 99, 105)] * 4)

    def script(extra):
        def first(algo, ctx, data):
            if extra:
                algo.order(ctx.asset, -1, style=LimitOrder(500.0))  # a sell that never fills
            algo.order(ctx.asset, 10, style=LimitOrder(104.0))
        return {0: first}

    a = Backtest(Scripted, data=store).run(script=script(False))
    b = Backtest(Scripted, data=store).run(script=script(True))
    d = diff(a, b)
    assert list(d.orders["change"]) == ["only in current"]
    row = d.orders.iloc[0]
    assert row["current_id"] == 1 and row["current_status"] == "open" and pd.isna(row["baseline_status"])
    assert "(no such order) -> #1 open" in str(d)


def test_diff_refuses_what_is_not_a_result(backtest):
    with pytest.raises(TypeError, match="`current` must be a BacktestResult"):
        diff(backtest.run(), "x")
