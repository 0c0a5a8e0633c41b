"""``schedule_function`` date and time rules, checked against exact timestamps.

Every test runs a real backtest and collects the simulation time at which the scheduled
function ran (``context.get_datetime()`` and ``data.current_dt``, which must agree).
Daily checks use the real AAPL sample on XNYS sessions of Q1 2012 (holidays: Mon 2 Jan,
Mon 16 Jan, Mon 20 Feb); minute checks use the synthetic AAPL minute sample of
19..30 Nov 2012 (Thanksgiving Thu 22 Nov closed, Fri 23 Nov early close at 13:00 NY).
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from rustybt_nb import TradingAlgorithm, run_algorithm
from rustybt_nb.api import date_rules, schedule_function, time_rules
from rustybt_nb.data import load_sample

NY = "America/New_York"
MINUTE_SESSIONS = ["2012-11-19", "2012-11-20", "2012-11-21", "2012-11-23", "2012-11-26", "2012-11-27",
                   "2012-11-28", "2012-11-29", "2012-11-30"]
EARLY_CLOSE = "2012-11-23"


@pytest.fixture(scope="module")
def daily_q1():
    return load_sample("AAPL", start="2012-01-03", end="2012-03-30")


@pytest.fixture(scope="module")
def minute_nov():
    return load_sample("AAPL", frequency="minute", start="2012-11-19", end="2012-11-30")


def days(*labels):
    return [pd.Timestamp(x) for x in labels]


def ny(day, hhmm):
    """The UTC timestamp of ``hhmm`` New York time on ``day``."""
    return pd.Timestamp(f"{day} {hhmm}", tz=NY).tz_convert("UTC")


class Collect(TradingAlgorithm):
    """Schedules every rule of ``self.params.rules`` ({tag: (date_rule, time_rule | None,
    schedule kwargs)}) and records each firing time under its tag, checking that the two
    clocks agree. One run serves many rules (building an exchange calendar is the slow
    part of a run)."""

    params = {"rules": {}, "out": None}

    def initialize(self, context):
        context.hits = self.params.out
        for tag, (date_rule, time_rule, kw) in self.params.rules.items():
            context.hits[tag] = []
            self.schedule_function(self._recorder(tag), date_rule, time_rule, **kw)

    @staticmethod
    def _recorder(tag):
        def hit(context, data):
            now = context.get_datetime()
            assert now == data.current_dt
            context.hits[tag].append(now)

        return hit


def fire_times(store, rules, **run_kw):
    """{tag: [firing times]} for ``rules`` = {tag: (date_rule, time_rule, kwargs)}."""
    out = {}
    run_algorithm(Collect, data=store, rules=rules, out=out, **run_kw)
    return out


def fired(store, date_rule, time_rule=None, **kw):
    """Firing times of one scheduled function (``kw`` goes to schedule_function)."""
    return fire_times(store, {"one": (date_rule, time_rule, kw)})["one"]


def fired_between(store, date_rule, start=None, end=None):
    return fire_times(store, {"one": (date_rule, None, {})}, start=start, end=end)["one"]


# ------------------------------------------------------------------ date rules, daily
DAILY_EXPECTED = {
    "week_start": (date_rules.week_start, {}, days(
        "2012-01-03", "2012-01-09", "2012-01-17", "2012-01-23", "2012-01-30", "2012-02-06", "2012-02-13",
        "2012-02-21", "2012-02-27", "2012-03-05", "2012-03-12", "2012-03-19", "2012-03-26")),
    "week_start+1": (date_rules.week_start, {"days_offset": 1}, days(
        "2012-01-04", "2012-01-10", "2012-01-18", "2012-01-24", "2012-01-31", "2012-02-07", "2012-02-14",
        "2012-02-22", "2012-02-28", "2012-03-06", "2012-03-13", "2012-03-20", "2012-03-27")),
    "week_end": (date_rules.week_end, {}, days(
        "2012-01-06", "2012-01-13", "2012-01-20", "2012-01-27", "2012-02-03", "2012-02-10", "2012-02-17",
        "2012-02-24", "2012-03-02", "2012-03-09", "2012-03-16", "2012-03-23", "2012-03-30")),
    "week_end+1": (date_rules.week_end, {"days_offset": 1}, days(
        "2012-01-05", "2012-01-12", "2012-01-19", "2012-01-26", "2012-02-02", "2012-02-09", "2012-02-16",
        "2012-02-23", "2012-03-01", "2012-03-08", "2012-03-15", "2012-03-22", "2012-03-29")),
    "month_start": (date_rules.month_start, {}, days("2012-01-03", "2012-02-01", "2012-03-01")),
    "month_start+2": (date_rules.month_start, {"days_offset": 2}, days("2012-01-05", "2012-02-03", "2012-03-05")),
    "month_end": (date_rules.month_end, {}, days("2012-01-31", "2012-02-29", "2012-03-30")),
    "month_end+1": (date_rules.month_end, {"days_offset": 1}, days("2012-01-30", "2012-02-28", "2012-03-29")),
}


DAILY_WITH_TIME_RULES = {
    "month_end@every_minute": (date_rules.month_end(), time_rules.every_minute(), {}),
    "month_end@market_close(30)": (date_rules.month_end(), time_rules.market_close(minutes=30), {}),
    "week_end@market_open(60)": (date_rules.week_end(), time_rules.market_open(minutes=60), {}),
}


@pytest.fixture(scope="module")
def daily_hits(daily_q1):
    rules = {case: (factory(**kw), None, {}) for case, (factory, kw, _) in DAILY_EXPECTED.items()}
    rules["every_day"] = (date_rules.every_day(), None, {})
    rules.update(DAILY_WITH_TIME_RULES)
    return fire_times(daily_q1, rules)


@pytest.mark.parametrize("case", sorted(DAILY_EXPECTED))
def test_date_rules_daily_fire_on_exact_sessions(daily_hits, case):
    assert daily_hits[case] == DAILY_EXPECTED[case][2]


def test_date_rule_alone_gives_the_same_sessions_as_in_a_shared_run(daily_q1, daily_hits):
    assert fired(daily_q1, date_rules.week_start()) == daily_hits["week_start"]


def test_every_day_daily_fires_on_every_session(daily_q1, daily_hits):
    got = daily_hits["every_day"]
    assert got == list(daily_q1.index)
    import exchange_calendars as xcals

    sessions = xcals.get_calendar("XNYS").sessions_in_range("2012-01-03", "2012-03-30")
    assert got == list(sessions.tz_localize(None) if sessions.tz is not None else sessions)
    assert len(got) == 20 + 20 + 22


def test_month_start_not_fired_in_first_month_when_data_starts_mid_month():
    store = load_sample("AAPL", start="2012-01-17", end="2012-03-30")
    assert store.index[0] == pd.Timestamp("2012-01-17")
    assert fired_between(store, date_rules.month_start()) == days("2012-02-01", "2012-03-01")


def test_month_start_not_fired_when_run_starts_mid_month(daily_q1):
    got = fired_between(daily_q1, date_rules.month_start(), start="2012-01-17")
    assert got == days("2012-02-01", "2012-03-01")


def test_month_end_and_week_end_not_fired_when_data_stops_before_them():
    # data ends Wed 28 Mar 2012: that week's end (Fri 30) and the month's end are not in the data
    store = load_sample("AAPL", start="2012-02-01", end="2012-03-28")
    hits = fire_times(store, {"month_end": (date_rules.month_end(), None, {}),
                              "week_end": (date_rules.week_end(), None, {})})
    assert hits["month_end"] == days("2012-02-29")
    assert hits["week_end"][-1] == pd.Timestamp("2012-03-23")


def test_week_start_after_monday_holiday_fires_on_tuesday(daily_hits):
    got = daily_hits["week_start"]
    # MLK day (16 Jan) and Presidents' day (20 Feb) are Monday holidays
    assert pd.Timestamp("2012-01-17") in got and pd.Timestamp("2012-02-21") in got
    assert pd.Timestamp("2012-01-18") not in got
    assert [d.day_name() for d in got].count("Tuesday") == 3  # also Tue 3 Jan after New Year's day


@pytest.fixture(scope="module")
def seven_day_hits():
    store = load_sample("TestBrackets")
    rules = {name: (getattr(date_rules, name)(), None, {})
             for name in ("every_day", "week_start", "week_end", "month_start", "month_end")}
    return store, fire_times(store, rules)


def test_week_start_on_seven_day_data_fires_on_mondays(seven_day_hits):
    store, hits = seven_day_hits
    assert store.calendar == "24/7"
    mondays = [d for d in store.index if d.day_name() == "Monday"]
    assert hits["week_start"] == mondays
    assert hits["week_start"][0] == pd.Timestamp("2018-01-01")


def test_other_date_rules_on_seven_day_data(seven_day_hits):
    store, hits = seven_day_hits
    assert hits["every_day"] == list(store.index)
    assert any(d.day_name() == "Saturday" for d in hits["every_day"])
    assert hits["week_end"] == [d for d in store.index if d.day_name() == "Sunday"]
    assert hits["month_start"] == days("2018-01-01", "2018-02-01", "2018-03-01", "2018-04-01")
    assert hits["month_end"] == days("2018-01-31", "2018-02-28", "2018-03-31", "2018-04-30")


# ------------------------------------------------------------------ date rules, minute
MINUTE_DATE_EXPECTED = {
    "every_day": (date_rules.every_day(), MINUTE_SESSIONS),
    "week_start": (date_rules.week_start(), ["2012-11-19", "2012-11-26"]),
    "week_start+1": (date_rules.week_start(days_offset=1), ["2012-11-20", "2012-11-27"]),
    "week_end": (date_rules.week_end(), ["2012-11-23", "2012-11-30"]),
    "month_start": (date_rules.month_start(), []),  # the data starts mid-November
    "month_end": (date_rules.month_end(), ["2012-11-30"]),
    "month_end+2": (date_rules.month_end(days_offset=2), ["2012-11-28"]),
}


@pytest.mark.parametrize("case", sorted(MINUTE_DATE_EXPECTED))
def test_date_rules_minute_fire_at_first_bar_of_selected_sessions(minute_hits, case):
    sessions = MINUTE_DATE_EXPECTED[case][1]
    assert minute_hits["date:" + case] == [ny(d, "09:31") for d in sessions]


# ------------------------------------------------------------------ time rules, minute
def _per_session(hhmm, early=None):
    return [ny(d, early if (d == EARLY_CLOSE and early) else hhmm) for d in MINUTE_SESSIONS]


TIME_EXPECTED = {
    "market_open()": (lambda: time_rules.market_open(), _per_session("09:31")),
    # bars are stamped by their end: open + 1 minute is the first bar's stamp, as with no offset
    "market_open(minutes=1)": (lambda: time_rules.market_open(minutes=1), _per_session("09:31")),
    "market_open(minutes=2)": (lambda: time_rules.market_open(minutes=2), _per_session("09:32")),
    "market_open(minutes=30)": (lambda: time_rules.market_open(minutes=30), _per_session("10:00")),
    "market_open(hours=1, minutes=5)": (lambda: time_rules.market_open(hours=1, minutes=5),
                                        _per_session("10:35")),
    "market_close()": (lambda: time_rules.market_close(), _per_session("15:59", early="12:59")),
    "market_close(minutes=30)": (lambda: time_rules.market_close(minutes=30),
                                 _per_session("15:30", early="12:30")),
    "market_close(hours=1)": (lambda: time_rules.market_close(hours=1), _per_session("15:00", early="12:00")),
}


@pytest.fixture(scope="module")
def minute_hits(minute_nov):
    rules = {"date:" + case: (rule, None, {}) for case, (rule, _) in MINUTE_DATE_EXPECTED.items()}
    rules.update({"time:" + case: (date_rules.every_day(), make(), {}) for case, (make, _) in TIME_EXPECTED.items()})
    rules.update({
        "week_end@close": (date_rules.week_end(), time_rules.market_close(), {}),
        "every_minute": (date_rules.every_day(), time_rules.every_minute(), {}),
        "week_start@every_minute": (date_rules.week_start(), time_rules.every_minute(), {}),
        "close,half_days=False": (date_rules.every_day(), time_rules.market_close(), {"half_days": False}),
        "open,half_days=False": (date_rules.every_day(), time_rules.market_open(), {"half_days": False}),
        "close,half_days=True": (date_rules.every_day(), time_rules.market_close(), {"half_days": True}),
        # offsets that fall outside the 13:00 early close: that session is skipped
        "open+3h45": (date_rules.every_day(), time_rules.market_open(hours=3, minutes=45), {}),
        "close-4h": (date_rules.every_day(), time_rules.market_close(hours=4), {}),
    })
    return fire_times(minute_nov, rules)


@pytest.mark.parametrize("case", sorted(TIME_EXPECTED))
def test_time_rules_minute_exact_timestamps(minute_hits, case):
    assert minute_hits["time:" + case] == TIME_EXPECTED[case][1]


def test_time_rule_alone_gives_the_same_bars_as_in_a_shared_run(minute_nov, minute_hits):
    got = fired(minute_nov, date_rules.every_day(), time_rules.market_close())
    assert got == minute_hits["time:market_close()"]


def test_market_close_on_early_close_session_uses_exchange_calendar(minute_hits):
    got = minute_hits["week_end@close"]
    assert got == [ny("2012-11-23", "12:59"), ny("2012-11-30", "15:59")]
    assert got[0].tz_convert(NY).strftime("%H:%M") == "12:59"


def test_every_minute_fires_on_every_bar(minute_nov, minute_hits):
    got = minute_hits["every_minute"]
    assert got == list(minute_nov.index)
    assert len(got) == 8 * 390 + 210  # eight full sessions and the 13:00 early close


def test_every_minute_with_week_start_fires_on_all_bars_of_mondays(minute_hits):
    got = minute_hits["week_start@every_minute"]
    local_days = {t.tz_convert(NY).strftime("%Y-%m-%d") for t in got}
    assert local_days == {"2012-11-19", "2012-11-26"}
    assert len(got) == 2 * 390


def test_offset_beyond_an_early_close_skips_that_session(minute_hits):
    full_days = [d for d in MINUTE_SESSIONS if d != EARLY_CLOSE]
    assert minute_hits["open+3h45"] == [ny(d, "13:15") for d in full_days]
    assert minute_hits["close-4h"] == [ny(d, "12:00") for d in full_days]


def test_half_days_false_skips_the_early_close_session(minute_hits):
    assert minute_hits["close,half_days=False"] == [ny(d, "15:59") for d in MINUTE_SESSIONS if d != EARLY_CLOSE]
    got_open = minute_hits["open,half_days=False"]
    assert ny(EARLY_CLOSE, "09:31") not in got_open and len(got_open) == 8
def test_half_days_false_skips_the_early_close_session_in_daily_mode():
    store = load_sample("AAPL", start="2012-11-19", end="2012-11-30")
    got = fired(store, date_rules.every_day(), half_days=False)
    assert pd.Timestamp(EARLY_CLOSE) not in got
    assert got == [pd.Timestamp(d) for d in MINUTE_SESSIONS if d != EARLY_CLOSE]


def test_half_days_true_is_the_default(minute_hits):
    assert minute_hits["close,half_days=True"] == minute_hits["time:market_close()"]
    assert ny(EARLY_CLOSE, "12:59") in minute_hits["close,half_days=True"]


# ------------------------------------------------------------------ call styles
def _tagger(tag):
    def hit(context, data):
        context.hits.setdefault(tag, []).append(context.get_datetime())

    return hit


@pytest.fixture(scope="module")
def style_hits(minute_nov):
    """Zipline free functions scheduling with each keyword style, in one run."""
    hits = {}

    def initialize(context):
        context.hits = hits
        schedule_function(_tagger("plural"), date_rules=date_rules.week_start(),
                          time_rules=time_rules.market_open(minutes=30))
        schedule_function(_tagger("singular"), date_rule=date_rules.week_end(),
                          time_rule=time_rules.market_close(minutes=30))
        schedule_function(_tagger("positional"), date_rules.month_end(), time_rules.market_open(hours=1))
        schedule_function(_tagger("default"))

    run_algorithm(initialize=initialize, handle_data=lambda context, data: None, data=minute_nov)
    return hits


def test_plural_aliases_seed_notebook_style(style_hits):
    assert style_hits["plural"] == [ny("2012-11-19", "10:00"), ny("2012-11-26", "10:00")]


def test_singular_keywords_zipline_style(style_hits):
    assert style_hits["singular"] == [ny("2012-11-23", "12:30"), ny("2012-11-30", "15:30")]


def test_positional_rules(style_hits):
    assert style_hits["positional"] == [ny("2012-11-30", "10:30")]


def test_default_rules_are_every_day_at_market_open(style_hits):
    assert style_hits["default"] == _per_session("09:31")


def test_both_singular_and_plural_for_the_same_rule_is_refused(minute_nov):
    def init(context):
        schedule_function(lambda c, d: None, date_rule=date_rules.every_day(), date_rules=date_rules.every_day())

    with pytest.raises(ValueError, match="once"):
        run_algorithm(initialize=init, handle_data=lambda c, d: None, data=minute_nov)


class RulesFromSelf(TradingAlgorithm):
    params = {"out": None}

    def initialize(self, context):
        context.hits = self.params.out
        self.schedule_function(self.check, self.date_rules.every_day(), self.time_rules.market_open(minutes=1))
        self.schedule_function(self.weekly, date_rules=self.date_rules.week_start(),
                               time_rules=self.time_rules.market_close())

    def check(self, context, data):
        context.hits.append(("check", data.current_dt))

    def weekly(self, context, data):
        context.hits.append(("weekly", self.get_datetime()))


def test_rules_from_the_algorithm_and_bound_methods(minute_nov):
    out = []
    run_algorithm(RulesFromSelf, data=minute_nov, out=out)
    checks = [t for k, t in out if k == "check"]
    weekly = [t for k, t in out if k == "weekly"]
    assert checks == _per_session("09:31")  # minutes=1 from a 09:30 open: the bar stamped 09:31
    assert weekly == [ny("2012-11-19", "15:59"), ny("2012-11-26", "15:59")]


class Ordering(TradingAlgorithm):
    params = {"out": None}

    def initialize(self, context):
        context.log_ = self.params.out
        self.schedule_function(self.sched, self.date_rules.week_start())

    def sched(self, context, data):
        context.log_.append(("sched", data.current_dt))

    def handle_data(self, context, data):
        context.log_.append(("handle", data.current_dt))


def test_daily_scheduled_function_runs_once_per_selected_session_before_handle_data(daily_q1):
    out = []
    run_algorithm(Ordering, data=daily_q1, out=out, end="2012-01-31")
    sched = [t for k, t in out if k == "sched"]
    assert sched == days("2012-01-03", "2012-01-09", "2012-01-17", "2012-01-23", "2012-01-30")
    for t in sched:
        i = out.index(("sched", t))
        assert out[i + 1] == ("handle", t)
    handles = [t for k, t in out if k == "handle"]
    assert handles == list(daily_q1.index[daily_q1.index <= "2012-01-31"])


def test_daily_mode_ignores_time_rule_and_fires_once_per_session(daily_hits):
    month_ends = days("2012-01-31", "2012-02-29", "2012-03-30")
    assert daily_hits["month_end@every_minute"] == month_ends
    assert daily_hits["month_end@market_close(30)"] == month_ends
    assert daily_hits["week_end@market_open(60)"] == DAILY_EXPECTED["week_end"][2]


# ------------------------------------------------------------------ bad arguments
def test_negative_minutes_is_refused_naming_the_argument():
    with pytest.raises(ValueError, match=r"`minutes`.*-5"):
        time_rules.market_open(minutes=-5)
    with pytest.raises(ValueError, match="`hours`"):
        time_rules.market_close(hours=-1)


def test_non_int_days_offset_is_refused_naming_the_argument():
    with pytest.raises(ValueError, match=r"`days_offset`.*'x'"):
        date_rules.week_start(days_offset="x")
    with pytest.raises(ValueError, match="`days_offset`"):
        date_rules.month_end(days_offset=-1)


def _init_error(minute_store, call):
    def init(context):
        call()

    with pytest.raises(ValueError) as info:
        run_algorithm(initialize=init, handle_data=lambda c, d: None, data=minute_store)
    return str(info.value)


def test_non_callable_func_is_refused(minute_nov):
    msg = _init_error(minute_nov, lambda: schedule_function("not a function", date_rules.every_day()))
    assert "`func`" in msg and "callable" in msg


def test_date_rule_passed_as_time_rule_is_refused(minute_nov):
    msg = _init_error(minute_nov, lambda: schedule_function(lambda c, d: None, date_rules.every_day(),
                                                            date_rules.week_start()))
    assert "`time_rule`" in msg and "time_rules" in msg


def test_time_rule_passed_as_date_rule_is_refused(minute_nov):
    msg = _init_error(minute_nov, lambda: schedule_function(lambda c, d: None,
                                                            date_rules=time_rules.market_open()))
    assert "`date_rule`" in msg and "date_rules" in msg


# ------------------------------------------------------------------ before_trading_start
class BeforeStart(TradingAlgorithm):
    params = {"out": None}

    def initialize(self, context):
        context.log_ = self.params.out
        context.asset = self.symbol("AAPL")

    def before_trading_start(self, context, data):
        hist = data.history(context.asset, "close", 3, "1m")
        daily = data.history(context.asset, "close", 2, "1d")
        context.log_.append(("bts", data.current_dt, data.current(context.asset, "close"), hist.index[-1],
                             daily.index[-1], daily.iloc[-1]))

    def handle_data(self, context, data):
        context.log_.append(("handle", data.current_dt))


def test_before_trading_start_runs_once_per_session_seeing_only_the_previous_bar(minute_nov):
    out = []
    run_algorithm(BeforeStart, data=minute_nov, out=out, start="2012-11-20")
    bts = [row for row in out if row[0] == "bts"]
    assert len(bts) == len(MINUTE_SESSIONS) - 1
    closes = minute_nov.to_frame("AAPL")["close"]
    prev_close_bar = [ny(d, "13:00" if d == EARLY_CLOSE else "16:00") for d in MINUTE_SESSIONS[:-1]]
    for (_, dt, close, last_hist, last_day, day_close), want in zip(bts, prev_close_bar):
        assert dt == want and last_hist == want
        assert close == closes[want]
        # daily history from minutes ends with the previous, complete session
        assert last_day == want.tz_convert(NY).normalize().tz_localize(None)
        assert day_close == closes[want]
    # each call comes right before the session's first bar is handled
    for row in bts:
        i = out.index(row)
        assert out[i + 1][0] == "handle"
        assert out[i + 1][1].tz_convert(NY).strftime("%H:%M") == "09:31"
        assert out[i + 1][1] > row[1]


def test_before_trading_start_of_the_first_session_sees_no_bar(minute_nov):
    seen = []

    def bts(context, data):
        seen.append((data.current(context.asset, "close"), data.current(context.asset, "price"),
                     data.can_trade(context.asset)))

    def init(context):
        context.asset = context.symbol("AAPL")

    run_algorithm(initialize=init, handle_data=lambda c, d: None, before_trading_start=bts, data=minute_nov,
                  end="2012-11-20")
    assert len(seen) == 2
    close, price, can_trade = seen[0]
    assert math.isnan(close) and math.isnan(price) and can_trade is False


def test_before_trading_start_daily_sees_previous_session(daily_q1):
    seen = []

    def bts(context, data):
        a = context.asset
        seen.append((data.current(a, "close"), data.history(a, "close", 2, "1d").index[-1]))

    def init(context):
        context.asset = context.symbol("AAPL")

    run_algorithm(initialize=init, handle_data=lambda c, d: None, before_trading_start=bts, data=daily_q1,
                  start="2012-01-10", end="2012-01-13")
    closes = daily_q1.to_frame("AAPL")["close"]
    prev = days("2012-01-09", "2012-01-10", "2012-01-11", "2012-01-12")
    assert seen == [(closes[d], d) for d in prev]


# ------------------------------------------------------------------ scheduling and orders together
class Wakeups(TradingAlgorithm):
    """Weekly market buys from a scheduled function, a far resting limit that keeps the
    book looking ahead until it is canceled, and a function scheduled mid-run while
    nothing is live: the loop's one per-bar test must wake for each of them."""

    params = {"out": None}

    def initialize(self, context):
        context.out = self.params.out
        context.asset = self.symbol("AAPL")
        self.schedule_function(self.buy, self.date_rules.week_start())

    def buy(self, context, data):
        context.out.append(("buy", data.current_dt))
        self.order(context.asset, 1)

    def late(self, context, data):
        context.out.append(("late", data.current_dt))

    def handle_data(self, context, data):
        now = data.current_dt
        if now == pd.Timestamp("2012-01-03"):
            context.limit = self.order(context.asset, 1, limit_price=1.0)  # never reached
        elif now == pd.Timestamp("2012-01-20"):
            self.cancel_order(context.limit)
        elif now == pd.Timestamp("2012-02-01"):
            assert not self.get_open_orders()
            self.schedule_function(self.late, self.date_rules.month_start())


def test_orders_from_scheduled_functions_fill_on_the_next_bar_while_the_book_skips_ahead(daily_q1):
    out = []
    res = run_algorithm(Wakeups, data=daily_q1, out=out)
    buys = [t for k, t in out if k == "buy"]
    assert buys[:3] == days("2012-01-03", "2012-01-09", "2012-01-17") and len(buys) == 13
    sessions = list(daily_q1.index)
    market = res.fills[res.fills["order_id"] != 2]
    assert list(market["dt"]) == [sessions[sessions.index(t) + 1] for t in buys[:-1]] + (
        [sessions[sessions.index(buys[-1]) + 1]] if buys[-1] != sessions[-1] else [])
    assert [t for k, t in out if k == "late"] == days("2012-03-01")
    limit = res.orders.set_index("id").loc[2]
    assert limit["status"] == "canceled" and limit["filled"] == 0


class LateOnly(TradingAlgorithm):
    """Nothing scheduled and no order until a function is scheduled from handle_data."""

    params = {"out": None}

    def handle_data(self, context, data):
        if data.current_dt == pd.Timestamp("2012-03-26"):
            self.schedule_function(lambda c, d: self.params.out.append(d.current_dt), self.date_rules.every_day())


def test_a_function_scheduled_mid_run_with_nothing_else_to_do_still_fires(daily_q1):
    out = []
    run_algorithm(LateOnly, data=daily_q1, out=out)
    assert out == days("2012-03-27", "2012-03-28", "2012-03-29", "2012-03-30")
