"""The layering rules of docs/architecture.md and the public import paths.

The engine (everything under ``rustybt_nb/`` except the notebook layer
``rustybt_nb/analytics/`` and ``rustybt_nb/research/``) never imports notebook or
plotting packages, at module level or inside functions; ``import rustybt_nb`` loads
nothing heavy; and the package's modules import each other without a circle (every
import counts: module level, inside functions, and under ``TYPE_CHECKING``).
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import rustybt_nb

PACKAGE_DIR = Path(rustybt_nb.__file__).resolve().parent
NOTEBOOK_LAYER = ("analytics", "research")
FORBIDDEN = ("IPython", "ipywidgets", "anywidget", "plotly", "dask", "tqdm")


def engine_modules():
    files = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        rel = path.relative_to(PACKAGE_DIR)
        if rel.parts[0] in NOTEBOOK_LAYER:
            continue
        files.append(path)
    return files


def imported_roots(tree):
    """(top-level package, line) of every import statement anywhere in ``tree``,
    plus ``importlib.import_module('...')`` / ``__import__('...')`` calls with a literal name."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name.split(".")[0], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                found.append((node.module.split(".")[0], node.lineno))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in ("import_module", "__import__"):
                found.append((node.args[0].value.split(".")[0], node.lineno))
    return found


def test_engine_module_list_is_not_empty():
    names = {p.relative_to(PACKAGE_DIR).as_posix() for p in engine_modules()}
    for expected in ("algorithm.py", "api.py", "simulation.py", "scheduling.py", "data/portal.py",
                     "finance/order_book.py"):
        assert expected in names


@pytest.mark.parametrize("path", engine_modules(), ids=lambda p: p.relative_to(PACKAGE_DIR).as_posix())
def test_engine_module_imports_no_notebook_packages(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    bad = [(root, line) for root, line in imported_roots(tree) if root in FORBIDDEN]
    assert not bad, f"{path.relative_to(PACKAGE_DIR)} imports {bad} (docs/architecture.md: not in the engine)"


def test_the_import_scanner_sees_imports_inside_functions():
    src = "def f():\n    import plotly.express as px\n    from IPython.display import display\n" \
          "    importlib.import_module('dask.dataframe')\n"
    roots = {r for r, _ in imported_roots(ast.parse(src))}
    assert {"plotly", "IPython", "dask"} <= roots


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def internal_imports() -> dict[str, set[str]]:
    """Module -> the package's modules it imports anywhere in its source."""
    modules = {module_name(p): p for p in PACKAGE_DIR.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for alias in node.names:  # `from . import api` names a module, `from .x import f` does not
                    found.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in modules else target)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                circles.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return circles


def test_the_package_has_no_import_circles():
    graph = internal_imports()
    assert "rustybt_nb.simulation" in graph["rustybt_nb.backtest"]  # the scanner sees imports
    assert import_circles(graph) == []


def test_the_scanner_finds_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert import_circles(graph) == [["a", "b", "c"]]


def test_only_the_composition_root_wires_a_run():
    """A Simulation is made, and read into a result, in rustybt_nb.backtest alone."""
    wiring = {"Simulation", "build_result", "build_metrics"}
    callers = set()
    for path in PACKAGE_DIR.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", getattr(node.func, "attr", None))
                if name in wiring:
                    callers.add(module_name(path))
    assert callers == {"rustybt_nb.backtest"}


def test_import_is_lazy_and_has_no_side_effects():
    code = ("import rustybt_nb, sys; "
            "print(sorted(m for m in ('pandas','numpy','exchange_calendars','IPython','plotly') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
    assert proc.stderr == ""


def test_top_level_names():
    from rustybt_nb import TradingAlgorithm, run_algorithm

    assert isinstance(TradingAlgorithm, type) and callable(run_algorithm)


# The public import paths of the README (the notebook layer included).
PUBLIC_API = {
    "rustybt_nb": ["TradingAlgorithm", "Backtest", "run_algorithm", "diff", "ResultDiff", "Param", "setup_notebook",
                   "load_ipython_extension"],
    "rustybt_nb.analytics": ["setup_notebook", "load_ipython_extension", "plot_result", "plot_order_timeline",
                             "plot_trailing_stops", "partial_fills", "partial_fill_table", "orders_table", "tweak",
                             "TweakPanel", "plot_partial_fills"],
    "rustybt_nb.api": ["order", "order_value", "order_percent", "order_target", "order_target_value",
                       "order_target_percent", "get_open_orders", "get_order", "cancel_order", "modify_order",
                       "symbol", "symbols", "record", "schedule_function", "date_rules", "time_rules",
                       "get_datetime", "set_slippage", "set_commission"],
    "rustybt_nb.finance.execution": ["ExecutionStyle", "MarketOrder", "LimitOrder", "StopOrder", "StopLimitOrder",
                                     "TrailingStopOrder", "TrailingStopLimitOrder", "BracketOrder", "OCOOrder"],
    "rustybt_nb.finance.order": ["Order", "ORDER_STATUS"],
    "rustybt_nb.finance.slippage": ["NoSlippage", "FixedSlippage", "FixedBasisPointsSlippage",
                                    "VolumeShareSlippage"],
    "rustybt_nb.finance.commission": ["NoCommission", "PerShare", "PerTrade", "PerDollar"],
    "rustybt_nb.data": ["from_frame", "load_csv", "load_parquet", "load_sample", "BarStore", "open_data",
                        "as_bar_store"],
}


@pytest.mark.parametrize("module,name", [(m, n) for m, names in PUBLIC_API.items() for n in names])
def test_public_name_is_importable(module, name):
    mod = importlib.import_module(module)
    assert getattr(mod, name) is not None
    exec(f"from {module} import {name}", {})  # the form user code writes


def test_execution_styles_share_the_base_class():
    from rustybt_nb.finance import execution

    for name in PUBLIC_API["rustybt_nb.finance.execution"]:
        assert issubclass(getattr(execution, name), execution.ExecutionStyle)


def test_order_status_is_a_str_enum():
    from rustybt_nb.finance.order import ORDER_STATUS

    expected = {"OPEN": "open", "HELD": "held", "TRIGGERED": "triggered", "PARTIALLY_FILLED": "partial",
                "FILLED": "filled", "CANCELED": "canceled", "REJECTED": "rejected", "EXPIRED": "expired"}
    for member, value in expected.items():
        assert getattr(ORDER_STATUS, member) == value
        assert isinstance(getattr(ORDER_STATUS, member), str)
    assert ORDER_STATUS.CANCELLED is ORDER_STATUS.CANCELED


def test_api_date_and_time_rules_are_the_algorithm_ones():
    from rustybt_nb import TradingAlgorithm
    from rustybt_nb.api import date_rules, time_rules

    assert TradingAlgorithm.date_rules is date_rules
    assert TradingAlgorithm.time_rules is time_rules
