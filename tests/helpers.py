"""Small shared factories for engine tests: tiny bar stores and a scripted strategy.

``bars(rows)`` builds a one-asset daily store from ``(open, high, low, close[, volume])``
tuples; ``Scripted`` runs ``script[n](algo, context, data)`` on the n-th bar of the run
(0-based); ``run(script, store, **kw)`` is ``run_algorithm(Scripted, data=store, ...)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from rustybt_nb import TradingAlgorithm, run_algorithm
from rustybt_nb.data import from_frame

DEFAULT_VOLUME = 1_000_000

__all__ = ["DEFAULT_VOLUME", "Scripted", "bars", "run"]


def bars(rows: Sequence[Sequence[float]], start: str = "2021-01-04", symbol: str = "X", freq: str = "B"):
    """A daily BarStore for one asset: one row per ``freq`` period starting at ``start``.

    Each row is ``(open, high, low, close)`` or ``(open, high, low, close, volume)``; the
    volume defaults to ``DEFAULT_VOLUME``.
    """
    records = []
    for row in rows:
        if len(row) not in (4, 5):
            raise ValueError(f"a bar row needs 4 or 5 values (o, h, l, c[, v]), got {row!r}")
        o, h, lo, c = (float(x) for x in row[:4])
        v = float(row[4]) if len(row) == 5 else float(DEFAULT_VOLUME)
        records.append((o, h, lo, c, v))
    index = pd.date_range(start, periods=len(records), freq=freq)
    df = pd.DataFrame(records, index=index, columns=["open", "high", "low", "close", "volume"])
    return from_frame(df, symbol=symbol)


class Scripted(TradingAlgorithm):
    """Calls ``script[n](algo, context, data)`` while handling the n-th bar of the run.

    ``init`` (optional) is called as ``init(algo, context)`` at the end of ``initialize``
    (for ``set_slippage``/``set_commission``). ``context.asset`` is the asset of
    ``symbol``; ``context.bar_no`` is the current bar number; ``context.out`` is a dict a
    script may use to keep values for the test to inspect (via ``run(..., out=...)``).
    """

    params = {"script": {}, "symbol": "X", "init": None, "out": None}

    def initialize(self, context):
        context.asset = self.symbol(self.params.symbol)
        context.bar_no = -1
        context.out = self.params.out if self.params.out is not None else {}
        if self.params.init is not None:
            self.params.init(self, context)

    def handle_data(self, context, data):
        context.bar_no += 1
        fn = self.params.script.get(context.bar_no)
        if fn is not None:
            fn(self, context, data)


def run(script: Mapping[int, Callable[..., Any]], store: Any, **kw: Any):
    """``run_algorithm(Scripted, data=store, script=script, **kw)``."""
    return run_algorithm(Scripted, data=store, script=dict(script), **kw)
