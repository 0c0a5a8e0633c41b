"""Drive a real JupyterLab in headless Chromium (Playwright): shared by the browser test
(``tests/test_browser_jupyterlab.py``) and the README pictures (``tools/make_readme_images.py``).

- :class:`LabServer` starts ``jupyter lab`` on a free local port with a random token, ``--allow-root`` when
  running as root, isolated config / runtime / IPython / workspace folders, news and update checks off, every
  cell rendered (no windowing), and the app exposed as ``window.jupyterapp``.
- :func:`launch_chromium` starts Debian's Chromium (never ``playwright install``).
- :class:`LabPage` loads JupyterLab once in a browser page and collects its console errors; notebooks are
  opened in it one after another (loading JupyterLab costs seconds); :meth:`LabPage.reload` starts afresh.
- :class:`NotebookSession` opens one notebook there, waits for the kernel (the status bar says Idle), runs
  every cell, waits for the run to end, saves, and lists what went wrong: error outputs in the saved file,
  cells left unexecuted, widgets that failed or never loaded, plotly graphs not drawn, browser console
  errors; it also photographs the whole notebook, and closes it and shuts its kernel down.
- :func:`step_slider` moves a tweak-panel slider with the keyboard and times the key press to the updated
  plot; :func:`panel_clip` is the page area of a tweak panel (for the README picture).

Facts behind the choices: ``/work/shared/notes/widgets-dask-browser.md``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("RUSTYBT_NB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
                 "--no-first-run", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# a tweak panel is built by tweak(...), Backtest.tweak(...) or %%backtest --tweak
TWEAK_CALL = re.compile(r"(?<![\w.])tweak\(|\.tweak\(|--tweak\b")
# browser console errors that are not the notebook's fault, each with the reason. None so far: the one
# noise seen (a failed CDN load of plotly.js on a machine offline) is avoided, see _serve_plotly_cdn.
BENIGN_CONSOLE: list[re.Pattern[str]] = []


def missing() -> str | None:
    """Why a browser cannot be driven here (None when it can)."""
    if not Path(CHROMIUM).exists():
        return (f"Chromium not found at {CHROMIUM}: install Debian's chromium (apt-get install chromium) or name "
                "another with RUSTYBT_NB_CHROMIUM")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright; the browser itself is Debian's Chromium)"
    return None


def has_tweak_panel(path: Path) -> bool:
    """Whether a notebook builds a tweak panel (a code cell calls ``tweak(...)`` or uses ``--tweak``)."""
    try:
        nb = json.loads(Path(path).read_text())
    except (OSError, ValueError):  # unreadable: its own run says why
        return False
    return any(cell.get("cell_type") == "code" and TWEAK_CALL.search(_source(cell)) for cell in nb.get("cells", []))


def copy_without_outputs(src: Path, dst: Path) -> None:
    """Copy a notebook with its outputs and execution counts removed, so that everything in the
    saved copy comes from the run in the browser."""
    nb = json.loads(Path(src).read_text())
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    Path(dst).write_text(json.dumps(nb, indent=1))


def write_notebook(path: Path, sources: list[str]) -> None:
    """A notebook of code cells (Python 3 kernel)."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, str(path))


TWEAK_CELLS = [
    "import rustybt_nb\nrustybt_nb.setup_notebook();",
    '''from ipywidgets import fixed

from rustybt_nb.analytics import tweak
from rustybt_nb.examples import SmaCrossBracket

# trend entries with a bracket (stop-loss and take-profit) around each one; move a control to re-run
panel = tweak(SmaCrossBracket, data="AAPL", start="2010-01-01", end="2013-12-31", capital_base=100_000,
              fast=(5, 30, 1), slow=(20, 80, 5), symbol=fixed("AAPL"), exit=["bracket", "trailing"])
panel''',
]


def write_tweak_notebook(path: Path) -> None:
    """A small notebook that builds a tweak panel on a bracket strategy (the README picture's)."""
    write_notebook(path, TWEAK_CELLS)


def _source(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ====================================================================== server
class LabServer:
    """``jupyter lab`` serving ``root`` (its own files live in ``work``, outside ``root``).

    Use as a context manager; :attr:`url` and :attr:`token` are set once it answers."""

    def __init__(self, root: Path, work: Path, env: dict[str, str] | None = None, start_timeout: float = 90) -> None:
        self.root = Path(root)
        self.work = Path(work)
        self.extra_env = dict(env or {})
        self.start_timeout = start_timeout
        self.token = secrets.token_hex(24)
        self.url = ""
        self.log_path = self.work / "jupyterlab-server.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    def __enter__(self) -> LabServer:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _settings(self) -> Path:
        settings = self.work / "user-settings"
        overrides = {
            # render every cell, not only those in view (JupyterLab 4 windows long notebooks)
            ("notebook-extension", "tracker"): {"windowingMode": "none", "recordTiming": True},
            # no news / update toasts over the screenshots (and no network)
            ("apputils-extension", "notification"): {"fetchNews": "false", "checkForUpdates": False},
        }
        for (ext, plugin), values in overrides.items():
            folder = settings / "@jupyterlab" / ext
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{plugin}.jupyterlab-settings").write_text(json.dumps(values))
        return settings

    def start(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        settings = self._settings()
        env = dict(os.environ)
        env.update({
            "JUPYTER_CONFIG_DIR": str(self.work / "jupyter-config"),
            "JUPYTER_RUNTIME_DIR": str(self.work / "jupyter-runtime"),
            "IPYTHONDIR": str(self.work / "ipython"),
            "JUPYTER_PLATFORM_DIRS": "1",
            "PYTHONUNBUFFERED": "1",
        })
        env.update(self.extra_env)
        for _attempt in range(3):  # a free port can be taken between choosing and binding it
            port = _free_port()
            cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
                   f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
                   f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}",
                   "--LabApp.expose_app_in_browser=True", f"--LabApp.user_settings_dir={settings}",
                   f"--LabApp.workspaces_dir={self.work / 'workspaces'}", "--ServerApp.terminals_enabled=False"]
            if hasattr(os, "geteuid") and os.geteuid() == 0:
                cmd.append("--allow-root")  # otherwise jupyter lab refuses to start as root
            self._log = open(self.log_path, "a")  # noqa: SIM115 - closed in stop()
            self._proc = subprocess.Popen(cmd, cwd=self.root, env=env, stdout=self._log, stderr=subprocess.STDOUT)
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + self.start_timeout
            while time.monotonic() < deadline and self._proc.poll() is None:
                try:
                    with urllib.request.urlopen(f"{url}/api/status?token={self.token}", timeout=2) as resp:
                        if resp.status == 200:
                            self.url = url
                            return
                except OSError:
                    time.sleep(0.2)
            self.stop()
        raise RuntimeError("JupyterLab did not start:\n" + self.log_tail())

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def api(self, method: str, path: str) -> Any:
        request = urllib.request.Request(f"{self.url}{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=20) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        """Shut down every session's kernel (one notebook's kernel must not slow the next one down)."""
        try:
            for session in self.api("GET", "/api/sessions") or []:
                self.api("DELETE", f"/api/sessions/{session['id']}")
        except (OSError, urllib.error.URLError, ValueError):
            pass

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
            self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None


def launch_chromium(pw: Any) -> Any:
    """Debian's Chromium through Playwright (headless)."""
    return pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


# ====================================================================== page scripts
FIND_PANEL = """(path) => {
    for (const w of window.jupyterapp.shell.widgets('main')) {
        if (w.context && w.context.path === path && w.content && w.sessionContext) {
            window.__rbPanel = w;
            return w.context.isReady && w.content.widgets.length > 0;
        }
    }
    return false;
}"""

KERNEL_IDLE = """() => {
    const p = window.__rbPanel;
    const bar = document.querySelector('#jp-main-statusbar');
    const text = bar ? bar.innerText : '';
    const kernel = p && p.sessionContext.session && p.sessionContext.session.kernel;
    return !!kernel && /\\bIdle\\b/.test(text)
        && !/Connecting|Initializing|Starting|No Kernel|Restarting|Busy|Unknown|Dead|Terminating/i.test(text);
}"""

# the run's progress, from the notebook model (not from what happens to be painted)
RUN_STATE = """() => {
    const p = window.__rbPanel;
    const bar = document.querySelector('#jp-main-statusbar');
    const status = bar ? bar.innerText.replace(/\\s+/g, ' ') : '';
    const state = {pending: [], unrun: [], errors: [], executed: 0, code: 0, status,
                   idle: /\\bIdle\\b/.test(status) && !/Busy|Starting|Restarting|Connecting/i.test(status)};
    p.content.widgets.forEach((cell, i) => {
        if (cell.model.type !== 'code') return;
        state.code += 1;
        const prompt = cell.promptNode ? cell.promptNode.textContent : '';
        if (cell.model.executionState === 'running' || prompt.includes('*')) state.pending.push(i);
        const blank = !cell.model.sharedModel.getSource().trim();
        if (cell.model.executionCount == null) { if (!blank) state.unrun.push(i); } else state.executed += 1;
        const outputs = cell.model.outputs;
        for (let k = 0; k < outputs.length; k++) if (outputs.get(k).type === 'error') { state.errors.push(i); break; }
    });
    return state;
}"""

# what the page shows besides the notebook that could explain a hang: dialogs, the status bar
PAGE_NOTES = """() => {
    const dialogs = [...document.querySelectorAll('.jp-Dialog')].map(d => 'dialog: ' + d.innerText.trim());
    const bar = document.querySelector('#jp-main-statusbar');
    return [...dialogs, 'status bar: ' + (bar ? bar.innerText.replace(/\\s+/g, ' ') : '(none)')].join('\\n');
}"""

CELL_OUTPUT = ("(i) => { const a = window.__rbPanel.content.widgets[i].node.querySelector('.jp-OutputArea'); "
               "return a ? a.innerText.slice(-1500) : ''; }")

CELL_SOURCE = ("(i) => i < 0 ? '(outside the notebook)' : "
               "window.__rbPanel.content.widgets[i].model.sharedModel.getSource()")

# widget views that failed ("Error displaying widget") or are not loaded ("Loading widget..."), anywhere in
# the page except in prose and code (markdown cells, cell inputs); cell -1 is outside the notebook
WIDGET_STATE = """() => {
    const out = {failed: [], loading: []};
    const cells = window.__rbPanel.content.widgets;
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
        const text = n.nodeValue;
        const failed = text.includes('Error displaying widget');
        if (!failed && !text.includes('Loading widget...')) continue;
        const el = n.parentElement;
        if (!el || el.closest('.jp-MarkdownCell, .jp-InputArea, .cm-editor')) continue;
        const cell = cells.findIndex(c => c.node.contains(el));
        if (failed) out.failed.push([cell, (el.textContent || text).trim().slice(0, 300)]);
        else out.loading.push(cell);
    }
    return out;
}"""

# every plotly graph: drawn (an SVG), carrying data, and no dates that arrived as integer nanoseconds
# (numpy datetime64[ns] turned into numbers on the way to the browser: the axis then reads 1.3x10^18; in the
# layout, a shape or annotation placed at such a number is drawn off the date axis)
PLOTLY_STATE = """() => {
    const cells = window.__rbPanel.content.widgets;
    const first = (a) => (a && a.length) ? a[0] : undefined;
    const huge = (v) => typeof v === 'number' && Math.abs(v) > 1e17 && Math.abs(v) < 1e19;
    const placed = (layout) => [
        ...((layout && layout.shapes) || []).flatMap((s, i) => [['shape', i, 'x0', s.x0], ['shape', i, 'x1', s.x1]]),
        ...((layout && layout.annotations) || []).map((a, i) => ['annotation', i, 'x', a.x]),
    ].filter(p => huge(p[3])).map(([what, i, key, v]) => `${what} ${i} ${key}: ${v}`);
    return [...window.__rbPanel.content.node.querySelectorAll('.js-plotly-plot')].map(el => ({
        cell: cells.findIndex(c => c.node.contains(el)),
        svg: !!el.querySelector('.main-svg'),
        traces: Array.isArray(el.data) ? el.data.length : -1,
        title: String((el.layout && el.layout.title && (el.layout.title.text || el.layout.title)) || ''),
        nanoseconds: (Array.isArray(el.data) ? el.data : []).filter(t => ['x', 'y', 'base'].some(k => {
            const v = Number(first(t[k]));
            return typeof first(t[k]) !== 'string' && Number.isFinite(v) && Math.abs(v) > 1e17 && Math.abs(v) < 1e19;
        })).map(t => `${t.name || t.type}: ${first(t.x)}`),
        layoutNanoseconds: placed(el.layout),
    }));
}"""

# the element that scrolls the notebook (above the cells); `top` scrolls it to that offset first
SCROLLER = """(top) => {
    const root = window.__rbPanel.content.node;
    let best = null;
    for (const e of [root, ...root.querySelectorAll('*')]) {
        if (e.classList && e.classList.contains('jp-Cell')) break;
        const oy = getComputedStyle(e).overflowY;
        if ((oy === 'auto' || oy === 'scroll') && (!best || e.scrollHeight > best.scrollHeight)) best = e;
    }
    best = best || root;
    if (top !== null && top !== undefined) best.scrollTop = top;
    // the cells' height (JupyterLab pads the end of a notebook by about a screen: not photographed)
    const cells = root.querySelectorAll('.jp-Cell');
    const last = cells.length ? cells[cells.length - 1] : null;
    const content = last ? Math.ceil(last.getBoundingClientRect().bottom - best.getBoundingClientRect().top
                                     + best.scrollTop + 24) : best.scrollHeight;
    return {scroll: Math.min(content, best.scrollHeight), client: best.clientHeight, top: best.scrollTop};
}"""


# ====================================================================== one notebook
class LabFailure(AssertionError):
    """Something went wrong in the browser; the message says what, where, and which cell."""


@dataclass
class RunReport:
    """What happened to one notebook."""

    name: str
    problems: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    saved: Path | None = None
    plots: int = 0
    cells_failed: bool = False  # an error output or a cell left unexecuted

    def message(self) -> str:
        lines = [f"{self.name}: {len(self.problems)} problem(s) in JupyterLab"]
        lines += [f"--- {p}" for p in self.problems]
        return "\n".join(lines)


_PLOTLY_JS: dict[str, str] = {}


def _serve_plotly_cdn(route: Any) -> None:
    """Half of the package's default renderer (``notebook_connected``) imports plotly.js from the
    CDN; JupyterLab draws with the other half (the plotly MIME type), so that import only matters to
    classic frontends. Serving the installed copy when the version matches keeps the browser off the
    network (an offline machine would otherwise log a failed load for every notebook)."""
    from plotly.offline import get_plotlyjs, get_plotlyjs_version

    version = get_plotlyjs_version()
    if not re.search(rf"/plotly-{re.escape(version)}(\.min)?(\.js)?$", urllib.parse.urlsplit(route.request.url).path):
        route.continue_()
        return
    if "js" not in _PLOTLY_JS:
        _PLOTLY_JS["js"] = get_plotlyjs()
    route.fulfill(status=200, body=_PLOTLY_JS["js"], content_type="text/javascript; charset=utf-8",
                  headers={"Access-Control-Allow-Origin": "*"})


class LabPage:
    """One browser page with JupyterLab loaded once; notebooks are opened in it one after another
    (loading JupyterLab costs seconds). After a failure call :meth:`reload` (a fresh page)."""

    def __init__(self, browser: Any, server: LabServer, viewport: tuple[int, int] = (1400, 1000)) -> None:
        self.browser = browser
        self.server = server
        self.viewport = {"width": viewport[0], "height": viewport[1]}
        self.console: list[str] = []
        self.context: Any = None
        self.page: Any = None
        self.reload()

    def _on_console(self, msg: Any) -> None:
        if msg.type != "error":
            return
        loc = msg.location or {}
        where = f" ({loc.get('url', '')}:{loc.get('lineNumber', '')})" if loc.get("url") else ""
        text = f"console error: {msg.text}{where}"
        if not any(p.search(text) for p in BENIGN_CONSOLE):
            self.console.append(text)

    def reload(self, timeout: float = 90) -> None:
        if self.context is not None:
            with contextlib.suppress(Exception):  # already gone with a crashed page
                self.context.close()
        self.server.shutdown_kernels()
        self.context = self.browser.new_context(viewport=self.viewport, device_scale_factor=1)
        self.context.route(re.compile(r"^https://cdn\.plot\.ly/"), _serve_plotly_cdn)
        self.page = self.context.new_page()
        self.page.on("console", self._on_console)
        self.page.on("pageerror", lambda exc: self.console.append(f"page error: {exc}"))
        self.page.goto(f"{self.server.url}/lab?reset&token={self.server.token}", timeout=timeout * 1000)
        self.page.wait_for_function("() => window.jupyterapp !== undefined && window.jupyterapp.shell !== undefined",
                                    timeout=timeout * 1000)
        self.page.evaluate("() => window.jupyterapp.restored.then(() => true)")
        # room for the notebook: no file browser, no launcher tab
        self.page.evaluate("() => { window.jupyterapp.shell.collapseLeft(); "
                           "for (const w of [...window.jupyterapp.shell.widgets('main')]) w.close(); }")

    def close(self) -> None:
        try:
            self.context.close()
        finally:
            self.server.shutdown_kernels()


class NotebookSession:
    """One notebook open in a :class:`LabPage`: :meth:`run` does everything, step by step."""

    def __init__(self, lab: LabPage, path: str) -> None:
        self.lab = lab
        self.page = lab.page
        self.server = lab.server
        self.path = path
        self.viewport = lab.viewport
        self.timings: dict[str, float] = {}
        self._t0 = time.perf_counter()

    def _mark(self, name: str) -> None:
        self.timings[name] = round(time.perf_counter() - self._t0, 2)

    def close(self) -> None:
        """Close the notebook (without the unsaved-changes dialog) and shut its kernel down."""
        with contextlib.suppress(Exception):  # a crashed page: LabPage.reload() starts a fresh one
            self.page.evaluate("() => { if (window.__rbPanel) { window.__rbPanel.dispose(); "
                               "window.__rbPanel = undefined; } }")
        self.server.shutdown_kernels()

    # ------------------------------------------------------------------ steps
    def open(self, timeout: float = 60) -> None:
        self.lab.console.clear()
        self.page.evaluate("(path) => { window.__rbPanel = undefined; "
                           "window.jupyterapp.commands.execute('docmanager:open', {path}); }", self.path)
        self.page.wait_for_function(FIND_PANEL, arg=self.path, timeout=timeout * 1000, polling=100)
        self._mark("opened")

    def wait_kernel_idle(self, timeout: float = 90) -> None:
        """Until the status bar says Idle (the notebook's own indicator can say so too early)."""
        try:
            self.page.wait_for_function(KERNEL_IDLE, timeout=timeout * 1000, polling=100)
        except Exception as exc:
            raise LabFailure(f"{self.path}: the kernel was not idle after {timeout:.0f} s\n{self.notes()}\n"
                             f"server log (end):\n{self.server.log_tail(1500)}") from exc
        self._mark("kernel idle")

    def notes(self) -> str:
        """Dialogs on the page and the status bar (for failure messages)."""
        try:
            return self.page.evaluate(PAGE_NOTES)
        except Exception as exc:
            return f"(the page does not answer: {exc})"

    def run_all(self) -> None:
        # the command's promise is not awaited (it can hang): the function returns nothing
        self.page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")

    def wait_run_finished(self, timeout: float = 180) -> dict[str, Any]:
        """Until no cell is queued or running, the kernel is idle, and every cell ran or one failed
        (Run All stops at the first error)."""
        started = time.monotonic()
        deadline = started + timeout
        state: dict[str, Any] = {}
        again = True
        while time.monotonic() < deadline:
            state = self.page.evaluate(RUN_STATE)
            if state["idle"] and not state["pending"] and (not state["unrun"] or state["errors"]):
                self._mark("ran")
                return state
            if again and time.monotonic() - started > 5 and not (state["pending"] or state["executed"]):
                again = False  # nothing queued after 5 s: the request was dropped; ask once more
                self.run_all()
            self.page.wait_for_timeout(100)
        stuck = (state.get("pending") or state.get("unrun") or [0])[0]
        raise LabFailure(f"{self.path}: the run did not finish within {timeout:.0f} s; cell {stuck} is still "
                         f"{'running or queued' if state.get('pending') else 'not run'}:\n"
                         f"{_indent(self.page.evaluate(CELL_SOURCE, stuck))}\nits output so far (end):\n"
                         f"{_indent(self.page.evaluate(CELL_OUTPUT, stuck))}\n{self.notes()}")

    def wait_rendered(self, timeout: float = 20) -> tuple[list[str], int]:
        """Problems with widget views and plotly graphs, after giving them ``timeout`` s to draw;
        and the number of graphs."""
        deadline = time.monotonic() + timeout
        while True:
            widgets = self.page.evaluate(WIDGET_STATE)
            plots = self.page.evaluate(PLOTLY_STATE)
            bad_plots = [p for p in plots if not p["svg"] or p["traces"] <= 0]
            done = not widgets["loading"] and not bad_plots
            if done or widgets["failed"] or time.monotonic() > deadline:
                break
            self.page.wait_for_timeout(100)
        self._mark("rendered")
        found: dict[int, list[str]] = {}
        for i, text in widgets["failed"]:
            found.setdefault(i, []).append(repr(text))
        for i in sorted(set(widgets["loading"])):
            found.setdefault(i, []).append(f"still 'Loading widget...' after {timeout:.0f} s")
        for p in bad_plots:
            what = "no rendered .main-svg" if not p["svg"] else "no data"
            found.setdefault(p["cell"], []).append(f"plotly graph {p['title']!r} not drawn ({what})")
        for p in plots:
            if p["nanoseconds"]:
                found.setdefault(p["cell"], []).append(
                    f"plotly graph {p['title']!r} got dates as integer nanoseconds, so its axis shows numbers "
                    f"like 1.3x10^18 (datetime64[ns] data sent to a FigureWidget is serialised with "
                    f"ndarray.tolist()): {'; '.join(p['nanoseconds'][:3])}")
            if p["layoutNanoseconds"]:
                found.setdefault(p["cell"], []).append(
                    f"plotly graph {p['title']!r} has shapes or annotations placed at integer nanoseconds, so they "
                    f"are drawn off its date axis (a numpy datetime64 in a figure's layout is serialised as a "
                    f"number; pass a pandas Timestamp or ISO text): {'; '.join(p['layoutNanoseconds'][:3])}")
        problems = [f"cell {i}: " + "\n  ".join(what) + f"\n{_indent(self.page.evaluate(CELL_SOURCE, i), lines=12)}"
                    for i, what in found.items()]
        return problems, len(plots)

    def save(self, timeout: float = 30) -> Path:
        self.page.evaluate("() => { window.jupyterapp.commands.execute('docmanager:save'); }")
        self.page.wait_for_function("() => !window.__rbPanel.context.model.dirty", timeout=timeout * 1000,
                                    polling=100)
        self._mark("saved")
        return self.server.root / self.path

    def screenshot(self, path: Path, max_height: int = 30_000, quality: int = 80) -> list[Path]:
        """The whole notebook, from its top: the viewport is stretched to the notebook's height,
        photographed, and put back. A notebook taller than ``max_height`` pixels is photographed in
        parts (``name.jpg``, ``name-2.jpg``, ...). A ``.jpg`` path gives JPEG (``quality``; for a
        notebook 20,000 pixels tall it takes half the time of PNG), any other a PNG. Returns the files
        written."""
        jpeg = path.suffix.lower() in (".jpg", ".jpeg")
        options = {"type": "jpeg", "quality": quality} if jpeg else {"type": "png"}
        path.parent.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        try:
            height = self.viewport["height"]
            for _ in range(4):  # some outputs grow with the viewport: stretch until the cells fit
                size = self.page.evaluate(SCROLLER, 0)
                if size["client"] >= size["scroll"] or height >= max_height:
                    break
                height = min(height + size["scroll"] - size["client"], max_height)
                self.page.set_viewport_size({"width": self.viewport["width"], "height": height})
                self.page.wait_for_function(f"() => ({SCROLLER})(0).client >= {height} - 400", timeout=10_000,
                                            polling=100)
                self.page.wait_for_timeout(100)  # (a frame for what resizes with the window)
            offset = 0
            while True:
                size = self.page.evaluate(SCROLLER, offset)
                part = path if not written else path.with_name(f"{path.stem}-{len(written) + 1}{path.suffix}")
                self.page.screenshot(path=str(part), **options)
                written.append(part)
                offset += size["client"]
                if offset >= size["scroll"] or len(written) >= 20:
                    break
        except Exception:  # the page is in trouble: whatever is on screen is still worth having
            try:
                self.page.screenshot(path=str(path), **options)
                written.append(path)
            except Exception:
                pass
        finally:
            with contextlib.suppress(Exception):
                self.page.set_viewport_size(self.viewport)
        self._mark("screenshot")
        return written

    def run(self, timeout: float = 180) -> RunReport:
        """Open, wait for the kernel, run every cell, let widgets and graphs draw, save, check."""
        report = RunReport(self.path)
        self.open()
        self.wait_kernel_idle()
        self.run_all()
        self.wait_run_finished(timeout)
        rendered, report.plots = self.wait_rendered()
        report.saved = self.save()
        in_file = saved_problems(report.saved)
        report.cells_failed = bool(in_file)
        report.problems += in_file
        report.problems += rendered
        report.problems += summarise_console(self.lab.console)
        report.timings = dict(self.timings)
        return report


def summarise_console(errors: list[str], limit: int = 10) -> list[str]:
    """Console errors, each kind once (messages that differ only in numbers are one kind) with its count."""
    kinds: dict[str, list[str]] = {}
    for text in errors:
        kinds.setdefault(re.sub(r"\d+(\.\d+)?", "#", re.sub(r'"[^"]*"', '"..."', text)), []).append(text)
    lines = [f"{same[0]}" + (f"  (and {len(same) - 1} more like it)" if len(same) > 1 else "")
             for same in kinds.values()]
    return lines[:limit] + ([f"... {len(lines) - limit} more kinds of console error"] if len(lines) > limit else [])


def saved_problems(path: Path) -> list[str]:
    """Error outputs and cells left unexecuted in a saved notebook, each with the cell's source."""
    nb = json.loads(Path(path).read_text())
    problems = []
    first_error = None
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        source = _source(cell)
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                first_error = i if first_error is None else first_error
                trace = ANSI.sub("", "\n".join(out.get("traceback", [])))
                tail = "\n".join(trace.splitlines()[-15:])
                problems.append(f"cell {i} raised {out.get('ename')}: {out.get('evalue')}\n{_indent(source)}\n"
                                f"traceback (end):\n{_indent(tail)}")
        if source.strip() and cell.get("execution_count") is None:
            after = f" (Run All stopped at the error in cell {first_error})" if first_error is not None else ""
            problems.append(f"cell {i} was not executed{after}\n{_indent(source)}")
    return problems


def _indent(text: str, limit: int = 1500, lines: int = 40) -> str:
    text = text if len(text) <= limit else text[:limit] + " ..."
    rows = text.splitlines()
    rows = rows if len(rows) <= lines else [*rows[:lines], f"... ({len(rows) - lines} more lines)"]
    return "\n".join("    " + line for line in rows)


# ====================================================================== tweak panel
def tweak_panel(page: Any) -> Any:
    """The first output that holds a tweak panel (sliders and a plotly graph)."""
    return (page.locator(".jp-OutputArea-output")
            .filter(has=page.locator(".widget-slider"))
            .filter(has=page.locator(".js-plotly-plot")).first)


def slider_names(panel: Any) -> list[str]:
    return [t.strip() for t in panel.locator(".widget-slider .widget-label").all_inner_texts() if t.strip()]


WATCH_PLOT = """(el) => {
    const fingerprint = () => JSON.stringify(el.data || [], (k, v) => ArrayBuffer.isView(v) ? Array.from(v) : v);
    const w = window.__rbWatch = {before: fingerprint(), pressed: null, changed: null, done: false};
    const onKey = () => { if (w.pressed === null) w.pressed = performance.now(); };
    document.addEventListener('keydown', onKey, true);
    const tick = () => {
        if (w.done) { document.removeEventListener('keydown', onKey, true); return; }
        if (w.pressed !== null && fingerprint() !== w.before) {
            w.changed = performance.now(); w.done = true;
            document.removeEventListener('keydown', onKey, true);
            return;
        }
        requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
}"""


def _code_text(panel: Any) -> str:
    """The panel's ``run_algorithm(...)`` line: it changes once a re-run has been drawn."""
    inputs = panel.locator(".widget-text input")
    return inputs.last.input_value() if inputs.count() else ""


def step_slider(page: Any, names: list[str] | None = None, timeout: float = 30,
                settle: float = 2.0) -> dict[str, Any]:
    """Move a tweak-panel slider one step with the keyboard (focus its handle, press an arrow key)
    and wait until the panel's first plotly graph shows other data. Sliders are tried in turn
    (``names``, else every slider of the panel) until a step changes the graph.

    Returns the slider's name, its readout before and after, and the seconds from the key press to
    the changed graph, measured in the page (``seconds``) and from Python (``wall``)."""
    panel = tweak_panel(page)
    panel.wait_for(timeout=timeout * 1000)
    tried = []
    for name in names or slider_names(panel):
        label = page.locator(".widget-label", has_text=re.compile(rf"^\s*{re.escape(name)}\s*$"))
        slider = panel.locator(".widget-slider").filter(has=label).first
        handle = slider.locator(".noUi-handle[role=slider], .noUi-handle").first
        graph = panel.locator(".js-plotly-plot").first
        before = slider.locator(".widget-readout").inner_text().strip()
        code_before = _code_text(panel)
        at_max = handle.evaluate("h => h.getAttribute('aria-valuenow') === h.getAttribute('aria-valuemax')")
        graph.evaluate(WATCH_PLOT)
        handle.focus()
        started = time.perf_counter()
        page.keyboard.press("ArrowLeft" if at_max else "ArrowRight")
        deadline = started + timeout
        code_changed_at = None
        clicked_run = False
        while time.perf_counter() < deadline:
            if page.evaluate("() => window.__rbWatch.changed !== null"):
                wall = time.perf_counter() - started
                marks = page.evaluate("() => [window.__rbWatch.pressed, window.__rbWatch.changed]")
                after = slider.locator(".widget-readout").inner_text().strip()
                return {"name": name, "before": before, "after": after,
                        "seconds": round((marks[1] - marks[0]) / 1000.0, 3), "wall": round(wall, 3),
                        "run_button": clicked_run}
            text = panel.inner_text()
            if not clicked_run and "press Run" in text:  # slow runs: the panel waits for its Run button
                panel.locator("button", has_text=re.compile(r"^\s*Run\s*$")).first.click()
                clicked_run = True
            if code_changed_at is None and _code_text(panel) != code_before:
                code_changed_at = time.perf_counter()
            if code_changed_at is not None and time.perf_counter() - code_changed_at > settle:
                break  # re-ran and drew, but this step did not change the graph: try another slider
            page.wait_for_timeout(50)
        page.evaluate("() => { window.__rbWatch.done = true; }")
        after = slider.locator(".widget-readout").inner_text().strip()
        tried.append(f"{name} {before} -> {after} ({'re-ran, graph unchanged' if code_changed_at else 'no re-run'})")
    raise LabFailure("no slider step changed the panel's graph: " + "; ".join(tried)
                     + f"\npanel text:\n{_indent(panel.inner_text())}")


def panel_clip(page: Any, padding: int = 8) -> dict[str, float]:
    """Scroll the tweak panel into view and return the page area from its controls to the bottom of
    its first graph (controls, buttons, metrics strip, status line and the equity figure)."""
    panel = tweak_panel(page)
    view = panel.locator(".jupyter-widgets").first
    # to the top of the notebook's scroller, with room for the padding under its toolbar
    view.evaluate("""(el, pad) => {
        el.scrollIntoView({block: 'start'});
        let s = el.parentElement;
        while (s && !(s.scrollHeight > s.clientHeight && /auto|scroll/.test(getComputedStyle(s).overflowY))) {
            s = s.parentElement;
        }
        if (s) s.scrollTop = Math.max(0, s.scrollTop - 3 * pad);
    }""", padding)
    page.wait_for_timeout(200)  # (the scroll's repaint)
    box = view.bounding_box() or panel.bounding_box()
    area = panel.bounding_box() or box  # (above it: the cell's input and its border)
    top = max(0.0, box["y"] - padding, area["y"])
    graph = panel.locator(".js-plotly-plot").first.bounding_box()
    bottom = graph["y"] + graph["height"] + 2  # (the next figure's title starts right below)
    return {"x": max(0.0, box["x"] - padding), "y": top, "width": box["width"] + 2 * padding, "height": bottom - top}
