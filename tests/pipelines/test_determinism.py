"""Same inputs, settings and seed give the same plan: on any load, with any ``n_jobs``.

The grid search stops on a work budget (cell visits), never on the clock, and every community's
random stream comes from the global seed and the community code, so

* the small demo city drawn once with a CPU hog on both cores and ``n_jobs = 1``, and once on
  a quiet machine with ``n_jobs = 2`` (each in its own interpreter, with a different
  ``PYTHONHASHSEED``) gives identical ``grid_members``;
* a search that runs out of budget stops at the same point every time;
* the wall-clock safety net, when it fires, says so in the log.
"""
from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from geo import grids as G
from geo import partition as PT
from tests.pipelines import plankit


def _settings(project: Path, n_jobs: int) -> None:
    """The demo's gridgov.toml with ``[grids] n_jobs`` set."""
    assert "[grids]" not in (project / "gridgov.toml").read_text(encoding="utf-8")
    # from scratch (not from today's grids), so every community goes through the partition
    plankit.add_settings(project, f"[grids]\nstart_from_current_grids = false\nn_jobs = {n_jobs}")


def _hog(n: int = 2) -> list[subprocess.Popen]:
    """``n`` busy-looping processes (one per core of the CI machine)."""
    return [subprocess.Popen([sys.executable, "-c", "while True:\n    pass\n"])
            for _ in range(n)]


def test_demo_plan_is_the_same_under_load_and_with_any_n_jobs(tmp_path):
    from gridgov.demo_city import build_demo
    from pipelines.run import run_project

    base = tmp_path / "demo"
    build_demo(base, size="small")
    run_project(base, stages=[])  # ingest once; each draw runs the grids stage on a copy
    loaded, quiet = tmp_path / "loaded", tmp_path / "quiet"
    shutil.copytree(base, loaded)
    shutil.copytree(base, quiet)
    _settings(loaded, n_jobs=1)
    _settings(quiet, n_jobs=2)

    hogs = _hog(2)
    try:
        plankit.draw(loaded, tmp_path, PYTHONHASHSEED="1")
    finally:
        for p in hogs:
            p.kill()
        for p in hogs:
            p.wait()
    plankit.draw(quiet, tmp_path, PYTHONHASHSEED="2")

    a, b = plankit.members(loaded), plankit.members(quiet)
    assert len(a) > 1000 and a.nunique() > 20  # a real plan: many buildings, many grids
    assert a.index.equals(b.index)
    differ = a[a != b]
    assert differ.empty, f"{len(differ)} buildings in other grids, e.g. {differ.head().to_dict()}"


@pytest.fixture(scope="module")
def city():
    c = G.synthetic_city(1500, seed=4, per_community=300)
    cells = G.build_cells(c["buildings"], c["communities"], c["barriers"],
                          special_units=c["special_units"])
    adj = G.cell_adjacency(cells)
    ded = G.dedicated_grids(cells, c["special_units"], adjacency=adj)
    return c, cells, adj, ded


def test_n_jobs_does_not_change_the_plan(city):
    c, cells, adj, ded = city
    _, m1 = G.partition(cells, adj, c["communities"], dedicated=ded, seed=3, n_jobs=1)
    _, m2 = G.partition(cells, adj, c["communities"], dedicated=ded, seed=3, n_jobs=2)
    pd.testing.assert_frame_equal(m1, m2)


def test_a_spent_budget_stops_at_the_same_point_even_under_load(city):
    _, cells, adj, _ = city
    # a community in one piece (then a longer search can only improve on a shorter one)
    for code in sorted(adj):
        sub = cells[cells["community_code"] == code]
        quiet = PT.partition_community(sub, adj[code], seed=5, budget=500)
        if quiet.info["pieces"] == 1 and not quiet.info["giants"] and quiet.labels.nunique() > 1:
            break
    else:
        pytest.fail("the synthetic city should have a community in one piece")
    assert quiet.info["budget_spent"] and 500 <= quiet.info["work"] < 500 + 2 * len(sub)
    hogs = _hog(2)
    try:
        busy = PT.partition_community(sub, adj[code], seed=5, budget=500)
    finally:
        for p in hogs:
            p.kill()
        for p in hogs:
            p.wait()
    assert busy.info["work"] == quiet.info["work"]
    assert busy.labels.equals(quiet.labels)
    # more budget: at least as good a plan (the first 500 visits are the same search)
    full = PT.partition_community(sub, adj[code], seed=5, budget=None)
    assert not full.info["budget_spent"] and full.info["work"] > quiet.info["work"]
    assert full.objective <= quiet.objective + 1e-9


def test_the_wall_clock_safety_net_is_logged_when_it_fires(city, caplog):
    _, cells, adj, _ = city
    for code in sorted(adj):  # a community with several grids, so that there is a search
        sub = cells[cells["community_code"] == code]
        if PT.partition_community(sub, adj[code], seed=5, budget=100).info["work"] > 0:
            break
    with caplog.at_level(logging.WARNING, logger="geo.partition"):
        plan = PT.partition_community(sub, adj[code], seed=5, budget=None, max_seconds=1e-9)
    assert plan.info["safety_net"]
    assert any("safety net" in r.getMessage() and code in r.getMessage()
               for r in caplog.records)
    with caplog.at_level(logging.WARNING, logger="geo.partition"):
        caplog.clear()
        plan = PT.partition_community(sub, adj[code], seed=5)
    assert not plan.info["safety_net"] and not caplog.records
