"""What changed between two backtest results: :func:`diff` and :class:`ResultDiff`.

``rustybt_nb.diff(baseline, current)`` compares two :class:`~rustybt_nb.results.BacktestResult`
objects, typically the same strategy on the same bars with different parameters (what the
tweak panel's baseline and current run are):

* ``.metrics`` — one row per metric of ``BacktestResult.metrics``: baseline, current, delta;
* ``.orders`` — the orders whose fate changed. Orders are matched across the runs by what
  placed them — asset, placing bar, side, style and role (the k-th such order of one run
  with the k-th of the other) — since ids shift as soon as one run places an order more.
  A matched pair is listed when its status, filled quantity, average fill price or closing
  time differ; orders that exist in only one run are listed too. For each: what it was and
  what it became (status, filled, average price, closing time, reason, and its limit and
  stop levels, which a parameter may have moved).

Both render as text (``print(d)``) and as HTML tables in a notebook.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .formatting import escape, is_missing, order_description, short_number, time_text
from .metrics import metric_label, metric_text

__all__ = ["ORDER_KEY", "ResultDiff", "diff"]

#: What identifies "the same order" in two runs (with the occurrence among equal keys).
ORDER_KEY = ["asset", "created_bar", "side", "style", "role"]
#: The fields whose change is a change of fate.
FATE = ["status", "filled", "avg_fill_price", "closed_at"]
_SHOWN = [*FATE, "reason", "id", "limit", "stop"]
CHANGES = ("changed", "only in baseline", "only in current")


class ResultDiff:
    """Baseline vs current (see the module docstring). ``metrics`` and ``orders`` are
    DataFrames; ``str(d)`` is a readable report, and a notebook shows HTML tables."""

    def __init__(self, baseline: Any, current: Any) -> None:
        self.baseline = baseline
        self.current = current
        self.metrics = _metric_table(baseline.metrics, current.metrics)
        self.orders = _order_changes(baseline.orders, current.orders)

    @property
    def changed_metrics(self) -> pd.DataFrame:
        """The rows of ``metrics`` whose value differs."""
        m = self.metrics
        same = (m["baseline"] == m["current"]) | (m["baseline"].isna() & m["current"].isna())
        return m[~same]

    def __bool__(self) -> bool:
        """True when anything differs (a metric or an order's fate)."""
        return bool(len(self.changed_metrics) or len(self.orders))

    def __repr__(self) -> str:
        return self.text()

    def text(self, max_orders: int = 20) -> str:
        """The report: changed metrics (baseline -> current, delta), then one line per order
        whose fate changed (at most ``max_orders``)."""
        tz = getattr(self.current, "tz", None)
        changed = self.changed_metrics
        lines = [f"Metrics: {len(changed)} of {len(self.metrics)} changed"
                 + (" (baseline -> current, change)" if len(changed) else "")]
        width = max((len(metric_label(k)) for k in changed.index), default=0)
        for name, row in changed.iterrows():
            lines.append(f"  {metric_label(name):<{width}}  {_metric(name, row['baseline']):>12} -> "
                         f"{_metric(name, row['current']):<12} {metric_text(name, row['delta'], delta=True, na='n/a')}")
        orders = self.orders
        n_base, n_cur = len(self.baseline.orders), len(self.current.orders)
        lines.append(f"Orders whose fate changed: {len(orders)} (baseline {n_base} orders, current {n_cur})")
        for row in orders.head(max_orders).itertuples(index=False):
            lines.append("  " + _order_line(row, tz))
        if len(orders) > max_orders:
            lines.append(f"  ... and {len(orders) - max_orders} more (see .orders)")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        tz = getattr(self.current, "tz", None)
        m = self.changed_metrics
        metric_rows = "".join(
            f"<tr><td>{escape(metric_label(k))}</td><td style='text-align:right'>{escape(_metric(k, r['baseline']))}"
            f"</td><td style='text-align:right'>{escape(_metric(k, r['current']))}</td>"
            f"<td style='text-align:right'>{escape(metric_text(k, r['delta'], delta=True))}</td></tr>"
            for k, r in m.iterrows())
        metrics = (f"<table><thead><tr><th>metric</th><th>baseline</th><th>current</th><th>change</th></tr></thead>"
                   f"<tbody>{metric_rows}</tbody></table>") if len(m) else "<div>no metric changed</div>"
        order_rows = "".join(
            f"<tr><td>{escape(_when(r.created, tz))}</td><td>{escape(r.asset)}</td><td>{escape(_what(r))}</td>"
            f"<td>{escape(r.change)}</td><td>{escape(_fate(r, 'baseline', tz))}</td>"
            f"<td>{escape(_fate(r, 'current', tz))}</td></tr>"
            for r in self.orders.itertuples(index=False))
        orders = (f"<table><thead><tr><th>placed</th><th>asset</th><th>order</th><th>change</th><th>baseline</th>"
                  f"<th>current</th></tr></thead><tbody>{order_rows}</tbody></table>") if len(self.orders) \
            else "<div>no order changed fate</div>"
        return (f"<div class='rustybt-nb-diff'><b>Metrics</b> ({len(m)} of {len(self.metrics)} changed){metrics}"
                f"<b>Orders whose fate changed</b> ({len(self.orders)}){orders}</div>")


def diff(baseline: Any, current: Any) -> ResultDiff:
    """Compare two :class:`~rustybt_nb.results.BacktestResult` objects (see the module
    docstring)."""
    for name, value in (("baseline", baseline), ("current", current)):
        if not (hasattr(value, "metrics") and hasattr(value, "orders")):
            raise TypeError(f"`{name}` must be a BacktestResult (from run_algorithm or Backtest.run), "
                            f"got {type(value).__name__}")
    return ResultDiff(baseline, current)


# ============================================================== metrics
def _metric_table(a: pd.Series, b: pd.Series) -> pd.DataFrame:
    names = list(dict.fromkeys([*a.index, *b.index]))  # the results' own order
    base = a.reindex(names).astype(float)
    cur = b.reindex(names).astype(float)
    with np.errstate(invalid="ignore"):
        delta = cur - base
    delta[np.isinf(base) & np.isinf(cur) & (base == cur)] = 0.0
    return pd.DataFrame({"baseline": base, "current": cur, "delta": delta}, index=pd.Index(names, name="metric"))


def _metric(name: str, value: Any) -> str:
    return metric_text(name, value, na="n/a", inf="inf")


# ============================================================== orders
def _keyed(orders: pd.DataFrame) -> pd.DataFrame:
    """The orders with their match key: asset, placing bar, side, style, role, occurrence."""
    out = pd.DataFrame({
        "asset": orders["asset"].astype(str),
        "created_bar": orders["created_bar"].astype(np.int64),
        "side": np.where(orders["amount"].to_numpy(dtype=float) > 0, "buy", "sell"),
        "style": orders["style"].astype(str),
        "role": orders["role"].fillna("").astype(str),
        "created": orders["created"],
        "trail_amount": orders["trail_amount"], "trail_percent": orders["trail_percent"],
        "trail_atr": orders.get("trail_atr", np.nan), "atr_window": orders.get("atr_window", np.nan),
        "amount": orders["amount"].abs(),
        **{f: orders[f] for f in _SHOWN},
    })
    out["occurrence"] = out.groupby(ORDER_KEY, sort=False).cumcount()
    return out


def _order_changes(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    left, right = _keyed(a), _keyed(b)
    keys = [*ORDER_KEY, "occurrence"]
    merged = left.merge(right, on=keys, how="outer", suffixes=("_b", "_c"), indicator=True, sort=False)
    both = merged["_merge"] == "both"
    differs = np.zeros(len(merged), dtype=bool)
    for f in FATE:
        x, y = merged[f"{f}_b"], merged[f"{f}_c"]
        differs |= ~((x == y) | (x.isna() & y.isna())).to_numpy()
    keep = ~both.to_numpy() | differs
    merged = merged[keep]
    change = np.select([merged["_merge"] == "left_only", merged["_merge"] == "right_only"],
                       ["only in baseline", "only in current"], "changed")
    described = {c: merged[f"{c}_b"].where(merged["_merge"] != "right_only", merged[f"{c}_c"])
                 for c in ("created", "trail_amount", "trail_percent", "trail_atr", "atr_window", "amount")}
    out = pd.DataFrame({
        "asset": merged["asset"], "created": described["created"], "created_bar": merged["created_bar"],
        "side": merged["side"], "style": merged["style"], "role": merged["role"].replace("", None),
        "amount": described["amount"], "trail_amount": described["trail_amount"],
        "trail_percent": described["trail_percent"], "trail_atr": described["trail_atr"],
        "atr_window": described["atr_window"], "change": change,
    })
    for f in _SHOWN:
        out[f"baseline_{f}"] = merged[f"{f}_b"]
        out[f"current_{f}"] = merged[f"{f}_c"]
    return out.sort_values(["created_bar", "asset"], kind="stable").reset_index(drop=True)


def _when(ts: Any, tz: Any) -> str:
    return time_text(ts, tz, na="?")


def _what(row: Any) -> str:
    """The order as placed (its levels in the baseline, else in the current run), and its
    levels in the current run when they moved."""
    levels = [(row.baseline_limit, row.baseline_stop), (row.current_limit, row.current_stop)]
    if all(is_missing(v) for v in levels[0]) and row.change == "only in current":
        levels.reverse()
    text = (f"{row.side} {short_number(row.amount)} "
            + order_description(row.style, row.role, *levels[0], row.trail_amount, row.trail_percent, row.trail_atr,
                                row.atr_window))
    if row.change == "changed" and row.style in ("limit", "stop", "stop_limit"):
        moved = [f"{name} {short_number(now)}" for name, then, now in
                 (("limit", levels[0][0], levels[1][0]), ("stop", levels[0][1], levels[1][1]))
                 if not is_missing(now) and then != now and not (is_missing(then) and is_missing(now))]
        if moved:
            text += f" (now {', '.join(moved)})"
    return text


def _fate(row: Any, which: str, tz: Any) -> str:
    status = getattr(row, f"{which}_status")
    if is_missing(status):
        return "(no such order)"
    filled = getattr(row, f"{which}_filled")
    text = f"#{int(getattr(row, f'{which}_id'))} {status}"
    if not is_missing(filled) and filled:
        text += f" {short_number(abs(filled))} @ {short_number(getattr(row, f'{which}_avg_fill_price'))}"
    closed = getattr(row, f"{which}_closed_at")
    if not is_missing(closed):
        text += f" {_when(closed, tz)}"
    reason = getattr(row, f"{which}_reason")
    return text + (f" ({reason})" if reason else "")


def _order_line(row: Any, tz: Any) -> str:
    head = f"{_when(row.created, tz)} {row.asset} {_what(row)}"
    return f"{head}: {_fate(row, 'baseline', tz)} -> {_fate(row, 'current', tz)}"
