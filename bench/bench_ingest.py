"""Time whole-process ingest (and optionally the full run) of the demo city.

Usage::

    python bench/bench_ingest.py [--size full|small] [--stages] [--workdir bench/_work]
    python bench/bench_ingest.py --incidents 200000 [--bad-share 0.3] [--workdir bench/_work]

The second form (issue #9) times ``pipelines.ingest.ingest`` in-process on the small demo city
with its incidents resampled to N rows, once clean and once with ``--bad-share`` of the rows
broken in seven ways (unparseable coordinates, a point 1,000 km away, an unparseable date, a
future date, severity out of range, severity ``1e308``, a duplicate id): ingest time must grow
with rows, not rows × errors.

Each step runs as its own process (`gridgov ...`), so wall time includes start-up and the peak
resident memory is that child's (``ru_maxrss`` of RUSAGE_CHILDREN, measured per child by running
it under a fresh Python wrapper). Prints a Markdown row per step for bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

WRAP = (
    "import resource,subprocess,sys,time;t=time.perf_counter();"
    "rc=subprocess.call(sys.argv[1:]);dt=time.perf_counter()-t;"
    "m=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss;"
    "print(f'BENCH {dt:.2f} {m/1024:.0f} {rc}')"
)


def timed(cmd: list[str]) -> tuple[float, float]:
    out = subprocess.run([sys.executable, "-c", WRAP, *cmd], capture_output=True, text=True)
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("BENCH")][-1].split()
    if line[3] != "0":
        sys.stderr.write(out.stderr)
        raise SystemExit(f"{cmd} failed")
    return float(line[1]), float(line[2])


BAD_KINDS = ("coords", "far", "date", "future", "severity", "overflow", "duplicate")


def make_incidents(pool, n: int, bad_share: float, seed: int = 0):
    """``n`` incidents resampled from the demo's ``pool``; ``bad_share`` of them broken (kinds in turn)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    df = pool.iloc[rng.integers(0, len(pool), n)].reset_index(drop=True)
    df["incident_id"] = [f"X{i:08d}" for i in range(n)]
    df["repeat_of"] = ""
    bad = np.flatnonzero(rng.random(n) < bad_share)
    kind = np.arange(len(bad)) % len(BAD_KINDS)
    for k, name in enumerate(BAD_KINDS):
        rows = bad[kind == k]
        if name == "coords":
            df.loc[rows, "lon"] = "x"
        elif name == "far":
            df.loc[rows, "lon"], df.loc[rows, "lat"] = "100.0", "30.0"
        elif name == "date":
            df.loc[rows, "occurred_at"] = "not-a-date"
        elif name == "future":
            df.loc[rows, "occurred_at"] = "2031-01-01 10:00:00"
        elif name == "severity":
            df.loc[rows, "severity"] = "9"
        elif name == "overflow":
            df.loc[rows, "severity"] = "1e308"
        else:
            df.loc[rows, "incident_id"] = df.loc[np.maximum(rows - 1, 0), "incident_id"].to_numpy()
    return df


_CHILD = (
    "import resource,sys,time;from pipelines.config import load_settings;from pipelines.db import connect;"
    "from pipelines.ingest import ingest;p=sys.argv[1];con=connect(p+'/gridgov.duckdb');"
    "t=time.perf_counter();c=time.process_time();r=ingest(p,con,load_settings(p));"
    "print('RESULT',time.perf_counter()-t,r.layers['incidents']['rejected'],time.process_time()-c,"
    "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024)"
)


def bench_bad_rows(n: int, bad_share: float, workdir: Path, repeats: int = 2) -> None:
    """Time ingest of ``n`` clean incidents and of ``n`` with ``bad_share`` broken rows, each in a fresh
    process, alternating clean and broken ``repeats`` times. Wall and CPU time (user + system of the
    process; DuckDB's threads included) are printed: on a shared machine CPU time is the steadier."""
    import pandas as pd

    from gridgov.demo_city import build_demo

    base = workdir / "demo-small-src"
    if not (base / "incidents.csv").exists():
        shutil.rmtree(base, ignore_errors=True)
        build_demo(base, size="small")
    pool = pd.read_csv(base / "incidents.csv", dtype=str, keep_default_na=False)
    projects = {}
    for share in (0.0, bad_share):
        proj = workdir / f"bad-{n}-{share}"
        shutil.rmtree(proj, ignore_errors=True)
        shutil.copytree(base, proj, ignore=shutil.ignore_patterns("gridgov.duckdb*", "incidents.csv"))
        make_incidents(pool, n, share).to_csv(proj / "incidents.csv", index=False)
        projects[share] = proj
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"load average {os.getloadavg()[0]:.1f}")
    print("| incidents | bad rows | rejected | ingest wall s | ingest CPU s | CPU s per 100k rows | peak RSS MB |\n"
          "|---:|---:|---:|---:|---:|---:|---:|")
    for _ in range(repeats):
        for share, proj in projects.items():
            (proj / "gridgov.duckdb").unlink(missing_ok=True)
            out = subprocess.run([sys.executable, "-c", _CHILD, str(proj)], capture_output=True, text=True,
                                 cwd=Path(__file__).resolve().parents[1])
            line = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT")]
            if not line:
                sys.stderr.write(out.stderr)
                raise SystemExit("ingest failed")
            _, dt, rej, cpu, rss = line[-1].split()
            dt, rej, cpu, rss = float(dt), int(rej), float(cpu), float(rss)
            print(f"| {n:,} | {share:.0%} | {rej:,} | {dt:.1f} | {cpu:.1f} | {cpu / n * 1e5:.2f} | {rss:.0f} |",
                  flush=True)
    for proj in projects.values():
        shutil.rmtree(proj, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--incidents", type=int, default=0, help="time ingest on N resampled incidents, clean and broken")
    ap.add_argument("--bad-share", type=float, default=0.3)
    ap.add_argument("--size", default="full", choices=["full", "small"])
    ap.add_argument("--stages", action="store_true", help="also time `gridgov run` with every stage")
    ap.add_argument("--workdir", default="bench/_work")
    a = ap.parse_args()
    if a.incidents:
        bench_bad_rows(a.incidents, a.bad_share, Path(a.workdir))
        return
    work = Path(a.workdir) / f"demo-{a.size}"
    shutil.rmtree(work, ignore_errors=True)
    work.parent.mkdir(parents=True, exist_ok=True)
    gg = [sys.executable, "-m", "pipelines", "-q"]
    rows = []
    demo = gg + ["demo", str(work)] + (["--small"] if a.size == "small" else [])
    rows.append(("demo generator", *timed(demo)))
    rows.append(("ingest (gridgov ingest)", *timed(gg + ["ingest", str(work)])))
    if a.stages:
        rows.append(("full run (gridgov run)", *timed(gg + ["run", str(work)])))
    import duckdb  # noqa: F401  (for the version line)

    from pipelines.db import connect

    con = connect(work / "gridgov.duckdb", read_only=True)
    counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
              for t in ("buildings", "incidents", "communities", "rejects")}
    con.close()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"duckdb {duckdb.__version__}; demo size {a.size}: {counts}")
    print("| step | wall s | peak RSS MB |\n|---|---:|---:|")
    for name, t, m in rows:
        print(f"| {name} | {t:.1f} | {m:.0f} |")


if __name__ == "__main__":
    main()
