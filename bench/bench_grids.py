"""Benchmark: the gridgov grid engine against PySAL spopt (MaxPHeuristic, Skater).

Run from the repository root::

    python bench/bench_grids.py                       # 10k buildings, all three methods
    python bench/bench_grids.py --sizes 10000 50000 --spopt-max 10000 --n-jobs 2
    python bench/bench_grids.py --demo demo-city [--start-from-current-grids]   # issues #8, #10
    python bench/bench_grids.py --single-machine --sizes 10000 200000             # issue #13.5

Every method works on the same cells (one per building, from ``geo.grids.build_cells``), the
same contiguity (``cell_adjacency``: rook, barriers cut) and the same dedicated grids; every
method partitions each community separately (grids never cross a community boundary) and
each connected piece of it separately (spopt's island handling would otherwise create
non-contiguous regions). A piece below the household minimum is one region for all methods.

* ours: ``geo.grids.partition`` (spanning-tree bisection + contiguity-preserving local
  search), objective weights at their defaults.
* MaxPHeuristic: threshold = the household minimum of the norm (300 urban / 150 rural);
  attributes = standardised cell centroid x, y (so that regions are compact), spopt's
  default iterations (``--maxp-construction 99 --maxp-sa 10``).
* Skater: ``n_clusters`` = the number of grids our engine chose for the piece
  (``choose_k``), same attributes; spopt's Skater ``floor`` counts observations, not
  households, so it is set to half the mean number of cells per region.

All plans are scored by the same code (``grids_from_labels`` + ``plan_metrics``) over the
basic grids: share within the norm (all, and where the norm is feasible), workload CV,
mean Polsby–Popper compactness, and the share of grids that are one polygon. Wall times
are for the partitioning only (cells and adjacency, shared by all methods, are reported
separately). Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from geo import grids as G
from geo.partition import choose_k, norm_for


def pieces_of(adj, positions):
    """Connected pieces (contiguity) of a set of adjacency positions."""
    inside = set(positions)
    seen, out = set(), []
    for s in positions:
        if s in seen:
            continue
        comp, stack = [s], [s]
        seen.add(s)
        while stack:
            u = stack.pop()
            for v in adj.neighbors(u):
                v = int(v)
                if v in inside and v not in seen:
                    seen.add(v)
                    comp.append(v)
                    stack.append(v)
        out.append(comp)
    return out


def run_spopt(method, cells, adj, communities, dedicated, args):
    """Labels cell_id -> region for every basic cell, per community and piece."""
    import libpysal
    from spopt.region import MaxPHeuristic, Skater

    kinds = communities.set_index("community_code")["kind"]
    assign = dedicated[0]
    pool = cells[~cells["cell_id"].isin(assign.index)]
    cen = pool.geometry.centroid
    pool = pool.assign(_x=cen.x.to_numpy(), _y=cen.y.to_numpy())
    labels = {}
    failures = 0
    for code, grp in pool.groupby("community_code"):
        a = adj[code]
        norm = norm_for(code, kinds.get(code, "urban"), None)
        lo, hi = norm["households_min"], norm["households_max"]
        pos = [a.position[c] for c in grp["cell_id"]]
        by_pos = grp.set_index(grp["cell_id"].map(a.position))
        for pnum, piece in enumerate(pieces_of(a, pos)):
            sub = by_pos.loc[piece].reset_index(drop=True)
            H = float(sub["households"].sum())
            k, _ = choose_k(H, lo, hi, norm["prefer"])
            name = f"{code}/{pnum}"
            if H < lo or k <= 1 or len(sub) < 2:
                labels.update({c: f"{name}/0" for c in sub["cell_id"]})
                continue
            local = {p: t for t, p in enumerate(piece)}
            neigh = {local[p]: [local[int(q)] for q in a.neighbors(p) if int(q) in local]
                     for p in piece}
            w = libpysal.weights.W(neigh, silence_warnings=True)
            for col in ("_x", "_y"):
                sd = sub[col].std()
                sub[col] = (sub[col] - sub[col].mean()) / (sd if sd > 0 else 1.0)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    if method == "maxp":
                        m = MaxPHeuristic(sub, w, ["_x", "_y"], "households", lo,
                                          top_n=2,
                                          max_iterations_construction=args.maxp_construction,
                                          max_iterations_sa=args.maxp_sa)
                    else:
                        # Skater's floor counts observations (cells), not households
                        m = Skater(sub, w, ["_x", "_y"], n_clusters=k,
                                   floor=max(1, int(0.5 * len(sub) / k)), islands="ignore")
                    m.solve()
                lab = np.asarray(m.labels_)
            except Exception as exc:  # noqa: BLE001 - report it; the piece stays one region
                failures += 1
                print(f"  {method} failed on {name} ({len(sub)} cells): {exc}",
                      file=sys.stderr)
                lab = np.zeros(len(sub), dtype=int)
            labels.update({c: f"{name}/{g}" for c, g in zip(sub["cell_id"], lab)})
    for c, key in assign.items():
        labels[c] = key
    return pd.Series(labels), failures


def score(cells, adj, labels, communities, dedicated_ids):
    gtype = {k: "dedicated" for k in dedicated_ids}
    grids, _ = G.grids_from_labels(cells, labels, communities=communities, adjacency=adj,
                                   grid_type=gtype, codes=None)
    m = G.plan_metrics(grids)
    basic = grids[grids["grid_type"] == "basic"]
    m["share_one_polygon"] = float((basic.geom_type == "Polygon").mean())
    return m


def bench_size(n, args):
    rows = []
    city = G.synthetic_city(n, seed=args.seed)
    t0 = time.perf_counter()
    cells = G.build_cells(city["buildings"], city["communities"], city["barriers"],
                          special_units=city["special_units"])
    adj = G.cell_adjacency(cells)
    ded = G.dedicated_grids(cells, city["special_units"], adjacency=adj)
    t_cells = time.perf_counter() - t0
    n_comm = len(city["communities"])
    print(f"# {n} buildings: {len(cells)} cells, {n_comm} communities, "
          f"{len(ded[1])} dedicated grids; cells+adjacency+dedicated {t_cells:.1f} s",
          file=sys.stderr)

    t0 = time.perf_counter()
    plan, members = G.partition(cells, adj, city["communities"], dedicated=ded,
                                n_jobs=args.n_jobs, seed=args.seed)
    t_ours = time.perf_counter() - t0
    ours = members.set_index("cell_id")["grid_id"]
    ded_ids = set(plan.loc[plan["grid_type"] == "dedicated", "grid_id"])
    rows.append(dict(buildings=n, method=f"gridgov (n_jobs={args.n_jobs})", seconds=t_ours,
                     failures=0, **score(cells, adj, ours, city["communities"], ded_ids)))
    print(f"  gridgov {t_ours:.1f} s", file=sys.stderr)
    if args.n_jobs > 1:
        t0 = time.perf_counter()
        _, members1 = G.partition(cells, adj, city["communities"], dedicated=ded, n_jobs=1,
                                  seed=args.seed)
        t1 = time.perf_counter() - t0
        ours1 = members1.set_index("cell_id")["grid_id"]
        rows.append(dict(buildings=n, method="gridgov (n_jobs=1)", seconds=t1, failures=0,
                         **score(cells, adj, ours1, city["communities"], ded_ids)))
        print(f"  gridgov single process {t1:.1f} s", file=sys.stderr)
    for method in ("maxp", "skater"):
        if n > args.spopt_max:
            rows.append({"buildings": n, "method": f"spopt {method}", "seconds": float("nan"),
                         "note": "not run (see --spopt-max)"})
            continue
        t0 = time.perf_counter()
        labels, failures = run_spopt(method, cells, adj, city["communities"], ded, args)
        t = time.perf_counter() - t0
        print(f"  {method} {t:.1f} s", file=sys.stderr)
        rows.append(dict(buildings=n, method=f"spopt {method}", seconds=t, failures=failures,
                         **score(cells, adj, labels, city["communities"],
                                        set(ded[0].unique()))))
    for r in rows:
        r["cells_s"] = t_cells
    return rows


def markdown(rows):
    head = ("| buildings | method | wall s | basic grids | within norm | within norm "
            "(feasible) | workload CV | mean compactness | one polygon |")
    out = [head, "|" + "---|" * 9]
    for r in rows:
        if np.isnan(r.get("seconds", np.nan)) and "note" in r:
            out.append(f"| {r['buildings']:,} | {r['method']} | {r['note']} | | | | | | |")
            continue
        out.append(
            f"| {r['buildings']:,} | {r['method']} | {r['seconds']:.1f} | {r['n_basic']} | "
            f"{r['share_within_norm']:.1%} | {r['share_within_norm_feasible']:.1%} | "
            f"{r['workload_cv']:.3f} | {r['mean_compactness']:.3f} | "
            f"{r['share_one_polygon']:.1%} |")
    return "\n".join(out)


def bench_single_machine(n: int, args) -> list[dict]:
    """Issue #13.5: the grids of a generated city on one machine, 1 process against 2.

    Cells + adjacency as the whole-city build in one process, then per community on 2 worker
    processes (pipelines/cellcache.py, same cells); the partition with n_jobs 1 and 2 (same
    plan). Wall and CPU seconds (this process and its children) of every step.
    """
    import resource

    from pipelines.cellcache import cells_and_adjacency

    def clock():
        ru = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.perf_counter(), sum(r.ru_utime + r.ru_stime for r in ru)

    def since(t):
        w, c = clock()
        return round(w - t[0], 1), round(c - t[1], 1)

    city = G.synthetic_city(n, seed=args.seed)
    inp = {k: city[k] for k in ("buildings", "communities", "barriers", "special_units")}
    rows = []
    t = clock()
    cells = G.build_cells(inp["buildings"], inp["communities"], inp["barriers"], special_units=inp["special_units"])
    adj = G.cell_adjacency(cells)
    rows.append({"buildings": n, "step": "cells + adjacency, whole city, 1 process", "s": since(t)})
    for nj in (1, 2):
        t = clock()
        c2, a2, _ = cells_and_adjacency(inp, n_jobs=nj)
        same = c2.drop(columns="geometry").equals(cells.drop(columns="geometry")) and list(a2) == list(adj)
        rows.append({"buildings": n, "step": f"cells + adjacency per community, {nj} process(es)", "s": since(t),
                     "note": "same cells" if same else "DIFFERENT cells"})
    t = clock()
    ded = G.dedicated_grids(cells, city["special_units"], adjacency=adj)
    rows.append({"buildings": n, "step": "dedicated grids", "s": since(t)})
    plans = {}
    for nj in (1, 2):
        t = clock()
        plan, members = G.partition(cells, adj, city["communities"], dedicated=ded, n_jobs=nj, seed=args.seed)
        el = since(t)
        m = G.plan_metrics(plan)
        plans[nj] = members
        rows.append({"buildings": n, "step": f"partition, n_jobs={nj}", "s": el,
                     "note": (f"{m['n_basic']} basic grids, within norm {m['share_within_norm']:.1%} "
                              f"(feasible {m['share_within_norm_feasible']:.1%}), workload CV "
                              f"{m['workload_cv']:.3f}, compactness {m['mean_compactness']:.3f}")})
    rows[-1]["note"] += "; same plan as n_jobs=1" if plans[1].equals(plans[2]) else "; DIFFERENT plan"
    for r in rows:
        print(f"  {r['step']}: wall {r['s'][0]} s, CPU {r['s'][1]} s", file=sys.stderr)
    return rows


def markdown_single(rows) -> str:
    out = ["| buildings | step | wall s | CPU s | note |", "|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['buildings']:,} | {r['step']} | {r['s'][0]} | {r['s'][1]} | {r.get('note', '')} |")
    return "\n".join(out)


_DEMO_DRAW = """
import json, sys, time
from pathlib import Path
from pipelines import stage_grids
from pipelines.config import load_settings
from pipelines.db import connect
root, n_jobs, start = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
s = load_settings(root)
s["grids"] = {**s["grids"], "n_jobs": n_jobs, "start_from_current_grids": start}
con = connect(root / "gridgov.duckdb")
t = time.perf_counter()
out = stage_grids.run(con, s)
con.close()
out["wall_s"] = round(time.perf_counter() - t, 1)
print(json.dumps(out, default=str))
"""


def bench_demo(demo: Path, work: Path, start: bool) -> None:
    """The grids stage on a demo project twice: ``n_jobs = 1`` and ``n_jobs = 2``, each in its
    own interpreter with another ``PYTHONHASHSEED``; prints the plan's geometry checks and
    whether both runs put every building in the same grid (issues #8, #10)."""
    import json
    import shutil
    import subprocess

    from pipelines.db import connect, read_table
    from pipelines.run import run_project

    runs = {}
    for n_jobs, hash_seed in ((1, "1"), (2, "2")):
        root = work / f"demo-n{n_jobs}"
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(demo, root, ignore=shutil.ignore_patterns("gridgov.duckdb*", ".gridgov*"))
        run_project(root, stages=[])  # ingest
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        res = subprocess.run([sys.executable, "-c", _DEMO_DRAW, str(root), str(n_jobs), "1" if start else "0"],
                             env=env, capture_output=True, text=True, check=True)
        out = json.loads(res.stdout.strip().splitlines()[-1])
        con = connect(root / "gridgov.duckdb", read_only=True)
        out["members"] = read_table(con, "SELECT building_id, grid_id FROM grid_members ORDER BY building_id")
        con.close()
        runs[n_jobs] = out
        print(f"n_jobs={n_jobs}: grids stage {out['wall_s']} s wall, load average "
              f"{os.getloadavg()[0]:.1f}", file=sys.stderr)
    a, b = runs[1]["members"], runs[2]["members"]
    same = a["building_id"].equals(b["building_id"])
    differ = int((a["grid_id"] != b["grid_id"]).sum()) if same else len(a)
    out = runs[2]
    print("| figure | value |\n|---|---|")
    print(f"| buildings in another grid, n_jobs 1 vs 2 | {differ} of {len(a):,} |")
    for k in ("n_grids", "n_basic", "n_dedicated", "share_within_norm", "share_within_norm_feasible",
              "workload_cv", "mean_compactness", "n_barrier_crossed", "n_overlaps", "n_invalid", "flagged",
              "communities_kept", "communities_redrawn", "households_moved",
              "households_moved_lower_bound", "p0000_share_within_norm"):
        if k in out:
            print(f"| {k} | {out[k]} |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--demo", type=Path, default=None,
                    help="a demo project (gridgov demo DIR): measure determinism and barriers on it")
    ap.add_argument("--start-from-current-grids", action="store_true",
                    help="with --demo: start from the project's current_grids (plan P0000)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/gridgov-bench"))
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000])
    ap.add_argument("--spopt-max", type=int, default=10_000,
                    help="largest city on which spopt is run")
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--maxp-construction", type=int, default=99, help="spopt default 99")
    ap.add_argument("--maxp-sa", type=int, default=10, help="spopt default 10")
    ap.add_argument("--single-machine", action="store_true",
                    help="issue #13.5: cells per community on workers and the partition, 1 vs 2 processes")
    args = ap.parse_args(argv)
    if args.single_machine:
        rows = [r for n in args.sizes for r in bench_single_machine(n, args)]
        print(markdown_single(rows))
        print(f"\nMachine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end; seed {args.seed}.")
        return
    if args.demo is not None:
        bench_demo(args.demo, args.work, args.start_from_current_grids)
        return
    rows = []
    for n in args.sizes:
        rows.extend(bench_size(n, args))
    load = os.getloadavg()
    print(markdown(rows))
    print(f"\nMachine: {os.cpu_count()} cores, load average {load[0]:.1f} at the end; "
          f"seed {args.seed}; MaxP iterations construction={args.maxp_construction}, "
          f"sa={args.maxp_sa}. Cells + adjacency + dedicated grids (shared): "
          + ", ".join(f"{n:,}: {t:.1f} s" for n, t in
                      {r['buildings']: r['cells_s'] for r in rows}.items()) + ".")


if __name__ == "__main__":
    main()
