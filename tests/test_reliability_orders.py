"""Orders that are malformed, cannot stand, or would break the books.

Malformed calls raise ``ValueError`` / ``TypeError`` naming the argument; well-formed orders
that cannot stand are ``rejected`` with the reason; cash and the portfolio value never
become NaN or infinite. Also: brackets never leave their entry unprotected, ``link_oco``
refusals, and the ``max_leverage`` setting.

Bars are ``(open, high, low, close[, volume])``; a script runs at the end of bar *n*, so its
orders are first matched on bar *n + 1*.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from helpers import bars, run

from rustybt_nb import Backtest, run_algorithm
from rustybt_nb.finance.commission import CommissionModel, PerDollar, PerShare, PerTrade
from rustybt_nb.finance.execution import (
    MAX_SHARES,
    BracketOrder,
    LimitOrder,
    MarketOrder,
    OCOOrder,
    StopLimitOrder,
    StopOrder,
)
from rustybt_nb.finance.slippage import (
    FixedBasisPointsSlippage,
    FixedSlippage,
    NoSlippage,
    VolumeShareSlippage,
)

FLAT = [(100, 101, 99, 100)] * 6


def _orders(result):
    return result.orders.set_index("id")


def _statuses(result, oid):
    ev = result.order_events
    return ev.loc[ev["order_id"] == oid, "status_after"].tolist()


def _warnings(result):
    return [m for lvl, m in zip(result.logs["level"], result.logs["message"]) if lvl == "WARNING"]


def _finite_books(result):
    perf = result.perf
    assert np.isfinite(perf[["portfolio_value", "cash", "positions_value"]].to_numpy()).all()
    assert np.isfinite(result.fills[["qty", "price", "cash_after"]].to_numpy()).all()


def _raised_in_run(call, store=None, **kw):
    """The exception ``call(algo, ctx, data)`` raises inside a run (it propagates out of the
    run with the partial result attached)."""
    with pytest.raises(BaseException) as info:
        run({0: call}, store or bars(FLAT), **kw)
    assert info.value.partial_result is not None
    return info.value


# ------------------------------------------------------------------ infinite sizes: ValueError naming the argument
INF = math.inf


@pytest.mark.parametrize("call, name", [
    (lambda a, c, d: a.order(c.asset, INF), "amount"),
    (lambda a, c, d: a.order(c.asset, -INF), "amount"),
    (lambda a, c, d: a.order(c.asset, math.nan), "amount"),
    (lambda a, c, d: a.order(c.asset, np.float64(INF)), "amount"),
    (lambda a, c, d: a.order(c.asset, 10**400), "amount"),
    (lambda a, c, d: a.order_value(c.asset, INF), "value"),
    (lambda a, c, d: a.order_value(c.asset, -INF), "value"),
    (lambda a, c, d: a.order_percent(c.asset, INF), "percent"),
    (lambda a, c, d: a.order_target(c.asset, INF), "target"),
    (lambda a, c, d: a.order_target(c.asset, 10**400), "amount"),  # (an int: checked as the amount it makes)
    (lambda a, c, d: a.order_target(c.asset, np.float64(-INF)), "target"),
    (lambda a, c, d: a.order_target_value(c.asset, INF), "target"),
    (lambda a, c, d: a.order_target_percent(c.asset, INF), "target"),
    (lambda a, c, d: a.order_target_percent(c.asset, math.nan), "target"),
    (lambda a, c, d: a.modify_order(a.order(c.asset, 5, limit_price=90), amount=INF), "amount"),
    (lambda a, c, d: a.modify_order(a.order(c.asset, 5, limit_price=90), amount=np.float64(-INF)), "amount"),
    (lambda a, c, d: a.order(c.asset, 5, limit_price=10**400), "limit_price"),
])
def test_sizes_that_are_not_finite_numbers_raise_naming_the_argument(call, name):
    exc = _raised_in_run(call)
    assert isinstance(exc, ValueError), repr(exc)
    assert f"`{name}`" in str(exc)
    assert "finite" in str(exc) or "NaN" in str(exc) or "beyond the range" in str(exc)
    assert len(str(exc)) < 400  # a huge int is described, not printed


@pytest.mark.parametrize("call, name", [
    (lambda a, c, d: a.order(c.asset, "10"), "amount"),
    (lambda a, c, d: a.order_value(c.asset, "1000"), "value"),
    (lambda a, c, d: a.order_target_percent(c.asset, None), "target"),
    (lambda a, c, d: a.modify_order(a.order(c.asset, 5, limit_price=90), amount="7"), "amount"),
])
def test_sizes_that_are_not_numbers_raise_type_errors_naming_the_argument(call, name):
    exc = _raised_in_run(call)
    assert isinstance(exc, TypeError), repr(exc)
    assert f"`{name}`" in str(exc)


# ------------------------------------------------------------------ huge finite sizes: rejected with the reason
@pytest.mark.parametrize("call, why", [
    (lambda a, c, d: a.order(c.asset, 1e300), "more shares than an order can book"),
    (lambda a, c, d: a.order(c.asset, -1e300), "more shares than an order can book"),
    (lambda a, c, d: a.order(c.asset, 2**53), "more shares than an order can book"),
    (lambda a, c, d: a.order(c.asset, 10**300), "more shares than an order can book"),
    (lambda a, c, d: a.order_value(c.asset, 1e306), "more shares than an order can book"),
    (lambda a, c, d: a.order_percent(c.asset, 1e300), "more shares than an order can book"),
    (lambda a, c, d: a.order_percent(c.asset, 1e305), "not a finite number"),
    (lambda a, c, d: a.order_target_percent(c.asset, 1e305), "not a finite number"),
    (lambda a, c, d: a.order_target_value(c.asset, 1e300), "more shares than an order can book"),
    (lambda a, c, d: a.order(c.asset, 1e300, style=BracketOrder(entry_style=MarketOrder(), stop_loss_price=90,
                                                                take_profit_price=110)),
     "more shares than an order can book"),
    (lambda a, c, d: a.order(c.asset, 1, style=OCOOrder((1e300, StopOrder(110)), (-1, StopOrder(90)))),
     "more shares than an order can book"),
])
def test_huge_finite_sizes_are_rejected_with_the_reason_and_books_stay_finite(call, why):
    result = run({0: call}, bars(FLAT))
    orders = result.orders
    assert len(orders) >= 1
    assert (orders["status"] == "rejected").all()
    assert orders["reason"].str.contains(why, regex=False).all(), orders["reason"].tolist()
    assert result.fills.empty
    assert (result.perf["portfolio_value"] == 100_000).all()
    _finite_books(result)


def test_the_largest_exact_share_count_is_accepted():
    store = bars([(1e-6, 1e-6, 1e-6, 1e-6)] * 3)
    result = run({0: lambda a, c, d: a.order(c.asset, MAX_SHARES)}, store, capital_base=1e12)
    assert result.orders["status"].tolist() == ["filled"]
    assert result.fills["qty"].iloc[0] == MAX_SHARES
    _finite_books(result)


def test_modify_to_a_huge_amount_is_refused_and_logged():
    out = {}

    def place(a, c, d):
        out["t"] = a.order(c.asset, 5, limit_price=90)
        out["ok"] = a.modify_order(out["t"], amount=1e300)

    result = run({0: place}, bars(FLAT))
    assert out["ok"] is False
    assert _orders(result).loc[1, "amount"] == 5
    assert any("modify_order(1) refused: amount 1e+300" in w for w in _warnings(result))


def test_a_fill_that_would_take_cash_near_the_float_limit_is_refused():
    # 1e302 is a finite float, but cash and positions of that size cannot be summed safely
    store = bars([(1e299, 1e299, 1e299, 1e299)] * 3)
    result = run({0: lambda a, c, d: a.order(c.asset, 1000)}, store, capital_base=1e6)
    assert _orders(result).loc[1, "status"] == "rejected"
    assert "would be beyond ±1e+300" in _orders(result).loc[1, "reason"]
    assert (result.perf["portfolio_value"] == 1e6).all()
    _finite_books(result)


def test_a_fill_whose_cash_would_overflow_rejects_the_order_and_books_nothing():
    # placed at a price of 100, the market gaps to 1e300 before it fills
    store = bars([(100, 101, 99, 100), *[(1e300, 1e300, 1e300, 1e300)] * 3])
    out = {}

    def place(a, c, d):
        out["t"] = a.order(c.asset, 10**9, style=BracketOrder(entry_style=MarketOrder(), stop_loss_price=90,
                                                              take_profit_price=110))

    result = run({0: place}, store)
    assert _statuses(result, 1) == ["open", "rejected"]
    reason = _orders(result).loc[1, "reason"]
    assert reason.startswith("fill of +1e+09 at 1e+300 refused") and "beyond ±1e+300" in reason
    assert _orders(result).loc[[2, 3], "status"].tolist() == ["canceled", "canceled"]  # exits go with it
    assert result.fills.empty
    assert (result.perf["portfolio_value"] == 100_000).all()


def test_a_commission_model_returning_nan_rejects_the_order_instead_of_a_nan_portfolio():
    class Broken(CommissionModel):
        def calculate(self, order, fill_qty, fill_price):
            return math.nan

    result = run({0: lambda a, c, d: a.order(c.asset, 10)}, bars(FLAT), commission=Broken())
    assert _orders(result).loc[1, "status"] == "rejected"
    assert "commission model returned nan" in _orders(result).loc[1, "reason"]
    _finite_books(result)


def test_a_partly_filled_order_whose_next_fill_overflows_is_rejected_keeping_what_filled():
    store = bars([(100, 101, 99, 100, 1000), (100, 101, 99, 100, 1000), *[(1e300, 1e300, 1e300, 1e300, 1e9)] * 2])
    result = run({0: lambda a, c, d: a.order(c.asset, 10**9)}, store, slippage=NoSlippage(volume_limit=0.5))
    assert _statuses(result, 1) == ["open", "partial", "rejected"]
    assert _orders(result).loc[1, "filled"] == 500
    assert result.fills["qty"].tolist() == [500]
    _finite_books(result)


# ------------------------------------------------------------------ malformed OCO legs
@pytest.mark.parametrize("leg, error, text", [
    ((math.nan, StopOrder(110)), ValueError, "`OCO leg 1 amount` is NaN"),
    ((INF, StopOrder(110)), ValueError, "`OCO leg 1 amount` must be a finite number"),
    (("5", StopOrder(110)), TypeError, "`OCO leg 1 amount` must be a number of shares, got '5'"),
    ((None, StopOrder(110)), TypeError, "`OCO leg 1 amount` must be a number of shares"),
    ((True, StopOrder(110)), TypeError, "`OCO leg 1 amount` must be a number of shares"),
    ((10**400, StopOrder(110)), ValueError, "beyond the range of a float"),
    ((5, StopOrder(110), "extra"), TypeError, "OCO leg 1 must be a style or an (amount, style) pair"),
    ((5,), TypeError, "OCO leg 1 must be a style or an (amount, style) pair"),
])
def test_malformed_oco_legs_raise_when_the_style_is_made(leg, error, text):
    with pytest.raises(error) as info:
        OCOOrder(leg, (-5, StopOrder(90)))
    assert text in str(info.value)


def test_oco_leg_amounts_are_whole_shares_like_order_amounts():
    style = OCOOrder((np.float64(2.7), StopOrder(110)), (-3.00001, StopOrder(90)))
    assert [leg[0] for leg in style.legs] == [2, -3]
    assert all(type(leg[0]) is int for leg in style.legs)
    result = run({0: lambda a, c, d: a.order(c.asset, 1, style=style)}, bars(FLAT))
    assert result.orders["amount"].tolist() == [2, -3]


# ------------------------------------------------------------------ accepted silently before, refused now
@pytest.mark.parametrize("make, name", [
    (lambda: PerShare(cost=-0.01), "cost"),
    (lambda: PerShare(min_trade_cost=-1), "min_trade_cost"),
    (lambda: PerTrade(cost=-1), "cost"),
    (lambda: PerDollar(cost=-0.001), "cost"),
    (lambda: FixedSlippage(spread=-0.1), "spread"),
    (lambda: FixedBasisPointsSlippage(basis_points=-5), "basis_points"),
    (lambda: VolumeShareSlippage(price_impact=-0.1), "price_impact"),
])
def test_negative_costs_raise_naming_the_argument(make, name):
    with pytest.raises(ValueError, match=rf"`{name}` must be >= 0, got -"):
        make()


def test_zero_costs_are_still_fine():
    for model in (PerShare(0, 0), PerTrade(0), PerDollar(0), FixedSlippage(0), FixedBasisPointsSlippage(0),
                  VolumeShareSlippage(price_impact=0)):
        assert model is not None


@pytest.mark.parametrize("good_till", [pd.NaT, np.datetime64("NaT"), math.nan, 20240101, True])
def test_a_good_till_that_is_not_a_time_raises_naming_it(good_till):
    for make in (lambda: LimitOrder(90, time_in_force="GTD", good_till=good_till),
                 lambda: BracketOrder(entry_style=MarketOrder(), stop_loss_price=90, time_in_force="GTD",
                                      good_till=good_till),
                 lambda: OCOOrder(StopOrder(110), StopOrder(90), time_in_force="GTD", good_till=good_till)):
        with pytest.raises(ValueError, match=r"`good_till`=.* is not a time"):
            make()
    exc = _raised_in_run(lambda a, c, d: a.order(c.asset, 5, limit_price=90, good_till=good_till))
    assert isinstance(exc, ValueError) and "`good_till`" in str(exc)


def test_an_order_cannot_be_linked_one_cancels_other_with_itself():
    for call in (lambda a, t, u: a.link_oco(t, t), lambda a, t, u: t.add_oco_sibling(t),
                 lambda a, t, u: a.link_oco(t, u, int(t))):
        def place(a, c, d, call=call):
            t, u = a.order(c.asset, 5, limit_price=90), a.order(c.asset, -5, limit_price=110)
            call(a, t, u)

        exc = _raised_in_run(place)
        assert isinstance(exc, ValueError)
        assert "given more than once" in str(exc) and "`orders`" in str(exc)
        assert exc.partial_result.orders["oco_ids"].map(len).eq(0).all()  # nothing was linked


def test_linking_two_legs_of_one_bracket_is_refused_and_logged():
    out = {}

    def place(a, c, d):
        t = a.order(c.asset, 5, style=BracketOrder(entry_style=LimitOrder(95), stop_loss_price=90,
                                                   take_profit_price=110))
        out["entry"] = a.link_oco(t, t.child_ids[0])
        out["exits"] = a.link_oco(*t.child_ids)

    result = run({0: place}, bars(FLAT))
    assert out == {"entry": False, "exits": False}
    assert sum("legs of one bracket" in w for w in _warnings(result)) == 2
    assert _orders(result).loc[1, "oco_ids"] == []


@pytest.mark.parametrize("amount, entry, entry_price, ok", [
    (10, LimitOrder(98), 120, False),  # the example: a buy limit never fills at 120
    (10, LimitOrder(98), 97.5, True),  # a better price than the limit: possible
    (10, LimitOrder(98), 98, True),
    (-10, LimitOrder(102), 90, False),  # a sell limit never fills below its limit
    (-10, LimitOrder(102), 103, True),
    (10, StopOrder(105), 100, False),  # a buy stop fills at its stop or higher
    (10, StopOrder(105), 106, True),
    (-10, StopOrder(95), 97, False),
    (10, StopLimitOrder(106, 105), 107, False),  # a stop-limit fills at its limit or better
    (10, StopLimitOrder(106, 105), 105.5, True),
    (10, MarketOrder(), 100.5, True),  # a market entry: entry_price is the estimate
])
def test_a_bracket_whose_entry_price_contradicts_its_own_entry_is_rejected(amount, entry, entry_price, ok):
    long = amount > 0
    sl, tp = (entry_price - 5, entry_price + 5) if long else (entry_price + 5, entry_price - 5)
    style = BracketOrder(entry_style=entry, entry_price=entry_price, stop_loss_price=sl, take_profit_price=tp)
    result = run({0: lambda a, c, d: a.order(c.asset, amount, style=style)}, bars(FLAT))
    statuses = result.orders["status"].tolist()
    if ok:
        assert "rejected" not in statuses, result.orders["reason"].tolist()
    else:
        assert statuses == ["rejected"] * 3
        assert f"entry_price {entry_price:g} contradicts" in result.orders["reason"].iloc[0]
        assert result.orders["reason"].iloc[1].startswith("bracket rejected: entry_price")


# ------------------------------------------------------------------ a bracket never leaves its entry unprotected
def _unprotected_case(cancel_role, amount=10):
    """The issue's differential case: a long limit entry at 98 with stop 95 / target 105;
    one exit is canceled while the entry waits; the market then falls through 98 to 90."""
    long = amount > 0
    rows = [(100, 101, 99, 100), (100, 101, 99, 100), (99, 99.5, 97, 98), (97, 97, 92, 93), (92, 92, 89, 90)]
    if not long:
        rows = [(200 - o, 200 - lo, 200 - h, 200 - c) for o, h, lo, c in rows]
    style = BracketOrder(entry_style=LimitOrder(98 if long else 102), stop_loss_price=95 if long else 105,
                         take_profit_price=105 if long else 95)
    out = {}

    def place(a, c, d):
        out["t"] = a.order(c.asset, amount, style=style)

    def cancel(a, c, d):
        role = dict(zip(("stop_loss", "take_profit"), out["t"].child_ids))[cancel_role]
        out["canceled"] = a.cancel_order(role)

    return run({0: place, 1: cancel}, bars(rows)), out


@pytest.mark.parametrize("cancel_role", ["take_profit", "stop_loss"])
@pytest.mark.parametrize("amount", [10, -10])
def test_canceling_a_held_exit_cancels_the_whole_bracket(cancel_role, amount):
    result, out = _unprotected_case(cancel_role, amount)
    assert out["canceled"] is True
    orders = _orders(result)
    assert orders["status"].tolist() == ["canceled"] * 3
    assert result.fills.empty  # the entry never fills unprotected
    assert (result.perf["positions_value"] == 0).all()
    canceled = 2 if cancel_role == "stop_loss" else 3
    other = 5 - canceled
    role = cancel_role.replace("_", "-")
    assert orders.loc[canceled, "reason"] == "canceled by the strategy"
    assert orders.loc[1, "reason"] == (f"bracket canceled: its {role} #{canceled} was canceled before the entry "
                                       "filled, which would leave the entry unprotected")
    assert orders.loc[other, "reason"] == "entry #1 canceled before any fill"
    ev = result.order_events
    assert ev["order_id"].tolist()[-3:] == [canceled, 1, other]  # in that order, on the same bar
    assert ev["bar"].iloc[-3:].nunique() == 1


def test_a_held_exit_canceled_after_a_partial_entry_fill_protects_the_filled_part():
    # volume caps the entry at 50 shares per bar; the target is canceled after the first 50
    store = bars([(100, 101, 99, 100, 100), (100, 101, 99, 100, 100), (100, 101, 99, 100, 100),
                  (100, 101, 94, 95, 100), (95, 96, 94, 95, 100)])
    out = {}

    def place(a, c, d):
        out["t"] = a.order(c.asset, 100, style=BracketOrder(entry_style=MarketOrder(), stop_loss_price=96,
                                                            take_profit_price=110))

    def cancel(a, c, d):
        a.cancel_order(out["t"].child_ids[1])

    result = run({0: place, 1: cancel}, store, slippage=NoSlippage(volume_limit=0.5))
    orders = _orders(result)
    assert orders.loc[1, "filled"] == 50 and orders.loc[1, "status"] == "canceled"
    assert orders.loc[3, "status"] == "canceled"
    assert _statuses(result, 2) == ["held", "open", "filled"]  # the stop protects the 50 shares
    assert orders.loc[2, "amount"] == -50
    assert result.fills["order_id"].tolist() == [1, 2]
    assert result.fills["position_after"].iloc[-1] == 0


def test_a_held_exit_closed_through_an_oco_link_takes_its_bracket_with_it():
    # the stop-loss of a waiting bracket is linked to an unrelated sell limit, which fills
    out = {}

    def place(a, c, d):
        out["t"] = a.order(c.asset, 10, style=BracketOrder(entry_style=LimitOrder(90), stop_loss_price=85,
                                                           take_profit_price=110))
        out["other"] = a.order(c.asset, -1, limit_price=100.5)
        assert a.link_oco(out["t"].child_ids[0], out["other"])

    result = run({0: place}, bars([(100, 101, 99, 100), (100, 101, 99, 100), (95, 96, 89, 90)]))
    orders = _orders(result)
    assert orders.loc[4, "status"] == "filled"
    assert orders.loc[[1, 2, 3], "status"].tolist() == ["canceled"] * 3
    assert orders.loc[1, "reason"].startswith("bracket canceled: its stop-loss #2 was canceled")
    assert result.fills["order_id"].tolist() == [4]  # the entry never filled without its stop


def test_canceling_one_working_exit_after_the_entry_filled_cancels_the_other_and_keeps_the_position():
    out = {}

    def place(a, c, d):
        out["t"] = a.order(c.asset, 10, style=BracketOrder(entry_style=MarketOrder(), stop_loss_price=90,
                                                           take_profit_price=110))

    def cancel(a, c, d):
        a.cancel_order(out["t"].child_ids[0])

    result = run({0: place, 2: cancel}, bars(FLAT))
    orders = _orders(result)
    assert orders["status"].tolist() == ["filled", "canceled", "canceled"]
    assert orders.loc[3, "reason"] == "OCO sibling #2 canceled"
    assert result.perf["positions_value"].iloc[-1] == 1000


def test_linking_to_an_order_that_already_closed_is_refused_and_logged():
    out = {}

    def place(a, c, d):
        out["a"] = a.order(c.asset, 5)
        out["b"] = a.order(c.asset, -5, limit_price=120)

    def link(a, c, d):
        out["linked"] = out["b"].add_oco_sibling(out["a"])

    result = run({0: place, 2: link}, bars(FLAT))
    assert out["linked"] is False
    assert any("OCO link refused: order(s) [1] are already closed" in w for w in _warnings(result))
    assert _orders(result).loc[2, "oco_ids"] == [] and _orders(result).loc[2, "status"] == "open"


def test_bracket_exits_activated_after_other_orders_changed_the_position_are_sized_to_the_net_position():
    # a plain sell of 4 fills first (short 4); then the bracket's limit entry buys 10: net long 6
    store = bars([(100, 101, 99, 100), (100, 101, 99, 100), (99, 99, 97, 98), (98, 99, 97, 98), (98, 99, 97, 98)])

    def place(a, c, d):
        a.order(c.asset, -4)
        a.order(c.asset, 10, style=BracketOrder(entry_style=LimitOrder(98), stop_loss_price=90,
                                                take_profit_price=110))

    result = run({0: place}, store)
    orders = _orders(result)
    assert orders.loc[2, "status"] == "filled"
    assert orders.loc[[3, 4], "amount"].tolist() == [-6, -6]
    assert orders.loc[[3, 4], "status"].tolist() == ["open", "open"]


# ------------------------------------------------------------------ max_leverage
@pytest.mark.parametrize("value", [0, -1, math.inf, math.nan, "2", True])
def test_max_leverage_must_be_a_positive_number(value):
    with pytest.raises(ValueError, match=r"`max_leverage` must be a positive number"):
        Backtest(None, handle_data=lambda c, d: None, data=bars(FLAT), max_leverage=value)
    with pytest.raises(ValueError, match=r"`max_leverage`"):
        run({}, bars(FLAT), max_leverage=value)


def test_leverage_stays_possible_without_max_leverage():
    result = run({0: lambda a, c, d: a.order_target_percent(c.asset, 5.0)}, bars(FLAT))
    assert result.orders["status"].tolist() == ["filled"]
    assert result.perf["positions_value"].iloc[-1] == 500_000
    assert "max_leverage" not in result.settings


def test_max_leverage_rejects_an_order_beyond_it_with_the_reason():
    result = run({0: lambda a, c, d: a.order_target_percent(c.asset, 5.0),
                  1: lambda a, c, d: a.order_target_percent(c.asset, 1.5)}, bars(FLAT), max_leverage=2)
    orders = _orders(result)
    assert orders["status"].tolist() == ["rejected", "filled"]
    assert orders.loc[1, "reason"] == ("max_leverage=2: the positions and working orders could reach 5.00x the "
                                       "portfolio value 100,000.00 with this order (gross 500,000.00 at the last "
                                       "prices)")
    assert result.settings["max_leverage"] == 2.0
    assert _warnings(result) == []  # 150 % is within the limit the run allowed


def test_max_leverage_counts_working_orders_so_several_orders_cannot_sneak_past_it():
    def place(a, c, d):
        for _ in range(3):
            a.order_target_percent(c.asset, 0.8)  # open orders are not counted by order_target (Zipline)

    result = run({0: place}, bars(FLAT), max_leverage=1.0)
    assert result.orders["status"].tolist() == ["filled", "rejected", "rejected"]
    assert result.perf["positions_value"].iloc[-1] == 80_000


def test_max_leverage_never_rejects_an_order_that_reduces_exposure():
    # long 150 %, then the price falls to 60: exposure 2.25x; selling part is still allowed
    store = bars([*FLAT[:2], *[(60, 61, 59, 60)] * 3])

    def sell(a, c, d):
        assert a.order(c.asset, -100).status == "open"
        assert a.order(c.asset, 10).status == "rejected"  # adding is not

    result = run({0: lambda a, c, d: a.order(c.asset, 1500), 2: sell}, store, max_leverage=2)
    assert result.orders["status"].tolist() == ["filled", "filled", "rejected"]
    assert any("beyond max_leverage=2" in w for w in _warnings(result))  # price moves took it past


def test_max_leverage_checks_shorts_brackets_oco_legs_and_modifications():
    out = {}

    def place(a, c, d):
        out["short"] = a.order_target_percent(c.asset, -3.0)
        out["bracket"] = a.order(c.asset, 3000, style=BracketOrder(entry_style=MarketOrder(), stop_loss_price=90,
                                                                   take_profit_price=110))
        out["oco"] = a.order(c.asset, 1, style=OCOOrder((3000, StopOrder(110)), (-10, StopOrder(90))))
        out["small"] = a.order(c.asset, 100, limit_price=50)
        out["modified"] = a.modify_order(out["small"], amount=5000)

    result = run({0: place}, bars(FLAT), max_leverage=2)
    orders = _orders(result)
    assert orders.loc[1, "status"] == "rejected"  # short 300 %
    assert orders.loc[[2, 3, 4], "status"].tolist() == ["rejected"] * 3  # all three legs
    assert orders.loc[[5, 6], "status"].tolist() == ["rejected"] * 2  # an OCO group stands or falls whole
    assert out["modified"] is False and orders.loc[7, "amount"] == 100
    assert any("modify_order(7) refused: max_leverage=2" in w for w in _warnings(result))


def test_max_leverage_reaches_every_entry_point():
    store = bars(FLAT)
    script = {0: lambda a, c, d: a.order_target_percent(c.asset, 3.0)}
    by_function = run(script, store, max_leverage=2)
    backtest = Backtest(run.__globals__["Scripted"], data=store, max_leverage=2)
    assert "max_leverage=2" in backtest.call_text({"script": script})
    by_backtest = backtest.run(script=script)
    for res in (by_function, by_backtest):
        assert res.orders["status"].tolist() == ["rejected"]
    pd.testing.assert_frame_equal(by_function.orders, by_backtest.orders)
    assert run_algorithm  # (run() is run_algorithm with the scripted strategy)


def test_the_magic_takes_max_leverage():
    from rustybt_nb.analytics import magics

    cell = ("from rustybt_nb import TradingAlgorithm\n"
            "class Lever(TradingAlgorithm):\n"
            "    def initialize(self, context):\n"
            "        context.asset = self.symbol('AAPL')\n"
            "    def handle_data(self, context, data):\n"
            "        if not self.get_open_orders() and not context.portfolio.positions[context.asset].amount:\n"
            "            self.order_target_percent(context.asset, 3.0)\n")
    ns: dict = {}
    res = magics.run_backtest_cell(cell, ns, data="AAPL", start="2012-01-03", end="2012-01-10", progress=False,
                                   max_leverage=2.5)
    assert res.settings["max_leverage"] == 2.5
    assert (res.orders["status"] == "rejected").all()
    parser_doc = magics.BacktestMagics.backtest.__doc__
    assert "--max-leverage" in parser_doc
    assert magics._max_leverage("1.5") == 1.5
    for bad in ("0", "-1", "inf", "x"):
        with pytest.raises(Exception, match="`--max-leverage` must be a positive number"):
            magics._max_leverage(bad)
    # through the line itself
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.testing.globalipapp import start_ipython

    ip = start_ipython() or InteractiveShell.instance()
    ip.run_line_magic("load_ext", "rustybt_nb")
    ip.run_cell(cell, store_history=False)
    res = ip.run_line_magic("backtest", "Lever --data AAPL --start 2012-01-03 --end 2012-01-10 --max-leverage 2.5 "
                                        "--quiet")
    res = ip.user_ns["_"] if res is None else res
    assert res.settings["max_leverage"] == 2.5 and (res.orders["status"] == "rejected").all()


def test_checking_each_fill_changes_nothing_when_no_fill_overflows():
    """Fills are checked before booking only when one could overflow or be NaN (a cost model
    of the user's, huge prices): a run through the checked path equals the plain one."""
    class Free(CommissionModel):  # a model of the user's: arms the check, charges nothing
        def calculate(self, order, fill_qty, fill_price):
            return 0.0

    rows = [(100 + i % 7, 106 + i % 7, 95 + i % 5, 101 + i % 5, 300) for i in range(30)]

    def trade(a, c, d):
        a.order(c.asset, 500, style=BracketOrder(entry_style=MarketOrder(), stop_loss_price=95,
                                                 take_profit_price=108))
        a.order(c.asset, -200, limit_price=104)

    script = {0: trade, 9: trade, 17: lambda a, c, d: a.order_target(c.asset, 0)}
    plain = run(script, bars(rows), slippage=NoSlippage(volume_limit=0.5))
    checked = run(script, bars(rows), slippage=NoSlippage(volume_limit=0.5), commission=Free())
    for name in ("orders", "order_events", "fills", "perf", "trades", "positions", "logs"):
        pd.testing.assert_frame_equal(getattr(plain, name), getattr(checked, name), check_exact=True)
    pd.testing.assert_series_equal(plain.metrics, checked.metrics, check_exact=True)
