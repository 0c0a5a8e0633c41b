"""Running batches of combinations, in this process or on a Dask cluster.

A task is one batch of combinations run by :func:`run_batch` on one :class:`~rustybt_nb.Backtest`
(placed on the cluster once, as the result of a holder task, and fetched by each worker
that needs it). The first combination runs in this process — while the backtest travels
to the cluster — and its run time sizes the batches: a task takes about
:data:`TASK_SECONDS` (so an interrupt is honoured quickly and the scheduler's overhead
stays small), but no more than a share of what is left, so the workers finish together
(batches shrink towards the end of a sweep, never below :data:`MIN_TASK_SECONDS` of work).
A combination that raises is an error row; the sweep goes on.

What travels back from a worker is a :class:`Batch`: the rows as arrays (numbers, run
seconds, a block of metrics), not as Python objects, so a large grid costs little beyond
its table.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..metrics import METRIC_NAMES
from .grid import Grid

__all__ = ["MIN_TASK_SECONDS", "TASK_SECONDS", "Batch", "batch_sizes", "resolve_client", "run_batch",
           "run_rows", "scatter"]

#: The time a task should take (the batch size is chosen for it) ...
TASK_SECONDS = 0.5
#: ... and the least work worth a task, when batches shrink to share out the rest.
MIN_TASK_SECONDS = 0.1
#: Batches in flight per worker at the end of a sweep (the share of the rest a batch takes).
_SHARES_PER_WORKER = 4
_MAX_BATCH = 256


@dataclass(frozen=True)
class Batch:
    """Finished combinations: their numbers ``ks``, run ``seconds``, ``metrics`` (one row
    per combination, columns in the order of :data:`~rustybt_nb.metrics.METRIC_NAMES`, NaN
    in an error row) and ``errors`` (position in the batch -> the error text)."""

    ks: np.ndarray
    seconds: np.ndarray
    metrics: np.ndarray
    errors: dict[int, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ks)

    @classmethod
    def failed(cls, ks: Sequence[int], error: str) -> Batch:
        """Error rows for combinations that could not be run (their task failed)."""
        n = len(ks)
        return cls(np.asarray(ks, dtype=np.int64), np.zeros(n), np.full((n, len(METRIC_NAMES)), np.nan),
                   dict.fromkeys(range(n), error))

    @classmethod
    def concat(cls, batches: Sequence[Batch]) -> Batch:
        """One batch holding the rows of ``batches``, in their order."""
        if not batches:
            return cls(np.empty(0, dtype=np.int64), np.empty(0), np.empty((0, len(METRIC_NAMES))))
        if len(batches) == 1:
            return batches[0]
        errors: dict[int, str] = {}
        offset = 0
        for b in batches:
            errors.update({offset + i: text for i, text in b.errors.items()})
            offset += len(b)
        return cls(np.concatenate([b.ks for b in batches]), np.concatenate([b.seconds for b in batches]),
                   np.concatenate([b.metrics for b in batches]), errors)


def run_batch(backtest: Any, window: tuple[Any, Any] | None, grid: Grid, batch: Sequence[int]) -> Batch:
    """Run combinations ``batch`` of ``grid`` (their metrics only) on ``backtest``, cut to
    ``window`` (start, end) when given. Runs on a worker or in this process."""
    bt = backtest if window is None else backtest.between(*window)
    n = len(batch)
    seconds = np.empty(n)
    metrics = np.full((n, len(METRIC_NAMES)), np.nan)
    errors: dict[int, str] = {}
    with bt.reusing_indicators():  # (an indicator with the same arguments is computed once per batch)
        for i, k in enumerate(batch):
            t0 = time.perf_counter()
            try:
                metrics[i] = list(bt.metric_values(**grid.params(int(k))).values())  # (METRIC_NAMES order)
            except Exception as exc:  # an error row: the sweep goes on
                errors[i] = _error_text(exc)
            seconds[i] = time.perf_counter() - t0
    return Batch(np.asarray(batch, dtype=np.int64), seconds, metrics, errors)


_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _error_text(exc: BaseException) -> str:
    """The exception and the innermost frame outside this package (the strategy's function
    and line; not its file name, which a worker may not know for a notebook's code)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not os.path.abspath(f.filename).startswith(_PACKAGE)]
    where = f" (in {frames[-1].name}, line {frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def batch_sizes(first_seconds: float, workers: int, remaining: int | None) -> Callable[[int], int]:
    """``size(handed_out)``: how many combinations the next batch takes once ``handed_out``
    have been handed out, for combinations that take about ``first_seconds`` each and
    ``remaining`` left to run (None: unknown) on ``workers`` workers.

    At most :data:`TASK_SECONDS` of work, and at most ``1/(4 x workers)`` of what is still
    to hand out (guided self-scheduling: the last batches are small, so no worker is left
    with a long one while the others idle), but never less than :data:`MIN_TASK_SECONDS` of
    work, and never more than ``_MAX_BATCH`` combinations."""
    per = max(first_seconds, 1e-4)
    largest = max(1, min(_MAX_BATCH, int(TASK_SECONDS / per)))
    smallest = max(1, min(largest, int(MIN_TASK_SECONDS / per)))

    def size(handed_out: int) -> int:
        if remaining is None:
            return largest
        share = math.ceil(max(0, remaining - handed_out) / (_SHARES_PER_WORKER * max(1, workers)))
        return min(largest, max(smallest, share))

    return size


def _batches(todo: Iterator[int], size: Callable[[int], int]) -> Iterator[list[int]]:
    handed_out = 0
    while True:
        batch = [k for _, k in zip(range(size(handed_out)), todo)]
        if not batch:
            return
        handed_out += len(batch)
        yield batch


def run_rows(backtest: Any, window: tuple[Any, Any] | None, grid: Grid, todo: Iterable[int], *,
             client: Any, on_rows: Callable[[Batch], None], shared: Any = None, total: int | None = None) -> bool:
    """Run every combination of ``todo`` (``total`` of them, when known: it sizes the
    batches), calling ``on_rows`` with each finished :class:`Batch`. ``client`` is
    ``'serial'`` or a ``distributed.Client``; ``shared`` is ``backtest`` already placed on
    its cluster (several sweeps of one backtest send its bars once). Returns False when
    interrupted (Ctrl-C / a kernel interrupt: outstanding tasks are cancelled, the rows so
    far kept)."""
    todo = iter(todo)
    try:
        first = next(todo, None)
        if first is None:
            return True
        if client != "serial":
            return _run_on_dask(client, shared, backtest, window, grid, first, todo, on_rows, total)
        rows = run_batch(backtest, window, grid, [first])
        on_rows(rows)
        size = batch_sizes(float(rows.seconds[0]), 1, None if total is None else total - 1)
        for batch in _batches(todo, size):
            on_rows(run_batch(backtest, window, grid, batch))
        return True
    except KeyboardInterrupt:
        return False


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


def _workers(client: Any) -> int:
    with contextlib.suppress(Exception):
        return len(client.scheduler_info().get("workers", {})) or 1
    return os.cpu_count() or 1


def _run_on_dask(client: Any, shared: Any, backtest: Any, window: tuple[Any, Any] | None, grid: Grid,
                 first: int, todo: Iterator[int], on_rows: Callable[[Batch], None], total: int | None) -> bool:
    from distributed import as_completed

    own = shared is None
    pending: dict[Any, tuple[list[int], int]] = {}  # future -> (batch, times submitted before)
    grid_future = None
    try:
        # sent before the first combination runs here, so the transfer overlaps that run
        if own:
            shared = scatter(client, backtest)
        grid_future = client.submit(_hold, grid, pure=False)
        rows = run_batch(backtest, window, grid, [first])
        on_rows(rows)
        workers = _workers(client)
        batches = _batches(todo, batch_sizes(float(rows.seconds[0]), workers, None if total is None else total - 1))

        def submit(batch: list[int], tries: int = 0) -> Any:
            future = client.submit(run_batch, shared, window, grid_future, batch, pure=False)
            pending[future] = (batch, tries)
            return future

        queue = as_completed([submit(b) for _, b in zip(range(2 * workers), batches)], loop=client.loop)
        for future in queue:
            batch, tries = pending.pop(future)
            try:
                done = future.result() if future.status == "finished" else None
                failure = None if done is not None else _task_failure(future)
            except Exception as exc:  # a finished task whose result was lost with its worker
                done, failure = None, f"{type(exc).__name__}: {exc}"
            if done is not None:
                on_rows(done)
            elif tries < 1 and future.status != "error":
                queue.add(submit(batch, tries + 1))  # once more
                continue
            else:  # its worker died (more than the scheduler allows) or it could not run: error rows
                on_rows(Batch.failed(batch, f"task failed: {failure}"))
            nxt = next(batches, None)
            if nxt is not None:
                queue.add(submit(nxt))
        return True
    except KeyboardInterrupt:
        client.cancel(list(pending))
        return False
    finally:
        with contextlib.suppress(Exception):
            client.cancel([f for f in ((shared if own else None), grid_future) if f is not None])


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
