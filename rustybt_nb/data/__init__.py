"""Market data for backtests: the bar store, loaders for user data, and samples.

``from_frame``/``from_frames``/``load_csv``/``load_parquet`` validate user bars and build a
:class:`BarStore`; ``load_sample`` gives the bundled real daily stocks (AAPL, FB, GOOG, IBM,
MSFT), synthetic minute bars made from them, and the TestBrackets series; ``as_bar_store``
accepts any of these inputs (what ``run_algorithm(data=...)`` uses).
"""

from .bar_store import BarStore
from .loaders import as_bar_store, from_frame, from_frames, load_csv, load_parquet
from .samples import list_samples, load_sample

__all__ = [
    "BarStore",
    "as_bar_store",
    "from_frame",
    "from_frames",
    "list_samples",
    "load_csv",
    "load_parquet",
    "load_sample",
]
