"""The grids stage on a Dask cluster gives exactly the single-process plan (issue #13).

A scheduler and two single-threaded workers are started as separate processes on 127.0.0.1
(what an operator does on several machines, see docs/scale.md); the project's
``[compute] scheduler`` points at them. A second test maps the engine over a 2-worker
``LocalCluster``. Both compare ``grid_members`` with a run in one process.
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time

import pytest

pytest.importorskip("distributed")

from tests.pipelines import plankit  # noqa: E402

pytestmark = pytest.mark.slow
#: Draw every community from scratch (not from today's grids), so the partition runs on the executor.
FROM_SCRATCH = "[grids]\nstart_from_current_grids = false\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, procs: list[subprocess.Popen], timeout: float = 120) -> None:
    end = time.monotonic() + timeout  # start-up wait only; no result depends on it
    while time.monotonic() < end:
        for p in procs:
            if p.poll() is not None:
                raise AssertionError(f"a Dask process ended early: {p.args}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise AssertionError(f"no Dask scheduler on 127.0.0.1:{port}")


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    from gridgov.demo_city import build_demo
    from pipelines.run import run_project

    base = tmp_path_factory.mktemp("dask") / "demo"
    build_demo(base, size="small")
    run_project(base, stages=[])  # ingest once; each draw runs the grids stage on a copy
    return base


@pytest.fixture(scope="module")
def single(ingested, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("single")
    one = tmp / "one"
    shutil.copytree(ingested, one)
    plankit.add_settings(one, FROM_SCRATCH + "n_jobs = 1")
    plankit.draw(one, tmp)
    return plankit.members(one)


def test_tcp_cluster_of_two_workers_gives_the_single_process_plan(ingested, single, tmp_path):
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
         "--port", str(port), "--no-dashboard"],
        env=plankit.env(), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        _wait_for_port(port, procs)
        for i in range(2):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_worker", address,
                 "--nthreads", "1", "--nworkers", "1", "--host", "127.0.0.1",
                 "--no-dashboard", "--name", f"w{i}"],
                env=plankit.env(), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from distributed import Client

        with Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=120)
            assert len(client.scheduler_info()["workers"]) == 2
        project = tmp_path / "tcp"
        shutil.copytree(ingested, project)
        plankit.add_settings(project, FROM_SCRATCH + f'[compute]\nscheduler = "{address}"')
        plankit.draw(project, tmp_path)
        with Client(address, timeout="60s") as client:  # the communities really ran there
            done = client.run_on_scheduler(
                lambda dask_scheduler: {name: dict(p.all_durations)
                                        for name, p in dask_scheduler.task_prefixes.items()})
        # Dask names the task prefix after the function, without its leading underscore
        assert done.get("run_community", {}).get("compute", 0) > 0, \
            f"no community was computed on the cluster: {done}"
        # and the cells and adjacency were built there too (pipelines/cellcache.py)
        assert done.get("build_batch", {}).get("compute", 0) > 0, f"no cells were built on the cluster: {done}"
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
    got = plankit.members(project)
    assert len(single) > 1000 and single.nunique() > 20
    assert got.index.equals(single.index)
    differ = got[got != single]
    assert differ.empty, f"{len(differ)} buildings in other grids, e.g. {differ.head().to_dict()}"


def test_local_cluster_gives_the_single_process_plan(ingested, single, tmp_path):
    project = tmp_path / "local"
    shutil.copytree(ingested, project)
    plankit.add_settings(project, FROM_SCRATCH + '[compute]\nscheduler = "local"\nworkers = 2')
    plankit.draw(project, tmp_path)
    got = plankit.members(project)
    assert got.index.equals(single.index)
    assert (got == single).all()


def test_a_scheduler_that_is_not_there_is_a_clear_error():
    from pipelines.compute import executor_for
    from pipelines.errors import SettingsError

    port = _free_port()
    with pytest.raises(SettingsError, match="Dask"):
        with executor_for({"compute": {"scheduler": f"tcp://127.0.0.1:{port}", "workers": 1}}):
            pass


def test_a_wrong_scheduler_setting_names_the_fix():
    from pipelines.compute import executor_for
    from pipelines.errors import SettingsError

    with pytest.raises(SettingsError, match="tcp://host:8786"):
        with executor_for({"compute": {"scheduler": "http://x", "workers": 1}}):
            pass


def test_tasks_are_not_hashed_before_they_run():
    """The executor submits with pure=False: Dask names each task without hashing its arguments
    (hashing 16,260 community frames held the main process for minutes at 1M buildings)."""
    from pipelines.compute import executor_for

    calls = []
    with executor_for({"compute": {"scheduler": "local", "workers": 1}}) as ex:
        assert ex._kwargs.get("pure") is False
        assert list(ex.map(calls.__class__, [(1,), (2,)])) == [[1], [2]]
