"""Parameter sweeps: :func:`run_sweep` and :class:`SweepResult` (the user-facing call is
:func:`rustybt_nb.research.sweep`, or ``Backtest.sweep``).

Every combination of a grid (or a random sample of it) is run through one
:class:`~rustybt_nb.Backtest` with ``metric_values`` (``run_metrics`` as a dict) — in this process or on a Dask
cluster (:mod:`rustybt_nb.research.runner`) — and becomes one row: the parameters, every
metric of ``BacktestResult.metrics``, ``status`` (``ok``/``error``), the ``error`` text
and the run's ``seconds``. Rows are kept as numbers (the combination's number and its
metrics), not as objects, so a large grid costs little beyond its table.

``store='sweep.parquet'`` writes rows as they finish (a folder of Parquet parts, readable
with ``pandas.read_parquet``); with ``resume=True`` the combinations already stored are
taken from there and not run again. Ctrl-C (or the notebook's stop button) cancels what
is outstanding and returns the rows done so far, with ``complete=False``.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import did_you_mean
from ..metrics import METRIC_NAMES, metric_label, metric_text
from .grid import Grid, combinations
from .runner import Batch, resolve_client, run_rows

__all__ = ["SweepResult", "deflated_sharpe", "run_sweep"]

_FLUSH_ROWS = 200
_FLUSH_SECONDS = 2.0
EULER_GAMMA = 0.5772156649015329


def run_sweep(backtest: Any, grid: Mapping[str, Any], *, maximize: str = "sharpe",
              constraint: Callable[[dict[str, Any]], Any] | None = None, method: str = "grid",
              n_samples: int | None = None, seed: int | None = None, client: Any = None,
              store: str | Path | None = None, resume: bool = False, progress: bool = True,
              window: tuple[Any, Any] | None = None, shared: Any = None, label: str = "sweep") -> SweepResult:
    """Run the combinations of ``grid`` on ``backtest`` (see :func:`rustybt_nb.research.sweep`).
    ``window`` (start, end) cuts each run to those bars, and ``shared`` is ``backtest``
    already on ``client``'s cluster (walk-forward folds); ``label`` names the progress bar."""
    spec = Grid(grid)
    backtest.check_params(dict.fromkeys(spec.names))
    if maximize not in METRIC_NAMES:
        raise ValueError(f"`maximize`={maximize!r} is not a metric; the metrics are {', '.join(METRIC_NAMES)}."
                         f"{did_you_mean(str(maximize), METRIC_NAMES)}")
    todo = combinations(spec, constraint=constraint, method=method, n_samples=n_samples, seed=seed)
    if store is not None:
        _need_pyarrow()
    sink = _Store(Path(store), spec, resume) if store is not None else None
    done = sink.done if sink is not None else {}
    if done:
        todo = (k for k in todo if _key(spec.params(k)) not in done)
    total = _count(spec, constraint, method, n_samples, seed)
    finished: list[Batch] = []
    bar = _progress_bar(total, progress, initial=len(done), label=label)
    errors = 0

    def on_rows(batch: Batch) -> None:
        nonlocal errors
        finished.append(batch)
        errors += len(batch.errors)
        if sink is not None:
            sink.add(batch)
        if bar is not None:
            bar.update(len(batch))
            if errors:
                bar.set_postfix(errors=errors, refresh=False)

    runner, close = resolve_client(client)
    to_run = None if total is None else max(0, total - len(done))  # (an estimate when resuming: sizes batches)
    try:
        complete = run_rows(backtest, window, spec, todo, client=runner, on_rows=on_rows, shared=shared,
                            total=to_run)
    finally:
        close()
        if bar is not None:
            bar.close()
        if sink is not None:
            sink.flush()
    resumed = sink.stored(_matching(spec, done, constraint, method, n_samples, seed)) if done else Batch.concat([])
    ran = sum(len(b) for b in finished)
    table = _table(spec, [resumed, *finished])
    return SweepResult(backtest, spec, table, maximize=maximize, complete=complete, ran=ran,
                       resumed=len(resumed), window=window)


# ====================================================================== the result
class SweepResult:
    """The rows of a sweep (see the module docstring).

    ``table``: one row per combination (index: its number in grid order). ``best(metric)``:
    the parameters of the best ``ok`` row. ``heatmap(x, y)``: a plotly heatmap of a metric
    over two parameters. ``result(**params)``: one combination re-run in full (for the
    views). ``tweak()``: the tweak panel at the best parameters. ``ran`` / ``resumed``:
    combinations run now / taken from the store. ``complete``: False when interrupted.
    ``deflated_sharpe``: the probability that the best Sharpe ratio is not luck, given how
    many combinations were tried.
    """

    def __init__(self, backtest: Any, grid: Grid, table: pd.DataFrame, *, maximize: str, complete: bool, ran: int,
                 resumed: int, window: tuple[Any, Any] | None = None) -> None:
        self.backtest = backtest
        self.grid = grid
        self.table = table
        self.maximize = maximize
        self.complete = complete
        self.ran = ran
        self.resumed = resumed
        self.window = window
        self._deflated: float | None = None

    @property
    def names(self) -> list[str]:
        """The swept parameters."""
        return list(self.grid.names)

    @property
    def ok(self) -> pd.DataFrame:
        """The rows that ran without error."""
        return self.table[self.table["status"] == "ok"]

    def best(self, metric: str | None = None, *, lowest: bool = False) -> dict[str, Any]:
        """The parameters of the ``ok`` row with the highest ``metric`` (default: the one the
        sweep maximised), or the lowest with ``lowest=True`` (e.g. ``best('annual_volatility',
        lowest=True)``); ties go to the earlier combination."""
        metric = self._metric(metric)
        ok = self.ok
        values = ok[metric].astype(float)
        if not len(ok) or values.isna().all():
            raise ValueError(f"no combination has a {metric} to rank by: {len(self.table) - len(ok)} of "
                             f"{len(self.table)} rows are errors (see .table['error'])")
        row = ok.loc[values.idxmin() if lowest else values.idxmax()]
        return {name: _plain(row[name]) for name in self.names}

    def result(self, **params: Any) -> Any:
        """Run one combination in full (the best one, with ``params`` overriding it) and
        return its :class:`~rustybt_nb.results.BacktestResult`."""
        return self._backtest().run(**{**self.best(), **params})

    def tweak(self, **controls: Any) -> Any:
        """The tweak panel (:class:`~rustybt_nb.analytics.TweakPanel`), starting at the best
        parameters."""
        from ..analytics.tweak_panel import TweakPanel

        return TweakPanel(self._backtest(), initial=self.best(), **controls)

    @property
    def deflated_sharpe(self) -> float:
        """The probability that the best combination's Sharpe ratio is positive once the
        number of combinations tried (and their spread of Sharpe ratios, and the best run's
        skew and kurtosis) is taken into account (Bailey & López de Prado, 2014). Re-runs
        the best combination once, in full."""
        if self._deflated is None:
            ok = self.ok["sharpe"].astype(float).dropna()
            result = self.result()
            periods = 365.0 if str(result.settings.get("calendar") or "").upper() in ("24/7", "ALWAYS_OPEN") \
                else 252.0
            self._deflated = deflated_sharpe(result.perf["returns"].to_numpy(dtype=float),
                                             ok.to_numpy() / math.sqrt(periods))
        return self._deflated

    def heatmap(self, x: str, y: str, metric: str | None = None, agg: str = "max") -> Any:
        """A plotly heatmap of ``metric`` (default: the maximised one) over parameters ``x``
        and ``y``, with a colorbar; the other parameters are aggregated with ``agg``
        (``'max'``, ``'min'``, ``'mean'``, ``'median'``). Hovering a cell shows every
        metric, aggregated the same way. Error rows are left out."""
        from ..analytics._deps import require_plotly
        from ..analytics.style import apply_layout
        from ..formatting import escape

        go = require_plotly()
        metric = self._metric(metric)
        for name, arg in ((x, "x"), (y, "y")):
            if name not in self.names:
                raise ValueError(f"`{arg}`={name!r} is not a swept parameter; they are {', '.join(self.names)}."
                                 f"{did_you_mean(str(name), self.names)}")
        if agg not in ("max", "min", "mean", "median"):
            raise ValueError(f"`agg` must be 'max', 'min', 'mean' or 'median', got {agg!r}")
        ok = self.ok
        metrics = [m for m in METRIC_NAMES if m in ok.columns]
        cells = ok.groupby([y, x], sort=True)[metrics].agg(agg)
        z = cells[metric].unstack(x)
        xs, ys = list(z.columns), list(z.index)
        hover = []
        for yv in ys:
            line = []
            for xv in xs:
                if (yv, xv) not in cells.index:
                    line.append("")
                    continue
                row = cells.loc[(yv, xv)]
                text = [f"<b>{escape(x)}={escape(xv)}, {escape(y)}={escape(yv)}</b>"]
                text += [f"{escape(metric_label(m))}: {escape(metric_text(m, row[m]))}" for m in metrics]
                line.append("<br>".join(text))
            hover.append(line)
        others = [n for n in self.names if n not in (x, y)]
        title = f"{metric_label(metric)} by {x} and {y}" + (f" ({agg} over {', '.join(others)})" if others else "")
        fig = go.Figure(go.Heatmap(z=z.to_numpy(dtype=float), x=[str(v) for v in xs], y=[str(v) for v in ys],
                                   text=hover, hoverinfo="text", colorscale="RdYlGn",
                                   colorbar={"title": {"text": metric_label(metric)}}))
        fig.update_xaxes(title_text=x, type="category")
        fig.update_yaxes(title_text=y, type="category")
        return apply_layout(fig, title=escape(title), height=max(360, 60 + 28 * len(ys)))

    def _metric(self, metric: str | None) -> str:
        metric = metric or self.maximize
        if metric not in METRIC_NAMES:
            raise ValueError(f"`metric`={metric!r} is not a metric; the metrics are {', '.join(METRIC_NAMES)}."
                             f"{did_you_mean(str(metric), METRIC_NAMES)}")
        return metric

    def _backtest(self) -> Any:
        return self.backtest if self.window is None else self.backtest.between(*self.window)

    def __repr__(self) -> str:
        ok, n = len(self.ok), len(self.table)
        head = (f"SweepResult: {n} combinations of {', '.join(self.names)} ({ok} ok, {n - ok} errors"
                f"{'' if self.complete else '; interrupted: incomplete'}; {self.ran} run now, {self.resumed} "
                "from the store)")
        if not ok:
            return head
        try:
            best = self.best()
        except ValueError:
            return head
        row = self.ok.loc[self.ok[self.maximize].astype(float).idxmax()]
        return (f"{head}\n  best {metric_label(self.maximize)} {metric_text(self.maximize, row[self.maximize])} "
                f"at {', '.join(f'{k}={v!r}' for k, v in best.items())}")


def deflated_sharpe(best_returns: np.ndarray, trial_sharpes: np.ndarray) -> float:
    """The deflated Sharpe ratio (Bailey & López de Prado, 2014): the probability that the
    best of ``len(trial_sharpes)`` trials has a true Sharpe ratio above zero.

    ``best_returns`` are the best trial's per-period returns; ``trial_sharpes`` every
    trial's per-period (not annualised) Sharpe ratio. The benchmark Sharpe ratio is the
    expected maximum of that many trials with the trials' variance; the best one is
    compared with it after allowing for the skew and kurtosis of its returns."""
    returns = np.asarray(best_returns, dtype=float)
    returns = returns[np.isfinite(returns)]
    sharpes = np.asarray(trial_sharpes, dtype=float)
    sharpes = sharpes[np.isfinite(sharpes)]
    n, t = len(sharpes), len(returns)
    if n == 0 or t < 3 or returns.std(ddof=1) == 0:
        return math.nan
    norm = statistics.NormalDist()
    sr = float(returns.mean() / returns.std(ddof=1))
    spread = float(sharpes.std(ddof=1)) if n > 1 else 0.0
    if n > 1:
        sr0 = spread * ((1 - EULER_GAMMA) * norm.inv_cdf(1 - 1 / n) + EULER_GAMMA * norm.inv_cdf(1 - 1 / (n * math.e)))
    else:
        sr0 = 0.0
    centred = returns - returns.mean()
    skew = float((centred**3).mean() / returns.std(ddof=0) ** 3)
    kurt = float((centred**4).mean() / returns.std(ddof=0) ** 4)
    denominator = 1 - skew * sr + (kurt - 1) / 4 * sr**2
    if denominator <= 0:
        return math.nan
    return float(norm.cdf((sr - sr0) * math.sqrt(t - 1) / math.sqrt(denominator)))


# ====================================================================== rows and the table
def _table(grid: Grid, batches: list[Batch]) -> pd.DataFrame:
    """The rows of ``batches`` as the sweep's table, in combination order."""
    rows = Batch.concat(batches)
    order = np.argsort(rows.ks, kind="stable")
    ks = rows.ks[order]
    data: dict[str, Any] = grid.columns(ks)
    metrics = rows.metrics[order]
    for j, name in enumerate(METRIC_NAMES):
        data[name] = metrics[:, j]
    status = np.full(len(ks), "ok", dtype=object)
    error = np.full(len(ks), "", dtype=object)
    if rows.errors:
        where = np.fromiter(rows.errors, dtype=np.int64, count=len(rows.errors))
        status[where] = "error"
        error[where] = list(rows.errors.values())
    data["status"] = status[order]
    data["error"] = error[order]
    data["seconds"] = rows.seconds[order]
    return pd.DataFrame(data, index=pd.Index(ks, name="combination"))


def _need_pyarrow() -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError as exc:
        raise ImportError("`store=` writes Parquet, which needs pyarrow: pip install 'rustybt_nb[research]' (or "
                          "pip install pyarrow); or leave out `store`") from exc


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _key(params: Mapping[str, Any]) -> str:
    """A combination's identity in a store (its parameters as canonical JSON)."""
    return json.dumps({k: _plain(v) for k, v in params.items()}, sort_keys=True, default=repr)


def _count(grid: Grid, constraint: Any, method: str, n_samples: int | None, seed: int | None) -> int | None:
    """How many combinations the sweep has (for the progress bar); None when counting would
    mean walking a very large grid."""
    if constraint is None:
        return grid.size if method == "grid" else min(grid.size, n_samples or 0)
    if grid.size > 2_000_000:
        return None
    return sum(1 for _ in combinations(grid, constraint=constraint, method=method, n_samples=n_samples, seed=seed))


def _matching(grid: Grid, done: Mapping[str, Any], constraint: Any, method: str, n_samples: int | None,
              seed: int | None) -> list[int]:
    """The combinations of this sweep that the store already holds."""
    return [k for k in combinations(grid, constraint=constraint, method=method, n_samples=n_samples, seed=seed)
            if _key(grid.params(k)) in done]


def _progress_bar(total: int | None, progress: bool, initial: int, label: str) -> Any:
    if not progress:
        return None
    from ..analytics.progress import progress_enabled

    if not progress_enabled():
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # no tqdm: no bar
        return None
    return tqdm(total=total, initial=initial, desc=label, unit="combination", leave=False, dynamic_ncols=True)


class _Store:
    """Rows written as they finish to a folder of Parquet parts; the rows stored before."""

    def __init__(self, path: Path, grid: Grid, resume: bool) -> None:
        self.path = path
        self.grid = grid
        self.pending: list[Batch] = []
        self.last = time.monotonic()
        self.done: dict[str, tuple] = {}
        if path.exists() and not path.is_dir():
            raise ValueError(f"`store`={str(path)!r} is a file; a sweep store is a folder of Parquet parts "
                             "(give a new path, or delete that file)")
        if path.exists() and resume:
            for part in sorted(path.glob("part-*.parquet")):
                frame = pd.read_parquet(part)
                for row in frame.itertuples(index=False):
                    self.done[row.key] = (row.status, row.error, float(row.seconds),
                                          None if row.status != "ok" else tuple(float(getattr(row, m))
                                                                                for m in METRIC_NAMES))
        elif path.exists():
            for part in path.glob("part-*.parquet"):
                part.unlink()
        path.mkdir(parents=True, exist_ok=True)
        self.parts = len(list(path.glob("part-*.parquet")))

    def stored(self, ks: list[int]) -> Batch:
        """The stored rows of combinations ``ks``."""
        n = len(ks)
        seconds, metrics, errors = np.zeros(n), np.full((n, len(METRIC_NAMES)), np.nan), {}
        for i, k in enumerate(ks):
            status, error, seconds[i], values = self.done[_key(self.grid.params(k))]
            if status == "ok":
                metrics[i] = values
            else:
                errors[i] = error
        return Batch(np.asarray(ks, dtype=np.int64), seconds, metrics, errors)

    def add(self, batch: Batch) -> None:
        self.pending.append(batch)
        if sum(map(len, self.pending)) >= _FLUSH_ROWS or time.monotonic() - self.last >= _FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        self.last = time.monotonic()
        if not self.pending:
            return
        batches, self.pending = self.pending, []
        table = _table(self.grid, batches)
        table.insert(0, "key", [_key(self.grid.params(k)) for k in table.index])
        for name in self.grid.names:  # parameters as text: any type survives Parquet
            table[name] = table[name].map(repr)
        self.parts += 1
        table.to_parquet(self.path / f"part-{self.parts:06d}.parquet")
