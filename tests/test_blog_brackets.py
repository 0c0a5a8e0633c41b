"""The four brackets of the backtrader bracket-orders blog post, on the embedded
TestBrackets sample: what the blog printed, with the real fill prices.

The blog's log (backtrader) shows for each order when it was accepted, completed or
canceled. Here the same brackets give the same completions and cancellations on the same
dates; the market entry's real fill is the next open (210, so the first trade makes 40,
not the 50 the blog's created price suggests); the fourth, invalid bracket is rejected
with its reason instead of being filled.
"""

from __future__ import annotations

from rustybt_nb import TradingAlgorithm, run_algorithm
from rustybt_nb.finance.execution import BracketOrder, LimitOrder, MarketOrder, StopOrder


class BlogBrackets(TradingAlgorithm):
    """Places one bracket on each of four dates, only when flat (size 1)."""

    def initialize(self, context):
        context.asset = self.symbol("TestBrackets")

    def handle_data(self, context, data):
        if context.portfolio.positions[context.asset].amount:
            return
        day = str(self.get_datetime().date())
        close = data.current(context.asset, "close")
        if day == "2018-01-11":  # market entry, target +50, stop -50
            style = BracketOrder(entry_style=MarketOrder(), stop_loss_price=close - 50, take_profit_price=close + 50)
            self.order(context.asset, 1, style=style)
        elif day == "2018-01-21":  # short on a stop below the market
            self.order(context.asset, -1, style=BracketOrder(entry_style=StopOrder(200), stop_loss_price=250,
                                                             take_profit_price=150))
        elif day == "2018-02-11":  # short on a limit above the market
            self.order(context.asset, -1, style=BracketOrder(entry_style=LimitOrder(290), stop_loss_price=340,
                                                             take_profit_price=240))
        elif day == "2018-03-23":  # the blog's invalid bracket: target above and stop below a short entry
            self.order(context.asset, -1, style=BracketOrder(entry_style=StopOrder(290), stop_loss_price=90,
                                                             take_profit_price=300))


# (date, order, event, signed size, price) as the blog printed them, with the real fill prices
BLOG_OUTCOMES = [
    ("2018-01-12", 1, "fill", 1, 210.0),
    ("2018-01-16", 3, "fill", -1, 250.0),
    ("2018-01-16", 2, "canceled", None, None),
    ("2018-01-31", 4, "fill", -1, 200.0),
    ("2018-02-05", 6, "fill", 1, 150.0),
    ("2018-02-05", 5, "canceled", None, None),
    ("2018-03-01", 7, "fill", -1, 290.0),
    ("2018-03-08", 9, "fill", 1, 240.0),
    ("2018-03-08", 8, "canceled", None, None),
]


def _run():
    return run_algorithm(BlogBrackets, data="TestBrackets", capital_base=10_000)


def test_fills_and_cancels_match_the_blog_with_real_prices():
    result = _run()
    ev = result.order_events
    done = ev[ev["kind"].isin(["fill", "canceled"])]
    got = []
    for e in done.itertuples(index=False):
        qty = None if e.qty != e.qty else int(e.qty)
        price = None if e.price != e.price else float(e.price)
        got.append((str(e.dt.date()), e.order_id, e.kind, qty, price))
    assert got == BLOG_OUTCOMES


def test_trade_profits_are_40_50_50_and_the_invalid_bracket_is_rejected():
    result = _run()
    assert result.trades["pnl"].tolist() == [40.0, 50.0, 50.0]
    orders = result.orders.set_index("id")
    assert orders.loc[[10, 11, 12], "status"].tolist() == ["rejected"] * 3
    assert orders.loc[10, "reason"] == (
        "stop-loss 90 is below the entry stop 290 (a short bracket's stop must be above it); "
        "take-profit 300 is above the entry stop 290 (a short bracket's target must be below it)")
    assert result.metrics["end_value"] == 10_140.0


def test_printed_log_lines():
    text = _run().order_log_text()
    lines = text.splitlines()
    assert lines[3] == ("2018-01-12  #1   buy  1     entry market           fill          +1 @ 210.00      "
                        "market order filled at the open")
    assert lines[7] == ("2018-01-16  #2   sell 1     stop-loss stop 150     canceled                       "
                        "OCO sibling #3 filled")
    assert "2018-01-16  trade closed: long 1 TESTBRACKETS 210.00 -> 250.00, pnl +40.00, net +40.00" in lines
    assert sum("trade closed" in line for line in lines) == 3
    assert lines[-1].startswith("2018-03-23  #12  buy  1     take-profit limit 300  rejected")
