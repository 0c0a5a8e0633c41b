"""Market data for backtests: the bar store, loaders for user data, and samples.

``from_frame``/``from_frames``/``load_csv``/``load_parquet`` validate user bars and build a
:class:`BarStore`; ``load_sample`` gives the bundled real daily stocks (AAPL, FB, GOOG, IBM,
MSFT), synthetic minute bars made from them, and the TestBrackets series; ``open_data``
(and ``as_bar_store``, which also cuts to ``start``/``end``) accepts any of these inputs:
what a backtest's ``data=`` goes through. User times (``start``, ``end``, ``good_till``)
follow the one rule of :mod:`rustybt_nb.data.times`.
"""

from .bar_store import BarStore
from .loaders import from_frame, from_frames, load_csv, load_parquet
from .samples import list_samples, load_sample
from .sources import as_bar_store, open_data

__all__ = [
    "BarStore",
    "as_bar_store",
    "from_frame",
    "from_frames",
    "list_samples",
    "load_csv",
    "load_parquet",
    "load_sample",
    "open_data",
]
