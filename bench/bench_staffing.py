"""Benchmark of the staffing model: allocation for 100 streets and 10,000 grids, what-if latency.

Run from the repository root::

    python bench/bench_staffing.py            # pure model + the whole stage on DuckDB
    python bench/bench_staffing.py --no-stage # pure model only

A synthetic district (seeded): 100 streets × 10 communities × 10 grids = 10,000 grids, 2 % of
them dedicated, ~9,000 grid workers, incident groups for every grid. Times are medians of
repeated runs on this machine; the figures go to ``bench/RESULTS.md``.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from geo import staffing as st
from geo.apportion import apportion

N_STREETS, COMMS_PER_STREET, GRIDS_PER_COMM = 100, 10, 10
CATEGORIES = ["dispute", "safety_hazard", "sanitation", "public_order", "12345_heating",
              "12345_water", "noise", "parking"]


def synthetic_district(seed: int = 0) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    streets = pd.DataFrame({
        "street_code": [f"150102{i:03d}000" for i in range(N_STREETS)],
        "function_type": rng.choice(list(st.FUNCTION_TYPES), N_STREETS),
        "area_km2": rng.lognormal(1.5, 0.8, N_STREETS),
    })
    comm = pd.DataFrame({
        "community_code": [f"{s[:9]}{k:03d}" for s in streets["street_code"]
                           for k in range(COMMS_PER_STREET)],
        "street_code": np.repeat(streets["street_code"].to_numpy(), COMMS_PER_STREET),
        "kind": rng.choice(["urban", "rural"], N_STREETS * COMMS_PER_STREET, p=[0.8, 0.2]),
    })
    n = len(comm) * GRIDS_PER_COMM
    grids = pd.DataFrame({
        "grid_id": [f"{c}{k:03d}" for c in comm["community_code"] for k in range(GRIDS_PER_COMM)],
        "community_code": np.repeat(comm["community_code"].to_numpy(), GRIDS_PER_COMM),
        "street_code": np.repeat(comm["street_code"].to_numpy(), GRIDS_PER_COMM),
        "kind": np.repeat(comm["kind"].to_numpy(), GRIDS_PER_COMM),
        "grid_type": np.where(rng.random(n) < 0.02, "dedicated", "basic"),
        "households": rng.integers(250, 550, n),
        "residents": rng.integers(500, 1400, n).astype(float),
        "renters": rng.integers(0, 60, n), "elderly_alone": rng.integers(0, 30, n),
        "disabled": rng.integers(0, 15, n), "low_income": rng.integers(0, 15, n),
        "area_km2": rng.lognormal(-1.5, 0.7, n),
    })
    comm["area_km2"] = grids.groupby("community_code")["area_km2"].sum().reindex(
        comm["community_code"]).to_numpy()
    k = n * 6
    incidents = pd.DataFrame({
        "grid_id": rng.choice(grids["grid_id"].to_numpy(), k),
        "category": rng.choice(CATEGORIES, k), "severity": rng.integers(1, 6, k),
        "n": rng.poisson(8, k),
    }).groupby(["grid_id", "category", "severity"], as_index=False)["n"].sum()
    special = pd.DataFrame({
        "grid_id": grids.loc[grids["grid_type"] == "dedicated", "grid_id"].to_numpy(),
    })
    special["unit_type"] = rng.choice(["school", "hospital", "market", "industrial_park"],
                                      len(special))
    m = 9_000
    gid = rng.choice(grids["grid_id"].to_numpy(), m)
    staff = pd.DataFrame({
        "staff_id": [f"W{i:05d}" for i in range(m)],
        "grid_id": np.where(rng.random(m) < 0.7, gid, None),
        "community_code": pd.Series(gid).str[:12].to_numpy(),
        "street_code": pd.Series(gid).str[:9].to_numpy() + "000",
        "role": rng.choice(["full_time", "part_time"], m, p=[0.85, 0.15]),
    })
    return {"streets": streets, "communities": comm, "grids": grids, "incidents": incidents,
            "special_units": special, "staff": staff}


def full_model(d: dict[str, pd.DataFrame], budget: int) -> tuple[st.Allocation, pd.DataFrame]:
    """Workload of every grid → staffing → street allocation → community split."""
    grids = d["grids"]
    wl = st.unit_workload(grids, incidents=d["incidents"], special_units=d["special_units"], months=12)
    units = grids.join(wl)
    assignments = st.assign_staff(d["staff"], units)
    grid = st.grid_staffing(units, assignments)
    basic = grid[grid["staff_source"] == "street"]
    by_street = basic.groupby("street_code").agg(workload=("workload", "sum"),
                                                 residents=("residents", "sum"))
    by_street["current_staff"] = d["staff"].groupby("street_code").size()
    streets = d["streets"].join(by_street, on="street_code")
    alloc = st.allocate(streets, budget, minimum=10)
    by_comm = basic.groupby("community_code").agg(workload=("workload", "sum"),
                                                  residents=("residents", "sum"))
    comm = d["communities"].join(by_comm, on="community_code")
    nested = st.allocate_nested(comm, alloc.recommended.to_dict(), minimum=1)
    return alloc, nested


def timed(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def bench_model(rows: list[tuple[str, float]]) -> None:
    d = synthetic_district()
    grids = d["grids"]
    t, wl = timed(lambda: st.unit_workload(grids, incidents=d["incidents"],
                                           special_units=d["special_units"], months=12), 5)
    rows.append((f"workload model, 10,000 grids (+ {len(d['incidents']):,} incident groups)", t))
    units = grids.join(wl)
    t, a = timed(lambda: st.assign_staff(d["staff"], units), 5)
    rows.append(("place 9,000 workers on grids", t))
    t, _ = timed(lambda: st.grid_staffing(units, a), 5)
    rows.append(("grid staffing (required, current, gap)", t))
    t, (alloc, _) = timed(lambda: full_model(d, 10_000), 5)
    rows.append((("**whole model: 10,000 grids → 100 streets → 1,000 communities, "
                 "budget 10,000**"), t))
    streets = alloc.inputs
    small = st.allocate(streets, 1_200, minimum=10)
    t, _ = timed(lambda: st.allocate(streets, 1_200, minimum=10), 20)
    rows.append(("allocate 100 streets, budget 1,200 (the contract's example)", t))
    t, _ = timed(lambda: st.whatif(small, budget=1_300), 20)
    rows.append(("what-if on it: budget 1,200 → 1,300", t))
    t, _ = timed(lambda: st.allocate(streets, 10_000, minimum=10), 20)
    rows.append(("allocate 100 streets, budget 10,000 (score + Webster + equity)", t))
    t, _ = timed(lambda: st.allocate(streets, 10_000, minimum=10, method="huntington_hill"), 20)
    rows.append(("allocate 100 streets, Huntington–Hill", t))
    target = streets["street_code"].iloc[0]
    t, w = timed(lambda: st.whatif(alloc, budget=10_200), 20)
    rows.append(("what-if: budget 10,000 → 10,200", t))
    t, _ = timed(lambda: st.whatif(alloc, function_type={target: "core_commercial"}), 20)
    rows.append(("what-if: one street's function type", t))
    t, _ = timed(lambda: st.whatif(alloc, weights={"workload": 0.8, "residents": 0.2, "area": 0}), 20)
    rows.append(("what-if: score weights", t))
    t, _ = timed(lambda: st.equity_summary(alloc.table), 20)
    rows.append(("equity summary (Gini etc.)", t))
    rng = np.random.default_rng(1)
    for seats, n in ((1_000, 100), (10_000, 100), (100_000, 1_000)):
        w = rng.lognormal(0, 1, n)
        t, _ = timed(lambda w=w, seats=seats: apportion(w, seats, minimum=1), 3)
        rows.append((f"apportion alone: {seats:,} seats over {n:,} units", t))


def bench_stage(rows: list[tuple[str, float]]) -> None:
    """The whole stage on DuckDB: 10,000 grid squares, 50,000 buildings, 200,000 incidents."""
    import geopandas as gpd
    import shapely

    from pipelines import stage_staffing
    from pipelines.db import connect, write_gdf

    d = synthetic_district()
    rng = np.random.default_rng(2)
    g = d["grids"].copy()
    side = 100  # 100 × 100 squares of 0.002° near Hohhot
    ix, iy = np.arange(len(g)) % side, np.arange(len(g)) // side
    x0, y0, s = 111.55 + ix * 0.002, 40.75 + iy * 0.002, 0.002
    g["plan_id"] = "P1"
    grids = gpd.GeoDataFrame(g, geometry=shapely.box(x0, y0, x0 + s, y0 + s), crs="EPSG:4326")
    nb = 50_000
    gi = rng.integers(0, len(g), nb)
    buildings = gpd.GeoDataFrame({
        "building_id": [f"B{i:06d}" for i in range(nb)],
        "households": rng.integers(20, 120, nb), "residents": rng.integers(40, 300, nb),
        "elderly_alone": rng.integers(0, 6, nb), "disabled": rng.integers(0, 3, nb),
        "low_income": rng.integers(0, 3, nb), "renters": rng.integers(0, 12, nb),
        "community_code": g["community_code"].to_numpy()[gi],
        "street_code": g["street_code"].to_numpy()[gi],
    }, geometry=shapely.points(x0[gi] + s / 2, y0[gi] + s / 2), crs="EPSG:4326")
    members = pd.DataFrame({"building_id": buildings["building_id"], "grid_id": g["grid_id"].to_numpy()[gi],
                            "plan_id": "P1"})
    ni = 200_000
    ii = rng.integers(0, len(g), ni)
    occurred = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 730 * 24, ni), unit="h")
    incidents = gpd.GeoDataFrame({
        "incident_id": [f"E{i:07d}" for i in range(ni)], "occurred_at": occurred,
        "category": rng.choice(CATEGORIES, ni), "severity": rng.integers(1, 6, ni),
        "responded_at": occurred + pd.to_timedelta(rng.integers(1, 30, ni), unit="h"),
        "closed_at": occurred + pd.to_timedelta(rng.integers(2, 300, ni), unit="h"),
        "staff_id": d["staff"]["staff_id"].to_numpy()[rng.integers(0, len(d["staff"]), ni)],
        "repeat_of": None, "community_code": g["community_code"].to_numpy()[ii],
        "street_code": g["street_code"].to_numpy()[ii],
    }, geometry=shapely.points(x0[ii] + rng.random(ni) * s, y0[ii] + rng.random(ni) * s),
        crs="EPSG:4326")
    con = connect()
    write_gdf(con, "streets", d["streets"].assign(street_name="街道"))
    write_gdf(con, "communities", d["communities"].assign(community_name="社区"))
    write_gdf(con, "grids", grids)
    write_gdf(con, "grid_members", members)
    write_gdf(con, "buildings", buildings)
    write_gdf(con, "incidents", incidents)
    sp = grids[grids["grid_type"] == "dedicated"][["grid_id", "community_code", "street_code", "geometry"]]
    write_gdf(con, "special_units", sp.assign(unit_id=sp["grid_id"], unit_name="单位", unit_type="school",
                                              households=0, headcount=100))
    write_gdf(con, "staff", d["staff"])
    settings = {"allocation": {"budget": 10_000, "min_per_street": 10}}
    t, _ = timed(lambda: stage_staffing.run(con, settings), 3)
    rows.append((("**whole stage on DuckDB** (10,000 grids, 50,000 buildings, "
                 "200,000 incidents)"), t))
    out = Path(tempfile.mkdtemp()) / "report.xlsx"
    t, _ = timed(lambda: stage_staffing.export_report(con, out), 1)
    rows.append(("Excel report (5 sheets, 10,000 grid rows)", t))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-stage", action="store_true", help="skip the DuckDB stage benchmark")
    args = ap.parse_args()
    rows: list[tuple[str, float]] = []
    bench_model(rows)
    if not args.no_stage:
        bench_stage(rows)
    print(f"## Staffing (bench/bench_staffing.py) — {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}, pandas {pd.__version__}, "
          f"load average at the end {os.getloadavg()[0]:.1f}\n")
    print("| step | median time |\n|---|---:|")
    for name, t in rows:
        print(f"| {name} | {t * 1000:,.1f} ms |")


if __name__ == "__main__":
    main()
