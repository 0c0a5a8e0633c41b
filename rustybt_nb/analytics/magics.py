"""The ``%%backtest`` cell magic and ``%backtest`` line magic.

The magics are thin wrappers over :func:`run_backtest_cell`, which does the work and can
be called from plain Python too::

    %%backtest --data AAPL --start 2012-01-01 --end 2012-12-31 --param fast=10 --out res
    class Crossover(TradingAlgorithm):
        params = {"fast": 20}
        ...

runs the cell in the notebook's namespace, finds the strategy it defines (one
:class:`~rustybt_nb.TradingAlgorithm` subclass, or Zipline-style ``initialize`` /
``handle_data`` functions), backtests it with a progress bar and shows the result with
its figures. ``%backtest Crossover --symbols MSFT`` runs a class defined earlier.
``%%backtest?`` lists every flag.

Errors. Bad flags raise IPython's ``UsageError`` (one red line, no traceback) saying how
to fix them; so do a cell without a strategy, a cell with several, an unknown strategy
name or data that cannot be loaded. An exception raised by the strategy itself
propagates with its traceback pointing at the cell's lines, and the partial result (up
to the failing bar) is kept as ``_backtest_partial`` (and in ``--out VAR``).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import hashlib
import linecache
import math
import os
import re
import shlex
import sys
import types
import weakref
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from ..errors import did_you_mean, near_matches
from .progress import make_progress

__all__ = ["BacktestMagics", "load_ipython_extension", "parse_params", "run_backtest_cell"]

FUNCTION_HOOKS = ("initialize", "handle_data", "before_trading_start", "analyze", "on_order_event", "on_trade")
PARTIAL_NAME = "_backtest_partial"
_DEFAULT_DATA = "AAPL"
_FILE_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".csv.xz", ".parquet", ".pq")
_IPYTHON_NAMES = re.compile(r"^(_+|_i+\d*|_\d+|_ih|_oh|_dh|In|Out|exit|quit|get_ipython)$")


# ====================================================================== flag values
def _capital(text: str) -> float:
    try:
        value = float(text.replace(",", ""))
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(
            f"`--capital` must be a positive number of dollars such as 100000 or 1e6, got {text!r}")
    return value


def _max_leverage(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(
            f"`--max-leverage` must be a positive number such as 1 (no borrowing) or 2, got {text!r}")
    return value


def _choice(flag: str, choices: Sequence[str]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        key = text.strip().lower()
        if key in choices:
            return key
        options = " or ".join(repr(c) for c in choices)
        raise argparse.ArgumentTypeError(f"`{flag}` must be {options}, got {text!r}.{did_you_mean(key, choices)}")

    parse.__name__ = flag.lstrip("-")
    return parse


def _date(flag: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        from ..data.times import parse_time

        try:
            parse_time(text, flag)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"`{flag}` must be a date or timestamp such as 2012-01-31 or '2012-06-01 10:30' (on minute bars "
                f"a naive time is the exchange's local time), got {text!r}") from None
        return text

    parse.__name__ = flag.lstrip("-")
    return parse


def _frequency(text: str) -> str:
    from ..data.validation import normalize_frequency

    try:
        return str(normalize_frequency(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"`--frequency` must be 'daily' or 'minute', got {text!r}.{did_you_mean(text, ('daily', 'minute'))}"
        ) from None


def _param(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(
            f"`--param` takes name=value, e.g. --param fast=10 or --param label=\"slow cross\", got {text!r}")
    try:
        value = ast.literal_eval(raw.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        value = raw  # not a Python literal: keep the text
    return key, value


def _identifier(text: str) -> str:
    if not text.isidentifier():
        raise argparse.ArgumentTypeError(f"`--out` must be a Python variable name such as res, got {text!r}")
    return text


def parse_params(items: Sequence[str] | None) -> dict[str, Any]:
    """``['fast=10', 'label=x']`` -> ``{'fast': 10, 'label': 'x'}`` (values read with
    :func:`ast.literal_eval`, else kept as text); raises ValueError for an item without ``=``."""
    out: dict[str, Any] = {}
    for item in items or ():
        try:
            key, value = _param(item)
        except argparse.ArgumentTypeError as exc:
            raise ValueError(str(exc)) from None
        out[key] = value
    return out


# ====================================================================== the cell
def _execute_cell(cell: str, namespace: MutableMapping[str, Any], shell: Any, header: str | None) -> str:
    """Run ``cell`` in ``namespace``; returns the file name its code objects carry.

    Under IPython the cell's IPython syntax is transformed first and its text is cached
    the way IPython caches cells, so tracebacks show ``Cell In[n], line k`` with the
    source. ``header`` (the ``%%backtest ...`` line) is counted as line 1, so line numbers
    match what the notebook shows."""
    __tracebackhide__ = True
    offset = 1 if header is not None else 0
    shown = (header + "\n" + cell) if header is not None else cell
    if shell is not None:
        source = shell.transform_cell(cell)
        offset += _leading_blank_lines(cell) - _leading_blank_lines(source)  # IPython drops leading blank lines
        number = _cell_number(shell)
        filename = shell.compile.cache(shown, number, raw_code=shown + "\n# %%backtest body")
        code = shell.compile("\n" * offset + source, filename, "exec")
        globals_ = shell.user_global_ns if namespace is shell.user_ns else namespace
        exec(code, globals_, namespace)
    else:
        digest = hashlib.sha1(shown.encode()).hexdigest()[:12]
        filename = f"<backtest-cell-{digest}>"
        lines = [line + "\n" for line in shown.splitlines()]
        linecache.cache[filename] = (len(shown), None, lines, filename)
        code = compile("\n" * offset + cell, filename, "exec")
        exec(code, namespace)  # running the user's cell is the point
    return filename


def _cell_number(shell: Any) -> int:
    """The ``In[n]`` number of the cell running now: the one whose code called us (found
    on the stack), else the shell's count (IPython counts up before running a cell)."""
    names = getattr(shell.compile, "_filename_map", {})
    frame = sys._getframe(1)
    while frame is not None:
        number = names.get(frame.f_code.co_filename)
        if number is not None:
            return int(number)
        frame = frame.f_back
    return max(int(getattr(shell, "execution_count", 1)) - 1, 0)


def _leading_blank_lines(text: str) -> int:
    n = 0
    for line in text.splitlines():
        if line.strip():
            break
        n += 1
    return n


def _top_level_names(cell: str) -> tuple[set[str], set[str]]:
    """Names bound by ``class`` and ``def`` statements at the cell's top level (also
    inside top-level if/try/with blocks)."""
    try:
        tree = ast.parse(cell)
    except SyntaxError:  # IPython syntax in the cell; the code objects decide then
        return set(), set()
    classes: set[str] = set()
    funcs: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef):
                classes.add(node.name)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                funcs.add(node.name)
            else:
                for field in ("body", "orelse", "finalbody", "handlers"):
                    inner = getattr(node, field, None)
                    if isinstance(inner, list):
                        visit([n for n in inner if isinstance(n, ast.stmt)] +
                              [s for h in inner if isinstance(h, ast.ExceptHandler) for s in h.body])

    visit(tree.body)
    return classes, funcs


def _code_of(obj: Any) -> list[types.CodeType]:
    """Code objects of a function or of a class's methods."""
    if isinstance(obj, type):
        out = []
        for member in vars(obj).values():
            if isinstance(member, staticmethod | classmethod):
                member = member.__func__
            elif isinstance(member, property):
                member = member.fget
            code = getattr(member, "__code__", None)
            if isinstance(code, types.CodeType):
                out.append(code)
        return out
    code = getattr(obj, "__code__", None)
    return [code] if isinstance(code, types.CodeType) else []


def _is_strategy_class(value: Any) -> bool:
    from ..algorithm import TradingAlgorithm

    return isinstance(value, type) and issubclass(value, TradingAlgorithm) and value is not TradingAlgorithm


def _find_strategy(cell: str, delta: Mapping[str, Any], filename: str) -> tuple[Any, str]:
    """``(class, name)`` or ``({hook: function}, 'functions')`` of what the cell defined;
    raises UsageError when it defined none or several."""
    class_names, func_names = _top_level_names(cell)

    def from_cell(name: str, value: Any) -> bool:
        if any(code.co_filename == filename for code in _code_of(value)):
            return True
        return name in class_names | func_names and getattr(value, "__name__", None) == name

    classes: dict[int, tuple[str, type]] = {}
    for name, value in delta.items():
        if _is_strategy_class(value) and from_cell(name, value):
            known = classes.get(id(value))
            if known is None or (name == value.__name__ and known[0] != value.__name__):
                classes[id(value)] = (name, value)
    found = list(classes.values())
    if len(found) > 1:  # a base class and the one strategy built on it: keep the leaves
        leaves = [(n, c) for n, c in found if not any(o is not c and issubclass(o, c) for _, o in found)]
        found = leaves if leaves else found
    funcs = {hook: delta[hook] for hook in FUNCTION_HOOKS
             if isinstance(delta.get(hook), types.FunctionType) and from_cell(hook, delta[hook])}
    has_funcs = "initialize" in funcs or "handle_data" in funcs

    if len(found) > 1:
        names = ", ".join(n for n, _ in found)
        raise UsageError(
            f"the cell defines {len(found)} TradingAlgorithm subclasses: {names}. Keep one strategy per "
            f"%%backtest cell, name the one to run (`%%backtest {found[0][0]} ...`), or define them in a "
            f"plain cell and run each with the line magic (`%backtest {found[0][0]} ...`).")
    if found and has_funcs:
        raise UsageError(
            f"the cell defines both the TradingAlgorithm subclass {found[0][0]} and the functions "
            f"{', '.join(funcs)}; keep one strategy per %%backtest cell (or name the class to run: "
            f"`%%backtest {found[0][0]} ...`).")
    if found:
        return found[0][1], found[0][0]
    if has_funcs:
        return funcs, "functions"
    defined = sorted(n for n in delta if not _IPYTHON_NAMES.match(n))
    what = ("it defined: " + ", ".join(defined)) if defined else "it defined no names"
    raise UsageError(
        f"the cell defines no TradingAlgorithm subclass and no initialize/handle_data functions; {what}. "
        f"Write `class MyStrategy(TradingAlgorithm): ...` or `def initialize(context): ...` in the cell, "
        f"or run a class defined earlier with `%backtest ClassName`.")


def _lookup_strategy(name: str, namespace: Mapping[str, Any]) -> Any:
    from ..algorithm import TradingAlgorithm

    value = namespace.get(name)
    if _is_strategy_class(value) or isinstance(value, TradingAlgorithm):
        return value
    candidates = sorted(k for k, v in namespace.items()
                        if not k.startswith("_") and (_is_strategy_class(v) or isinstance(v, TradingAlgorithm)))
    listing = f" The namespace has: {', '.join(candidates)}." if candidates else \
        " The namespace has no TradingAlgorithm subclasses yet: run the cell that defines one first."
    hits = near_matches(name, candidates)
    hint = (" Did you mean " + " or ".join(hits) + "?") if hits else ""
    if name in namespace:
        raise UsageError(f"`{name}` is a {type(value).__name__}, not a TradingAlgorithm subclass.{hint}{listing}")
    raise UsageError(f"no strategy named `{name}` in the notebook namespace.{hint}{listing}")


# ====================================================================== the data
def _is_data_like(value: Any) -> bool:
    import pandas as pd

    from ..data import BarStore

    if isinstance(value, BarStore | pd.DataFrame | pd.Series | Mapping | os.PathLike):
        return True
    if isinstance(value, str):
        return True
    return isinstance(value, list | tuple) and bool(value) and all(isinstance(v, str) for v in value)


def _is_frame_like(value: Any) -> bool:
    import pandas as pd

    from ..data import BarStore

    return isinstance(value, BarStore | pd.DataFrame) or (
        isinstance(value, Mapping) and bool(value) and all(isinstance(v, pd.DataFrame) for v in value.values()))


def _looks_like_path(text: str) -> bool:
    low = text.lower()
    return low.endswith(_FILE_SUFFIXES) or "/" in text or os.sep in text


def _data_argument(data: Any, namespace: Mapping[str, Any]) -> Any:
    """What ``--data`` names: the value of a namespace variable of that name (a frame, dict,
    store or path), else the text itself (sample names, comma-separated ones as a list, or
    a path)."""
    if isinstance(data, str) and data.isidentifier() and data in namespace:
        value = namespace[data]
        if _is_data_like(value):
            return value
        if not _is_sample_name(data):
            raise UsageError(
                f"`--data {data}` names a variable holding a {type(value).__name__}; give a DataFrame, a "
                f"{{symbol: DataFrame}} dict, a BarStore, a CSV/Parquet path or a sample name such as AAPL")
    if isinstance(data, str) and "," in data and not _looks_like_path(data):
        return [d.strip() for d in data.split(",") if d.strip()]
    return data


def _data_error(label: Any, namespace: Mapping[str, Any], symbols: Sequence[str] | None,
                exc: BaseException) -> UsageError:
    """The usage error for data that cannot be loaded, with the variables it may have meant."""
    what = label if isinstance(label, str) else type(label).__name__
    extra = ""
    if isinstance(label, str) and label.isidentifier() and label not in namespace and not symbols:
        frames = sorted(k for k, v in namespace.items() if not k.startswith("_") and _is_frame_like(v))
        extra = f" There is no variable `{label}` in the namespace either."
        hits = near_matches(label, frames)
        if hits:
            extra += " Did you mean the variable " + " or ".join(hits) + "?"
    return UsageError(f"`--data {what}`: {_message(exc)}{extra}")


def _data_text(label: Any, namespace: Mapping[str, Any], symbols: Sequence[str] | None) -> dict[str, str]:
    """How the panel's ``run_algorithm(...)`` line writes ``--data`` (and ``--symbols``): a
    sample name or path as text, a variable as its name."""
    if not isinstance(label, str):
        return {}
    if label.isidentifier() and label in namespace:
        return {"data": label, **({"symbols": repr(list(symbols))} if symbols else {})}
    if symbols and not _looks_like_path(label):  # samples: --symbols names the ones loaded
        return {"data": repr(list(symbols))}
    return {"data": repr(label), **({"symbols": repr(list(symbols))} if symbols else {})}


def _is_sample_name(text: str) -> bool:
    from ..data.samples import STOCK_SAMPLES, TEST_BRACKETS

    return text.upper() in {s.upper() for s in (*STOCK_SAMPLES, TEST_BRACKETS)}


def _message(exc: BaseException) -> str:
    return str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)


def _check_params(strategy: Any, params: Mapping[str, Any]) -> None:
    from ..algorithm import TradingAlgorithm, check_param_names

    if not isinstance(strategy, type | TradingAlgorithm):
        return
    cls = strategy if isinstance(strategy, type) else type(strategy)
    for key, value in params.items():
        try:
            check_param_names(cls, {key: value})
        except TypeError as exc:
            raise UsageError(f"`--param {key}=...`: {exc}") from None


# ====================================================================== the public function
def run_backtest_cell(
    cell: str = "",
    namespace: MutableMapping[str, Any] | None = None,
    *,
    strategy: str | None = None,
    data: Any = None,
    symbols: Sequence[str] | str | None = None,
    start: Any = None,
    end: Any = None,
    capital_base: float = 100_000,
    frequency: str | None = None,
    fill_model: str = "ohlc",
    params: Mapping[str, Any] | None = None,
    out: str | None = None,
    progress: bool | None = None,
    shell: Any = None,
    header: str | None = None,
    tweak: bool = False,
    **run_options: Any,
) -> Any:
    """Run ``cell`` in ``namespace`` and backtest the strategy it defines.

    This is what ``%%backtest`` (and, with an empty cell, ``%backtest Name``) calls.

    Parameters
    ----------
    cell:
        Python source defining one :class:`~rustybt_nb.TradingAlgorithm` subclass, or
        top-level ``initialize``/``handle_data`` (and optionally ``before_trading_start``,
        ``analyze``) functions. Only names the cell binds (new or rebound) are considered.
    namespace:
        Where the cell runs and where results are stored. Default: the running IPython's
        user namespace, else a new dict.
    strategy:
        The name of the class to run, looked up in ``namespace`` after the cell ran
        (needed when the cell defines several, or is empty).
    data:
        A variable name in ``namespace`` holding a DataFrame / dict / BarStore, a sample
        name, a CSV/Parquet path, or the data object itself. Default ``'AAPL'``.
    symbols:
        With sample data, the samples to load (``'MSFT,IBM'``); with multi-asset data, the
        symbols to keep.
    start, end, capital_base, frequency, fill_model:
        As in :class:`rustybt_nb.Backtest` (``frequency`` is ``data_frequency``); times follow
        :mod:`rustybt_nb.data.times` (naive = exchange time on minute bars).
    params:
        Strategy parameters (``self.params``); unknown names raise with near matches.
    out:
        Also store the result (or, on error, the partial result) as this variable.
    progress:
        Draw a progress bar (None: unless ``TQDM_DISABLE``/``RUSTYBT_NB_NO_PROGRESS`` or
        ``setup_notebook(progress=False)`` say otherwise).
    shell:
        The IPython shell (default: the running one), for tracebacks that show the cell.
    header:
        The magic's own line, counted as the cell's first line in tracebacks.
    tweak:
        Instead of one run, return a live :class:`~rustybt_nb.analytics.TweakPanel`
        with a control per declared parameter (``params`` set their starting values); ``out``
        stores the panel.
    run_options:
        Passed to :class:`~rustybt_nb.Backtest` (``trail_reference``, ``same_bar``,
        ``slippage``, ``commission``, ``max_leverage``, ``check_lookahead``).

    Returns
    -------
    BacktestResult, or the TweakPanel with ``tweak=True``

    Raises
    ------
    UsageError
        No strategy, several strategies, an unknown strategy name or parameter, data
        that cannot be loaded, a start/end that selects no bars.
    Exception
        Whatever the strategy raised, with a note saying where the partial result is.
    """
    __tracebackhide__ = True
    from ..backtest import Backtest
    from ..data import open_data

    if shell is None:
        shell = _running_shell()
    if namespace is None:
        namespace = shell.user_ns if shell is not None else {}
    if out is not None and not str(out).isidentifier():
        raise UsageError(f"`out` must be a Python variable name such as res, got {out!r}")
    if isinstance(symbols, str):
        symbols = [s.strip() for s in symbols.split(",") if s.strip()]

    if cell.strip():
        before = dict(namespace)
        filename = _execute_cell(cell, namespace, shell, header)
        delta = {k: v for k, v in namespace.items() if k not in before or before[k] is not v}
    else:
        filename, delta = "", {}
    if strategy is not None:
        algo: Any = _lookup_strategy(strategy, namespace)
        funcs: dict[str, Any] = {}
    elif cell.strip():
        found, _ = _find_strategy(cell, delta, filename)
        algo, funcs = (None, found) if isinstance(found, dict) else (found, {})
    else:
        raise UsageError("name the strategy to run, e.g. `%backtest MyStrategy --data AAPL`")
    params = dict(params or {})
    if algo is not None:
        _check_params(algo, params)

    # the default sample is never a namespace variable that happens to be called AAPL
    label, names = (_DEFAULT_DATA, {}) if data is None else (data, namespace)
    try:
        store = open_data(_data_argument(label, names), frequency=frequency, symbols=symbols, start=start, end=end)
    except (ValueError, TypeError, KeyError, FileNotFoundError, ImportError) as exc:
        raise _data_error(label, names, symbols, exc) from None
    try:
        store.bar_range(start, end)
    except ValueError as exc:
        raise UsageError(f"`--start`/`--end`: {exc}") from None
    try:
        backtest = Backtest(algo, **funcs, data=store, start=start, end=end, capital_base=capital_base,
                            data_frequency=frequency, fill_model=fill_model, **run_options)
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None

    if tweak:
        written = _data_text(label, names, symbols)
        if written:
            backtest.written_as(**written)
        panel = backtest.tweak(initial=params)
        if out:
            namespace[out] = panel
        return panel
    with make_progress(disable=None if progress is None else not progress) as bar:
        try:
            result = backtest.run(bar, **params)
        except BaseException as exc:  # (an interrupt too: the bars simulated so far are kept)
            partial = getattr(exc, "partial_result", None)
            if partial is not None:
                namespace[PARTIAL_NAME] = partial
                where = f"`{PARTIAL_NAME}`" + (f" and `{out}`" if out else "")
                if out:
                    namespace[out] = partial
                exc.add_note(f"rustybt_nb: the partial result (up to the failing bar) is in {where}.")
            raise
    if out:
        namespace[out] = result
    return result


def _running_shell() -> Any:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is imported at the top
        return None
    return get_ipython()


# ====================================================================== the magics
@magics_class
class BacktestMagics(Magics):
    """``%%backtest`` / ``%backtest`` (see :mod:`rustybt_nb.analytics.magics`)."""

    @magic_arguments()
    @argument("strategy", nargs="?", default=None,
              help="Line magic: the TradingAlgorithm subclass to run (a name in the namespace). Cell magic: "
                   "optional, picks one of several classes the cell defines.")
    @argument("--data", default=None, metavar="DATA",
              help="A sample name (AAPL, GOOG, IBM, MSFT, FB, TestBrackets), a .csv/.parquet path, or the name "
                   "of a variable holding a DataFrame, a {symbol: DataFrame} dict or a BarStore "
                   "(variables are looked up first). Default: AAPL.")
    @argument("--symbols", default=None, metavar="SYM,SYM",
              help="Comma-separated symbols: with sample data, the samples to load; with multi-asset data, "
                   "the symbols to keep.")
    @argument("--start", type=_date("--start"), default=None, metavar="DATE",
              help="First simulated bar (inclusive), e.g. 2012-01-01 or '2012-06-01 10:30' (on minute bars a "
                   "naive time is the exchange's local time, New York for the samples).")
    @argument("--end", type=_date("--end"), default=None, metavar="DATE",
              help="Last simulated bar (inclusive; a date without a time includes the whole day).")
    @argument("--capital", type=_capital, default=100_000.0, metavar="DOLLARS",
              help="Starting cash (default 100000).")
    @argument("--frequency", type=_frequency, default=None,
              metavar="daily|minute", help="Bar frequency; minute samples are synthetic. Default: the data's own.")
    @argument("--fill-model", type=_choice("--fill-model", ("ohlc", "close")), default="ohlc",
              metavar="ohlc|close", help="How orders fill within a bar (default ohlc).")
    @argument("--max-leverage", type=_max_leverage, default=None, metavar="X",
              help="Reject orders that would take the gross exposure (positions' gross value / portfolio value) "
                   "beyond X, checked when placed (default: no limit; a run above 100 %% is warned about).")
    @argument("--check-lookahead", action="store_true", default=False,
              help="Before the first bar, check that no indicator (self.indicator) looks ahead.")
    @argument("--param", type=_param, action="append", default=None, metavar="NAME=VALUE",
              help="A strategy parameter (self.params.NAME); repeatable. Values are Python literals "
                   "(10, 0.5, 'x', [1, 2], True), otherwise text.")
    @argument("--out", type=_identifier, default=None, metavar="VAR",
              help="Also store the result in this variable (on error: the partial result).")
    @argument("--quiet", action="store_true",
              help="Show nothing: no result display, no figures, no progress bar.")
    @argument("--tweak", action="store_true",
              help="Show a live panel instead of one result: a control per declared parameter (--param sets "
                   "where it starts), figures that update in place, a pinned baseline and what changed "
                   "(--out stores the panel).")
    @line_cell_magic
    def backtest(self, line: str, cell: str | None = None) -> Any:
        """Backtest a strategy defined in this cell (``%%backtest``) or earlier (``%backtest Name``).

        The cell runs in the notebook namespace; the one TradingAlgorithm subclass it defines
        (or its initialize/handle_data functions) is backtested with a progress bar. The result
        is the cell's value (``_``), shown with its figures (equity, order timeline, trailing
        stops, partial fills; not in a terminal IPython), and stored in ``--out VAR``. If the
        strategy raises, the traceback points at the cell and the partial result is kept in
        ``_backtest_partial``.

        Example::

            %%backtest --data AAPL --start 2012-01-01 --end 2012-12-31 --param size=50 --out res
            class Buy(TradingAlgorithm):
                params = {"size": 100}
                def initialize(self, context):
                    context.asset = self.symbol("AAPL")
                def handle_data(self, context, data):
                    if not context.portfolio.positions[context.asset].amount:
                        self.order(context.asset, self.params.size)
        """
        __tracebackhide__ = True
        args = _parse(self.backtest, line)
        if cell is None and args.strategy is None:
            raise UsageError("%backtest needs the name of a strategy class, e.g. `%backtest MyStrategy "
                             "--data AAPL`; to define and run one in a cell, start the cell with %%backtest")
        params = dict(args.param or [])
        header = f"%%backtest {line}".rstrip() if cell is not None else None
        result = run_backtest_cell(
            cell or "", self.shell.user_ns, strategy=args.strategy, data=args.data, symbols=args.symbols,
            start=args.start, end=args.end, capital_base=args.capital, frequency=args.frequency,
            fill_model=args.fill_model, params=params, out=args.out, progress=False if args.quiet else None,
            shell=self.shell, header=header, tweak=args.tweak,
            **({"max_leverage": args.max_leverage} if args.max_leverage is not None else {}),
            **({"check_lookahead": True} if args.check_lookahead else {}))
        if args.tweak:
            if args.quiet:
                _store_as_value(self.shell, result)
                return None
            return result
        if args.quiet:
            _store_as_value(self.shell, result)
            return None
        if draws_figures(self.shell):
            _views_after_cell(self.shell).expect(result)
        return result


def _split(line: str) -> list[str]:
    """Shell-like words: quotes group and are removed (``--param "label=two words"``),
    backslashes stay as they are (Windows paths)."""
    lex = shlex.shlex(line, posix=True)
    lex.whitespace_split = True
    lex.commenters = ""
    lex.escape = ""
    try:
        return list(lex)
    except ValueError as exc:
        raise UsageError(f"cannot split the %backtest line ({exc}): close the quotes; "
                         "see %%backtest? for the flags") from None


def _parse(magic: Callable[..., Any], line: str) -> argparse.Namespace:
    """Parse the magic's line; unknown flags get near matches and a pointer to the help."""
    try:
        return magic.parser.parse_args(_split(line))
    except UsageError as exc:
        text = str(exc)
        match = re.search(r"unrecognized arguments: (.*)", text)
        if match:
            flags = [a.option_strings for a in magic.parser._actions]
            known = [f for group in flags for f in group if f.startswith("--")]
            bad = match.group(1).split()[0]
            hint = did_you_mean(bad.split("=")[0], known)
            raise UsageError(f"unknown %backtest argument(s): {match.group(1)}.{hint} "
                             f"The flags are {', '.join(known)} (see %%backtest?).") from None
        text = text.removeprefix("%backtest: ")
        own = re.match(r"argument [^:]+: (`.*)", text, flags=re.DOTALL)  # our own message names the flag
        text = (own.group(1) if own else text).rstrip()
        if not text.endswith((".", "?")):
            text += "."
        raise UsageError(f"{text} See %%backtest? for the flags.") from None


def draws_figures(shell: Any) -> bool:
    """Whether ``%%backtest`` shows figures under its result: in notebooks and other rich
    front ends, not in a terminal IPython (where plotly would open browser tabs)."""
    return type(shell).__name__ != "TerminalInteractiveShell"


def _store_as_value(shell: Any, result: Any) -> None:
    """Make ``result`` the cell's value (``_``, ``Out[n]``) without displaying it."""
    with contextlib.suppress(Exception):  # a shell without IPython's output cache
        shell.displayhook.update_user_ns(result)
    if shell.user_ns.get("_") is not result:  # the cache is off (cache_size=0)
        shell.user_ns["_"] = result


class _ViewsAfterCell:
    """Shows the figures of a result that ``%%backtest`` returned, after IPython has
    displayed the result itself (a ``post_run_cell`` hook), so the summary comes first.
    Only a result that really was the cell's displayed value gets its figures."""

    def __init__(self) -> None:
        self.pending: list[weakref.ref[Any]] = []

    def expect(self, result: Any) -> None:
        self.pending.append(weakref.ref(result))

    def __call__(self, exec_result: Any) -> None:
        pending, self.pending = self.pending, []
        value = getattr(exec_result, "result", None)
        info = getattr(exec_result, "info", None)
        if value is None or getattr(info, "silent", False):
            return
        if any(ref() is value for ref in pending):
            from .display import display_views

            display_views(value)


_HOOKS: weakref.WeakKeyDictionary[Any, _ViewsAfterCell] = weakref.WeakKeyDictionary()


def _views_after_cell(shell: Any) -> _ViewsAfterCell:
    hook = _HOOKS.get(shell)
    if hook is None:
        hook = _HOOKS[shell] = _ViewsAfterCell()
        shell.events.register("post_run_cell", hook)
    return hook


def magics_registered(shell: Any) -> bool:
    """Whether ``shell`` has this module's ``%%backtest`` magic."""
    magic = shell.magics_manager.magics["cell"].get("backtest")
    return isinstance(getattr(magic, "__self__", None), BacktestMagics)


def load_ipython_extension(ipython: Any) -> None:
    """Register ``%%backtest``/``%backtest`` and the result/order display formatters
    (what ``%load_ext rustybt_nb`` runs)."""
    from .display import register_formatters

    if not magics_registered(ipython):
        ipython.register_magics(BacktestMagics)
    _views_after_cell(ipython)
    register_formatters(ipython)
