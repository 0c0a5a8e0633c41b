"""Validation of user bars: every error names the symbol, the problem, the rows and the fix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rustybt_nb.data import from_frame
from rustybt_nb.data.validation import validate_bars
from rustybt_nb.errors import DataValidationError


def bars(n: int = 6, start: str = "2024-01-02", freq: str = "B") -> pd.DataFrame:
    """A valid OHLCV frame with user-style capitalised columns."""
    idx = pd.date_range(start, periods=n, freq=freq)
    base = 100.0 + np.arange(n)
    return pd.DataFrame(
        {"Open": base, "High": base + 2, "Low": base - 2, "Close": base + 1, "Volume": 1000 + np.arange(n)},
        index=idx,
    )


def error_of(df: pd.DataFrame, symbol: str = "XYZ", **kw) -> str:
    with pytest.raises(DataValidationError) as info:
        from_frame(df, symbol, **kw)
    msg = str(info.value)
    assert f"'{symbol}'" in msg, msg
    assert "fix:" in msg, msg
    return msg


# ----------------------------------------------------------------------------- success
def test_clean_frame_shape_and_attrs():
    df = bars()
    df["SMA10"] = np.linspace(1, 2, len(df))
    df["Comment"] = "x"
    out = validate_bars(df, "XYZ", "daily")
    assert list(out.columns) == ["open", "high", "low", "close", "volume", "sma10"]
    assert (out.dtypes == np.float64).all()
    assert out.index.tz is None and out.index.dtype == "datetime64[ns]"
    assert out.attrs["symbol"] == "XYZ"
    assert out.attrs["frequency"] == "daily"
    assert out.attrs["has_volume"] is True and out.attrs["close_only"] is False
    assert out.attrs["dropped_columns"] == ["Comment"]
    np.testing.assert_array_equal(out["close"].to_numpy(), df["Close"].to_numpy())


def test_validate_does_not_modify_input():
    df = bars()
    before = df.copy()
    validate_bars(df, "XYZ")
    pd.testing.assert_frame_equal(df, before)


@pytest.mark.parametrize("col", ["close", "Close", "PRICE", "price"])
def test_close_only_frames_become_flat_bars(col):
    df = pd.DataFrame({col: [10.0, 11.0, 12.0]}, index=pd.date_range("2024-01-02", periods=3))
    out = validate_bars(df, "C")
    for f in ("open", "high", "low"):
        np.testing.assert_array_equal(out[f].to_numpy(), [10.0, 11.0, 12.0])
    assert out.attrs["close_only"] is True
    assert out.attrs["has_volume"] is False
    assert out["volume"].isna().all()


def test_adj_close_is_ignored_next_to_close():
    df = bars()
    df["Adj Close"] = df["Close"] / 2
    out = validate_bars(df, "XYZ")
    np.testing.assert_array_equal(out["close"].to_numpy(), df["Close"].to_numpy())
    assert "adj close" not in out.columns and "adj_close" not in out.columns
    assert out.attrs["dropped_columns"] == ["Adj Close"]


def test_adj_close_alone_is_used_as_close():
    df = pd.DataFrame({"adj_close": [5.0, 6.0]}, index=pd.date_range("2024-01-02", periods=2))
    out = validate_bars(df, "A")
    np.testing.assert_array_equal(out["close"].to_numpy(), [5.0, 6.0])
    assert out.attrs["close_only"] is True


def test_numeric_strings_are_accepted():
    df = bars().astype({"Close": str})
    out = validate_bars(df, "XYZ")
    np.testing.assert_array_equal(out["close"].to_numpy(), bars()["Close"].to_numpy())


def test_string_index_is_parsed():
    df = bars()
    df.index = df.index.strftime("%m/%d/%Y")
    out = validate_bars(df, "XYZ")
    assert out.index[0] == pd.Timestamp("2024-01-02")


def test_yyyymmdd_integer_date_column():
    df = bars().reset_index(drop=True)
    df["date"] = [20240102, 20240103, 20240104, 20240105, 20240108, 20240109]
    out = validate_bars(df, "XYZ")
    assert out.index[-1] == pd.Timestamp("2024-01-09")


# ------------------------------------------------------------------------------ errors
def test_missing_columns_are_named_with_suggestions():
    df = bars().rename(columns={"High": "Hgh", "Low": "Lw"})
    msg = error_of(df)
    assert "missing required column(s) ['high', 'low']" in msg
    assert "found ['Open', 'Hgh', 'Lw', 'Close', 'Volume']" in msg
    assert "Did you mean 'Hgh'" in msg
    assert "df.rename(columns={'Hgh': 'high'" in msg


def test_missing_close():
    df = bars().drop(columns=["Close"])
    msg = error_of(df)
    assert "['close']" in msg


def test_open_high_low_with_only_adj_close_is_refused():
    df = bars().rename(columns={"Close": "Adj Close"})
    msg = error_of(df)
    assert "'close'" in msg and "adj close" in msg


def test_index_not_datetime():
    msg = error_of(bars().reset_index(drop=True))
    assert "not datetime-like" in msg and "RangeIndex" in msg
    assert "pd.to_datetime" in msg


def test_unparseable_dates_are_listed():
    df = bars().reset_index(names="Date")
    df["Date"] = df["Date"].dt.strftime("%Y-%m-%d")
    df.loc[2, "Date"] = "not a date"
    msg = error_of(df)
    assert "could not parse the timestamps in column 'Date'" in msg
    assert "'not a date' (row 2)" in msg


def test_empty_frame():
    msg = error_of(bars().iloc[:0])
    assert "empty" in msg and "0 rows" in msg


def test_nan_prices():
    df = bars()
    df.iloc[[1, 4], df.columns.get_loc("Low")] = np.nan
    msg = error_of(df)
    assert "NaN (missing) prices in ['Low']" in msg
    assert "2024-01-03 (row 1), 2024-01-08 (row 4) [2 rows in total]" in msg
    assert "df = df.dropna(subset=['Open', 'High', 'Low', 'Close'])" in msg


def test_infinite_prices():
    df = bars()
    df.iloc[3, df.columns.get_loc("High")] = np.inf
    msg = error_of(df)
    assert "infinite" in msg and "(row 3)" in msg
    assert "replace([np.inf, -np.inf], np.nan)" in msg


def test_high_below_low():
    df = bars()
    df.iloc[2, df.columns.get_loc("High")] = 50.0
    df.iloc[2, df.columns.get_loc("Low")] = 60.0
    msg = error_of(df)
    assert "high < low" in msg and "2024-01-04 (row 2)" in msg
    assert "df = df[df['High'] >= df['Low']]" in msg


def test_high_below_open_or_close():
    df = bars()
    df.iloc[1, df.columns.get_loc("High")] = df.iloc[1]["Close"] - 0.5
    msg = error_of(df)
    assert "high below the open or the close" in msg and "(row 1)" in msg
    assert ".max(axis=1)" in msg


def test_low_above_open_or_close():
    df = bars()
    df.iloc[5, df.columns.get_loc("Low")] = df.iloc[5]["Open"] + 0.5
    msg = error_of(df)
    assert "low above the open or the close" in msg and "(row 5)" in msg
    assert ".min(axis=1)" in msg


@pytest.mark.parametrize("value", [0.0, -3.0])
def test_non_positive_prices(value):
    df = bars()
    df.iloc[0, :4] = value
    msg = error_of(df)
    assert "non-positive prices" in msg and "2024-01-02 (row 0)" in msg
    assert "> 0" in msg


def test_negative_volume():
    df = bars()
    df.iloc[3, df.columns.get_loc("Volume")] = -5
    msg = error_of(df)
    assert "negative or infinite volume in 'Volume'" in msg and "(row 3)" in msg
    assert "df['Volume'] >= 0" in msg


def test_nan_volume_in_a_volume_column():
    df = bars().astype({"Volume": float})
    df.iloc[2, df.columns.get_loc("Volume")] = np.nan
    msg = error_of(df)
    assert "NaN volume" in msg and "(row 2)" in msg
    assert "fillna(0)" in msg


def test_unsorted_timestamps_are_not_sorted_silently():
    df = bars().iloc[[0, 1, 3, 2, 4, 5]]
    msg = error_of(df)
    assert "not sorted" in msg and "2024-01-04 (row 3)" in msg
    assert "df = df.sort_index()" in msg


def test_unsorted_date_column_suggests_sort_values():
    df = bars().iloc[[1, 0, 2, 3, 4, 5]].reset_index(names="Date")
    msg = error_of(df)
    assert "df = df.sort_values('Date')" in msg


def test_duplicate_timestamps_are_not_dropped_silently():
    df = bars().iloc[[0, 1, 2, 2, 3, 4]]
    msg = error_of(df)
    assert "duplicate timestamps" in msg
    assert "2024-01-04 (row 2), 2024-01-04 (row 3) [2 rows in total]" in msg
    assert "df = df[~df.index.duplicated(keep='last')]" in msg


def test_duplicates_created_by_daily_normalisation():
    idx = pd.DatetimeIndex(["2024-01-02 10:00", "2024-01-02 15:00", "2024-01-03 10:00"])
    df = pd.DataFrame({"close": [1.0, 2.0, 3.0]}, index=idx)
    msg = error_of(df, frequency="daily")
    assert "after rounding to dates" in msg


def test_non_numeric_ohlcv_column_is_named():
    df = bars().astype({"Volume": object})
    df.iloc[4, df.columns.get_loc("Volume")] = "lots"
    msg = error_of(df)
    assert "column 'Volume' holds non-numeric values (e.g. 'lots')" in msg
    assert "(row 4)" in msg and "pd.to_numeric(df['Volume'], errors='coerce')" in msg


def test_many_offending_rows_show_ten_and_a_count():
    df = bars(30)
    df["Low"] = df["High"] + 1
    msg = error_of(df)
    assert "[30 rows in total]" in msg
    assert "... and 20 more" in msg
    assert msg.count("(row ") == 10


def test_long_frame_rows_refer_to_the_original_frame():
    a = bars(3).assign(Symbol="AAA")
    b = bars(3).assign(Symbol="BBB")
    df = pd.concat([a, b]).sort_index(kind="stable").reset_index(names="Date")
    # rows alternate AAA, BBB; break BBB's second bar (original row 3)
    df.loc[3, "Close"] = np.nan
    with pytest.raises(DataValidationError) as info:
        from_frame(df)
    msg = str(info.value)
    assert "'BBB'" in msg and "2024-01-03 (row 3)" in msg


def test_non_dataframe_is_a_type_error():
    with pytest.raises(TypeError, match="`df`"):
        validate_bars([1, 2, 3], "X")  # type: ignore[arg-type]


def test_bad_frequency_is_named():
    with pytest.raises(ValueError, match="`frequency`='weekly'"):
        validate_bars(bars(), "X", "weekly")


# -------------------------------------------------------------------------- properties
@st.composite
def valid_bars(draw):
    n = draw(st.integers(1, 30))
    low = np.array(draw(st.lists(st.floats(0.01, 1e6), min_size=n, max_size=n)))
    span = np.array(draw(st.lists(st.floats(0, 1e3), min_size=n, max_size=n)))
    fo = np.array(draw(st.lists(st.floats(0, 1), min_size=n, max_size=n)))
    fc = np.array(draw(st.lists(st.floats(0, 1), min_size=n, max_size=n)))
    vol = draw(st.lists(st.integers(0, 10**9), min_size=n, max_size=n))
    high = low + span
    df = pd.DataFrame(
        {"open": low + fo * span, "high": high, "low": low, "close": low + fc * span, "volume": vol},
        index=pd.date_range("2020-01-01", periods=n, freq="D"),
    )
    return df


@settings(max_examples=60, deadline=None)
@given(valid_bars())
def test_valid_bars_pass_unchanged(df):
    out = validate_bars(df, "H")
    np.testing.assert_array_equal(out[["open", "high", "low", "close", "volume"]].to_numpy(),
                                  df.to_numpy(dtype=float))


@settings(max_examples=60, deadline=None)
@given(valid_bars(), st.data())
def test_one_corrupted_row_is_caught_and_named(df, data):
    row = data.draw(st.integers(0, len(df) - 1))
    kind = data.draw(st.sampled_from(["nan", "negative", "zero_low", "swap", "neg_volume"]))
    df = df.copy()
    if kind == "nan":
        df.iloc[row, data.draw(st.integers(0, 3))] = np.nan
    elif kind == "negative":
        df.iloc[row, 0:4] = -1.0
    elif kind == "zero_low":
        df.iloc[row, 2] = 0.0
    elif kind == "swap":
        df.iloc[row, 1], df.iloc[row, 2] = df.iloc[row, 2] - 1.0, df.iloc[row, 1] + 1.0
    else:
        df.iloc[row, 4] = -1
    with pytest.raises(DataValidationError) as info:
        validate_bars(df, "H")
    assert f"(row {row})" in str(info.value)
