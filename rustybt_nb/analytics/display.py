"""Rich notebook display of backtest results and orders.

:func:`result_html` and :func:`order_html` build the HTML that a notebook shows for a
:class:`~rustybt_nb.results.BacktestResult` and an :class:`~rustybt_nb.finance.order.Order`.
They are registered as IPython ``text/html`` formatters by :func:`register_formatters`
(which ``setup_notebook()`` and ``%load_ext rustybt_nb`` call), so the engine classes
carry no notebook code. The plain-text view stays the objects' own ``repr``.

The HTML is a pure function of the object: no random element ids, no "now" timestamps,
no scripts, so saved notebooks and their ``nbval`` checks stay stable; every string that
came from user code or user data (strategy and asset names, tags, reasons, parameters,
log lines) is HTML-escaped.

:func:`display_result` shows the summary plus the figures (equity and drawdown, the
order timeline, the trailing-stop overlay when the run had trailing stops, the
partial-fill table when an order filled in slices); ``%%backtest`` shows those figures
under the result it returns.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any

from ..finance.order import STATUS_NAMES
from ..formatting import NA, escape, is_missing, number, percent, role_text, short_number, time_text
from ..metrics import METRIC_FORMATS, metric_label, metric_text
from .style import STATUS_COLORS

__all__ = [
    "display_result",
    "display_views",
    "order_html",
    "register_formatters",
    "result_html",
    "views_for",
]

_MAX_ORDER_ROWS = 10
_MAX_LOG_LINES = 10
_MAX_EVENTS = 60

_BOX = "font-family: -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif; font-size: 13px; " \
       "line-height: 1.45; max-width: 980px"
_TABLE = "border-collapse: collapse; margin: 4px 0 8px 0; font-size: 12px"
_TH = "text-align: left; padding: 1px 10px 1px 0; border-bottom: 1px solid #ccc"
_TD = "text-align: left; padding: 1px 10px 1px 0"
_TDR = "text-align: right; padding: 1px 10px 1px 0"
_LABEL = "text-align: left; padding: 1px 6px 1px 0; color: #555"
_MUTED = "color: #666"


# ====================================================================== html pieces
def _badge(text: str, color: str) -> str:
    return (f'<span style="display: inline-block; padding: 0 6px; margin-left: 6px; border-radius: 8px; '
            f'font-size: 11px; color: #fff; background: {color}">{escape(text)}</span>')


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], right: Iterable[int] = ()) -> str:
    """A table from already-escaped cells; columns in ``right`` are right-aligned."""
    right = set(right)
    head = "".join(f'<th style="{_TH}">{h}</th>' for h in header)
    body = "".join(
        "<tr>" + "".join(f'<td style="{_TDR if i in right else _TD}">{c}</td>' for i, c in enumerate(row)) + "</tr>"
        for row in rows)
    return f'<table style="{_TABLE}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _symbol(asset: Any) -> str:
    return str(getattr(asset, "symbol", asset))


# ====================================================================== result
_COUNT = partial(number, decimals=0)
def _metrics_table(metrics: Any) -> str:
    known = [k for k in METRIC_FORMATS if k in metrics.index]
    names = known + [k for k in metrics.index if k not in METRIC_FORMATS]  # metrics added later still show up
    cells = [(escape(metric_label(k)), escape(metric_text(k, metrics[k]))) for k in names]
    per_row = 4
    rows = []
    for i in range(0, len(cells), per_row):
        chunk = cells[i:i + per_row]
        rows.append("<tr>" + "".join(f'<td style="{_LABEL}">{k}</td><td style="{_TDR}">{v}</td>'
                                     for k, v in chunk) + "</tr>")
    return f'<table style="{_TABLE}"><tbody>{"".join(rows)}</tbody></table>'


def _status_counts(orders: Any) -> list[tuple[str, int]]:
    if not len(orders):
        return []
    counts = orders["status"].astype(str).value_counts()
    known = [(s, int(counts[s])) for s in STATUS_NAMES if s in counts.index]
    other = sorted((str(s), int(n)) for s, n in counts.items() if s not in STATUS_NAMES)
    return known + other


def _short_repr(value: Any, limit: int = 80) -> str:
    """``repr`` without memory addresses (so the HTML is the same on every run), shortened."""
    text = re.sub(r" at 0x[0-9a-fA-F]+", "", repr(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _text(value: Any) -> str:
    return "" if is_missing(value) else str(value)


def _side(amount: Any) -> str:
    if is_missing(amount):
        return NA
    return "buy" if float(amount) > 0 else "sell"


def _orders_preview(orders: Any) -> str:
    n = len(orders)
    if not n:
        return ""
    head = orders.head(_MAX_ORDER_ROWS)
    rows = []
    for o in head.to_dict("records"):
        amount, filled = o.get("amount"), o.get("filled")
        cells = [o.get("id"), o.get("asset"), _side(amount), str(o.get("style") or "").replace("_", " "),
                 short_number(None if is_missing(amount) else abs(amount)),
                 short_number(None if is_missing(filled) else abs(filled)), number(o.get("avg_fill_price")),
                 o.get("status"), _text(o.get("tag")), _text(o.get("reason"))]
        rows.append([escape(c) for c in cells])
    more = f" (first {_MAX_ORDER_ROWS} of {n})" if n > _MAX_ORDER_ROWS else ""
    table = _table(["id", "asset", "side", "style", "amount", "filled", "avg price", "status", "tag", "reason"],
                   rows, right=(0, 4, 5, 6))
    return (f'<details><summary style="cursor: pointer">Orders{escape(more)}</summary>{table}'
            f'<div style="{_MUTED}">all orders: <code>result.orders</code> or <code>result.orders_table()'
            f'</code>; events: <code>result.order_log_text()</code></div></details>')


def _logs_preview(logs: Any, tz: Any = None) -> str:
    n = len(logs)
    if not n:
        return ""
    tail = logs.tail(_MAX_LOG_LINES)
    lines = [f"{time_text(r['dt'], tz)}  {str(r['level']).upper():<7} {r['message']}"
             for r in tail.to_dict("records")]
    more = f" (last {_MAX_LOG_LINES} of {n} lines)" if n > _MAX_LOG_LINES else f" ({n} lines)"
    text = "\n".join(lines)
    return (f'<details><summary style="cursor: pointer">Log{escape(more)}</summary>'
            f'<pre style="font-size: 12px; margin: 4px 0">{escape(text)}</pre></details>')


def result_html(result: Any) -> str:
    """The HTML summary of a :class:`~rustybt_nb.results.BacktestResult`.

    A header (strategy, symbols, dates, frequency, badges for synthetic data and runs
    that stopped early), the metrics, order status counts, the run settings, previews of
    the orders and the log (collapsed), and the calls that draw the views.
    Deterministic, and every user string is escaped.
    """
    s = result.settings or {}
    m = result.metrics
    info = result.run_info or {}
    tz = getattr(result, "tz", None)  # minute runs: times in the exchange's zone, as in result.summary()
    symbols = list(s.get("symbols") or [])
    shown_symbols = ", ".join(symbols[:8]) + (f" and {len(symbols) - 8} more" if len(symbols) > 8 else "")
    badges = ""
    if s.get("synthetic"):
        badges += _badge("synthetic data", "#e377c2")
    if info.get("completed") is False:
        badges += _badge("stopped early", "#d62728")
    header = (f'<div style="font-size: 15px; margin-bottom: 2px"><b>Backtest</b> '
              f'<code>{escape(s.get("algorithm", "?"))}</code> on <b>{escape(shown_symbols or "?")}</b>{badges}</div>'
              f'<div style="{_MUTED}">{escape(time_text(s.get("start"), tz))} → '
              f'{escape(time_text(s.get("end"), tz))} · '
              f'{escape(s.get("frequency", "?"))} bars · {escape(_COUNT(info.get("bars")))} bars simulated'
              f' · calendar {escape(s.get("calendar") or NA)}</div>')
    error = ""
    if info.get("error"):
        error = (f'<div style="color: #d62728; margin: 4px 0">The strategy raised {escape(info["error"])}; '
                 f'these numbers cover the bars before it.</div>')
    counts = _status_counts(result.orders)
    if counts:
        parts = " · ".join(f'<span style="color: {STATUS_COLORS.get(st, "#333")}">{escape(st)}</span> {n}'
                           for st, n in counts)
        orders_line = f"<b>{len(result.orders)}</b> orders: {parts} · <b>{len(result.fills)}</b> fills"
    else:
        orders_line = "no orders"
    params = s.get("params") or {}
    params_text = ", ".join(f"{k}={_short_repr(v)}" for k, v in params.items())
    settings_line = (f'capital {escape(number(s.get("capital_base")))} · fill model {escape(s.get("fill_model", "?"))}'
                     f' · slippage {escape(s.get("slippage", "?"))} · commission {escape(s.get("commission", "?"))}')
    if params_text:
        settings_line += f" · params <code>{escape(params_text)}</code>"
    views = ("<code>result.plot()</code> equity &amp; drawdown · <code>result.plot_order_timeline()</code> "
             "order lifecycles · <code>result.plot_trailing_stops()</code> trailing stops on price · "
             "<code>result.partial_fills()</code> fills in slices · <code>result.orders_table()</code>")
    return (
        f'<div class="rustybt-nb-result" style="{_BOX}">{header}{error}'
        f"{_metrics_table(m)}"
        f'<div style="margin: 2px 0">{orders_line}</div>'
        f'<div style="{_MUTED}; margin: 2px 0">{settings_line}</div>'
        f"{_orders_preview(result.orders)}{_logs_preview(result.logs, tz)}"
        f'<div style="{_MUTED}; margin-top: 4px">Views: {views}</div></div>'
    )


# ====================================================================== order
def _event_row(e: Any) -> list[str]:
    qty = "" if is_missing(e.qty) else f"{short_number(e.qty, signed=True)} @ {short_number(e.price)}"
    move = f"{e.status_before or 'new'} → {e.status_after}"
    return [escape(e.seq), escape(time_text(e.dt)), escape(e.kind), escape(move), escape(qty), escape(e.reason)]


def order_html(order: Any) -> str:
    """The HTML view of an :class:`~rustybt_nb.finance.order.Order`: status, side,
    amount and filled, price levels, bracket/OCO links and its event history with the
    reason of every change (long histories show their first and last events)."""
    status = str(order.status) if order.status is not None else "new"
    amount = float(order.amount)
    side = "buy" if amount > 0 else "sell"
    style = str(order.style or "").replace("_", " ")
    role = role_text(getattr(order, "role", None))
    role = f" ({role})" if role else ""
    header = (f'<div style="font-size: 14px"><b>Order #{escape(order.id)}</b> {escape(side)} '
              f'{escape(short_number(abs(amount)))} <b>{escape(_symbol(order.asset))}</b> · '
              f'{escape(style)}{escape(role)}'
              f'{_badge(status, STATUS_COLORS.get(status, "#333"))}</div>')
    avg = order.avg_fill_price if getattr(order, "filled", 0) else None
    fields: list[tuple[str, str]] = [
        ("amount", short_number(amount)), ("filled", short_number(order.filled)),
        ("open", short_number(amount - float(order.filled))),
        ("avg fill price", short_number(avg)), ("limit", short_number(order.limit)), ("stop", short_number(order.stop)),
    ]
    if not is_missing(getattr(order, "trail_amount", None)):
        fields.append(("trail amount", short_number(order.trail_amount)))
    if not is_missing(getattr(order, "trail_percent", None)):
        fields.append(("trail percent", percent(order.trail_percent)))
    if not is_missing(getattr(order, "limit_offset", None)):
        fields.append(("limit offset", short_number(order.limit_offset)))
    fields += [("time in force", str(getattr(order, "tif", "") or NA)),
               ("created", time_text(getattr(order, "created", None))),
               ("commission", number(getattr(order, "commission", None)))]
    tag = getattr(order, "tag", None)
    if tag is not None:
        fields.append(("tag", str(tag)))
    if order.reason:
        fields.append(("reason", str(order.reason)))
    legs = []
    if order.parent_id is not None:
        legs.append(f"parent #{order.parent_id}")
    if order.child_ids:
        legs.append("children " + ", ".join(f"#{i}" for i in order.child_ids))
    if order.oco_ids:
        legs.append("one-cancels-other with " + ", ".join(f"#{i}" for i in order.oco_ids))
    fields.append(("legs", "; ".join(legs) if legs else "none"))
    props = "".join(f'<tr><td style="{_LABEL}">{escape(k)}</td><td style="{_TD}">{escape(v)}</td></tr>'
                    for k, v in fields)
    events = list(order.events or [])
    if len(events) > _MAX_EVENTS:
        head, tail = events[:40], events[-(_MAX_EVENTS - 40):]
        gap = ["", "", "…", f"{len(events) - len(head) - len(tail)} more events (see order.events)", "", ""]
        rows = [_event_row(e) for e in head] + [[escape(c) for c in gap]] + [_event_row(e) for e in tail]
    else:
        rows = [_event_row(e) for e in events]
    ev_table = _table(["#", "time", "event", "status", "fill", "reason"], rows, right=(0,)) if rows \
        else f'<div style="{_MUTED}">no events yet</div>'
    return (f'<div class="rustybt-nb-order" style="{_BOX}">{header}'
            f'<table style="{_TABLE}"><tbody>{props}</tbody></table>'
            f'<div style="{_MUTED}">events ({len(events)})</div>{ev_table}</div>')


# ====================================================================== display
def views_for(result: Any) -> list[str]:
    """The names of the result methods :func:`display_views` would draw, in order:
    ``plot`` always; ``plot_order_timeline`` when there are orders;
    ``plot_trailing_stops`` when an order trailed; ``partial_fills`` when an order
    filled in more than one slice."""
    names = ["plot"]
    orders, fills = result.orders, result.fills
    if len(orders):
        names.append("plot_order_timeline")
        trailing = orders["style"].astype(str).str.startswith("trailing")
        for col in ("trail_amount", "trail_percent"):
            if col in orders:
                trailing = trailing | orders[col].notna()
        if bool(trailing.any()):
            names.append("plot_trailing_stops")
    if len(fills) and int(fills.groupby("order_id").size().max()) > 1:
        names.append("partial_fills")
    return names


def _display() -> Callable[..., Any]:
    from IPython.display import display

    return display


def display_views(result: Any, *, display: Callable[..., Any] | None = None) -> list[str]:
    """Display the figures of :func:`views_for` one after the other; returns the names
    shown. A view that cannot be drawn (plotly missing, a drawing error) is replaced by a
    one-line note, so the other views still appear."""
    show = display or _display()
    shown = []
    for name in views_for(result):
        try:
            obj = getattr(result, name)()
        except ImportError as exc:
            show({"text/plain": f"result.{name}() needs the notebook extras ({exc}); "
                                f"pip install 'rustybt_nb[notebook]'"}, raw=True)
            continue
        except Exception as exc:  # a drawing problem must not hide the result
            show({"text/plain": f"result.{name}() failed: {type(exc).__name__}: {exc}"}, raw=True)
            continue
        show(obj)
        shown.append(name)
    return shown


def display_result(result: Any, views: bool = True, *, display: Callable[..., Any] | None = None) -> list[str]:
    """Display the HTML summary of ``result`` and, with ``views=True``, its figures
    (see :func:`views_for`). Returns the names of the views shown."""
    show = display or _display()
    show({"text/plain": result.summary(), "text/html": result_html(result)}, raw=True)
    return display_views(result, display=show) if views else []


# ====================================================================== registration
_RESULT_TYPE = ("rustybt_nb.results", "BacktestResult")
_ORDER_TYPE = ("rustybt_nb.finance.order", "Order")


def _registered(formatter: Any, type_key: tuple[str, str], func: Callable[..., str]) -> bool:
    if formatter.deferred_printers.get(type_key) is func:
        return True
    return any(f"{t.__module__}.{t.__name__}" == ".".join(type_key) and p is func
               for t, p in formatter.type_printers.items())


def formatters_registered(shell: Any) -> bool:
    """Whether ``shell`` renders results and orders with :func:`result_html` / :func:`order_html`."""
    fmt = shell.display_formatter.formatters["text/html"]
    return _registered(fmt, _RESULT_TYPE, result_html) and _registered(fmt, _ORDER_TYPE, order_html)


def register_formatters(shell: Any) -> bool:
    """Register the ``text/html`` formatters for results and orders on ``shell``.

    Registration is by type name, so it imports nothing from the engine. Returns False
    when they were already registered (nothing changed)."""
    if formatters_registered(shell):
        return False
    fmt = shell.display_formatter.formatters["text/html"]
    fmt.for_type_by_name(*_RESULT_TYPE, result_html)
    fmt.for_type_by_name(*_ORDER_TYPE, order_html)
    return True
