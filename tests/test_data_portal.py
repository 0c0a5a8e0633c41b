"""``data`` as a strategy sees it: ``current``, ``history``, ``can_trade``, ``is_stale``.

Every check runs inside a real backtest (``run_algorithm``) and compares what ``data``
returns with the input frames, bar by bar, so look-ahead would show up as a mismatch.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from rustybt_nb import run_algorithm
from rustybt_nb.data import from_frame, from_frames, load_sample

OHLCV = ["open", "high", "low", "close", "volume"]
NY = "America/New_York"


# ------------------------------------------------------------------ factories
def frame(n=12, start="2021-01-04", base=100.0, step=1.0):
    """Daily OHLCV with distinct values per field and a precomputed 3-bar ``sma``."""
    idx = pd.date_range(start, periods=n, freq="B")
    close = base + step * np.arange(n)
    df = pd.DataFrame({
        "open": close - 0.25,
        "high": close + 1.5,
        "low": close - 1.75,
        "close": close,
        "volume": 1000.0 + 10 * np.arange(n),
    }, index=idx)
    df["sma"] = df["close"].rolling(3).mean()
    return df


def run_probe(store, probe, **kw):
    """Run ``probe(context, data, assets)`` at every bar; return what it appended to ``out``."""
    out = []

    def initialize(context):
        context.assets = [context.symbol(s) for s in store.symbols]

    def handle_data(context, data):
        probe(context, data, context.assets, out)

    run_algorithm(initialize=initialize, handle_data=handle_data, data=store, **kw)
    return out


def same(a, b):
    """Equality that treats NaN as equal to NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


@pytest.fixture(scope="module")
def single():
    df = frame()
    return df, from_frame(df, symbol="X")


@pytest.fixture(scope="module")
def staggered():
    """A runs on all 10 bars; B starts at bar 3 and misses bar 6; C stops after bar 7."""
    a = frame(10)
    b = frame(10, base=50.0, step=2.0).iloc[3:].drop(index=a.index[6])
    c = frame(10, base=20.0).iloc[:8]
    frames = {"A": a, "B": b, "C": c}
    return frames, from_frames(frames)


@pytest.fixture(scope="module")
def minute_nov():
    return load_sample("AAPL", frequency="minute", start="2012-11-19", end="2012-11-30")


# ------------------------------------------------------------------ current
def test_current_every_field_matches_the_bar(single):
    df, store = single
    fields = [*OHLCV, "price", "sma"]

    def probe(context, data, assets, out):
        out.append((data.current_dt, {f: data.current(assets[0], f) for f in fields}))

    rows = run_probe(store, probe)
    assert [dt for dt, _ in rows] == list(df.index)
    for dt, got in rows:
        want = df.loc[dt]
        for f in [*OHLCV, "sma"]:
            assert same(float(got[f]), float(want[f])), (dt, f)
        assert got["price"] == want["close"]


def test_current_extra_column_is_nan_before_the_indicator_is_defined(single):
    df, store = single

    def probe(context, data, assets, out):
        out.append(data.current(assets[0], "sma"))

    got = run_probe(store, probe)
    assert math.isnan(got[0]) and math.isnan(got[1])
    assert got[2] == pytest.approx((100 + 101 + 102) / 3)
    assert got[-1] == pytest.approx(df["sma"].iloc[-1])


def test_current_last_traded_is_the_last_bar_with_a_close(staggered):
    frames, store = staggered
    a = frames["A"]

    def probe(context, data, assets, out):
        out.append((data.current_dt, data.current(assets[1], "last_traded"),
                    data.current(assets[0], "last_traded")))

    rows = run_probe(store, probe)
    for dt, _, a_last in rows:
        assert a_last == dt
    by_dt = {dt: b_last for dt, b_last, _ in rows}
    idx = a.index
    assert by_dt[idx[0]] is pd.NaT  # B has not traded yet
    assert by_dt[idx[3]] == idx[3]
    assert by_dt[idx[6]] == idx[5]  # missing bar: the previous one
    assert by_dt[idx[7]] == idx[7]


def test_current_list_shapes(staggered):
    frames, store = staggered
    a, b = frames["A"], frames["B"]
    t = a.index[4]

    def probe(context, data, assets, out):
        if data.current_dt == t:
            xa, xb = assets[0], assets[1]
            out.append((xa, xb, data.current([xa, xb], "close"), data.current(xa, ["open", "close"]),
                        data.current([xa, xb], ["open", "close", "price"])))

    [(xa, xb, by_asset, by_field, both)] = run_probe(store, probe)
    assert isinstance(by_asset, pd.Series)
    assert list(by_asset.index) == [xa, xb] and by_asset.name == "close"
    assert by_asset[xa] == a.loc[t, "close"] and by_asset[xb] == b.loc[t, "close"]
    assert isinstance(by_field, pd.Series)
    assert list(by_field.index) == ["open", "close"] and by_field.name == xa
    assert by_field["open"] == a.loc[t, "open"]
    assert isinstance(both, pd.DataFrame)
    assert list(both.index) == [xa, xb] and list(both.columns) == ["open", "close", "price"]
    assert both.loc[xb, "open"] == b.loc[t, "open"]
    assert both.loc[xa, "price"] == a.loc[t, "close"]


def test_current_accepts_a_symbol_string(single):
    df, store = single

    def probe(context, data, assets, out):
        out.append(data.current("X", "close"))

    assert run_probe(store, probe) == list(df["close"])


def test_unknown_field_lists_the_fields_and_suggests_a_near_match(single):
    _, store = single

    def probe(context, data, assets, out):
        if out:
            return
        for call in (lambda: data.current(assets[0], "clsoe"),
                     lambda: data.current(assets[0], ["close", "clsoe"]),
                     lambda: data.history(assets[0], "clsoe", 3, "1d")):
            with pytest.raises(ValueError) as info:
                call()
            out.append(str(info.value))

    messages = run_probe(store, probe)
    assert len(messages) == 3
    for msg in messages:
        assert "'clsoe'" in msg
        for f in ("open", "high", "low", "close", "volume", "price", "sma", "last_traded"):
            assert f"'{f}'" in msg
        assert "Did you mean 'close'" in msg


# ------------------------------------------------------------------ history, daily
def test_history_series_ends_at_the_current_bar_at_every_bar(single):
    df, store = single

    def probe(context, data, assets, out):
        out.append((data.current_dt, data.current(assets[0], "close"),
                    data.history(assets[0], "close", 4, "1d"), assets[0],
                    {n: data.history(assets[0], "close", n, "1d") for n in (1, 2, 7, 50)}))

    rows = run_probe(store, probe)
    for i, (dt, close, hist, asset, others) in enumerate(rows):
        for n, h in others.items():
            assert list(h.index) == list(df.index[max(0, i - n + 1):i + 1]), n
        assert isinstance(hist, pd.Series)
        assert hist.name == asset
        assert isinstance(hist.index, pd.DatetimeIndex)
        assert hist.index[-1] == dt and hist.index.max() <= dt
        assert hist.iloc[-1] == close  # the current close, never a later one
        lo = max(0, i - 3)
        assert list(hist.index) == list(df.index[lo:i + 1])
        assert hist.tolist() == df["close"].iloc[lo:i + 1].tolist()


def test_history_has_fewer_rows_at_the_start_of_the_data(single):
    _, store = single

    def probe(context, data, assets, out):
        out.append(len(data.history(assets[0], "close", 5, "1d")))

    assert run_probe(store, probe)[:7] == [1, 2, 3, 4, 5, 5, 5]


def test_history_sees_bars_before_the_start_of_the_run(single):
    df, store = single

    def probe(context, data, assets, out):
        out.append((data.current_dt, data.history(assets[0], ["close", "sma"], 5, "1d")))

    rows = run_probe(store, probe, start=df.index[6])
    first_dt, hist = rows[0]
    assert first_dt == df.index[6]
    assert list(hist.index) == list(df.index[2:7])
    assert hist["close"].tolist() == df["close"].iloc[2:7].tolist()
    np.testing.assert_allclose(hist["sma"].to_numpy(), df["sma"].iloc[2:7].to_numpy())


def test_history_list_shapes(staggered):
    frames, store = staggered
    a, b = frames["A"], frames["B"]
    i = 5
    t = a.index[i]

    def probe(context, data, assets, out):
        if data.current_dt == t:
            xa, xb = assets[0], assets[1]
            out.append((xa, xb, data.history([xa, xb], "close", 3, "1d"),
                        data.history(xa, ["open", "volume"], 3, "1d"),
                        data.history([xa, xb], ["open", "close"], 3, "1d")))

    [(xa, xb, by_asset, by_field, both)] = run_probe(store, probe)
    window = a.index[i - 2:i + 1]

    assert isinstance(by_asset, pd.DataFrame)
    assert list(by_asset.columns) == [xa, xb] and list(by_asset.index) == list(window)
    assert by_asset[xa].tolist() == a.loc[window, "close"].tolist()
    assert by_asset[xb].tolist() == b.loc[window, "close"].tolist()

    assert isinstance(by_field, pd.DataFrame)
    assert list(by_field.columns) == ["open", "volume"] and list(by_field.index) == list(window)
    assert by_field["volume"].tolist() == a.loc[window, "volume"].tolist()

    assert isinstance(both, pd.DataFrame)
    assert isinstance(both.index, pd.MultiIndex) and both.index.nlevels == 2
    assert list(both.columns) == ["open", "close"]
    assert list(both.index) == [(d, s) for d in window for s in (xa, xb)]
    for d in window:
        assert both.loc[(d, xa), "open"] == a.loc[d, "open"]
        assert both.loc[(d, xb), "close"] == b.loc[d, "close"]


def test_minute_history_on_daily_data_is_a_clear_error(single):
    _, store = single

    def probe(context, data, assets, out):
        if not out:
            with pytest.raises(ValueError) as info:
                data.history(assets[0], "close", 3, "1m")
            out.append(str(info.value))

    [msg] = run_probe(store, probe)
    assert "'1m'" in msg and "minute" in msg and "daily" in msg


def test_history_argument_errors(single):
    _, store = single

    def probe(context, data, assets, out):
        if out:
            return
        with pytest.raises(ValueError, match="bar_count"):
            data.history(assets[0], "close", 0, "1d")
        with pytest.raises(TypeError, match="bar_count"):
            data.history(assets[0], "close", 2.5, "1d")
        with pytest.raises(ValueError, match="frequency"):
            data.history(assets[0], "close", 2, "1w")
        with pytest.raises(ValueError, match="last_traded"):
            data.history(assets[0], "last_traded", 2, "1d")
        out.append(True)

    assert run_probe(store, probe) == [True]


def test_history_frames_belong_to_the_caller(single):
    df, store = single

    def probe(context, data, assets, out):
        frame_ = data.history([assets[0]], "close", 3, "1d")
        frame_.iloc[-1, 0] = -1.0
        by_symbol = data.history("X", "close", 3, "1d")
        by_symbol.iloc[-1] = -1.0
        fields = data.history(assets[0], ["close", "open"], 3, "1d")  # one block shared by the columns
        fields.iloc[-1, :] = -1.0
        now = data.current(assets[0], ["close", "open"])
        now.iloc[:] = -1.0
        again = data.history(assets[0], ["close", "open"], 3, "1d")
        out.append((data.current(assets[0], "close"), again.iloc[-1, 0], data.current(assets[0], ["close"]).iloc[0]))

    rows = run_probe(store, probe)  # the data itself is untouched
    assert [r[0] for r in rows] == [r[1] for r in rows] == [r[2] for r in rows] == df["close"].tolist()


def test_a_field_named_twice_is_one_column(single):
    df, store = single

    def probe(context, data, assets, out):
        frame_ = data.history(assets[0], ["close", "open", "close"], 2, "1d")
        now = data.current(assets[0], ["close", "open", "close"])
        out.append((frame_.columns.tolist(), frame_["close"].iloc[-1], now.index.tolist(), now["close"]))

    rows = run_probe(store, probe)
    assert {(tuple(r[0]), tuple(r[2])) for r in rows} == {(("close", "open"), ("close", "open"))}
    assert [r[1] for r in rows] == [r[3] for r in rows] == df["close"].tolist()


def test_lists_of_assets_named_twice(staggered):
    """history and can_trade give each asset one column/entry; current keeps the list as given."""
    _, store = staggered

    def probe(context, data, assets, out):
        xa, xb = assets[0], assets[1]
        out.append((data.history([xa, xb, xa], "close", 2, "1d").columns.tolist(),
                    data.can_trade([xa, xb, xa]).index.tolist(), data.current([xa, xb, xa], "close").index.tolist()))

    rows = run_probe(store, probe)
    assert {tuple(map(tuple, r)) for r in rows} == {(("A", "B"), ("A", "B"), ("A", "B", "A"))}


def test_single_asset_history_series_can_be_modified_like_any_series(single):
    df, store = single

    def probe(context, data, assets, out):
        prices = data.history(assets[0], "close", 3, "1d")
        prices.iloc[-1] = -1.0  # e.g. a user patching a value before computing with it
        prices.fillna(0.0, inplace=True)
        out.append((prices.iloc[-1], data.current(assets[0], "close")))

    rows = run_probe(store, probe)
    assert [r[0] for r in rows] == [-1.0] * len(df)
    assert [r[1] for r in rows] == df["close"].tolist()


# ------------------------------------------------------------------ history, minute
def test_minute_daily_history_aggregates_completed_sessions_and_today_so_far(minute_nov):
    bars = minute_nov.to_frame("AAPL")
    now = pd.Timestamp("2012-11-21 11:00", tz=NY).tz_convert("UTC")
    fields = ["open", "high", "low", "close", "volume"]

    def probe(context, data, assets, out):
        if data.current_dt == now:
            out.append((data.history(assets[0], fields, 3, "1d"), data.history(assets[0], "close", 3, "1d"),
                        data.current(assets[0], "close")))

    [(hist, closes, current_close)] = run_probe(minute_nov, probe)
    local_day = bars.index.tz_convert(NY).normalize().tz_localize(None)
    days = [pd.Timestamp(d) for d in ("2012-11-19", "2012-11-20", "2012-11-21")]
    assert [pd.Timestamp(d).normalize() for d in hist.index] == days
    for d, (_, row) in zip(days, hist.iterrows()):
        part = bars[(local_day == d) & (bars.index <= now)]
        assert row["open"] == part["open"].iloc[0]
        assert row["high"] == part["high"].max()
        assert row["low"] == part["low"].min()
        assert row["close"] == part["close"].iloc[-1]
        assert row["volume"] == part["volume"].sum()
    # today's row stops at the current bar: its high is not the full session's
    today_full = bars[local_day == days[-1]]
    assert hist["high"].iloc[-1] <= today_full["high"].max()
    assert len(bars[(local_day == days[-1]) & (bars.index <= now)]) == 90
    assert closes.iloc[-1] == current_close
    assert closes.name == minute_nov.assets[0]


def test_minute_daily_history_every_minute_matches_a_pandas_resample(minute_nov):
    """'1d' windows read at every minute of several sessions (the engine reuses one index
    per session) equal a pandas aggregation of the minutes so far, for several lengths."""
    bars = minute_nov.to_frame("AAPL")
    local_day = bars.index.tz_convert(NY).normalize().tz_localize(None)

    def probe(context, data, assets, out):
        now = data.current_dt
        if now.minute % 37:  # a sample of minutes, including the first and last of sessions
            return
        for n in (1, 3):
            got = data.history(assets[0], "close", n, "1d")
            seen = bars[bars.index <= now]
            want = seen["close"].groupby(local_day[: len(seen)]).last().iloc[-n:]
            assert list(got.index.normalize()) == list(want.index), now
            np.testing.assert_array_equal(got.to_numpy(), want.to_numpy())
            assert got.name == assets[0]
        out.append(now)

    checked = run_probe(minute_nov, probe)
    assert len({t.tz_convert(NY).date() for t in checked}) >= 5 and len(checked) > 50


def test_minute_history_1m_ends_at_the_current_minute_and_crosses_sessions(minute_nov):
    bars = minute_nov.to_frame("AAPL")
    first_of_day2 = pd.Timestamp("2012-11-20 09:31", tz=NY).tz_convert("UTC")
    checks = {first_of_day2, pd.Timestamp("2012-11-20 10:00", tz=NY).tz_convert("UTC")}

    def probe(context, data, assets, out):
        if data.current_dt in checks:
            out.append((data.current_dt, data.history(assets[0], "close", 3, "1m"),
                        data.history(assets[0], ["high", "volume"], 2, "1m")))

    rows = run_probe(minute_nov, probe)
    assert len(rows) == 2
    for now, hist, multi in rows:
        pos = bars.index.get_loc(now)
        assert list(hist.index) == list(bars.index[pos - 2:pos + 1])
        assert hist.tolist() == bars["close"].iloc[pos - 2:pos + 1].tolist()
        assert hist.index[-1] == now
        assert list(multi.columns) == ["high", "volume"]
        assert multi["volume"].tolist() == bars["volume"].iloc[pos - 1:pos + 1].tolist()
    # at the first minute of a session the window reaches back into the previous one
    crossing = rows[0][1]
    assert crossing.index[0] == pd.Timestamp("2012-11-19 15:59", tz=NY).tz_convert("UTC")


# ------------------------------------------------------------------ multi-asset alignment
def test_missing_bars_are_nan_with_zero_volume_and_price_carried_forward(staggered):
    frames, store = staggered
    a, b = frames["A"], frames["B"]
    idx = a.index

    def probe(context, data, assets, out):
        xb = assets[1]
        out.append({f: data.current(xb, f) for f in [*OHLCV, "price"]})

    rows = run_probe(store, probe)
    for i in (0, 1, 2, 6):  # B has no bar
        for f in ("open", "high", "low", "close"):
            assert math.isnan(rows[i][f]), (i, f)
        assert rows[i]["volume"] == 0.0
    assert all(math.isnan(rows[i]["price"]) for i in (0, 1, 2))  # never traded: no price
    assert rows[6]["price"] == b.loc[idx[5], "close"]  # carried forward over the hole
    assert rows[7]["close"] == b.loc[idx[7], "close"] and rows[7]["volume"] == b.loc[idx[7], "volume"]


def test_can_trade_and_is_stale(staggered):
    _, store = staggered

    def probe(context, data, assets, out):
        out.append(([data.can_trade(x) for x in assets], [data.is_stale(x) for x in assets],
                    data.can_trade(assets), data.is_stale(assets)))

    rows = run_probe(store, probe)
    can = [r[0] for r in rows]
    stale = [r[1] for r in rows]
    assert [x[0] for x in can] == [True] * 10
    assert [x[1] for x in can] == [False, False, False, True, True, True, True, True, True, True]
    assert [x[2] for x in can] == [True] * 8 + [False, False]  # C stops after bar 7
    assert [x[0] for x in stale] == [False] * 10
    assert [x[1] for x in stale] == [False] * 6 + [True] + [False] * 3
    assert [x[2] for x in stale] == [False] * 8 + [True, True]
    series_can, series_stale = rows[6][2], rows[6][3]
    assert isinstance(series_can, pd.Series) and series_can.tolist() == [True, True, True]
    assert series_stale.tolist() == [False, True, False]
    assert all(isinstance(v, bool) for v in can[0] + stale[0])


def test_history_of_a_late_starting_asset_is_nan_before_its_first_bar(staggered):
    _, store = staggered

    def probe(context, data, assets, out):
        out.append(data.history(assets[1], ["close", "volume"], 5, "1d"))

    hist = run_probe(store, probe)[4]
    assert hist["close"].isna().tolist() == [True, True, True, False, False]
    assert hist["volume"].tolist()[:3] == [0.0, 0.0, 0.0]
