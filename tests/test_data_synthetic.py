"""Synthetic minute bars: exact daily invariants, determinism, calendars, speed."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rustybt_nb.data import load_sample
from rustybt_nb.data.synthetic import minute_bars_from_daily

NY = "America/New_York"


def _by_day(minutes: pd.DataFrame, tz: str = NY) -> pd.core.groupby.DataFrameGroupBy:
    day = minutes.index.tz_convert(tz).normalize().tz_localize(None)
    return minutes.groupby(day)


def assert_invariants(daily: pd.DataFrame, minutes: pd.DataFrame, tz: str = NY) -> None:
    """Every guarantee of the module docstring, exactly (no tolerance)."""
    assert str(minutes.index.tz) == "UTC"
    assert minutes.index.is_monotonic_increasing and minutes.index.is_unique
    o, h, lo, c = (minutes[k].to_numpy() for k in ("open", "high", "low", "close"))
    assert (lo <= np.minimum(o, c)).all()
    assert (np.minimum(o, c) <= np.maximum(o, c)).all()
    assert (np.maximum(o, c) <= h).all()
    g = _by_day(minutes, tz)
    agg = g.agg(open=("open", "first"), high=("high", "max"), low=("low", "min"),
                close=("close", "last"), volume=("volume", "sum"))
    d = daily.loc[agg.index]
    np.testing.assert_array_equal(agg["open"].to_numpy(), d["open"].to_numpy())
    np.testing.assert_array_equal(agg["close"].to_numpy(), d["close"].to_numpy())
    np.testing.assert_array_equal(agg["high"].to_numpy(), d["high"].to_numpy())
    np.testing.assert_array_equal(agg["low"].to_numpy(), d["low"].to_numpy())
    np.testing.assert_array_equal(agg["volume"].to_numpy(), np.round(d["volume"].to_numpy()))
    vol = minutes["volume"].to_numpy()
    assert (vol >= 0).all() and (vol == np.round(vol)).all()
    # continuous path within each day: open == previous minute's close
    same_day = np.asarray(g.ngroup())
    cont = same_day[1:] == same_day[:-1]
    np.testing.assert_array_equal(o[1:][cont], c[:-1][cont])


@pytest.fixture(scope="module")
def aapl_daily() -> pd.DataFrame:
    return load_sample("AAPL").to_frame("AAPL")


@pytest.fixture(scope="module")
def aapl_2012(aapl_daily) -> pd.DataFrame:
    return aapl_daily.loc["2012-03-01":"2013-03-01"]


def test_invariants_on_a_year_of_aapl(aapl_2012):
    minutes = minute_bars_from_daily(aapl_2012, "XNYS", seed_key="AAPL")
    assert len(minutes) == 97350
    assert minutes.attrs["synthetic"] is True
    assert minutes.attrs["skipped_days"] == 0
    assert minutes.attrs["sessions"] == len(aapl_2012)
    assert_invariants(aapl_2012, minutes)


def test_labels_are_bar_ends_and_early_close(aapl_2012):
    minutes = minute_bars_from_daily(aapl_2012.loc["2012-11-21":"2012-11-26"], seed_key="AAPL")
    ny = minutes.index.tz_convert(NY)
    counts = pd.Series(1, index=ny).groupby(ny.date).sum()
    assert list(counts) == [390, 210, 390]
    friday = ny[ny.date == pd.Timestamp("2012-11-23").date()]
    assert friday[0] == pd.Timestamp("2012-11-23 09:31", tz=NY)
    assert friday[-1] == pd.Timestamp("2012-11-23 13:00", tz=NY)
    assert ny[-1] == pd.Timestamp("2012-11-26 16:00", tz=NY)
    assert (np.diff(friday.asi8) == 60_000_000_000).all()


def test_deterministic_and_independent_of_the_other_days(aapl_2012):
    a = minute_bars_from_daily(aapl_2012, seed_key="AAPL")
    b = minute_bars_from_daily(aapl_2012, seed_key="AAPL")
    pd.testing.assert_frame_equal(a, b)
    part = minute_bars_from_daily(aapl_2012.loc["2012-07-02":"2012-07-06"], seed_key="AAPL")
    pd.testing.assert_frame_equal(part, a.loc[part.index[0]:part.index[-1]])
    other = minute_bars_from_daily(aapl_2012.loc["2012-07-02":"2012-07-06"], seed_key="MSFT")
    assert not np.array_equal(other["close"].to_numpy(), part["close"].to_numpy())
    assert_invariants(aapl_2012, other)


def test_seed_key_defaults_to_the_symbol_attr(aapl_2012):
    days = aapl_2012.iloc[:3].copy()
    days.attrs["symbol"] = "AAPL"
    pd.testing.assert_frame_equal(minute_bars_from_daily(days),
                                  minute_bars_from_daily(days, seed_key="AAPL"))


def test_non_sessions_are_skipped_and_counted():
    daily = pd.DataFrame(
        {"open": [10.0, 11, 12, 13], "high": [11.0, 12, 13, 14], "low": [9.0, 10, 11, 12],
         "close": [10.5, 11.5, 12.5, 13.5], "volume": [100.0, 200, 300, 400]},
        index=pd.DatetimeIndex(["2012-12-21", "2012-12-22", "2012-12-24", "2012-12-25"]),
    )
    with pytest.warns(UserWarning, match="2 daily bar"):
        minutes = minute_bars_from_daily(daily, seed_key="X")
    assert minutes.attrs["skipped_days"] == 2
    assert minutes.attrs["skipped_dates"] == ["2012-12-22", "2012-12-25"]
    assert len(minutes) == 390 + 210  # 2012-12-24 closes at 13:00
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        minute_bars_from_daily(daily, seed_key="X", warn=False)


def test_only_non_sessions_give_an_empty_frame():
    daily = pd.DataFrame({"close": [1.0]}, index=pd.DatetimeIndex(["2012-12-22"]))
    minutes = minute_bars_from_daily(daily, seed_key="X", warn=False)
    assert len(minutes) == 0 and list(minutes.columns) == ["open", "high", "low", "close", "volume"]


def test_without_volume_minutes_have_nan_volume():
    daily = pd.DataFrame({"Close": [10.0, 12.0]}, index=pd.DatetimeIndex(["2013-01-02", "2013-01-03"]))
    minutes = minute_bars_from_daily(daily, seed_key="X")
    assert minutes["volume"].isna().all()
    assert (minutes["open"] == minutes["close"]).all()   # flat daily bars stay flat
    assert len(minutes) == 780


def test_fractional_daily_volume_is_rounded():
    daily = pd.DataFrame({"open": [10.0], "high": [11.0], "low": [9.0], "close": [10.0], "volume": [1000.6]},
                         index=pd.DatetimeIndex(["2013-01-02"]))
    minutes = minute_bars_from_daily(daily, seed_key="X")
    assert minutes["volume"].sum() == 1001


def test_u_shaped_volume_profile(aapl_2012):
    minutes = minute_bars_from_daily(aapl_2012, seed_key="AAPL")
    ny = minutes.index.tz_convert(NY)
    normal_day = pd.Series(1, index=ny).groupby(ny.date).transform("size").to_numpy() == 390
    hour = pd.Series(minutes["volume"].to_numpy()[normal_day], index=ny[normal_day].hour)
    by_hour = hour.groupby(level=0).sum()
    assert by_hour[9] / 30 > by_hour[12] / 60 and by_hour[15] / 60 > by_hour[12] / 60


def test_calendar_with_a_lunch_break():
    daily = pd.DataFrame({"open": [100.0], "high": [105.0], "low": [95.0], "close": [101.0],
                          "volume": [10_000.0]}, index=pd.DatetimeIndex(["2019-03-05"]))
    minutes = minute_bars_from_daily(daily, "XHKG", seed_key="HK")
    hk = minutes.index.tz_convert("Asia/Hong_Kong")
    assert len(minutes) == 150 + 180
    assert hk[0] == pd.Timestamp("2019-03-05 09:31", tz="Asia/Hong_Kong")
    assert pd.Timestamp("2019-03-05 12:00", tz="Asia/Hong_Kong") in hk
    assert not ((hk > pd.Timestamp("2019-03-05 12:00", tz="Asia/Hong_Kong"))
                & (hk <= pd.Timestamp("2019-03-05 13:00", tz="Asia/Hong_Kong"))).any()
    assert hk[-1] == pd.Timestamp("2019-03-05 16:00", tz="Asia/Hong_Kong")
    assert_invariants(daily, minutes, tz="Asia/Hong_Kong")


def test_24_7_calendar_has_1440_minutes():
    daily = pd.DataFrame({"close": [100.0, 110.0]}, index=pd.DatetimeIndex(["2018-01-06", "2018-01-07"]))
    minutes = minute_bars_from_daily(daily, "24/7", seed_key="TB")
    assert len(minutes) == 2 * 1440
    assert minutes.index[0] == pd.Timestamp("2018-01-06 00:01", tz="UTC")


# ------------------------------------------------------------------------- properties
_SESSIONS = pd.DatetimeIndex(
    ["2012-01-03", "2012-02-15", "2012-07-03", "2012-11-23", "2012-12-24", "2013-01-02", "2013-02-01"]
)


@st.composite
def daily_bars(draw):
    picks = sorted(draw(st.sets(st.integers(0, len(_SESSIONS) - 1), min_size=1, max_size=4)))
    n = len(picks)
    low = np.array(draw(st.lists(st.floats(0.01, 1e5), min_size=n, max_size=n)))
    flat = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    span = np.array(draw(st.lists(st.floats(0.0, 1e3), min_size=n, max_size=n)))
    span[np.array(flat)] = 0.0
    fo = np.array(draw(st.lists(st.sampled_from([0.0, 1.0]) | st.floats(0, 1), min_size=n, max_size=n)))
    fc = np.array(draw(st.lists(st.sampled_from([0.0, 1.0]) | st.floats(0, 1), min_size=n, max_size=n)))
    vol = draw(st.lists(st.integers(0, 2 * 10**9), min_size=n, max_size=n))
    return pd.DataFrame(
        {"open": low + fo * span, "high": low + span, "low": low, "close": low + fc * span,
         "volume": np.array(vol, dtype=float)},
        index=_SESSIONS[picks],
    )


@settings(max_examples=80, deadline=None)
@given(daily_bars(), st.text(max_size=8))
def test_invariants_hold_for_random_daily_bars(daily, key):
    minutes = minute_bars_from_daily(daily, "XNYS", seed_key=key)
    assert_invariants(daily, minutes)
    pd.testing.assert_frame_equal(minutes, minute_bars_from_daily(daily, "XNYS", seed_key=key))


# ------------------------------------------------------------------------------- speed
def test_speed(aapl_daily, aapl_2012):
    minute_bars_from_daily(aapl_2012.iloc[:2], seed_key="warm")  # calendar build / caches
    t0 = time.perf_counter()
    year = minute_bars_from_daily(aapl_2012, seed_key="AAPL")
    t_year = time.perf_counter() - t0
    t0 = time.perf_counter()
    full = minute_bars_from_daily(aapl_daily, seed_key="AAPL")
    t_full = time.perf_counter() - t0
    assert len(year) == 97350 and len(full) == 1_270_080
    # generous bounds so a busy CI box does not flake; typical: ~0.1 s and ~1.3 s
    assert t_year < 2.0, t_year
    assert t_full < 20.0, t_full
