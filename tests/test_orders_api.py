"""The order API a running strategy uses (README: API at a glance, simulation semantics): tickets, argument
validation, unknown assets, sizing helpers, open-order queries, cancel, modify,
statuses and their event history, and time in force.

All through ``run_algorithm`` with scripted strategies on tiny daily bars (bar 0 is
2021-01-04, a Monday; bars follow on business days).
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
from helpers import bars, run

from rustybt_nb.assets import Asset
from rustybt_nb.data import from_frames
from rustybt_nb.finance.execution import LimitOrder, StopLimitOrder, StopOrder
from rustybt_nb.finance.order import ORDER_STATUS, Order
from rustybt_nb.finance.slippage import NoSlippage

FLAT = (10.0, 10.5, 9.5, 10.0)  # trades 9.5 .. 10.5, closes at 10
DAY = pd.Timestamp("2021-01-04")


def session(i: int) -> pd.Timestamp:
    return DAY + pd.offsets.BDay(i)


def flat(n: int, volume: float | None = None):
    row = FLAT if volume is None else (*FLAT, volume)
    return bars([row] * n)


def keep(name, fn):
    """A script step storing ``fn(algo, context, data)`` in ``context.out[name]``."""

    def step(algo, context, data):
        context.out[name] = fn(algo, context, data)

    return step


def steps(*fns):
    """Run several script steps on one bar, in order."""

    def step(algo, context, data):
        for fn in fns:
            fn(algo, context, data)

    return step


def orders_by_id(result) -> pd.DataFrame:
    return result.orders.set_index("id")


def events_of(result, order_id) -> pd.DataFrame:
    ev = result.order_events
    return ev[ev["order_id"] == order_id].reset_index(drop=True)


def warnings_of(result) -> list[str]:
    logs = result.logs
    return list(logs.loc[logs["level"] == "WARNING", "message"])


def expect_error(exc_type, match, fn):
    """A script step that asserts ``fn(algo, context)`` raises and records that it ran."""

    def step(algo, context, data):
        with pytest.raises(exc_type, match=match):
            fn(algo, context)
        context.out.setdefault("checked", 0)
        context.out["checked"] += 1

    return step


# =========================================================================== tickets
class TestTicket:
    def test_ticket_is_the_order_id(self):
        out = {}

        def place(a, c, d):
            t = a.order(c.asset, 10)
            out.update(ticket=t, eq=t == 1, hash=hash(t) == hash(1), str=str(t), repr=repr(t),
                       fmt=f"{t}", in_dict={1: "x"}[t], isint=isinstance(t, int),
                       status=str(t.status), order=a.get_order(t), order_by_int=a.get_order(1))

        run({0: place}, flat(3), out=out)
        assert out["eq"] and out["hash"] and out["isint"]
        assert (out["str"], out["repr"], out["fmt"], out["in_dict"]) == ("1", "1", "1", "x")
        assert out["status"] == "open"
        assert isinstance(out["order"], Order) and out["order"] is out["order_by_int"]
        assert out["order"].id == 1
        # the ticket reads the live order: filled on bar 1 at the open 10
        assert out["ticket"].status == ORDER_STATUS.FILLED
        assert out["ticket"].filled == 10

    def test_ids_increase_from_one(self):
        out = {}
        run({0: keep("ids", lambda a, c, d: [a.order(c.asset, n) for n in (1, 2, 3)])}, flat(3), out=out)
        assert out["ids"] == [1, 2, 3]

    def test_get_order_unknown_id_is_none(self):
        out = {}
        run({0: keep("o", lambda a, c, d: a.get_order(999))}, flat(3), out=out)
        assert out["o"] is None

    def test_api_free_functions_work_inside_a_run(self):
        from rustybt_nb import api

        out = {}
        run({0: keep("t", lambda a, c, d: api.order(api.symbol("X"), 7)),
             1: keep("o", lambda a, c, d: api.get_order(c.out["t"]))}, flat(3), out=out)
        assert out["o"].filled == 7 and out["o"].status == "filled"


# =========================================================================== amounts
class TestAmountValidation:
    def test_zero_amount_returns_none_and_places_nothing(self):
        out = {}
        res = run({0: keep("t", lambda a, c, d: a.order(c.asset, 0))}, flat(3), out=out)
        assert out["t"] is None
        assert len(res.orders) == 0

    @pytest.mark.parametrize(("amount", "expected"), [(10.7, 10), (-10.7, -10), (0.4, None), (2.99999999, 3)])
    def test_fractional_amount_rounds_toward_zero(self, amount, expected):
        # 10.7 -> 10 and -10.7 -> -10 (toward zero, as Zipline); 0.4 -> 0 -> no order;
        # float noise just under an integer (2.99999999) is taken as that integer
        out = {}
        res = run({0: keep("t", lambda a, c, d: a.order(c.asset, amount))}, flat(3), out=out)
        if expected is None:
            assert out["t"] is None and len(res.orders) == 0
        else:
            assert orders_by_id(res).loc[1, "amount"] == expected
            assert res.fills["qty"].tolist() == [expected]

    @pytest.mark.parametrize(
        ("amount", "exc"),
        [(math.nan, ValueError), (math.inf, ValueError), (-math.inf, ValueError), ("10", TypeError),
         (None, TypeError), (True, TypeError)],
        ids=["nan", "inf", "-inf", "str", "none", "bool"],
    )
    def test_bad_amount_raises_naming_amount(self, amount, exc):
        out = {}
        res = run({0: expect_error(exc, "`amount`", lambda a, c: a.order(c.asset, amount))}, flat(3), out=out)
        assert out["checked"] == 1
        assert len(res.orders) == 0

    def test_style_and_limit_price_together_is_an_error(self):
        out = {}
        run({0: expect_error(ValueError, "style", lambda a, c: a.order(c.asset, 10, limit_price=9.0,
                                                                         style=LimitOrder(9.0)))},
            flat(3), out=out)
        assert out["checked"] == 1

    def test_style_class_instead_of_instance_is_an_error(self):
        out = {}
        run({0: expect_error(TypeError, "style", lambda a, c: a.order(c.asset, 10, style=LimitOrder))},
            flat(3), out=out)
        assert out["checked"] == 1


class TestStyleValidation:
    @pytest.mark.parametrize(
        ("make", "exc", "name"),
        [
            (lambda: LimitOrder(-1), ValueError, "limit_price"),
            (lambda: LimitOrder(0), ValueError, "limit_price"),
            (lambda: LimitOrder(float("nan")), ValueError, "limit_price"),
            (lambda: LimitOrder(float("inf")), ValueError, "limit_price"),
            (lambda: StopOrder("x"), TypeError, "stop_price"),
            (lambda: StopOrder(None), TypeError, "stop_price"),
            (lambda: StopLimitOrder(10.0, -2.0), ValueError, "stop_price"),
            (lambda: StopLimitOrder(float("nan"), 10.0), ValueError, "limit_price"),
            (lambda: LimitOrder(10.0, time_in_force="FOK"), ValueError, "time_in_force"),
            (lambda: LimitOrder(10.0, time_in_force="GTD"), ValueError, "good_till"),
        ],
        ids=["limit-neg", "limit-zero", "limit-nan", "limit-inf", "stop-str", "stop-none", "stoplimit-neg-stop",
             "stoplimit-nan-limit", "tif-unknown", "gtd-without-date"],
    )
    def test_constructor_errors_name_the_argument(self, make, exc, name):
        with pytest.raises(exc, match=f"`{name}"):
            make()

    def test_error_message_shows_the_value(self):
        with pytest.raises(ValueError, match="-1"):
            LimitOrder(-1)

    def test_bad_limit_price_shortcut_raises_in_order(self):
        out = {}
        run({0: expect_error(ValueError, "`limit_price`", lambda a, c: a.order(c.asset, 10, limit_price=-5))},
            flat(3), out=out)
        assert out["checked"] == 1


# =========================================================================== assets
class TestUnknownAssets:
    @pytest.mark.parametrize("make", [lambda: "ZZZ", lambda: Asset("ZZZ")], ids=["str", "Asset"])
    def test_unknown_asset_order_is_rejected_with_a_reason(self, make):
        out = {}
        res = run({0: keep("t", lambda a, c, d: a.order(make(), 5)),
                   1: keep("status", lambda a, c, d: str(c.out["t"].status))}, flat(3), out=out)
        assert out["t"] == 1
        assert out["status"] == "rejected"
        row = orders_by_id(res).loc[1]
        assert row["status"] == "rejected"
        assert "ZZZ" in row["reason"]
        ev = events_of(res, 1)
        assert list(ev["kind"]) == ["rejected"] and "ZZZ" in ev.loc[0, "reason"]
        assert len(res.fills) == 0
    def test_rejected_unknown_asset_keeps_its_symbol(self):
        res = run({0: lambda a, c, d: a.order("ZZZ", 5)}, flat(3))
        assert orders_by_id(res).loc[1, "asset"] == "ZZZ"

    def test_symbol_lookup_suggests_near_matches(self):
        store = bars([FLAT] * 3, symbol="AAPL")
        out = {}

        def look(a, c, d):
            with pytest.raises(KeyError) as info:
                a.symbol("AAPX")
            out["msg"] = str(info.value)

        run({0: look}, store, symbol="AAPL", out=out)
        assert "AAPX" in out["msg"]
        assert "'AAPL'" in out["msg"]

    def test_symbol_error_is_raised_by_the_run(self):
        from rustybt_nb.errors import SymbolNotFound

        with pytest.raises(SymbolNotFound, match="AAPL"):
            run({}, bars([FLAT] * 3, symbol="AAPL"), symbol="AAPX")

    def test_symbol_string_and_asset_reach_the_same_asset(self):
        # `order()` may be given an asset or a symbol string; both reach the same asset
        out = {}
        res = run({0: steps(keep("a", lambda a, c, d: a.order("X", 3)),
                            keep("b", lambda a, c, d: a.order(c.asset, 4)))}, flat(3), out=out)
        assert res.fills.groupby("order_id")["qty"].sum().to_dict() == {1: 3.0, 2: 4.0}


# =========================================================================== sizing helpers
class TestSizingHelpers:
    # bar 0 closes at 12.5 (the last price while handling bar 0); capital 100_000
    STORE_ROWS = [(12.0, 13.0, 11.5, 12.5), (12.0, 13.0, 11.5, 12.5), (12.0, 13.0, 11.5, 12.5),
                  (12.0, 13.0, 11.5, 12.5)]

    def _amount_of(self, script):
        res = run(script, bars(self.STORE_ROWS))
        return res.orders["amount"].tolist()

    def test_order_value(self):
        # 1000 / 12.5 = 80 shares; -1010 / 12.5 = -80.8 -> -80 (toward zero)
        assert self._amount_of({0: lambda a, c, d: (a.order_value(c.asset, 1000), a.order_value(c.asset, -1010))}) \
            == [80.0, -80.0]

    def test_order_percent(self):
        # 0.1 * 100_000 / 12.5 = 800 shares
        assert self._amount_of({0: lambda a, c, d: a.order_percent(c.asset, 0.1)}) == [800.0]

    def test_order_target_counts_the_position_not_open_orders(self):
        # bar 0 buys 30 (filled at bar 1's open); on bar 1 order_target(50) orders 50 - 30 = 20;
        # on bar 1 a second order_target(50) still orders 20 (open orders are not counted)
        amounts = self._amount_of({0: lambda a, c, d: a.order(c.asset, 30),
                                   1: lambda a, c, d: (a.order_target(c.asset, 50), a.order_target(c.asset, 50))})
        assert amounts == [30.0, 20.0, 20.0]

    def test_order_target_value(self):
        # hold 100 shares (bought bar 0, filled bar 1 @ 12); target 2500 at price 12.5 -> 200 shares,
        # so order 200 - 100 = 100; target 0 after that -> sell everything held
        amounts = self._amount_of({0: lambda a, c, d: a.order(c.asset, 100),
                                   1: lambda a, c, d: a.order_target_value(c.asset, 2500),
                                   2: lambda a, c, d: a.order_target_value(c.asset, 0)})
        assert amounts == [100.0, 100.0, -200.0]

    def test_order_target_percent(self):
        # portfolio 100_000 at bar 0 -> 5 % = 5000 / 12.5 = 400 shares
        assert self._amount_of({0: lambda a, c, d: a.order_target_percent(c.asset, 0.05)}) == [400.0]

    def test_order_target_percent_uses_current_portfolio_value(self):
        # bar 0: buy 1000 @ 12 (filled bar 1). Bar 1 close 12.5 -> value 100_000 - 12_000 + 12_500 = 100_500;
        # target 20 % = 20_100 / 12.5 = 1608 shares -> order 608
        amounts = self._amount_of({0: lambda a, c, d: a.order(c.asset, 1000),
                                   1: lambda a, c, d: a.order_target_percent(c.asset, 0.2)})
        assert amounts == [1000.0, 608.0]

    def test_order_target_at_current_position_places_nothing(self):
        out = {}
        run({0: lambda a, c, d: a.order(c.asset, 30),
             1: keep("t", lambda a, c, d: a.order_target(c.asset, 30))}, bars(self.STORE_ROWS), out=out)
        assert out["t"] is None

    def test_sizing_helpers_pass_limit_price_through(self):
        res = run({0: lambda a, c, d: a.order_value(c.asset, 1000, limit_price=11.0)}, bars(self.STORE_ROWS))
        row = orders_by_id(res).loc[1]
        assert (row["style"], row["limit"], row["amount"]) == ("limit", 11.0, 80.0)

    @pytest.mark.parametrize(
        ("fn", "arg"),
        [("order_value", "value"), ("order_percent", "percent"), ("order_target", "target"),
         ("order_target_value", "target"), ("order_target_percent", "target")],
    )
    def test_nan_size_names_the_argument(self, fn, arg):
        out = {}
        run({0: expect_error(ValueError, f"`{arg}`", lambda a, c: getattr(a, fn)(c.asset, math.nan))},
            bars(self.STORE_ROWS), out=out)
        assert out["checked"] == 1


# =========================================================================== open orders
def _two_asset_store():
    idx = pd.date_range("2021-01-04", periods=4, freq="B")
    frame = pd.DataFrame({"open": 10.0, "high": 10.5, "low": 9.5, "close": 10.0, "volume": 1e6}, index=idx)
    return from_frames({"X": frame, "Y": frame.copy()})


class TestOpenOrders:
    def test_get_open_orders_shapes(self):
        out = {}

        def place(a, c, d):
            y = a.symbol("Y")
            out["ids"] = (a.order(c.asset, 5, limit_price=8.0), a.order(c.asset, -5, limit_price=12.0),
                          a.order(y, 5, limit_price=8.0))
            out["by_asset"] = a.get_open_orders(c.asset)
            out["by_symbol"] = a.get_open_orders("Y")
            out["all"] = a.get_open_orders()
            out["y"] = y

        res = run({0: place}, _two_asset_store(), out=out)
        x, y = Asset("X"), out["y"]
        assert set(out["by_asset"]) == {1, 2}
        assert all(isinstance(o, Order) and o.id == k for k, o in out["by_asset"].items())
        assert set(out["by_symbol"]) == {3}
        assert set(out["all"]) == {x, y}
        assert set(out["all"][x]) == {1, 2} and set(out["all"][y]) == {3}
        assert out["all"][y][3] is out["by_symbol"][3]
        assert len(res.orders) == 3

    def test_closed_orders_leave_open_orders(self):
        out = {}
        run({0: lambda a, c, d: (a.order(c.asset, 5), a.order(c.asset, 5, limit_price=8.0)),
             1: keep("open", lambda a, c, d: sorted(a.get_open_orders(c.asset))),
             2: keep("none", lambda a, c, d: (a.cancel_order(2), a.get_open_orders(), a.get_open_orders("X")))},
            flat(4), out=out)
        # order 1 (market) filled at bar 1's open; order 2 (limit 8) still working
        assert out["open"] == [2]
        assert out["none"] == (True, {}, {})

    def test_unknown_asset_has_no_open_orders(self):
        out = {}
        run({0: keep("o", lambda a, c, d: a.get_open_orders("ZZZ"))}, flat(3), out=out)
        assert out["o"] == {}


# =========================================================================== cancel
class TestCancel:
    @pytest.mark.parametrize("how", ["order", "ticket", "int"])
    def test_cancel_in_the_same_handle_data_never_fills(self, how):
        out = {}

        def place_and_cancel(a, c, d):
            t = a.order(c.asset, 10)
            ref = {"order": a.get_order(t), "ticket": t, "int": int(t)}[how]
            out["ok"] = a.cancel_order(ref)
            out["status"] = str(t.status)
            out["open"] = a.get_open_orders()

        res = run({0: place_and_cancel}, flat(3), out=out)
        assert out == {"ok": True, "status": "canceled", "open": {}}
        assert len(res.fills) == 0
        ev = events_of(res, 1)
        assert list(ev["kind"]) == ["submitted", "canceled"]
        assert ev.loc[1, "reason"] and ev.loc[1, "bar"] == 0
        assert res.perf["cash"].iloc[-1] == 100_000

    def test_cancel_on_a_later_bar_stops_a_resting_order(self):
        # limit 9 rests on bars 1 and 2 (low 9.5); canceled while handling bar 2; bar 3 (low 8.5) would fill
        store = bars([FLAT, FLAT, FLAT, (9.0, 9.2, 8.5, 9.0)])
        res = run({0: lambda a, c, d: a.order(c.asset, 10, limit_price=9.0),
                   2: lambda a, c, d: a.cancel_order(1)}, store)
        assert len(res.fills) == 0
        ev = events_of(res, 1)
        assert list(zip(ev["kind"], ev["dt"])) == [("submitted", session(0)), ("canceled", session(2))]

    def test_cancel_keeps_partial_fill(self):
        # cap 100/bar; 250 ordered, 100 filled on bar 1, canceled while handling bar 1
        res = run({0: lambda a, c, d: a.order(c.asset, 250), 1: lambda a, c, d: a.cancel_order(1)},
                  flat(4, volume=1000), slippage=NoSlippage(volume_limit=0.1))
        row = orders_by_id(res).loc[1]
        assert (row["status"], row["filled"]) == ("canceled", 100.0)
        assert res.fills["qty"].tolist() == [100.0]

    def test_cancel_of_a_filled_order_returns_false_and_warns(self):
        out = {}
        res = run({0: keep("t", lambda a, c, d: a.order(c.asset, 10)),
                   1: keep("ok", lambda a, c, d: a.cancel_order(c.out["t"]))}, flat(3), out=out)
        assert out["ok"] is False
        assert orders_by_id(res).loc[1, "status"] == "filled"
        warns = warnings_of(res)
        assert len(warns) == 1 and "cancel_order(1)" in warns[0] and "filled" in warns[0]
        assert res.logs.loc[res.logs["level"] == "WARNING", "dt"].tolist() == [session(1)]

    def test_cancel_unknown_id_raises(self):
        out = {}
        run({0: expect_error(ValueError, "12345", lambda a, c: a.cancel_order(12345))}, flat(3), out=out)
        assert out["checked"] == 1


# =========================================================================== statuses and events
class TestStatusAndEvents:
    def test_order_status_is_a_str_enum(self):
        assert ORDER_STATUS.OPEN == "open"
        assert isinstance(ORDER_STATUS.OPEN, str)
        assert ORDER_STATUS.CANCELLED is ORDER_STATUS.CANCELED
        assert ORDER_STATUS.CANCELED == "canceled"
        assert ORDER_STATUS.PARTIALLY_FILLED == "partial"
        expected = {"OPEN": "open", "HELD": "held", "TRIGGERED": "triggered", "PARTIALLY_FILLED": "partial",
                    "FILLED": "filled", "CANCELED": "canceled", "REJECTED": "rejected", "EXPIRED": "expired"}
        assert {k: getattr(ORDER_STATUS, k).value for k in expected} == expected
        assert ORDER_STATUS("partial") is ORDER_STATUS.PARTIALLY_FILLED

    def test_statuses_compare_with_enum_and_str(self):
        out = {}
        run({0: keep("t", lambda a, c, d: a.order(c.asset, 10, limit_price=8.0))}, flat(3), out=out)
        status = out["t"].status
        assert status == ORDER_STATUS.OPEN and status == "open"

    def test_every_status_change_is_an_event_with_a_reason(self):
        # a mix: market fill, partial fills, rejection, cancel, modify, trigger, DAY expiry
        store = bars([(*FLAT, 1000), (10.0, 11.3, 9.5, 10.0, 1000), (10.0, 10.5, 9.5, 10.0, 1000),
                      (10.0, 10.5, 9.5, 10.0, 1000), (10.0, 10.5, 9.5, 10.0, 1000)])

        def place(a, c, d):
            a.order(c.asset, 150)  # 1: partial then filled
            a.order("NOPE", 1)  # 2: rejected
            a.order(c.asset, 5, limit_price=8.0)  # 3: modified, then canceled
            a.order(c.asset, 5, limit_price=12.0, stop_price=11.0)  # 4: triggered, then filled
            a.order(c.asset, 5, limit_price=8.0, time_in_force="DAY")  # 5: expires end of bar 1

        res = run({0: place, 1: lambda a, c, d: a.modify_order(3, limit_price=8.5),
                   2: lambda a, c, d: a.cancel_order(3)}, store, slippage=NoSlippage(volume_limit=0.1))
        ev = res.order_events
        assert (ev["reason"].str.len() > 0).all()
        assert ev["seq"].tolist() == list(range(len(ev)))
        for oid, group in ev.groupby("order_id"):
            g = group.reset_index(drop=True)
            assert pd.isna(g.loc[0, "status_before"])
            # the chain is unbroken: each event starts where the previous one ended
            assert g["status_before"].iloc[1:].tolist() == g["status_after"].iloc[:-1].tolist()
            assert g["status_after"].iloc[-1] == orders_by_id(res).loc[oid, "status"]
            assert g["dt"].is_monotonic_increasing
        final = orders_by_id(res)["status"].to_dict()
        assert final == {1: "filled", 2: "rejected", 3: "canceled", 4: "filled", 5: "expired"}
        assert list(events_of(res, 3)["kind"]) == ["submitted", "updated", "canceled"]
        # stop 11 reached intrabar on bar 1 (high 11.3), but order 1 used the whole cap (100) of bar 1;
        # on bar 2 the triggered order works as a limit 12: 50 go to order 1, then 5 @ the open 10
        assert list(events_of(res, 4)["kind"]) == ["submitted", "triggered", "fill"]
        assert res.fills.loc[res.fills["order_id"] == 4, ["bar", "price"]].values.tolist() == [[2, 10.0]]

    def test_order_object_event_history_matches_result(self):
        out = {}
        res = run({0: keep("t", lambda a, c, d: a.order(c.asset, 10, limit_price=8.0)),
                   1: lambda a, c, d: a.cancel_order(c.out["t"])}, flat(3), out=out)
        hist = out["t"].events
        assert [e.kind for e in hist] == ["submitted", "canceled"]
        assert [e.status_after for e in hist] == list(events_of(res, 1)["status_after"])
        assert all(e.reason for e in hist)


# =========================================================================== modify
class TestModify:
    def test_modify_limit_applies_from_the_next_bar(self):
        # buy limit 9 rests (bars 1, 2: low 9.5). While handling bar 2 the limit moves to 9.6:
        # bar 2 is not re-matched; bar 3 (open 10, low 9.5) fills at the new limit 9.6.
        out = {}

        def modify(a, c, d):
            out["ok"] = a.modify_order(c.out["t"], limit_price=9.6)
            out["same_bar"] = (c.out["t"].limit, str(c.out["t"].status))

        res = run({0: keep("t", lambda a, c, d: a.order(c.asset, 10, limit_price=9.0)), 2: modify},
                  flat(5), out=out)
        assert out["ok"] is True
        assert out["same_bar"] == (9.6, "open")
        assert res.fills[["bar", "order_id", "qty", "price"]].values.tolist() == [[3, 1, 10, 9.6]]
        ev = events_of(res, 1)
        assert list(ev["kind"]) == ["submitted", "updated", "fill"]
        upd = ev.loc[1]
        assert (upd["status_before"], upd["status_after"], upd["limit"], upd["dt"]) == \
            ("open", "open", 9.6, session(2))
        assert upd["reason"]
        assert res.orders["id"].tolist() == [1]
        assert orders_by_id(res).loc[1, "limit"] == 9.6

    def test_modify_with_ticket_order_and_int(self):
        out = {}

        def modify(a, c, d):
            t = c.out["t"]
            out["r"] = (a.modify_order(t, limit_price=8.1), a.modify_order(a.get_order(t), limit_price=8.2),
                        a.modify_order(1, limit_price=8.3))

        res = run({0: keep("t", lambda a, c, d: a.order(c.asset, 10, limit_price=8.0)), 1: modify},
                  flat(3), out=out)
        assert out["r"] == (True, True, True)
        assert events_of(res, 1)["limit"].tolist() == [8.0, 8.1, 8.2, 8.3]

    def test_modify_stop_price(self):
        # buy stop 12 would never trigger (high 10.5); moved to 10.4 on bar 1 -> bar 2 high 10.5: fills at 10.4
        res = run({0: lambda a, c, d: a.order(c.asset, 10, stop_price=12.0),
                   1: lambda a, c, d: a.modify_order(1, stop_price=10.4)}, flat(4))
        assert res.fills[["bar", "price"]].values.tolist() == [[2, 10.4]]

    def test_modify_amount_of_a_partial_order(self):
        # cap 100/bar: 250 -> 100 filled on bar 1; raised to 300 on bar 1 -> 100 on bar 2, 100 on bar 3
        res = run({0: lambda a, c, d: a.order(c.asset, 250), 1: lambda a, c, d: a.modify_order(1, amount=300)},
                  flat(5, volume=1000), slippage=NoSlippage(volume_limit=0.1))
        assert res.fills["qty"].tolist() == [100.0, 100.0, 100.0]
        assert orders_by_id(res).loc[1, ["amount", "filled", "status"]].tolist() == [300.0, 300.0, "filled"]

    def test_modify_filled_order_is_refused(self):
        out = {}

        def modify(a, c, d):
            out["ok"] = a.modify_order(c.out["t"], limit_price=9.9)

        res = run({0: keep("t", lambda a, c, d: a.order(c.asset, 10, limit_price=11.0)), 1: modify},
                  flat(3), out=out)
        assert out["ok"] is False
        row = orders_by_id(res).loc[1]
        assert (row["status"], row["limit"], row["filled"]) == ("filled", 11.0, 10.0)
        assert "updated" not in events_of(res, 1)["kind"].tolist()
        warns = warnings_of(res)
        assert len(warns) == 1 and "modify_order(1)" in warns[0]

    @pytest.mark.parametrize("new_amount", [50, 100])
    def test_modify_amount_not_above_filled_is_refused(self, new_amount):
        # 250 ordered, 100 filled on bar 1 (cap 100): amount 50 (< filled) and 100 (== filled) refused
        out = {}

        def modify(a, c, d):
            out["ok"] = a.modify_order(1, amount=new_amount)
            out["amount"] = c.out["t"].amount

        res = run({0: keep("t", lambda a, c, d: a.order(c.asset, 250)), 1: modify},
                  flat(5, volume=1000), slippage=NoSlippage(volume_limit=0.1), out=out)
        assert out == {"ok": False, "amount": 250, "t": 1}
        assert "updated" not in events_of(res, 1)["kind"].tolist()
        assert res.fills["qty"].sum() == 250
        warns = warnings_of(res)
        assert len(warns) == 1 and "refused" in warns[0] and "100" in warns[0]

    def test_modify_limit_on_a_market_order_is_refused(self):
        out = {}

        def modify(a, c, d):
            out["ok"] = a.modify_order(c.out["t"], limit_price=9.0)

        res = run({0: steps(keep("t", lambda a, c, d: a.order(c.asset, 10)), modify)}, flat(3), out=out)
        assert out["ok"] is False
        assert res.fills["price"].tolist() == [10.0]
        assert len(warnings_of(res)) == 1

    def test_modify_with_a_bad_price_raises_naming_it(self):
        out = {}
        run({0: steps(keep("t", lambda a, c, d: a.order(c.asset, 10, limit_price=8.0)),
                      expect_error(ValueError, "`limit_price`",
                                   lambda a, c: a.modify_order(c.out["t"], limit_price=-1.0)))},
            flat(3), out=out)
        assert out["checked"] == 1


# =========================================================================== time in force
class TestTimeInForce:
    def test_day_order_expires_at_end_of_its_first_session(self):
        # placed on bar 0; first session it can fill is bar 1 (low 9.5 > limit 9) -> expired at bar 1;
        # bar 2 (low 8.5) would have filled it
        store = bars([FLAT, FLAT, (9.0, 9.2, 8.5, 9.0), FLAT])
        res = run({0: lambda a, c, d: a.order(c.asset, 10, limit_price=9.0, time_in_force="DAY")}, store)
        ev = events_of(res, 1)
        assert list(zip(ev["kind"], ev["status_after"], ev["dt"])) == \
            [("submitted", "open", session(0)), ("expired", "expired", session(1))]
        assert ev.loc[1, "reason"]
        assert len(res.fills) == 0

    def test_day_order_can_still_fill_in_its_session(self):
        store = bars([FLAT, (9.5, 9.8, 8.8, 9.2), FLAT])
        res = run({0: lambda a, c, d: a.order(c.asset, 10, limit_price=9.0, time_in_force="DAY")}, store)
        assert res.fills[["bar", "price"]].values.tolist() == [[1, 9.0]]
        assert orders_by_id(res).loc[1, "status"] == "filled"

    def test_day_style_argument(self):
        store = bars([FLAT, FLAT, FLAT])
        res = run({0: lambda a, c, d: a.order(c.asset, 10, style=LimitOrder(9.0, time_in_force="DAY"))}, store)
        assert orders_by_id(res).loc[1, ["status", "tif"]].tolist() == ["expired", "DAY"]

    def test_day_partial_expires_with_its_fill_kept(self):
        res = run({0: lambda a, c, d: a.order(c.asset, 250, time_in_force="DAY")},
                  flat(4, volume=1000), slippage=NoSlippage(volume_limit=0.1))
        row = orders_by_id(res).loc[1]
        assert (row["status"], row["filled"]) == ("expired", 100.0)

    def test_gtd_expires_after_good_till(self):
        # good till 2021-01-06 (bar 2): bars 1, 2 do not reach the limit 9; bar 3 (2021-01-07) would,
        # but the order expired at the end of bar 2, its last good bar, where the strategy sees it
        store = bars([FLAT, FLAT, FLAT, (9.0, 9.2, 8.5, 9.0), FLAT])
        seen = {}
        res = run({0: lambda a, c, d: a.order(c.asset, 10, limit_price=9.0, time_in_force="GTD",
                                              good_till="2021-01-06"),
                   2: lambda a, c, d: seen.update(open=len(a.get_open_orders()))}, store)
        ev = events_of(res, 1)
        assert list(ev["kind"]) == ["submitted", "expired"]
        assert ev.loc[1, "dt"] == session(2)
        assert ev.loc[1, "reason"] == "good till 2021-01-06: expired after its last bar"
        assert seen == {"open": 0}
        assert len(res.fills) == 0

    def test_gtd_still_working_at_the_end_of_the_data_expires_on_its_last_bar(self):
        res = run({0: lambda a, c, d: a.order(c.asset, 10, limit_price=9.0, good_till="2021-01-06")}, flat(3))
        ev = events_of(res, 1)
        assert list(ev["kind"]) == ["submitted", "expired"] and ev.loc[1, "dt"] == session(2)

    def test_gtd_fills_on_its_last_day(self):
        store = bars([FLAT, FLAT, (9.0, 9.2, 8.5, 9.0), FLAT])
        res = run({0: lambda a, c, d: a.order(c.asset, 10, limit_price=9.0, good_till="2021-01-06")}, store)
        # good_till alone implies GTD; 2021-01-06 is bar 2, where the open 9 fills at the limit
        assert res.fills[["bar", "price"]].values.tolist() == [[2, 9.0]]
        assert orders_by_id(res).loc[1, "tif"] == "GTD"

    def test_gtd_in_the_past_is_rejected(self):
        res = run({1: lambda a, c, d: a.order(c.asset, 10, limit_price=9.0, time_in_force="GTD",
                                              good_till="2021-01-04")}, flat(4))
        row = orders_by_id(res).loc[1]
        assert row["status"] == "rejected" and "good_till" in row["reason"]

    def test_gtc_is_the_default_and_never_expires(self):
        res = run({0: lambda a, c, d: a.order(c.asset, 10, limit_price=9.0)}, flat(6))
        assert orders_by_id(res).loc[1, ["status", "tif"]].tolist() == ["open", "GTC"]

    def test_bad_time_in_force_raises(self):
        out = {}
        run({0: expect_error(ValueError, "`time_in_force`",
                             lambda a, c: a.order(c.asset, 10, limit_price=9.0, time_in_force="IOC"))},
            flat(3), out=out)
        assert out["checked"] == 1


# =========================================================================== more edges
class TestMoreEdges:
    def test_time_in_force_override_does_not_change_the_shared_style(self):
        style = LimitOrder(9.0)
        res = run({0: lambda a, c, d: (a.order(c.asset, 1, style=style, time_in_force="DAY"),
                                       a.order(c.asset, 1, style=style))}, flat(4))
        assert orders_by_id(res)["tif"].to_dict() == {1: "DAY", 2: "GTC"}
        assert orders_by_id(res)["status"].to_dict() == {1: "expired", 2: "open"}
        assert style.time_in_force == "GTC"

    def test_order_on_the_last_bar_is_rejected_not_dropped(self):
        # no bar follows the last one, so the order could never fill: rejected with a reason
        res = run({2: lambda a, c, d: a.order(c.asset, 10)}, flat(3))
        row = orders_by_id(res).loc[1]
        assert row["status"] == "rejected" and row["reason"]
        assert len(res.fills) == 0

    def test_modify_of_a_canceled_order_is_refused(self):
        out = {}

        def go(a, c, d):
            t = a.order(c.asset, 10, limit_price=8.0)
            a.cancel_order(t)
            out["ok"] = a.modify_order(t, limit_price=9.0)

        res = run({0: go}, flat(3), out=out)
        assert out["ok"] is False
        assert orders_by_id(res).loc[1, ["status", "limit"]].tolist() == ["canceled", 8.0]
        assert len(warnings_of(res)) == 1

    def test_modify_limit_of_a_triggered_stop_limit(self):
        # buy stop 11 / limit 10.8: bar 1 (high 11.3, closes up) triggers, no fill; while handling
        # bar 1 the limit is raised to 11.2 -> bar 2 opens 11.1 <= 11.2: gap fill at 11.1
        store = bars([FLAT, (10.5, 11.3, 10.4, 11.1), (11.1, 11.3, 11.0, 11.2)])
        out = {}

        def modify(a, c, d):
            out["status"] = str(a.get_order(1).status)
            out["ok"] = a.modify_order(1, limit_price=11.2)

        res = run({0: lambda a, c, d: a.order(c.asset, 10, limit_price=10.8, stop_price=11.0), 1: modify},
                  store, out=out)
        assert out == {"status": "triggered", "ok": True}
        assert res.fills[["bar", "price"]].values.tolist() == [[2, 11.1]]

    def test_modify_stop_of_a_triggered_stop_limit_is_refused(self):
        store = bars([FLAT, (10.5, 11.3, 10.4, 11.1), (11.1, 11.3, 11.0, 11.2)])
        out = {}
        res = run({0: lambda a, c, d: a.order(c.asset, 10, limit_price=10.8, stop_price=11.0),
                   1: lambda a, c, d: out.update(ok=a.modify_order(1, stop_price=12.0))}, store, out=out)
        assert out["ok"] is False
        assert orders_by_id(res).loc[1, "stop"] == 11.0

    def test_cancel_with_a_wrong_type_raises(self):
        out = {}
        run({0: expect_error(TypeError, "order", lambda a, c: a.cancel_order(1.5))}, flat(3), out=out)
        assert out["checked"] == 1

    def test_api_outside_a_run_raises(self):
        from rustybt_nb import api
        from rustybt_nb.errors import AlgorithmError

        with pytest.raises(AlgorithmError):
            api.order("X", 1)
