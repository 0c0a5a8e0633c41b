"""A progress bar for :func:`rustybt_nb.run_algorithm`'s ``progress=`` callback.

:func:`make_progress` returns a :class:`ProgressBar`: call it as ``progress(done_bars,
total_bars)`` (what the engine does, about 200 times a run). The ``tqdm.auto`` bar behind
it is created on the first call, shows up only when the run takes longer than half a
second (``delay=0.5``), leaves nothing behind when it is done (``leave=False``) and is
closed when the run reaches its last bar, when :meth:`ProgressBar.close` is called, or at
the end of a ``with`` block (so also when the strategy raises)::

    with make_progress() as progress:
        result = run_algorithm(MyStrategy, progress=progress)

Progress bars are off when the ``TQDM_DISABLE`` or ``RUSTYBT_NB_NO_PROGRESS``
environment variable is set to a true value (anything but ``''``, ``0``, ``false``,
``no``, ``off``), after ``setup_notebook(progress=False)``, or with ``disable=True``.
Without ``tqdm`` installed the callback does nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import TracebackType
from typing import Any

__all__ = ["ProgressBar", "make_progress", "progress_enabled", "set_progress_default"]

_FALSE_WORDS = frozenset({"", "0", "false", "no", "off", "n", "f"})
_ENV_SWITCHES = ("TQDM_DISABLE", "RUSTYBT_NB_NO_PROGRESS")

#: The default set by ``setup_notebook(progress=...)``; None until it is called.
_default_enabled: bool | None = None


def _env_true(value: str | None) -> bool:
    return value is not None and value.strip().lower() not in _FALSE_WORDS


def disabled_by_env(environ: Mapping[str, str] | None = None) -> str | None:
    """The name of the environment variable that turns progress bars off, or None."""
    env = os.environ if environ is None else environ
    for name in _ENV_SWITCHES:
        if _env_true(env.get(name)):
            return name
    return None


def set_progress_default(enabled: bool) -> None:
    """Turn progress bars on or off for every later :func:`make_progress` call that does
    not say ``disable=`` (what ``setup_notebook(progress=...)`` does)."""
    global _default_enabled
    _default_enabled = bool(enabled)


def progress_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether :func:`make_progress` would draw a bar now (environment first, then the
    ``setup_notebook`` default, which is on)."""
    if disabled_by_env(environ):
        return False
    return _default_enabled is not False


class ProgressBar:
    """The callable that :func:`make_progress` returns (see the module docstring).

    ``bar`` is the underlying ``tqdm`` object once the first call made it (None before,
    and always None when disabled). ``closed`` is True once the bar is finished.
    """

    def __init__(self, total_hint: int | None = None, disable: bool = False) -> None:
        self.total_hint = total_hint
        self.disable = disable
        self.bar: Any = None
        self.closed = False

    def __call__(self, done: int, total: int | None = None) -> None:
        """Report ``done`` of ``total`` bars (``total`` falls back to ``total_hint``)."""
        if self.disable or self.closed:
            return
        total = total if total is not None else self.total_hint
        if self.bar is None:
            self.bar = _new_bar(total)
            if self.bar is None:  # tqdm is not installed
                self.disable = True
                return
        if total is not None and self.bar.total != total:
            self.bar.total = total
        step = int(done) - int(self.bar.n)
        if step > 0:
            self.bar.update(step)
        if total is not None and done >= total:
            self.close()

    def close(self) -> None:
        """Finish the bar (safe to call more than once)."""
        if self.closed:
            return
        self.closed = True
        if self.bar is not None:
            if self.bar.total and self.bar.n < self.bar.total:
                # stopped early (the strategy raised): the traceback says why, so let the bar vanish
                # instead of staying behind as a red notebook widget
                self.bar.total = self.bar.n
            self.bar.close()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "disabled" if self.disable else ("closed" if self.closed else "open")
        return f"<ProgressBar {state}>"


def _new_bar(total: int | None) -> Any:
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, delay=0.5, unit="bar", unit_scale=True, leave=False, desc="backtest", disable=False)


def make_progress(total_hint: int | None = None, disable: bool | None = None) -> ProgressBar:
    """A ``progress(done_bars, total_bars)`` callback for ``run_algorithm(progress=...)``.

    Parameters
    ----------
    total_hint:
        The number of bars, used until the engine reports its own total.
    disable:
        True: never draw. False: draw even when the environment or ``setup_notebook``
        turned bars off. None (default): decide from ``TQDM_DISABLE`` /
        ``RUSTYBT_NB_NO_PROGRESS`` and ``setup_notebook(progress=...)``.
    """
    if disable is None:
        disable = not progress_enabled()
    return ProgressBar(total_hint=total_hint, disable=bool(disable))
