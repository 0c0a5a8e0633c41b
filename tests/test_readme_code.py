"""The README's Python examples run as written (in order, sharing one namespace)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.DOTALL)
    return [b for b in blocks if not re.search(r"^\s*%", b, flags=re.MULTILINE)]  # cells with magics need IPython


def test_the_strategy_and_backtest_examples_run():
    blocks = python_blocks()
    runnable = [b for b in blocks if "run_algorithm(" in b or "Backtest(" in b]
    assert len(runnable) >= 2
    namespace: dict = {}
    for block in runnable:
        exec(compile(block, str(README), "exec"), namespace)
    assert namespace["result"].settings["algorithm"] == "Breakout"
    assert namespace["res"].settings["params"]["lookback"] == 50
    assert isinstance(namespace["bt"].run_metrics(), pd.Series)
    assert len(namespace["crossover"].trades) > 5  # the indicator example trades
