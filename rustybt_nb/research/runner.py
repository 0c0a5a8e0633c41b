"""Running batches of combinations, in this process or on a Dask cluster.

A task is one batch of combinations run by :func:`run_batch` on one :class:`~rustybt_nb.Backtest`
(sent to each worker once: scattered, then fetched by each worker that needs it). A batch
is sized from the first combination's run time so that a task takes roughly half a second
(so an interrupt is honoured quickly and the scheduler's overhead stays small). A
combination that raises is an error row; the sweep goes on.

Row layout (what travels back from a worker): ``(combination, status, error, seconds,
metrics)`` with ``metrics`` a tuple of floats in the order of :data:`METRIC_NAMES` (None
for an error row).
"""

from __future__ import annotations

import contextlib
import os
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..metrics import METRIC_NAMES
from .grid import Grid

__all__ = ["TASK_SECONDS", "Row", "resolve_client", "run_batch", "run_rows", "scatter"]

#: The time a task should take (the batch size is chosen for it).
TASK_SECONDS = 0.5
_MAX_BATCH = 256
Row = tuple[int, str, str, float, "tuple[float, ...] | None"]


def run_batch(backtest: Any, window: tuple[Any, Any] | None, grid: Grid, batch: list[int]) -> list[Row]:
    """Run combinations ``batch`` of ``grid`` (their metrics only) on ``backtest``, cut to
    ``window`` (start, end) when given. Runs on a worker or in this process."""
    bt = backtest if window is None else backtest.between(*window)
    rows: list[Row] = []
    for k in batch:
        t0 = time.perf_counter()
        try:
            metrics = bt.run_metrics(**grid.params(k))
            values = tuple(float(metrics.get(name, float("nan"))) for name in METRIC_NAMES)
            rows.append((k, "ok", "", time.perf_counter() - t0, values))
        except Exception as exc:  # an error row: the sweep goes on
            rows.append((k, "error", _error_text(exc), time.perf_counter() - t0, None))
    return rows


_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _error_text(exc: BaseException) -> str:
    """The exception and the innermost frame outside this package (the strategy's function
    and line; not its file name, which a worker may not know for a notebook's code)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not os.path.abspath(f.filename).startswith(_PACKAGE)]
    where = f" (in {frames[-1].name}, line {frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _batches(todo: Iterator[int], size: int) -> Iterator[list[int]]:
    batch: list[int] = []
    for k in todo:
        batch.append(k)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def run_rows(backtest: Any, window: tuple[Any, Any] | None, grid: Grid, todo: Iterable[int], *,
             client: Any, on_rows: Callable[[list[Row]], None], shared: Any = None) -> bool:
    """Run every combination of ``todo``, calling ``on_rows`` with each finished batch's rows.
    ``client`` is ``'serial'`` or a ``distributed.Client``; ``shared`` is ``backtest`` already
    scattered to it (several sweeps of one backtest send its bars once). Returns False when
    interrupted (Ctrl-C / a kernel interrupt: outstanding tasks are cancelled, the rows so
    far kept)."""
    todo = iter(todo)
    first = next(todo, None)
    if first is None:
        return True
    try:
        rows = run_batch(backtest, window, grid, [first])  # also sizes the batches
        on_rows(rows)
        size = max(1, min(_MAX_BATCH, int(TASK_SECONDS / max(rows[0][3], 1e-4))))
        if client == "serial":
            for batch in _batches(todo, size):
                on_rows(run_batch(backtest, window, grid, batch))
            return True
    except KeyboardInterrupt:
        return False
    return _run_on_dask(client, shared, backtest, window, grid, _batches(todo, size), on_rows)


def _task_failure(future: Any) -> str:
    """What happened to a task that did not finish (e.g. ``KilledWorker``: its worker died
    as often as the scheduler allows)."""
    if future.status == "error":
        with contextlib.suppress(Exception):
            exc = future.exception(timeout=5)
            if exc is not None:
                return f"{type(exc).__name__}: {exc}"
    return f"the task ended {future.status}"


def _hold(value: Any) -> Any:
    return value


def scatter(client: Any, backtest: Any) -> Any:
    """``backtest`` placed on the cluster once, as the result of a task that holds it: each
    worker that runs a batch fetches it once (from a worker that has it) and keeps it, and
    if the worker holding it dies the scheduler makes it again from the task, so the
    batches waiting for it are not lost with it (data placed with ``client.scatter`` would
    be; ``broadcast=True`` copies would fight Dask's active memory manager)."""
    import dask

    with dask.config.set({"distributed.admin.large-graph-warning-threshold": "2GB"}):  # (the bars, once)
        return client.submit(_hold, backtest, pure=False)


def _run_on_dask(client: Any, shared: Any, backtest: Any, window: tuple[Any, Any] | None, grid: Grid,
                 batches: Iterator[list[int]], on_rows: Callable[[list[Row]], None]) -> bool:
    from distributed import as_completed

    workers = max(1, len(client.scheduler_info().get("workers", {})) or os.cpu_count() or 1)
    own = shared is None
    if own:
        shared = scatter(client, backtest)
    grid_future = client.submit(_hold, grid, pure=False)
    pending: dict[Any, tuple[list[int], int]] = {}  # future -> (batch, times submitted before)
    def submit(batch: list[int], tries: int = 0) -> Any:
        future = client.submit(run_batch, shared, window, grid_future, batch, pure=False)
        pending[future] = (batch, tries)
        return future

    try:
        queue = as_completed([submit(b) for _, b in zip(range(2 * workers), batches)], loop=client.loop)
        for future in queue:
            batch, tries = pending.pop(future)
            try:
                rows = future.result() if future.status == "finished" else None
                failure = None if rows is not None else _task_failure(future)
            except Exception as exc:  # a finished task whose result was lost with its worker
                rows, failure = None, f"{type(exc).__name__}: {exc}"
            if rows is not None:
                on_rows(rows)
            elif tries < 1 and future.status != "error":
                queue.add(submit(batch, tries + 1))  # once more
                continue
            else:  # its worker died (more than the scheduler allows) or it could not run: error rows
                on_rows([(k, "error", f"task failed: {failure}", 0.0, None) for k in batch])
            nxt = next(batches, None)
            if nxt is not None:
                queue.add(submit(nxt))
        return True
    except KeyboardInterrupt:
        client.cancel(list(pending))
        return False
    finally:
        with contextlib.suppress(Exception):
            client.cancel([shared, grid_future] if own else [grid_future])


def resolve_client(client: Any) -> tuple[Any, Callable[[], None]]:
    """``(client, close)`` for the ``client=`` argument of a sweep: ``'serial'``; None -> the
    current default Dask client, else a ``LocalCluster`` (processes, one single-threaded
    worker per core, no dashboard) started here and closed by ``close``; a
    ``distributed.Client``; or a scheduler address (a client connected here)."""
    if isinstance(client, str) and client == "serial":
        return "serial", lambda: None
    try:
        import distributed
    except ImportError as exc:
        raise ImportError("parallel sweeps need dask.distributed: pip install 'rustybt_nb[research]' (or "
                          "pip install 'dask[distributed]'); or pass client='serial' to run in this process"
                          ) from exc
    if client is None:
        with contextlib.suppress(ValueError):
            return distributed.default_client(), lambda: None
        import logging

        import dask

        with dask.config.set({"distributed.scheduler.allowed-failures": 1}):  # a task whose worker died: once more
            cluster = distributed.LocalCluster(n_workers=os.cpu_count() or 1, threads_per_worker=1, processes=True,
                                               dashboard_address=None, silence_logs=logging.ERROR)
        local = distributed.Client(cluster, set_as_default=False)

        def close() -> None:
            local.close()
            cluster.close()

        return local, close
    if isinstance(client, distributed.Client):
        return client, lambda: None
    if isinstance(client, str):
        remote = distributed.Client(client, set_as_default=False)
        return remote, remote.close
    raise TypeError(f"`client` must be 'serial', None (a local cluster), a distributed.Client or a scheduler "
                    f"address such as 'tcp://10.0.0.5:8786', got {client!r}")
