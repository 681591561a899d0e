"""pipelines.results, the one reader of result tables: what each reader returns on the small
demo city, identifiers from the catalogue quoted, and no SQL left in the app's pages."""
from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest

from pipelines import results
from pipelines.db import connect, read_table, write_gdf
from tests.app.conftest import REPO


@pytest.fixture(scope="module")
def con(small_demo):
    with results.open_project(small_demo) as c:
        yield c


def test_latest_run_and_runs(con):
    run = results.latest_run(con)
    assert {"run_id", "started_at", "finished_at", "status", "settings", "summary"} <= set(run)
    assert run["status"] == "success"
    assert isinstance(run["settings"], dict) and isinstance(run["summary"], dict)
    assert set(run["summary"]["stages"]) >= {"grids", "hotspots", "staffing"}
    table = results.runs(con)
    assert list(table.columns) == results.RUN_COLUMNS
    assert table["run_id"].iloc[0] == run["run_id"]
    assert results.stage_summary(con, "hotspots") == run["summary"]["stages"]["hotspots"]
    assert results.stage_summary(con, "no_such_stage") == {}


def test_counts_and_rejects(con):
    counts = results.table_counts(con)
    for table in ("streets", "communities", "buildings", "incidents", "grids", "hotspots"):
        assert counts[table] == con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    hh = con.execute("SELECT sum(households) FROM buildings").fetchone()[0]
    assert counts["households"] == int(hh)
    rej = results.rejects_summary(con)
    assert list(rej.columns) == ["layer", "reason", "n"]


def test_map_layers_bounds_and_metric_crs(con):
    layers = results.map_layers(con)
    want = {
        "streets": ["street_code", "street_name", "function_type"],
        "communities": ["community_code", "community_name", "street_code", "area_km2",
                        "buildings", "households", "residents"],
        "buildings": ["building_id", "households", "residents", "street_code"],
        "special_units": ["unit_id", "unit_name", "unit_type", "households", "headcount",
                          "street_code"],
        "barriers": ["kind", "name"],
    }
    assert set(layers) == set(want)
    for name, cols in want.items():
        frame = layers[name]
        assert isinstance(frame, gpd.GeoDataFrame) and frame.crs == "EPSG:4326"
        assert list(frame.columns) == cols + ["geometry"], name
        assert len(frame) == con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
    assert (layers["buildings"].geom_type == "Point").all()
    assert layers["communities"]["buildings"].sum() == len(layers["buildings"])
    box = results.bounds(con)
    assert box == pytest.approx(tuple(layers["streets"].total_bounds))
    # the hotspot stage chose its metric CRS from the same data
    assert results.metric_crs(con) == results.stage_summary(con, "hotspots")["metric_crs"]
    out = results.outlines(con)
    assert list(out["streets"].columns) == ["street_code", "geometry"]
    assert list(out["communities"].columns) == ["community_code", "geometry"]


def test_plans_and_grids(con):
    plans = results.plans(con)
    assert {"plan_id", "parent_plan_id", "created_at", "is_current"} <= set(plans.columns)
    current = plans.loc[plans["is_current"].astype(bool), "plan_id"].iloc[0]
    grids = results.plan_grids(con)
    same = results.plan_grids(con, current)
    assert len(grids) == con.execute("SELECT count(*) FROM grids").fetchone()[0] > 0
    assert list(grids.columns) == list(same.columns)
    assert sorted(grids["grid_id"]) == sorted(same["grid_id"])
    assert results.plan_grids(con, "no-such-plan").empty
    gc = results.grid_community(con)
    assert set(gc) == set(grids["grid_id"])


def test_hotspot_readers(con):
    data = results.hotspot_tables(con)
    assert all(data["has"][t] for t in ("hotspots", "incident_counts", "grid_risk"))
    # 'any' (hot in any category) first when the stage wrote it — the default view — then 'all'
    cats = data["categories"]
    assert cats[:2] == ["any", "all"] if "any" in cats else cats[0] == "all"
    assert data["periods"] == sorted(data["periods"]) and "all" not in data["periods"]
    assert list(data["hotspots"].columns) == [
        "grid_id", "category", "period", "z_score", "p_fdr", "hotspot_class", "trend_class",
        "method", "observed", "expected", "ratio", "hot_categories", "top_category"]
    assert {"grid_id", "category", "period", "incidents"} <= set(data["counts"].columns)
    assert data["community_names"] and data["street_names"] and data["unit_community"]
    net = results.hotspot_fishnet(con, "all", significant_only=False)
    if data["has"]["hotspot_fishnet"]:
        n_all, n_sig = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE hotspot_class <> 'none') "
            "FROM hotspot_fishnet WHERE category = 'all'").fetchone()
        assert len(net) == n_all and net.crs == "EPSG:4326"
        assert len(results.hotspot_fishnet(con, "all")) == n_sig
    else:
        assert net.empty
    one = results.hotspots(con, "all", "all")
    assert len(one) == len(data["hotspots"].query("category == 'all' and period == 'all'"))
    assert set(one["category"]) == {"all"}
    risk, weights = results.expand_components(data["risk"])
    assert "incidents__points" in risk.columns and "incidents__raw" in risk.columns
    assert weights and all(w >= 0 for w in weights.values())
    units = results.hotspot_units(con)
    assert list(units.columns) == ["grid_id", "geometry"] and len(units) > 0
    dens = results.hotspot_density(con)
    assert list(dens.columns) == ["density_per_km2", "cell_m", "geometry"]
    assert (dens["density_per_km2"] > 0).all()


def test_staffing_readers(con):
    data = results.staffing_tables(con)
    for t in results.STAFFING_TABLES:
        assert isinstance(data[t], pd.DataFrame) and not data[t].empty, t
    assert {"street_code", "recommended_staff", "gap"} <= set(data["street_allocation"].columns)
    base = results.base_allocation(con, data["settings"])
    assert int(base.recommended.sum()) == int(data["street_allocation"]["recommended_staff"].sum())


def test_identifiers_from_the_catalogue_are_quoted(tmp_path):
    """A table whose name is an injection attempt is counted, not executed; a missing optional
    column reads as NULL."""
    db = tmp_path / "gridgov.duckdb"
    con = connect(db)
    evil = 'x"; DROP TABLE streets; --'
    write_gdf(con, "streets", pd.DataFrame({"street_code": ["1"]}))
    con.execute(f"CREATE TABLE {results.quote_ident(evil)} (a INTEGER)")
    con.execute(f"INSERT INTO {results.quote_ident(evil)} VALUES (1), (2)")
    con.close()
    with results.open_project(tmp_path) as ro:
        counts = results.table_counts(ro)
        assert counts[evil] == 2 and counts["streets"] == 1
        sql = results.select_columns(ro, "streets", ["street_code", "street_name"],
                                     geometry=None)
        frame = read_table(ro, sql)
        assert list(frame.columns) == ["street_code", "street_name"]
        assert frame["street_name"].isna().all()
        assert results.names(ro, "streets") == {"1": None}
    assert results.quote_ident('a"b') == '"a""b"'


SQL = re.compile(r"\b(select|insert|create|update|delete)\s", re.IGNORECASE)
QUERY_CALLS = re.compile(r"\.(execute|sql)\(|\bread_(gdf|table)\(")


def test_no_sql_in_app_pages():
    """The pages only lay out: every statement lives in pipelines/results.py (#8.2)."""
    files = sorted((REPO / "app_pages").glob("*.py")) + [REPO / "app.py"]
    found = []
    for path in files:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if SQL.search(line) or QUERY_CALLS.search(line):
                found.append(f"{Path(path).relative_to(REPO)}:{n}: {line.strip()}")
    assert not found, "\n".join(found)


#: Modules of app_pages that are not pages (shared helpers, strings, the entry script).
NOT_PAGES = ("__init__.py", "main.py", "assets.py", "i18n.py")
CITY = re.compile(r"EPSG:4546|\b40\.8\d*\b|\b111\.[5-9]\d*\b")


def test_pages_only_lay_out():
    """#8.2: no page much over 300 lines, and no city built in (centre and metric CRS come
    from the data); words of the regulation in the string tables are not coordinates."""
    pages = [p for p in sorted((REPO / "app_pages").glob("*.py"))
             if not p.name.startswith(("_", "strings_")) and p.name not in NOT_PAGES]
    assert {p.name for p in pages} >= {"overview.py", "map.py", "planner.py", "hotspots.py",
                                       "hotspot_risk.py", "case_timeliness.py", "leaders.py"}
    sizes = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in pages}
    assert max(sizes.values()) <= 300, sizes
    code = [p for p in sorted((REPO / "app_pages").glob("*.py"))
            if not p.name.startswith("strings_")] + [REPO / "app.py"]
    found = [f"{p.name}:{n}: {line.strip()}" for p in code
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if CITY.search(line)]
    assert not found, "\n".join(found)


def test_text_cells_and_markdown_escape():
    """#9.2: a CSV cell that a spreadsheet would run as a formula opens as text; a name shown
    through Markdown shows as typed."""
    from app_pages._shared import md

    frame = pd.DataFrame({"name": ['=HYPERLINK("http://x","y")', "+1", "-2", "@a", "\tb",
                                   "普通街道"],
                          "n": [-1, 2, 3, 4, 5, 6]})
    out = results.text_cells(frame)
    assert list(out["name"]) == ['\'=HYPERLINK("http://x","y")', "'+1", "'-2", "'@a", "'\tb",
                                 "普通街道"]
    assert list(out["n"]) == [-1, 2, 3, 4, 5, 6]  # numbers stay numbers
    assert list(frame["name"])[0].startswith("=")  # the input is not changed
    assert md("![m](http://e/m.png) **b** :red[x]") == (
        "\\!\\[m\\]\\(http\\://e/m\\.png\\) \\*\\*b\\*\\* \\:red\\[x\\]")
