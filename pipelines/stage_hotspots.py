"""Stage ``hotspots``: incident aggregation, Gi* hot spots, emerging hot spots, risk index,
forecast with backtest, and case timeliness.

Reads ``incidents`` (skips when absent or empty), ``grids`` (+ ``grid_members``) when present —
otherwise a regular square or hexagonal cell grid over ``communities`` — and ``buildings`` /
``special_units`` for the risk index. Writes:

=====================  =====================================================================
table                  one row per
=====================  =====================================================================
hotspots               unit × category × period (contract; ``all``/``all`` rows carry the
                       emerging-hot-spot ``trend_class``)
grid_risk              unit: ``risk_score`` (0–100) and ``components`` (JSON)
case_timeliness        grid, staff and street (contract)
forecast               unit × method: next month's expected incidents
forecast_backtest      target month (or ``mean``) × method × area share: hit rate, PAI, MAE
incident_counts        unit × category × period with counts, per km², per 1,000 residents
hotspot_units          the analysis units (grids or cells) with area, residents and geometry
hotspot_density        raster cell of the kernel density surface (cell centre point)
=====================  =====================================================================

Everything is documented in ``docs/hotspots.md``; the settings are ``DEFAULTS`` below, under
``[hotspots]`` in ``gridgov.toml``.

Bounded memory (issue #13.2): the incidents are joined to the units inside DuckDB (temp table
``__hs_assigned``, one row per incident, never fetched) and every step reads aggregates of it:
unit × category × month counts (hot spots, forecast, counts), unit × category × severity (risk),
unit × category × day of the alert window only (alerts), fishnet cell × category and × month
(``floor(x / size)`` in SQL; the cell size's Moran's I per candidate from the same counts), raster
cell × month of the kernel density (the binned counts are the FFT's input, so the surface is the
one the raw points give — not a sample), and case timeliness per grid, worker and street (per-case
SQL of ``pipelines.aggregates``). Python holds units × categories × months, never incidents.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

from geo import alerts as al
from geo import forecast as fc
from geo import hotspots as hs
from geo import timeliness as tl
from pipelines import aggregates as agg
from pipelines import alerts as alerts_db
from pipelines import config, results
from pipelines.config import deep_merge
from pipelines.db import read_gdf, table_exists, write_gdf

log = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = config.DEFAULTS["hotspots"]  # defined, with their meaning, in pipelines/config.py

def settings_of(settings: dict | None) -> dict:
    """The stage's effective settings: config.DEFAULTS["hotspots"] updated by the project's."""
    return deep_merge(DEFAULTS, (settings or {}).get("hotspots") or {})

_T = "__hs_units"
_A = "__hs_assigned"


def _metric_crs(con, settings: dict) -> str:
    if settings.get("metric_crs"):
        return str(settings["metric_crs"])
    lon = con.execute(
        "SELECT avg(ST_X(ST_Centroid(geometry))) FROM incidents WHERE geometry IS NOT NULL"
    ).fetchone()[0]
    try:
        from geo.chinacrs import metric_crs

        return metric_crs(float(lon))
    except ImportError:  # pragma: no cover - chinacrs ships with the project
        return f"EPSG:{4534 + round((float(lon) - 75) / 3)}"


_columns = results.columns  # the one column reader (empty for a missing table)
_q = results.quote_ident


def _units(con, cfg: dict, crs: str) -> tuple[gpd.GeoDataFrame, str]:
    """Analysis units in the metric CRS: the `grids` table, or a regular cell grid."""
    if cfg["use_grids"] and table_exists(con, "grids"):
        grids = read_gdf(
            con,
            "SELECT CAST(grid_id AS VARCHAR) AS grid_id, geometry FROM grids "
            "WHERE geometry IS NOT NULL",
        )
        if len(grids):
            grids = (
                grids.dissolve("grid_id", as_index=False)
                if grids["grid_id"].duplicated().any()
                else grids
            )
            return grids.to_crs(crs)[["grid_id", "geometry"]], "grids"
    comm = (
        read_gdf(con, "SELECT geometry FROM communities WHERE geometry IS NOT NULL")
        if table_exists(con, "communities")
        else None
    )
    if comm is None or comm.empty:
        # no communities: cover the incidents themselves
        comm = read_gdf(con, "SELECT ST_Envelope_Agg(geometry) AS geometry FROM incidents")
    cells = hs.cell_grid(comm.to_crs(crs), cfg["cell_size_m"], cfg["cell_shape"])
    return cells, cfg["cell_shape"]


def _assign_incidents(con, units4326: gpd.GeoDataFrame, crs: str) -> tuple[pd.Timestamp, int]:
    """Spatial join of incidents to units in DuckDB → temp table ``__hs_assigned``.

    One row per located, dated incident — it stays inside DuckDB: every later step reads
    aggregates of it (issue #13.2). ``x``/``y`` are the point in the metric ``crs`` (DuckDB's
    ``ST_Transform``, bit for bit pyproj's on the demo), binned in SQL for the fishnet and the
    kernel density. Returns the first incident's time and the number of months (first to last,
    no gaps).
    """
    write_gdf(con, _T, units4326[["grid_id", "geometry"]])
    cols = _columns(con, "incidents")
    sev = "TRY_CAST(severity AS INTEGER)" if "severity" in cols else "NULL"
    start = pd.Timestamp(
        con.execute(
            "SELECT min(occurred_at) FROM incidents WHERE geometry IS NOT NULL AND occurred_at IS NOT NULL"
        ).fetchone()[0]
    )
    base = start.year * 12 + start.month - 1
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {_A} AS
        WITH inc AS (
            SELECT rowid AS rid, geometry, occurred_at,
                   coalesce(nullif(trim(CAST(category AS VARCHAR)), ''), 'unknown') AS category,
                   CASE WHEN {sev} IS NULL THEN 3 ELSE least(greatest({sev}, 1), 5) END AS severity
            FROM incidents
            WHERE geometry IS NOT NULL AND occurred_at IS NOT NULL
        ),
        hits AS (
            SELECT inc.rid, min(u.grid_id) AS grid_id
            FROM inc JOIN {_T} u ON ST_Intersects(u.geometry, inc.geometry)
            GROUP BY inc.rid
        ),
        final AS (
            SELECT inc.rid, hits.grid_id, inc.category, inc.severity,
                   CAST(year(inc.occurred_at) * 12 + month(inc.occurred_at) - 1 - {base} AS INTEGER)
                       AS month_idx,
                   ST_X(ST_Transform(inc.geometry, 'EPSG:4326', $crs, always_xy := true)) AS x,
                   ST_Y(ST_Transform(inc.geometry, 'EPSG:4326', $crs, always_xy := true)) AS y,
                   CAST(inc.occurred_at AS DATE) AS day
            FROM inc LEFT JOIN hits USING (rid)
        )
        SELECT * FROM final
    """, {"crs": str(crs)})
    n_months = con.execute(f"SELECT max(month_idx) + 1 FROM {_A}").fetchone()[0]
    return start, int(n_months or 0)


def _occupied_cells(con) -> set[str]:
    """Cells holding at least one incident, building or special unit (the others are empty land,
    left out like the empty locations of ArcGIS's space-time cube)."""
    q = [f"SELECT DISTINCT grid_id FROM {_A} WHERE grid_id IS NOT NULL"]
    for layer in ("buildings", "special_units"):
        if table_exists(con, layer):
            q.append(
                f"SELECT DISTINCT u.grid_id FROM {layer} b JOIN {_T} u "
                "ON ST_Intersects(u.geometry, ST_PointOnSurface(b.geometry)) "
                "WHERE b.geometry IS NOT NULL"
            )
    return {r[0] for r in con.execute(" UNION ".join(q)).fetchall()}


def _period_labels(start: pd.Timestamp, n: int) -> list[str]:
    first = pd.Period(start, freq="M")
    return [str(first + i) for i in range(n)]


def _unit_people(con, units4326: gpd.GeoDataFrame, source: str, cfg: dict) -> pd.DataFrame:
    """Residents and vulnerable people per unit (grid_members when given, else spatial join)."""
    idx = pd.Index(units4326["grid_id"], name="grid_id")
    out = pd.DataFrame(
        0.0,
        index=idx,
        columns=["residents", "elderly_alone", "disabled", "low_income", "special_units",
                 "households"],
    )
    if table_exists(con, "buildings"):
        cols = _columns(con, "buildings")
        hh = float(cfg["household_size"])
        res = (
            (
                "coalesce(TRY_CAST(b.residents AS DOUBLE), TRY_CAST(b.households AS DOUBLE) * "
                f"{hh}, 0)"
            )
            if "residents" in cols
            else f"coalesce(TRY_CAST(b.households AS DOUBLE) * {hh}, 0)"
        )
        parts = [f"sum({res}) AS residents",
                 "sum(coalesce(TRY_CAST(b.households AS DOUBLE), 0)) AS households"]
        for c in ("elderly_alone", "disabled", "low_income"):
            parts.append(
                f"sum(coalesce(TRY_CAST(b.{c} AS DOUBLE), 0)) AS {c}"
                if c in cols
                else f"0.0 AS {c}"
            )
        sel = ", ".join(parts)
        if source == "grids" and table_exists(con, "grid_members") and "building_id" in cols:
            q = (
                f"SELECT CAST(m.grid_id AS VARCHAR) AS grid_id, {sel} FROM buildings b "
                "JOIN grid_members m ON CAST(m.building_id AS VARCHAR) = CAST(b.building_id AS VARCHAR) "
                "GROUP BY 1"
            )
        else:
            q = (
                f"SELECT u.grid_id, {sel} FROM buildings b JOIN {_T} u "
                "ON ST_Intersects(u.geometry, ST_PointOnSurface(b.geometry)) "
                "WHERE b.geometry IS NOT NULL GROUP BY 1"
            )
        df = con.execute(q).df().set_index("grid_id")
        df = df[df.index.isin(idx)]
        pcols = ["residents", "elderly_alone", "disabled", "low_income", "households"]
        out.loc[df.index, pcols] = df[pcols].to_numpy(float)
    if table_exists(con, "special_units"):
        df = (
            con.execute(
                f"SELECT u.grid_id, count(*) AS n FROM special_units s JOIN {_T} u "
                "ON ST_Intersects(u.geometry, ST_PointOnSurface(s.geometry)) "
                "WHERE s.geometry IS NOT NULL GROUP BY 1"
            )
            .df()
            .set_index("grid_id")
        )
        df = df[df.index.isin(idx)]
        out.loc[df.index, "special_units"] = df["n"].to_numpy(float)
    return out


def _categories(counts: pd.DataFrame, cfg: dict) -> tuple[list[str], list[str]]:
    tot = counts.groupby("category")["n"].sum().sort_values(ascending=False)
    keep = tot[tot >= cfg["min_category_incidents"]].index[: cfg["max_categories"]].tolist()
    return keep, [c for c in tot.index if c not in keep]


def _panel(counts: pd.DataFrame, units: pd.Index, n_months: int) -> np.ndarray:
    y = np.zeros((len(units), n_months))
    if len(counts):
        r = units.get_indexer(counts["grid_id"])
        np.add.at(y, (r, counts["month_idx"].to_numpy()), counts["n"].to_numpy(float))
    return y


def _method_names(basis: np.ndarray, cfg: dict) -> np.ndarray:
    model, expect = cfg["dispersion"], cfg["expectation"]
    return np.select(
        [basis == "base", basis == "area"],
        [f"excess_{model}_{expect}", f"excess_{model}_peer_fallback"],
        default="no_base",
    ).astype(object)


def _hotspot_rows(
    unit_ids: np.ndarray,
    category: str,
    periods: list[str],
    y: np.ndarray,
    w,
    cfg: dict,
    area_km2: np.ndarray,
    base: np.ndarray,
    warnings: list[str],
) -> tuple[pd.DataFrame, hs.ExcessResult | None]:
    """Rows of `hotspots` for one category: overall ('all') and each month.

    With ``verdict = "excess"`` (default) the class is the per-unit excess test against the
    expectation (``geo.hotspots.excess_test``), trends from ``geo.hotspots.excess_trends``;
    with ``"gi_star"`` the former Gi* on the units. Also returns the overall excess result
    (for the 'any' rows), ``None`` for Gi*.
    """
    if cfg["verdict"] == "gi_star":
        rows = _gi_rows(unit_ids, category, periods, y, w, cfg, area_km2, warnings)
        rows["method"] = f"gi_star_units_{cfg['weights']}"
        return rows, None
    if cfg["verdict"] != "excess":
        raise ValueError(f"[hotspots] verdict must be 'excess' or 'gi_star', got {cfg['verdict']!r}")
    model = cfg["dispersion"]
    n, t = y.shape
    # units without households (dedicated grids) are compared with each other, each expected
    # the same: their tiny areas (a school, a market) say nothing about their incidents
    peers = np.ones(n)
    r = hs.excess_test(y.sum(axis=1), base, area=peers, model=model)
    trend = np.full(n, None, dtype=object)
    if t >= cfg["min_periods"]:
        tr = hs.excess_trends(
            y,
            base,
            area=peers,
            recent=int(cfg["recent_months"]),
            alpha=float(cfg["alpha"]),
            trend_alpha=float(cfg["trend_alpha"]),
            model=model,
            min_periods=int(cfg["min_periods"]),
        )
        trend = tr.table["trend_class"].to_numpy(dtype=object)
        mon = tr.monthly
    else:
        mon = hs.excess_test(y, base, area=peers, model=model)
        if category == "all":
            warnings.append(
                f"只有 {t} 个月的数据，少于 {cfg['min_periods']} 个月，未做时空趋势分类。 / "
                f"Only {t} months of incidents (< {cfg['min_periods']}): no space–time trend "
                "classes; trend_class is empty."
            )

    def cls(res: hs.ExcessResult) -> np.ndarray:
        c = np.asarray(res.classes, dtype=object).copy()
        c[c == "no_base"] = "none"
        return c

    method = _method_names(r.basis, cfg)
    overall = pd.DataFrame(
        {
            "grid_id": unit_ids,
            "category": category,
            "period": "all",
            "z_score": r.z,
            "p_value": r.p,
            "p_fdr": r.q,
            "hotspot_class": cls(r),
            "trend_class": trend,
            "method": method,
            "observed": r.observed,
            "expected": r.expected,
            "ratio": r.ratio,
        }
    )
    monthly = pd.DataFrame(
        {
            "grid_id": np.repeat(unit_ids, t),
            "category": category,
            "period": np.tile(np.asarray(periods, dtype=object), n),
            "z_score": mon.z.ravel(),
            "p_value": mon.p.ravel(),
            "p_fdr": mon.q.ravel(),
            "hotspot_class": cls(mon).ravel(),
            "trend_class": None,
            "method": np.repeat(method, t),
            "observed": mon.observed.ravel(),
            "expected": mon.expected.ravel(),
            "ratio": mon.ratio.ravel(),
        }
    )
    return pd.concat([overall, monthly], ignore_index=True), r


def _any_rows(unit_ids: np.ndarray, results: dict[str, hs.ExcessResult],
              overall: pd.DataFrame) -> pd.DataFrame:
    """Rows of category 'any' (period 'all'): a unit hot in ANY category.

    The one-sided p-values of every unit in every category (and 'all') are adjusted together
    (Benjamini–Hochberg over units × categories), so looking at 20 categories does not make 20
    times as many false hot spots; a unit's 'any' q-value is its smallest adjusted one, and
    ``hot_categories`` lists the categories where it is hot at FDR 0.05.
    """
    cats = list(results)
    p = np.column_stack([results[c].p_up for c in cats])
    tested = np.column_stack([results[c].basis != "no_base" for c in cats])
    q = hs.fdr_bh(np.where(tested, p, np.nan).ravel()).reshape(p.shape)
    q = np.nan_to_num(q, nan=1.0)
    best = q.argmin(axis=1)
    rows = np.arange(len(unit_ids))
    qmin = q[rows, best]
    z = np.column_stack([results[c].z for c in cats])
    hot_cats = [
        ",".join(c for c, qq in zip(cats, q[i]) if qq <= 0.05) for i in range(len(unit_ids))
    ]
    trend = overall.set_index(["grid_id", "category"])["trend_class"]
    best_cat = np.asarray(cats, dtype=object)[best]
    tr = [trend.get((g, c)) for g, c in zip(unit_ids, best_cat)]
    cls = hs.excess_classes(qmin, np.ones_like(qmin))
    exp = np.column_stack([results[c].expected for c in cats])[rows, best]
    obs = np.column_stack([results[c].observed for c in cats])[rows, best]
    return pd.DataFrame(
        {
            "grid_id": unit_ids,
            "category": "any",
            "period": "all",
            "z_score": z[rows, best],
            "p_value": p[rows, best],
            "p_fdr": qmin,
            "hotspot_class": cls,
            "trend_class": tr,
            "method": "excess_any_category_bh",
            "observed": obs,
            "expected": exp,
            "ratio": np.where(exp > 0, obs / np.where(exp > 0, exp, 1.0), np.nan),
            "hot_categories": hot_cats,
            "top_category": best_cat,
        }
    )


def _gi_rows(
    unit_ids: np.ndarray,
    category: str,
    periods: list[str],
    y: np.ndarray,
    w,
    cfg: dict,
    area_km2: np.ndarray,
    warnings: list[str],
) -> pd.DataFrame:
    """Rows of `hotspots` for one category: overall ('all') and each month."""
    vals = y if cfg["value"] == "count" else y / area_km2[:, None]
    total = vals.sum(axis=1)
    z_all, p_all = hs.gi_star(total, w)
    q_all = hs.fdr_bh(p_all)
    z_m, p_m = hs.gi_star(vals, w)
    q_m = hs.fdr_bh(p_m, axis=0)
    use_all = q_all if cfg["fdr"] else p_all
    use_m = q_m if cfg["fdr"] else p_m
    trend = np.full(len(unit_ids), None, dtype=object)
    if y.shape[1] >= cfg["min_periods"]:
        trend = hs.classify_emerging(
            z_m,
            use_m <= cfg["alpha"],
            trend_alpha=cfg["trend_alpha"],
            min_periods=cfg["min_periods"],
        )
    elif category == "all":
        warnings.append(
            f"只有 {y.shape[1]} 个月的数据，少于 {cfg['min_periods']} 个月，未做新兴热点分析。 / "
            f"Only {y.shape[1]} months of incidents (< {cfg['min_periods']}): no emerging hot spot "
            "analysis; trend_class is empty."
        )
    n, t = y.shape
    overall = pd.DataFrame(
        {
            "grid_id": unit_ids,
            "category": category,
            "period": "all",
            "z_score": z_all,
            "p_value": p_all,
            "p_fdr": q_all,
            "hotspot_class": hs.hotspot_classes(z_all, use_all),
            "trend_class": trend,
        }
    )
    monthly = pd.DataFrame(
        {
            "grid_id": np.repeat(unit_ids, t),
            "category": category,
            "period": np.tile(np.asarray(periods, dtype=object), n),
            "z_score": z_m.ravel(),
            "p_value": p_m.ravel(),
            "p_fdr": q_m.ravel(),
            "hotspot_class": hs.hotspot_classes(z_m, use_m).ravel(),
            "trend_class": None,
        }
    )
    return pd.concat([overall, monthly], ignore_index=True)


def _area_rows(con, unit_ids: np.ndarray, results: dict[str, hs.ExcessResult], base: np.ndarray,
               cfg: dict) -> int:
    """``hotspot_areas``: the same excess test for communities and streets (period 'all').

    Counts and the expectation's base (households …) are summed from the grids to their
    community and street (``grids.community_code`` / ``street_code``); one row per scope ×
    area × category. Returns the number of rows written.
    """
    cols = _columns(con, "grids")
    frames = []
    for scope, col in (("community", "community_code"), ("street", "street_code")):
        if col not in cols:
            continue
        m = dict(con.execute(
            f"SELECT CAST(grid_id AS VARCHAR), any_value(CAST({col} AS VARCHAR)) FROM grids "
            "GROUP BY 1").fetchall())
        keys = pd.Series([m.get(g) for g in unit_ids], dtype=object)
        ok = keys.notna().to_numpy()
        if not ok.any():
            continue
        codes, inv = np.unique(keys[ok].astype(str).to_numpy(), return_inverse=True)
        b = np.bincount(inv, weights=base[ok], minlength=len(codes))
        for cat, r in results.items():
            y = np.bincount(inv, weights=np.asarray(r.observed, float)[ok], minlength=len(codes))
            t = hs.excess_test(y, b, area=np.ones(len(codes)), model=cfg["dispersion"])
            c = np.asarray(t.classes, dtype=object).copy()
            c[c == "no_base"] = "none"
            frames.append(pd.DataFrame({
                "scope": scope, "scope_id": codes, "category": cat, "period": "all",
                "observed": t.observed, "expected": t.expected, "ratio": t.ratio,
                "z_score": t.z, "p_value": t.p, "p_fdr": t.q, "hotspot_class": c,
                "method": _method_names(t.basis, cfg),
            }))
    if not frames:
        return 0
    out = pd.concat(frames, ignore_index=True)
    write_gdf(con, "hotspot_areas", out)
    return len(out)


def _expectation_base(cfg: dict, people: pd.DataFrame, area_km2: np.ndarray,
                      warnings: list[str]) -> tuple[np.ndarray, str]:
    """What incidents are expected to follow, per unit (``[hotspots] expectation``)."""
    want = cfg["expectation"]
    if want not in ("households", "residents", "area"):
        raise ValueError(
            f"[hotspots] expectation 须为 households、residents 或 area / must be 'households', "
            f"'residents' or 'area', got {want!r}"
        )
    if want == "area":
        return np.asarray(area_km2, dtype=float), "area"
    base = people[want].to_numpy(float)
    if base.sum() <= 0:
        warnings.append(
            f"各单元的 {want} 均为 0，热点按面积计算期望 / no {want} in any unit: the expectation "
            "follows area"
        )
        return np.asarray(area_km2, dtype=float), "area"
    return base, want


def _event_cells(con, size: float, by: str = "") -> pd.DataFrame:
    """Incidents per square cell of side ``size`` (``col = floor(x / size)``, as
    ``geo.hotspots.fishnet_counts`` bins them), counted in DuckDB; ``by``: more group columns."""
    extra = f", {by}" if by else ""
    return con.execute(
        f"SELECT CAST(floor(x / $s) AS BIGINT) AS cx, CAST(floor(y / $s) AS BIGINT) AS cy{extra}, "
        f"count(*) AS n FROM {_A} GROUP BY ALL", {"s": float(size)}).df()


def _fishnet_cells(con, support: np.ndarray, size: float):
    """``geo.hotspots.fishnet_counts`` from binned counts: the cells holding an incident or a
    support point (sorted as ``np.unique`` sorts them), their centres and incident counts."""
    ev = _event_cells(con, size)
    ce = ev[["cx", "cy"]].to_numpy(np.int64)
    cs = np.floor(support / size).astype(np.int64).reshape(-1, 2)
    cells, inv = np.unique(np.vstack([ce, cs]), axis=0, return_inverse=True)
    inv = np.asarray(inv).ravel()
    counts = np.bincount(inv[: len(ce)], weights=ev["n"].to_numpy(float), minlength=len(cells))
    return cells, (cells + 0.5) * size, counts


def _cell_index(cells: np.ndarray, cx, cy) -> np.ndarray:
    """Row of ``cells`` (sorted, unique) holding each (cx, cy)."""
    key = pd.MultiIndex.from_arrays([cells[:, 0], cells[:, 1]])
    return key.get_indexer(pd.MultiIndex.from_arrays([np.asarray(cx), np.asarray(cy)]))


def _incremental_cell_size(con, support: np.ndarray, sizes, k: int = 8):
    """``geo.hotspots.incremental_cell_size`` on counts binned in DuckDB (same cells, same
    counts, same Moran's I and first-peak rule; the raw points never reach Python)."""
    return hs.cell_size_by_first_peak(
        lambda size: _fishnet_cells(con, support, size)[1:], sizes, k=k)


def _fishnet(con, crs: str, cats: list[str], cfg: dict) -> tuple[dict, dict | None]:
    """``hotspot_fishnet``: Gi* on an equal-area square fishnet (hot spots of concentration).

    The cell size is ``[hotspots.fishnet] cell_m`` or chosen by incremental spatial
    autocorrelation (first peak of global Moran's I z over the candidate sizes); cells holding
    neither an incident nor a building are left out; weights: 8 nearest cells (queen).
    Incidents are binned to cell × category (× month for the forecast) inside DuckDB.
    """
    fcfg = cfg["fishnet"]
    n_ev, exmin, eymin, exmax, eymax = con.execute(
        f"SELECT count(*), min(x), min(y), max(x), max(y) FROM {_A}").fetchone()
    tr = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    support = np.empty((0, 2))
    if table_exists(con, "buildings"):
        b = con.execute(
            "SELECT ST_X(ST_PointOnSurface(geometry)) AS x, ST_Y(ST_PointOnSurface(geometry)) AS y "
            "FROM buildings WHERE geometry IS NOT NULL"
        ).fetchnumpy()
        bx, by = tr.transform(b["x"], b["y"])
        support = np.column_stack([bx, by])
    if not n_ev:
        return {}, None
    if fcfg["cell_m"]:
        size, isa = float(fcfg["cell_m"]), None
    else:
        lo = np.array([exmin, eymin], dtype=float)
        hi = np.array([exmax, eymax], dtype=float)
        if len(support):
            lo, hi = np.minimum(lo, support.min(axis=0)), np.maximum(hi, support.max(axis=0))
        span = (hi - lo).prod()
        cands = [c for c in fcfg["candidates_m"] if span / float(c) ** 2 <= 4 * fcfg["max_cells"]]
        size, isa = _incremental_cell_size(con, support, cands or [max(fcfg["candidates_m"])])
    cells, centre, _ = _fishnet_cells(con, support, size)
    if len(cells) > fcfg["max_cells"] or len(cells) < 10:
        return {"cell_m": size, "cells": len(cells), "skipped": "too many or too few cells"}, None
    w = hs.knn_weights(centre, k=8)
    by_cat = _event_cells(con, size, "category")
    by_cat["i"] = _cell_index(cells, by_cat["cx"], by_cat["cy"])
    frames = []
    for cat in ["all"] + list(cats):
        sel = by_cat if cat == "all" else by_cat[by_cat["category"] == cat]
        y = np.bincount(sel["i"].to_numpy(np.int64), weights=sel["n"].to_numpy(float),
                        minlength=len(cells))
        z, p = hs.gi_star(y, w)
        q = hs.fdr_bh(p)
        frames.append(pd.DataFrame({
            "cell_id": [f"F{int(size)}_{c}_{r}" for c, r in cells],
            "category": cat,
            "cell_m": size,
            "incidents": y.astype(int),
            "z_score": z,
            "p_value": p,
            "p_fdr": q,
            "hotspot_class": hs.hotspot_classes(z, q),
            "method": "gi_star_fishnet_knn8",
            "cx": centre[:, 0],
            "cy": centre[:, 1],
        }))
    df = pd.concat(frames, ignore_index=True)
    half = size / 2.0
    geoms = shapely.box(df["cx"] - half, df["cy"] - half, df["cx"] + half, df["cy"] + half)
    gdf = gpd.GeoDataFrame(df.drop(columns=["cx", "cy"]), geometry=geoms, crs=crs).to_crs("EPSG:4326")
    write_gdf(con, "hotspot_fishnet", gdf)
    out: dict[str, Any] = {
        "cell_m": size,
        "cells": len(cells),
        "hot_cells": int(gdf.loc[gdf["category"] == "all", "hotspot_class"].str.startswith("hot").sum()),
    }
    if isa is not None:
        out["isa"] = {f"{int(r.size_m)}": (None if not np.isfinite(r.z) else round(float(r.z), 2))
                      for r in isa.itertuples()}
    by_month = _event_cells(con, size, "month_idx")
    info = {"size": size, "centre": centre,
            "cell": _cell_index(cells, by_month["cx"], by_month["cy"]),
            "month": by_month["month_idx"].to_numpy(np.int64),
            "n": by_month["n"].to_numpy(float)}
    return out, info


def _alerts(con, units4326, unit_ids: np.ndarray, people: pd.DataFrame, acfg: dict) -> dict:
    """Table ``alerts`` (early warning, ``geo.alerts``) on the latest data of every grid.

    Monitors 'all' and the ``max_categories`` most frequent categories over the last
    ``monitor_days`` days of data; statuses set by people come from ``alert_status``.
    """
    last = con.execute(f"SELECT max(day) FROM {_A} WHERE grid_id IS NOT NULL").fetchone()[0]
    if last is None:
        alerts_db.write_alerts(con, pd.DataFrame(columns=al.ALERT_COLUMNS + ["p_value"]))
        return {"alerts": 0}
    span = int(acfg["history_days"]) + int(acfg["monitor_days"]) + max(acfg["windows_days"])
    first = pd.Timestamp(last) - pd.Timedelta(days=span - 1)
    days = pd.date_range(first, pd.Timestamp(last), freq="D")
    # the monitored categories: most incidents in the window first, ties by name
    tot = con.execute(
        f"SELECT category, count(*) AS n FROM {_A} WHERE grid_id IS NOT NULL AND day >= ? "
        "GROUP BY ALL", [first.date()]).df()
    cats = (
        tot.set_index("category")["n"].sort_index()
        .sort_values(ascending=False, kind="mergesort").index[: int(acfg["max_categories"])].tolist()
    )
    # grid × day × category counts of the window as integer codes (no text per row): the unit's
    # position, the day's offset, the category's position among `cats` (−1 = not monitored)
    con.register("__hs_uidx_src", pd.DataFrame({"grid_id": unit_ids.astype(str),
                                                "gi": np.arange(len(unit_ids))}))
    con.register("__hs_cidx_src", pd.DataFrame({"category": pd.Series(cats, dtype=object).astype(str),
                                                "ci": np.arange(len(cats))}))
    try:
        daily = con.execute(
            f"SELECT u.gi, CAST(a.day - CAST(? AS DATE) AS INTEGER) AS di, "
            f"coalesce(c.ci, -1) AS ci, count(*) AS n FROM {_A} a "
            "JOIN __hs_uidx_src u ON u.grid_id = a.grid_id "
            "LEFT JOIN __hs_cidx_src c ON c.category = a.category "
            "WHERE a.day >= ? GROUP BY ALL", [first.date(), first.date()]).fetchnumpy()
    finally:
        con.unregister("__hs_uidx_src")
        con.unregister("__hs_cidx_src")
    uindex = pd.Index(unit_ids)
    lin = np.asarray(daily["gi"], np.int64) * len(days) + np.asarray(daily["di"], np.int64)
    ci = np.asarray(daily["ci"], np.int64)
    n = np.asarray(daily["n"], float)
    frames = []
    phis = {}
    for k, cat in enumerate(["all"] + cats):
        sel = np.ones(len(lin), bool) if cat == "all" else ci == k - 1
        y = np.bincount(lin[sel], weights=n[sel], minlength=len(unit_ids) * len(days)).reshape(
            len(unit_ids), len(days))
        det = al.detect(
            y, days, unit_ids,
            households=people["households"].reindex(uindex).to_numpy(float),
            category=cat,
            windows=acfg["windows_days"],
            monitor_days=int(acfg["monitor_days"]),
            history_days=int(acfg["history_days"]),
            recurrence_days=float(acfg["recurrence_days"]),
            prior_incidents=float(acfg["prior_incidents"]),
            n_categories=1 + len(cats),
        )
        phis[cat] = round(det.dispersion, 3)
        frames.append(det.alerts)
    alerts = pd.concat([f for f in frames if len(f)], ignore_index=True) if any(
        len(f) for f in frames) else pd.DataFrame(columns=frames[0].columns)
    out = alerts_db.write_alerts(con, alerts, units4326)
    return {
        "alerts": len(out),
        "open": int(out["status"].isin(["new", "acknowledged"]).sum()) if len(out) else 0,
        "data_until": str(pd.Timestamp(last).date()),
        "monitored_from": str(days[-int(acfg["monitor_days"])].date()),
        "categories": ["all"] + cats,
        "dispersion": phis,
    }


def _kde_bandwidth(cfg: dict, xy: np.ndarray) -> float:
    if cfg["kde"]["bandwidth_m"]:
        return float(cfg["kde"]["bandwidth_m"])
    if len(xy) < 2:
        return 500.0
    from scipy.spatial import cKDTree

    d, _ = cKDTree(xy).query(xy, k=2)
    return float(min(max(np.median(d[:, 1]), 200.0), 2000.0))


def run(con, settings: dict, *, progress: Callable[[str], None] | None = None) -> dict:
    """Run the hotspot stage on ``con``; return a summary (``{"skipped": reason}`` without incidents)."""
    say = progress or (lambda _m: None)
    cfg = settings_of(settings)
    t_start = time.perf_counter()
    timings: dict[str, float] = {}

    def tick(name: str, t0: float) -> float:
        now = time.perf_counter()
        timings[name] = round(now - t0, 2)
        return now

    if not table_exists(con, "incidents"):
        return {"skipped": "没有事件表 / no incidents table"}
    n_total = con.execute("SELECT count(*) FROM incidents").fetchone()[0]
    n_usable = con.execute(
        "SELECT count(*) FROM incidents WHERE geometry IS NOT NULL AND occurred_at IS NOT NULL"
    ).fetchone()[0]
    if n_usable == 0:
        return {"skipped": "事件表为空或没有坐标/时间 / incidents table has no located, dated rows"}
    warnings: list[str] = []

    t0 = time.perf_counter()
    crs = _metric_crs(con, settings or {})
    units, source = _units(con, cfg, crs)
    units = units.reset_index(drop=True)
    units4326 = units.to_crs("EPSG:4326")
    start, n_months = _assign_incidents(con, units4326, crs)
    if source != "grids" and cfg["drop_empty_cells"]:
        keep = units["grid_id"].isin(_occupied_cells(con)).to_numpy()
        units, units4326 = (
            units[keep].reset_index(drop=True),
            units4326[keep].reset_index(drop=True),
        )
        write_gdf(con, _T, units4326[["grid_id", "geometry"]])
    unit_ids = units["grid_id"].to_numpy(dtype=object)
    uindex = pd.Index(unit_ids)
    area_km2 = units.geometry.area.to_numpy() / 1e6
    say(f"分析单元 / units: {len(units)} ({source})")
    t0 = tick("units_and_join", t0)
    periods = _period_labels(start, n_months)
    n_unassigned = con.execute(f"SELECT count(*) FROM {_A} WHERE grid_id IS NULL").fetchone()[0]
    counts = con.execute(
        f"SELECT grid_id, category, month_idx, count(*) AS n FROM {_A} "
        "WHERE grid_id IS NOT NULL GROUP BY ALL ORDER BY ALL"
    ).df()
    say(
        f"事件落入单元 / incidents joined: {n_usable - n_unassigned} of {n_usable}, {n_months} months"
    )
    t0 = tick("aggregate", t0)

    # ---- weights and hot spots ------------------------------------------------------------
    xy = np.column_stack([units.geometry.centroid.x, units.geometry.centroid.y])
    w = hs.spatial_weights(xy, method=cfg["weights"], k=int(cfg["k"]), band=cfg["band_m"])
    if cfg["weights"] == "knn":
        weights_desc = f"knn(k={cfg['k']})"
    else:
        band = cfg["band_m"] or hs.auto_band(xy, k=int(cfg["k"]))
        weights_desc = f"distance_band({band:.0f} m)"
    cats, rest = _categories(counts, cfg)
    y_all = _panel(counts, uindex, n_months)
    people = _unit_people(con, units4326, source, cfg)
    base, base_name = _expectation_base(cfg, people, area_km2, warnings)
    frames, results = [], {}
    for cat, y in [("all", y_all)] + [
        (c, _panel(counts[counts["category"] == c], uindex, n_months)) for c in cats
    ]:
        rows, res = _hotspot_rows(unit_ids, cat, periods, y, w, cfg, area_km2, base, warnings)
        frames.append(rows)
        if res is not None:
            results[cat] = res
    hotspots = pd.concat(frames, ignore_index=True)
    if results:
        overall_rows = hotspots[hotspots["period"] == "all"]
        hotspots = pd.concat([hotspots, _any_rows(unit_ids, results, overall_rows)],
                             ignore_index=True)
    write_gdf(con, "hotspots", hotspots)
    if rest:
        warnings.append(
            f"{len(rest)} 个小类别只计入 all / {len(rest)} small categories only in 'all': "
            + ", ".join(rest[:10])
            + (" …" if len(rest) > 10 else "")
        )
    say(f"热点 / hotspots: {len(hotspots)} rows, categories all + {len(cats)}")
    t0 = tick("hotspots", t0)

    areas_rows = 0
    if results and source == "grids":
        areas_rows = _area_rows(con, unit_ids, results, base, cfg)

    fishnet_summary: dict[str, Any] = {}
    fishnet_info = None
    if cfg["fishnet"]["enabled"]:
        fishnet_summary, fishnet_info = _fishnet(con, crs, cats, cfg)
        t0 = tick("fishnet", t0)

    # ---- early warning ---------------------------------------------------------------------
    alerts_summary: dict[str, Any] = {}
    if cfg["alerts"]["enabled"] and source == "grids":
        alerts_summary = _alerts(con, units4326, unit_ids, people, cfg["alerts"])
        t0 = tick("alerts", t0)
    elif cfg["alerts"]["enabled"]:
        alerts_summary = {"skipped": "预警只针对网格 / alerts are raised on grids only"}

    # ---- counts and units tables ------------------------------------------------------------
    _write_counts(con, counts, unit_ids, periods, area_km2, people)
    write_gdf(
        con,
        "hotspot_units",
        units4326.assign(
            unit_type=source, area_km2=area_km2, residents=people["residents"].to_numpy()
        )[["grid_id", "unit_type", "area_km2", "residents", "geometry"]],
    )
    t0 = tick("counts", t0)

    # ---- kernel density (map surface, and per month for the forecast's KDE baseline) -------
    bw = _kde_bandwidth(cfg, xy)
    kd = _kernel_density(con, units, crs, bw, n_months, cfg)
    kde_monthly = hs.raster_to_zones(kd, units.geometry)
    if cfg["kde"]["write"]:
        _write_density(con, kd, crs)
    t0 = tick("kde", t0)

    # ---- risk -------------------------------------------------------------------------------
    _write_risk(con, _risk_components(con, people, uindex, n_months, cfg["risk"]), cfg["risk"])
    t0 = tick("risk", t0)

    # ---- forecast ---------------------------------------------------------------------------
    fsum: dict[str, Any] = {}
    if cfg["forecast"]["enabled"] and n_months >= fc.MIN_LAG + 3:
        fsum = _forecast(
            con, y_all, unit_ids, area_km2, w, people, kde_monthly, periods, start, cfg["forecast"],
            fishnet_info,
        )
    else:
        warnings.append("月份太少或已关闭，未做预测 / too few months (or disabled): no forecast")
    t0 = tick("forecast", t0)

    # ---- timeliness ---------------------------------------------------------------------------
    tl = _timeliness(con, cfg["timeliness"])
    write_gdf(con, "case_timeliness", tl)
    t0 = tick("timeliness", t0)

    con.execute(f"DROP TABLE IF EXISTS {_A}")
    con.execute(f"DROP TABLE IF EXISTS {_T}")
    overall = hotspots[(hotspots["category"] == "all") & (hotspots["period"] == "all")]
    summary = {
        "units": len(units),
        "unit_source": source,
        "metric_crs": crs,
        "incidents": int(n_total),
        "incidents_used": int(n_usable - n_unassigned),
        "incidents_outside_units": int(n_unassigned),
        "incidents_without_location_or_time": int(n_total - n_usable),
        "months": n_months,
        "first_period": periods[0],
        "last_period": periods[-1],
        "categories": ["all"] + cats,
        "weights": weights_desc,
        "verdict": cfg["verdict"],
        "expectation": base_name,
        "dispersion": cfg["dispersion"],
        "hot_units": int(overall["hotspot_class"].str.startswith("hot").sum()),
        "hot_units_any_category": int(
            hotspots.loc[hotspots["category"] == "any", "hotspot_class"].str.startswith("hot").sum()
        ),
        "fishnet": fishnet_summary,
        "alerts": alerts_summary,
        "hotspot_areas_rows": areas_rows,
        "cold_units": int(overall["hotspot_class"].str.startswith("cold").sum()),
        "trend_classes": {
            str(k): int(v) for k, v in overall["trend_class"].value_counts(dropna=True).items()
        },
        "kde_bandwidth_m": round(bw, 1),
        "forecast": fsum,
        "timeliness_rows": len(tl),
        "warnings": warnings,
        "timings": timings,
        "seconds_total": round(time.perf_counter() - t_start, 2),
    }
    log.info(
        "hotspots: %d units, %d incidents, %d months, %d hot units",
        summary["units"],
        summary["incidents_used"],
        n_months,
        summary["hot_units"],
    )
    return summary


def _kernel_density(con, units, crs: str, bw: float, n_months: int, cfg: dict) -> hs.KernelDensity:
    """Monthly density layers of every located incident (raster over the units + one bandwidth).

    The incidents are counted per raster cell × month inside DuckDB (the very binning of
    ``geo.hotspots.kernel_density``: ``floor((x − x0) / cell)``), and the counts enter the FFT
    as weights of the cell centres — the same raster as from the raw points, never a sample.
    """
    pminx, pminy, pmaxx, pmaxy = con.execute(
        f"SELECT min(x), min(y), max(x), max(y) FROM {_A}").fetchone()
    minx, miny, maxx, maxy = units.total_bounds
    bounds = (
        min(minx, pminx) - bw,
        min(miny, pminy) - bw,
        max(maxx, pmaxx) + bw,
        max(maxy, pmaxy) + bw,
    )
    cell = float(min(cfg["kde"]["cell_m"], bw / 2))
    # the raster is months × rows × columns of float64 (and an FFT of it): over a province at
    # 100 m that is billions of cells, so the cell grows with the area to stay within max_cells
    span = max(bounds[2] - bounds[0], cell) * max(bounds[3] - bounds[1], cell)
    need = span / cell**2 * max(n_months, 1)
    max_cells = int(cfg["kde"]["max_cells"])
    if need > max_cells:
        coarse = cell * math.sqrt(need / max_cells) * 1.01
        log.info("kde: %.0f km² over %d months: raster cell %.0f m instead of %.0f m "
                 "([hotspots.kde] max_cells = %d)", span / 1e6, n_months, coarse, cell, max_cells)
        cell = coarse
    x0, y0 = float(bounds[0]), float(bounds[1])
    b = con.execute(
        f"SELECT CAST(floor((x - $x0) / $cell) AS BIGINT) AS ix, "
        f"CAST(floor((y - $y0) / $cell) AS BIGINT) AS iy, month_idx, count(*) AS n "
        f"FROM {_A} GROUP BY ALL ORDER BY ALL", {"x0": x0, "y0": y0, "cell": cell}).fetchnumpy()
    px = x0 + (b["ix"].astype(float) + 0.5) * cell
    py = y0 + (b["iy"].astype(float) + 0.5) * cell
    return hs.kernel_density(
        np.column_stack([px, py]),
        bandwidth=bw,
        cell=cell,
        bounds=bounds,
        kernel=cfg["kde"]["kernel"],
        weights=b["n"].astype(float),
        layers=b["month_idx"].astype(np.int64),
        n_layers=n_months,
        crs=crs,
    )


def _risk_components(
    con, people: pd.DataFrame, uindex: pd.Index, n_months: int, risk_cfg: dict
) -> pd.DataFrame:
    """Raw risk components per unit: weighted recent incidents and the vulnerable people."""
    sevw = {int(k): float(v) for k, v in risk_cfg["severity_weights"].items()}
    catw = {str(k): float(v) for k, v in risk_cfg["category_weights"].items()}
    recent = con.execute(
        f"SELECT grid_id, category, severity, count(*) AS n FROM {_A} WHERE grid_id IS NOT NULL "
        f"AND month_idx >= {n_months - int(risk_cfg['months'])} GROUP BY ALL"
    ).df()
    recent["wn"] = (
        recent["n"]
        * recent["severity"].map(sevw).fillna(1.0)
        * recent["category"].map(catw).fillna(1.0)
    )
    comp = people[["elderly_alone", "disabled", "low_income", "special_units"]].copy()
    comp.insert(
        0, "incidents", recent.groupby("grid_id")["wn"].sum().reindex(uindex).fillna(0.0).to_numpy()
    )
    return comp


def _forecast(
    con, y_all, unit_ids, area_km2, w, people, kde_monthly, periods, start, fcfg: dict,
    fishnet_info: dict | None = None,
) -> dict:
    """Backtest, next-month forecast by every method, both tables written; summary returned.

    With ``[hotspots.forecast] equal_cells = true`` the same methods are also backtested on the
    equal-area fishnet of ``hotspot_fishnet`` (NIJ style: the budget is a share of equal cells,
    so ranking by count and by density agree); those rows have ``unit = 'cell'``.
    """
    static = np.log1p(
        people[["residents", "elderly_alone", "disabled", "low_income", "special_units"]].to_numpy(
            float
        )
    )
    kw = {
        "area": area_km2,
        "neighbours": w,
        "first_month": start.month,
        "static": static,
        "kde": kde_monthly,
        "kde_window": int(fcfg["kde_window"]),
        "train_window": fcfg["train_window"],
        "max_iter": int(fcfg["max_iter"]),
        "seed": int(fcfg["seed"]),
        "threads": fcfg["threads"],
    }
    n_orig = min(int(fcfg["backtest_months"]), len(periods) - (fc.MIN_LAG + 2))
    rank_by = str(fcfg.get("rank_by", "density"))
    bt = fc.backtest(y_all, n_origins=n_orig, shares=fcfg["area_shares"], periods=periods,
                     rank_by=rank_by, **kw)
    summ = fc.summarise_backtest(bt)
    bt_all = pd.concat([bt, summ], ignore_index=True)
    bt_all["unit"] = "grid"
    rec = fc.recommendation(summ)
    rec.insert(0, "unit", "grid")
    if fcfg.get("equal_cells") and fishnet_info is not None:
        n_cells = len(fishnet_info["centre"])
        yc = np.zeros((n_cells, len(periods)))
        np.add.at(yc, (fishnet_info["cell"], fishnet_info["month"]), fishnet_info["n"])
        kw_c = dict(kw, area=np.ones(n_cells), neighbours=hs.knn_weights(fishnet_info["centre"], k=8),
                    static=None, kde=None)
        bt_c = fc.backtest(yc, n_origins=n_orig, shares=fcfg["area_shares"], periods=periods,
                           rank_by="count", **kw_c)
        summ_c = fc.summarise_backtest(bt_c)
        bt_c = pd.concat([bt_c, summ_c], ignore_index=True)
        bt_c["unit"] = f"cell_{int(fishnet_info['size'])}m"
        bt_all = pd.concat([bt_all, bt_c], ignore_index=True)
        rec_c = fc.recommendation(summ_c)
        rec_c.insert(0, "unit", f"cell_{int(fishnet_info['size'])}m")
        rec = pd.concat([rec, rec_c], ignore_index=True)
    write_gdf(con, "forecast_backtest", bt_all)
    write_gdf(con, "forecast_recommendation", rec)
    nxt = fc.forecast_next(y_all, **kw)
    next_period = str(pd.Period(periods[-1], freq="M") + 1)
    rows = nxt.melt(ignore_index=False, var_name="method", value_name="predicted")
    rows["grid_id"] = unit_ids[rows.index.to_numpy()]
    rows["period"] = next_period
    rows["rank"] = (
        rows.groupby("method")["predicted"].rank(ascending=False, method="min").astype(int)
    )
    write_gdf(
        con,
        "forecast",
        rows[["grid_id", "period", "method", "predicted", "rank"]].reset_index(drop=True),
    )
    out = _forecast_summary(summ, next_period)
    out["ranked_by"] = rank_by
    out["recommendation"] = {
        str(r["unit"]): {k: (None if isinstance(v, float) and math.isnan(v) else v)
                         for k, v in r.items() if k not in ("text_zh", "unit")}
        for r in rec.to_dict("records")
    }
    return out


def _write_counts(con, counts, unit_ids, periods, area_km2, people) -> None:
    area = pd.Series(area_km2, index=unit_ids)
    res = people["residents"]
    frames = []
    by_cat_month = counts.copy()
    all_month = (
        counts.groupby(["grid_id", "month_idx"], as_index=False)["n"].sum().assign(category="all")
    )
    by_cat_all = (
        counts.groupby(["grid_id", "category"], as_index=False)["n"].sum().assign(month_idx=-1)
    )
    tot = counts.groupby("grid_id")["n"].sum().reindex(unit_ids).fillna(0)
    all_all = pd.DataFrame(
        {"grid_id": unit_ids, "category": "all", "month_idx": -1, "n": tot.to_numpy()}
    )
    for f in (all_all, all_month, by_cat_all, by_cat_month):
        frames.append(f[["grid_id", "category", "month_idx", "n"]])
    df = pd.concat(frames, ignore_index=True)
    labels = np.asarray(periods + ["all"], dtype=object)
    df["period"] = labels[df["month_idx"].to_numpy()]
    df["incidents"] = df["n"].astype(int)
    a = area.reindex(df["grid_id"]).to_numpy()
    r = res.reindex(df["grid_id"]).to_numpy()
    df["per_km2"] = np.where(a > 0, df["n"] / np.where(a > 0, a, 1), np.nan)
    df["per_1000_residents"] = np.where(r > 0, 1000 * df["n"] / np.where(r > 0, r, 1), np.nan)
    write_gdf(
        con,
        "incident_counts",
        df[["grid_id", "category", "period", "incidents", "per_km2", "per_1000_residents"]],
    )


def _write_density(con, kd: hs.KernelDensity, crs: str) -> None:
    dens = kd.density.sum(axis=0) if kd.density.ndim == 3 else kd.density
    cx, cy = kd.centres()
    keep = dens > dens.max() * 1e-3 if dens.max() > 0 else np.zeros(dens.shape, bool)
    tr = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    lon, lat = tr.transform(cx[keep], cy[keep])
    rows, cols = np.nonzero(keep)
    out = gpd.GeoDataFrame(
        {
            "cell_id": [f"K_{c}_{r}" for r, c in zip(rows, cols)],
            "density_per_km2": dens[keep],
            "cell_m": kd.cell,
            "bandwidth_m": kd.bandwidth,
        },
        geometry=shapely.points(lon, lat),
        crs="EPSG:4326",
    )
    write_gdf(con, "hotspot_density", out)


def _write_risk(con, comp: pd.DataFrame, risk_cfg: dict) -> None:
    """``grid_risk``: the index of the raw components, with each component's share as JSON."""
    risk = hs.risk_index(comp, risk_cfg["weights"], method=risk_cfg["normalise"])
    weights = {k: float(v) for k, v in risk_cfg["weights"].items()}
    names = [c[:-5] for c in risk.columns if c.endswith("_norm")]
    payload = []
    raw = comp.to_numpy(float)
    col_idx = {c: i for i, c in enumerate(comp.columns)}
    norm = {n: risk[f"{n}_norm"].to_numpy() for n in names}
    contrib = {n: risk[f"{n}_contribution"].to_numpy() for n in names}
    for i in range(len(comp)):
        payload.append(
            json.dumps(
                {
                    n: {
                        "raw": round(float(raw[i, col_idx[n]]), 4),
                        "normalised": round(float(norm[n][i]), 4),
                        "weight": weights.get(n, 0.0),
                        "contribution": round(float(contrib[n][i]), 4),
                    }
                    for n in names
                },
                ensure_ascii=False,
            )
        )
    out = pd.DataFrame(
        {
            "grid_id": comp.index.to_numpy(),
            "risk_score": risk["risk_score"].to_numpy(),
            "components": payload,
        }
    )
    write_gdf(con, "grid_risk", out)
    con.execute(
        "CREATE OR REPLACE TABLE grid_risk AS SELECT grid_id, risk_score, "
        "CAST(components AS JSON) AS components FROM grid_risk"
    )


def _forecast_summary(summ: pd.DataFrame, next_period: str) -> dict:
    out: dict[str, Any] = {"next_period": next_period}
    if summ.empty:
        return out
    pai = summ.pivot(index="method", columns="area_share", values="pai")
    out["mean_pai"] = {
        m: {f"{s:.0%}": (None if math.isnan(v) else round(float(v), 3)) for s, v in row.items()}
        for m, row in pai.iterrows()
    }
    share10 = min(pai.columns, key=lambda s: abs(s - 0.10))
    base = pai.loc[[m for m in pai.index if m != fc.MODEL], share10].dropna()
    if len(base) and fc.MODEL in pai.index:
        best = base.idxmax()
        out["best_baseline"] = str(best)
        out["model_vs_best_baseline_pai10"] = (
            round(float(pai.loc[fc.MODEL, share10] / base[best]), 3) if base[best] > 0 else None
        )
    return out


def _timeliness(con, tcfg: dict) -> pd.DataFrame:
    """``case_timeliness`` aggregated inside DuckDB (issue #13.2): the per-case rules of
    ``geo.timeliness.case_outcomes`` as SQL (``pipelines.aggregates.outcomes_sql``), grouped by
    grid, worker and street; Python reads one row per scope id. The cases are the incidents with
    an ``occurred_at``; a case's grid is the one the hot-spot join placed it in."""
    kw: dict[str, Any] = {
        "deadlines": tcfg["deadlines"],
        "category_deadlines": tcfg["category_deadlines"],
        "emergency_severity": int(tcfg["emergency_severity"]),
    }
    for k in ("utility_keywords", "complex_keywords"):
        if tcfg.get(k) is not None:
            kw[k] = tcfg[k]
    types = agg.column_types(con, "incidents")
    keys = {"grid": "nullif(trim(CAST(a.grid_id AS VARCHAR)), '')",
            "staff": agg.scope_key(types, "staff_id"),
            "street": agg.scope_key(types, "street_code")}
    scopes = {k: v for k, v in keys.items()
              if k == "grid" or {"staff": "staff_id", "street": "street_code"}[k] in types}
    per_case = agg.outcomes_sql(
        con, kw, select=[f"{v} AS {_q('k_' + k)}" for k, v in scopes.items()],
        joins=f"LEFT JOIN {_A} a ON a.rid = i.rowid", where="i.occurred_at IS NOT NULL")
    sets = ", ".join(f"({_q('k_' + k)})" for k in scopes)
    which = " ".join(f"WHEN grouping({_q('k_' + k)}) = 0 THEN '{k}'" for k in scopes)
    ids = ", ".join(_q("k_" + k) for k in scopes)
    sql = f"""
        SELECT CASE {which} END AS scope, coalesce({ids}) AS scope_id, count(*) AS cases,
               median(hours_to_respond) AS median_hours_to_respond,
               median(hours_to_close) AS median_hours_to_close,
               avg(on_time) AS on_time_rate, avg(repeat) AS repeat_rate,
               CAST(count(*) FILTER (WHERE due) AS BIGINT) AS due_cases,
               avg(respond_on_time) AS respond_on_time_rate,
               avg(close_on_time) AS close_on_time_rate
        FROM ({per_case}) GROUP BY GROUPING SETS ({sets})"""
    out = con.execute(sql).df()
    agg.drop_lookups(con)
    out = out[out["scope_id"].notna()]
    order = {k: i for i, k in enumerate(tl.DEFAULT_SCOPES)}
    out = out.assign(_s=out["scope"].map(order)).sort_values(["_s", "scope_id"], kind="stable")
    cols = ["scope", "scope_id", "cases", "median_hours_to_respond", "median_hours_to_close",
            "on_time_rate", "repeat_rate", "due_cases", "respond_on_time_rate",
            "close_on_time_rate"]
    out = out[cols].reset_index(drop=True)
    for c in ("cases", "due_cases"):
        out[c] = out[c].astype(np.int64)
    for c in cols[3:]:
        if c not in ("due_cases",):
            out[c] = out[c].astype(float)
    return out
