"""Bounded memory (issue #13.2): the hotspot and cases stages read aggregates, never one row per
incident, and their tables equal the pandas reference computed from the raw rows.

A generated city of 16 grids, 3 categories and 12 months holds 120,000 incidents — about 200 per
grid × category × month. The stages run on a connection wrapped by a spy that counts the rows of
every result fetched into Python (``execute(...).df()``, ``fetchall``, ``fetchnumpy``, relations
of ``con.sql`` …); no fetched result may come near the number of incidents. The same city's raw
rows are then read the old way (one row per incident) and fed to the pure functions of ``geo/``:
``case_rates``, ``case_outcomes``, ``case_timeliness``, the fishnet counts and the kernel density
equal what the stages wrote, exactly.
"""
from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Transformer

from geo import caserates
from geo import hotspots as hs
from geo.timeliness import case_timeliness
from pipelines import stage_cases, stage_hotspots
from pipelines.db import connect, read_table, write_gdf

CRS = "EPSG:4546"
X0, Y0 = Transformer.from_crs("EPSG:4326", CRS, always_xy=True).transform(111.70, 40.82)
SIDE, G = 4, 500.0  # 4 × 4 grids of 500 m
N = 120_000
MONTHS = 12
CATS = ["噪音扰民", "停水", "环境卫生"]
FETCHERS = ("df", "fetchdf", "fetch_df", "fetchall", "fetchmany", "fetchnumpy", "to_arrow_table",
            "fetch_arrow_table", "arrow", "to_df", "pl", "fetch_record_batch")


class _Fetched:
    """A DuckDB result or relation whose fetches are counted by the spy."""

    def __init__(self, inner, sql: str, spy: Spy):
        self._inner, self._sql, self._spy = inner, sql, spy

    def __getattr__(self, name):
        attr = getattr(self._inner, name)
        if name not in FETCHERS:
            return attr

        def fetch(*a, **kw):
            out = attr(*a, **kw)
            try:
                n = len(out) if not isinstance(out, dict) else len(next(iter(out.values()), []))
            except TypeError:
                n = out.num_rows if hasattr(out, "num_rows") else -1
            self._spy.pulled.append((n, " ".join(self._sql.split())[:160]))
            return out

        return fetch

    def fetchone(self):
        self._spy.pulled.append((1, " ".join(self._sql.split())[:160]))
        return self._inner.fetchone()


class Spy:
    """Wraps a DuckDB connection; ``pulled`` lists (rows, sql) of every result read into Python."""

    def __init__(self, con):
        self._con = con
        self.pulled: list[tuple[int, str]] = []

    def execute(self, sql, *args, **kw):
        self._con.execute(sql, *args, **kw)
        return _Fetched(self._con, str(sql), self)

    def sql(self, sql, *args, **kw):
        return _Fetched(self._con.sql(sql, *args, **kw), str(sql), self)

    query = sql

    def table(self, name):
        return _Fetched(self._con.table(name), f"TABLE {name}", self)

    def __getattr__(self, name):
        if name in FETCHERS or name == "fetchone":  # a fetch on the connection itself
            return getattr(_Fetched(self._con, "<connection fetch>", self), name)
        return getattr(self._con, name)


def make_city(seed: int = 3):
    """Layers of the city in ``CRS`` and each incident's grid (known from the generator)."""
    rng = np.random.default_rng(seed)
    grids, buildings = [], []
    for i in range(SIDE):
        for j in range(SIDE):
            gid = f"G{i}{j}"
            x, y = X0 + i * G, Y0 + j * G
            grids.append({"grid_id": gid, "plan_id": "P0001", "grid_type": "basic",
                          "community_code": f"C{i // 2}{j // 2}", "street_code": f"S{i // 2}",
                          "geometry": shapely.box(x, y, x + G, y + G)})
            for _ in range(3):
                bx, by = np.array([x, y]) + rng.uniform(20, G - 20, 2)
                buildings.append({"building_id": f"b{len(buildings)}",
                                  "households": int(rng.integers(20, 120)),
                                  "geometry": shapely.Point(bx, by)})
    grids = gpd.GeoDataFrame(grids, geometry="geometry", crs=CRS)
    buildings = gpd.GeoDataFrame(buildings, geometry="geometry", crs=CRS)
    # incidents: most uniform over the grids, a planted hot grid (G12) with three times as many
    weights = np.ones(SIDE * SIDE)
    weights[1 * SIDE + 2] = 3.0
    g = rng.choice(SIDE * SIDE, N, p=weights / weights.sum())
    gi, gj = g // SIDE, g % SIDE
    x = X0 + gi * G + rng.uniform(1.0, G - 1.0, N)
    y = Y0 + gj * G + rng.uniform(1.0, G - 1.0, N)
    month = rng.integers(0, MONTHS, N)
    occurred = (pd.Timestamp("2024-01-01") + pd.to_timedelta(month * 30 + rng.integers(0, 28, N), unit="D")
                + pd.to_timedelta(rng.integers(0, 86400, N), unit="s"))
    occurred = pd.Series(occurred)
    accepted = occurred + pd.to_timedelta(rng.integers(0, 3600, N), unit="s")
    responded = occurred + pd.to_timedelta(rng.exponential(10, N) * 3600, unit="s").round("s")
    closed = responded + pd.to_timedelta(rng.exponential(60, N) * 3600, unit="s").round("s")
    open_ = rng.random(N) < 0.05
    bad = rng.random(N) < 0.01  # closed before it occurred: a data error, ignored
    closed = closed.where(~bad, occurred - pd.Timedelta(hours=2))
    pick = lambda vals, p=None: rng.choice(np.asarray(vals, dtype=object), N, p=p)  # noqa: E731
    incidents = gpd.GeoDataFrame(
        {
            "incident_id": [f"E{k:07d}" for k in range(N)],
            "occurred_at": occurred.where(rng.random(N) > 0.002),  # a few undated
            "category": pick(CATS, [0.5, 0.3, 0.2]),
            "severity": rng.integers(1, 6, N),
            "accepted_at": accepted.dt.strftime("%Y/%m/%d %H:%M").where(rng.random(N) > 0.1),
            "dispatched_at": accepted + pd.Timedelta(minutes=15),
            "responded_at": responded.where(~open_),
            "closed_at": closed.where(~open_),
            "staff_id": pick(["w1", "w2", " w3 ", None, ""]),
            "repeat_of": pick([None, None, None, "E0000001", " "]),
            "resolved": pick(["是", "否", "1", "0", "true", None, "?"]),
            "satisfaction": pick(["满意", "基本满意", "不满意", "5", "3", None]),
            "returned": pick(["0", "1", "2", "否", None]),
            "department": pick(["城管", "住建", "生态环境"]),
            "service_company": pick(["热力一公司", "热力二公司", None]),
            "service_type": pick(["heating", "water", "noise", None]),
            "street_code": np.where(gi < 2, "S0", "S1").astype(object),
            "community_code": pd.Series(
                [f"C{a // 2}{b // 2}" for a, b in zip(gi, gj)], dtype=object),
        },
        geometry=gpd.points_from_xy(x, y),
        crs=CRS,
    )
    grid_of = np.array([f"G{a}{b}" for a, b in zip(gi, gj)], dtype=object)
    return grids, buildings, incidents, grid_of, month


def _load(con, grids, buildings, incidents):
    write_gdf(con, "grids", grids)
    write_gdf(con, "buildings", buildings)
    write_gdf(con, "incidents", incidents)
    write_gdf(con, "plans", pd.DataFrame([{"plan_id": "P0001", "is_current": True,
                                           "created_at": pd.Timestamp("2024-01-01")}]))


@pytest.fixture(scope="module")
def city():
    grids, buildings, incidents, grid_of, month = make_city()
    con = connect()
    _load(con, grids, buildings, incidents)
    spy = Spy(con)
    hot = stage_hotspots.run(spy, {})
    cases = stage_cases.run(spy, {})
    yield con, spy, hot, cases, grid_of
    con.close()


def test_no_result_pulled_into_python_is_as_large_as_the_incidents(city):
    con, spy, hot, cases, _ = city
    assert hot["incidents"] == N and cases["cases"] == N
    cells = SIDE * SIDE * len(CATS) * MONTHS
    assert N > 100 * cells  # many incidents per grid × category × month
    assert spy.pulled, "the spy saw no fetch: it is not wired in"
    biggest = max(spy.pulled)
    # the largest aggregate is grid × category × day of the alert window (≤ 16 × 3 × 393 rows)
    assert biggest[0] < N // 4, biggest
    # every output was still written: one row per incident lives only in DuckDB
    assert con.execute("SELECT count(*) FROM case_outcomes").fetchone()[0] == N
    for t in ("hotspots", "hotspot_fishnet", "hotspot_density", "forecast", "case_timeliness",
              "case_rates", "incident_counts", "grid_risk"):
        assert con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] > 0, t
    assert hot["alerts"]["data_until"] and hot["forecast"]["next_period"] == "2025-01"


def _raw_cases(con, grid_of) -> pd.DataFrame:
    """The incidents read the old way: one row per incident, in table order, with its grid."""
    cols = ["incident_id", "occurred_at", "accepted_at", "dispatched_at", "responded_at",
            "closed_at", "category", "service_type", "severity", "resolved", "satisfaction",
            "returned", "department", "service_company", "staff_id", "street_code",
            "community_code", "repeat_of"]
    df = read_table(con, f"SELECT {', '.join(cols)} FROM incidents ORDER BY rowid")
    df["grid_id"] = grid_of
    return df


def _same(con, name: str, reference: pd.DataFrame, order: list[str]) -> None:
    """Table ``name`` equals ``reference`` stored and read back the same way (dtypes alike)."""
    write_gdf(con, "__ref", reference)
    cols = ", ".join(f'"{c}"' for c in reference.columns)
    got = read_table(con, f"SELECT {cols} FROM {name} ORDER BY {', '.join(order)}")
    ref = read_table(con, f"SELECT {cols} FROM __ref ORDER BY {', '.join(order)}")
    pd.testing.assert_frame_equal(got, ref, check_exact=True)


def test_case_rates_and_outcomes_equal_the_pandas_reference(city):
    con, _, _, _, grid_of = city
    cases = _raw_cases(con, grid_of)
    params = stage_cases.settings_of({})
    ref = caserates.case_rates(cases, params=params)
    ref["board"] = ref["board"].astype(object).where(ref["board"].notna(), None)
    _same(con, "case_rates", ref, ["scope", "scope_id", "period"])
    flags = caserates.case_flags(cases, params=params)
    out = pd.DataFrame({"incident_id": cases["incident_id"], "grid_id": grid_of,
                        "period": flags["period"]})
    for c in ("responded", "resolved", "satisfied", "closed_on_time", "returned"):
        out[c] = flags[c].to_numpy(float)
    _same(con, "case_outcomes", out, ["incident_id"])


def test_case_timeliness_equals_the_pandas_reference(city):
    con, _, _, _, grid_of = city
    cases = _raw_cases(con, grid_of)
    cases = cases[cases["occurred_at"].notna()]
    t = stage_hotspots.settings_of({})["timeliness"]
    ref = case_timeliness(cases, deadlines=t["deadlines"], category_deadlines=t["category_deadlines"],
                          emergency_severity=int(t["emergency_severity"]))
    assert set(ref["scope"]) == {"grid", "staff", "street"}
    _same(con, "case_timeliness", ref, ["scope", "scope_id"])


def test_counts_fishnet_and_density_from_binned_counts_equal_the_raw_points(city):
    con, _, hot, _, grid_of = city
    inc = read_table(con, "SELECT category, occurred_at, ST_X(geometry) AS lon, ST_Y(geometry) AS lat "
                          "FROM incidents ORDER BY rowid")
    ok = inc["occurred_at"].notna().to_numpy()
    # incident_counts: grid × category × month from DuckDB = the generator's own counts
    got = read_table(con, "SELECT grid_id, category, period, incidents FROM incident_counts "
                          "WHERE category <> 'all' AND period <> 'all'")
    ref = (pd.DataFrame({"grid_id": grid_of[ok], "category": inc["category"][ok],
                         "period": inc["occurred_at"][ok].dt.strftime("%Y-%m")})
           .value_counts().rename("incidents").reset_index())
    key = ["grid_id", "category", "period"]
    pd.testing.assert_frame_equal(
        got.sort_values(key).reset_index(drop=True),
        ref.sort_values(key).reset_index(drop=True), check_dtype=False)
    # the fishnet: the size chosen and each cell's count, from the raw metric points
    crs = hot["metric_crs"]
    ex, ey = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(
        inc["lon"][ok].to_numpy(), inc["lat"][ok].to_numpy())
    ev = np.column_stack([ex, ey])
    b = read_table(con, "SELECT ST_X(geometry) AS x, ST_Y(geometry) AS y FROM buildings")
    bx, by = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(b["x"], b["y"])
    support = np.column_stack([bx, by])
    fcfg = stage_hotspots.settings_of({})["fishnet"]
    size, _ = hs.incremental_cell_size(ev, support, fcfg["candidates_m"])
    assert hot["fishnet"]["cell_m"] == size
    cells, _, counts = hs.fishnet_counts(ev, support, size)
    net = read_table(con, "SELECT cell_id, incidents FROM hotspot_fishnet WHERE category = 'all'")
    ref_net = pd.Series(counts.astype(int), index=[f"F{int(size)}_{c}_{r}" for c, r in cells])
    assert net.set_index("cell_id")["incidents"].sort_index().to_dict() == ref_net.sort_index().to_dict()


def test_density_and_equal_cells_from_counts_equal_the_raw_points():
    """The KDE raster and the forecast's cell × month panel from DuckDB counts are the arrays the
    raw points give (private helpers on a fresh connection, smaller city)."""
    grids, buildings, incidents, _, _ = make_city(seed=5)
    incidents = incidents.iloc[:20_000]
    con = connect()
    _load(con, grids, buildings, incidents)
    cfg = stage_hotspots.settings_of({})
    units = grids[["grid_id", "geometry"]].reset_index(drop=True)
    start, n_months = stage_hotspots._assign_incidents(con, units.to_crs("EPSG:4326"), CRS)
    pts = con.execute("SELECT x, y, month_idx FROM __hs_assigned").fetchnumpy()
    bw = 500.0
    kd = stage_hotspots._kernel_density(con, units, CRS, bw, n_months, cfg)
    minx, miny, maxx, maxy = units.total_bounds
    ref = hs.kernel_density(
        np.column_stack([pts["x"], pts["y"]]), bandwidth=bw, cell=float(min(cfg["kde"]["cell_m"], bw / 2)),
        bounds=(min(minx, pts["x"].min()) - bw, min(miny, pts["y"].min()) - bw,
                max(maxx, pts["x"].max()) + bw, max(maxy, pts["y"].max()) + bw),
        kernel=cfg["kde"]["kernel"], layers=pts["month_idx"], n_layers=n_months)
    assert kd.density.shape == ref.density.shape and (kd.x0, kd.y0) == (ref.x0, ref.y0)
    assert np.array_equal(kd.density, ref.density)
    out, info = stage_hotspots._fishnet(con, CRS, CATS, cfg)
    size = out["cell_m"]
    ce = np.floor(np.column_stack([pts["x"], pts["y"]]) / size).astype(np.int64)
    yc_ref = np.zeros((len(info["centre"]), n_months))
    cells = np.floor(info["centre"] / size).astype(np.int64)
    row = {tuple(c): i for i, c in enumerate(cells)}
    np.add.at(yc_ref, ([row[tuple(c)] for c in ce], pts["month_idx"]), 1.0)
    yc = np.zeros_like(yc_ref)
    np.add.at(yc, (info["cell"], info["month"]), info["n"])
    assert np.array_equal(yc, yc_ref) and yc.sum() == len(pts["x"])
    con.close()


def test_hours_and_text_times_are_the_pandas_values():
    """``hours_expr`` is bit for bit pandas' ``total_seconds() / 3600`` (µs, ms and s columns,
    negative spans too); text stamps in the accepted formats parse to the same instants."""
    from pipelines import aggregates as agg

    rng = np.random.default_rng(11)
    n = 5000
    a = pd.Timestamp("2024-03-01") + pd.to_timedelta(rng.integers(0, 400 * 86400 * 10**6, n), unit="us")
    b = a + pd.to_timedelta(rng.integers(-3 * 86400 * 10**6, 30 * 86400 * 10**6, n), unit="us")
    df = pd.DataFrame({"a": a, "b": b, "a_text": a.strftime("%Y/%m/%d %H:%M")})
    con = connect()
    con.register("src", df)
    con.execute("CREATE TABLE t AS SELECT a, b, CAST(a AS TIMESTAMP_MS) AS a_ms, CAST(b AS TIMESTAMP_S) "
                "AS b_s, a_text FROM src")
    types = agg.column_types(con, "t")
    got = con.execute(
        f"SELECT {agg.hours_expr(agg.ts_expr(types, 'b'), agg.ts_expr(types, 'a'))} AS h, "
        f"{agg.hours_expr(agg.ts_expr(types, 'b_s'), agg.ts_expr(types, 'a_ms'))} AS h2, "
        f"{agg.ts_expr(types, 'a_text')} AS parsed FROM t i").df()
    back = con.execute("SELECT a, b, a_ms, b_s FROM t").df()
    assert np.array_equal(got["h"].to_numpy(), ((back["b"] - back["a"]).dt.total_seconds() / 3600.0).to_numpy())
    assert np.array_equal(got["h2"].to_numpy(),
                          ((back["b_s"] - back["a_ms"]).dt.total_seconds() / 3600.0).to_numpy())
    want = pd.to_datetime(df["a_text"], format="%Y/%m/%d %H:%M")
    assert (pd.to_datetime(got["parsed"]).to_numpy() == want.to_numpy()).all()
    con.close()


# --- staffing stage: worker performance from aggregates (issue #13.2) -------------------------

STAFFING_SETTINGS = {"hotspots": {"timeliness": {
    "emergency_severity": 4, "category_deadlines": {"停水": [2, 24]},
    "deadlines": {"general": {"respond_hours": 12, "close_hours": 96}}}}}


@pytest.fixture(scope="module")
def staffing_city():
    """The generated city with what the staffing stage needs besides: grid members, streets,
    communities and four workers (three of them share the 120,000 incidents, ~24,000 each, with
    the blank id ``""``; ``w9`` has none)."""
    from pipelines import stage_staffing

    grids, buildings, incidents, _, _ = make_city()
    grids = grids.assign(area_km2=G * G / 1e6)
    con = connect()
    _load(con, grids, buildings, incidents)
    write_gdf(con, "grid_members", pd.DataFrame({
        "building_id": buildings["building_id"], "plan_id": "P0001",
        "grid_id": np.repeat(grids["grid_id"].to_numpy(), 3)}))
    write_gdf(con, "streets", pd.DataFrame({
        "street_code": ["S0", "S1"], "street_name": ["一街道", "二街道"],
        "function_type": ["old_town", None], "area_km2": [2.0, 2.0]}))
    write_gdf(con, "communities", pd.DataFrame({
        "community_code": ["C00", "C01", "C10", "C11"], "community_name": list("甲乙丙丁"),
        "street_code": ["S0", "S0", "S1", "S1"], "kind": "urban", "area_km2": 1.0}))
    write_gdf(con, "staff", pd.DataFrame({
        "staff_id": ["w1", "w2", " w3 ", "w9"], "street_code": ["S0", "S0", "S1", "S1"],
        "grid_id": ["G00", None, "G23", None], "role": "full_time",
        "community_code": ["C00", "C01", "C11", "C10"]}))
    spy = Spy(con)
    summary = stage_staffing.run(spy, STAFFING_SETTINGS)
    yield con, spy, summary
    con.close()


def test_staffing_stage_pulls_no_result_as_large_as_the_incidents(staffing_city):
    con, spy, summary = staffing_city
    dated = con.execute("SELECT count(*) FROM incidents WHERE occurred_at IS NOT NULL").fetchone()[0]
    assert summary["incidents_used"] == dated > N * 0.99  # the workload window holds them all
    per_worker = con.execute(
        "SELECT count(*) FROM incidents WHERE staff_id IS NOT NULL GROUP BY staff_id").fetchall()
    assert min(n for (n,) in per_worker) > 20_000  # many incidents per staff member
    assert spy.pulled, "the spy saw no fetch: it is not wired in"
    biggest = max(spy.pulled)
    # the largest: grid × category × service type × severity (≤ 16 × 3 × 4 × 5 rows)
    assert biggest[0] < N // 100, biggest
    perf = read_table(con, "SELECT staff_id, cases FROM worker_performance ORDER BY staff_id")
    assert perf["staff_id"].tolist() == ["", " w3 ", "w1", "w2", "w9"]
    assert perf["cases"].sum() == con.execute(
        "SELECT count(*) FROM incidents WHERE staff_id IS NOT NULL AND occurred_at IS NOT NULL"
    ).fetchone()[0]


def test_staffing_worker_performance_equals_the_pandas_reference(staffing_city):
    """The old path: every incident read into pandas and ``geo.staffing.worker_performance``."""
    from geo import staffing as model
    from pipelines import stage_staffing

    con, _, _ = staffing_city
    cases = stage_staffing._read(con, "incidents", [
        "incident_id", "staff_id", "category", "severity", "service_type", "occurred_at",
        "responded_at", "closed_at", "repeat_of"])
    assert len(cases) == N
    got = read_table(con, "worker_performance")
    cfg, _ = stage_staffing._settings(STAFFING_SETTINGS)
    staff = stage_staffing._read(con, "staff", ["staff_id", "street_code", "grid_id", "role",
                                                "community_code"])
    ref = model.worker_performance(
        cases, staff=staff, carried=got.set_index("staff_id")["workload_carried"], params=cfg,
        timeliness=stage_staffing._timeliness_kw(STAFFING_SETTINGS))
    assert ref["repeat_complaints"].sum() > 0 and ref["decided"].sum() > 0
    assert (ref["on_time"] < ref["decided"]).any() and ref.loc[ref["cases"] > 0, "median_hours_to_close"].notna().all()
    _same(con, "worker_performance", ref, ["staff_id"])
