"""Fill timing and fill prices (README: simulation semantics): the "ohlc" and "close" fill models,
partial fills under a volume cap, slippage prices and commissions.

Every scenario is a scripted strategy on a few hand-made daily bars; the expected
prices and quantities are worked out by hand in the comments. Bars are
``(open, high, low, close[, volume])``; bar 0 is 2021-01-04 (a Monday) and bars follow
on business days, so bar i is session 2021-01-04 + i business days.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
from helpers import bars, run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rustybt_nb.finance.commission import PerDollar, PerShare, PerTrade
from rustybt_nb.finance.execution import LimitOrder, MarketOrder, StopLimitOrder, StopOrder
from rustybt_nb.finance.order import ORDER_STATUS
from rustybt_nb.finance.slippage import (
    FixedBasisPointsSlippage,
    FixedSlippage,
    NoSlippage,
    VolumeShareSlippage,
)

# The bar on which orders are placed: nothing in later bars depends on it.
BASE = (10.0, 10.5, 9.5, 10.0)
DAY = pd.Timestamp("2021-01-04")


def session(i: int) -> pd.Timestamp:
    """The label of bar ``i`` (business days from 2021-01-04)."""
    return DAY + pd.offsets.BDay(i)


def place(*args, **kw):
    """A script step that calls ``order(context.asset, *args, **kw)`` and keeps the ticket."""

    def step(algo, context, data):
        context.out.setdefault("tickets", []).append(algo.order(context.asset, *args, **kw))

    return step


def fills_of(result, order_id: int = 1) -> list[tuple[int, float, float]]:
    """``[(bar, qty, price), ...]`` of one order's fills."""
    f = result.fills[result.fills["order_id"] == order_id]
    return [(int(b), float(q), float(p)) for b, q, p in zip(f["bar"], f["qty"], f["price"])]


def order_row(result, order_id: int = 1) -> pd.Series:
    return result.orders.set_index("id").loc[order_id]


def event_kinds(result, order_id: int = 1) -> list[str]:
    ev = result.order_events
    return list(ev.loc[ev["order_id"] == order_id, "kind"])


def one_order(later_bars, *args, fill_model: str = "ohlc", **kw):
    """Place one order on bar 0 (BASE) and run over ``later_bars``."""
    store = bars([BASE, *later_bars])
    return run({0: place(*args, **kw)}, store, fill_model=fill_model)


# =========================================================================== timing
class TestTiming:
    def test_market_order_fills_at_next_open_never_on_the_bar_it_was_placed(self):
        # placed while handling bar 0 (open 10); bar 1 opens at 12 -> one fill of 100 @ 12 on bar 1
        res = one_order([(12.0, 13.0, 11.0, 12.5), (14.0, 15.0, 13.0, 14.5)], 100)
        assert fills_of(res) == [(1, 100.0, 12.0)]
        assert res.fills["dt"].iloc[0] == session(1)
        assert order_row(res)["status"] == "filled"
        assert event_kinds(res) == ["submitted", "fill"]

    def test_market_style_object_is_the_default(self):
        later = [(12.0, 13.0, 11.0, 12.5), (14.0, 15.0, 13.0, 14.5)]
        assert fills_of(one_order(later, 100, style=MarketOrder())) == fills_of(one_order(later, 100))

    def test_limit_reachable_on_the_placing_bar_does_not_fill_on_it(self):
        # bar 0 trades down to 9.5, but a buy limit 9.6 placed while handling bar 0 is matched
        # from bar 1 on; bar 1 (low 9.8) and bar 2 (low 9.7) never reach 9.6 -> stays open
        res = one_order([(10.0, 10.4, 9.8, 10.1), (10.0, 10.2, 9.7, 10.0)], 100, limit_price=9.6)
        assert fills_of(res) == []
        assert order_row(res)["status"] == "open"

    def test_order_placed_in_a_later_bar_waits_for_the_following_bar(self):
        # placed while handling bar 1: bar 1's open (11) is history, fill at bar 2's open (13)
        store = bars([BASE, (11.0, 12.0, 10.0, 11.5), (13.0, 14.0, 12.0, 13.5)])
        res = run({1: place(10)}, store)
        assert fills_of(res) == [(2, 10.0, 13.0)]

    def test_status_seen_by_the_strategy_moves_only_on_later_bars(self):
        seen = []

        def look(algo, context, data):
            seen.append(str(context.out["tickets"][0].status))

        store = bars([BASE, (12.0, 13.0, 11.0, 12.5), (12.0, 13.0, 11.0, 12.5)])
        run({0: lambda a, c, d: (place(5)(a, c, d), look(a, c, d)), 1: look}, store)
        # same bar: still open; next bar (matched at its open before handle_data): filled
        assert seen == ["open", "filled"]


# =========================================================================== limit orders
class TestLimitOhlc:
    @pytest.mark.parametrize(
        ("amount", "limit", "bar1", "expected"),
        [
            # buy limit 11, bar opens at 10.5 <= 11: gap through the limit -> the open, 10.5
            (100, 11.0, (10.5, 10.8, 10.2, 10.6), 10.5),
            # buy limit 10, open 10.5 > 10 but low 9.8 <= 10: intrabar touch -> the limit, 10
            (100, 10.0, (10.5, 11.0, 9.8, 10.2), 10.0),
            # buy limit exactly at the low: touched -> the limit
            (100, 9.8, (10.5, 11.0, 9.8, 10.2), 9.8),
            # sell limit 10, open 10.5 >= 10: gap -> the open, 10.5
            (-100, 10.0, (10.5, 10.8, 10.2, 10.6), 10.5),
            # sell limit 11, open 10.5 < 11, high 11.2 >= 11: touch -> the limit, 11
            (-100, 11.0, (10.5, 11.2, 10.2, 10.6), 11.0),
        ],
        ids=["buy-gap", "buy-touch", "buy-at-low", "sell-gap", "sell-touch"],
    )
    def test_fill_price(self, amount, limit, bar1, expected):
        res = one_order([bar1], amount, limit_price=limit)
        assert fills_of(res) == [(1, float(amount), expected)]
        assert order_row(res)["status"] == "filled"

    @pytest.mark.parametrize(
        ("amount", "limit"),
        # bar 1 trades 9.5 .. 10.5: a buy limit below 9.5 / a sell limit above 10.5 is not reached
        [(100, 9.4), (-100, 10.6)],
        ids=["buy", "sell"],
    )
    def test_not_touched_stays_open(self, amount, limit):
        res = one_order([(10.0, 10.5, 9.5, 10.0), (10.0, 10.5, 9.5, 10.0)], amount, limit_price=limit)
        assert fills_of(res) == []
        assert order_row(res)["status"] == "open"
        assert event_kinds(res) == ["submitted"]

    def test_limit_style_object_same_as_limit_price_shortcut(self):
        a = one_order([(10.5, 11.0, 9.8, 10.2)], 100, limit_price=10.0)
        b = one_order([(10.5, 11.0, 9.8, 10.2)], 100, style=LimitOrder(10.0))
        assert fills_of(a) == fills_of(b) == [(1, 100.0, 10.0)]

    def test_resting_limit_fills_on_the_first_bar_that_reaches_it(self):
        # buy limit 9: bar 1 low 9.5 (no), bar 2 low 9.2 (no), bar 3 open 9.4, low 8.9 -> 9 on bar 3
        later = [(10.0, 10.5, 9.5, 10.0), (9.8, 10.0, 9.2, 9.5), (9.4, 9.6, 8.9, 9.1)]
        res = one_order(later, 100, limit_price=9.0)
        assert fills_of(res) == [(3, 100.0, 9.0)]


# =========================================================================== stop orders
class TestStopOhlc:
    @pytest.mark.parametrize(
        ("amount", "stop", "bar1", "expected"),
        [
            # buy stop 11: open 11.5 >= 11 -> gap, fills at the open 11.5
            (100, 11.0, (11.5, 12.0, 11.2, 11.8), 11.5),
            # buy stop 11: open 10.5 < 11, high 11.2 >= 11 -> intrabar, fills at the stop 11
            (100, 11.0, (10.5, 11.2, 10.2, 10.8), 11.0),
            # sell stop 9: open 8.5 <= 9 -> gap, the open 8.5
            (-100, 9.0, (8.5, 8.8, 8.2, 8.6), 8.5),
            # sell stop 9: open 10 > 9, low 8.8 <= 9 -> intrabar, the stop 9
            (-100, 9.0, (10.0, 10.2, 8.8, 9.1), 9.0),
        ],
        ids=["buy-gap", "buy-intrabar", "sell-gap", "sell-intrabar"],
    )
    def test_fill_price(self, amount, stop, bar1, expected):
        res = one_order([bar1], amount, stop_price=stop)
        assert fills_of(res) == [(1, float(amount), expected)]
        assert order_row(res)["status"] == "filled"

    @pytest.mark.parametrize(("amount", "stop"), [(100, 10.6), (-100, 9.4)], ids=["buy", "sell"])
    def test_not_reached_stays_open(self, amount, stop):
        res = one_order([(10.0, 10.5, 9.5, 10.0)] * 2, amount, style=StopOrder(stop))
        assert fills_of(res) == []
        assert order_row(res)["status"] == "open"


# =========================================================================== stop-limit orders
class TestStopLimitOhlc:
    def test_triggered_at_open_fills_at_open_within_limit(self):
        # buy stop 11 / limit 11.5; bar 1 opens 11.2 >= 11 (triggered at the open), 11.2 <= 11.5
        # -> matched as a limit on the same bar: gap fill at the open 11.2
        res = one_order([(11.2, 11.6, 11.0, 11.4)], 100, limit_price=11.5, stop_price=11.0)
        assert fills_of(res) == [(1, 100.0, 11.2)]
        assert event_kinds(res) == ["submitted", "triggered", "fill"]
        ev = res.order_events[res.order_events["kind"] == "triggered"].iloc[0]
        assert (ev["status_before"], ev["status_after"], int(ev["bar"])) == ("open", "triggered", 1)

    def test_triggered_at_open_above_limit_then_touches_limit_same_bar(self):
        # open 11.8 >= stop 11 triggers; 11.8 > limit 11.5 but low 11.3 <= 11.5 -> limit 11.5
        res = one_order([(11.8, 12.0, 11.3, 11.6)], 100, style=StopLimitOrder(11.5, 11.0))
        assert fills_of(res) == [(1, 100.0, 11.5)]
        assert order_row(res)["status"] == "filled"

    def test_triggered_at_open_limit_unreachable_stays_triggered_then_fills_as_limit(self):
        # bar 1: open 12 triggers the stop 11; low 11.8 > limit 11.5 -> no fill, status triggered
        # bar 2: open 11.9 > 11.5, low 11.4 <= 11.5 -> fills at the limit 11.5
        later = [(12.0, 12.2, 11.8, 12.0), (11.9, 12.0, 11.4, 11.6)]
        seen = []
        store = bars([BASE, *later])
        res = run({0: place(100, limit_price=11.5, stop_price=11.0),
                   1: lambda a, c, d: seen.append(str(c.out["tickets"][0].status))}, store)
        assert seen == ["triggered"]
        assert fills_of(res) == [(2, 100.0, 11.5)]
        assert event_kinds(res) == ["submitted", "triggered", "fill"]

    def test_triggered_intrabar_with_limit_beyond_stop_fills_at_stop(self):
        # buy stop 11, limit 11.5 (above the stop): open 10.5 < 11, high 11.3 -> fills at the stop 11
        res = one_order([(10.5, 11.3, 10.4, 11.1)], 100, limit_price=11.5, stop_price=11.0)
        assert fills_of(res) == [(1, 100.0, 11.0)]

    def test_triggered_intrabar_with_limit_equal_to_stop_fills_at_stop(self):
        res = one_order([(10.5, 11.3, 10.4, 11.1)], 100, limit_price=11.0, stop_price=11.0)
        assert fills_of(res) == [(1, 100.0, 11.0)]

    def test_sell_triggered_intrabar_with_limit_below_stop_fills_at_stop(self):
        # sell stop 9, limit 8.5 (below the stop): open 9.5 > 9, low 8.8 <= 9 -> the stop 9
        res = one_order([(9.5, 9.7, 8.8, 9.0)], -100, limit_price=8.5, stop_price=9.0)
        assert fills_of(res) == [(1, -100.0, 9.0)]

    def test_sell_triggered_at_open_fills_at_open(self):
        # sell stop 9 / limit 8.5: open 8.8 <= 9 triggers; 8.8 >= 8.5 -> gap fill at 8.8
        res = one_order([(8.8, 9.0, 8.4, 8.6)], -100, limit_price=8.5, stop_price=9.0)
        assert fills_of(res) == [(1, -100.0, 8.8)]

    @pytest.mark.parametrize(
        ("bar1", "expected"),
        [
            # sell stop 9 / limit 9.2 (above the stop): low 8.8 triggers intrabar; the bar closes up
            # (open 9.3 <= close 9.5) and 9.2 <= close -> backtrader fills at the limit 9.2
            ((9.3, 9.6, 8.8, 9.5), [(1, -100.0, 9.2)]),
            # same levels on a bar that closes down (open 9.5 > close 9.1): triggered, no fill
            ((9.5, 9.6, 8.8, 9.1), []),
        ],
        ids=["up-bar", "down-bar"],
    )
    def test_sell_triggered_intrabar_with_limit_above_stop(self, bar1, expected):
        res = one_order([bar1], -100, limit_price=9.2, stop_price=9.0)
        assert fills_of(res) == expected
        assert order_row(res)["status"] == ("filled" if expected else "triggered")

    def test_triggered_intrabar_limit_below_stop_waits_as_limit(self):
        # buy stop 11 with limit 10.8 (< stop). bar 1: open 10.5, high 11.3 triggers; close 11.1 >=
        # open, so no fill (limit below the stop). bar 2: open 11.0 > 10.8, low 10.7 -> 10.8.
        later = [(10.5, 11.3, 10.4, 11.1), (11.0, 11.2, 10.7, 10.9)]
        res = one_order(later, 100, limit_price=10.8, stop_price=11.0)
        assert fills_of(res) == [(2, 100.0, 10.8)]
        ev = res.order_events[res.order_events["order_id"] == 1]
        assert list(zip(ev["kind"], ev["bar"])) == [("submitted", 0), ("triggered", 1), ("fill", 2)]

    def test_triggered_never_reverts_to_waiting_for_the_stop(self):
        # once triggered, bar 2 must be matched as a limit even though it is below the stop:
        # open 10.6 <= limit 10.8 -> gap fill at the open 10.6
        later = [(10.5, 11.3, 10.4, 11.1), (10.6, 10.7, 10.5, 10.6)]
        res = one_order(later, 100, limit_price=10.8, stop_price=11.0)
        assert fills_of(res) == [(2, 100.0, 10.6)]

    def test_backtrader_down_bar_case_fills_at_limit(self):
        # documented extra case: buy triggered intrabar on a bar that closes below its open,
        # close 10.2 <= limit 10.8 < stop 11 -> fills at the limit 10.8 on that bar
        res = one_order([(10.5, 11.3, 10.0, 10.2)], 100, limit_price=10.8, stop_price=11.0)
        assert fills_of(res) == [(1, 100.0, 10.8)]

    def test_untriggered_stop_limit_stays_open(self):
        res = one_order([(10.0, 10.5, 9.5, 10.0)], 100, limit_price=11.5, stop_price=11.0)
        assert fills_of(res) == []
        assert order_row(res)["status"] == ORDER_STATUS.OPEN


# =========================================================================== the "close" model
class TestCloseModel:
    def test_market_fills_at_next_close(self):
        # bar 1 (open 12, close 12.5): Zipline-style fill at the close 12.5
        res = one_order([(12.0, 13.0, 11.0, 12.5)], 100, fill_model="close")
        assert fills_of(res) == [(1, 100.0, 12.5)]

    def test_limit_uses_close_only(self):
        # buy limit 10: bar 1 low 9 but close 10.5 > 10 -> no; bar 2 close 9.8 <= 10 -> fills at 9.8
        later = [(10.2, 10.6, 9.0, 10.5), (10.4, 10.5, 9.6, 9.8)]
        res = one_order(later, 100, limit_price=10.0, fill_model="close")
        assert fills_of(res) == [(2, 100.0, 9.8)]

    def test_stop_uses_close_only(self):
        # buy stop 11: bar 1 high 11.5 but close 10.8 < 11 -> not triggered; bar 2 close 11.2 -> 11.2
        later = [(10.5, 11.5, 10.4, 10.8), (10.9, 11.4, 10.8, 11.2)]
        res = one_order(later, 100, stop_price=11.0, fill_model="close")
        assert fills_of(res) == [(2, 100.0, 11.2)]
        assert event_kinds(res) == ["submitted", "fill"]

    def test_sell_limit_gap_is_not_the_open(self):
        # sell limit 10: bar 1 opens 10.6 (ohlc would fill 10.6) but closes 10.3 -> fills at 10.3
        res = one_order([(10.6, 10.7, 10.1, 10.3)], -100, limit_price=10.0, fill_model="close")
        assert fills_of(res) == [(1, -100.0, 10.3)]

    def test_stop_limit_triggered_by_close_above_limit_stays_triggered(self):
        # buy stop 11 / limit 11.5: bar 1 close 11.8 >= 11 triggers, 11.8 > 11.5 -> no fill;
        # bar 2 close 11.4 <= 11.5 -> fills at 11.4
        later = [(11.0, 12.0, 10.9, 11.8), (11.7, 11.8, 11.2, 11.4)]
        res = one_order(later, 100, limit_price=11.5, stop_price=11.0, fill_model="close")
        assert fills_of(res) == [(2, 100.0, 11.4)]
        assert event_kinds(res) == ["submitted", "triggered", "fill"]


# =========================================================================== partial fills
def _slip(model):
    return lambda algo, context: algo.set_slippage(model)


class TestPartialFills:
    def test_market_remainder_fills_at_later_opens(self):
        # volume 1000 per bar, volume_limit 0.1 -> floor(0.1 * 1000) = 100 shares per bar.
        # 250 shares: 100 @ open 11 (bar 1), 100 @ open 12 (bar 2), 50 @ open 13 (bar 3)
        store = bars([(*BASE, 1000), (11, 11.5, 10.5, 11, 1000), (12, 12.5, 11.5, 12, 1000),
                      (13, 13.5, 12.5, 13, 1000), (14, 14.5, 13.5, 14, 1000)])
        res = run({0: place(250)}, store, init=_slip(NoSlippage(volume_limit=0.1)))
        assert fills_of(res) == [(1, 100.0, 11.0), (2, 100.0, 12.0), (3, 50.0, 13.0)]
        ev = res.order_events
        assert list(ev["status_after"]) == ["open", "partial", "partial", "filled"]
        assert list(ev["kind"]) == ["submitted", "partial_fill", "partial_fill", "fill"]
        row = order_row(res)
        # average price (100*11 + 100*12 + 50*13) / 250 = 2950 / 250 = 11.8
        assert row["filled"] == 250 and row["avg_fill_price"] == pytest.approx(11.8)

    def test_status_is_partial_between_fills(self):
        seen = []
        store = bars([(*BASE, 1000)] + [(11, 11.5, 10.5, 11, 1000)] * 3)
        run({0: place(250), 1: lambda a, c, d: seen.append((str(c.out["tickets"][0].status),
                                                               c.out["tickets"][0].filled))},
            store, init=_slip(NoSlippage(volume_limit=0.1)))
        assert seen == [("partial", 100)]

    def test_cap_is_floored(self):
        # floor(0.1 * 1005) = 100 (not 100.5): 150 shares -> 100 then 50
        store = bars([(*BASE, 1005), (11, 11.5, 10.5, 11, 1005), (12, 12.5, 11.5, 12, 1005)])
        res = run({0: place(150)}, store, init=_slip(NoSlippage(volume_limit=0.1)))
        assert fills_of(res) == [(1, 100.0, 11.0), (2, 50.0, 12.0)]

    def test_cap_shared_by_orders_of_the_asset_earlier_first(self):
        # cap 100 per bar. A (id 1) = 150, B (id 2) = 100, both placed on bar 0.
        # bar 1: A 100, B nothing; bar 2: A 50, B 50; bar 3: B 50.
        store = bars([(*BASE, 1000), (11, 11.5, 10.5, 11, 1000), (12, 12.5, 11.5, 12, 1000),
                      (13, 13.5, 12.5, 13, 1000), (14, 14.5, 13.5, 14, 1000)])
        res = run({0: lambda a, c, d: (place(150)(a, c, d), place(100)(a, c, d))}, store,
                  init=_slip(NoSlippage(volume_limit=0.1)))
        assert fills_of(res, 1) == [(1, 100.0, 11.0), (2, 50.0, 12.0)]
        assert fills_of(res, 2) == [(2, 50.0, 12.0), (3, 50.0, 13.0)]
        per_bar = res.fills.groupby("bar")["qty"].sum()
        assert per_bar.to_dict() == {1: 100.0, 2: 100.0, 3: 50.0}

    def test_cap_counts_buys_and_sells_together(self):
        # cap 100: buy 80 (id 1) and sell 80 (id 2) on the same bar -> 80 + 20, then 60 of the sell
        store = bars([(*BASE, 1000), (11, 11.5, 10.5, 11, 1000), (12, 12.5, 11.5, 12, 1000)])
        res = run({0: lambda a, c, d: (place(80)(a, c, d), place(-80)(a, c, d))}, store,
                  init=_slip(NoSlippage(volume_limit=0.1)))
        assert fills_of(res, 1) == [(1, 80.0, 11.0)]
        assert fills_of(res, 2) == [(1, -20.0, 11.0), (2, -60.0, 12.0)]

    def test_zero_volume_bar_fills_nothing(self):
        # bar 1 has volume 0 -> cap 0, nothing fills; bar 2 (volume 1000) fills 100 @ 12; bar 3 50 @ 13
        store = bars([(*BASE, 1000), (11, 11.5, 10.5, 11, 0), (12, 12.5, 11.5, 12, 1000),
                      (13, 13.5, 12.5, 13, 1000)])
        res = run({0: place(150)}, store, init=_slip(NoSlippage(volume_limit=0.1)))
        assert fills_of(res) == [(2, 100.0, 12.0), (3, 50.0, 13.0)]

    def test_limit_remainder_fills_only_when_limit_is_reached(self):
        # buy limit 10 for 250, cap 100/bar.
        # bar 1: open 10.5, low 9.5 -> 100 @ 10 (touch)
        # bar 2: low 10.2 > 10 -> nothing (remains partial)
        # bar 3: open 9.9 <= 10 -> 100 @ 9.9 (gap)
        # bar 4: open 10.3, low 10.0 -> 50 @ 10
        store = bars([(*BASE, 1000), (10.5, 10.8, 9.5, 10.4, 1000), (10.4, 10.9, 10.2, 10.5, 1000),
                      (9.9, 10.1, 9.7, 10.0, 1000), (10.3, 10.5, 10.0, 10.2, 1000)])
        res = run({0: place(250, limit_price=10.0)}, store, init=_slip(NoSlippage(volume_limit=0.1)))
        assert fills_of(res) == [(1, 100.0, 10.0), (3, 100.0, 9.9), (4, 50.0, 10.0)]
        assert order_row(res)["status"] == "filled"

    def test_stop_remainder_fills_as_market_at_later_opens(self):
        # sell stop 9, 150 shares, cap 100/bar. bar 1: open 9.5, low 8.8 -> 100 @ the stop 9;
        # bar 2: the triggered remainder works as a market order -> 50 @ the open 9.6 (above the
        # stop: a triggered stop does not wait for the level again)
        store = bars([(*BASE, 1000), (9.5, 9.7, 8.8, 9.2, 1000), (9.6, 9.9, 9.4, 9.8, 1000)])
        res = run({0: place(-150, stop_price=9.0)}, store, init=_slip(NoSlippage(volume_limit=0.1)))
        assert fills_of(res) == [(1, -100.0, 9.0), (2, -50.0, 9.6)]

    def test_partial_fills_under_the_close_model_use_each_close(self):
        store = bars([(*BASE, 1000), (11, 11.5, 10.5, 11.2, 1000), (12, 12.5, 11.5, 12.2, 1000)])
        res = run({0: place(150)}, store, fill_model="close", slippage=NoSlippage(volume_limit=0.1))
        assert fills_of(res) == [(1, 100.0, 11.2), (2, 50.0, 12.2)]

    def test_partial_remainder_left_when_data_ends(self):
        store = bars([(*BASE, 1000), (11, 11.5, 10.5, 11, 1000), (12, 12.5, 11.5, 12, 1000)])
        res = run({0: place(500)}, store, init=_slip(NoSlippage(volume_limit=0.1)))
        row = order_row(res)
        assert (row["status"], row["filled"], row["amount"]) == ("partial", 200.0, 500.0)

    def test_volume_share_slippage_cap_and_impact(self):
        # VolumeShareSlippage(volume_limit=0.025, price_impact=0.1), volume 1_000_000:
        # cap = 25_000 per bar. Buy 30_000:
        #   bar 1 (open 100): 25_000, share 0.025, impact 0.1 * 0.025^2 * 100 = 0.00625 -> 100.00625
        #   bar 2 (open 101): 5_000, share 0.005, impact 0.1 * 0.005^2 * 101 = 0.0002525 -> 101.0002525
        store = bars([BASE, (100, 101, 99, 100), (101, 102, 100, 101), (102, 103, 101, 102)])
        res = run({0: place(30_000)}, store, slippage=VolumeShareSlippage(volume_limit=0.025, price_impact=0.1))
        (b1, q1, p1), (b2, q2, p2) = fills_of(res)
        assert (b1, q1, b2, q2) == (1, 25_000.0, 2, 5_000.0)
        assert p1 == pytest.approx(100.00625, abs=1e-9)
        assert p2 == pytest.approx(101.0002525, abs=1e-9)

    def test_volume_share_slippage_second_order_pays_for_the_total_share(self):
        # two buys of 10_000 on the same bar (open 100, volume 1e6):
        #   first: share 10_000/1e6 = 0.01 -> impact 0.1 * 0.0001 * 100 = 0.001 -> 100.001
        #   second: share (10_000 + 10_000)/1e6 = 0.02 -> 0.1 * 0.0004 * 100 = 0.004 -> 100.004
        store = bars([BASE, (100, 101, 99, 100), (100, 101, 99, 100)])
        res = run({0: lambda a, c, d: (place(10_000)(a, c, d), place(10_000)(a, c, d))}, store,
                  slippage=VolumeShareSlippage(volume_limit=0.025, price_impact=0.1))
        assert fills_of(res, 1)[0][2] == pytest.approx(100.001, abs=1e-9)
        assert fills_of(res, 2)[0][2] == pytest.approx(100.004, abs=1e-9)

    def test_volume_share_slippage_sell_price_moves_down(self):
        # sell 20_000: share 0.02 -> impact 0.1 * 0.0004 * 50 = 0.002 -> 50 - 0.002 = 49.998
        store = bars([BASE, (50, 51, 49, 50), (50, 51, 49, 50)])
        res = run({0: place(-20_000)}, store, slippage=VolumeShareSlippage(volume_limit=0.025, price_impact=0.1))
        assert fills_of(res) == [(1, -20_000.0, pytest.approx(49.998, abs=1e-9))]


# =========================================================================== slippage prices
class TestSlippagePrices:
    @pytest.mark.parametrize(
        ("amount", "expected"),
        # FixedSlippage(spread=0.2): buys pay open + 0.1 = 12.1, sells get open - 0.1 = 11.9
        [(100, 12.1), (-100, 11.9)],
        ids=["buy", "sell"],
    )
    def test_fixed_spread(self, amount, expected):
        store = bars([BASE, (12.0, 13.0, 11.0, 12.5)])
        res = run({0: place(amount)}, store, slippage=FixedSlippage(spread=0.2))
        assert fills_of(res) == [(1, float(amount), pytest.approx(expected, abs=1e-12))]

    @pytest.mark.parametrize(
        ("amount", "expected"),
        # FixedBasisPointsSlippage(50 bp): buy 20 * 1.005 = 20.1, sell 20 * 0.995 = 19.9
        [(100, 20.1), (-100, 19.9)],
        ids=["buy", "sell"],
    )
    def test_fixed_basis_points(self, amount, expected):
        store = bars([BASE, (20.0, 21.0, 19.0, 20.5)])
        res = run({0: place(amount)}, store, slippage=FixedBasisPointsSlippage(basis_points=50))
        assert fills_of(res) == [(1, float(amount), pytest.approx(expected, abs=1e-12))]

    def test_fixed_basis_points_default_volume_limit_is_ten_percent(self):
        # default volume_limit 0.1 of volume 1000 -> 100 per bar; 5 bp on open 10 -> 10.005
        store = bars([(*BASE, 1000), (10, 10.5, 9.5, 10, 1000), (10, 10.5, 9.5, 10, 1000)])
        res = run({0: place(150)}, store, slippage=FixedBasisPointsSlippage())
        got = fills_of(res)
        assert [(b, q) for b, q, _ in got] == [(1, 100.0), (2, 50.0)]
        assert all(p == pytest.approx(10.005, abs=1e-12) for _, _, p in got)

    @pytest.mark.parametrize(
        ("bar1", "expected"),
        [
            # buy limit 10 with a spread of 1 (0.5 each side): touch at 10 -> 10.5 slipped, capped at 10
            ((10.5, 11.0, 9.8, 10.2), 10.0),
            # gap: open 9.7 -> 10.2 slipped, capped at the limit 10
            ((9.7, 9.9, 9.5, 9.8), 10.0),
            # deep gap: open 9.2 -> 9.7 slipped, still under the limit -> 9.7
            ((9.2, 9.4, 9.0, 9.3), 9.7),
        ],
        ids=["touch", "gap", "deep-gap"],
    )
    def test_buy_limit_never_fills_above_limit_after_slippage(self, bar1, expected):
        store = bars([BASE, bar1])
        res = run({0: place(100, limit_price=10.0)}, store, slippage=FixedSlippage(spread=1.0))
        assert fills_of(res) == [(1, 100.0, pytest.approx(expected, abs=1e-12))]

    def test_sell_limit_never_fills_below_limit_after_slippage(self):
        # sell limit 11, touch at 11 -> 11 * (1 - 0.01) = 10.89 slipped, floored at the limit 11
        store = bars([BASE, (10.5, 11.2, 10.2, 10.8)])
        res = run({0: place(-100, limit_price=11.0)}, store,
                  slippage=FixedBasisPointsSlippage(basis_points=100, volume_limit=None))
        assert fills_of(res) == [(1, -100.0, 11.0)]

    def test_stop_limit_never_fills_beyond_limit_after_slippage(self):
        # buy stop 11 / limit 11.05, intrabar trigger -> rule price 11 (the stop);
        # slipped 11 + 0.1 = 11.1 > 11.05 -> capped at the limit 11.05
        store = bars([BASE, (10.5, 11.3, 10.4, 11.1)])
        res = run({0: place(100, limit_price=11.05, stop_price=11.0)}, store, slippage=FixedSlippage(spread=0.2))
        assert fills_of(res) == [(1, 100.0, pytest.approx(11.05, abs=1e-12))]

    def test_stop_orders_are_not_capped(self):
        # a plain stop has no limit: intrabar at 11, + spread/2 = 11.1
        store = bars([BASE, (10.5, 11.3, 10.4, 11.1)])
        res = run({0: place(100, stop_price=11.0)}, store, slippage=FixedSlippage(spread=0.2))
        assert fills_of(res) == [(1, 100.0, pytest.approx(11.1, abs=1e-12))]

    def test_set_slippage_outside_initialize_is_refused(self):
        store = bars([BASE, BASE, BASE])
        with pytest.raises(RuntimeError, match="initialize"):
            run({0: lambda a, c, d: a.set_slippage(FixedSlippage(0.1))}, store)


# =========================================================================== commissions
def _cash_identity(res, start: float = 100_000.0) -> float:
    f = res.fills
    return start - float((f["qty"] * f["price"]).sum()) - float(f["commission"].sum())


class TestCommission:
    def _partial_store(self):
        # volume 1000, cap 100/bar -> a 250-share order fills 100 @ 11, 100 @ 12, 50 @ 13
        return bars([(*BASE, 1000), (11, 11.5, 10.5, 11, 1000), (12, 12.5, 11.5, 12, 1000),
                     (13, 13.5, 12.5, 13, 1000)])

    def test_per_share_minimum_reached_over_partial_fills(self):
        # PerShare(0.005, min 1.0), 250 shares in 100/100/50:
        #   fill 1: 100 * 0.005 = 0.5 < 1.0 -> charged the minimum, 1.0
        #   fill 2: cumulative 200 * 0.005 = 1.0, already paid 1.0 -> 0
        #   fill 3: cumulative 250 * 0.005 = 1.25, paid 1.0 -> 0.25
        # total 1.25 = max(1.0, 250 * 0.005)
        res = run({0: place(250)}, self._partial_store(),
                  init=lambda a, c: (a.set_slippage(NoSlippage(volume_limit=0.1)),
                                     a.set_commission(PerShare(cost=0.005, min_trade_cost=1.0))))
        assert list(res.fills["commission"]) == pytest.approx([1.0, 0.0, 0.25])
        assert order_row(res)["commission"] == pytest.approx(1.25)
        # cash: 100_000 - (1100 + 1200 + 650) - 1.25 = 97_048.75
        assert res.perf["cash"].iloc[-1] == pytest.approx(97_048.75)
        assert res.perf["cash"].iloc[-1] == pytest.approx(_cash_identity(res))

    def test_per_share_minimum_charged_once(self):
        # PerShare(0.001, min 1.0): 250 * 0.001 = 0.25 < 1 -> 1.0 on the first fill, nothing after
        res = run({0: place(250)}, self._partial_store(), slippage=NoSlippage(volume_limit=0.1),
                  commission=PerShare(cost=0.001, min_trade_cost=1.0))
        assert list(res.fills["commission"]) == pytest.approx([1.0, 0.0, 0.0])
        assert res.metrics["total_commission"] == pytest.approx(1.0)

    def test_per_share_minimum_applies_per_order(self):
        # two 10-share market orders, PerShare(0.01, min 1.0): each pays max(1.0, 0.1) = 1.0
        store = bars([BASE, (11, 11.5, 10.5, 11), (11, 11.5, 10.5, 11)])
        res = run({0: lambda a, c, d: (place(10)(a, c, d), place(10)(a, c, d))}, store,
                  commission=PerShare(cost=0.01, min_trade_cost=1.0))
        assert list(res.fills["commission"]) == pytest.approx([1.0, 1.0])

    def test_per_trade_charged_on_first_fill_only(self):
        res = run({0: place(250)}, self._partial_store(), slippage=NoSlippage(volume_limit=0.1),
                  commission=PerTrade(cost=5.0))
        assert list(res.fills["commission"]) == pytest.approx([5.0, 0.0, 0.0])
        # 100_000 - 2950 - 5 = 97_045
        assert res.perf["cash"].iloc[-1] == pytest.approx(97_045.0)

    def test_per_dollar(self):
        # PerDollar(0.001): 1100 * 0.001 = 1.1, 1200 * 0.001 = 1.2, 650 * 0.001 = 0.65 -> 2.95
        res = run({0: place(250)}, self._partial_store(), slippage=NoSlippage(volume_limit=0.1),
                  commission=PerDollar(cost=0.001))
        assert list(res.fills["commission"]) == pytest.approx([1.1, 1.2, 0.65])
        assert res.perf["cash"].iloc[-1] == pytest.approx(100_000 - 2950 - 2.95)

    def test_per_dollar_on_a_sell_is_positive(self):
        # sell 100 @ 11: 1100 * 0.001 = 1.1 commission; cash 100_000 + 1100 - 1.1
        store = bars([BASE, (11, 11.5, 10.5, 11), (11, 11.5, 10.5, 11)])
        res = run({0: place(-100)}, store, commission=PerDollar(cost=0.001))
        assert list(res.fills["commission"]) == pytest.approx([1.1])
        assert res.perf["cash"].iloc[-1] == pytest.approx(101_098.9)

    def test_cash_identity_with_slippage_commission_and_round_trip(self):
        # buy 100 @ 11 + 0.05 (FixedSlippage 0.1), then sell 100 @ 12 - 0.05; PerTrade 2 each
        # cash = 100_000 - 100 * 11.05 + 100 * 11.95 - 4 = 100_086
        store = bars([BASE, (11, 11.5, 10.5, 11), (12, 12.5, 11.5, 12), (12, 12.5, 11.5, 12)])
        res = run({0: place(100), 1: place(-100)}, store, slippage=FixedSlippage(spread=0.1),
                  commission=PerTrade(cost=2.0))
        assert res.perf["cash"].iloc[-1] == pytest.approx(100_086.0)
        assert res.perf["cash"].iloc[-1] == pytest.approx(_cash_identity(res))
        assert res.metrics["total_commission"] == pytest.approx(4.0)
        assert math.isclose(res.perf["portfolio_value"].iloc[-1], 100_086.0)


# =========================================================================== many resting orders
class TestManyRestingOrders:
    def test_only_the_levels_the_bar_reaches_fill(self):
        # buy limits 9.0 .. 9.8 and sell limits 10.2 .. 10.8 rest; bar 1 opens 10, trades 9.3 .. 10.5:
        #   buys at 9.4, 9.6, 9.8 (>= low 9.3) fill at their limits; 9.0 and 9.2 stay open
        #   sells at 10.2, 10.4 (<= high 10.5) fill at their limits; 10.6 and 10.8 stay open
        buys = [9.0, 9.2, 9.4, 9.6, 9.8]
        sells = [10.2, 10.4, 10.6, 10.8]

        def place_all(a, c, d):
            for p in buys:
                a.order(c.asset, 1, limit_price=p)
            for p in sells:
                a.order(c.asset, -1, limit_price=p)

        res = run({0: place_all}, bars([BASE, (10.0, 10.5, 9.3, 10.0)]))
        filled = dict(zip(res.fills["order_id"], res.fills["price"]))
        # ids: buys 1..5, sells 6..9
        assert filled == {3: 9.4, 4: 9.6, 5: 9.8, 6: 10.2, 7: 10.4}
        assert res.orders.set_index("id")["status"].to_dict() == {
            1: "open", 2: "open", 3: "filled", 4: "filled", 5: "filled",
            6: "filled", 7: "filled", 8: "open", 9: "open"}

    def test_orders_at_the_same_level_fill_in_submission_order_under_a_cap(self):
        # three buy limits at 9.5 for 60 each, cap 100/bar (volume 1000): bar 1 touches 9.5 ->
        # id 1: 60, id 2: 40; bar 2 touches again -> id 2: 20, id 3: 60
        store = bars([(*BASE, 1000), (10.0, 10.5, 9.4, 10.0, 1000), (10.0, 10.5, 9.4, 10.0, 1000)])
        res = run({0: lambda a, c, d: [a.order(c.asset, 60, limit_price=9.5) for _ in range(3)]}, store,
                  slippage=NoSlippage(volume_limit=0.1))
        got = [(int(b), int(o), float(q)) for b, o, q in zip(res.fills["bar"], res.fills["order_id"], res.fills["qty"])]
        assert got == [(1, 1, 60.0), (1, 2, 40.0), (2, 2, 20.0), (2, 3, 60.0)]

    def test_limit_moved_out_of_reach_in_the_same_bar_does_not_fill(self):
        # buy limit 9.8 would fill on bar 1 (low 9.5); moved to 9.0 before bar 1 -> no fill
        store = bars([BASE, (10.0, 10.5, 9.5, 10.0), (10.0, 10.5, 9.5, 10.0)])
        res = run({0: lambda a, c, d: a.modify_order(a.order(c.asset, 10, limit_price=9.8), limit_price=9.0)},
                  store)
        assert fills_of(res) == []
        assert order_row(res)["limit"] == 9.0

    def test_stop_moved_into_reach_fills(self):
        # sell stop 8 (bar 1 low 9.5: not reached) moved to 9.6 while handling bar 1 -> bar 2 low 9.5: 9.6
        store = bars([BASE, (10.0, 10.5, 9.5, 10.0), (10.0, 10.5, 9.5, 10.0)])
        res = run({0: place(-10, stop_price=8.0), 1: lambda a, c, d: a.modify_order(1, stop_price=9.6)}, store)
        assert fills_of(res) == [(2, -10.0, 9.6)]


# =========================================================================== property: a reference matcher
def _reference_fill(kind, buy, level, later, close_model):
    """First (bar, price) at which the fill table of the README's semantics fills one order, or None.
    ``later`` are the bars after the placing bar (numbered from 1)."""
    for n, (o, h, lo, c) in enumerate(later, start=1):
        if close_model:
            o = h = lo = c
        if kind == "market":
            return n, o
        if kind == "limit":
            if (buy and o <= level) or (not buy and o >= level):
                return n, o
            if (buy and lo <= level) or (not buy and h >= level):
                return n, level
        else:  # stop
            if (buy and o >= level) or (not buy and o <= level):
                return n, o
            if (buy and h >= level) or (not buy and lo <= level):
                return n, level
    return None


_q = st.integers(min_value=36, max_value=44).map(lambda k: k / 4)  # 9.0 .. 11.0 in steps of 0.25


@st.composite
def _bar(draw):
    o, c = draw(_q), draw(_q)
    h = max(o, c) + draw(st.integers(0, 3)) / 4
    lo = min(o, c) - draw(st.integers(0, 3)) / 4
    return (o, h, lo, c)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(later=st.lists(_bar(), min_size=1, max_size=4), kind=st.sampled_from(["market", "limit", "stop"]),
       buy=st.booleans(), level=_q, close_model=st.booleans())
def test_single_order_matches_the_reference_rules(later, kind, buy, level, close_model):
    kw = {"limit": {"limit_price": level}, "stop": {"stop_price": level}, "market": {}}[kind]
    res = run({0: place(10 if buy else -10, **kw)}, bars([BASE, *later]),
              fill_model="close" if close_model else "ohlc")
    expected = _reference_fill(kind, buy, level, later, close_model)
    got = fills_of(res)
    if expected is None:
        assert got == []
        assert order_row(res)["status"] == "open"
    else:
        assert got == [(expected[0], 10.0 if buy else -10.0, expected[1])]
