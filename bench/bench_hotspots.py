"""Benchmark of the hotspot analysis: Gi*, emerging hot spots and the whole stage, against esda.

Run from the repository root::

    python bench/bench_hotspots.py                       # 100k and 1M incidents
    python bench/bench_hotspots.py --sizes 100000 1000000 5000000
    python bench/bench_hotspots.py --no-stage            # Gi* / EHSA only (no demo city build)
    python bench/bench_hotspots.py --issue11 DEMO_DIR    # #11 figures on a built and run demo
    python bench/bench_hotspots.py --aggregates DEMO_DIR --sizes 10000000 \
        --baseline-code OLD_CHECKOUT                     # #13.2: hotspots + cases stages, RSS

Three parts, printed as Markdown tables for ``bench/RESULTS.md``:

1. **Gi* and EHSA vs esda** on N synthetic incidents (seeded: urban cores, uniform background
   and planted clusters over a 30 × 24 km area near Hohhot, 24 months) aggregated to 500 m
   cells (``--cell-m``). Ours: ``geo.hotspots.gi_star`` (one sparse product for every column)
   and ``emerging_hotspots`` (per-month Gi* + BH-FDR + vectorised Mann–Kendall + the 17
   classes). Reference: ``esda.G_Local(star=True, transform='B', permutations=0)`` once for the
   overall Gi* and once per month, ``scipy.stats.false_discovery_control`` per month and
   ``scipy.stats.kendalltau`` per location (esda has no emerging hot spot analysis). Both use the
   same libpysal KNN(k=8) weights; the table reports the largest z-score difference.
2. **The whole stage** (``pipelines.stage_hotspots.run``) over the demo city (``gridgov.demo_city``,
   full size, ~211k incidents) with its incidents resampled to N: a seeded sample below the
   demo's size, jittered copies (±50 m, ±12 h) above it. The ingest is not timed.
4. **Stages from aggregates** (issue #13.2, ``--aggregates DEMO_DIR``): the hotspot and cases
   stages over a demo folder already built and run (its grids), incidents resampled to N as in
   part 2; each stage runs in a child process of its own, so the peak RSS is that stage's, for
   this checkout and optionally for another one (``--baseline-code``, e.g. a ``git archive`` of
   the commit before).
3. **Quality on the demo city** as generated: planted hotspots found, hot shares, and the
   forecast backtest (PAI / hit rate at 5/10/20 % of the area) against the naive baselines, with
   the "in-sample mean" (mean of all months, the target month included) as a rough ceiling.

The machine may be shared: the load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from geo import hotspots as hs

CELL_M = 500.0
WIDTH, HEIGHT = 30_000.0, 24_000.0
MONTHS = 24


# --------------------------------------------------------------------------------------------
# part 1: Gi* and EHSA against esda
# --------------------------------------------------------------------------------------------


def synthetic_incidents(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n points (metres, origin at the area's lower-left corner) and their month index."""
    rng = np.random.default_rng(seed)
    cores = np.array([[9000, 12000, 2500], [18000, 9000, 3500], [21000, 17000, 2000]])
    n_bg, n_core = int(n * 0.25), int(n * 0.65)
    n_hot = n - n_bg - n_core
    xy = [rng.random((n_bg, 2)) * [WIDTH, HEIGHT]]
    k = rng.integers(0, len(cores), n_core)
    xy.append(cores[k, :2] + rng.normal(0, 1, (n_core, 2)) * cores[k, 2:3])
    planted = np.array([[5000, 5000], [25000, 20000], [15000, 3000], [12000, 20000]])
    k = rng.integers(0, len(planted), n_hot)
    xy.append(planted[k] + rng.normal(0, 300, (n_hot, 2)))
    month = rng.integers(0, MONTHS, n)
    # two planted clusters appear in the last 6 months only
    late = np.r_[np.zeros(n_bg + n_core, bool), k >= 2]
    month[late] = rng.integers(MONTHS - 6, MONTHS, late.sum())
    xy = np.vstack(xy)
    xy[:, 0] = np.clip(xy[:, 0], 0, WIDTH - 1e-6)
    xy[:, 1] = np.clip(xy[:, 1], 0, HEIGHT - 1e-6)
    return xy, month


def aggregate(xy: np.ndarray, month: np.ndarray, cell: float) -> np.ndarray:
    nx, ny = int(np.ceil(WIDTH / cell)), int(np.ceil(HEIGHT / cell))
    ix = (xy[:, 0] // cell).astype(np.int64)
    iy = (xy[:, 1] // cell).astype(np.int64)
    lin = month.astype(np.int64) * nx * ny + iy * nx + ix
    return np.bincount(lin, minlength=MONTHS * nx * ny).reshape(MONTHS, nx * ny).T.astype(float)


def esda_ehsa(y: np.ndarray, w, esda, stats) -> tuple[np.ndarray, float]:
    z = np.empty_like(y)
    p = np.empty_like(y)
    for t in range(y.shape[1]):
        g = esda.G_Local(y[:, t], w, star=True, transform="B", permutations=0)
        z[:, t] = g.Zs
        p[:, t] = stats.false_discovery_control(np.clip(2 * g.p_norm, 0, 1))
    ts = np.arange(y.shape[1])
    mk_p = np.array([stats.kendalltau(ts, z[i]).pvalue for i in range(len(z))])
    return z, float(np.nanmean(mk_p))


def _best(repeat: int, fn, *args, **kw):
    """Best wall time of ``repeat`` calls, and the result."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn(*args, **kw)
        times.append(time.perf_counter() - t)
    return min(times), out


def bench_gi(sizes: list[int], cell: float, repeat: int) -> pd.DataFrame:
    import esda
    import libpysal
    from scipy import stats

    rows = []
    for n in sizes:
        xy, month = synthetic_incidents(n)
        t0 = time.perf_counter()
        y = aggregate(xy, month, cell)
        t_agg = time.perf_counter() - t0
        keep = y.sum(axis=1) > 0  # occupied cells, as the stage does
        y = y[keep]
        nx = int(np.ceil(WIDTH / cell))
        idx = np.flatnonzero(keep)
        cxy = np.column_stack([(idx % nx + 0.5) * cell, (idx // nx + 0.5) * cell])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            w_lib = libpysal.weights.KNN(cxy, k=8)
        w = w_lib.sparse
        total = y.sum(axis=1)

        t_gi, (z, _) = _best(repeat, hs.gi_star, total, w)
        t_gi_esda, g = _best(
            repeat, esda.G_Local, total, w_lib, star=True, transform="B", permutations=0
        )
        t_eh, res = _best(repeat, hs.emerging_hotspots, y, w)
        t_eh_esda, (z_ref, _) = _best(repeat, esda_ehsa, y, w_lib, esda, stats)
        rows.append(
            {
                "incidents": f"{n:,}",
                "cells": len(y),
                "months": y.shape[1],
                "aggregate_s": t_agg,
                "gi_star_s": t_gi,
                "esda_gi_star_s": t_gi_esda,
                "ehsa_s": t_eh,
                "esda_ehsa_s": t_eh_esda,
                "speed-up_ehsa": t_eh_esda / t_eh,
                "max_abs_dz": max(np.abs(z - g.Zs).max(), np.abs(res.z - z_ref).max()),
                "hot_cells_fdr05": int((hs.fdr_bh(hs.gi_star(total, w).p) <= 0.05).sum()),
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# part 2 / 3: the stage on the demo city
# --------------------------------------------------------------------------------------------


def demo_database(workdir: Path, demo_dir: Path | None) -> tuple[Path, Path]:
    from pipelines.config import load_settings
    from pipelines.db import connect
    from pipelines.ingest import ingest

    if demo_dir is None:
        from gridgov.demo_city import build_demo

        demo_dir = workdir / "demo_full"
        t = time.perf_counter()
        build_demo(demo_dir, size="full", overwrite=True)
        print(f"demo city built in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    db = workdir / "demo.duckdb"
    con = connect(db)
    t = time.perf_counter()
    ingest(demo_dir, con, load_settings(demo_dir))
    con.close()
    print(f"demo ingested in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    return demo_dir, db


def resample_incidents(con, n: int, seed: int = 42) -> int:
    """Replace ``incidents`` by n rows drawn from the demo's own incidents."""
    base = con.execute("SELECT count(*) FROM incidents_demo").fetchone()[0]
    con.execute(f"SELECT setseed({(seed % 1000) / 1000})")
    if n <= base:
        con.execute(
            f"CREATE OR REPLACE TABLE incidents AS SELECT * FROM incidents_demo "
            f"USING SAMPLE reservoir({n} ROWS) REPEATABLE ({seed})"
        )
    else:
        # whole copies (k = 0 is the demo itself), then a seeded sample of one more copy for the
        # remainder: no reservoir of n rows in memory (10M rows and more)
        full, rem = divmod(n, base)
        cols = [r[0] for r in con.execute("DESCRIBE incidents_demo").fetchall()]
        # copies move by up to ±12 h, but never into another month (no partial extra month)
        shift = (
            "CASE WHEN date_trunc('month', occurred_at + d) = date_trunc('month', occurred_at) "
            "THEN d ELSE INTERVAL 0 HOUR END"
        )
        sel = []
        for c in cols:
            if c == "geometry":
                sel.append(
                    "CASE WHEN k = 0 THEN geometry ELSE ST_Point("
                    "ST_X(geometry) + (random() - 0.5) * 0.0012, "
                    "ST_Y(geometry) + (random() - 0.5) * 0.0009) END AS geometry"
                )
            elif c == "incident_id":
                sel.append("incident_id || '_' || k AS incident_id")
            elif c in ("occurred_at", "responded_at", "closed_at"):
                sel.append(f"CASE WHEN k = 0 THEN {c} ELSE {c} + s END AS {c}")
            else:
                sel.append(f'"{c}"')

        def copies(source: str, ks: str) -> str:
            return f"""
                SELECT {", ".join(sel)} FROM (
                    SELECT *, {shift} AS s FROM (
                        SELECT *, (random() - 0.5) * 24 * INTERVAL 1 HOUR AS d
                        FROM {source}, {ks} AS r(k)
                    )
                )"""

        con.execute(f"CREATE OR REPLACE TABLE incidents AS {copies('incidents_demo', f'range({full})')}")
        if rem:
            part = f"(SELECT * FROM incidents_demo USING SAMPLE reservoir({rem} ROWS) REPEATABLE ({seed}))"
            con.execute(f"INSERT INTO incidents {copies(part, f'range({full}, {full + 1})')}")
    return con.execute("SELECT count(*) FROM incidents").fetchone()[0]


def bench_stage(db: Path, sizes: list[int], workdir: Path) -> pd.DataFrame:
    from pipelines import stage_hotspots
    from pipelines.config import default_settings
    from pipelines.db import connect

    rows = []
    for n in sizes:
        path = workdir / f"stage_{n}.duckdb"
        shutil.copy(db, path)
        con = connect(path)
        con.execute("ALTER TABLE incidents RENAME TO incidents_demo")
        got = resample_incidents(con, n)
        con.execute("CHECKPOINT")
        t = time.perf_counter()
        s = stage_hotspots.run(con, default_settings())
        total = time.perf_counter() - t
        con.close()
        path.unlink()
        row = {
            "incidents": f"{got:,}",
            "units": s["units"],
            "months": s["months"],
            "stage_s": total,
        }
        row.update({f"{k}_s": v for k, v in s["timings"].items()})
        rows.append(row)
    return pd.DataFrame(rows)


#: Child process of part 4: run one stage of CODE on DB; print wall, CPU and peak RSS as JSON.
_STAGE_CHILD = r"""
import json, resource, sys, time
code, db, stage, mem = sys.argv[1:5]
sys.path.insert(0, code)
import importlib
from pipelines.config import default_settings
from pipelines.db import connect
mod = importlib.import_module(f"pipelines.stage_{stage}")
con = connect(db)
con.execute("SET enable_progress_bar = false")  # it writes to stdout, where the result goes
if mem:  # the same DuckDB limit for every checkout ([compute] memory_limit of a run)
    import re
    if not re.fullmatch(r"[0-9]+(?:[.][0-9]+)?(?:[KMGT]i?B)", mem):
        raise SystemExit(f"--memory-limit: not a size: {mem!r} (e.g. 4GB)")
    con.execute(f"SET memory_limit = '{mem}'")
    con.execute(f"SET temp_directory = '{db}.tmp'")
t, c = time.perf_counter(), time.process_time()
s = mod.run(con, default_settings())
out = {"wall_s": time.perf_counter() - t, "cpu_s": time.process_time() - c}
con.close()
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
out["timings"] = s.get("timings")
print("@@result " + json.dumps(out))
"""


def bench_aggregates(demo_dir: Path, sizes: list[int], workdir: Path, codes: dict[str, Path],
                     timeout: float, baseline_stages: tuple[str, ...] = ("hotspots", "cases"),
                     memory_limit: str = "4GB") -> pd.DataFrame:
    """Part 4: hotspots and cases stages per size and checkout, each stage in its own process."""
    import json
    import subprocess

    from pipelines.db import connect

    rows = []
    for n in sizes:
        base = workdir / f"agg_{n}.duckdb"
        shutil.copy(Path(demo_dir) / "gridgov.duckdb", base)
        con = connect(base)
        con.execute("ALTER TABLE incidents RENAME TO incidents_demo")
        got = resample_incidents(con, n)
        con.execute("DROP TABLE incidents_demo")
        con.execute("CHECKPOINT")
        con.close()
        for label, code in codes.items():
            for stage in ("hotspots", "cases"):
                if label == "baseline" and stage not in baseline_stages:
                    continue
                db = workdir / f"agg_{n}_{label}.duckdb"
                shutil.copy(base, db)
                row = {"code": label, "incidents": f"{got:,}", "stage": stage}
                try:
                    r = subprocess.run([sys.executable, "-c", _STAGE_CHILD, str(code), str(db), stage,
                                        memory_limit],
                                       capture_output=True, text=True, timeout=timeout, check=False)
                    if r.returncode:
                        row["error"] = (r.stderr.strip().splitlines() or ["?"])[-1][:120]
                    else:
                        res = json.loads(r.stdout.rsplit("@@result ", 1)[-1].strip())
                        row.update({k: res[k] for k in ("wall_s", "cpu_s", "peak_rss_mb")})
                except subprocess.TimeoutExpired:
                    row["error"] = f"timeout after {timeout:.0f} s"
                rows.append(row)
                db.unlink(missing_ok=True)
                shutil.rmtree(f"{db}.tmp", ignore_errors=True)
                print(row, file=sys.stderr)
        base.unlink(missing_ok=True)
    return pd.DataFrame(rows)


def bench_quality(db: Path, demo_dir: Path, workdir: Path):
    from geo import forecast as fc
    from pipelines import stage_hotspots
    from pipelines.config import default_settings
    from pipelines.db import connect

    path = workdir / "quality.duckdb"
    shutil.copy(db, path)
    con = connect(path)
    s = stage_hotspots.run(con, default_settings())
    truth = pd.read_csv(demo_dir / "truth" / "planted_hotspots.csv")
    live = (
        "new_hot",
        "consecutive_hot",
        "intensifying_hot",
        "persistent_hot",
        "diminishing_hot",
        "sporadic_hot",
        "oscillating_hot",
    )
    rows = []
    for _, h in truth.iterrows():
        # the disc in metres -> back to lon/lat for the test
        q = """
            WITH d AS (SELECT ST_Transform(ST_Buffer(ST_Transform(ST_Point(?, ?), 'EPSG:4326',
                         'EPSG:4546', always_xy := true), ?), 'EPSG:4546', 'EPSG:4326',
                         always_xy := true) AS g),
                 u AS (SELECT grid_id, ST_Contains(geometry, ST_Point(?, ?)) AS centre
                       FROM hotspot_units, d WHERE ST_Intersects(geometry, d.g))
            SELECT u.centre, h.hotspot_class, h.trend_class
            FROM hotspots h JOIN u USING (grid_id)
            WHERE h.period = 'all' AND h.category = ?
        """
        r = con.execute(q, [h.lon, h.lat, float(h.radius_m), h.lon, h.lat, h.category]).df()
        centre = r[r.centre]
        rows.append(
            {
                "hotspot": h.hotspot_id,
                "category": h.category,
                "kind": h.kind,
                "radius_m": h.radius_m,
                "extra_incidents": h.get("extra_incidents", np.nan),
                "centre_cell_class": centre["hotspot_class"].iloc[0] if len(centre) else "-",
                "centre_cell_trend": centre["trend_class"].iloc[0] if len(centre) else "-",
                "hot_in_disc": bool(r["hotspot_class"].isin(["hot_99", "hot_95"]).any()),
                "live_trend_in_disc": bool(r["trend_class"].isin(live).any()),
            }
        )
    found = pd.DataFrame(rows)
    found["found"] = found["hot_in_disc"] | found["live_trend_in_disc"]
    live_sql = ", ".join(f"'{c}'" for c in live)
    shares = con.execute(f"""
        SELECT category, count(*) AS units,
               avg((hotspot_class IN ('hot_99', 'hot_95'))::INT) AS share_hot_95,
               avg((trend_class IN ({live_sql}))::INT) AS share_live_hot_trend
        FROM hotspots WHERE period = 'all' GROUP BY 1 ORDER BY 1""").df()
    bt = con.execute("SELECT * FROM forecast_backtest WHERE target_period <> 'mean'").df()
    # rough ceiling: rank by the mean of all months (target month included)
    y = con.execute(
        "SELECT grid_id, period, incidents FROM incident_counts "
        "WHERE category = 'all' AND period <> 'all'"
    ).df()
    units = con.execute("SELECT grid_id, area_km2 FROM hotspot_units").df()
    panel = (
        y.pivot(index="grid_id", columns="period", values="incidents")
        .reindex(units["grid_id"])
        .fillna(0.0)
    )
    area = units["area_km2"].to_numpy()
    ceiling = []
    for tp in sorted(bt["target_period"].unique()):
        for share in sorted(bt["area_share"].unique()):
            hr, pai = fc.hit_rate_pai(
                panel.mean(axis=1).to_numpy(), panel[tp].to_numpy(), area, share
            )
            ceiling.append(
                {
                    "target_period": tp,
                    "method": "in_sample_mean (ceiling)",
                    "area_share": share,
                    "hit_rate": hr,
                    "pai": pai,
                }
            )
    bt = pd.concat([bt, pd.DataFrame(ceiling)], ignore_index=True)
    summ = bt.groupby(["method", "area_share"])[["hit_rate", "pai"]].mean().reset_index()
    table = summ.pivot(index="method", columns="area_share", values="pai")
    table.columns = [f"PAI {c:.0%}" for c in table.columns]
    hr = summ.pivot(index="method", columns="area_share", values="hit_rate")
    hr.columns = [f"hit rate {c:.0%}" for c in hr.columns]
    table = table.join(hr).reset_index()
    con.close()
    path.unlink()
    return found, shares, table, s


# --------------------------------------------------------------------------------------------
# part 4 (issue #11): verdict, trends, honest forecast and early warning on a built demo city
# --------------------------------------------------------------------------------------------


def _planted_grids(con, truth: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for h in truth.itertuples():
        g = con.execute(
            "SELECT grid_id FROM hotspot_units WHERE ST_Contains(geometry, ST_Point(?, ?))",
            [float(h.lon), float(h.lat)],
        ).fetchone()
        rows.append({"hotspot": h.hotspot_id, "category": h.category, "kind": h.kind,
                     "extra_incidents": getattr(h, "extra_incidents", np.nan),
                     "grid_id": g[0] if g else None})
    return pd.DataFrame(rows)


def _far_from_planted(con, grid_ids, truth: pd.DataFrame, km: float = 1.5) -> int:
    if len(grid_ids) == 0:
        return 0
    from pyproj import Transformer

    tr = Transformer.from_crs("EPSG:4326", "EPSG:4546", always_xy=True)
    px, py = tr.transform(truth["lon"].to_numpy(), truth["lat"].to_numpy())
    c = con.execute(
        "SELECT grid_id, ST_X(ST_Centroid(geometry)) x, ST_Y(ST_Centroid(geometry)) y "
        "FROM hotspot_units"
    ).df().set_index("grid_id").loc[list(grid_ids)]
    gx, gy = tr.transform(c["x"].to_numpy(), c["y"].to_numpy())
    d = np.hypot(gx[:, None] - px[None, :], gy[:, None] - py[None, :]).min(axis=1)
    return int((d > km * 1000).sum())


def quality_issue11(demo_dir: Path, workdir: Path, *, burst: int = 30) -> dict:
    """Figures of issue #11 on a demo folder already built and run (``gridgov run``).

    1. planted spots: class of the grid under each planted centre in category 'any', its own
       category and 'all', its trend class; hot grids > 1.5 km from every planted spot;
    2. forecast: backtest means (grid, ranked by density; equal cells) and the recommendation;
    3. early warning: alerts of the run; the detector re-run at every month end of the last
       year (30 monitored days each) — alerts within 1.5 km of a planted spot that is active
       then (same category or 'all') count as true, the others as false;
    4. a burst of ``burst`` incidents over the last 7 days at one building, written into a copy
       of the database and the hotspot stage re-run: is the alert at the right grid and window?
    """
    from geo import alerts as al
    from pipelines import stage_hotspots
    from pipelines.config import load_settings
    from pipelines.db import connect

    out: dict = {}
    db = demo_dir / "gridgov.duckdb"
    truth = pd.read_csv(demo_dir / "truth" / "planted_hotspots.csv")
    con = connect(db, read_only=True)
    try:
        pg = _planted_grids(con, truth)
        h = con.execute("SELECT grid_id, category, hotspot_class, trend_class FROM hotspots "
                        "WHERE period = 'all'").df().set_index(["grid_id", "category"])

        def get(g, c, col):
            return h[col].get((g, c), "-") if g else "-"

        pg["any"] = [get(g, "any", "hotspot_class") for g in pg["grid_id"]]
        pg["own_category"] = [get(g, c, "hotspot_class") for g, c in zip(pg["grid_id"], pg["category"])]
        pg["all"] = [get(g, "all", "hotspot_class") for g in pg["grid_id"]]
        pg["trend_own"] = [get(g, c, "trend_class") for g, c in zip(pg["grid_id"], pg["category"])]
        out["planted"] = pg
        hot = {}
        for cat in ("any", "all"):
            ids = [g for (g, c), v in h["hotspot_class"].items() if c == cat and str(v).startswith("hot")]
            hot[cat] = {"hot_grids": len(ids), "far_1_5km": _far_from_planted(con, ids, truth)}
        out["hot"] = hot
        out["backtest"] = con.execute(
            "SELECT unit, method, area_share, pai, hit_rate, pei FROM forecast_backtest "
            "WHERE target_period = 'mean' ORDER BY unit, area_share, pai DESC").df()
        out["recommendation"] = con.execute("SELECT * FROM forecast_recommendation").df()
        out["alerts_run"] = con.execute("SELECT * EXCLUDE (geometry) FROM alerts").df()
    finally:
        con.close()

    # 3. the detector at every month end of the last year
    path = workdir / "issue11.duckdb"
    shutil.copy(db, path)
    con = connect(path)
    try:
        settings = load_settings(demo_dir)
        cfg = stage_hotspots.settings_of(settings)
        crs = stage_hotspots._metric_crs(con, settings)
        units, _ = stage_hotspots._units(con, cfg, crs)
        units4326 = units.to_crs("EPSG:4326")
        stage_hotspots._assign_incidents(con, units4326)
        rows = con.execute(f"SELECT grid_id, category, day, count(*) n FROM {stage_hotspots._A} "
                           "WHERE grid_id IS NOT NULL GROUP BY ALL").df()
        hh = dict(con.execute("SELECT grid_id, households FROM grids").fetchall())
    finally:
        con.close()
    acfg = cfg["alerts"]
    ids = units["grid_id"].to_numpy(dtype=object)
    uidx = pd.Index(ids)
    first = pd.Timestamp(rows["day"].min())
    last = pd.Timestamp(rows["day"].max())
    days = pd.date_range(first, last, freq="D")
    gi = uidx.get_indexer(rows["grid_id"])
    di = (pd.to_datetime(rows["day"]) - first).dt.days.to_numpy()
    cats = rows.groupby("category")["n"].sum().sort_values(ascending=False, kind="mergesort").index[
        : int(acfg["max_categories"])].tolist()
    households = np.array([float(hh.get(g, 0) or 0) for g in ids])
    panels = {}
    for cat in ["all"] + cats:
        sel = np.ones(len(rows), bool) if cat == "all" else (rows["category"] == cat).to_numpy()
        y = np.zeros((len(ids), len(days)))
        np.add.at(y, (gi[sel], di[sel]), rows["n"].to_numpy(float)[sel])
        panels[cat] = y
    ends = pd.date_range(last - pd.DateOffset(months=11), last, freq="ME")
    found = []
    for end in ends:
        k = int((end - first).days) + 1
        for cat, y in panels.items():
            det = al.detect(y[:, :k], days[:k], ids, households=households, category=cat,
                            windows=acfg["windows_days"], monitor_days=30,
                            history_days=int(acfg["history_days"]),
                            recurrence_days=float(acfg["recurrence_days"]),
                            prior_incidents=float(acfg["prior_incidents"]),
                            n_categories=len(panels))
            if len(det.alerts):
                found.append(det.alerts.assign(run_end=end))
    retro = pd.concat(found, ignore_index=True) if found else pd.DataFrame()
    if len(retro):
        from pyproj import Transformer

        tr = Transformer.from_crs("EPSG:4326", "EPSG:4546", always_xy=True)
        cen = units.set_index("grid_id").geometry.centroid
        px, py = tr.transform(truth["lon"].to_numpy(), truth["lat"].to_numpy())
        start = pd.PeriodIndex(truth["start_month"], freq="M").to_timestamp()
        true = []
        for a in retro.itertuples():
            c = cen.loc[a.grid_id]
            d = np.hypot(c.x - px, c.y - py)
            ok = (d <= 1500) & ((truth["category"] == a.category) | (a.category == "all")).to_numpy() & (
                np.asarray(start <= pd.Timestamp(a.window_end)))
            true.append(bool(ok.any()))
        retro["near_planted"] = true
    out["retro"] = retro
    out["retro_months"] = len(ends)

    # 4. a planted burst in the last week
    con = connect(path)
    try:
        b = con.execute(
            "SELECT b.building_id, m.grid_id, ST_X(ST_PointOnSurface(b.geometry)) x, "
            "ST_Y(ST_PointOnSurface(b.geometry)) y FROM buildings b JOIN grid_members m "
            "ON CAST(m.building_id AS VARCHAR) = CAST(b.building_id AS VARCHAR) "
            "WHERE b.households >= 30 ORDER BY b.building_id LIMIT 1 OFFSET 1000").fetchone()
        cols = [r[0] for r in con.execute("DESCRIBE incidents").fetchall()]
        base = con.execute("SELECT * FROM incidents LIMIT 1").df()
        rng = np.random.default_rng(11)
        new = pd.concat([base] * burst, ignore_index=True)
        new["incident_id"] = [f"BURST{k:03d}" for k in range(burst)]
        bdays = pd.date_range(last - pd.Timedelta(days=6), last, freq="D")
        new["occurred_at"] = bdays[rng.integers(0, len(bdays), burst)] + pd.Timedelta(hours=9)
        new["category"] = "all_burst" if "category" not in cols else base["category"].iloc[0]
        for c in ("responded_at", "closed_at", "accepted_at", "dispatched_at"):
            if c in new.columns:
                new[c] = new["occurred_at"] + pd.Timedelta(hours=2)
        new = new.drop(columns=["geometry"])
        con.register("__burst", new)
        sel = ", ".join(f'"{c}"' if c != "geometry" else "ST_Point(?, ?) AS geometry" for c in cols)
        con.execute(f"INSERT INTO incidents SELECT {sel} FROM __burst", [b[2], b[3]])
        con.unregister("__burst")
        s = stage_hotspots.run(con, dict(settings, hotspots=dict(settings.get("hotspots") or {},
                                                                 forecast={"enabled": False})))
        al_df = con.execute("SELECT * EXCLUDE (geometry) FROM alerts").df()
    finally:
        con.close()
        path.unlink(missing_ok=True)
    out["burst"] = {"grid_id": b[1], "days": (str(bdays[0].date()), str(bdays[-1].date())),
                    "incidents": burst, "alerts": al_df, "summary": s.get("alerts")}
    return out


def print_issue11(q: dict) -> None:
    pg = q["planted"]
    print("### Planted spots of the demo city: class of the grid under each planted centre\n")
    print(md(pg.drop(columns=["grid_id"])))
    n = len(pg)
    print(f"\nhot in 'any': {int(pg['any'].str.startswith('hot').sum())} of {n}; in their own category: "
          f"{int(pg['own_category'].str.startswith('hot').sum())} of {n}; in 'all': "
          f"{int(pg['all'].str.startswith('hot').sum())} of {n}; trend class = planted kind: "
          f"{int(sum(t == f'{k}_hot' for t, k in zip(pg['trend_own'], pg['kind'])))} of {n}\n")
    for cat, v in q["hot"].items():
        print(f"- category '{cat}': {v['hot_grids']} hot grids, {v['far_1_5km']} of them > 1.5 km "
              "from every planted spot")
    print("\n### Forecast backtest (mean over the rolling origins)\n")
    print(md(q["backtest"]))
    print("\n" + md(q["recommendation"].drop(columns=["text_zh"])))
    r = q["retro"]
    n_true = int(r["near_planted"].sum()) if len(r) else 0
    print(f"\n### Early warning\n\nalerts of the run: {len(q['alerts_run'])}; detector re-run at "
          f"{q['retro_months']} month ends (30 days monitored each): {len(r)} alerts, {n_true} within "
          f"1.5 km of an active planted spot, {len(r) - n_true} elsewhere")
    if len(r):
        print("\n" + md(r[["run_end", "grid_id", "category", "window_start", "window_end", "observed",
                             "expected", "recurrence_days", "near_planted"]]))
    b = q["burst"]
    a = b["alerts"]
    hit = a[a["grid_id"] == b["grid_id"]]
    print(f"\nplanted burst: {b['incidents']} incidents at one building of grid {b['grid_id']}, "
          f"{b['days'][0]}–{b['days'][1]}: {len(hit)} alert(s) at that grid; {len(a) - len(hit)} elsewhere")
    if len(a):
        print("\n" + md(a[["grid_id", "category", "detected_at", "window_start", "window_end", "observed",
                             "expected", "recurrence_days", "owner_staff_id", "status"]]))


# --------------------------------------------------------------------------------------------


def md(df: pd.DataFrame) -> str:
    def fmt(v):
        if isinstance(v, float):
            return (
                f"{v:.3g}"
                if abs(v) < 1e-3 and v != 0
                else f"{v:,.3f}"
                if abs(v) < 10
                else f"{v:,.1f}"
            )
        return str(v)

    head = "| " + " | ".join(df.columns) + " |"
    sep = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, sep, *body])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--cell-m", type=float, default=CELL_M)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-stage", action="store_true", help="skip parts 2 and 3 (no demo city)")
    ap.add_argument("--demo-dir", type=Path, default=None, help="an existing full demo folder")
    ap.add_argument("--issue11", type=Path, default=None, metavar="DEMO_DIR",
                    help="only the #11 figures on a demo folder already built and run")
    ap.add_argument("--aggregates", type=Path, default=None, metavar="DEMO_DIR",
                    help="only part 4 (#13.2) on a demo folder already built and run")
    ap.add_argument("--baseline-code", type=Path, default=None,
                    help="part 4: also run the stages of this checkout (e.g. the commit before)")
    ap.add_argument("--baseline-stages", nargs="+", default=["hotspots", "cases"],
                    help="part 4: the stages run with --baseline-code (the old cases stage holds "
                         "every incident in pandas: ~1.5 GB per million)")
    ap.add_argument("--timeout", type=float, default=1800.0, help="part 4: seconds per stage")
    ap.add_argument("--memory-limit", default="4GB",
                    help="part 4: DuckDB memory_limit of every stage process ('' = DuckDB's default)")
    args = ap.parse_args(argv)
    if args.aggregates is not None:
        codes = {"this": Path(__file__).resolve().parents[1]}
        if args.baseline_code is not None:
            codes = {"baseline": args.baseline_code.resolve(), **codes}
        print(f"### Hotspots and cases stages from aggregates (#13.2), DuckDB memory_limit "
              f"{args.memory_limit or 'default'}, load average {os.getloadavg()[0]:.1f}\n")
        with tempfile.TemporaryDirectory(prefix="bench_aggregates_") as tmp:
            print(md(bench_aggregates(args.aggregates, args.sizes, Path(tmp), codes, args.timeout,
                                      tuple(args.baseline_stages), args.memory_limit)))
        return
    if args.issue11 is not None:
        with tempfile.TemporaryDirectory(prefix="bench_hotspots_") as tmp:
            print_issue11(quality_issue11(args.issue11, Path(tmp)))
        return

    print(f"## Hotspots benchmark ({time.strftime('%Y-%m-%d %H:%M')})\n")
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; load average at start {os.getloadavg()[0]:.1f} "
        "(the machine is shared; times are the best of the repeats)\n"
    )
    print(
        f"### Gi* and emerging hot spots vs esda ({args.cell_m:.0f} m cells, occupied cells, "
        "KNN k=8)\n"
    )
    print(md(bench_gi(args.sizes, args.cell_m, args.repeat)))
    print()
    if args.no_stage:
        return
    with tempfile.TemporaryDirectory(prefix="bench_hotspots_") as tmp:
        work = Path(tmp)
        demo_dir, db = demo_database(work, args.demo_dir)
        print("### Whole hotspot stage over the demo city (incidents resampled)\n")
        print(md(bench_stage(db, args.sizes, work)))
        print(f"\nload average after the stage runs {os.getloadavg()[0]:.1f}\n")
        found, shares, pai, s = bench_quality(db, demo_dir, work)
        print("### Planted hotspots of the demo city (category analysis, 500 m cells)\n")
        print(md(found))
        print(
            f"\nfound: {int(found['found'].sum())} of {len(found)} "
            f"(recall {found['found'].mean():.2f}); centre cell hot (99/95 %) in the overall "
            f"analysis: {int(found['centre_cell_class'].isin(['hot_99', 'hot_95']).sum())} of "
            f"{len(found)}\n"
        )
        print("Share of units flagged, per category (how selective the flags are):\n")
        print(md(shares))
        print()
        print(
            f"### Forecast backtest on the demo city ({s['units']} units; mean over the "
            "rolling-origin months)\n"
        )
        print(md(pai))
        f = s["forecast"]
        print(
            f"\nbest baseline at 10 %: {f.get('best_baseline')}; model / best baseline PAI "
            f"at 10 %: {f.get('model_vs_best_baseline_pai10')}\n"
        )


if __name__ == "__main__":
    main()
