"""Walk-forward optimisation: :func:`run_walk_forward` and :class:`WalkForwardResult` (the
user-facing call is :func:`rustybt_nb.research.walk_forward`, or ``Backtest.walk_forward``).

The simulated span is cut into folds: a training window of ``train`` (``'3Y'``, ``'6M'``,
``'90D'``, ``'2W'``, ``'1Q'`` or a ``pandas.DateOffset``) followed by a test window of
``test``; the next fold starts one test window later. Windows are counted from the
backtest's ``start`` as written (calendar years from ``'2006-01-01'``), or from the first
bar's date when no start was given. Rolling folds (default) move their
training window along; anchored ones (``anchored=True``) keep it starting at the first
bar. On each fold the grid is swept over the training window, the best parameters (by
``maximize``) are run on the test window, and the test runs are stitched into one
out-of-sample equity curve (each test window compounding on the last).

A test window never overlaps its training window, and only bars before a window's
start are visible to ``data.history`` during it (indicator warm-up looks back, never forward).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from ..metrics import metric_label, metric_text
from .runner import resolve_client, scatter
from .sweeps import SweepResult, run_sweep

__all__ = ["WalkForwardResult", "fold_windows", "run_walk_forward"]

_UNITS = {"D": "days", "W": "weeks", "M": "months", "Q": "months", "Y": "years"}


def span(value: Any, arg: str) -> pd.DateOffset:
    """``'3Y'`` / ``'6M'`` / ``'90D'`` / ``'2W'`` / ``'1Q'`` (or a DateOffset / Timedelta) as
    a DateOffset."""
    if isinstance(value, pd.DateOffset):
        return value
    if isinstance(value, pd.Timedelta):
        return pd.DateOffset(days=value.days)
    match = re.fullmatch(r"\s*(\d+)\s*([DWMQY])\s*", str(value), flags=re.IGNORECASE) if isinstance(value, str) \
        else None
    if match is None:
        raise ValueError(f"`{arg}`={value!r} is not a window length; write it like '3Y', '6M', '90D', '2W' or "
                         "'1Q' (or pass a pandas.DateOffset)")
    n, unit = int(match.group(1)), match.group(2).upper()
    if n < 1:
        raise ValueError(f"`{arg}`={value!r} must be at least one {_UNITS[unit][:-1]}")
    return pd.DateOffset(**{_UNITS[unit]: n * (3 if unit == "Q" else 1)})


def fold_windows(first: pd.Timestamp, last: pd.Timestamp, train: pd.DateOffset, test: pd.DateOffset,
                 anchored: bool) -> list[tuple[pd.Timestamp, pd.Timestamp, pd.Timestamp, pd.Timestamp]]:
    """``(train_start, train_end, test_start, test_end)`` dates (inclusive) of each fold
    between dates ``first`` and ``last``: consecutive test windows that tile the span after
    the first training window (the last one may be shorter)."""
    day = pd.Timedelta(days=1)
    folds = []
    while True:
        shift = test * len(folds) if folds else pd.DateOffset(days=0)
        test_start = first + train + shift
        if test_start > last:
            return folds
        train_start = first if anchored else first + shift
        folds.append((train_start, test_start - day, test_start, min(test_start + test - day, last)))


def run_walk_forward(backtest: Any, grid: Mapping[str, Any], *, train: Any = "3Y", test: Any = "1Y",
                     anchored: bool = False, maximize: str = "sharpe",
                     constraint: Callable[[dict[str, Any]], Any] | None = None, method: str = "grid",
                     n_samples: int | None = None, seed: int | None = None, client: Any = None,
                     progress: bool = True) -> WalkForwardResult:
    """Walk-forward optimisation of ``grid`` on ``backtest`` (see the module docstring)."""
    train_span, test_span = span(train, "train"), span(test, "test")
    first, last = (_local_date(t, backtest.store.tz) for t in (backtest.start, backtest.end))
    first = _origin(backtest.start_as_given, first, backtest.store.tz)
    windows = fold_windows(first, last, train_span, test_span, anchored)
    if not windows:
        raise ValueError(f"the backtest runs from {first.date()} to {last.date()}, too short for one fold of "
                         f"train={train!r} then test={test!r}; shorten them or run over a longer span")
    runner, close = resolve_client(client)
    rows, sweeps, results = [], [], []
    complete = True
    try:
        shared = scatter(runner, backtest) if runner != "serial" else None
        for k, (a, b, c, d) in enumerate(windows, 1):
            try:
                swept = run_sweep(backtest, grid, maximize=maximize, constraint=constraint, method=method,
                                  n_samples=n_samples, seed=seed, client=runner, progress=progress,
                                  window=(a, b), shared=shared, label=f"fold {k}/{len(windows)}")
            except KeyboardInterrupt:
                complete = False
                break
            sweeps.append(swept)
            if not swept.complete:
                complete = False
                break
            best = swept.best()
            row = swept.ok.loc[swept.ok[maximize].astype(float).idxmax()]
            tested = backtest.between(c, d).run(**best)
            results.append(tested)
            span_in = backtest.between(a, b)
            rows.append({"fold": k, "train_start": span_in.start, "train_end": span_in.end,
                         "test_start": tested.settings["start"], "test_end": tested.settings["end"], **best,
                         "in_sample": float(row[maximize]), "out_of_sample": float(tested.metrics[maximize])})
    finally:
        close()
    folds = pd.DataFrame(rows).set_index("fold") if rows else pd.DataFrame()
    return WalkForwardResult(backtest, folds, sweeps, results, maximize=maximize, complete=complete,
                             anchored=anchored)


def _origin(given: Any, first_bar: pd.Timestamp, tz: str) -> pd.Timestamp:
    """The date the folds are counted from: the ``start`` the backtest was given, as
    written (so ``train='2Y', test='1Y'`` from ``'2006-01-01'`` gives calendar-year test
    windows from 2008-01-01, not from the first session's date), unless no start was given
    or the data begin more than a week after it: then the first bar's date."""
    if given is None:
        return first_bar
    try:
        start = _local_date(pd.Timestamp(given), tz)
    except (TypeError, ValueError):
        return first_bar
    return start if first_bar - pd.Timedelta(days=7) <= start <= first_bar else first_bar


def _local_date(ts: pd.Timestamp, tz: str) -> pd.Timestamp:
    """The session date of a bar time (minute bars: its date in the exchange's zone)."""
    return (ts.tz_convert(tz).tz_localize(None) if ts.tzinfo is not None else ts).normalize()


class WalkForwardResult:
    """The folds of a walk-forward run.

    ``folds``: one row per fold — ``train_start``, ``train_end``, ``test_start``,
    ``test_end`` (first and last bar of each window), the chosen parameters, and the
    maximised metric ``in_sample`` (the best of the training sweep) and ``out_of_sample``
    (the chosen parameters on the test window). ``equity``: the stitched out-of-sample
    portfolio value. ``efficiency``: mean out-of-sample over mean in-sample value of the
    maximised metric (near 1: the training results carried over; near 0 or negative: they
    did not). ``sweeps`` / ``results``: each fold's training sweep and test run.
    ``plot()``: the out-of-sample equity with the folds marked, and the metric per fold.
    """

    def __init__(self, backtest: Any, folds: pd.DataFrame, sweeps: list[SweepResult], results: list[Any], *,
                 maximize: str, complete: bool, anchored: bool) -> None:
        self.backtest = backtest
        self.folds = folds
        self.sweeps = sweeps
        self.results = results
        self.maximize = maximize
        self.complete = complete
        self.anchored = anchored

    @property
    def equity(self) -> pd.Series:
        """The out-of-sample portfolio value, test window after test window, each starting
        from where the last one ended."""
        if not self.results:
            return pd.Series(dtype=float, name="portfolio_value")
        returns = pd.concat([r.perf["returns"] for r in self.results])
        start = float(self.results[0].metrics["start_value"])
        return (start * (1.0 + returns).cumprod()).rename("portfolio_value")

    @property
    def efficiency(self) -> float:
        """Mean out-of-sample over mean in-sample value of the maximised metric."""
        if not len(self.folds):
            return float("nan")
        inside = float(self.folds["in_sample"].mean())
        return float(self.folds["out_of_sample"].mean()) / inside if inside else float("nan")

    def plot(self, height: int | None = None) -> Any:
        """Out-of-sample equity (test windows shaded, the chosen parameters on hover) above
        the in- and out-of-sample value of the maximised metric per fold."""
        from ..analytics._deps import require_plotly, require_subplots
        from ..analytics.style import EQUITY_COLOR, apply_layout, naive_times
        from ..formatting import escape

        go = require_plotly()
        fig = require_subplots()(rows=2, cols=1, row_heights=[0.65, 0.35], vertical_spacing=0.12)
        equity = self.equity
        fig.add_trace(go.Scatter(x=naive_times(equity.index), y=equity.to_numpy(), mode="lines",
                                 name="out-of-sample equity", line={"color": EQUITY_COLOR, "width": 1.6},
                                 hovertemplate="%{y:,.2f}<extra>out-of-sample</extra>"), row=1, col=1)
        params = [c for c in self.folds.columns if c not in
                  ("train_start", "train_end", "test_start", "test_end", "in_sample", "out_of_sample")]
        labels = []
        for k, row in self.folds.iterrows():
            chosen = ", ".join(f"{p}={row[p]!r}" for p in params)
            labels.append(f"fold {k}")
            # Timestamps, not datetime64 scalars: plotly writes those into shapes and
            # annotations as integer nanoseconds, which a date axis cannot place
            x0, x1 = (pd.Timestamp(t) for t in naive_times([row["test_start"], row["test_end"]]))
            fig.add_vrect(x0=x0, x1=x1, fillcolor="#1f77b4" if k % 2 else "#ff7f0e", opacity=0.07, line_width=0,
                          row=1, col=1)
            fig.add_annotation(x=x0, y=1, yref="y domain", text=escape(f"{k}: {chosen}"), showarrow=False,
                               xanchor="left", yanchor="top", font={"size": 10}, row=1, col=1)
        metric = metric_label(self.maximize)
        for column, color, name in (("in_sample", "#9e9e9e", "in sample (training)"),
                                    ("out_of_sample", EQUITY_COLOR, "out of sample (test)")):
            fig.add_trace(go.Bar(x=labels, y=self.folds[column].to_numpy(dtype=float), name=name,
                                 marker_color=color,
                                 hovertemplate=f"%{{y:.3f}}<extra>{escape(name)}</extra>"), row=2, col=1)
        fig.update_yaxes(title_text="portfolio value", tickformat=",.0f", row=1, col=1)
        fig.update_yaxes(title_text=escape(metric), row=2, col=1)
        title = (f"Walk-forward ({'anchored' if self.anchored else 'rolling'}, {len(self.folds)} folds): "
                 f"out-of-sample {metric} {metric_text(self.maximize, self.folds['out_of_sample'].mean())} vs "
                 f"in-sample {metric_text(self.maximize, self.folds['in_sample'].mean())}, efficiency "
                 f"{self.efficiency:.2f}") if len(self.folds) else "Walk-forward: no fold ran"
        return apply_layout(fig, title=escape(title), height=height or 620, barmode="group")

    def __repr__(self) -> str:
        if not len(self.folds):
            return "WalkForwardResult: no fold ran"
        metric = metric_label(self.maximize)
        lines = [f"WalkForwardResult: {len(self.folds)} {'anchored' if self.anchored else 'rolling'} folds"
                 f"{'' if self.complete else ' (interrupted)'}; {metric} in sample "
                 f"{metric_text(self.maximize, self.folds['in_sample'].mean())}, out of sample "
                 f"{metric_text(self.maximize, self.folds['out_of_sample'].mean())}; efficiency "
                 f"{self.efficiency:.2f}"]
        equity = self.equity
        if len(equity):
            lines.append(f"  out-of-sample equity {equity.iloc[0]:,.2f} -> {equity.iloc[-1]:,.2f}")
        return "\n".join(lines)

