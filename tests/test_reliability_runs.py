"""Runs that end oddly keep a whole, consistent result.

Metrics that cannot be computed are NaN or inf with the reason in ``run_info['notes']``,
never an exception; a finished result never changes (``analyze`` cannot trade); an
exception in the strategy or in ``analyze``, or an interrupt, leaves ``exc.partial_result``
satisfying every invariant of ``tests/test_properties.py``; leverage is warned about once.
"""

from __future__ import annotations

import logging
import math
import os
import warnings

import numpy as np
import pandas as pd
import pytest
from helpers import Scripted, bars, run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_properties import check_invariants

from rustybt_nb import Backtest, TradingAlgorithm, run_algorithm
from rustybt_nb.errors import AlgorithmError
from rustybt_nb.finance.execution import BracketOrder, LimitOrder, MarketOrder
from rustybt_nb.metrics import METRIC_NAMES, compute_metrics, metric_notes

EXAMPLES = int(os.environ.get("PROPERTY_EXAMPLES", "60"))
FLAT = [(100, 101, 99, 100)] * 6


def _warnings(result):
    return [m for lvl, m in zip(result.logs["level"], result.logs["message"]) if lvl == "WARNING"]


# ------------------------------------------------------------------ metrics never raise
def _rocket(**kw):
    """Three sessions; everything is bought at 1 and the price is 100 two days later: x100
    in 2 days, whose annualised power overflows a float."""
    store = bars([(1, 1, 1, 1), (1, 1, 1, 1), (100, 100, 100, 100)])
    return run({0: lambda a, c, d: a.order(c.asset, 100_000)}, store, **kw), store


def test_the_cagr_of_a_short_run_with_a_large_return_is_inf_with_the_reason():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not even a RuntimeWarning
        result, store = _rocket()
    m = result.metrics
    assert m["cagr"] == math.inf
    assert m["total_return"] == pytest.approx(99.0)
    assert m["end_value"] == pytest.approx(1e7)
    notes = result.run_info["notes"]
    assert any(n.startswith("CAGR is inf: growing x100 in 2 days overflows a float") for n in notes), notes
    assert list(result.metrics.index) == list(METRIC_NAMES)
    assert "CAGR inf" in result.summary()
    sweep = Backtest(Scripted, data=store).run_metrics(script={0: lambda a, c, d: a.order(c.asset, 100_000)})
    pd.testing.assert_series_equal(sweep, m)


def test_a_portfolio_that_ends_below_zero_has_an_undefined_cagr_with_the_reason():
    # short 1,000 at 100 with 100,000 of cash; the price triples
    store = bars([(100, 101, 99, 100)] * 2 + [(300, 301, 299, 300)] * 2)
    result = run({0: lambda a, c, d: a.order(c.asset, -1000)}, store)
    m = result.metrics
    assert m["end_value"] == pytest.approx(-100_000)
    assert math.isnan(m["cagr"])
    assert any("CAGR is undefined: the portfolio ended at -100,000.00" in n for n in result.run_info["notes"])


def test_a_portfolio_value_of_zero_leaves_undefined_returns_out_with_the_reason():
    # short 1,000 at 100 with 100,000 of cash; the price doubles and stays: worth exactly 0
    store = bars([(100, 100, 100, 100)] * 2 + [(200, 200, 200, 200)] * 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = run({0: lambda a, c, d: a.order(c.asset, -1000)}, store)
    assert result.perf["portfolio_value"].iloc[-1] == 0
    assert result.perf["returns"].isna().sum() == 2
    assert any("some returns are undefined" in n for n in result.run_info["notes"])
    assert result.metrics["max_drawdown"] == -1.0


def test_an_ordinary_run_has_no_notes():
    result = run_algorithm(Scripted, data="AAPL", start="2012-01-01", end="2012-06-30", symbol="AAPL",
                           script={0: lambda a, c, d: a.order(c.asset, 10)})
    assert result.run_info["notes"] == []


VALUES = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(-1e6, 1e6),
                   st.sampled_from([0.0, -0.0, 1e308, -1e308, 5e-324]))


@settings(max_examples=EXAMPLES * 3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.lists(VALUES, max_size=8), capital=st.sampled_from([1.0, 1e5, 1e300]),
       pnl=st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=5),
       days=st.sampled_from(["1D", "1min", "365D"]))
def test_metrics_of_any_values_are_numbers_never_exceptions(values, capital, pnl, days):
    pv = np.array(values, dtype=float)
    idx = pd.date_range("2020-01-01", periods=len(pv), freq=days)
    with np.errstate(all="ignore"):
        prev = np.r_[capital, pv[:-1]] if len(pv) else pv
        perf = pd.DataFrame({"portfolio_value": pv, "returns": pv / prev - 1, "pnl": pv - prev, "cash": pv,
                             "positions_value": np.zeros(len(pv))}, index=idx)
    trades = pd.DataFrame({"net_pnl": np.array(pnl, dtype=float), "is_open": np.zeros(len(pnl), dtype=bool)})
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # (numpy's own reductions of non-finite values)
        m = compute_metrics(perf, trades, capital, 252.0, 0.0)
        notes = metric_notes(m, perf)
    assert list(m.index) == list(METRIC_NAMES)
    assert all(isinstance(v, float) for v in m.to_numpy().tolist())
    assert all(isinstance(n, str) and n for n in notes)


# ------------------------------------------------------------------ a finished result never changes
class Trader(TradingAlgorithm):
    """Buys a bracket on bar 1, leaves a limit order working; ``analyze`` does ``params.after``."""

    params = {"after": None}

    def initialize(self, context):
        context.asset = self.symbol("X")
        context.tickets = []
        context.n = 0

    def handle_data(self, context, data):
        context.n += 1
        if context.n == 1:
            context.tickets.append(self.order(context.asset, 10, style=BracketOrder(
                entry_style=MarketOrder(), stop_loss_price=90, take_profit_price=110)))
            context.tickets.append(self.order(context.asset, 5, style=LimitOrder(50)))

    def analyze(self, context, results):
        if self.params.after is not None:
            self.params.after(self, context, results)


@pytest.mark.parametrize("after", [
    lambda a, c, r: a.order(c.asset, 5),
    lambda a, c, r: a.order_target_percent(c.asset, 0),
    lambda a, c, r: a.cancel_order(c.tickets[1]),
    lambda a, c, r: a.modify_order(c.tickets[1], limit_price=55),
    lambda a, c, r: a.link_oco(c.tickets[1], a.get_order(c.tickets[0]).child_ids[0]),
    lambda a, c, r: c.tickets[1].cancel(),
])
def test_trading_in_analyze_raises_and_the_result_stays_as_the_run_left_it(after):
    store = bars(FLAT)
    reference = run_algorithm(Trader, data=store)
    with pytest.raises(AlgorithmError, match=r"the backtest is over \(analyze\(\) reads the finished result\)"):
        run_algorithm(Trader, data=store, after=after)
    try:
        run_algorithm(Trader, data=store, after=after)
    except AlgorithmError as exc:
        partial = exc.partial_result
    assert partial.run_info["completed"] is True
    for name in ("orders", "order_events", "fills", "positions", "perf", "trades", "logs"):
        pd.testing.assert_frame_equal(getattr(partial, name), getattr(reference, name), check_exact=True)
    assert partial.orders.loc[partial.orders["id"] == 4, "status"].item() == "open"  # the limit still works
    check_invariants(partial)


def test_reading_orders_in_analyze_still_works():
    seen = {}

    def after(a, c, r):
        seen["status"] = a.get_order(c.tickets[1]).status
        seen["open"] = sorted(a.get_open_orders(c.asset))
        seen["rows"] = len(r.orders)

    run_algorithm(Trader, data=bars(FLAT), after=after)
    assert seen == {"status": "open", "open": [2, 3, 4], "rows": 4}


def test_a_result_read_late_equals_one_read_at_once():
    # an instance run twice: the first result's frames, built on first read after the second
    # run, are those of the first run
    algo = Trader()
    bt = Backtest(algo, data=bars(FLAT))
    first = bt.run()
    second = bt.run(after=lambda a, c, r: None)
    fresh = Backtest(Trader, data=bars(FLAT)).run()
    for name in ("orders", "order_events", "fills", "positions"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(fresh, name), check_exact=True)
        pd.testing.assert_frame_equal(getattr(second, name), getattr(fresh, name), check_exact=True)


def test_an_exception_in_analyze_keeps_the_finished_result():
    def after(a, c, r):
        raise ZeroDivisionError("bad analysis")

    reference = run_algorithm(Trader, data=bars(FLAT))
    with pytest.raises(ZeroDivisionError) as info:
        run_algorithm(Trader, data=bars(FLAT), after=after)
    partial = info.value.partial_result
    assert partial.run_info["completed"] is True
    assert partial.metrics.equals(reference.metrics)
    pd.testing.assert_frame_equal(partial.orders, reference.orders)
    check_invariants(partial)


# ------------------------------------------------------------------ interrupts
class Interrupted(Trader):
    params = {"after": None, "stop_at": 3, "where": "handle_data", "error": KeyboardInterrupt}

    def initialize(self, context):
        super().initialize(context)
        if self.params.where == "scheduled":
            self.schedule_function(self._maybe_stop)

    def _maybe_stop(self, context, data):
        if context.n + 1 == self.params.stop_at:
            raise self.params.error("stopped")

    def before_trading_start(self, context, data):
        if self.params.where == "before_trading_start" and context.n + 1 == self.params.stop_at:
            raise self.params.error("stopped")

    def handle_data(self, context, data):
        super().handle_data(context, data)
        if context.n == 2:  # something working at the interrupt: a partial fill and open exits
            self.order(context.asset, 400)
        if self.params.where == "handle_data" and context.n == self.params.stop_at:
            raise self.params.error("stopped")


@pytest.mark.parametrize("where", ["handle_data", "before_trading_start", "scheduled"])
@pytest.mark.parametrize("error", [KeyboardInterrupt, ValueError])
@pytest.mark.parametrize("stop_at", [1, 3, 6])
def test_an_interrupt_or_error_anywhere_keeps_a_consistent_partial_result(where, error, stop_at):
    store = bars([(100, 101, 99, 100, 1000)] * 6)
    with pytest.raises(error) as info:
        run_algorithm(Interrupted, data=store, where=where, error=error, stop_at=stop_at,
                      slippage=__import__("rustybt_nb").finance.slippage.NoSlippage(volume_limit=0.25))
    partial = info.value.partial_result
    assert partial.run_info["completed"] is False
    assert partial.run_info["error"] == f"{error.__name__}: stopped"
    # (before_trading_start of bar n runs before bar n is revealed: the run ends with bar n - 1)
    assert len(partial.perf) == (stop_at - 1 if where == "before_trading_start" else stop_at)
    check_invariants(partial)


def test_an_interrupt_from_the_progress_callback_keeps_the_partial_result():
    calls = []

    def progress(done, total):
        calls.append(done)
        if done >= 3:
            raise KeyboardInterrupt

    store = bars(FLAT * 100)
    with pytest.raises(KeyboardInterrupt) as info:
        Backtest(Trader, data=store).run(progress)
    partial = info.value.partial_result
    assert partial.run_info["completed"] is False
    assert 3 <= partial.run_info["bars"] < len(FLAT) * 100
    check_invariants(partial)


# ------------------------------------------------------------------ leverage: warned once
def test_five_hundred_percent_is_possible_and_warned_once_in_the_log_and_the_notes(caplog):
    store = bars(FLAT)
    with caplog.at_level(logging.WARNING, logger="rustybt_nb.algorithm"):
        result = run({0: lambda a, c, d: a.order_target_percent(c.asset, 5.0),
                      2: lambda a, c, d: a.order_target_percent(c.asset, 6.0)}, store)
    assert result.orders["status"].tolist() == ["filled", "filled"]
    warned = _warnings(result)
    assert len(warned) == 1
    assert warned[0] == ("leverage: at 2021-01-05 cash went negative (-400,000.00): the positions' gross value "
                         "500,000.00 is 5.00x the portfolio value 100,000.00; the peak was 6.00x at 2021-01-07. "
                         "Positions beyond the cash are bought on credit (no margin model, no interest); pass "
                         "max_leverage= to reject orders beyond a limit")
    assert result.logs.loc[result.logs["level"] == "WARNING", "dt"].item() == pd.Timestamp("2021-01-05")
    assert result.run_info["notes"] == warned
    assert [r.getMessage() for r in caplog.records if r.name == "rustybt_nb.algorithm"] == warned


def test_a_short_beyond_the_portfolio_value_is_warned_about():
    result = run({0: lambda a, c, d: a.order_target_percent(c.asset, -1.5)}, bars(FLAT))
    (warned,) = _warnings(result)
    assert "the exposure passed 100 %" in warned and "1.50x" in warned


def test_fully_invested_without_borrowing_is_not_warned_about():
    result = run({0: lambda a, c, d: a.order_target_percent(c.asset, 1.0)}, bars(FLAT))
    assert result.perf["cash"].iloc[-1] == 0
    assert _warnings(result) == [] and result.run_info["notes"] == []


def test_leverage_reached_by_a_price_move_alone_is_warned_at_the_session_close():
    # short 100 %: no borrowing at the fill; the price then rises 30 %
    store = bars([*FLAT[:3], *[(130, 131, 129, 130)] * 3])
    result = run({0: lambda a, c, d: a.order_target_percent(c.asset, -1.0)}, store)
    (warned,) = _warnings(result)
    assert warned.startswith("leverage: at 2021-01-07 the exposure passed 100 %")


def test_with_max_leverage_the_warning_is_about_passing_that_limit():
    store = bars([*FLAT[:3], *[(60, 61, 59, 60)] * 3])  # long 150 %, the price falls 40 %
    result = run({0: lambda a, c, d: a.order(c.asset, 1500)}, store, max_leverage=2)
    (warned,) = _warnings(result)
    assert warned.startswith("leverage: at 2021-01-07 the positions' gross value 90,000.00 is 2.25x the portfolio "
                             "value 40,000.00, beyond max_leverage=2")
    calm = run({0: lambda a, c, d: a.order(c.asset, 1500)}, bars(FLAT), max_leverage=2)
    assert _warnings(calm) == []  # 150 % is what it allowed


def test_intraday_leverage_on_minute_bars_is_warned_about_in_exchange_time():
    idx = pd.date_range("2021-01-04 09:31", periods=6, freq="min", tz="America/New_York")
    frame = pd.DataFrame({"open": 100.0, "high": 101.0, "low": 99.0, "close": 100.0, "volume": 1e6}, index=idx)

    def flat_again(a, c, d):
        a.order_target(c.asset, 0)

    result = run_algorithm(Scripted, data=frame, symbol="ASSET",
                           script={0: lambda a, c, d: a.order_target_percent(c.asset, 2.0), 2: flat_again})
    (warned,) = _warnings(result)
    assert warned.startswith("leverage: at 2021-01-04 09:32 EST cash went negative (-100,000.00)")
    assert result.perf["cash"].iloc[-1] == 100_000  # flat at the close: only the bar check sees it


def test_a_partial_result_carries_the_leverage_warning():
    def boom(a, c, d):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError) as info:
        run({0: lambda a, c, d: a.order_target_percent(c.asset, 3.0), 3: boom}, bars(FLAT))
    partial = info.value.partial_result
    assert len(_warnings(partial)) == 1 and partial.run_info["notes"] == _warnings(partial)
    check_invariants(partial)


def test_gross_exposure_adds_longs_and_shorts_across_assets():
    from rustybt_nb.data import from_frames

    idx = pd.bdate_range("2021-01-04", periods=5)
    frame = pd.DataFrame({"open": 100.0, "high": 101.0, "low": 99.0, "close": 100.0, "volume": 1e6}, index=idx)
    store = from_frames({"A": frame, "B": frame})

    def hedge(a, c, d):
        a.order_target_percent(a.symbol("A"), 1.0)
        a.order_target_percent(a.symbol("B"), -0.5)

    result = run({0: hedge}, store, symbol="A")
    assert result.perf["cash"].iloc[-1] == 50_000  # never negative
    (warned,) = _warnings(result)
    assert warned.startswith("leverage: at 2021-01-05 the exposure passed 100 %: the positions' gross value "
                             "150,000.00 is 1.50x the portfolio value 100,000.00")
    limited = run({0: hedge}, store, symbol="A", max_leverage=1.2)
    assert limited.orders["status"].tolist() == ["filled", "rejected"]
    assert "could reach 1.50x" in limited.orders["reason"].iloc[1]


def test_notes_and_infinite_metrics_survive_save_and_load(tmp_path):
    result, _ = _rocket()
    loaded = type(result).load(result.save(tmp_path / "rocket"))
    assert loaded.metrics["cagr"] == math.inf
    assert loaded.run_info["notes"] == result.run_info["notes"] != []
    lever = run({0: lambda a, c, d: a.order_target_percent(c.asset, 2.0)}, bars(FLAT))
    again = type(lever).load(lever.save(tmp_path / "lever"))
    assert again.run_info["notes"] == lever.run_info["notes"] == _warnings(again)
