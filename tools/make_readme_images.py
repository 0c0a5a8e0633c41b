"""Draw the README pictures from real backtests: `make images` (or `python tools/make_readme_images.py`).

Each signature view is produced by the package's own functions from a real run on the embedded
data, written to an HTML page (plotly.js from the installed plotly package, no network), and
photographed by headless Chromium through Playwright:

- ``docs/images/equity_drawdown.png``  -- ``result.plot()``: price with fills, equity, drawdown;
- ``docs/images/order_timeline.png``   -- ``result.plot_order_timeline()``: every order's life;
- ``docs/images/trailing_stops.png``   -- ``result.plot_trailing_stops()``: the stop level on price;
- ``docs/images/partial_fills.png``    -- ``result.partial_fills()``: volume-capped fills, slice by slice;
- ``docs/images/sweep_heatmap.png``    -- ``sweep(...).heatmap("fast", "slow")``: the Sharpe ratio of every
  combination of a moving-average crossover's grid (tutorial 07's strategy);
- ``docs/images/walk_forward.png``     -- ``walk_forward(...).plot()``: out-of-sample equity with the folds, and
  the in- and out-of-sample Sharpe ratio per fold;
- ``docs/images/tweak_panel.png``      -- ``tweak(...)``: a live panel in a real JupyterLab (controls, metrics
  strip, status line and the equity figure), photographed after a slider was moved with the keyboard.

The panel picture runs a small notebook in a JupyterLab server started for the purpose, driven by
``tools/jupyterlab_driver.py`` (the machinery of the browser test); it is not written when anything in
that notebook fails (an error, a widget or graph that did not draw, a browser console error).

Chromium: ``/usr/bin/chromium`` (Debian's package) unless ``RUSTYBT_NB_CHROMIUM`` names another.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "images"
CHROMIUM = os.environ.get("RUSTYBT_NB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--no-first-run", "--disable-component-update", "--disable-sync"]
WIDTH = 1100
PAGE_CSS = ("body { margin: 0; padding: 12px 16px; background: white; "
            "font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; }")


def results():
    """The runs the pictures are made from (all on embedded AAPL daily data)."""
    from rustybt_nb import TradingAlgorithm, run_algorithm
    from rustybt_nb.examples import SmaCrossBracket
    from rustybt_nb.finance.execution import BracketOrder, LimitOrder, TrailingStopOrder
    from rustybt_nb.finance.slippage import VolumeShareSlippage

    class Alternating(TradingAlgorithm):
        """When flat and idle: alternately a limit-entry bracket, or a market entry protected by
        a 4 % trailing stop. An entry still working after three bars is canceled (the part that
        filled stays protected). Fills are capped at 0.02 % of each bar's volume, so the large
        entries fill in slices."""

        def initialize(self, context):
            context.asset = self.symbol("AAPL")
            context.n = 0
            context.entry = None
            context.waited = 0
            self.set_slippage(VolumeShareSlippage(volume_limit=0.0002, price_impact=0.0))

        def handle_data(self, context, data):
            entry = context.entry
            if entry is not None and self.get_order(entry).open:
                context.waited += 1
                if context.waited > 3:
                    self.cancel_order(entry)
                return
            if context.portfolio.positions[context.asset].amount or self.get_open_orders(context.asset):
                return
            price = data.current(context.asset, "close")
            context.waited = 0
            if context.n % 2 == 0:
                context.entry = self.order(context.asset, 40_000, style=BracketOrder(
                    entry_style=LimitOrder(price * 0.998), stop_loss_price=price * 0.96,
                    take_profit_price=price * 1.04))
            else:
                context.entry = self.order(context.asset, 40_000)
                self.order(context.asset, -40_000, style=TrailingStopOrder(trail_percent=0.04))
            context.n += 1

    equity = run_algorithm(SmaCrossBracket, data="AAPL", start="2010-01-01", end="2013-12-31",
                           capital_base=100_000, fast=10, slow=30)
    orders = run_algorithm(Alternating, data="AAPL", start="2012-01-01", end="2012-06-30",
                           capital_base=5_000_000)
    first_weeks = run_algorithm(Alternating, data="AAPL", start="2012-01-01", end="2012-03-15",
                                capital_base=5_000_000)
    return equity, orders, first_weeks


def research_results():
    """The sweep and the walk-forward run the research pictures are made from: tutorial 07's
    moving-average crossover on embedded AAPL daily data, run in this process."""
    from rustybt_nb import TradingAlgorithm
    from rustybt_nb.research import sweep, walk_forward

    class SmaCross(TradingAlgorithm):
        """Hold AAPL while the `fast`-session mean close is above the `slow`-session one."""

        params = {"fast": 10, "slow": 50}

        def initialize(self, context):
            context.asset = self.symbol("AAPL")

        def handle_data(self, context, data):
            p, asset = self.params, context.asset
            closes = data.history(asset, "close", p.slow, "1d")
            above = closes.iloc[-p.fast:].mean() > closes.mean()
            held = context.portfolio.positions[asset].amount
            if above and not held:
                self.order_target_percent(asset, 0.95)
            elif not above and held:
                self.order_target(asset, 0)

    swept = sweep(SmaCross, {"fast": [5, 10, 15, 20, 25, 30, 40, 50], "slow": [20, 30, 40, 50, 60, 80, 100, 120, 150]},
                  data="AAPL", start="2010-01-01", end="2012-12-31", constraint=lambda p: p["fast"] < p["slow"],
                  client="serial", progress=False)
    folds = walk_forward(SmaCross, {"fast": [5, 10, 20, 30], "slow": [40, 60, 100]}, data="AAPL",
                         start="2006-01-01", end="2012-12-31", train="2Y", test="1Y", client="serial", progress=False)
    return swept, folds


def pages(equity, orders, first_weeks) -> dict[str, str]:
    """HTML body of each picture of a result's views."""
    bodies = figure_bodies({
        "equity_drawdown": equity.plot(),
        "order_timeline": orders.plot_order_timeline(max_orders=16),
        "trailing_stops": orders.plot_trailing_stops(),
    })
    table = first_weeks.partial_fills().to_html()
    bodies["partial_fills"] = f'<div id="table" style="display: inline-block">{table}</div>'
    return bodies


def research_pages(swept, folds) -> dict[str, str]:
    """HTML body of the sweep heatmap and the walk-forward picture."""
    return figure_bodies({"sweep_heatmap": swept.heatmap("fast", "slow"),
                          "walk_forward": folds.plot()})


def figure_bodies(views: dict) -> dict[str, str]:
    bodies = {}
    for name, fig in views.items():
        fig.update_layout(width=WIDTH)
        bodies[name] = fig.to_html(full_html=False, include_plotlyjs=False, config={"displayModeBar": False})
    return bodies


def shoot(bodies: dict[str, str], out: Path = OUT) -> list[Path]:
    from playwright.sync_api import sync_playwright
    from plotly.offline import get_plotlyjs

    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        (Path(tmp) / "plotly.min.js").write_text(get_plotlyjs())
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": WIDTH + 40, "height": 800}, device_scale_factor=1)
        for name, body in bodies.items():
            html = (f'<!doctype html><html><head><meta charset="utf-8"><style>{PAGE_CSS}</style>'
                    f'<script src="plotly.min.js"></script></head><body>{body}</body></html>')
            path = Path(tmp) / f"{name}.html"
            path.write_text(html)
            page.goto(path.as_uri())
            if name == "partial_fills":
                target = page.locator("#table")
            else:
                page.wait_for_selector(".plotly .main-svg")
                target = page.locator(".plotly-graph-div")
            png = out / f"{name}.png"
            target.screenshot(path=str(png))
            written.append(png)
        browser.close()
    return written


TWEAK_VIEWPORT = (960, 1500)  # the panel comes out about 790 px wide: its status line fits on one line


def shoot_tweak_panel(out: Path = OUT) -> Path:
    """``tweak_panel.png``: JupyterLab runs a notebook that builds a tweak panel on a bracket
    strategy; the ``fast`` slider is moved one step with the keyboard (so the metrics strip shows
    the change against the first run); the picture is cropped from the panel's controls to the
    bottom of its equity figure."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import jupyterlab_driver as jl
    from playwright.sync_api import sync_playwright

    reason = jl.missing()
    if reason:
        raise RuntimeError(reason)
    out.mkdir(parents=True, exist_ok=True)
    png = out / "tweak_panel.png"
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        work = Path(tmp)
        (work / "root").mkdir()
        jl.write_tweak_notebook(work / "root" / "tweak_panel.ipynb")
        with jl.LabServer(work / "root", work) as server:
            browser = jl.launch_chromium(pw)
            try:
                lab = jl.LabPage(browser, server, viewport=TWEAK_VIEWPORT)
                session = jl.NotebookSession(lab, "tweak_panel.ipynb")
                report = session.run()
                if report.problems:
                    raise RuntimeError(report.message())
                step = jl.step_slider(session.page, ["fast"])
                page = session.page
                page.evaluate("() => document.activeElement && document.activeElement.blur()")
                late = jl.summarise_console(lab.console)
                if late:
                    raise RuntimeError("browser console errors:\n" + "\n".join(late))
                page.screenshot(path=str(png), clip=jl.panel_clip(page))
                print(f"tweak panel: slider {step['name']} {step['before']} -> {step['after']}, plot updated "
                      f"{step['seconds']:.2f} s after the key press")
            finally:
                browser.close()
    return png


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"folder for the PNG files (default {OUT})")
    parser.add_argument("--only", choices=["figures", "research", "tweak_panel"],
                        help="only the figure pictures (no JupyterLab), only the sweep and walk-forward pictures, "
                             "or only the tweak panel")
    args = parser.parse_args(argv)
    written = []
    bodies = {}
    if args.only in (None, "figures"):
        bodies.update(pages(*results()))
    if args.only in (None, "figures", "research"):
        bodies.update(research_pages(*research_results()))
    if bodies:
        written += shoot(bodies, args.out)
    if args.only in (None, "tweak_panel"):
        written.append(shoot_tweak_panel(args.out))
    for path in written:
        print(f"{path}  {path.stat().st_size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
