"""Benchmark of the hotspot analysis: Gi*, emerging hot spots and the whole stage, against esda.

Run from the repository root::

    python bench/bench_hotspots.py                       # 100k and 1M incidents
    python bench/bench_hotspots.py --sizes 100000 1000000 5000000
    python bench/bench_hotspots.py --no-stage            # Gi* / EHSA only (no demo city build)

Three parts, printed as Markdown tables for ``bench/RESULTS.md``:

1. **Gi* and EHSA vs esda** on N synthetic incidents (seeded: urban cores, uniform background
   and planted clusters over a 30 × 24 km area near Hohhot, 24 months) aggregated to 500 m
   cells (``--cell-m``). Ours: ``geo.hotspots.gi_star`` (one sparse product for every column)
   and ``emerging_hotspots`` (per-month Gi* + BH-FDR + vectorised Mann–Kendall + the 17
   classes). Reference: ``esda.G_Local(star=True, transform='B', permutations=0)`` once for the
   overall Gi* and once per month, ``scipy.stats.false_discovery_control`` per month and
   ``scipy.stats.kendalltau`` per location (esda has no emerging hot spot analysis). Both use the
   same libpysal KNN(k=8) weights; the table reports the largest z-score difference.
2. **The whole stage** (``pipelines.stage_hotspots.run``) over the demo city (``pipelines.demo``,
   full size, ~211k incidents) with its incidents resampled to N: a seeded sample below the
   demo's size, jittered copies (±50 m, ±12 h) above it. The ingest is not timed.
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
        from pipelines.demo import build_demo

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
        copies = int(np.ceil(n / base))
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
        con.execute(f"""
            CREATE OR REPLACE TABLE incidents AS
            SELECT {", ".join(sel)} FROM (
                SELECT *, {shift} AS s FROM (
                    SELECT *, (random() - 0.5) * 24 * INTERVAL 1 HOUR AS d
                    FROM incidents_demo, range({copies}) AS r(k)
                )
            ) USING SAMPLE reservoir({n} ROWS) REPEATABLE ({seed})
        """)
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
    args = ap.parse_args(argv)

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
