"""Every notebook opens a project given in its parameter cell, runs top to bottom with inline
figures, and finds the numbers that the database holds."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from pipelines.db import connect

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))

#: Per notebook: an expression evaluated in the kernel after the last cell (a dict of the
#: notebook's own numbers), checked against the database by CHECKS below.
PROBES = {
    "01_quickstart": '{"households": households, "buildings": len(buildings), '
                     '"communities": len(communities), "run_id": last_run["run_id"]}',
    "02_grids": '{"saved": saved.plan_id, "parent": saved.parent_plan_id, "code": code, '
                '"basic_grids": int((grids.grid_type == "basic").sum())}',
    "03_staffing": '{"recommended": int(streets.recommended_staff.sum()), "budget": int(budget), '
                   '"more": int(more.allocation.table.recommended_staff.sum()), '
                   '"streets": len(streets)}',
    "04_hotspots": '{"hot_all": int(table.loc["all", ["hot_99", "hot_95", "hot_90"]].sum()), '
                   '"units": len(units), "planted": len(planted), "found": int(found.sum())}',
}


def _sql(project: Path, query: str, params: list | None = None):
    con = connect(project / "gridgov.duckdb", read_only=True)
    try:
        return con.execute(query, params or []).fetchall()
    finally:
        con.close()


def _check_01(project: Path, got: dict) -> None:
    (hh, n), = _sql(project, "SELECT sum(households)::BIGINT, count(*) FROM buildings")
    assert got["households"] == hh and got["buildings"] == n
    assert got["communities"] == _sql(project, "SELECT count(*) FROM communities")[0][0]
    assert got["run_id"] == _sql(project, "SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1")[0][0]


def _check_02(project: Path, got: dict) -> None:
    rows = dict(_sql(project, "SELECT plan_id, parent_plan_id FROM plans"))
    assert got["saved"] in rows and rows[got["saved"]] == got["parent"]
    assert _sql(project, "SELECT DISTINCT plan_id FROM grids") == [(got["saved"],)]
    basic = _sql(project, "SELECT count(*) FROM plan_grids WHERE plan_id = ? AND grid_type = 'basic'",
                 [got["parent"]])[0][0]
    assert got["basic_grids"] == basic


def _check_03(project: Path, got: dict) -> None:
    (rec, n), = _sql(project, "SELECT sum(recommended_staff)::BIGINT, count(*) FROM street_allocation")
    assert got["recommended"] == rec == got["budget"] and got["streets"] == n
    assert got["more"] == got["budget"] + 10


def _check_04(project: Path, got: dict) -> None:
    hot = _sql(project, "SELECT count(*) FROM hotspots WHERE category = 'all' AND period = 'all' "
                        "AND hotspot_class LIKE 'hot%'")[0][0]
    assert got["hot_all"] == hot
    assert got["units"] == _sql(project, "SELECT count(*) FROM hotspot_units")[0][0]
    planted = (project / "truth" / "planted_hotspots.csv").read_text(encoding="utf-8").splitlines()
    assert got["planted"] == len(planted) - 1 and 0 <= got["found"] <= got["planted"]


CHECKS = {"01_quickstart": _check_01, "02_grids": _check_02, "03_staffing": _check_03,
          "04_hotspots": _check_04}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_committed_clean_with_one_parameter_cell(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), \
        "commit notebooks without outputs"
    params = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1 and "PROJECT = " in params[0].source and "GRIDGOV_PROJECT" in params[0].source
    text = "\n".join(c.source for c in code)
    assert "%matplotlib inline" in text and "Agg" not in text
    assert "import gridgov" in text
    assert "build_demo" not in text, "notebooks open the analyst's project, they do not build their own"
    assert path.stem in PROBES


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_on_a_project_and_finds_its_numbers(path, small_demo, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    project = tmp_path / "project"
    shutil.copytree(small_demo, project)  # a notebook may save a plan: work on a copy
    monkeypatch.setenv("GRIDGOV_PROJECT", str(project))
    monkeypatch.setenv("GRIDGOV_SAVE_PLAN", "1")
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(f"import json as _j; print(_j.dumps({PROBES[path.stem]}))"))
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.output_type == "error"]
    assert not errors, errors[0].get("evalue") if errors else ""
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if "image/png" in o.get("data", {})]
    assert images, "no figure was shown inline"
    last = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    CHECKS[path.stem](project, json.loads(last.strip().splitlines()[-1]))
