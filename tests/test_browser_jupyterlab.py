"""What renders in a real JupyterLab, in a real (headless) Chromium.

A JupyterLab server is started on a free local port with a scratch notebook: set up the
notebook layer, load the extension, and run a ``%%backtest`` cell over a year of minute
bars with a bracket entry, a trailing stop and volume-capped partial fills. Playwright
drives Debian's Chromium (``/usr/bin/chromium``; ``.ci/run`` installs it) to run every
cell and checks that the metrics, the order timeline, the trailing-stop overlay and the
partial-fill table are on the page. It also times the backtest cell from "run" to its
figures being drawn, and saves a screenshot next to the test's temporary files.

Set ``RUSTYBT_NB_SKIP_BROWSER=1`` to skip it on a machine without Chromium.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

CHROMIUM = os.environ.get("RUSTYBT_NB_CHROMIUM", "/usr/bin/chromium")
SKIP = os.environ.get("RUSTYBT_NB_SKIP_BROWSER") == "1"

pytestmark = pytest.mark.skipif(SKIP, reason="RUSTYBT_NB_SKIP_BROWSER=1")

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _notebook(path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("import rustybt_nb\nrustybt_nb.setup_notebook()"),
        nbformat.v4.new_code_cell("%load_ext rustybt_nb"),
        nbformat.v4.new_code_cell(STRATEGY),
        nbformat.v4.new_code_cell("print(res.summary())"),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's chromium (apt-get install chromium) "
                    "or set RUSTYBT_NB_SKIP_BROWSER=1")
    root = tmp_path_factory.mktemp("lab")
    _notebook(root / "lab_check.ipynb")
    settings = root / "user-settings"  # this server's own JupyterLab settings
    (settings / "@jupyterlab" / "notebook-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "apputils-extension").mkdir(parents=True)
    # render every cell, not only those in view (JupyterLab 4 windows long notebooks)
    (settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings").write_text(
        json.dumps({"windowingMode": "none"}))
    (settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    port = _free_port()
    env = dict(os.environ, JUPYTER_PLATFORM_DIRS="1", TQDM_DISABLE="1")
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ServerApp.port_retries=0",
           "--IdentityProvider.token=", "--ServerApp.password=", "--ServerApp.disable_check_xsrf=True",
           "--LabApp.expose_app_in_browser=True", f"--ServerApp.root_dir={root}", "--ServerApp.ip=127.0.0.1",
           f"--LabApp.user_settings_dir={settings}",
           "--allow-root"]  # CI runs as root
    log = open(root / "server.log", "w")  # noqa: SIM115 - closed in the teardown below
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/api/status", timeout=2) as resp:
                if resp.status == 200:
                    break
        except OSError:
            time.sleep(0.3)
    else:
        proc.terminate()
        pytest.fail("JupyterLab did not start:\n" + (root / "server.log").read_text()[-3000:])
    yield {"url": url, "root": root}
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def test_backtest_cell_renders_metrics_and_the_three_views(lab):
    from playwright.sync_api import sync_playwright

    shot = lab["root"] / "jupyterlab.png"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
            "--no-first-run", "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            elapsed = _drive(page, lab["url"], errors, shot)
        except Exception:
            page.screenshot(path=str(lab["root"] / "failure.png"), full_page=True)
            keep = os.environ.get("RUSTYBT_NB_BROWSER_ARTIFACTS")
            if keep:
                Path(keep).mkdir(parents=True, exist_ok=True)
                shutil.copy(lab["root"] / "failure.png", Path(keep) / "failure.png")
            raise
        finally:
            browser.close()
    (lab["root"] / "timing.json").write_text(json.dumps(elapsed))
    print(f"\nyear of minute bars, %%backtest cell re-run in JupyterLab: summary {elapsed['summary']:.2f} s, "
          f"figures and tables drawn {elapsed['figures']:.2f} s, cell idle {elapsed['idle']:.2f} s")
    keep = os.environ.get("RUSTYBT_NB_BROWSER_ARTIFACTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / "jupyterlab.png")
        shutil.copy(lab["root"] / "timing.json", Path(keep) / "timing.json")


def _drive(page, url: str, errors: list[str], shot: Path) -> dict[str, float]:
    """Open the notebook, run every cell, check what rendered; return the seconds from
    running the backtest cell alone to its summary, its figures and tables being drawn,
    and the cell being idle again."""
    page.goto(f"{url}/lab/tree/lab_check.ipynb")
    page.wait_for_function("window.jupyterapp !== undefined", timeout=60_000)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    page.wait_for_function(
        "document.querySelector('.jp-Notebook-ExecutionIndicator, .jp-Toolbar-kernelStatus') !== null"
        " && window.jupyterapp.shell.currentWidget && window.jupyterapp.shell.currentWidget.sessionContext"
        " && window.jupyterapp.shell.currentWidget.sessionContext.session"
        " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
        " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'",
        timeout=90_000)
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    # every cell has run when the last one printed the summary
    page.wait_for_function(
        "[...document.querySelectorAll('.jp-OutputArea-output')]"
        ".some(e => e.innerText.includes('Backtest LabCheck'))",
        timeout=180_000)
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 3", timeout=60_000)

    text = page.inner_text(".jp-Notebook")
    assert "Sharpe" in text and "total return" in text.lower()
    titles = page.evaluate(
        "[...document.querySelectorAll('.js-plotly-plot')].map(p => (p.layout && p.layout.title"
        " && (p.layout.title.text || p.layout.title)) || '')")
    joined = " | ".join(str(t) for t in titles).lower()
    assert "timeline" in joined, titles
    assert "trailing" in joined, titles
    tables = page.evaluate("[...document.querySelectorAll('.jp-OutputArea-output table')]"
                           ".map(t => t.innerText.slice(0, 400))")
    assert any("slice" in t.lower() and "vwap" in t.lower() for t in tables), tables
    assert not [e for e in errors if "plotly" in e.lower()], errors

    # time the backtest cell alone: from "run" to its figures drawn, and to the cell being idle again
    page.evaluate("""() => {
        const nb = window.jupyterapp.shell.currentWidget.content;
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
    }""")
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-cell')")
    page.wait_for_function("window.__marks.figures !== undefined && window.__marks.idle !== undefined",
                           timeout=120_000)
    marks = page.evaluate("window.__marks")
    elapsed = {k: round((marks[k] - marks["start"]) / 1000.0, 2) for k in ("summary", "figures", "idle")}
    assert elapsed["summary"] <= elapsed["figures"]
    page.screenshot(path=str(shot), full_page=False)
    return elapsed
