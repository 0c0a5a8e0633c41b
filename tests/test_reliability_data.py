"""Bad input data, through the public paths: every file problem, mixed time zones, values
that are not prices, and a frequency the data does not have, each give a package error
that names the file / column / rows, the problem and the fix (never a pandas, pyarrow,
pathlib or numpy error, never a silent misread)."""

from __future__ import annotations

import datetime as dt
import gzip

import numpy as np
import pandas as pd
import pytest

from rustybt_nb import Backtest, TradingAlgorithm, run_algorithm
from rustybt_nb.data import from_frame, from_frames, load_csv, load_parquet
from rustybt_nb.errors import DataValidationError

GOOD = ("date,open,high,low,close,volume\n"
        "2020-01-02,1,2,0.5,1.5,100\n2020-01-03,1,2,0.5,1.5,100\n2020-01-06,1,2,0.5,1.5,100\n")


def bars(n: int = 5, start: str = "2024-01-02", freq: str = "B") -> pd.DataFrame:
    idx = pd.date_range(start, periods=n, freq=freq)
    px = 100.0 + np.arange(n, dtype=float)
    return pd.DataFrame({"open": px, "high": px + 2, "low": px - 2, "close": px + 1,
                         "volume": 1000.0 + np.arange(n)}, index=idx)


class Quiet(TradingAlgorithm):
    def handle_data(self, context, data):
        pass


def message(exc_info: pytest.ExceptionInfo) -> str:
    return str(exc_info.value)


# ------------------------------------------------------------------------ files: CSV
def _write(tmp_path, name: str, data: str | bytes):
    path = tmp_path / name
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data)
    return path


@pytest.mark.parametrize("name, data, problem, fix", [
    ("empty.csv", "", "empty (0 bytes)", "export or download"),
    ("blank.csv", "\n\n\n", "no columns", "export or download"),
    ("junk.csv", bytes(range(256)) * 4, "binary data", "CSV export you meant"),
    ("latin.csv", "date,close,note\n2020-01-02,1.5,caf\xe9\n".encode("latin-1"), "not UTF-8 text (byte 0xe9",
     "read_kwargs={'encoding': 'latin-1'}"),
    ("utf16.csv", GOOD.encode("utf-16"), "UTF-16", "read_kwargs={'encoding': 'utf-16'}"),
    ("ragged.csv", GOOD + "2020-01-07,1,2,0.5,1.5,100,7,8\n", "line 5 has 8 fields but the header has 6",
     "'on_bad_lines': 'skip'"),
    ("trailing.csv", "date,open,high,low,close\n2020-01-02,1,2,0.5,1.5,\n2020-01-03,1,2,0.5,1.5,\n",
     "more fields than its header", "read_kwargs={'index_col': False}"),
    ("semi.csv", GOOD.replace(",", ";"), "separated by semicolons", "read_kwargs={'sep': ';'}"),
    ("euro.csv", "date;open;high;low;close\n02.01.2020;1,5;2,5;0,5;1,5\n03.01.2020;1,5;2,5;0,5;1,5\n",
     "separated by semicolons", "'sep': ';', 'decimal': ',', 'parse_dates': ['date'], 'dayfirst': True"),
    ("tabs.csv", GOOD.replace(",", "\t"), "separated by tabs", "read_kwargs={'sep': '\\t'}"),
    ("pipes.csv", GOOD.replace(",", "|"), "separated by vertical bars", "read_kwargs={'sep': '|'}"),
    ("nohead.csv", GOOD.split("\n", 1)[1], "no header row: its first line ('2020-01-02,1,2,0.5,1.5,100') is data",
     "'names': ['date', 'open', 'high', 'low', 'close', 'volume']"),
    ("gz.csv", gzip.compress(GOOD.encode()), "gzip-compressed", "'compression': 'gzip'"),
    ("cut.csv.gz", gzip.compress(GOOD.encode())[:20], "could not be read", "complete"),
    ("book.csv", b"PK\x03\x04" + b"\x00" * 40, "Excel", "pd.read_excel"),
])
def test_bad_csv_files_name_the_file_the_problem_and_the_fix(tmp_path, name, data, problem, fix):
    path = _write(tmp_path, name, data)
    with pytest.raises(DataValidationError) as info:
        load_csv(path)
    text = message(info)
    assert text.startswith(f"Cannot load {str(path)!r}: ")
    assert problem in text
    assert fix in text.split("fix:", 1)[1]


def test_a_folder_is_not_a_csv_file(tmp_path):
    folder = tmp_path / "prices.csv"
    folder.mkdir()
    (folder / "aapl.csv").write_text(GOOD)
    with pytest.raises(DataValidationError, match="it is a folder, not a CSV file") as info:
        load_csv(folder)
    assert "aapl.csv" in message(info).split("fix:")[1]
    with pytest.raises(DataValidationError, match="it is a folder"):
        run_algorithm(Quiet, data=folder)


def test_a_parquet_file_named_csv_and_a_csv_named_parquet(tmp_path):
    bars().to_parquet(tmp_path / "real.csv")
    with pytest.raises(DataValidationError, match="it is a Parquet file, not CSV text") as info:
        load_csv(tmp_path / "real.csv")
    assert "load_parquet" in message(info)
    _write(tmp_path, "text.parquet", GOOD)
    for call in (lambda: load_parquet(tmp_path / "text.parquet"),
                 lambda: run_algorithm(Quiet, data=str(tmp_path / "text.parquet"))):
        with pytest.raises(DataValidationError) as info:
            call()
        assert "it is a text file (its first line: 'date,open,high,low,close,volume'), not Parquet" in message(info)
        assert "load_csv" in message(info)


@pytest.mark.parametrize("data, problem", [
    (b"", r"empty \(0 bytes\)"),
    (bytes(range(256)) * 4, "not a Parquet file"),
    (b"PAR1" + b"\x00" * 100, "could not be read as Parquet"),
])
def test_bad_parquet_files(tmp_path, data, problem):
    path = _write(tmp_path, "x.parquet", data)
    with pytest.raises(DataValidationError, match=problem) as info:
        load_parquet(path)
    assert str(path) in message(info) and "fix:" in message(info)


def test_a_truncated_parquet_file_and_an_empty_dataset_folder(tmp_path):
    bars(50).to_parquet(tmp_path / "full.parquet")
    raw = (tmp_path / "full.parquet").read_bytes()
    _write(tmp_path, "cut.parquet", raw[: len(raw) // 2])
    with pytest.raises(DataValidationError, match="damaged"):
        load_parquet(tmp_path / "cut.parquet")
    (tmp_path / "dataset.parquet").mkdir()
    with pytest.raises(DataValidationError, match="a folder with no Parquet files"):
        load_parquet(tmp_path / "dataset.parquet")


def test_the_suggested_read_kwargs_load_the_file(tmp_path):
    euro = _write(tmp_path, "euro.csv", "date;open;high;low;close\n02.01.2020;1,5;2,5;0,5;1,5\n"
                                        "03.01.2020;1,5;2,5;0,5;1,5\n")
    store = load_csv(euro, read_kwargs={"sep": ";", "decimal": ",", "parse_dates": ["date"], "dayfirst": True})
    assert list(store.index) == [pd.Timestamp("2020-01-02"), pd.Timestamp("2020-01-03")]
    assert store.column("EURO", "close")[0] == 1.5
    latin = _write(tmp_path, "latin.csv", "date,close,note\n2020-01-02,1.5,caf\xe9\n".encode("latin-1"))
    assert load_csv(latin, read_kwargs={"encoding": "latin-1"}).column("LATIN", "close")[0] == 1.5
    nohead = _write(tmp_path, "nohead.csv", GOOD.split("\n", 1)[1])
    names = ["date", "open", "high", "low", "close", "volume"]
    assert len(load_csv(nohead, read_kwargs={"header": None, "names": names})) == 3
    trailing = _write(tmp_path, "trailing.csv", "date,open,high,low,close\n2020-01-02,1,2,0.5,1.5,\n")
    assert load_csv(trailing, read_kwargs={"index_col": False}).column("TRAILING", "close")[0] == 1.5


def test_tsv_files_are_read_with_tabs(tmp_path):
    store = load_csv(_write(tmp_path, "spy.tsv", GOOD.replace(",", "\t")))
    assert store.symbols == ["SPY"] and len(store) == 3


def test_bad_path_and_read_kwargs_arguments(tmp_path):
    for bad in (123, None, ["a.csv"]):
        with pytest.raises(TypeError, match=r"`path` must be a str or pathlib.Path"):
            load_csv(bad)
    path = _write(tmp_path, "x.csv", GOOD)
    with pytest.raises(TypeError, match="`read_kwargs` must be a dict"):
        load_csv(path, read_kwargs="sep=;")
    with pytest.raises(ValueError, match=r"pandas.read_csv refused `read_kwargs`=\{'bogus': 1\}"):
        load_csv(path, read_kwargs={"bogus": 1})


def test_bad_bars_in_a_file_name_the_file(tmp_path):
    path = _write(tmp_path, "bad.csv", GOOD.replace("2020-01-03,1,2,", "2020-01-03,1,0.2,"))
    with pytest.raises(DataValidationError) as info:
        load_csv(path)
    assert "high < low" in message(info) and f"file: {str(path)!r}" in message(info)


# ------------------------------------------------------------------ day-first dates
def test_day_first_dates_are_read_day_first_when_one_only_reads_so(tmp_path):
    """02/01/2020 reads either way; 13/01/2020 only day first: the column is day first."""
    path = _write(tmp_path, "eu.csv", "date,open,high,low,close\n02/01/2020,1,2,0.5,1.5\n03/01/2020,1,2,0.5,1.5\n"
                                      "13/01/2020,1,2,0.5,1.5\n14/01/2020,1,2,0.5,1.5\n")
    assert list(load_csv(path).index) == list(pd.to_datetime(["2020-01-02", "2020-01-03", "2020-01-13",
                                                               "2020-01-14"]))
    frame = pd.DataFrame({"date": ["02/01/2020", "13/01/2020"], "close": [1.0, 2.0]})
    assert list(from_frame(frame).index) == [pd.Timestamp("2020-01-02"), pd.Timestamp("2020-01-13")]
    # the same in the first, unnamed column (a frame saved with to_csv())
    unnamed = _write(tmp_path, "u.csv", ",close\n02/01/2020,1\n13/01/2020,2\n")
    assert list(load_csv(unnamed).index) == [pd.Timestamp("2020-01-02"), pd.Timestamp("2020-01-13")]


def test_us_dates_stay_month_first():
    frame = pd.DataFrame({"date": ["01/02/2020", "01/13/2020"], "close": [1.0, 2.0]})
    assert list(from_frame(frame).index) == [pd.Timestamp("2020-01-02"), pd.Timestamp("2020-01-13")]


def test_mixed_formats_that_read_day_first_and_month_first_are_refused():
    frame = pd.DataFrame({"date": ["02/01/2020", "13/01/2020", "2020-01-14"], "close": 1.0})
    with pytest.raises(DataValidationError) as info:
        from_frame(frame)
    text = message(info)
    assert "cannot read the timestamps in column 'date' one way" in text
    assert "'13/01/2020' (row 1)" in text and "dayfirst=True" in text


def test_unsorted_ambiguous_dates_say_they_were_read_month_first():
    frame = pd.DataFrame({"date": ["02/01/2020", "2020-01-14"], "close": 1.0})
    with pytest.raises(DataValidationError) as info:
        from_frame(frame)
    assert "not sorted" in message(info)
    assert "'02/01/2020' read either way and are read month first" in message(info)
    assert "dayfirst=True" in message(info)


# ------------------------------------------------------------------ mixed time zones
NY = "America/New_York"


@pytest.mark.parametrize("values", [
    ["2020-01-02 10:00", "2020-01-02 10:01-05:00", "2020-01-02 10:02-05:00"],  # naive first
    ["2020-01-02 10:00-05:00", "2020-01-02 10:01", "2020-01-02 10:02"],  # aware first
    [pd.Timestamp("2020-01-02 10:00"), pd.Timestamp("2020-01-02 10:01", tz=NY),
     dt.datetime(2020, 1, 2, 15, 2, tzinfo=dt.UTC)],  # objects
])
def test_naive_and_aware_minutes_follow_the_user_time_rule(values):
    """Naive values are the data's zone (tz=, New York by default), aware ones as given,
    whichever comes first."""
    store = from_frame(pd.DataFrame({"date": values, "close": [1.0, 2.0, 3.0]}))
    want = pd.DatetimeIndex(["2020-01-02 15:00", "2020-01-02 15:01", "2020-01-02 15:02"], tz="UTC")
    assert store.frequency == "minute" and list(store.index) == list(want)
    assert store.tz == NY


def test_naive_minutes_next_to_aware_ones_are_read_in_the_tz_given():
    frame = pd.DataFrame({"date": ["2020-07-01 10:00+00:00", "2020-07-01 11:01"], "close": [1.0, 2.0]})
    store = from_frame(frame, tz="Europe/London")  # London is UTC+1 in July
    assert list(store.index) == list(pd.DatetimeIndex(["2020-07-01 10:00", "2020-07-01 10:01"], tz="UTC"))


def test_mixed_zones_out_of_order_say_how_they_were_read():
    frame = pd.DataFrame({"date": ["2020-01-02 10:00", "2020-01-02 10:01+00:00"], "close": [1.0, 2.0]})
    with pytest.raises(DataValidationError) as info:
        from_frame(frame)
    assert "not sorted" in message(info)
    assert "mix tz-naive and tz-aware values: the naive ones are read as America/New_York time" in message(info)


def test_daily_bars_of_a_tz_aware_export_across_dst_stay_daily(tmp_path):
    """to_csv() of a tz-aware daily frame writes -05:00 and -04:00 offsets: local dates."""
    idx = pd.date_range("2020-03-02", "2020-03-13", freq="B", tz=NY)
    frame = pd.DataFrame({"close": np.arange(1.0, len(idx) + 1)}, index=idx)
    frame.to_csv(tmp_path / "yf.csv")
    for store in (load_csv(tmp_path / "yf.csv"), from_frame(pd.read_csv(tmp_path / "yf.csv", index_col=0))):
        assert store.frequency == "daily"
        assert list(store.index) == list(idx.tz_localize(None))
    naive_and_aware = pd.DataFrame({"date": ["2020-01-02", "2020-01-03T00:00:00+01:00"], "close": 1.0})
    assert list(from_frame(naive_and_aware).index) == list(pd.to_datetime(["2020-01-02", "2020-01-03"]))


def test_minute_exports_across_dst_stay_minute():
    idx = pd.date_range("2020-03-06 15:31", periods=3, freq="min", tz="UTC").append(
        pd.date_range("2020-03-09 14:31", periods=3, freq="min", tz="UTC"))
    text = [t.tz_convert(NY).isoformat() for t in idx]
    store = from_frame(pd.DataFrame({"date": text, "close": 1.0}))
    assert store.frequency == "minute" and list(store.index) == list(idx)


# --------------------------------------------------------------- values that are not prices
@pytest.mark.parametrize("column, values, kind", [
    ("close", pd.date_range("2020-01-01", periods=3), "timestamps"),
    ("close", pd.date_range("2020-01-01", periods=3, tz="UTC"), "timestamps"),
    ("close", [pd.Timestamp("2020-01-01"), 2.0, 3.0], "timestamps"),
    ("close", [dt.date(2020, 1, 1), 2.0, 3.0], "timestamps"),
    ("open", pd.to_timedelta([1, 2, 3], unit="D"), "durations"),
    ("close", pd.period_range("2020-01", periods=3, freq="M"), "periods"),
    ("close", np.array([1.5 + 0j, 2.5 + 1j, 3.5]), "complex numbers"),
    ("close", [1.5, 2.5 + 1j, 3.5], "complex numbers"),
    ("volume", np.array([1 + 0j, 2 + 1j, 3]), "complex numbers"),
    ("sig", np.array([1 + 0j, 2 + 1j, 3]), "complex numbers"),  # an extra (indicator) column
])
def test_prices_that_are_not_real_numbers_are_refused(column, values, kind):
    frame = bars(3)
    frame[column] = pd.Series(list(values) if isinstance(values, list) else values, index=frame.index,
                              dtype=object if isinstance(values, list) else None)
    with pytest.raises(DataValidationError) as info:
        from_frame(frame, "X")
    text = message(info)
    assert f"column {column!r} holds {kind}" in text
    assert "offending rows: 2024-01-0" in text and "fix:" in text
    if kind == "complex numbers":
        assert "(row 1) [1 row in total]" in text  # the row with an imaginary part


def test_a_number_beyond_float64_is_an_infinite_price_not_an_overflow():
    frame = bars(3)
    frame["close"] = pd.Series([10**400, 102.0, 103.0], index=frame.index, dtype=object)
    with pytest.raises(DataValidationError, match="infinite prices"):
        from_frame(frame, "X")


# ------------------------------------------------------------ frequency the data lacks
@pytest.mark.parametrize("make", [
    lambda daily: daily, lambda daily: daily["close"], lambda daily: {"AAPL": daily},
])
def test_minute_frequency_on_daily_frames_is_refused(make):
    daily = bars(30)
    with pytest.raises(ValueError, match=r"holds daily bars .* data_frequency='daily'"):
        run_algorithm(Quiet, data=make(daily), data_frequency="minute")
    with pytest.raises(ValueError, match="holds daily bars"):
        Backtest(Quiet, data=make(daily), data_frequency="minute")
    assert Backtest(Quiet, data=make(daily), data_frequency="daily").data_frequency == "daily"


def test_minute_frequency_on_a_daily_file_is_refused(tmp_path):
    bars(30).to_csv(tmp_path / "d.csv", index_label="date")
    with pytest.raises(ValueError, match=r"`data` \(the file .*d\.csv'\) holds daily bars"):
        Backtest(Quiet, data=tmp_path / "d.csv", data_frequency="minute")


def test_minute_frequency_on_minute_frames_still_works():
    idx = pd.date_range("2024-01-02 14:31", periods=30, freq="min", tz="UTC")
    minute = bars(30).set_axis(idx)
    assert Backtest(Quiet, data=minute, data_frequency="minute").data_frequency == "minute"
    # one asset's bars all at midnight next to a minute asset: minute data, as asked
    both = from_frames({"M": minute, "D": bars(2, start="2024-01-02")}, frequency="minute")
    assert Backtest(Quiet, data=both, data_frequency="minute").data_frequency == "minute"
