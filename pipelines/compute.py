"""Where the per-community work runs: in this process, a local process pool, or a Dask cluster.

The grid engine draws every community independently (cells are grouped by community, each
community's random stream comes from the global seed and its code, and its search stops on a
work budget), so the plan is the same wherever the work runs. This module turns the
``[compute]`` settings into a ``concurrent.futures.Executor``-like object that
:func:`geo.partition.partition` maps its tasks over:

``scheduler = ""`` (default)
    No executor: the engine uses ``[grids] n_jobs`` processes on this machine.
``scheduler = "local"``
    A ``dask.distributed.LocalCluster`` with ``workers`` single-threaded worker processes.
``scheduler = "tcp://host:8786"``
    An existing Dask scheduler (see ``docs/scale.md``); every worker needs the same gridgov
    version installed.

Examples
--------
>>> with executor_for({"compute": {"scheduler": "", "workers": 2}}) as ex:
...     ex is None
True
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from concurrent.futures import Executor
from typing import Any

from pipelines.errors import SettingsError

log = logging.getLogger(__name__)


def _scheduler(settings: dict[str, Any]) -> tuple[str, int]:
    comp = settings.get("compute") or {}
    scheduler = str(comp.get("scheduler") or "").strip()
    workers = int(comp.get("workers") or 1)
    if workers < 1:
        raise SettingsError(
            f"[compute] workers = {workers} 必须 ≥ 1。",
            f"[compute] workers = {workers} must be at least 1.",
        )
    if scheduler and scheduler != "local" and not scheduler.startswith(("tcp://", "tls://")):
        raise SettingsError(
            f"[compute] scheduler = {scheduler!r} 无效：请留空、写 \"local\"，或写 Dask 调度器地址 \"tcp://主机:8786\"。",
            f"[compute] scheduler = {scheduler!r} is invalid: leave it empty, write \"local\", "
            "or a Dask scheduler address such as \"tcp://host:8786\".",
        )
    return scheduler, workers


@contextlib.contextmanager
def executor_for(settings: dict[str, Any]) -> Iterator[Executor | None]:
    """Yield the Dask executor the settings ask for, or ``None`` to work on this machine.

    Its tasks are submitted with ``pure=False``: Dask then names them without hashing their
    arguments (with hashing, the 16,260 community frames of a 1M-building province kept the main
    process busy for minutes before the first task ran); the engine never submits the same task
    twice, so nothing is lost.

    Parameters
    ----------
    settings
        Project settings; reads ``[compute] scheduler`` and ``[compute] workers``.

    Yields
    ------
    concurrent.futures.Executor or None
        ``None`` when no scheduler is set (the caller then uses its own process pool).
    """
    scheduler, workers = _scheduler(settings)
    if not scheduler:
        yield None
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise SettingsError(
            "[compute] scheduler 需要 dask.distributed：请运行 pip install \"gridgov[dask]\"。",
            "[compute] scheduler needs dask.distributed: run pip install \"gridgov[dask]\".",
        ) from exc
    if scheduler == "local":
        log.info("compute: starting a Dask LocalCluster with %d worker(s)", workers)
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            yield client.get_executor(pure=False)
        return
    log.info("compute: connecting to the Dask scheduler at %s", scheduler)
    try:
        client = Client(scheduler, timeout="30s")
    except OSError as exc:
        raise SettingsError(
            f"[compute] 无法连接 Dask 调度器 {scheduler}（{exc}）；请先启动 dask scheduler 与 worker，或把 scheduler 留空。",
            f"[compute] cannot reach the Dask scheduler at {scheduler} ({exc}); start `dask scheduler` "
            "and workers first, or leave scheduler empty to work on this machine.",
        ) from exc
    with client:
        yield client.get_executor(pure=False)
