"""The strategy API calls made on every bar take shortcuts (a run's live-order lists,
the session ``record`` writes to, a cached portfolio value, per-bar tradability); these
tests check that every shortcut answers what the general path answers, on minute data
(several bars per session, ``before_trading_start`` between sessions) and daily data, and
that nothing is left pointing into a finished run.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from helpers import bars

from rustybt_nb import Backtest, TradingAlgorithm, run_algorithm
from rustybt_nb.data import from_frames
from rustybt_nb.errors import AlgorithmError
from rustybt_nb.finance.execution import LimitOrder


def minute_store(days: int = 3, per_day: int = 5, symbols: tuple[str, ...] = ("X",)):
    """``per_day`` minute bars from 09:31 New York on ``days`` weekdays, prices 100 + k."""
    stamps = []
    for day in pd.bdate_range("2024-03-04", periods=days):
        stamps += [day + pd.Timedelta(hours=9, minutes=31 + m) for m in range(per_day)]
    index = pd.DatetimeIndex(stamps).tz_localize("America/New_York")
    k = np.arange(len(index), dtype=float)
    frames = {}
    for n, sym in enumerate(symbols):
        close = 100.0 + k + 10 * n
        frames[sym] = pd.DataFrame({"open": close, "high": close + 1, "low": close - 1, "close": close,
                                    "volume": 1000.0}, index=index)
    return from_frames(frames, frequency="minute")


class Recorder(TradingAlgorithm):
    """Records per bar (handle_data) and per session (before_trading_start)."""

    def initialize(self, context):
        context.n = 0
        self.record(setup=1)

    def before_trading_start(self, context, data):
        self.record(bts=context.n)

    def handle_data(self, context, data):
        context.n += 1
        self.record(n=context.n)
        if context.n % 2:
            self.record(odd=context.n, label=f"bar {context.n}")
        self.record("pair", context.n * 10)


def test_records_merge_per_session_on_minute_bars_as_the_general_path_does():
    store = minute_store(days=3, per_day=5)
    perf = run_algorithm(Recorder, data=store, data_frequency="minute").perf
    # one row per session; the last value of each session wins, carried forward
    assert perf["n"].tolist() == [5, 10, 15]
    assert perf["pair"].tolist() == [50, 100, 150]
    assert perf["odd"].tolist() == [5, 9, 15]
    assert perf["label"].tolist() == ["bar 5", "bar 9", "bar 15"]
    # before_trading_start records land on the coming session, not on the last one
    assert perf["bts"].tolist() == [0, 5, 10]
    assert perf["setup"].tolist() == [1, 1, 1]


def test_records_on_daily_bars_one_per_session():
    store = bars([(100, 110, 99, 100 + k) for k in range(6)])
    perf = run_algorithm(Recorder, data=store).perf
    assert perf["n"].tolist() == [1, 2, 3, 4, 5, 6]
    assert perf["odd"].tolist() == [1, 1, 3, 3, 5, 5]  # carried forward
    assert perf["bts"].tolist() == [0, 1, 2, 3, 4, 5]


def test_record_keeps_what_it_cannot_plot_as_text_on_every_path():
    """Complex numbers and other objects are kept (as their text), whether recorded with
    keywords on a bar (the shortcut), as name/value pairs, or in before_trading_start."""
    class Odd(TradingAlgorithm):
        def before_trading_start(self, context, data):
            self.record(b=2.0 - 1.0j)

        def handle_data(self, context, data):
            self.record(x=1.0)
            self.record(x=1.0 + 2.0j, obj=[1, 2])
            self.record("pair", 3.0j)

    perf = run_algorithm(Odd, data=minute_store(days=2), data_frequency="minute").perf
    assert perf["x"].tolist() == ["(1+2j)"] * 2 and perf["pair"].tolist() == ["3j"] * 2
    assert perf["b"].tolist() == ["(2-1j)"] * 2 and perf["obj"].tolist() == ["[1, 2]"] * 2


def test_record_refuses_a_name_that_is_not_text():
    class Bad(TradingAlgorithm):
        def handle_data(self, context, data):
            self.record(1, 2.0)

    with pytest.raises(TypeError, match="names must be str"):
        run_algorithm(Bad, data=minute_store(), data_frequency="minute")


def test_numpy_values_are_recorded_like_floats():
    class Numpy(TradingAlgorithm):
        def handle_data(self, context, data):
            self.record(a=np.float64(1.5))
            self.record(b=np.int64(2), c=1.25)

    perf = run_algorithm(Numpy, data=minute_store(), data_frequency="minute").perf
    assert perf["a"].tolist() == [1.5] * 3 and perf["b"].tolist() == [2] * 3 and perf["c"].tolist() == [1.25] * 3


class OpenOrders(TradingAlgorithm):
    """Rests a far buy limit on bar 2 and cancels it on bar 4; logs what the calls say."""

    def initialize(self, context):
        context.asset = self.symbol("X")
        context.seen = []
        context.n = 0

    def handle_data(self, context, data):
        context.n += 1
        a = context.asset
        if context.n == 2:
            context.oid = self.order(a, 5, style=LimitOrder(1.0))
        if context.n == 4:
            self.cancel_order(context.oid)
        by_asset = self.get_open_orders(a)
        by_symbol = self.get_open_orders("X")
        everything = self.get_open_orders()
        by_asset["scribble"] = None  # the caller's own dict: the book must not see it
        context.seen.append((sorted(k for k in by_asset if k != "scribble"), sorted(by_symbol),
                             {str(k): sorted(v) for k, v in everything.items()},
                             self.get_open_orders("NOPE")))


def test_get_open_orders_answers_through_the_run():
    out = {}

    class Keep(OpenOrders):
        def analyze(self, context, results):
            out["seen"] = context.seen

    run_algorithm(Keep, data=minute_store(days=1, per_day=6), data_frequency="minute")
    seen = out["seen"]
    assert [s[0] for s in seen] == [[], [1], [1], [], [], []]
    assert [s[1] for s in seen] == [[], [1], [1], [], [], []]
    assert [s[2] for s in seen] == [{}, {"X": [1]}, {"X": [1]}, {}, {}, {}]
    assert all(s[3] == {} for s in seen)  # a symbol not in the data has no open orders


def test_the_shortcuts_do_not_outlive_the_run():
    algo = OpenOrders()
    bt = Backtest(algo, data=minute_store(days=1, per_day=6), data_frequency="minute")
    bt.run()
    for call in (lambda: algo.get_open_orders(), lambda: algo.get_open_orders("X"),
                 lambda: algo.record(x=1.0), lambda: algo.portfolio):
        with pytest.raises(AlgorithmError, match="running backtest"):
            call()


def test_can_trade_by_asset_and_symbol_before_and_after_listing():
    index = pd.bdate_range("2024-01-01", periods=6)
    late = pd.DataFrame({"close": [10.0, 11.0, 12.0]}, index=index[2:5])  # listed on bars 2-4 only
    full = pd.DataFrame({"close": [1.0, 2, 3, 4, 5, 6]}, index=index)
    store = from_frames({"FULL": full, "LATE": late})
    out = {}

    class Check(TradingAlgorithm):
        def initialize(self, context):
            context.rows = []

        def before_trading_start(self, context, data):
            context.rows.append(("bts", data.can_trade(self.symbol("FULL")), data.can_trade("LATE")))

        def handle_data(self, context, data):
            late = self.symbol("LATE")
            context.rows.append(("bar", data.can_trade(late), data.can_trade("LATE"), data.can_trade("FULL"),
                                 data.can_trade([late, "FULL"]).tolist()))

        def analyze(self, context, results):
            out["rows"] = context.rows

    run_algorithm(Check, data=store)
    bars_ = [r for r in out["rows"] if r[0] == "bar"]
    assert [r[1] for r in bars_] == [False, False, True, True, True, False]
    assert [r[2] for r in bars_] == [r[1] for r in bars_]
    assert all(r[3] is True for r in bars_)
    assert [r[4] for r in bars_] == [[r[1], True] for r in bars_]
    bts = [r for r in out["rows"] if r[0] == "bts"]
    assert bts[0][1:] == (False, False)  # before the first bar nothing can trade yet
    assert [r[2] for r in bts] == [False, False, False, True, True, True]  # the previous bar's answer


def test_portfolio_value_matches_cash_plus_positions_at_every_bar():
    store = minute_store(days=2, per_day=6, symbols=("X", "Y"))
    out = {}

    class Trader(TradingAlgorithm):
        def initialize(self, context):
            context.rows = []
            context.n = 0

        def handle_data(self, context, data):
            context.n += 1
            pf = context.portfolio
            first = pf.portfolio_value
            expected = pf.cash + sum(p.amount * data.current(a, "price") for a, p in pf.positions.items())
            context.rows.append((first, pf.portfolio_value, expected, pf.positions_value, pf.cash))
            if context.n in (1, 3):
                self.order("X", 10)
            if context.n == 4:
                self.order("Y", -3)
            if context.n == 8:
                self.order_target("X", 0)

        def analyze(self, context, results):
            out["rows"] = context.rows
            out["pv"] = results.perf["portfolio_value"].tolist()

    run_algorithm(Trader, data=store, data_frequency="minute", capital_base=10_000)
    for first, again, expected, pos_value, cash in out["rows"]:
        assert first == again and math.isclose(first, expected, rel_tol=0, abs_tol=1e-9)
        assert math.isclose(pos_value, expected - cash, rel_tol=0, abs_tol=1e-9)
    assert [r[3] != 0 for r in out["rows"]] == [False] + [True] * 11  # (X from bar 2, Y short from bar 5 on)
    assert out["rows"][-1][0] == pytest.approx(out["pv"][-1])


def test_current_of_a_list_of_assets_matches_each_asset_every_bar():
    store = minute_store(days=2, per_day=4, symbols=("X", "Y", "Z"))
    out = {"rows": []}

    class Universe(TradingAlgorithm):
        def initialize(self, context):
            context.assets = [self.symbol("X"), "Y", self.symbol("Z")]

        def handle_data(self, context, data):
            for assets in (context.assets, tuple(context.assets), [context.assets[0]] * 2):
                got = data.current(assets, "close")
                want = [data.current(a, "close") for a in assets]
                out["rows"].append((got.tolist() == want, [str(k) for k in got.index], got.name,
                                    str(got.dtype)))
            volume = data.current(context.assets, "volume")
            out["rows"].append((volume.tolist() == [1000.0] * 3, [str(k) for k in volume.index], volume.name,
                                str(volume.dtype)))

    run_algorithm(Universe, data=store, data_frequency="minute")
    assert len(out["rows"]) == 8 * 4
    for k, (same, labels, name, dtype) in enumerate(out["rows"]):
        assert same and dtype == "float64"
        assert labels == [["X", "Y", "Z"], ["X", "Y", "Z"], ["X", "X"], ["X", "Y", "Z"]][k % 4]
        assert name == ("volume" if k % 4 == 3 else "close")


def test_history_of_one_asset_and_field_matches_the_general_path():
    """The one-asset, one-field window (the shortcut) against the same window taken from
    the general path's frame for a list of assets, on daily and minute bars, also for an
    asset rebuilt from its symbol (sid -1) and windows longer than the data so far."""
    from rustybt_nb.assets import Asset

    daily = bars([(100 + k, 110 + k, 90 + k, 101 + k) for k in range(30)])
    checked = []

    class Windows(TradingAlgorithm):
        def handle_data(self, context, data):
            asset = self.symbol("X")
            for frequency, count in (("1d", 5), ("1d", 50), ("daily", 1)):
                for who in (asset, Asset("X")):
                    got = data.history(who, "close", count, frequency)
                    want = data.history([asset], "close", count, frequency)[asset]
                    pd.testing.assert_series_equal(got, want.rename(asset), check_freq=False)
                    assert got.name == who and got.index.dtype == want.index.dtype
                    got.iloc[-1] = -1.0  # a window of its own: the next read is unchanged
                    assert data.history(who, "close", count, frequency).iloc[-1] == data.current(asset, "close")
            checked.append(True)

    run_algorithm(Windows, data=daily)
    assert len(checked) == 30

    class Minutes(Windows):
        def handle_data(self, context, data):
            asset = self.symbol("X")
            got = data.history(asset, "close", 7, "1m")
            want = data.history([asset], "close", 7, "1m")[asset]
            pd.testing.assert_series_equal(got, want.rename(asset), check_freq=False)
            assert str(got.index.tz) == "UTC"
            checked.append(True)

    checked.clear()
    run_algorithm(Minutes, data=minute_store(days=2, per_day=5), data_frequency="minute")
    assert len(checked) == 10


@pytest.mark.parametrize("records", [
    {0: {"a": 1.0, "b": "x"}, 1: {"a": 2.5, "b": "y"}, 3: {"a": 4, "b": "z"}},  # every session every name
    {0: {"a": 1.0}, 2: {"b": True, "a": 2.0}, 5: {"c": [1], "b": False}},  # names come and go
    {0: {"n": 1}, 1: {"n": 2**70}},  # an int beyond int64
    {4: {"t": pd.Timestamp("2024-01-02"), "f": np.float32(1.5)}, 6: {"t": None, "f": np.float32(2.5)}},
])
def test_records_frame_by_columns_matches_from_dict(records):
    from rustybt_nb.result_builder import _records_frame

    got = _records_frame(records)
    want = pd.DataFrame.from_dict(records, orient="index")
    pd.testing.assert_frame_equal(got, want, check_index_type=False)
