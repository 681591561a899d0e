"""gridgov — grid-governance analytics for street offices (网格化治理), in one import.

The few functions an analyst needs, as thin wrappers over :mod:`pipelines` (the DuckDB
pipeline) and :mod:`geo` (the algorithms):

========================  =================================================================
:func:`demo`              write the Hohhot demo city's project folder
:func:`run`               ingest a project folder and run every stage into its database
:func:`tables`            the tables of a project's database
:func:`read_table`        one table as a GeoDataFrame (or a DataFrame when it has no geometry)
:func:`draw_grids`        draw the basic (and dedicated) grids of one or more communities
:func:`hotspots`          hot and cold spots: excess over expectation, or Getis–Ord Gi*
:func:`allocation`        a street headcount allocation under a budget (Art. 37)
========================  =================================================================

A project folder holds the input layers and, after :func:`run`, ``gridgov.duckdb``.

Examples
--------
>>> import gridgov
>>> gridgov.__version__ != ""
True
"""
from __future__ import annotations

import difflib
import os
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported lazily: `import gridgov` stays fast
    import geopandas as gpd
    import pandas as pd

try:
    __version__ = _version("gridgov")
except PackageNotFoundError:  # a source checkout that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__", "allocation", "demo", "draw_grids", "hotspots", "read_table", "run",
           "tables"]

PathLike = str | os.PathLike


def demo(project_dir: PathLike, *, small: bool = False, seed: int = 2023,
         overwrite: bool = False, progress=None) -> dict:
    """Write the Hohhot demo city's project folder (``gridgov demo DIR``).

    District boundaries, street and community names and codes are real; geometry, buildings
    and records are synthetic. The same ``seed`` writes byte-identical files.

    Parameters
    ----------
    project_dir
        Folder to write (created; an existing folder with files needs ``overwrite=True``).
    small
        One street of about 2,000 buildings (seconds) instead of the whole city (43 streets).
    seed
        Random seed.
    overwrite
        Replace the files of an existing project folder.
    progress
        Optional callable ``progress(message)``.

    Returns
    -------
    dict
        What was written: counts per layer (``streets``, ``buildings``, ``incidents`` …).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> written = demo(pathlib.Path(tempfile.mkdtemp()) / "city", small=True)
    >>> written["streets"], written["communities"]
    (1, 10)
    """
    from gridgov.demo_city import build_demo

    return build_demo(project_dir, size="small" if small else "full", seed=seed,
                      overwrite=overwrite, progress=progress)


def run(project_dir: PathLike, *, stages: list[str] | None = None, progress=None) -> dict:
    """Ingest a project folder and run the analysis stages into ``project_dir/gridgov.duckdb``.

    The run is atomic: the new database replaces the old one only when every step succeeded.
    Bad rows never stop it; each lands in the ``rejects`` table with a reason.

    Parameters
    ----------
    project_dir
        The project folder (input layers and an optional ``gridgov.toml``).
    stages
        Stage names to run after ingest (``"grids"``, ``"hotspots"``, ``"staffing"``); ``None``
        runs every stage, ``[]`` only ingests.
    progress
        Optional callable ``progress(message)``.

    Returns
    -------
    dict
        The run summary: ``run_id``, ``seconds``, ``ingest`` (per layer ``read``, ``kept``,
        ``rejected``) and ``stages`` (one summary per stage).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> project = pathlib.Path(tempfile.mkdtemp()) / "city"
    >>> _ = demo(project, small=True)
    >>> summary = run(project, stages=[])          # ingest only: fast
    >>> layer = summary["ingest"]["layers"]["communities"]
    >>> layer["read"], layer["kept"], layer["rejected"]
    (10, 10, 0)
    >>> "communities" in tables(project)
    True
    """
    from pipelines.run import run_project

    return run_project(project_dir, stages=stages, progress=progress)


def _database(project_dir: PathLike) -> Path:
    from pipelines.errors import GridgovError
    from pipelines.run import db_path

    p = Path(project_dir)
    db = p if p.suffix == ".duckdb" else db_path(p)
    if not db.exists():
        raise GridgovError(f"{db} 不存在；请先运行 gridgov run {project_dir}",
                           f"{db} does not exist; run `gridgov run {project_dir}` first")
    return db


def tables(project_dir: PathLike) -> list[str]:
    """Names of the tables (and views) in a project's database, sorted.

    Parameters
    ----------
    project_dir
        A project folder after :func:`run` (or the path of a ``.duckdb`` file).

    Examples
    --------
    See :func:`run`.
    """
    from pipelines import results

    with results.open_project(_database(project_dir)) as con:
        return results.table_names(con)


def read_table(project_dir: PathLike, name: str) -> gpd.GeoDataFrame | pd.DataFrame:
    """Read one table of a project's database.

    Parameters
    ----------
    project_dir
        A project folder after :func:`run` (or the path of a ``.duckdb`` file).
    name
        A table name from :func:`tables`, e.g. ``"communities"``, ``"grids"``, ``"hotspots"``,
        ``"street_allocation"``, ``"rejects"``. A misspelt name is an error naming the closest one.

    Returns
    -------
    geopandas.GeoDataFrame or pandas.DataFrame
        A GeoDataFrame in EPSG:4326 when the table has a ``geometry`` column, else a DataFrame.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> project = pathlib.Path(tempfile.mkdtemp()) / "city"
    >>> _ = demo(project, small=True)
    >>> _ = run(project, stages=[])
    >>> streets = read_table(project, "streets")
    >>> type(streets).__name__, streets.crs.to_string(), len(streets)
    ('GeoDataFrame', 'EPSG:4326', 1)
    >>> rejects = read_table(project, "rejects")
    >>> type(rejects).__name__
    'DataFrame'
    """
    from pipelines import results
    from pipelines.db import read_gdf
    from pipelines.errors import GridgovError

    with results.open_project(_database(project_dir)) as con:
        names = results.table_names(con)
        if name not in names:
            near = difflib.get_close_matches(name, names, n=1)
            hint_zh = f"是否要读取 {near[0]}？" if near else ""
            hint_en = f" Did you mean {near[0]!r}?" if near else ""
            raise GridgovError(f"数据库中没有表 {name}。{hint_zh}可用：{', '.join(names)}",
                               f"No table {name!r} in the database.{hint_en} Tables: {', '.join(names)}")
        sql = f"SELECT * FROM {results.quote_ident(name)}"  # an existing table's name, quoted
        if "geometry" in results.columns(con, name):
            return read_gdf(con, sql)
        return con.execute(sql).df()


def _project_inputs(project_dir: PathLike) -> dict:
    """Buildings, communities, barriers and special units of a project, in its metric CRS."""
    from pipelines import results
    from pipelines.config import load_settings
    from pipelines.stage_grids import load_engine_inputs

    project = Path(project_dir)
    db = _database(project)
    settings = load_settings(project if project.is_dir() else project.parent)
    with results.open_project(db) as con:
        return load_engine_inputs(con, settings)


def draw_grids(
    buildings: gpd.GeoDataFrame | PathLike,
    communities: gpd.GeoDataFrame | None = None,
    community_code: str | list[str] | None = None,
    *,
    barriers: gpd.GeoDataFrame | None = None,
    special_units: gpd.GeoDataFrame | None = None,
    households_min: int | None = None,
    households_max: int | None = None,
    seed: int = 0,
    metric_crs: str | None = None,
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Draw the grids of one community (or several): cells, dedicated grids, basic grids.

    The same inputs and ``seed`` give the same grids on any machine, under any load.

    Parameters
    ----------
    buildings
        Residential buildings (points or polygons) with ``building_id``, ``households`` and
        ``community_code`` — or a project folder after :func:`run`, whose buildings,
        communities, barriers and special units are then used.
    communities
        Community polygons with ``community_code`` (optional ``kind``: urban/rural,
        ``street_code``). Not needed with a project folder.
    community_code
        The community (or list of communities) to draw; ``None``: every community.
    barriers, special_units
        Optional lines that grids do not cross, and units (schools, hospitals …) that may get a
        dedicated grid.
    households_min, households_max
        The norm of a basic grid (default: the engine's, 300–500 urban, 150–600 rural).
    seed
        Random seed of the search.
    metric_crs
        CRS in metres for the geometry work; default: the inputs' CRS if it is projected, else
        the CGCS2000 3-degree zone of their longitude.

    Returns
    -------
    grids : geopandas.GeoDataFrame
        One row per grid (``grid_id``, ``grid_type``, ``community_code``, ``households``,
        ``workload``, ``area_km2``, ``compactness``, ``status`` …) in the inputs' CRS.
    members : pandas.DataFrame
        ``cell_id``, ``grid_id``, ``community_code``: the grid of every cell.

    Examples
    --------
    >>> from geo.grids import synthetic_city
    >>> city = synthetic_city(400, seed=1, per_community=400, barriers=False, special_units=False)
    >>> code = city["communities"].community_code.iloc[0]
    >>> grids, members = draw_grids(city["buildings"], city["communities"], code,
    ...                             households_min=1000, households_max=2000)
    >>> grids.community_code.unique().tolist() == [code]
    True
    >>> mine = city["buildings"][city["buildings"].community_code == code]
    >>> int(grids.households.sum()) == int(mine.households.sum())   # every household, once
    True
    >>> len(grids), bool(grids.households.between(1000, 2000).all())
    (5, True)
    """
    import geopandas as gpd

    from geo import chinacrs
    from geo.grids import dedicated_grids
    from geo.partition import partition
    from geo.tessellation import build_cells, cell_adjacency

    if isinstance(buildings, str | os.PathLike):
        inp = _project_inputs(buildings)
        buildings, communities = inp["buildings"], inp["communities"]
        barriers = inp["barriers"] if barriers is None else barriers
        special_units = inp["special_units"] if special_units is None else special_units
        metric_crs = metric_crs or inp["crs"]
    if communities is None:
        raise ValueError("communities are needed (or pass a project folder as the first argument)")
    out_crs = buildings.crs
    if metric_crs is None:
        metric_crs = out_crs if out_crs is not None and out_crs.is_projected else \
            chinacrs.metric_crs_for(communities)
    codes = None if community_code is None else (
        [community_code] if isinstance(community_code, str) else list(community_code))

    def prep(frame, clip: bool):
        if frame is None or len(frame) == 0:
            return None
        frame = frame.to_crs(metric_crs)
        if clip and codes is not None and "community_code" in frame.columns:
            frame = frame[frame["community_code"].isin(codes)]
        return frame

    comm = prep(communities, True)
    bld = prep(buildings, True)
    if comm is None or len(comm) == 0:
        raise ValueError(f"no community {codes} in the communities given")
    bar = prep(barriers, False)
    units = prep(special_units, False)
    cells = build_cells(bld, comm, bar, special_units=units)
    adj = cell_adjacency(cells)
    ded = dedicated_grids(cells, units, adjacency=adj) if units is not None else None
    norms = None
    if households_min is not None or households_max is not None:
        rule = {k: v for k, v in (("households_min", households_min),
                                  ("households_max", households_max)) if v is not None}
        norms = {"urban": dict(rule), "rural": dict(rule)}
    grids, members = partition(cells, adj, comm, norms=norms, seed=seed, dedicated=ded, n_jobs=1)
    if out_crs is not None and isinstance(grids, gpd.GeoDataFrame):
        grids = grids.to_crs(out_crs)
    return grids, members


def hotspots(
    units: gpd.GeoDataFrame | PathLike,
    values: str | Any = "all",
    *,
    base: str | Any | None = None,
    dispersion: str = "quasi_poisson",
    k: int = 8,
    period: str = "all",
) -> gpd.GeoDataFrame:
    """Hot and cold spots: units with more (or fewer) incidents than expected, or than nearby.

    Two tests, as in the ``hotspots`` stage (``[hotspots] verdict``):

    * with ``base`` (households, residents or area per unit): the **excess test** — is a unit's
      count above what its share of the base leads one to expect, beyond over-dispersed chance
      (quasi-Poisson by default)? This is the stage's default verdict;
    * without ``base``: **Getis–Ord Gi*** — does a unit and its ``k`` nearest neighbours hold
      more than the city's average (a spatial cluster)?

    Both correct for many tests with Benjamini–Hochberg (false discovery rate).

    Parameters
    ----------
    units
        Polygons or points, one row per analysis unit (grid, cell, community); neighbours are
        found between centroids, in metres — or a project folder after :func:`run`, whose
        stored results (tables ``hotspots`` and ``hotspot_units``) are then returned.
    values
        With a frame: the column (or an array) of incident counts per unit. With a project
        folder: the incident category (``"all"`` for every incident).
    base
        Column (or array) of the exposure incidents should follow, e.g. ``"households"``.
    dispersion
        Excess test only: ``"quasi_poisson"``, ``"negative_binomial"`` or ``"poisson"``.
    k
        Gi* only: neighbours of the binary k-nearest-neighbour weights (a unit counts itself).
    period
        With a project folder: ``"all"`` (the whole period, with the trend class) or a month
        ``"YYYY-MM"``.

    Returns
    -------
    geopandas.GeoDataFrame
        The units with ``z_score``, ``p_value``, ``p_fdr`` (Benjamini–Hochberg) and
        ``hotspot_class``: ``hot_99``/``hot_95``/``hot_90``, ``cold_*`` or ``none``; the
        excess test adds ``expected`` and ``ratio`` (observed / expected).

    Examples
    --------
    A 10 × 10 lattice of 100 m squares, 30 households each, 2 incidents in most squares and 20 in
    a 3 × 3 corner:

    >>> import geopandas as gpd, numpy as np, shapely
    >>> squares = [shapely.box(x * 100, y * 100, x * 100 + 100, y * 100 + 100)
    ...            for y in range(10) for x in range(10)]
    >>> counts = np.array([20 if x < 3 and y < 3 else 2 for y in range(10) for x in range(10)])
    >>> grid = gpd.GeoDataFrame({"incidents": counts, "households": 30},
    ...                         geometry=squares, crs="EPSG:4546")
    >>> excess = hotspots(grid, "incidents", base="households")
    >>> excess.loc[0, "hotspot_class"], float(excess.loc[0, "expected"])
    ('hot_99', 2.0)
    >>> int(excess.hotspot_class.str.startswith("hot").sum())
    9

    Gi* also flags the squares next to the cluster (their neighbourhood is hot):

    >>> gi = hotspots(grid, "incidents")
    >>> gi.loc[0, "hotspot_class"], gi.loc[99, "hotspot_class"]
    ('hot_99', 'none')
    >>> int(gi.hotspot_class.str.startswith("hot").sum())
    13
    """
    import numpy as np

    from geo import hotspots as hs

    if isinstance(units, str | os.PathLike):
        shapes = read_table(units, "hotspot_units")
        rows = read_table(units, "hotspots")
        rows = rows[(rows["category"] == values) & (rows["period"] == period)]
        return shapes[["grid_id", "geometry"]].merge(rows, on="grid_id", how="inner")
    frame = units.copy()
    y = np.asarray(frame[values] if isinstance(values, str) else values, dtype=float)
    if base is not None:
        b = np.asarray(frame[base] if isinstance(base, str) else base, dtype=float)
        # units without any base (a school's dedicated grid) are compared with each other
        r = hs.excess_test(y, b, area=np.ones(len(frame)), model=dispersion)
        frame["expected"], frame["ratio"] = r.expected, r.ratio
        frame["z_score"], frame["p_value"], frame["p_fdr"] = r.z, r.p, r.q
        frame["hotspot_class"] = np.asarray(r.classes).astype(str)
        return frame
    shapes = frame.geometry
    if shapes.crs is not None and shapes.crs.is_geographic:  # distances in metres
        from geo.chinacrs import metric_crs_for

        shapes = shapes.to_crs(metric_crs_for(frame))
    pts = shapes.centroid  # as the hotspots stage does
    xy = np.column_stack([pts.x, pts.y])
    w = hs.knn_weights(xy, k=min(k, max(1, len(frame) - 1)))
    z, p = hs.gi_star(y, w)
    q = hs.fdr_bh(p)
    frame["z_score"], frame["p_value"], frame["p_fdr"] = z, p, q
    frame["hotspot_class"] = hs.hotspot_classes(z, q).astype(str)
    return frame


def allocation(
    streets: pd.DataFrame | PathLike,
    budget: int | None = None,
    *,
    minimum: int = 1,
    method: str = "webster",
    id_col: str = "street_code",
    score: dict | None = None,
) -> pd.DataFrame:
    """Recommended whole-person headcount per street under a district budget (Art. 37).

    A divisor method (Webster by default) apportions the budget by each street's score
    (workload, residents, area, function type): the result is integer, sums exactly to the
    budget, gives every street at least ``minimum`` and never lowers a street when the budget
    rises. ``gap = recommended − current``: positive means short of staff.

    Parameters
    ----------
    streets
        One row per street with ``street_code`` and ``workload`` (optional ``function_type``,
        ``area_km2``, ``residents``, ``current_staff``) — or a project folder after
        :func:`run`, whose stored ``street_allocation`` table is then returned.
    budget
        District headcount; ``None``: today's total ``current_staff``.
    minimum
        Minimum per street.
    method
        ``"webster"`` or ``"huntington_hill"``.
    id_col
        Column naming the unit.
    score
        Overrides of the score's weights (``{"weights": {"workload": …, "residents": …,
        "area": …}}``), see ``docs/staffing.md``.

    Returns
    -------
    pandas.DataFrame
        One row per street: the inputs, score parts, ``recommended_staff``, ``gap``,
        ``status``, ``gap_rank`` and equity columns.

    Examples
    --------
    >>> import pandas as pd
    >>> streets = pd.DataFrame({"street_code": ["a", "b", "c"],
    ...                         "workload": [600.0, 300.0, 100.0],
    ...                         "current_staff": [4, 4, 4]})
    >>> table = allocation(streets, 12, score={"weights": {"residents": 0, "area": 0}})
    >>> table[["street_code", "recommended_staff", "gap"]].values.tolist()
    [['a', 7, 3], ['b', 4, 0], ['c', 1, -3]]
    """
    if isinstance(streets, str | os.PathLike):
        return read_table(streets, "street_allocation")
    from geo.staffing import allocate

    return allocate(streets, budget, id_col=id_col, minimum=minimum, method=method,
                    score=score).table
