"""What renders in a real JupyterLab, in a real (headless) Chromium.

One JupyterLab server is started for the session (free local port, random token, isolated
config and runtime folders, news and update checks off) on copies of the tutorials with their
outputs removed, and one Chromium is driven through Playwright (Debian's ``/usr/bin/chromium``;
``.ci/run`` installs it). The machinery is ``tools/jupyterlab_driver.py`` (shared with the README
pictures).

- Every notebook in ``notebooks/`` (one test item each) is opened, run top to bottom once the
  kernel is idle, and saved. It fails on an error output in the saved file, a cell left
  unexecuted, "Error displaying widget" or a lingering "Loading widget...", a browser console
  error, or a plotly graph that was not drawn (no SVG, no data, dates sent as nanoseconds).
- In the notebook with a tweak panel (or, while no tutorial builds one, a scratch notebook that
  does), a slider is moved with the keyboard and the panel's graph must change in the page; the
  time from the key press to the changed graph is reported.
- A ``%%backtest`` cell over a year of minute bars shows its metrics, order timeline, trailing-stop
  overlay and partial-fill table, and is timed from "run" to its figures being drawn.

A full screenshot of each notebook is saved; the folder is named in the test summary (and is
``RUSTYBT_NB_BROWSER_ARTIFACTS`` when that is set). Set ``RUSTYBT_NB_SKIP_BROWSER=1`` to skip.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_driver():
    """``tools/jupyterlab_driver.py`` (tools/ is not a package; nothing is added to sys.path)."""
    name = "jupyterlab_driver"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


jl = _load_driver()

SKIP = os.environ.get("RUSTYBT_NB_SKIP_BROWSER") == "1"
pytestmark = pytest.mark.skipif(SKIP, reason="RUSTYBT_NB_SKIP_BROWSER=1")

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
TWEAK_NOTEBOOKS = [p.name for p in NOTEBOOKS if jl.has_tweak_panel(p)]
# the slider check needs a tweak panel: a scratch notebook stands in while no tutorial builds one
SCRATCH_TWEAK = "scratch_tweak_panel.ipynb"
ITEMS = [p.name for p in NOTEBOOKS] + ([] if TWEAK_NOTEBOOKS else [SCRATCH_TWEAK])
LAB_CHECK = "lab_check.ipynb"

STRATEGY = '''%%backtest --data AAPL --frequency minute --start 2012-03-01 --end 2013-02-28 --out res
from rustybt_nb import TradingAlgorithm
from rustybt_nb.finance.execution import BracketOrder, LimitOrder, TrailingStopOrder
from rustybt_nb.finance.slippage import VolumeShareSlippage


class LabCheck(TradingAlgorithm):
    """Each morning when flat: alternately a limit-entry bracket, or a market entry with a
    2 % trailing stop; a tight volume cap makes the entries fill in slices."""

    def initialize(self, context):
        context.asset = self.symbol("AAPL")
        context.n = 0
        self.set_slippage(VolumeShareSlippage(volume_limit=0.0002, price_impact=0.0))
        self.schedule_function(self.daily, date_rules=self.date_rules.every_day(),
                               time_rules=self.time_rules.market_open(minutes=30))

    def daily(self, context, data):
        if context.portfolio.positions[context.asset].amount or self.get_open_orders(context.asset):
            return
        price = data.current(context.asset, "price")
        if context.n % 2 == 0:
            self.order(context.asset, 150, style=BracketOrder(
                entry_style=LimitOrder(price * 0.999), stop_loss_price=price * 0.97,
                take_profit_price=price * 1.03))
        else:
            self.order(context.asset, 150)
            self.order(context.asset, -150, style=TrailingStopOrder(trail_percent=0.02))
        context.n += 1
'''


class Summary:
    """A section at the end of pytest's report: where the screenshots are, and the timings."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.lines: list[str] = []
        self.timings: dict[str, dict[str, float]] = {}

    def add(self, line: str) -> None:
        self.lines.append(line)
        print(line)

    def pytest_terminal_summary(self, terminalreporter) -> None:
        terminalreporter.write_sep("-", "JupyterLab in Chromium")
        for line in self.lines:
            terminalreporter.write_line(line)
        terminalreporter.write_line(f"screenshots: {self.folder}")


class Lab:
    def __init__(self, server: jl.LabServer, page: jl.LabPage, shots: Path, summary: Summary) -> None:
        self.server = server
        self.page = page
        self.shots = shots
        self.summary = summary


@pytest.fixture(scope="session")
def lab(tmp_path_factory, request):
    reason = jl.missing()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    work = tmp_path_factory.mktemp("jupyterlab")
    root = work / "root"
    for path in NOTEBOOKS:
        jl.copy_without_outputs(path, root / path.name)
    if not TWEAK_NOTEBOOKS:
        jl.write_tweak_notebook(root / SCRATCH_TWEAK)
    jl.write_notebook(root / LAB_CHECK, ["import rustybt_nb\nrustybt_nb.setup_notebook()", "%load_ext rustybt_nb",
                                         STRATEGY, "print(res.summary())"])
    shots = Path(os.environ.get("RUSTYBT_NB_BROWSER_ARTIFACTS") or work / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    summary = Summary(shots)
    request.config.pluginmanager.register(summary, "rustybt-nb-jupyterlab-summary")
    print(f"\nJupyterLab screenshots go to {shots}")
    with jl.LabServer(root, work) as server, sync_playwright() as pw:
        browser = jl.launch_chromium(pw)
        try:
            page = jl.LabPage(browser, server)
            yield Lab(server, page, shots, summary)
            page.close()
        finally:
            browser.close()
            (shots / "timings.json").write_text(json.dumps(summary.timings, indent=1))


def _session(lab: Lab, name: str, check) -> tuple[jl.RunReport, object, Path]:
    """Run notebook ``name`` in JupyterLab, then ``check(session, report)`` (unless a cell failed:
    its AssertionError joins the report's problems); screenshot either way. Anything that stops the
    run (a timeout, a crashed page) fails at once, naming the notebook and the screenshot, and the
    next notebook gets a fresh page."""
    session = jl.NotebookSession(lab.page, name)
    shot = lab.shots / f"{Path(name).stem}.jpg"  # (JPEG: half the time of PNG for a notebook this tall)
    try:
        report = session.run()
        extra = None
        if not report.cells_failed:
            try:
                extra = check(session, report)
            except AssertionError as exc:  # (LabFailure too)
                report.problems.append(str(exc))
        session.screenshot(shot)
    except Exception as exc:
        session.screenshot(shot)
        session.close()
        lab.page.reload()
        raise AssertionError(f"{name} in JupyterLab: {exc}\nscreenshot: {shot}") from exc
    session.close()
    report.timings["screenshot"] = session.timings.get("screenshot", 0.0)
    lab.summary.timings[name] = report.timings
    return report, extra, shot


def _fail_on_problems(lab: Lab, report: jl.RunReport, shot: Path) -> None:
    if report.problems:
        lab.page.reload()  # the next notebook starts from a clean page
        pytest.fail(f"{report.message()}\nscreenshot: {shot}", pytrace=False)


@pytest.mark.parametrize("name", ITEMS)
def test_notebook_runs_clean_in_jupyterlab(lab, name):
    def check(session: jl.NotebookSession, report: jl.RunReport):
        if name not in TWEAK_NOTEBOOKS and name != SCRATCH_TWEAK:
            return None
        seen = len(session.lab.console)
        step = jl.step_slider(session.page)
        late = session.lab.console[seen:]
        assert not late, "console errors after moving the slider:\n" + "\n".join(jl.summarise_console(late))
        return step

    report, step, shot = _session(lab, name, check)
    t = report.timings
    line = (f"{name}: kernel idle {t['kernel idle']:.1f} s, all cells run {t['ran']:.1f} s, "
            f"{report.plots} graphs drawn, saved {t['saved']:.1f} s, screenshot {t['screenshot']:.1f} s")
    if step:
        line += (f"; slider {step['name']} {step['before']} -> {step['after']}: plot updated {step['seconds']:.2f} s"
                 f" after the key press{' (Run button)' if step['run_button'] else ''}")
        report.timings["slider_to_plot"] = step["seconds"]
    lab.summary.add(line + (f" -- {len(report.problems)} PROBLEM(S)" if report.problems else ""))
    _fail_on_problems(lab, report, shot)


def test_backtest_cell_renders_metrics_and_the_three_views(lab):
    elapsed = {}

    def check(session: jl.NotebookSession, report: jl.RunReport):
        page = session.page
        text = page.inner_text(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")
        assert "Backtest LabCheck" in text and "Sharpe" in text and "total return" in text.lower()
        titles = page.evaluate(
            "[...window.__rbPanel.content.node.querySelectorAll('.js-plotly-plot')].map(p => (p.layout && "
            "p.layout.title && (p.layout.title.text || p.layout.title)) || '')")
        joined = " | ".join(str(t) for t in titles).lower()
        assert "timeline" in joined, titles
        assert "trailing" in joined, titles
        tables = page.evaluate("[...window.__rbPanel.content.node.querySelectorAll('.jp-OutputArea-output table')]"
                               ".map(t => t.innerText.slice(0, 400))")
        assert any("slice" in t.lower() and "vwap" in t.lower() for t in tables), tables
        elapsed.update(_time_backtest_cell(page))

    report, _, shot = _session(lab, LAB_CHECK, check)
    if elapsed:
        (lab.shots / "timing.json").write_text(json.dumps(elapsed))
        lab.summary.add(f"{LAB_CHECK}: year of minute bars, %%backtest cell re-run: summary {elapsed['summary']:.2f} s,"
                        f" figures and tables drawn {elapsed['figures']:.2f} s, cell idle {elapsed['idle']:.2f} s")
    _fail_on_problems(lab, report, shot)


def _time_backtest_cell(page) -> dict[str, float]:
    """Re-run the backtest cell alone: seconds from "run" to its summary, to its figures and tables
    being drawn, and to the cell being idle again."""
    page.evaluate("""() => {
        const nb = window.__rbPanel.content;
        nb.activeCellIndex = 2;
        nb.deselectAll();
        const cell = nb.widgets[2];
        const marks = window.__marks = {start: performance.now()};
        const watch = () => {
            const now = performance.now();
            const outputs = cell.node.querySelectorAll('.jp-OutputArea-output').length;
            if (!marks.cleared) { if (outputs === 0) marks.cleared = now; requestAnimationFrame(watch); return; }
            if (!marks.summary && cell.node.innerText.includes('Backtest LabCheck')) marks.summary = now;
            if (!marks.figures && cell.node.querySelectorAll('.js-plotly-plot .main-svg').length >= 3
                && cell.node.querySelectorAll('table').length >= 2) marks.figures = now;
            if (!marks.idle && marks.summary && !cell.promptNode.innerText.includes('*')) marks.idle = now;
            if (!marks.figures || !marks.idle) requestAnimationFrame(watch);
        };
        requestAnimationFrame(watch);
        window.jupyterapp.commands.execute('notebook:run-cell');
    }""")
    page.wait_for_function("window.__marks.figures !== undefined && window.__marks.idle !== undefined",
                           timeout=120_000)
    marks = page.evaluate("window.__marks")
    elapsed = {k: round((marks[k] - marks["start"]) / 1000.0, 2) for k in ("summary", "figures", "idle")}
    assert elapsed["summary"] <= elapsed["figures"]
    return elapsed
