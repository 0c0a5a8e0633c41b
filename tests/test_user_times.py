"""One rule turns a user's time into a bar time, on every path.

Naive times on minute bars are the exchange's local time (New York for the samples), on
daily bars the session date; aware times are taken as given; a date without a time of day
as an end (``end``, ``good_till``) covers the whole day. The paths: ``load_sample``,
``BarStore.slice``, ``run_algorithm`` / ``Backtest`` ``start``/``end``, a GTD order's
``good_till`` and ``%%backtest --start/--end``.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from helpers import Scripted, bars

from rustybt_nb import Backtest, TradingAlgorithm, run_algorithm
from rustybt_nb.data import from_frame, load_sample
from rustybt_nb.data.times import to_bar_time
from rustybt_nb.finance.execution import LimitOrder

NY = "America/New_York"
DAY = "2012-06-01"


def ny(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=NY).tz_convert("UTC")


class Quiet(TradingAlgorithm):
    def initialize(self, context):
        context.asset = self.symbol("AAPL")


def window(result):
    return result.settings["start"], result.settings["end"]


# ------------------------------------------------------------------ start / end on every path
def test_load_sample_reads_naive_minute_times_as_new_york_time():
    store = load_sample("AAPL", frequency="minute", start=f"{DAY} 10:30", end=f"{DAY} 15:00")
    assert store.index[0] == ny(f"{DAY} 10:30") and store.index[-1] == ny(f"{DAY} 15:00")
    assert len(store) == 271  # bars labelled 10:30 .. 15:00, one a minute


def test_the_reported_bug_every_path_runs_the_same_window():
    """A window given to load_sample, to run_algorithm on a full day's store, to a Backtest,
    and to BarStore.slice: the same bars, 10:30-15:00 New York time."""
    loaded = load_sample("AAPL", frequency="minute", start=f"{DAY} 10:30", end=f"{DAY} 15:00")
    via_sample = run_algorithm(Quiet, data=loaded, data_frequency="minute")
    full_day = load_sample("AAPL", frequency="minute", start=DAY, end=DAY)
    via_run = run_algorithm(Quiet, data=full_day, start=f"{DAY} 10:30", end=f"{DAY} 15:00", data_frequency="minute")
    via_name = Backtest(Quiet, data="AAPL", data_frequency="minute", start=f"{DAY} 10:30", end=f"{DAY} 15:00")
    expected = (ny(f"{DAY} 10:30"), ny(f"{DAY} 15:00"))
    assert window(via_sample) == window(via_run) == (via_name.start, via_name.end) == expected
    sliced = full_day.slice(f"{DAY} 10:30", f"{DAY} 15:00")
    assert (sliced.index[0], sliced.index[-1]) == expected
    assert via_sample.run_info["bars"] == via_run.run_info["bars"] == 271


@pytest.mark.parametrize("day, utc_hour", [
    ("2012-03-09", 15),  # the Friday before the clocks change: EST, UTC-5
    ("2012-03-12", 14),  # the Monday after: EDT, UTC-4
    ("2012-11-02", 14),  # the Friday before they change back: EDT
    ("2012-11-05", 15),  # the Monday after: EST
])
def test_naive_times_follow_new_york_daylight_saving(day, utc_hour):
    full = load_sample("IBM", frequency="minute", start=day, end=day)
    backtest = Backtest(Quiet, data=full, start=f"{day} 10:30", end=f"{day} 11:00")
    assert backtest.start == pd.Timestamp(f"{day} {utc_hour}:30", tz="UTC")
    assert backtest.end == pd.Timestamp(f"{day} {utc_hour + 1}:00", tz="UTC")


def test_a_window_across_the_spring_change():
    store = load_sample("IBM", frequency="minute", start="2012-03-09 10:30", end="2012-03-12 10:30")
    assert store.index[0] == pd.Timestamp("2012-03-09 15:30", tz="UTC")
    assert store.index[-1] == pd.Timestamp("2012-03-12 14:30", tz="UTC")


def test_aware_times_are_taken_as_given():
    full = load_sample("AAPL", frequency="minute", start=DAY, end=DAY)
    aware = Backtest(Quiet, data=full, start=pd.Timestamp(f"{DAY} 14:30", tz="UTC"),
                     end=pd.Timestamp(f"{DAY} 12:00", tz="America/Chicago"))
    assert (aware.start, aware.end) == (ny(f"{DAY} 10:30"), ny(f"{DAY} 13:00"))


def test_a_date_without_a_time_ends_after_the_whole_day():
    full = load_sample("AAPL", frequency="minute", start="2012-05-31", end=DAY)
    for end in (DAY, dt.date(2012, 6, 1), pd.Timestamp(DAY), np.datetime64(DAY)):
        assert Backtest(Quiet, data=full, end=end).end == ny(f"{DAY} 16:00"), end
    assert Backtest(Quiet, data=full, start=DAY).start == ny(f"{DAY} 09:31")


def test_daily_bars_take_the_session_date():
    store = load_sample("AAPL", start="2012-05-29", end="2012-06-08")
    backtest = Backtest(Quiet, data=store, start=f"{DAY} 10:30", end="2012-06-05 09:00")
    assert (backtest.start, backtest.end) == (pd.Timestamp(DAY), pd.Timestamp("2012-06-05"))
    late = pd.Timestamp("2012-06-01 23:00", tz="America/Los_Angeles")  # its own date, not UTC's (June 2)
    assert Backtest(Quiet, data=store, start=late).start == pd.Timestamp(DAY)


def test_the_store_time_zone_is_where_naive_times_are_read():
    """A user's minute frame read in London time: naive start/end are London time too."""
    index = pd.date_range("2024-03-04 08:01", periods=120, freq="min")
    frame = pd.DataFrame({"open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 10.0}, index=index)
    store = from_frame(frame, "X", frequency="minute", tz="Europe/London", calendar="24/7")
    assert store.tz == "Europe/London"
    backtest = Backtest(Quiet, data=store, start="2024-03-04 09:00", end="2024-03-04 09:30")
    assert backtest.start == pd.Timestamp("2024-03-04 09:00", tz="UTC")  # London = UTC in March
    assert backtest.hi - backtest.lo + 1 == 31


@pytest.mark.parametrize("aware, tz, zone", [
    (True, None, "UTC"),  # aware data on a 24/7 calendar: the calendar's zone
    (False, None, NY),  # naive data: read as New York time (the loaders' default), so are naive user times
    (True, "Asia/Tokyo", "Asia/Tokyo"),  # a zone given to the loader wins
])
def test_naive_user_times_are_read_where_the_data_says(aware, tz, zone):
    index = pd.date_range("2024-03-04 00:01", periods=24 * 60, freq="min", tz="UTC" if aware else None)
    frame = pd.DataFrame({"open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 10.0}, index=index)
    store = from_frame(frame, "X", frequency="minute", calendar="24/7", tz=tz)
    assert store.tz == zone
    start = Backtest(Quiet, data=store, start="2024-03-04 12:00").start
    assert start == pd.Timestamp("2024-03-04 12:00", tz=zone).tz_convert("UTC")


# ------------------------------------------------------------------ GTD good_till
def _gtd_expiry(store, good_till):
    """The time and bar at which a never-reached GTD limit order placed on the first bar expires."""
    def place(algo, ctx, data):
        algo.order(ctx.asset, 10, style=LimitOrder(1.0, time_in_force="GTD", good_till=good_till))

    res = run_algorithm(Scripted, data=store, script={0: place}, symbol=store.symbols[0])
    ev = res.order_events
    expired = ev[ev["kind"] == "expired"]
    assert len(expired) == 1, res.order_log_text()
    return expired["dt"].iloc[0], expired["reason"].iloc[0]


def test_good_till_on_minute_bars_is_exchange_time():
    store = load_sample("AAPL", frequency="minute", start=DAY, end="2012-06-04")
    when, reason = _gtd_expiry(store, f"{DAY} 11:00")
    assert when == ny(f"{DAY} 11:00")  # the last bar at or before 11:00 New York time
    assert "2012-06-01 11:00 EDT" in reason


def test_good_till_on_a_winter_day_too():
    store = load_sample("AAPL", frequency="minute", start="2012-01-04", end="2012-01-05")
    when, _ = _gtd_expiry(store, "2012-01-04 11:00")
    assert when == pd.Timestamp("2012-01-04 16:00", tz="UTC")


def test_a_good_till_date_lasts_the_whole_day():
    store = load_sample("AAPL", frequency="minute", start=DAY, end="2012-06-04")
    when, reason = _gtd_expiry(store, DAY)
    assert when == ny(f"{DAY} 16:00")
    assert "good till 2012-06-01:" in reason


def test_good_till_on_daily_bars_is_the_session_date():
    store = bars([(10, 11, 9, 10)] * 6)  # 2021-01-04 .. 2021-01-11, business days
    when, _ = _gtd_expiry(store, "2021-01-06 15:30")
    assert when == pd.Timestamp("2021-01-06")


# ------------------------------------------------------------------ bad times say which argument
@pytest.mark.parametrize("kwargs, name", [
    ({"start": "yesterday-ish"}, "`start`"),
    ({"end": "someday"}, "`end`"),
    ({"start": 3.5}, "`start`"),
])
def test_unreadable_start_or_end_names_the_argument(kwargs, name):
    with pytest.raises(ValueError) as info:
        Backtest(Quiet, data="AAPL", **kwargs)
    assert name in str(info.value) and "2012-06-01 10:30" in str(info.value)


def test_unreadable_good_till_names_the_argument():
    def place(algo, ctx, data):
        algo.order(ctx.asset, 1, style=LimitOrder(1.0, time_in_force="GTD", good_till="someday"))

    with pytest.raises(ValueError, match="`good_till`='someday' is not a time"):
        run_algorithm(Scripted, data=bars([(10, 11, 9, 10)] * 3), script={0: place})


def test_to_bar_time_is_the_one_function():
    assert to_bar_time("2012-06-01 10:30", arg="start", frequency="minute") == ny(f"{DAY} 10:30")
    assert to_bar_time("2012-06-01 10:30", arg="start", frequency="daily") == pd.Timestamp(DAY)
    assert to_bar_time(DAY, arg="end", frequency="minute", tz="UTC", end=True) == \
        pd.Timestamp(f"{DAY} 23:59:59.999999", tz="UTC")


# ------------------------------------------------------------------ %%backtest
def test_the_magic_reads_the_same_window():
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.testing.globalipapp import start_ipython

    ip = start_ipython() or InteractiveShell.instance()
    ip.run_line_magic("load_ext", "rustybt_nb")
    ip.run_cell("from rustybt_nb import TradingAlgorithm", store_history=False)
    cell = ("class Idle(TradingAlgorithm):\n    def initialize(self, context):\n"
            "        context.asset = self.symbol('AAPL')\n")
    ip.run_cell_magic("backtest", f"--frequency minute --start '{DAY} 10:30' --end '{DAY} 15:00' --out w --quiet",
                      cell)
    assert window(ip.user_ns["w"]) == (ny(f"{DAY} 10:30"), ny(f"{DAY} 15:00"))


def test_results_show_minute_times_in_the_exchange_zone_text_and_html():
    from rustybt_nb.analytics.display import result_html

    full = load_sample("AAPL", frequency="minute", start=DAY, end=DAY)
    res = Backtest(Quiet, data=full, start=f"{DAY} 10:30", end=f"{DAY} 15:00").run()
    assert res.tz == NY
    assert "2012-06-01 10:30 EDT -> 2012-06-01 15:00 EDT" in res.summary()
    assert "2012-06-01 10:30 EDT → 2012-06-01 15:00 EDT" in result_html(res)
