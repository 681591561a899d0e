"""One writer at a time: an OS file lock on ``<project>/.gridgov.lock``.

``gridgov run`` holds the lock from before it reads the previous database until the new file has
replaced it; a planner save holds it while it writes. The lock is ``fcntl.flock`` on an open file:
the operating system releases it when the process ends, so a killed run (``kill -9``) never leaves
a stale lock behind. A second writer waits up to ``[run] lock_wait_seconds`` and then stops with a
message in Chinese and English naming the holder (what, process id, since when).

While the lock is held, the file holds one JSON line describing the holder; it is informative only
(the lock itself is the flock, never the file's existence or content).

Examples
--------
>>> import tempfile
>>> d = tempfile.mkdtemp()
>>> with project_lock(d, purpose="run"):
...     try:
...         with project_lock(d, purpose="save"):
...             pass
...     except ProjectLocked as exc:
...         print(exc.holder["purpose"])
run
"""
from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from pipelines.config import DB_NAME, LOCK_NAME
from pipelines.errors import GridgovError

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

_WHAT = {"run": ("另一个 gridgov run ", "another `gridgov run`"), "save": ("一次规划方案保存", "a planner save")}
_MINE = {"run": ("本次运行", "this run"), "save": ("本次保存", "this save")}


class ProjectLocked(GridgovError):
    """Another process writes this project; ``holder`` says who (purpose, pid, since)."""

    def __init__(self, zh: str, en: str, holder: dict):
        super().__init__(zh, en)
        self.holder = holder


def lock_path(project_dir: str | Path) -> Path:
    """The lock file of a project folder."""
    return Path(project_dir) / LOCK_NAME


def read_holder(project_dir: str | Path) -> dict:
    """What the lock file says about its holder (empty when unknown)."""
    try:
        text = lock_path(project_dir).read_text(encoding="utf-8").strip()
        return json.loads(text) if text else {}
    except (OSError, ValueError):
        return {}


def _try_lock(fd: int) -> bool:
    if fcntl is None:  # pragma: no cover - Windows: lock the first byte
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except (BlockingIOError, PermissionError):
        return False


def _unlock(fd: int) -> None:
    if fcntl is None:  # pragma: no cover
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        return
    fcntl.flock(fd, fcntl.LOCK_UN)


def _message(project_dir: Path, holder: dict, purpose: str, waited: float) -> tuple[str, str]:
    what_zh, what_en = _WHAT.get(str(holder.get("purpose")), ("另一个写入进程", "another writer"))
    pid = holder.get("pid", "?")
    since = holder.get("since", "?")
    mine_zh, mine_en = _MINE.get(purpose, ("本操作", "this operation"))
    wait_zh = f"已等待 {waited:g} 秒；" if waited else ""
    wait_en = f"waited {waited:g} s; " if waited else ""
    if purpose == "save":
        zh = (f"项目 {project_dir} 正在被{what_zh}写入（进程 {pid}，开始于 {since} UTC）；{wait_zh}"
              "方案未保存，编辑内容仍保留在页面上。请等运行结束后再点保存。")
        en = (f"Project {project_dir} is being written by {what_en} (process {pid}, since {since} UTC); "
              f"{wait_en}the plan was NOT saved and your edit is kept on the page. Save again when it has finished.")
        return zh, en
    zh = (f"项目 {project_dir} 正在被{what_zh}写入（进程 {pid}，开始于 {since} UTC）；{wait_zh}{mine_zh}已停止，"
          "数据库未改动。请等它结束后再试，或在 gridgov.toml 的 [run] 中设置 lock_wait_seconds 让其排队等待。")
    en = (f"Project {project_dir} is being written by {what_en} (process {pid}, since {since} UTC); {wait_en}"
          f"{mine_en} stopped and the database is unchanged. Try again when it has finished, or set "
          "[run] lock_wait_seconds in gridgov.toml to queue behind it.")
    return zh, en


@contextmanager
def project_lock(project_dir: str | Path, *, wait: float = 0.0, purpose: str = "run",
                 poll: float = 0.2) -> Iterator[Path]:
    """Hold the project's write lock for the ``with`` block.

    Parameters
    ----------
    wait
        Seconds to wait for another holder before giving up (0: give up at once).
    purpose
        ``"run"`` or ``"save"``: recorded for the other side's message.

    Raises
    ------
    ProjectLocked
        Another process (or another open of the lock in this process) holds the lock.
    """
    project_dir = Path(project_dir)
    path = lock_path(project_dir)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        start = time.monotonic()
        while not _try_lock(fd):
            waited = time.monotonic() - start
            if waited >= wait:
                holder = read_holder(project_dir)
                zh, en = _message(project_dir, holder, purpose, round(wait, 1))
                raise ProjectLocked(zh, en, holder)
            time.sleep(min(poll, max(0.01, wait - waited)))
        info = {"purpose": purpose, "pid": os.getpid(), "host": socket.gethostname(),
                "since": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
            _unlock(fd)
    finally:
        os.close(fd)


def clean_stale_temp_files(project_dir: str | Path) -> list[Path]:
    """Remove temporary databases left by killed runs; call only while holding the lock.

    Returns the paths removed. Only ``gridgov.duckdb.tmp-*`` files (the run's new database and
    its WAL) are touched; the project database and its WAL never are.
    """
    removed = []
    for p in sorted(Path(project_dir).glob(f"{DB_NAME}.tmp-*")):
        if p.is_file():
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed
