"""Saved results, through the public paths (``record`` in a strategy, ``run_algorithm``,
``BacktestResult.save`` / ``load``): every recordable value round-trips exactly, two
identical runs save identical bytes, and a bad path or a damaged folder is a clear
error from the package (never pathlib, pyarrow or json)."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rustybt_nb import BacktestResult, TradingAlgorithm, run_algorithm
from rustybt_nb.finance.execution import BracketOrder, MarketOrder

ROOT = Path(__file__).resolve().parents[1]


class Color(enum.Enum):
    RED = 1


class Thing:  # a default repr, with a memory address
    pass


# one value per bar (i = 1, 2, ...): every kind of value record() takes
RECORDABLE = {
    "int": lambda i: i,
    "float": lambda i: i * 0.5,
    "nan_and_inf": lambda i: [float("nan"), float("inf"), -float("inf")][i % 3],
    "bool": lambda i: i % 2 == 0,
    "numpy_numbers": lambda i: [np.int32(i), np.float32(i), np.uint64(2**64 - 1)][i % 3],
    "numpy_bool": lambda i: np.bool_(i % 2),
    "float16": lambda i: np.float16(i + 0.5),
    "longdouble": lambda i: np.longdouble(i + 0.25),
    "big_int": lambda i: 10**20 + i,
    "str": lambda i: f"s{i}",
    "str_with_nul": lambda i: "a\x00b",
    "lone_surrogate": lambda i: "bad \ud800 text",
    "none": lambda i: None,
    "none_then_number": lambda i: None if i < 3 else i,
    "timestamp": lambda i: pd.Timestamp("2020-01-01") + pd.Timedelta(days=i),
    "timestamp_aware": lambda i: pd.Timestamp("2020-01-01", tz="America/New_York") + pd.Timedelta(hours=i),
    "timestamp_ns": lambda i: pd.Timestamp("2020-01-01 10:00:00.000000001"),
    "datetime": lambda i: dt.datetime(2020, 1, 1, 10, i),
    "datetime_aware": lambda i: dt.datetime(2020, 1, 1, 10, i, tzinfo=dt.UTC),
    "date": lambda i: dt.date(2020, 1, i),
    "date_year_1": lambda i: dt.date(1, 1, 1),
    "numpy_datetime64": lambda i: np.datetime64("2020-01-01") + np.timedelta64(i, "D"),
    "nat": lambda i: pd.NaT,
    "nat_then_number": lambda i: pd.NaT if i < 4 else i,
    "number_then_nat": lambda i: i if i < 4 else pd.NaT,
    "mixed_zones": lambda i: pd.Timestamp("2020-01-01", tz="UTC" if i % 2 else None),
    "mixed_kinds": lambda i: [1, "x", 2.5, None, pd.Timestamp("2020-01-02"), True][i % 6],
    "timedelta": lambda i: dt.timedelta(days=i),
    "decimal": lambda i: decimal.Decimal("1.5"),
    "list": lambda i: [i, "a", {"b": (1,)}],
    "set": lambda i: {"alpha", "beta", "gamma", i},
    "dict": lambda i: {"a": i, "b": [1, 2]},
    "enum": lambda i: Color.RED,
    "object": lambda i: Thing(),
    "array": lambda i: np.arange(3),
    "frame": lambda i: pd.DataFrame({"a": [i]}),
    "bytes": lambda i: b"\x00\xff",
    "period": lambda i: pd.Period("2020-01"),
    "tuple_with_list": lambda i: ([i, i], [i, i]),
    "pd_na": lambda i: pd.NA,
}


def _recording(name: str, make) -> type[TradingAlgorithm]:
    class Recorder(TradingAlgorithm):
        def initialize(self, context):
            context.i = 0

        def handle_data(self, context, data):
            context.i += 1
            if context.i >= 2:  # nothing recorded in the first session: NaN / NaT before
                self.record(**{name: make(context.i)})

    return Recorder


def _run(strategy: type[TradingAlgorithm]):
    return run_algorithm(strategy, data="AAPL", start="2012-01-03", end="2012-01-20")


@pytest.mark.parametrize("name", list(RECORDABLE))
def test_every_recordable_value_round_trips_exactly(tmp_path, name):
    res = _run(_recording(name, RECORDABLE[name]))
    column = res.perf[name]
    loaded = BacktestResult.load(res.save(tmp_path / "r"))
    pd.testing.assert_series_equal(loaded.perf[name], column, check_exact=True)
    assert loaded.equals(res)
    assert BacktestResult.load(loaded.save(tmp_path / "again")).equals(res)


def test_how_recorded_values_are_kept():
    kinds = {name: _run(_recording(name, RECORDABLE[name])).perf[name] for name in
             ("float16", "longdouble", "date", "numpy_datetime64", "set", "object", "lone_surrogate", "list")}
    assert kinds["float16"].dtype == np.float64 and kinds["float16"].iloc[-1] == 13.5
    assert kinds["longdouble"].dtype == np.float64
    assert kinds["date"].dtype.kind == "M" and kinds["date"].iloc[-1] == pd.Timestamp("2020-01-13")
    assert kinds["numpy_datetime64"].dtype.kind == "M"
    assert kinds["set"].iloc[-1] == "{'alpha', 'beta', 'gamma', 13}"  # sorted: the same text in every run
    assert kinds["object"].iloc[-1].endswith(".Thing object>")  # no memory address
    assert kinds["lone_surrogate"].iloc[-1] == "bad \\ud800 text"
    assert kinds["list"].iloc[-1] == "[13, 'a', {'b': (1,)}]"


def test_a_complex_number_is_refused_by_record_or_kept_as_text(tmp_path):
    """record() may refuse complex numbers (a number that cannot be plotted); if it takes
    one, the result keeps its text and saves it like any other value."""
    strategy = _recording("z", lambda i: complex(i, 1))
    try:
        res = _run(strategy)
    except TypeError as exc:
        assert "complex" in str(exc) and "z" in str(exc)
        return
    assert res.perf["z"].iloc[-1] == "(13+1j)"
    assert BacktestResult.load(res.save(tmp_path)).equals(res)


# ----------------------------------------------------------------------- identical bytes
class Busy(TradingAlgorithm):
    """Orders, brackets, logs, and records of every awkward kind."""

    def initialize(self, context):
        context.asset = self.symbol("AAPL")
        context.i = 0

    def handle_data(self, context, data):
        context.i += 1
        price = data.current(context.asset, "close")
        self.record(price=price, label=f"bar{context.i}", thing=Thing(), tags={"x", "y", "z"},
                    when=dt.date(2012, 1, 1))
        if context.i % 7 == 1:
            self.order(context.asset, 10, style=BracketOrder(entry_style=MarketOrder(), stop_loss_price=price * 0.97,
                                                             take_profit_price=price * 1.03))


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_two_identical_runs_save_identical_bytes(tmp_path):
    first = run_algorithm(Busy, data="AAPL", start="2012-01-03", end="2012-06-29")
    second = run_algorithm(Busy, data="AAPL", start="2012-01-03", end="2012-06-29")
    a, b = _files(first.save(tmp_path / "a")), _files(second.save(tmp_path / "b"))
    assert list(a) == ["fills.parquet", "indicators.parquet", "logs.parquet", "meta.json", "metrics.parquet",
                       "order_events.parquet", "orders.parquet", "perf.parquet", "positions.parquet", "prices.parquet",
                       "trades.parquet"]
    assert [name for name in a if a[name] != b[name]] == []


def test_wall_clock_figures_are_not_saved(tmp_path):
    res = run_algorithm(Busy, data="AAPL", start="2012-01-03", end="2012-02-29")
    assert {"wall_seconds", "bars_per_second"} <= set(res.run_info)
    folder = res.save(tmp_path)
    meta = json.loads((folder / "meta.json").read_text())
    assert "wall_seconds" not in meta["run_info"] and "bars_per_second" not in meta["run_info"]
    loaded = BacktestResult.load(folder)
    assert loaded.run_info == {k: v for k, v in res.run_info.items() if k not in ("wall_seconds", "bars_per_second")}
    assert loaded.equals(res)


_SCRIPT = textwrap.dedent("""
    import sys
    from rustybt_nb import TradingAlgorithm, run_algorithm

    class Thing:
        pass

    class Rec(TradingAlgorithm):
        params = {"tag": {"b", "a", "c", "d"}}

        def handle_data(self, context, data):
            self.record(s={"beta", "alpha", "gamma", "delta"}, f=frozenset({"q", "r", "s"}), o=Thing(),
                        nested=[{"k": {"m", "n", "o"}}])

    run_algorithm(Rec, data="AAPL", start="2012-01-03", end="2012-02-10").save(sys.argv[1])
""")


def test_saves_are_identical_across_processes_and_hash_seeds(tmp_path):
    """Set order and memory addresses change from process to process: neither reaches the files."""
    for seed, name in (("1", "a"), ("2", "b")):
        env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=str(ROOT))
        subprocess.run([sys.executable, "-c", _SCRIPT, str(tmp_path / name)], check=True, env=env, cwd=ROOT,
                       capture_output=True, timeout=300)
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert [name for name in a if a[name] != b[name]] == []
    loaded = BacktestResult.load(tmp_path / "a")
    assert loaded.perf["s"].iloc[-1] == "{'alpha', 'beta', 'delta', 'gamma'}"
    assert loaded.settings["params"]["tag"] == "{'a', 'b', 'c', 'd'}"


# ----------------------------------------------------------------------- bad paths
@pytest.fixture(scope="module")
def result():
    return run_algorithm(Busy, data="AAPL", start="2012-01-03", end="2012-02-29")


def test_saving_onto_a_file_or_under_one_is_refused(tmp_path, result):
    (tmp_path / "taken").write_text("x")
    with pytest.raises(FileExistsError, match="is a file; save\\(\\) writes a folder") as info:
        result.save(tmp_path / "taken")
    assert "taken_result" in str(info.value)
    assert (tmp_path / "taken").read_text() == "x"
    with pytest.raises(NotADirectoryError, match=r"cannot save the result to .*taken/sub.*pass another `path`"):
        result.save(tmp_path / "taken" / "sub")
    for bad in (None, 3, ["a"]):
        with pytest.raises(TypeError, match="`path` must be a folder path"):
            result.save(bad)
    with pytest.raises(ValueError, match="`path`='' is empty"):
        result.save("")


def test_saving_again_replaces_the_result(tmp_path, result):
    other = run_algorithm(Busy, data="AAPL", start="2012-03-01", end="2012-03-30")
    result.save(tmp_path / "r")
    other.save(tmp_path / "r")
    assert BacktestResult.load(tmp_path / "r").equals(other)
    assert not (tmp_path / "r" / "meta.json.partial").exists()


def test_a_save_that_fails_half_way_leaves_a_folder_load_refuses(tmp_path, result):
    folder = result.save(tmp_path / "r")
    (folder / "positions.parquet").unlink()
    (folder / "positions.parquet").mkdir()  # the next save cannot write this frame
    with pytest.raises(OSError, match=r"cannot write .*positions.parquet"):
        result.save(folder)
    with pytest.raises(FileNotFoundError, match=r"meta.json not found"):
        BacktestResult.load(folder)


def test_loading_a_path_that_is_not_a_saved_result(tmp_path, result):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        BacktestResult.load(tmp_path / "nothing-here")
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileNotFoundError, match="is a file, not a folder"):
        BacktestResult.load(tmp_path / "file")
    with pytest.raises(FileNotFoundError, match=r"meta.json not found"):
        BacktestResult.load(tmp_path)
    with pytest.raises(TypeError, match="`path` must be a folder path"):
        BacktestResult.load(None)


def _damaged(tmp_path, result, name: str) -> Path:
    folder = result.save(tmp_path / name)
    return folder


@pytest.mark.parametrize("content, error, text", [
    ('{"format": "rustybt_nb.Backt', ValueError, "is not valid JSON"),
    (b"\xff\xfe\x00\x01", ValueError, "is not UTF-8 text"),
    ("[1, 2]", ValueError, "does not describe a saved BacktestResult"),
    ('{"format": "rustybt_nb.BacktestResult", "version": 1}', ValueError, "'settings', 'run_info' missing"),
    ('{"format": "rustybt_nb.BacktestResult", "version": 9, "settings": {}, "run_info": {}}', ValueError,
     "format version 9"),
])
def test_a_corrupt_meta_json(tmp_path, result, content, error, text):
    folder = result.save(tmp_path / "r")
    meta = folder / "meta.json"
    meta.write_bytes(content) if isinstance(content, bytes) else meta.write_text(content)
    with pytest.raises(error, match=text) as info:
        BacktestResult.load(folder)
    assert "meta.json" in str(info.value)


def test_a_folder_missing_frames(tmp_path, result):
    folder = result.save(tmp_path / "r")
    (folder / "orders.parquet").unlink()
    (folder / "metrics.parquet").unlink()
    with pytest.raises(FileNotFoundError, match=r"lacks orders.parquet, metrics.parquet"):
        BacktestResult.load(folder)


@pytest.mark.parametrize("frame", ["perf", "fills", "metrics"])
def test_a_damaged_frame(tmp_path, result, frame):
    folder = result.save(tmp_path / "r")
    data = (folder / f"{frame}.parquet").read_bytes()
    (folder / f"{frame}.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=f"{frame}.parquet' is damaged: it cannot be read as Parquet"):
        BacktestResult.load(folder)


def test_a_damaged_json_column(tmp_path, result):
    folder = result.save(tmp_path / "r")
    orders = pd.read_parquet(folder / "orders.parquet")
    orders["tag"] = "not json {"
    orders.to_parquet(folder / "orders.parquet")
    with pytest.raises(ValueError, match=r"orders.parquet' is damaged: its column"):
        BacktestResult.load(folder)
