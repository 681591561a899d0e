"""One writer at a time: the project lock, two runs at once, a planner save during a run."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from pipelines.db import connect, read_table
from pipelines.lock import (
    ProjectLocked,
    clean_stale_temp_files,
    lock_path,
    project_lock,
    read_holder,
)
from pipelines.run import db_path, run_project

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


@pytest.fixture
def project(small_demo, tmp_path) -> Path:
    """A private copy of the small demo (already run once), so the shared one stays as it is."""
    dest = tmp_path / "demo's copy"  # a quote and a space in the path on purpose
    shutil.copytree(small_demo, dest, ignore=shutil.ignore_patterns("*.lock", "*.tmp-*"))
    return dest


def _runs(project: Path) -> list[str]:
    con = connect(db_path(project), read_only=True)
    try:
        return read_table(con, "SELECT run_id FROM runs ORDER BY started_at")["run_id"].tolist()
    finally:
        con.close()


def _py(code: str, *args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], env=ENV, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_second_holder_is_refused_with_the_holders_name(tmp_path):
    with project_lock(tmp_path, purpose="run"):
        assert read_holder(tmp_path)["purpose"] == "run" and read_holder(tmp_path)["pid"] == os.getpid()
        with pytest.raises(ProjectLocked) as info:
            with project_lock(tmp_path, purpose="run"):
                pass
        assert "gridgov run" in info.value.en and str(os.getpid()) in info.value.en
        assert "gridgov run" in info.value.zh and "lock_wait_seconds" in info.value.zh
    with project_lock(tmp_path):  # released at the end of the block
        pass
    assert read_holder(tmp_path) == {}


def test_a_waiting_holder_gets_the_lock_when_the_first_lets_go(tmp_path):
    got: list[str] = []

    def second():
        with project_lock(tmp_path, wait=600, purpose="run"):
            got.append(read_holder(tmp_path)["purpose"])

    with project_lock(tmp_path, purpose="save"):
        t = threading.Thread(target=second)
        t.start()
        assert not got  # still waiting while the first holds the lock
    t.join()
    assert got == ["run"]


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    holder = _py("""
        import sys, time
        from pipelines.lock import project_lock
        with project_lock(sys.argv[1], purpose="run"):
            print("locked", flush=True)
            time.sleep(600)
        """, str(tmp_path))
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(ProjectLocked):
            with project_lock(tmp_path):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        holder.stdout.close()
        holder.stderr.close()
    assert lock_path(tmp_path).exists()  # the file stays; the OS dropped the lock with the process
    with project_lock(tmp_path):
        pass


def test_stale_temp_files_are_removed_at_the_next_run_start(project):
    stale = [project / "gridgov.duckdb.tmp-99999", project / "gridgov.duckdb.tmp-99999.wal"]
    for p in stale:
        p.write_bytes(b"left by a killed run")
    keep = project / "gridgov.duckdb"
    with project_lock(project):
        assert clean_stale_temp_files(project) == sorted(stale)
    assert keep.exists() and not any(p.exists() for p in stale)
    for p in stale:
        p.write_bytes(b"left by a killed run")
    run_project(project, stages=[])
    assert not any(p.exists() for p in stale)


def test_two_runs_at_once_second_is_refused_and_the_database_keeps_the_first(project):
    before = _runs(project)
    second: dict = {}

    def during(message: str) -> None:
        if message.startswith("阶段") and not second:  # the first run holds the lock by now
            r = subprocess.run([sys.executable, "-m", "pipelines", "run", str(project)], env=ENV, cwd=ROOT,
                               capture_output=True, text=True)
            second.update(rc=r.returncode, out=r.stdout + r.stderr)

    first = run_project(project, stages=["staffing"], progress=during)
    assert second["rc"] != 0
    assert "gridgov run" in second["out"] and "正在被" in second["out"] and "Traceback" not in second["out"]
    after = _runs(project)
    assert after == before + [first["run_id"]]


def test_two_runs_at_once_with_a_wait_both_recorded(project):
    (project / "gridgov.toml").write_text(
        (project / "gridgov.toml").read_text(encoding="utf-8") + "\n[run]\nlock_wait_seconds = 600\n",
        encoding="utf-8")
    before = _runs(project)
    procs: list[subprocess.Popen] = []

    def during(message: str) -> None:
        if message.startswith("阶段") and not procs:
            procs.append(_py("""
                import json, sys
                from pipelines.run import run_project
                print(json.dumps({"run_id": run_project(sys.argv[1], stages=["staffing"])["run_id"]}))
                """, str(project)))

    first = run_project(project, stages=["staffing"], progress=during)
    out, err = procs[0].communicate(timeout=900)
    assert procs[0].returncode == 0, err
    second_id = json.loads(out.strip().splitlines()[-1])["run_id"]
    assert _runs(project) == before + [first["run_id"], second_id]


SAVE = """
    import json, sys
    from pipelines.services import planner as pl
    pl.SAVE_LOCK_WAIT = 0
    db, code = sys.argv[1], sys.argv[2]
    ws = pl.open_workspace(db, code)
    edit = pl.new_edit(ws)
    pl.edit_redraw(ws, edit, households_min=250, households_max=450)
    try:
        saved = pl.save_plan(db, ws, pl.working_labels(ws, edit), author="王工", note="during a run")
        print(json.dumps({"plan_id": saved.plan_id}))
    except pl.PlannerError as exc:
        print(json.dumps({"refused": exc.en, "zh": exc.zh}))
    """


def _plans(project: Path) -> list[str]:
    con = connect(db_path(project), read_only=True)
    try:
        return read_table(con, "SELECT plan_id FROM plans ORDER BY plan_id")["plan_id"].tolist()
    finally:
        con.close()


def test_planner_save_during_a_run_is_refused_then_kept_by_the_next_run(project):
    from pipelines.services import planner as pl

    con = connect(db_path(project), read_only=True)
    try:
        code = str(pl.list_communities(con)["community_code"].iloc[0])
    finally:
        con.close()
    result: dict = {}

    def during(message: str) -> None:
        if message.startswith("阶段") and not result:  # a save from another process, now
            p = _py(SAVE, str(db_path(project)), code)
            out, err = p.communicate(timeout=600)
            assert p.returncode == 0, err
            result.update(json.loads(out.strip().splitlines()[-1]))

    run_project(project, stages=["grids"], progress=during)
    assert "refused" in result, result  # never written into the file the run replaced
    assert "NOT saved" in result["refused"] and "未保存" in result["zh"]
    # saved again after the run: stored, and the next run carries it in its history
    p = _py(SAVE, str(db_path(project)), code)
    out, err = p.communicate(timeout=600)
    assert p.returncode == 0, err
    saved = json.loads(out.strip().splitlines()[-1])
    assert "plan_id" in saved, (saved, err)
    run_project(project, stages=["grids"])
    assert saved["plan_id"] in _plans(project)


def test_runs_settings_never_hold_the_salt(project):
    salt = (project / ".gridgov-salt").read_text().strip()
    con = connect(db_path(project), read_only=True)
    try:
        stored = [r[0] for r in con.execute("SELECT CAST(settings AS VARCHAR) FROM runs").fetchall()]
    finally:
        con.close()
    assert stored and all(salt not in s and "privacy" not in json.loads(s) for s in stored)
