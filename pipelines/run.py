"""``gridgov run``: ingest plus every stage, built in a new file and swapped in only on success."""
from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from pipelines.config import DB_NAME, SETTINGS_NAME, STAGES, load_settings, settings_for_record
from pipelines.db import attach, connect, table_exists
from pipelines.errors import InputFileError
from pipelines.ingest import ingest
from pipelines.layers import LAYERS
from pipelines.lock import clean_stale_temp_files, project_lock

log = logging.getLogger(__name__)

# Tables that keep history across runs: copied from the previous database into the new one.
# alert_status: people's acknowledged/closed status of alerts (geo.alerts), kept across runs.
HISTORY_TABLES = ("runs", "plans", "plan_grids", "plan_members", "grid_metrics", "alert_status")


def db_path(project_dir: str | Path) -> Path:
    """Where the project's database lives."""
    return Path(project_dir) / DB_NAME


def input_fingerprint(project_dir: Path) -> str:
    """SHA-256 over the names and bytes of the input layer files and the settings file."""
    h = hashlib.sha256()
    for p in sorted(project_dir.iterdir()):
        if p.name == SETTINGS_NAME or (p.stem in LAYERS and not p.name.startswith(".")):
            files = sorted(p.rglob("*")) if p.is_dir() else [p]
            for f in files:
                if f.is_file():
                    h.update(f.relative_to(project_dir).as_posix().encode())
                    with f.open("rb") as fh:
                        for chunk in iter(lambda: fh.read(1 << 20), b""):
                            h.update(chunk)
    return h.hexdigest()


def available_stages() -> list[str]:
    """Stage modules present in this installation, in run order."""
    out = []
    for name in STAGES:
        try:
            importlib.import_module(f"pipelines.stage_{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"pipelines.stage_{name}":
                raise
            continue
        out.append(name)
    return out


def run_project(
    project_dir: str | Path,
    *,
    stages: list[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Run ingest and the stages into ``project_dir/gridgov.duckdb`` atomically.

    The new database is written to a temporary file next to the old one; history tables
    (``runs``, ``plans`` …) are carried over; only when every step succeeded does the new file
    replace the old one. On failure the previous database is untouched and the error propagates.

    One writer at a time: the run holds the project lock (:mod:`pipelines.lock`) from before it
    copies the history until the new file is in place, so a second run waits up to
    ``[run] lock_wait_seconds`` and then stops (:class:`pipelines.lock.ProjectLocked`), and a
    planner save during the run is refused instead of being written into the file the run is
    about to replace. Temporary files of killed runs are removed when the lock is taken. The
    stored ``runs.settings`` never holds a privacy salt.

    Parameters
    ----------
    stages
        Stage names to run after ingest (default: every available stage); ``[]`` runs ingest only.
    """
    project_dir = Path(project_dir)
    say = progress or (lambda m: None)
    if not project_dir.is_dir():
        raise InputFileError(f"项目文件夹 {project_dir} 不存在；可用 gridgov demo {project_dir} 生成演示项目。",
                             f"Project folder {project_dir} does not exist; `gridgov demo {project_dir}` writes the demo.")
    settings = load_settings(project_dir)
    wait = float((settings.get("run") or {}).get("lock_wait_seconds", 0) or 0)
    with project_lock(project_dir, wait=wait, purpose="run"):
        for stale in clean_stale_temp_files(project_dir):
            log.info("removed a temporary file of an interrupted run: %s", stale)
        summary = _run_locked(project_dir, settings, stages, say)
    say(f"完成 / done in {summary['seconds']} s → {db_path(project_dir)}")
    return summary


def _run_locked(project_dir: Path, settings: dict, stages: list[str] | None, say: Callable[[str], None]) -> dict:
    """The run proper; the caller holds the project lock, so nobody else writes the database meanwhile."""
    final = db_path(project_dir)
    tmp = final.with_name(f"{DB_NAME}.tmp-{os.getpid()}")
    for leftover in (tmp, Path(str(tmp) + ".wal")):
        leftover.unlink(missing_ok=True)
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    started = datetime.now(UTC).replace(tzinfo=None)
    t0 = time.perf_counter()
    summary: dict = {"run_id": run_id, "stages": {}}
    con = connect(tmp)
    try:
        if final.exists():
            _carry_history(con, final)
        report = ingest(project_dir, con, settings, progress=say)
        summary["ingest"] = report.as_dict()
        for name in available_stages() if stages is None else stages:
            say(f"阶段 / stage: {name}")
            ts = time.perf_counter()
            mod = importlib.import_module(f"pipelines.stage_{name}")
            summary["stages"][name] = mod.run(con, settings, progress=say) or {}
            summary["stages"][name]["seconds"] = round(time.perf_counter() - ts, 2)
        summary["seconds"] = round(time.perf_counter() - t0, 2)
        _record_run(con, run_id, started, "success", settings, input_fingerprint(project_dir), summary)
        con.execute("CHECKPOINT")
        con.close()
        os.replace(tmp, final)
        Path(str(final) + ".wal").unlink(missing_ok=True)
    except BaseException:
        try:
            con.close()
        finally:
            tmp.unlink(missing_ok=True)
            Path(str(tmp) + ".wal").unlink(missing_ok=True)
        raise
    return summary


def _carry_history(con, old: Path) -> None:
    attach(con, old, "old", read_only=True)
    try:
        for t in HISTORY_TABLES:
            exists = con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_catalog='old' AND table_name=?", [t]
            ).fetchone()[0]
            if exists:
                con.execute(f'CREATE TABLE "{t}" AS SELECT * FROM old."{t}"')
    finally:
        con.execute("DETACH old")
    from pipelines.plans import publish_current

    publish_current(con)


def _record_run(con, run_id, started, status, settings, fingerprint, summary) -> None:
    if not table_exists(con, "runs"):
        con.execute("""CREATE TABLE runs (run_id VARCHAR, started_at TIMESTAMP, finished_at TIMESTAMP,
                       status VARCHAR, settings JSON, input_fingerprint VARCHAR, summary JSON)""")
    con.execute(
        "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?)",
        [run_id, started, datetime.now(UTC).replace(tzinfo=None), status,
         json.dumps(settings_for_record(settings), ensure_ascii=False, default=str), fingerprint,
         json.dumps(summary, ensure_ascii=False, default=str)],
    )
