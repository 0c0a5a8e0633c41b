"""Bundled samples: real stock values, adjustment, TestBrackets, synthetic minute samples."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from rustybt_nb.data import BarStore, list_samples, load_sample


@pytest.fixture(scope="module")
def stocks_csv() -> pd.DataFrame:
    """The source CSV, read independently of the package."""
    from bokeh_sampledata import package_path

    df = pd.read_csv(package_path("stocks.csv.gz"))
    df["Date"] = pd.to_datetime(df["Date"])
    return df


@pytest.fixture(scope="module")
def all_daily() -> BarStore:
    return load_sample()


def _csv(stocks_csv: pd.DataFrame, ticker: str) -> pd.DataFrame:
    return stocks_csv[stocks_csv["Ticker"] == ticker].set_index("Date")


def test_raw_aapl_matches_csv(stocks_csv):
    store = load_sample("AAPL", adjusted=False)
    df = store.to_frame("AAPL")
    assert df.loc["2013-03-01", "close"] == 430.47
    src = _csv(stocks_csv, "AAPL")
    for ours, theirs in [("open", "Open"), ("high", "High"), ("low", "Low"), ("close", "Close"),
                         ("volume", "Volume")]:
        np.testing.assert_array_equal(df[ours].to_numpy(), src[theirs].to_numpy(dtype=float))
    assert store.meta["adjusted"] is False


@pytest.mark.parametrize("ticker", ["AAPL", "FB", "GOOG", "IBM", "MSFT"])
def test_adjusted_close_is_csv_adj_close(stocks_csv, ticker):
    df = load_sample(ticker).to_frame(ticker)
    src = _csv(stocks_csv, ticker)
    np.testing.assert_allclose(df["close"].to_numpy(), src["Adj Close"].to_numpy(), rtol=1e-12)
    factor = src["Adj Close"].to_numpy() / src["Close"].to_numpy()
    np.testing.assert_allclose(df["open"].to_numpy(), src["Open"].to_numpy() * factor, rtol=1e-12)
    np.testing.assert_allclose(df["high"].to_numpy(), src["High"].to_numpy() * factor, rtol=1e-12)
    np.testing.assert_allclose(df["low"].to_numpy(), src["Low"].to_numpy() * factor, rtol=1e-12)
    np.testing.assert_array_equal(df["volume"].to_numpy(), np.round(src["Volume"].to_numpy() / factor))
    # adjustment keeps every bar consistent
    assert (df["high"] >= df[["open", "close"]].max(axis=1)).all()
    assert (df["low"] <= df[["open", "close"]].min(axis=1)).all()


def test_aapl_adjusted_last_close_value():
    df = load_sample("aapl").to_frame("AAPL")
    assert df.loc["2013-03-01", "close"] == pytest.approx(56.137353, rel=1e-7)


def test_date_ranges_of_the_five_stocks(all_daily):
    assert all_daily.symbols == ["AAPL", "FB", "GOOG", "IBM", "MSFT"]
    assert all_daily.calendar == "XNYS"
    assert all_daily.frequency == "daily"
    assert len(all_daily) == 3270
    expected = {
        "AAPL": ("2000-03-01", 3270), "IBM": ("2000-03-01", 3270), "MSFT": ("2000-03-01", 3270),
        "GOOG": ("2004-08-19", 2148), "FB": ("2012-05-18", 196),
    }
    for sym, (first, bars) in expected.items():
        df = all_daily.to_frame(sym)
        assert df.index[0] == pd.Timestamp(first)
        assert df.index[-1] == pd.Timestamp("2013-03-01")
        assert len(df) == bars
    assert all_daily.index.tz is None
    assert (all_daily.index == all_daily.index.normalize()).all()


def test_fb_before_ipo_is_a_hole(all_daily):
    close = all_daily.column("FB", "close")
    volume = all_daily.column("FB", "volume")
    before = all_daily.index < pd.Timestamp("2012-05-18")
    assert np.isnan(close[before]).all()
    assert (volume[before] == 0).all()
    assert not np.isnan(close[~before]).any()


def test_meta_of_daily_stock_sample(all_daily):
    meta = all_daily.meta
    assert meta["source"] == "sample:AAPL,FB,GOOG,IBM,MSFT"
    assert meta["synthetic"] is False
    assert meta["adjusted"] is True
    assert meta["has_volume"] is True
    assert meta["close_only"] is False
    assert "public domain" in meta["license"]


def test_names_are_case_insensitive_and_lists_work():
    store = load_sample(["msft", "Ibm"])
    assert store.symbols == ["MSFT", "IBM"]
    assert load_sample("goog").symbols == ["GOOG"]


def test_unknown_sample_lists_samples_and_suggests():
    with pytest.raises(ValueError) as info:
        load_sample("APPL")
    msg = str(info.value)
    assert "'APPL'" in msg and "TestBrackets" in msg and "MSFT" in msg
    assert "Did you mean 'AAPL'" in msg


def test_start_end_slice_daily():
    store = load_sample("IBM", start="2010-01-01", end="2010-12-31")
    assert store.index[0] == pd.Timestamp("2010-01-04")
    assert store.index[-1] == pd.Timestamp("2010-12-31")
    assert len(store) == 252


def test_cache_is_not_shared_with_stores():
    for adjusted in (True, False):
        a = load_sample("AAPL", adjusted=adjusted)
        b = load_sample("AAPL", adjusted=adjusted)
        for field in ("open", "close", "volume"):
            assert not np.shares_memory(a.column("AAPL", field), b.column("AAPL", field))
            np.testing.assert_array_equal(a.column("AAPL", field), b.column("AAPL", field))


# ------------------------------------------------------------------------ TestBrackets
@pytest.mark.parametrize("name", ["TestBrackets", "test_brackets", "TESTBRACKETS", "testbrackets"])
def test_testbrackets(name):
    store = load_sample(name)
    assert len(store) == 120
    assert store.calendar == "24/7"
    assert store.frequency == "daily"
    assert store.symbols == ["TESTBRACKETS"]
    df = store.to_frame()
    assert df.index[0] == pd.Timestamp("2018-01-01") and df.index[-1] == pd.Timestamp("2018-04-30")
    assert (df.index.day_of_week >= 5).sum() == 34  # weekends are bars
    for col in ("open", "high", "low"):
        np.testing.assert_array_equal(df[col].to_numpy(), df["close"].to_numpy())
    assert df["volume"].isna().all()
    ph = (df.index - pd.Timestamp("2018-01-01")).days % 40
    expected = np.where(ph <= 20, 100 + 10 * ph, 100 + 10 * (40 - ph))
    np.testing.assert_array_equal(df["close"].to_numpy(), expected.astype(float))
    assert store.meta["close_only"] is True
    assert store.meta["has_volume"] is False
    assert store.meta["synthetic"] is False
    assert store.meta["source"] == "sample:TestBrackets"


def test_testbrackets_matches_the_oracle_csv():
    from pathlib import Path

    oracle = pd.read_csv(Path(__file__).parent / "data" / "TestBrackets.csv")
    df = load_sample("TestBrackets").to_frame()
    np.testing.assert_array_equal(df["close"].to_numpy(), oracle["Close"].to_numpy(dtype=float))
    assert list(df.index.strftime("%m/%d/%Y")) == list(oracle["Date"])


def test_testbrackets_is_daily_only():
    with pytest.raises(ValueError, match="daily only"):
        load_sample("TestBrackets", frequency="minute")


def test_testbrackets_cannot_mix_with_stocks():
    with pytest.raises(ValueError, match="on its own"):
        load_sample(["AAPL", "TestBrackets"])


# ------------------------------------------------------------------------ minute samples
@pytest.fixture(scope="module")
def aapl_minute() -> BarStore:
    return load_sample("AAPL", frequency="minute")


def test_minute_sample_default_window(aapl_minute):
    assert aapl_minute.frequency == "minute"
    assert aapl_minute.calendar == "XNYS"
    assert str(aapl_minute.index.tz) == "UTC"
    assert aapl_minute.index[0] == pd.Timestamp("2012-03-01 09:31", tz="America/New_York")
    assert aapl_minute.index[-1] == pd.Timestamp("2013-03-01 16:00", tz="America/New_York")
    assert aapl_minute.meta["synthetic"] is True
    assert "2012-03-01 .. 2013-03-01" in aapl_minute.meta["synthetic_window"]
    assert "synthetic" in repr(aapl_minute)


def test_minute_sample_aggregates_to_the_daily_bars(aapl_minute):
    daily = load_sample("AAPL", start="2012-03-01", end="2013-03-01").to_frame("AAPL")
    m = aapl_minute.to_frame("AAPL")
    day = m.index.tz_convert("America/New_York").normalize().tz_localize(None)
    agg = m.groupby(day).agg(open=("open", "first"), high=("high", "max"), low=("low", "min"),
                             close=("close", "last"), volume=("volume", "sum"))
    pd.testing.assert_frame_equal(agg, daily, check_names=False, check_freq=False)


def test_minute_sample_with_dates_and_early_close():
    store = load_sample("MSFT", frequency="minute", start="2012-11-20", end="2012-11-26")
    ny = store.index.tz_convert("America/New_York")
    counts = pd.Series(1, index=ny).groupby(ny.date).sum()
    assert counts.to_dict() == {
        pd.Timestamp(d).date(): n
        for d, n in [("2012-11-20", 390), ("2012-11-21", 390), ("2012-11-23", 210), ("2012-11-26", 390)]
    }
    last_of_friday = ny[ny.date == pd.Timestamp("2012-11-23").date()][-1]
    assert last_of_friday == pd.Timestamp("2012-11-23 13:00", tz="America/New_York")


def test_minute_sample_raw_closes_each_day_at_the_raw_close():
    store = load_sample("IBM", frequency="minute", start="2013-02-01", adjusted=False)
    daily = load_sample("IBM", adjusted=False, start="2013-02-01").to_frame("IBM")
    m = store.to_frame("IBM")
    last = m.groupby(m.index.tz_convert("America/New_York").date)["close"].last()
    np.testing.assert_array_equal(last.to_numpy(), daily["close"].to_numpy())
    assert store.meta["adjusted"] is False


def test_minute_multi_stock_sample_aligns():
    store = load_sample(["AAPL", "FB"], frequency="minute", start="2012-05-16", end="2012-05-18")
    assert store.symbols == ["AAPL", "FB"]
    fb = store.column("FB", "close")
    assert np.isnan(fb[: 2 * 390]).all()  # FB starts trading on 2012-05-18
    assert not np.isnan(fb[2 * 390:]).any()


def test_minute_sample_out_of_range():
    with pytest.raises(ValueError, match="select no bars"):
        load_sample("AAPL", frequency="minute", start="2020-01-01")


# ----------------------------------------------------------------------------- listing
def test_list_samples():
    table = list_samples()
    assert list(table.index) == ["AAPL", "FB", "GOOG", "IBM", "MSFT", "TestBrackets"]
    assert table.loc["GOOG", "first"] == pd.Timestamp("2004-08-19").date()
    assert table.loc["AAPL", "bars"] == 3270
    assert table.loc["TestBrackets", "bars"] == 120
    assert table.loc["TestBrackets", "calendar"] == "24/7"
    assert "minute" in table.loc["AAPL", "frequencies"]
    assert "bokeh_sampledata" in table.loc["MSFT", "license"]


def test_import_has_no_side_effects():
    code = (
        "import sys, rustybt_nb.data\n"
        "assert 'exchange_calendars' not in sys.modules, 'calendar imported'\n"
        "assert 'bokeh_sampledata' not in sys.modules, 'sample data read at import'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(_repo_root()))


def _repo_root():
    from pathlib import Path

    return Path(__file__).resolve().parent.parent
