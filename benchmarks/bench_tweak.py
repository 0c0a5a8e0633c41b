#!/usr/bin/env python
"""Tweak-panel latency: from ``panel.set(...)`` to the figures updated, on one and ten years of daily AAPL.

    python benchmarks/bench_tweak.py [--quick] [--repeat 15] [--profile] [--output PATH]

For each window (2012, and 2003-2012 of the bundled ``data="AAPL"`` sample) the benchmark
makes a panel with ``tweak(Breakout, ...)`` (a breakout entry with a ``BracketOrder``
whose stop-loss and take-profit distances are parameters), calls ``set()`` once to warm
up, then ``--repeat`` times more, cycling through three (stop, target) pairs so that every
call changes the result. Each call gives three figures: the run (``panel.timings['run']``),
the view update (``panel.timings['views']``: the fresh figures built and pushed into the
``FigureWidget``\\s) and the round trip (the wall time of the whole ``set()`` call, which
also moves the controls and redraws the metrics strip, the status line and the code line).
Medians and p90s are printed, with the cost of making (and displaying) the panel, and for
reference the same strategy's plain ``Backtest.run()`` and ``run_metrics()`` times.

Targets (checked on the medians): the view update <= 150 ms on top of the run (both
windows), and the whole round trip <= 300 ms for one year. A missed target prints
``MISS`` and never fails the run. Without a kernel the widgets' messages go nowhere; a
real kernel also encodes and sends them, so the size of one ``set()``'s messages and the
time to encode them are printed too. ``--profile`` adds a cProfile of one ``set()`` per
window (the top cumulative entries under ``rustybt_nb/analytics`` and ``plotly``).

Exit status: 2 when the panel fails (making it or a ``set()``), 0 otherwise. Results are
also written as JSON to ``benchmarks/results/tweak_latest.json``. See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import json
import os
import pstats
import statistics
import sys
import time
import traceback
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS_PATH = HERE / "results" / "tweak_latest.json"

DATA = "AAPL"  # the bundled sample: real daily bars, 2000-03-01 .. 2013-03-01
WINDOWS = {"1y": ("2012-01-01", "2012-12-31"), "10y": ("2003-01-01", "2012-12-31")}
# (stop, target) pairs set in turn: each differs from the one before, so every set() changes the result
VALUES = ({"stop": 0.02, "target": 0.04}, {"stop": 0.04, "target": 0.08}, {"stop": 0.03, "target": 0.06})
TARGETS = {"views_ms": 150.0, "round_trip_1y_ms": 300.0}
REPEAT, QUICK_REPEAT = 15, 5
PROFILE_TOP = 10


# ================================================================================ strategy
def make_strategy() -> type:
    from rustybt_nb import Param, TradingAlgorithm
    from rustybt_nb.finance.execution import BracketOrder, MarketOrder

    class Breakout(TradingAlgorithm):
        """While flat with no open order: when the close reaches the highest high of the
        previous ``lookback`` bars, buy 95 % of the portfolio with a bracket (market entry,
        stop-loss ``stop`` below and take-profit ``target`` above the signal close)."""

        params = {"lookback": 20,
                  "stop": Param(0.03, 0.005, 0.1, 0.005, "stop-loss distance below the signal close"),
                  "target": Param(0.06, 0.01, 0.2, 0.01, "take-profit distance above the signal close")}

        def initialize(self, context):
            context.asset = self.symbol(DATA)

        def handle_data(self, context, data):
            p = self.params
            asset = context.asset
            if context.portfolio.positions[asset].amount or self.get_open_orders(asset):
                return
            highs = data.history(asset, "high", p.lookback + 1, "1d")
            price = data.current(asset, "close")
            if len(highs) > p.lookback and price >= highs.iloc[:-1].max():
                shares = int(context.portfolio.portfolio_value * 0.95 / price)
                if shares > 0:
                    self.order(asset, shares, style=BracketOrder(entry_style=MarketOrder(),
                                                                 stop_loss_price=price * (1 - p.stop),
                                                                 take_profit_price=price * (1 + p.target)))

    return Breakout


# ================================================================================ helpers
def stats(xs: list[float]) -> dict[str, float]:
    """Median and p90 (inclusive quantiles) in milliseconds."""
    ms = [x * 1e3 for x in xs]
    p90 = statistics.quantiles(ms, n=10, method="inclusive")[8] if len(ms) > 1 else ms[0]
    return {"median_ms": statistics.median(ms), "p90_ms": p90, "min_ms": min(ms), "max_ms": max(ms), "n": len(ms)}


def mark(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def label(values: dict[str, float]) -> str:
    return "/".join(f"{v * 100:g}" for v in values.values()) + " %"


def figure_facts(panel: Any) -> dict[str, dict[str, int]]:
    """Per figure of the panel: its traces and the points they hold (x values)."""
    out = {}
    for name, fig in panel.figures.items():
        points = 0
        for trace in fig.data:
            x = getattr(trace, "x", None)
            points += len(x) if x is not None else 0
        out[name] = {"traces": len(fig.data), "points": points}
    return out


class GcClock:
    """Seconds spent in the cyclic garbage collector (all generations), from ``gc.callbacks``."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.full = 0  # generation-2 collections
        self._t0 = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._t0
            self.full += info.get("generation") == 2

    def __enter__(self) -> GcClock:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        gc.callbacks.remove(self)


@contextlib.contextmanager
def recording_comm_messages():
    """Record what the widgets would send to a frontend. Without a kernel every widget
    has a ``comm.DummyComm``, whose ``publish_msg`` drops the message; a kernel would
    encode it (JSON, plus binary buffers) and send it."""
    import comm

    sent: list[tuple[Any, list[Any]]] = []
    original = comm.DummyComm.publish_msg

    def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
        sent.append((data, list(buffers or [])))

    comm.DummyComm.publish_msg = publish_msg
    try:
        yield sent
    finally:
        comm.DummyComm.publish_msg = original


def encode_messages(sent: list[tuple[Any, list[Any]]]) -> dict[str, Any]:
    """Sizes of the recorded messages, and the time a kernel's packer takes to encode them."""
    try:
        from jupyter_client.session import json_packer
    except ImportError:  # pragma: no cover - jupyter_client comes with ipykernel
        def json_packer(obj):
            return json.dumps(obj, default=str).encode()
    t0 = time.perf_counter()
    encoded = [json_packer(data) for data, _ in sent]
    encode_s = time.perf_counter() - t0
    buffer_bytes = sum(memoryview(b).nbytes for _, bufs in sent for b in bufs)
    return {"messages": len(sent), "json_bytes": sum(len(e) for e in encoded), "buffer_bytes": buffer_bytes,
            "encode_ms": encode_s * 1e3}


def profile_set(panel: Any, values: dict[str, float], top: int) -> list[dict[str, Any]]:
    """cProfile one ``set()``; the ``top`` entries by cumulative time whose file is under
    rustybt_nb/analytics or plotly."""
    prof = cProfile.Profile()
    prof.enable()
    panel.set(**values)
    prof.disable()
    st = pstats.Stats(prof)
    rows = []
    for (path, line, func), (_cc, ncalls, tottime, cumtime, _callers) in st.stats.items():  # type: ignore[attr-defined]
        norm = path.replace(os.sep, "/")
        if "rustybt_nb/analytics" in norm:
            where = "rustybt_nb/analytics" + norm.split("rustybt_nb/analytics", 1)[1]
        elif "/plotly/" in norm:
            where = "plotly/" + norm.split("/plotly/", 1)[1]
        else:
            continue
        rows.append({"function": f"{where}:{line}({func})", "ncalls": ncalls, "tottime_ms": tottime * 1e3,
                     "cumtime_ms": cumtime * 1e3})
    rows.sort(key=lambda r: r["cumtime_ms"], reverse=True)
    return rows[:top]


def environment() -> dict[str, Any]:
    import bench_engine  # (this folder is on sys.path when a benchmark runs as a script)

    return bench_engine.environment(("rustybt_nb", "plotly", "ipywidgets", "anywidget", "numpy", "pandas"))


# ================================================================================ measuring
def first_panel(strategy: type) -> dict[str, Any]:
    """The first panel of the process (one year): what the first ``tweak()`` of a notebook
    session costs, imports of plotly / ipywidgets / anywidget and first-use caches included."""
    from rustybt_nb.analytics import tweak

    start, end = WINDOWS["1y"]
    t0 = time.perf_counter()
    panel = tweak(strategy, data=DATA, start=start, end=end)
    make_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    panel._repr_mimebundle_()  # what IPython's display() calls
    display_s = time.perf_counter() - t0
    return {"make_ms": make_s * 1e3, "run_ms": panel.timings["run"] * 1e3, "views_ms": panel.timings["views"] * 1e3,
            "display_ms": display_s * 1e3}


def measure_window(strategy: type, name: str, repeat: int, profile: bool) -> dict[str, Any]:
    from rustybt_nb import Backtest
    from rustybt_nb.analytics import tweak

    start, end = WINDOWS[name]
    out: dict[str, Any] = {"window": name, "start": start, "end": end}

    # making and displaying the panel (warm: a panel was made before in this process)
    t0 = time.perf_counter()
    panel = tweak(strategy, data=DATA, start=start, end=end)
    make_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    panel._repr_mimebundle_()
    display_s = time.perf_counter() - t0
    out["bars"] = panel.backtest.hi - panel.backtest.lo + 1
    out["make"] = {"make_ms": make_s * 1e3, "run_ms": panel.timings["run"] * 1e3,
                   "views_ms": panel.timings["views"] * 1e3, "display_ms": display_s * 1e3}

    # warm-up, then the measured set() calls, each with other values than the one before
    previous = panel.set(**VALUES[0])
    runs, views, trips, gcs, unchanged, full = [], [], [], [], 0, 0
    orders: dict[str, int] = {label(VALUES[0]): len(previous.orders)}
    for i in range(repeat):
        values = VALUES[(i + 1) % len(VALUES)]
        with GcClock() as clock:
            t0 = time.perf_counter()
            result = panel.set(**values)
            trips.append(time.perf_counter() - t0)
        gcs.append(clock.seconds)
        full += clock.full
        runs.append(panel.timings["run"])
        views.append(panel.timings["views"])
        if result.metrics.equals(previous.metrics) and len(result.orders) == len(previous.orders):
            unchanged += 1
        orders[label(values)] = len(result.orders)
        previous = result
    other = [t - r - v for t, r, v in zip(trips, runs, views)]
    out.update(run=stats(runs), views=stats(views), round_trip=stats(trips), other=stats(other), gc=stats(gcs),
               full_collections=full, unchanged_results=unchanged, orders=orders, figures=figure_facts(panel))

    # what a kernel would send for one set()
    with recording_comm_messages() as sent:
        panel.set(**VALUES[(repeat + 1) % len(VALUES)])
    out["messages"] = encode_messages(sent)

    if profile:
        out["profile"] = profile_set(panel, VALUES[(repeat + 2) % len(VALUES)], PROFILE_TOP)

    # reference: the same strategy without the panel
    bt = Backtest(strategy, data=DATA, start=start, end=end)
    bt.run(**VALUES[0])
    plain, metrics_only = [], []
    for i in range(repeat):
        values = VALUES[(i + 1) % len(VALUES)]
        t0 = time.perf_counter()
        bt.run(**values)
        plain.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        bt.run_metrics(**values)
        metrics_only.append(time.perf_counter() - t0)
    out["backtest_run"] = stats(plain)
    out["run_metrics"] = stats(metrics_only)
    return out


# ================================================================================ report
def print_window(w: dict[str, Any]) -> None:
    m = w["make"]
    print(f"\n== {w['window']}: daily {DATA} {w['start']} .. {w['end']} ({w['bars']:,} bars) ==")
    print(f"  make the panel: {m['make_ms']:7.1f} ms (first run {m['run_ms']:.1f} ms, figures {m['views_ms']:.1f} ms, "
          f"the rest is loading the data and building the widgets); display bundle {m['display_ms']:.1f} ms")
    n = w["round_trip"]["n"]
    warning = f"  (WARNING: {w['unchanged_results']} calls did not change the result)" if w["unchanged_results"] else ""
    print(f"  set() x {n} after one warm-up, cycling stop/target {', '.join(label(v) for v in VALUES)}{warning}")
    print(f"    {'':<34} {'median ms':>10} {'p90 ms':>9} {'min ms':>9} {'max ms':>9}")
    for key, text in (("run", "run (timings['run'])"), ("views", "view update (timings['views'])"),
                      ("other", "rest of set() (controls, text)"), ("round_trip", "round trip (whole set() call)"),
                      ("gc", "  of which cyclic GC, any part")):
        s = w[key]
        print(f"    {text:<34} {s['median_ms']:>10.1f} {s['p90_ms']:>9.1f} {s['min_ms']:>9.1f} {s['max_ms']:>9.1f}")
    print(f"    ({w['full_collections']} full (generation 2) collections in the {n} calls)")
    figs = ", ".join(f"{k} ({f['traces']} traces, {f['points']:,} points)" for k, f in w["figures"].items())
    print(f"  figures: {figs}")
    print(f"  orders per stop/target: {', '.join(f'{k}: {v}' for k, v in w['orders'].items())}")
    msg = w["messages"]
    print(f"  one set()'s widget messages (dropped without a kernel): {msg['messages']}, "
          f"{msg['json_bytes'] / 1024:.1f} KiB JSON + {msg['buffer_bytes'] / 1024:.1f} KiB binary buffers; "
          f"encoding them as a kernel does: {msg['encode_ms']:.1f} ms")
    plain, only = w["backtest_run"], w["run_metrics"]
    print(f"  reference, same strategy without the panel: Backtest.run() median {plain['median_ms']:.1f} ms "
          f"(p90 {plain['p90_ms']:.1f}), run_metrics() median {only['median_ms']:.1f} ms (p90 {only['p90_ms']:.1f})")
    if w.get("profile"):
        print("  cProfile of one set() (profiler overhead included), top cumulative under rustybt_nb/analytics "
              "and plotly:")
        print(f"    {'cum ms':>8} {'own ms':>8} {'calls':>7}  function")
        for r in w["profile"]:
            print(f"    {r['cumtime_ms']:>8.1f} {r['tottime_ms']:>8.1f} {r['ncalls']:>7}  {r['function']}")


def check_targets(windows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    checks = []
    for w in windows:
        views = w["views"]["median_ms"]
        checks.append({"what": f"{w['window']} view update (median)", "value_ms": views,
                       "target_ms": TARGETS["views_ms"], "ok": views <= TARGETS["views_ms"]})
    for w in windows:
        if w["window"] == "1y":
            trip = w["round_trip"]["median_ms"]
            checks.append({"what": "1y round trip (median)", "value_ms": trip,
                           "target_ms": TARGETS["round_trip_1y_ms"], "ok": trip <= TARGETS["round_trip_1y_ms"]})
    return checks


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help=f"smoke run: {QUICK_REPEAT} set() calls per window")
    p.add_argument("--repeat", type=int, default=None, help=f"measured set() calls per window (default {REPEAT})")
    p.add_argument("--profile", action="store_true",
                   help="also cProfile one set() per window (top entries under rustybt_nb/analytics and plotly)")
    p.add_argument("--output", default=str(RESULTS_PATH), help="JSON output path")
    args = p.parse_args(argv)
    if args.repeat is None:
        args.repeat = QUICK_REPEAT if args.quick else REPEAT
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    print(f"rustybt_nb tweak-panel benchmark: {DATA} daily, windows "
          f"{', '.join(f'{k} {a}..{b}' for k, (a, b) in WINDOWS.items())}; {args.repeat} set() calls each")
    print("strategy: breakout (close >= highest high of the previous 20 bars) -> bracket: market entry with "
          "95 % of the portfolio, stop-loss and take-profit at the stop/target distances from the signal close")
    print("no browser: the FigureWidgets' messages are built and dropped (a kernel would also encode and send them)")

    failures: list[str] = []
    first: dict[str, Any] = {}
    windows: list[dict[str, Any]] = []
    try:
        strategy = make_strategy()
        t0 = time.perf_counter()
        import rustybt_nb.analytics.tweaking  # noqa: F401
        import_s = time.perf_counter() - t0
        first = first_panel(strategy)
        first["import_tweaking_ms"] = import_s * 1e3
        print(f"\nfirst panel of the process (1y; plotly/ipywidgets/anywidget imports included): make "
              f"{first['make_ms']:.0f} ms (run {first['run_ms']:.1f} ms, figures {first['views_ms']:.1f} ms), "
              f"display bundle {first['display_ms']:.0f} ms")
    except Exception:
        failures.append(traceback.format_exc())
    if not failures:
        for name in WINDOWS:
            print(f"  measuring {name} ...", end="", flush=True)
            t0 = time.perf_counter()
            try:
                w = measure_window(strategy, name, args.repeat, args.profile)
            except Exception:
                print(" failed")
                failures.append(traceback.format_exc())
                continue
            print(f" {time.perf_counter() - t0:.1f} s", flush=True)
            windows.append(w)
    for w in windows:
        print_window(w)

    checks = check_targets(windows)
    if checks:
        print("\n== Targets (medians; p90s above) ==")
        for c in checks:
            print(f"  {c['what']:<28} {c['value_ms']:7.1f} ms  [target <= {c['target_ms']:g} ms: {mark(c['ok'])}]")
        print("  (view update = on top of the run; round trip = the whole set() call, run included)")

    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "environment": environment(),
        "settings": {"data": DATA, "windows": WINDOWS, "values": VALUES, "repeat": args.repeat,
                     "targets": TARGETS, "profile": args.profile},
        "first_panel": first,
        "windows": windows,
        "targets": checks,
        "failures": failures,
        "elapsed_s": time.perf_counter() - started,
    }
    out.write_text(json.dumps(payload, indent=2, default=str))
    print(f"\nresults written to {out}  (total {payload['elapsed_s']:.0f} s)")
    if failures:
        print("FAIL: the panel failed:\n" + "\n".join(failures))
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
