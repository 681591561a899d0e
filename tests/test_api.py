"""The public API (``import gridgov``): its doctests, and each function on the small demo city."""
from __future__ import annotations

import doctest
import inspect

import geopandas as gpd
import pandas as pd
import pytest

import gridgov
from pipelines.config import load_settings
from pipelines.errors import GridgovError


def test_doctests_of_the_public_api_pass():
    """Every example in gridgov's docstrings runs and prints what the docstring says."""
    result = doctest.testmod(gridgov, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                             verbose=False)
    assert result.failed == 0, f"{result.failed} doctest example(s) failed (see captured stdout)"
    assert result.attempted >= 20


def test_every_public_function_is_documented_with_examples():
    for name in gridgov.__all__:
        if name == "__version__":
            assert gridgov.__version__
            continue
        doc = inspect.getdoc(getattr(gridgov, name)) or ""
        for section in ("Parameters", "Examples"):
            assert f"{section}\n--" in doc, f"gridgov.{name} has no {section} section"


def test_tables_and_read_table(small_demo):
    names = gridgov.tables(small_demo)
    for t in ("streets", "communities", "buildings", "grids", "grid_members", "hotspots",
              "street_allocation", "rejects", "runs"):
        assert t in names
    grids = gridgov.read_table(small_demo, "grids")
    assert isinstance(grids, gpd.GeoDataFrame) and grids.crs.to_epsg() == 4326
    assert grids.geometry.notna().all() and len(grids) > 0
    runs = gridgov.read_table(small_demo, "runs")
    assert not isinstance(runs, gpd.GeoDataFrame) and isinstance(runs, pd.DataFrame)
    # a basic grid's households add up to its buildings' households (API read = stage result)
    members = gridgov.read_table(small_demo, "grid_members")
    buildings = gridgov.read_table(small_demo, "buildings")
    per_grid = members.merge(buildings[["building_id", "households"]], on="building_id") \
        .groupby("grid_id").households.sum()
    basic = grids[grids.grid_type == "basic"].set_index("grid_id").households
    assert (per_grid.reindex(basic.index).fillna(0) == basic).all()


def test_read_table_refuses_unknown_and_hostile_names(small_demo):
    with pytest.raises(GridgovError) as err:
        gridgov.read_table(small_demo, "grid")
    msg = str(err.value)
    assert "'grids'" in msg and "没有表" in msg
    hostile = 'grids"; DROP TABLE grids; --'
    with pytest.raises(GridgovError):
        gridgov.read_table(small_demo, hostile)
    assert "grids" in gridgov.tables(small_demo)


def test_missing_database_is_a_bilingual_error(tmp_path):
    with pytest.raises(GridgovError) as err:
        gridgov.read_table(tmp_path, "grids")
    assert "gridgov run" in str(err.value) and "不存在" in str(err.value)


def test_hotspots_of_a_project_are_the_stored_results(small_demo):
    result = gridgov.hotspots(small_demo)
    units = gridgov.read_table(small_demo, "hotspot_units")
    stored = gridgov.read_table(small_demo, "hotspots")
    whole = stored[(stored.category == "all") & (stored.period == "all")]
    assert isinstance(result, gpd.GeoDataFrame)
    assert len(result) == len(units) == len(whole)
    assert set(result.hotspot_class) <= {"hot_99", "hot_95", "hot_90", "none",
                                         "cold_90", "cold_95", "cold_99"}
    month = stored.period[stored.period != "all"].max()
    assert len(gridgov.hotspots(small_demo, "all", period=month)) == len(units)


def test_hotspots_of_a_frame_match_the_stage_on_the_same_counts(small_demo):
    """The API on the stage's own units, incident counts and households gives the stage's classes."""
    settings = load_settings(small_demo)["hotspots"]
    units = gridgov.read_table(small_demo, "hotspot_units").to_crs("EPSG:4546")
    stored = gridgov.read_table(small_demo, "hotspots")
    whole = stored[(stored.category == "all") & (stored.period == "all")].set_index("grid_id")
    incidents = gridgov.read_table(small_demo, "incidents").to_crs("EPSG:4546")
    joined = gpd.sjoin(incidents[["geometry"]], units[["grid_id", "geometry"]], predicate="within")
    units["n"] = units.grid_id.map(joined.grid_id.value_counts()).fillna(0).astype(float)
    grids = gridgov.read_table(small_demo, "grids").set_index("grid_id")
    units["households"] = units.grid_id.map(grids.households).fillna(0).astype(float)
    if settings["verdict"] == "gi_star":
        mine = gridgov.hotspots(units, "n", k=int(settings["k"])).set_index("grid_id")
    else:
        assert settings["expectation"] == "households"
        mine = gridgov.hotspots(units, "n", base="households",
                                dispersion=settings["dispersion"]).set_index("grid_id")
        assert (mine.n == whole.observed.reindex(mine.index)).all()
        assert (mine.expected - whole.expected.reindex(mine.index)).abs().max() < 1e-6
    assert (mine.z_score - whole.z_score.reindex(mine.index)).abs().max() < 1e-6
    assert (mine.hotspot_class == whole.hotspot_class.reindex(mine.index)).all()


def test_allocation_of_a_project_sums_to_the_budget(small_demo):
    table = gridgov.allocation(small_demo)
    budget = load_settings(small_demo)["allocation"]["budget"]
    assert int(table.recommended_staff.sum()) == budget
    again = gridgov.allocation(table[["street_code", "workload", "current_staff", "residents",
                                      "area_km2", "function_type"]], budget, minimum=1)
    assert int(again.recommended_staff.sum()) == budget


def test_draw_grids_for_one_community_of_a_project(small_demo):
    communities = gridgov.read_table(small_demo, "communities")
    buildings = gridgov.read_table(small_demo, "buildings")
    code = communities.community_code.iloc[0]
    grids, members = gridgov.draw_grids(small_demo, community_code=code,
                                        households_min=300, households_max=500)
    assert set(grids.community_code) == {code}
    assert grids.crs is not None
    mine = buildings[buildings.community_code == code]
    assert int(grids.households.sum()) == int(mine.households.sum())
    assert set(members.grid_id) == set(grids.grid_id)
    again, _ = gridgov.draw_grids(small_demo, community_code=code,
                                  households_min=300, households_max=500)
    pd.testing.assert_frame_equal(grids.drop(columns="geometry").reset_index(drop=True),
                                  again.drop(columns="geometry").reset_index(drop=True))
