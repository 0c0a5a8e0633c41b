"""``%%backtest`` / ``%backtest`` in an IPython test shell: success paths, every usage
error, strategy errors with the user's traceback and the partial result, and the help."""

from __future__ import annotations

import re

import pytest
from IPython.core.error import UsageError

from rustybt_nb.analytics import magics

WINDOW = "--data AAPL --start 2012-01-01 --end 2012-03-31"
BUY_ONCE = '''
class BuyOnce(TradingAlgorithm):
    params = {"size": 10, "label": "x"}

    def initialize(self, context):
        context.asset = self.symbol("AAPL")

    def handle_data(self, context, data):
        if not context.portfolio.positions[context.asset].amount and not self.get_open_orders(context.asset):
            self.order(context.asset, self.params.size)
'''


def _shell():
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.testing.globalipapp import start_ipython

    return start_ipython() or InteractiveShell.instance()


@pytest.fixture(scope="module")
def ip():
    shell = _shell()
    shell.run_line_magic("load_ext", "rustybt_nb")
    shell.run_cell("from rustybt_nb import TradingAlgorithm", store_history=False)
    return shell


def backtest(ip, line, cell):
    return ip.run_cell_magic("backtest", line, cell)


def plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


# ------------------------------------------------------------------ success
def test_cell_magic_runs_the_class_the_cell_defines(ip):
    out = backtest(ip, f"{WINDOW} --out res_ok --quiet", BUY_ONCE)
    assert out is None  # --quiet: nothing to display
    res = ip.user_ns["res_ok"]
    assert ip.user_ns["_"] is res
    assert res.settings["algorithm"] == "BuyOnce"
    assert res.settings["symbols"] == ["AAPL"]
    assert str(res.settings["start"].date()) == "2012-01-03"
    assert len(res.orders) == 1 and res.orders["status"].iloc[0] == "filled"


def test_params_reach_self_params_with_their_types(ip):
    ip.user_ns["SEEN"] = {}
    cell = '''
class Typed(TradingAlgorithm):
    params = {"n": 1, "ratio": 0.1, "sizes": (), "label": "", "flag": False, "word": ""}

    def initialize(self, context):
        SEEN.update(self.params)

    def handle_data(self, context, data):
        pass
'''
    line = (f"{WINDOW} --quiet --param n=5 --param ratio=0.25 --param sizes=[1,2] --param flag=True "
            "--param \"label='two words'\" --param word=hello")
    backtest(ip, line, cell)
    seen = ip.user_ns["SEEN"]
    assert seen == {"n": 5, "ratio": 0.25, "sizes": [1, 2], "label": "two words", "flag": True, "word": "hello"}
    assert type(seen["n"]) is int and type(seen["flag"]) is bool


def test_data_from_a_namespace_variable(ip):
    ip.run_cell("import rustybt_nb.data as rd\n"
                "ibm_frame = rd.load_sample('IBM').to_frame('IBM').loc['2012-01-01':'2012-03-31']\n"
                "ibm_frame.attrs['symbol'] = 'IBM'", store_history=False)
    cell = BUY_ONCE.replace("BuyOnce", "BuyIBM").replace('symbol("AAPL")', 'symbol("IBM")')
    backtest(ip, "--data ibm_frame --out res_var --quiet", cell)
    res = ip.user_ns["res_var"]
    assert res.settings["symbols"] == ["IBM"]
    assert len(res.perf) == len(ip.user_ns["ibm_frame"])


def test_symbols_pick_samples_and_select_from_multi_asset_data(ip):
    cell = BUY_ONCE.replace("BuyOnce", "BuyMSFT").replace('symbol("AAPL")', 'symbol("MSFT")')
    backtest(ip, "--symbols MSFT,IBM --start 2012-01-01 --end 2012-02-28 --out res_sym --quiet", cell)
    assert ip.user_ns["res_sym"].settings["symbols"] == ["MSFT", "IBM"]

    ip.run_cell("import rustybt_nb.data as rd\nthree = rd.load_sample(['AAPL', 'MSFT', 'IBM'])\n"
                "frames = {s: three.to_frame(s) for s in three.symbols}", store_history=False)
    for var in ("three", "frames"):
        backtest(ip, f"--data {var} --symbols MSFT --start 2012-01-01 --end 2012-02-28 --out res_sel --quiet", cell)
        assert ip.user_ns["res_sel"].settings["symbols"] == ["MSFT"]


def test_minute_frequency_with_a_short_window(ip):
    backtest(ip, "--frequency minute --start 2012-06-01 --end 2012-06-04 --out res_min --quiet", BUY_ONCE)
    res = ip.user_ns["res_min"]
    assert res.settings["frequency"] == "minute" and res.settings["synthetic"] is True
    assert res.run_info["bars"] == 2 * 390


def test_zipline_functions_in_the_cell(ip):
    cell = '''
from rustybt_nb.api import order, symbol

def initialize(context):
    context.asset = symbol("AAPL")

def handle_data(context, data):
    if not context.portfolio.positions[context.asset].amount:
        order(context.asset, 3)
'''
    backtest(ip, f"{WINDOW} --out res_fn --quiet", cell)
    res = ip.user_ns["res_fn"]
    assert res.settings["algorithm"] == "functions"
    assert res.orders["amount"].iloc[0] == 3


def test_a_base_class_and_its_strategy_run_the_strategy(ip):
    cell = '''
class Base(TradingAlgorithm):
    def initialize(self, context):
        context.asset = self.symbol("AAPL")

class Leaf(Base):
    def handle_data(self, context, data):
        pass
'''
    backtest(ip, f"{WINDOW} --out res_leaf --quiet", cell)
    assert ip.user_ns["res_leaf"].settings["algorithm"] == "Leaf"


def test_naming_one_of_several_classes_in_the_cell(ip):
    cell = "class First(TradingAlgorithm):\n    pass\n\nclass Second(TradingAlgorithm):\n    pass\n"
    backtest(ip, f"Second {WINDOW} --out res_named --quiet", cell)
    assert ip.user_ns["res_named"].settings["algorithm"] == "Second"


def test_line_magic_runs_a_class_defined_earlier(ip):
    ip.run_cell(BUY_ONCE.replace("BuyOnce", "Earlier"), store_history=False)
    ip.run_line_magic("backtest", f"Earlier {WINDOW} --param size=7 --out res_line --quiet")
    res = ip.user_ns["res_line"]
    assert res.settings["algorithm"] == "Earlier" and res.orders["amount"].iloc[0] == 7
    assert ip.user_ns["_"] is res


def test_not_quiet_returns_the_result_and_shows_its_views_after_the_cell(ip, monkeypatch):
    shown = []
    monkeypatch.setattr(magics, "draws_figures", lambda shell: True)
    monkeypatch.setattr("rustybt_nb.analytics.display.display_views", lambda result: shown.append(result))
    progress_calls = []
    real = magics.make_progress
    monkeypatch.setattr(magics, "make_progress", lambda **kw: progress_calls.append(kw) or real(**kw))
    outcome = ip.run_cell(f"%%backtest {WINDOW} --out res_loud\n{BUY_ONCE}")
    assert outcome.success, outcome.error_in_exec
    res = ip.user_ns["res_loud"]
    assert outcome.result is res and ip.user_ns["_"] is res
    assert shown == [res]
    assert progress_calls == [{"disable": None}]
    html_printer = ip.display_formatter.formatters["text/html"].lookup(res)  # (html is inactive in a terminal)
    assert "BuyOnce" in html_printer(res)

    progress_calls.clear()
    ip.run_cell(f"%%backtest {WINDOW} --quiet\n{BUY_ONCE}")
    assert progress_calls == [{"disable": True}] and shown == [res]  # --quiet: no bar, no views


def test_views_are_not_shown_for_a_result_that_is_not_the_cell_value(ip, monkeypatch):
    shown = []
    monkeypatch.setattr(magics, "draws_figures", lambda shell: True)
    monkeypatch.setattr("rustybt_nb.analytics.display.display_views", lambda result: shown.append(result))
    outcome = ip.run_cell(f"%backtest Earlier {WINDOW} --out res_mid\nx_after = 1")
    assert outcome.success and outcome.result is None
    assert shown == []


# ------------------------------------------------------------------ usage errors
@pytest.mark.parametrize("line, message", [
    ("--capital abc", "`--capital` must be a positive number"),
    ("--capital -5", "`--capital` must be a positive number"),
    ("--frequency weekly", "`--frequency` must be 'daily' or 'minute', got 'weekly'"),
    ("--param noequals", "`--param` takes name=value, e.g. --param fast=10"),
    ("--fill-model x", "`--fill-model` must be 'ohlc' or 'close', got 'x'"),
    ("--start someday", "`--start` must be a date"),
    ("--out 1abc", "`--out` must be a Python variable name"),
    ("--dta AAPL", "unknown %backtest argument(s): --dta. Did you mean '--data'"),
    ("--data APPL", "unknown sample 'APPL'"),
    ("--data no_such_frame", "There is no variable `no_such_frame` in the namespace"),
    ("--data AAPL --symbols XOM", "`--data AAPL`: unknown sample 'XOM'"),
    ("--data AAPL --start 2030-01-01", "select no bars"),
    ("--param sise=3", "BuyOnce has no parameter 'sise'; its parameters are label, size. Did you mean 'size'?"),
])
def test_bad_flags_raise_usage_errors_that_say_the_fix(ip, line, message):
    with pytest.raises(UsageError) as info:
        backtest(ip, line + " --quiet", BUY_ONCE)
    assert message in str(info.value)


def test_bad_flag_errors_point_at_the_help(ip):
    with pytest.raises(UsageError, match=r"See %%backtest\? for the flags"):
        backtest(ip, "--capital abc", BUY_ONCE)


def test_a_cell_without_a_strategy_says_what_it_defined(ip):
    with pytest.raises(UsageError) as info:
        backtest(ip, "--quiet", "foo = 1\n\ndef bar():\n    pass\n")
    text = str(info.value)
    assert "the cell defines no TradingAlgorithm subclass and no initialize/handle_data functions" in text
    assert "it defined: bar, foo" in text


def test_a_cell_with_several_strategies_lists_them(ip):
    cell = "class Alpha(TradingAlgorithm):\n    pass\n\nclass Beta(TradingAlgorithm):\n    pass\n"
    with pytest.raises(UsageError) as info:
        backtest(ip, "--quiet", cell)
    text = str(info.value)
    assert "2 TradingAlgorithm subclasses: Alpha, Beta" in text
    assert "one strategy per %%backtest cell" in text and "line magic" in text


def test_an_imported_strategy_is_not_mistaken_for_the_cells_own(ip):
    with pytest.raises(UsageError, match="it defined: TradingAlgo2"):
        backtest(ip, "--quiet", "from rustybt_nb import TradingAlgorithm as TradingAlgo2\n")


def test_line_magic_errors(ip):
    ip.run_cell("not_a_strategy = 3", store_history=False)
    with pytest.raises(UsageError, match=r"no strategy named `Earlr`.*Did you mean Earlier"):
        ip.run_line_magic("backtest", "Earlr --quiet")
    with pytest.raises(UsageError, match="`not_a_strategy` is a int, not a TradingAlgorithm subclass"):
        ip.run_line_magic("backtest", "not_a_strategy --quiet")
    with pytest.raises(UsageError, match="needs the name of a strategy class"):
        ip.run_line_magic("backtest", "--quiet")


# ------------------------------------------------------------------ strategy errors
FAILING = '''class Fails(TradingAlgorithm):
    def initialize(self, context):
        context.asset = self.symbol("AAPL")
        context.bars = 0

    def handle_data(self, context, data):
        context.bars += 1
        self.order(context.asset, 1)
        if context.bars == 4:
            raise RuntimeError("boom on purpose")
'''


def test_strategy_exception_keeps_the_users_traceback_and_the_partial_result(ip):
    outcome = ip.run_cell(f"%%backtest {WINDOW} --out res_fail --quiet\n{FAILING}")
    exc = outcome.error_in_exec
    assert isinstance(exc, RuntimeError) and str(exc) == "boom on purpose"
    partial = ip.user_ns["_backtest_partial"]
    assert ip.user_ns["res_fail"] is partial
    assert partial.run_info["completed"] is False and partial.run_info["bars"] == 4
    assert any("`_backtest_partial`" in note and "`res_fail`" in note for note in exc.__notes__)

    text = plain("\n".join(ip.InteractiveTB.structured_traceback(type(exc), exc, exc.__traceback__)))
    assert 'raise RuntimeError("boom on purpose")' in text
    # line 1 of the notebook cell is the %%backtest line, so the raise is on line 11
    assert re.search(r"Cell In\[\d+\], line 11, in handle_data", text), text
    assert "simulation.py" not in text  # engine frames are hidden


def test_an_error_while_defining_the_cell_points_at_its_line(ip):
    cell = "\n\nclass Broken(TradingAlgorithm):\n    size = undefined_name_here\n"
    outcome = ip.run_cell(f"%%backtest --quiet\n{cell}")
    exc = outcome.error_in_exec
    assert isinstance(exc, NameError)
    text = plain("\n".join(ip.InteractiveTB.structured_traceback(type(exc), exc, exc.__traceback__)))
    assert "size = undefined_name_here" in text
    assert re.search(r"Cell In\[\d+\], line 5", text), text


# ------------------------------------------------------------------ help and the function
def test_help_documents_every_flag(ip):
    doc = ip.find_cell_magic("backtest").__doc__
    for flag in ("--data", "--symbols", "--start", "--end", "--capital", "--frequency", "--fill-model", "--param",
                 "--out", "--quiet", "strategy"):
        assert flag in doc, flag
    info = ip.object_inspect("%%backtest")
    assert info["found"] and "--fill-model" in (info.get("docstring") or "")


def test_run_backtest_cell_with_a_plain_namespace(ip):
    ns: dict = {}
    exec("from rustybt_nb import TradingAlgorithm", ns)
    res = magics.run_backtest_cell(BUY_ONCE, ns, data="AAPL", start="2012-01-01", end="2012-02-28",
                                   params={"size": 4}, out="mine", progress=False)
    assert ns["mine"] is res and res.orders["amount"].iloc[0] == 4
    assert "BuyOnce" in ns and "_" not in ns


def test_cells_run_without_a_shell_keep_their_source_for_tracebacks():
    import linecache

    ns: dict = {}
    filename = magics._execute_cell("x = 1\ny = x + 1\n", ns, None, "%%backtest --quiet")
    assert ns["y"] == 2
    assert linecache.getline(filename, 3) == "y = x + 1\n"


def test_parse_params():
    assert magics.parse_params(["a=1", "b=[1, 2]", "c=text", "d='q'", "e="]) == \
        {"a": 1, "b": [1, 2], "c": "text", "d": "q", "e": ""}
    with pytest.raises(ValueError, match="name=value"):
        magics.parse_params(["novalue"])


def test_the_default_data_is_the_sample_even_when_a_variable_has_its_name(ip):
    ip.user_ns["AAPL"] = 5  # e.g. a number the user called AAPL
    try:
        backtest(ip, "--start 2012-01-01 --end 2012-01-31 --out res_default --quiet", BUY_ONCE)
        assert ip.user_ns["res_default"].settings["symbols"] == ["AAPL"]
        backtest(ip, "--data AAPL --start 2012-01-01 --end 2012-01-31 --out res_default --quiet", BUY_ONCE)
        assert ip.user_ns["res_default"].settings["symbols"] == ["AAPL"]  # not data: the sample wins
    finally:
        del ip.user_ns["AAPL"]


PEEKING = '''
import pandas as pd

def tomorrow(close):
    return pd.Series(close).shift(-1).to_numpy()

class Peeks(TradingAlgorithm):
    def initialize(self, context):
        self.next_close = self.indicator(tomorrow, "close")

    def handle_data(self, context, data):
        pass
'''


def test_check_lookahead_flag_reaches_the_run(ip):
    from rustybt_nb.errors import LookAheadError

    res = backtest(ip, f"{WINDOW} --quiet --out res_peek", PEEKING)
    assert res is None and ip.user_ns["res_peek"].settings.get("check_lookahead") is None
    with pytest.raises(LookAheadError, match="indicator 'tomorrow' of AAPL looks ahead"):
        backtest(ip, f"{WINDOW} --quiet --check-lookahead", PEEKING)
