"""``rustybt_nb.Backtest``: the one object that runs a backtest.

It loads the bars once and runs with any parameters; ``run_algorithm`` and ``%%backtest``
go through it; ``run_metrics`` returns the metrics alone; it pickles (cloudpickle for a
strategy defined in a notebook cell, i.e. in ``__main__``), holding its bars once.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from rustybt_nb import Backtest, TradingAlgorithm, api, run_algorithm
from rustybt_nb.data import load_sample
from rustybt_nb.finance.commission import PerShare
from rustybt_nb.finance.execution import BracketOrder, MarketOrder
from rustybt_nb.finance.slippage import VolumeShareSlippage
from rustybt_nb.metrics import METRIC_NAMES

WINDOW = {"start": "2011-01-01", "end": "2012-12-31"}


class Cross(TradingAlgorithm):
    """A moving-average crossover with brackets: parameters change its trades."""

    params = {"fast": 10, "slow": 30, "stop": 0.04}

    def initialize(self, context):
        context.asset = self.symbol("AAPL")

    def handle_data(self, context, data):
        p = self.params
        closes = data.history(context.asset, "close", p.slow, "1d")
        if len(closes) < p.slow:
            return
        fast, slow = closes.iloc[-p.fast:].mean(), closes.mean()
        held = context.portfolio.positions[context.asset].amount
        if not held and fast > slow and not self.get_open_orders(context.asset):
            price = closes.iloc[-1]
            self.order(context.asset, 50, style=BracketOrder(entry_style=MarketOrder(),
                                                             stop_loss_price=price * (1 - p.stop),
                                                             take_profit_price=price * 1.08))
        self.record(gap=fast - slow)


def frames_equal(a, b):
    for name in ("perf", "positions", "trades", "orders", "order_events", "fills", "logs"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True)
    pd.testing.assert_series_equal(a.metrics, b.metrics, check_exact=True)
    assert a.settings == b.settings


def test_run_is_what_run_algorithm_returns():
    settings = {"capital_base": 50_000, "slippage": VolumeShareSlippage(volume_limit=0.1), "commission": PerShare(),
                "same_bar": "target_first", **WINDOW}
    backtest = Backtest(Cross, data="AAPL", **settings)
    frames_equal(backtest.run(fast=5), run_algorithm(Cross, data="AAPL", fast=5, **settings))


def test_one_backtest_runs_many_parameter_sets_each_as_a_fresh_run():
    backtest = Backtest(Cross, data="AAPL", **WINDOW)
    results = {fast: backtest.run(fast=fast) for fast in (5, 10, 20)}
    assert len({r.metrics["end_value"] for r in results.values()}) == 3  # the parameter matters
    for fast, result in results.items():
        assert result.settings["params"] == {"fast": fast, "slow": 30, "stop": 0.04}
        frames_equal(result, run_algorithm(Cross, data="AAPL", fast=fast, **WINDOW))
    frames_equal(backtest.run(fast=5), results[5])  # order of runs does not matter


def test_run_metrics_equals_the_full_runs_metrics_and_builds_nothing_else():
    backtest = Backtest(Cross, data="AAPL", **WINDOW)
    for params in ({}, {"fast": 3, "stop": 0.02}):
        metrics = backtest.run_metrics(**params)
        pd.testing.assert_series_equal(metrics, backtest.run(**params).metrics, check_exact=True)
        values = backtest.metric_values(**params)  # (a sweep's row: the same numbers, no pandas object)
        assert type(values) is dict and list(values) == list(METRIC_NAMES)
        assert all(type(v) is float for v in values.values())
        pd.testing.assert_series_equal(pd.Series(values, name="metrics"), metrics, check_exact=True)


def test_run_metrics_does_not_call_analyze():
    calls = []

    class Analyzed(Cross):
        def analyze(self, context, results):
            calls.append(results)

    backtest = Backtest(Analyzed, data="AAPL", **WINDOW)
    backtest.run_metrics()
    assert calls == []
    result = backtest.run()
    assert calls == [result]


def test_unknown_parameters_raise_with_near_matches():
    backtest = Backtest(Cross, data="AAPL", **WINDOW)
    for call in (backtest.run, backtest.run_metrics):
        with pytest.raises(TypeError, match=r"Cross has no parameter 'fsat'; its parameters are fast, slow, stop\. "
                                            r"Did you mean 'fast'"):
            call(fsat=3)
    with pytest.raises(TypeError, match="no parameter 'fsat'"):
        run_algorithm(Cross, data="AAPL", fsat=3, **WINDOW)


def test_an_instance_keeps_its_own_parameters_as_defaults():
    algo = Cross(fast=5)
    backtest = Backtest(algo, data="AAPL", **WINDOW)
    assert backtest.params == {"fast": 5, "slow": 30, "stop": 0.04}
    first = backtest.run(slow=40)
    assert first.settings["params"] == {"fast": 5, "slow": 40, "stop": 0.04}
    again = backtest.run()
    assert again.settings["params"] == {"fast": 5, "slow": 30, "stop": 0.04}  # runs do not accumulate
    frames_equal(again, run_algorithm(Cross, data="AAPL", fast=5, **WINDOW))
    assert algo._sim is None  # the instance keeps no reference to the finished run


def test_zipline_functions_run_through_it_too():
    def initialize(context):
        context.asset = api.symbol("AAPL")

    def handle_data(context, data):
        if not context.portfolio.positions[context.asset].amount:
            api.order(context.asset, 10)

    backtest = Backtest(initialize=initialize, handle_data=handle_data, data="AAPL", **WINDOW)
    result = backtest.run()
    assert result.settings["algorithm"] == "functions" and len(result.orders) == 1
    frames_equal(result, run_algorithm(initialize=initialize, handle_data=handle_data, data="AAPL", **WINDOW))


@pytest.mark.parametrize("kwargs, message", [
    ({"fill_model": "hlc"}, "`fill_model` must be one of ('ohlc', 'close'), got 'hlc'"),
    ({"same_bar": "stop"}, "`same_bar` must be one of"),
    ({"trail_reference": "low"}, "`trail_reference` must be one of"),
    ({"capital_base": -5}, "`capital_base` must be a positive number"),
    ({"capital_base": float("nan")}, "`capital_base` must be a positive number"),
    ({"data_frequency": "weekly"}, "`data_frequency` must be 'daily' or 'minute'"),
    ({"data_frequency": "minute", "data": load_sample("AAPL", start="2012-01-01")}, "daily BarStore"),
    ({"start": "2030-01-01"}, "select no bars"),
])
def test_bad_settings_fail_when_the_backtest_is_made(kwargs, message):
    with pytest.raises(ValueError) as info:
        Backtest(Cross, **{"data": "AAPL", **kwargs})
    assert message in str(info.value)


@pytest.mark.parametrize("kwargs, message", [
    ({"slippage": "none"}, "`slippage` must be a SlippageModel"),
    ({"commission": 0.01}, "`commission` must be a CommissionModel"),
    ({"strategy": object}, "`algorithm` must be a TradingAlgorithm subclass or instance"),
    ({"strategy": None}, "needs a TradingAlgorithm subclass"),
])
def test_bad_strategy_or_models_are_type_errors(kwargs, message):
    with pytest.raises(TypeError, match=message.replace("(", r"\(")):
        Backtest(**{"strategy": Cross, "data": "AAPL", **kwargs})


def test_the_bars_are_loaded_once():
    frame = load_sample("MSFT", start="2012-01-01", end="2012-12-31").to_frame()
    backtest = Backtest(Cross, data={"AAPL": frame}, data_frequency="daily")
    store = backtest.store
    first = backtest.run()
    frame.loc[:, ["open", "high", "low", "close"]] *= 2  # the caller's frame changes: the backtest does not
    second = backtest.run()
    assert backtest.store is store
    frames_equal(first, second)
    assert repr(backtest).startswith("<Backtest Cross on AAPL (daily), 2012-01-03 00:00:00 -> 2012-12-31")


def test_a_strategy_error_keeps_the_partial_result():
    class Fails(Cross):
        def handle_data(self, context, data):
            super().handle_data(context, data)
            if data.current_dt >= pd.Timestamp("2012-06-01"):
                raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom") as info:
        Backtest(Fails, data="AAPL", **WINDOW).run()
    partial = info.value.partial_result
    assert partial.run_info["completed"] is False
    assert partial.perf.index[-1] == pd.Timestamp("2012-06-01")


# ------------------------------------------------------------------ pickling
def test_it_pickles_with_its_bars_held_once():
    backtest = Backtest(Cross, data="AAPL", **WINDOW)
    blob = pickle.dumps(backtest)
    bar_bytes = sum(a.nbytes for cols in backtest.store.arrays for a in cols.values())
    assert len(blob) < 1.2 * bar_bytes  # the bars once (OHLCV + the derived price), little else
    clone = pickle.loads(blob)
    frames_equal(clone.run(fast=7), backtest.run(fast=7))


def test_a_strategy_defined_in_main_travels_with_cloudpickle(tmp_path):
    """As a notebook cell's class (module ``__main__``) reaches a worker process: the
    Backtest is pickled by value in one interpreter and run in a fresh one that has never
    seen the class."""
    pytest.importorskip("cloudpickle")
    blob = tmp_path / "backtest.pkl"
    write = textwrap.dedent(f"""
        import cloudpickle
        from rustybt_nb import Backtest, TradingAlgorithm

        class CellStrategy(TradingAlgorithm):
            params = {{"size": 10}}

            def initialize(self, context):
                context.asset = self.symbol("AAPL")

            def handle_data(self, context, data):
                if not context.portfolio.positions[context.asset].amount:
                    self.order(context.asset, self.params.size)

        assert CellStrategy.__module__ == "__main__"
        backtest = Backtest(CellStrategy, data="AAPL", start="2012-01-01", end="2012-03-31")
        with open({str(blob)!r}, "wb") as f:
            cloudpickle.dump(backtest, f)
        print(backtest.run_metrics(size=25)["end_value"])
    """)
    read = textwrap.dedent(f"""
        import pickle
        with open({str(blob)!r}, "rb") as f:
            backtest = pickle.load(f)
        print(backtest.run_metrics(size=25)["end_value"])
    """)
    here = subprocess.run([sys.executable, "-c", write], capture_output=True, text=True, timeout=120, check=False)
    assert here.returncode == 0, here.stderr
    there = subprocess.run([sys.executable, "-c", read], capture_output=True, text=True, timeout=120, check=False)
    assert there.returncode == 0, there.stderr
    assert there.stdout == here.stdout and float(there.stdout) != 100_000


# ------------------------------------------------------------------ every run goes through it
def test_run_algorithm_and_the_magic_go_through_backtest_run(monkeypatch):
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.testing.globalipapp import start_ipython

    calls = []
    original = Backtest.run

    def spy(self, *args, **kwargs):
        calls.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Backtest, "run", spy)
    run_algorithm(Cross, data="AAPL", **WINDOW)
    ip = start_ipython() or InteractiveShell.instance()
    ip.run_line_magic("load_ext", "rustybt_nb")
    ip.user_ns["Cross"] = Cross
    ip.run_line_magic("backtest", "Cross --start 2012-01-01 --end 2012-03-31 --quiet")
    assert len(calls) == 2 and all(isinstance(b, Backtest) for b in calls)
