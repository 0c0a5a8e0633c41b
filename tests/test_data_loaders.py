"""User data loaders: frames, dicts, long/wide multi-asset, CSV, Parquet, as_bar_store."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rustybt_nb.data import (
    BarStore,
    as_bar_store,
    from_frame,
    from_frames,
    load_csv,
    load_parquet,
    load_sample,
)
from rustybt_nb.errors import DataValidationError

TESTBRACKETS_CSV = Path(__file__).parent / "data" / "TestBrackets.csv"


def bars(n: int = 5, start: str = "2024-01-02", freq: str = "B", base: float = 100.0,
         tz: str | None = None) -> pd.DataFrame:
    idx = pd.date_range(start, periods=n, freq=freq, tz=tz)
    px = base + np.arange(n, dtype=float)
    return pd.DataFrame(
        {"open": px, "high": px + 2, "low": px - 2, "close": px + 1, "volume": 1000.0 + np.arange(n)},
        index=idx,
    )


# ------------------------------------------------------------------------- from_frame
def test_case_insensitive_columns_and_extra_fields():
    df = bars().rename(columns={"open": "Open", "high": "HIGH", "close": "Close", "volume": "VOLUME"})
    df["SMA10"] = np.arange(5.0)
    df["label"] = list("abcde")
    store = from_frame(df, "XYZ")
    assert isinstance(store, BarStore)
    assert store.symbols == ["XYZ"]
    assert store.extra_fields == ("sma10",)
    np.testing.assert_array_equal(store.column("XYZ", "sma10"), np.arange(5.0))
    np.testing.assert_array_equal(store.column("XYZ", "high"), bars()["high"].to_numpy())
    assert store.meta["dropped_columns"] == {"XYZ": ["label"]}
    assert store.meta["source"] == "frame"
    assert store.meta["synthetic"] is False
    assert store.meta["has_volume"] is True and store.meta["close_only"] is False


@pytest.mark.parametrize("name", ["date", "Date", "DATETIME", "timestamp", "Time"])
def test_date_column_becomes_the_index(name):
    df = bars().reset_index(names=name)
    store = from_frame(df, "XYZ")
    assert list(store.index) == list(bars().index)
    assert store.extra_fields == ()


def test_date_and_time_columns_are_combined():
    df = pd.DataFrame({
        "Date": ["2024-01-02", "2024-01-02", "2024-01-03"],
        "Time": ["09:31", "09:32", "09:31"],
        "Close": [10.0, 10.5, 11.0],
    })
    store = from_frame(df, "X")
    assert store.frequency == "minute"
    assert store.index[0] == pd.Timestamp("2024-01-02 14:31", tz="UTC")


def test_default_symbol():
    df = bars()
    assert from_frame(df).symbols == ["ASSET"]
    df.attrs["symbol"] = "FROMATTRS"
    assert from_frame(df).symbols == ["FROMATTRS"]
    df2 = bars()
    df2.name = "NAMED"
    assert from_frame(df2).symbols == ["NAMED"]
    assert from_frame(df, "GIVEN").symbols == ["GIVEN"]


def test_series_is_close_only():
    s = pd.Series([1.0, 2.0, 3.0], index=pd.date_range("2024-01-02", periods=3), name="SPY")
    store = from_frame(s)
    assert store.symbols == ["SPY"]
    assert store.meta["close_only"] is True


def test_close_only_and_missing_volume():
    df = pd.DataFrame({"Price": [5.0, 6.0, 7.0]}, index=pd.date_range("2024-01-02", periods=3, freq="B"))
    store = from_frame(df, "P")
    assert store.meta["close_only"] is True
    assert store.meta["has_volume"] is False
    assert np.isnan(store.column("P", "volume")).all()
    for f in ("open", "high", "low", "close"):
        np.testing.assert_array_equal(store.column("P", f), [5.0, 6.0, 7.0])


def test_ohlc_without_volume():
    store = from_frame(bars().drop(columns=["volume"]), "X")
    assert store.meta["has_volume"] is False
    assert store.meta["close_only"] is False
    assert store.meta["symbols_without_volume"] == ["X"]


# --------------------------------------------------------------- frequency / calendar
def test_daily_inference_and_xnys_calendar():
    store = from_frame(bars(), "X")
    assert store.frequency == "daily"
    assert store.calendar == "XNYS"
    assert store.index.tz is None


def test_weekend_bars_mean_24_7():
    store = from_frame(bars(10, freq="D"), "X")
    assert store.frequency == "daily"
    assert store.calendar == "24/7"


def test_explicit_calendar_and_alias():
    assert from_frame(bars(), "X", calendar="XLON").calendar == "XLON"
    assert from_frame(bars(), "X", calendar="NYSE").calendar == "XNYS"
    with pytest.raises(ValueError, match="XNYS"):
        from_frame(bars(), "X", calendar="XNYSS")


def test_minute_inference_and_new_york_default():
    # 09:31 New York in winter (UTC-5) and in summer (UTC-4)
    idx = pd.DatetimeIndex(["2024-01-02 09:31", "2024-01-02 09:32", "2024-07-01 09:31"])
    df = bars(3).set_axis(idx)
    store = from_frame(df, "X")
    assert store.frequency == "minute"
    assert store.calendar == "XNYS"
    assert str(store.index.tz) == "UTC"
    assert list(store.index) == [
        pd.Timestamp("2024-01-02 14:31", tz="UTC"),
        pd.Timestamp("2024-01-02 14:32", tz="UTC"),
        pd.Timestamp("2024-07-01 13:31", tz="UTC"),
    ]
    assert store.meta["tz"] == "America/New_York"


def test_minute_tz_argument_and_aware_input():
    idx = pd.DatetimeIndex(["2024-01-02 09:31", "2024-01-02 09:32"])
    store = from_frame(bars(2).set_axis(idx), "X", tz="Europe/London")
    assert store.index[0] == pd.Timestamp("2024-01-02 09:31", tz="UTC")
    aware = bars(2).set_axis(idx.tz_localize("Asia/Tokyo"))
    store = from_frame(aware, "X", tz="America/Chicago")  # tz ignored for aware input
    assert store.index[0] == pd.Timestamp("2024-01-02 00:31", tz="UTC")


def test_naive_minute_in_a_dst_gap_is_an_error():
    idx = pd.DatetimeIndex(["2024-03-10 01:59", "2024-03-10 02:30", "2024-03-10 03:01"])
    with pytest.raises(DataValidationError, match="daylight-saving") as info:
        from_frame(bars(3).set_axis(idx), "X")
    assert "(row 1)" in str(info.value)


def test_tz_aware_daily_becomes_naive_dates():
    df = bars(3, tz="America/New_York")
    store = from_frame(df, "X")
    assert store.frequency == "daily"
    assert store.index.tz is None
    assert list(store.index) == list(pd.date_range("2024-01-02", periods=3, freq="B"))


def test_forced_daily_normalises_times():
    idx = pd.DatetimeIndex(["2024-01-02 16:00", "2024-01-03 16:00"])
    store = from_frame(bars(2).set_axis(idx), "X", frequency="daily")
    assert list(store.index) == [pd.Timestamp("2024-01-02"), pd.Timestamp("2024-01-03")]


def test_forced_minute_on_midnight_stamps():
    store = from_frame(bars(2), "X", frequency="minute", tz="UTC")
    assert store.frequency == "minute"
    assert store.index[0] == pd.Timestamp("2024-01-02", tz="UTC")


# ------------------------------------------------------------------------ multi-asset
def _two_assets() -> tuple[pd.DataFrame, pd.DataFrame]:
    a = bars(4, start="2024-01-02", base=10.0)          # Jan 2, 3, 4, 5
    b = bars(3, start="2024-01-04", base=50.0)          # Jan 4, 5, 8
    return a, b


def _check_aligned(store: BarStore) -> None:
    a, b = _two_assets()
    assert store.symbols == ["AAA", "BBB"]
    assert list(store.index) == list(a.index.union(b.index))
    a_close = store.column("AAA", "close")
    b_close = store.column("BBB", "close")
    np.testing.assert_array_equal(a_close[:4], a["close"].to_numpy())
    assert np.isnan(a_close[4])
    assert store.column("AAA", "volume")[4] == 0
    assert np.isnan(b_close[:2]).all()
    assert (store.column("BBB", "volume")[:2] == 0).all()
    np.testing.assert_array_equal(b_close[2:], b["close"].to_numpy())
    np.testing.assert_array_equal(store.column("BBB", "volume")[2:], b["volume"].to_numpy())


def test_from_frames_dict():
    a, b = _two_assets()
    store = from_frames({"AAA": a, "BBB": b})
    _check_aligned(store)
    assert store.meta["source"] == "frames"


def test_long_frame():
    a, b = _two_assets()
    long = pd.concat([a.assign(Ticker="AAA"), b.assign(Ticker="BBB")]).reset_index(names="Date")
    _check_aligned(from_frame(long))


def test_long_frame_with_row_multiindex():
    a, b = _two_assets()
    long = pd.concat([a.assign(symbol="AAA"), b.assign(symbol="BBB")]).reset_index(names="date")
    _check_aligned(from_frame(long.set_index(["date", "symbol"])))


def test_long_frame_symbol_selection():
    a, b = _two_assets()
    long = pd.concat([a.assign(symbol="AAA"), b.assign(symbol="BBB")])
    store = from_frame(long, "bbb")
    assert store.symbols == ["BBB"]
    assert len(store) == 3
    with pytest.raises(ValueError, match="Did you mean 'AAA'"):
        from_frame(long, "AAX")


def test_wide_symbol_field_columns():
    a, b = _two_assets()
    wide = pd.concat({"AAA": a, "BBB": b}, axis=1)  # (symbol, field), NaN holes
    _check_aligned(from_frame(wide))


def test_wide_field_symbol_columns():
    a, b = _two_assets()
    wide = pd.concat({"AAA": a, "BBB": b}, axis=1).swaplevel(axis=1).sort_index(axis=1)
    wide.columns = wide.columns.set_levels([c.title() for c in wide.columns.levels[0]], level=0)
    assert wide.columns[0] == ("Close", "AAA")
    _check_aligned(from_frame(wide))


def test_wide_frame_partial_nan_row_is_still_an_error():
    a, b = _two_assets()
    wide = pd.concat({"AAA": a, "BBB": b}, axis=1)
    wide.loc[wide.index[1], ("AAA", "high")] = np.nan
    with pytest.raises(DataValidationError, match="'AAA'"):
        from_frame(wide)


def test_wide_without_field_names_is_explained():
    wide = pd.concat({"AAA": bars(), "BBB": bars()}, axis=1)
    wide.columns = pd.MultiIndex.from_product([["x", "y"], ["a", "b", "c", "d", "e"]])
    with pytest.raises(DataValidationError, match="which column level holds the fields"):
        from_frame(wide)


def test_extra_fields_are_given_to_every_asset():
    a, b = _two_assets()
    a = a.assign(sma=1.0)
    store = from_frames({"AAA": a, "BBB": b})
    assert store.extra_fields == ("sma",)
    assert np.isnan(store.column("BBB", "sma")).all()


def test_no_volume_asset_keeps_nan_volume_next_to_holes():
    a, b = _two_assets()
    store = from_frames({"AAA": a, "BBB": b[["close"]]})
    vol = store.column("BBB", "volume")
    assert (vol[:2] == 0).all()             # holes
    assert np.isnan(vol[2:]).all()          # real bars without volume
    assert store.meta["has_volume"] is False
    assert store.meta["close_only"] is True
    assert store.meta["close_only_symbols"] == ["BBB"]


def test_mixed_frequencies_are_refused():
    minute = bars(2).set_axis(pd.DatetimeIndex(["2024-01-02 09:31", "2024-01-02 09:32"]))
    with pytest.raises(DataValidationError, match="mix daily and minute"):
        from_frames({"D": bars(), "M": minute})


def test_weekend_in_any_asset_makes_24_7():
    store = from_frames({"A": bars(), "C": bars(7, freq="D")})
    assert store.calendar == "24/7"


# ------------------------------------------------------------------------------- files
def test_csv_round_trip(tmp_path):
    df = bars(20)
    df["rsi"] = np.linspace(30, 70, 20)
    path = tmp_path / "spy.csv"
    df.to_csv(path, index_label="Date")
    store = load_csv(path)
    assert store.symbols == ["SPY"]
    assert store.meta["source"] == str(path)
    for col in df.columns:
        np.testing.assert_array_equal(store.column("SPY", col), df[col].to_numpy())
    assert list(store.index) == list(df.index)


def test_csv_with_unnamed_index_column(tmp_path):
    path = tmp_path / "qqq.csv"
    bars().to_csv(path)  # header of the index column is empty
    store = load_csv(path)
    assert store.symbols == ["QQQ"]
    assert list(store.index) == list(bars().index)


def test_csv_us_dates_close_only():
    store = load_csv(TESTBRACKETS_CSV)
    assert store.symbols == ["TESTBRACKETS"]
    assert len(store) == 120
    assert store.calendar == "24/7"
    assert store.index[31] == pd.Timestamp("2018-02-01")
    assert store.meta["close_only"] is True


def test_csv_long_format(tmp_path):
    a, b = _two_assets()
    long = pd.concat([a.assign(symbol="AAA"), b.assign(symbol="BBB")]).reset_index(names="date")
    path = tmp_path / "prices.csv"
    long.to_csv(path, index=False)
    _check_aligned(load_csv(path))


def test_csv_symbol_and_from_frame_kwargs(tmp_path):
    path = tmp_path / "x.csv"
    bars(10, freq="D").to_csv(path, index_label="Date")
    store = load_csv(path, "MYSYM", calendar="XNYS")
    assert store.symbols == ["MYSYM"]
    assert store.calendar == "XNYS"
    with pytest.raises(TypeError, match="read_kwargs"):
        load_csv(path, sep=";")
    store = load_csv(path, read_kwargs={"nrows": 3})
    assert len(store) == 3


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nope.csv"
    with pytest.raises(FileNotFoundError, match=r"nope\.csv"):
        load_csv(path)
    with pytest.raises(FileNotFoundError, match=r"nope\.parquet"):
        load_parquet(tmp_path / "nope.parquet")


def test_parquet_round_trip(tmp_path):
    df = bars(20)
    df["sma5"] = df["close"].rolling(5).mean()
    path = tmp_path / "ibm.parquet"
    df.to_parquet(path)
    store = load_parquet(path)
    assert store.symbols == ["IBM"]
    for col in df.columns:
        np.testing.assert_array_equal(store.column("IBM", col), df[col].to_numpy())


def test_parquet_wide_and_long(tmp_path):
    a, b = _two_assets()
    wide = pd.concat({"AAA": a, "BBB": b}, axis=1)
    wide.to_parquet(tmp_path / "wide.parquet")
    _check_aligned(load_parquet(tmp_path / "wide.parquet"))
    long = pd.concat([a.assign(symbol="AAA"), b.assign(symbol="BBB")]).reset_index(names="date")
    long.set_index(["date", "symbol"]).to_parquet(tmp_path / "long.pq")
    _check_aligned(load_parquet(tmp_path / "long.pq"))


def test_parquet_minute_round_trip(tmp_path):
    idx = pd.date_range("2024-01-02 14:31", periods=30, freq="min", tz="UTC")
    df = bars(30).set_axis(idx)
    df.to_parquet(tmp_path / "m.parquet")
    store = load_parquet(tmp_path / "m.parquet")
    assert store.frequency == "minute"
    assert list(store.index) == list(idx)


def test_parquet_without_pyarrow(tmp_path, monkeypatch):
    path = tmp_path / "x.parquet"
    bars().to_parquet(path)
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(ImportError, match="pip install pyarrow"):
        load_parquet(path)


# ------------------------------------------------------------------------ as_bar_store
def test_as_bar_store_passes_stores_through():
    store = from_frame(bars(), "X")
    assert as_bar_store(store) is store
    sliced = as_bar_store(store, start="2024-01-03", end="2024-01-05")
    assert list(sliced.index) == list(pd.date_range("2024-01-03", "2024-01-05"))


def test_as_bar_store_refuses_a_frequency_change():
    with pytest.raises(ValueError, match="daily BarStore"):
        as_bar_store(from_frame(bars(), "X"), frequency="minute")


def test_as_bar_store_frames_and_dicts():
    store = as_bar_store(bars(), symbol="X", start="2024-01-04")
    assert store.symbols == ["X"] and len(store) == 3
    a, b = _two_assets()
    _check_aligned(as_bar_store({"AAA": a, "BBB": b}))


def test_as_bar_store_files(tmp_path):
    bars().to_csv(tmp_path / "abc.csv", index_label="date")
    bars().to_parquet(tmp_path / "abc.parquet")
    for data in (tmp_path / "abc.csv", str(tmp_path / "abc.csv"), tmp_path / "abc.parquet",
                 str(tmp_path / "abc.parquet")):
        store = as_bar_store(data)
        assert store.symbols == ["ABC"]
        assert len(store) == 5
    (tmp_path / "abc.json").write_text("{}")
    with pytest.raises(ValueError, match="only CSV"):
        as_bar_store(tmp_path / "abc.json")


def test_as_bar_store_samples():
    store = as_bar_store("aapl", start="2013-01-01")
    assert store.symbols == ["AAPL"]
    assert store.index[0] == pd.Timestamp("2013-01-02")
    assert as_bar_store(["MSFT", "IBM"]).symbols == ["MSFT", "IBM"]
    assert as_bar_store("TestBrackets").calendar == "24/7"
    minute = as_bar_store("IBM", frequency="minute", start="2013-02-28")
    assert minute.frequency == "minute" and minute.meta["synthetic"] is True
    assert len(minute) == 2 * 390
    assert len(load_sample("IBM", start="2013-02-28")) == 2


@pytest.mark.parametrize("bad", [42, None, 3.5, [1, 2], object()])
def test_as_bar_store_type_error(bad):
    with pytest.raises(TypeError) as info:
        as_bar_store(bad)
    msg = str(info.value)
    assert "`data`" in msg and type(bad).__name__ in msg
    assert "DataFrame" in msg and ".csv" in msg and "sample" in msg


@pytest.mark.parametrize("tz", [None, "UTC"])
def test_bar_store_pickles_after_use(tz):
    """A store whose timestamp cache is built still pickles (for worker processes), and
    the copy gives the same timestamps and runs the same backtest."""
    import pickle

    from rustybt_nb import run_algorithm

    store = from_frame(bars(30, tz=tz), symbol="X")
    before = [store.timestamp(i) for i in range(len(store.index))]
    copy = pickle.loads(pickle.dumps(store))
    assert [copy.timestamp(i) for i in range(len(copy.index))] == before == list(store.index)

    def handle(context, data):
        from rustybt_nb.api import order, symbol
        order(symbol("X"), 1)

    a = run_algorithm(handle_data=handle, data=store).fills
    b = run_algorithm(handle_data=handle, data=copy).fills
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 29
