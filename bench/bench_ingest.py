"""Time whole-process ingest (and optionally the full run) of the demo city.

Usage::

    python bench/bench_ingest.py [--size full|small] [--stages] [--workdir bench/_work]
    python bench/bench_ingest.py --incidents 200000 [--bad-share 0.3] [--workdir bench/_work]
    python bench/bench_ingest.py --parquet-folder 10000000 [--size small|full] [--memory-limit 2GB]

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
import time
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


def make_incidents(pool, n: int, bad_share: float, seed: int = 0, offset: int = 0):
    """``n`` incidents resampled from the demo's ``pool``; ``bad_share`` of them broken (kinds in turn)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    df = pool.iloc[rng.integers(0, len(pool), n)].reset_index(drop=True)
    df["incident_id"] = [f"X{i:08d}" for i in range(offset, offset + n)]
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


def write_parquet_folder(pool, n: int, folder: Path, chunk: int = 500_000, seed: int = 0,
                         bad_share: float = 0.0) -> int:
    """``n`` incidents resampled from the demo's ``pool`` as a hive-partitioned folder
    ``folder/month=YYYY-MM/part-K.parquet``, written chunk by chunk (never all rows in memory); ids
    are new, points are jittered by up to ±0.0003° (≈ 30 m), times stay text as in the CSV.
    Returns the number of files."""
    import numpy as np

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    lon = pool["lon"].astype(float).to_numpy()
    lat = pool["lat"].astype(float).to_numpy()
    k = 0
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        if bad_share:  # the seven broken kinds of --incidents, as text columns
            df = make_incidents(pool, m, bad_share, seed=seed + k, offset=start)
        else:
            pick = rng.integers(0, len(pool), m)
            df = pool.iloc[pick].reset_index(drop=True)
            df["incident_id"] = [f"X{i:09d}" for i in range(start, start + m)]
            df["repeat_of"] = None
            df["lon"] = np.round(lon[pick] + rng.uniform(-3e-4, 3e-4, m), 6)
            df["lat"] = np.round(lat[pick] + rng.uniform(-3e-4, 3e-4, m), 6)
        month = f"{2024 + (k // 12) % 10}-{k % 12 + 1:02d}"
        part = folder / f"month={month}"
        part.mkdir(exist_ok=True)
        df.to_parquet(part / f"part-{k}.parquet", index=False, row_group_size=122_880)
        k += 1
    return k


_PEAK = (
    "import psutil,subprocess,sys,time\n"
    "p=subprocess.Popen(sys.argv[1:]);ps=psutil.Process(p.pid);peak=0;cpu={}\n"
    "while p.poll() is None:\n"
    "    try:\n"
    "        procs=[ps]+ps.children(recursive=True)\n"
    "        rss=0\n"
    "        for q in procs:\n"
    "            try:\n"
    "                rss+=q.memory_info().rss;t=q.cpu_times();cpu[q.pid]=t.user+t.system\n"
    "            except psutil.Error: pass\n"
    "        peak=max(peak,rss)\n"
    "    except psutil.Error: pass\n"
    "    time.sleep(0.05)\n"
    "print('PEAK',peak/2**20,sum(cpu.values()),p.returncode)\n"
)

_STREAM_CHILD = (
    "import sys,time;from pipelines.config import load_settings;from pipelines.db import connect;"
    "from pipelines.ingest import ingest;p=sys.argv[1];con=connect(p+'/gridgov.duckdb');"
    "t=time.perf_counter();r=ingest(p,con,load_settings(p));con.close();"
    "c=r.layers['incidents'];print('RESULT',time.perf_counter()-t,c['kept'],c['rejected'])"
)

_BARE_CHILD = (
    "import sys,time;from pipelines.db import connect,apply_compute_settings;from pipelines.config import load_settings;"
    "p=sys.argv[1];con=connect(p+'/bare.duckdb');apply_compute_settings(con,load_settings(p),p);"
    "import glob;files=sorted(glob.glob(p+'/incidents/**/*.parquet',recursive=True));"
    "con.execute(\"ATTACH '\"+p.replace(\"'\",\"''\")+\"/gridgov.duckdb' AS g (READ_ONLY)\");"
    "con.execute('CREATE TEMP TABLE c AS SELECT community_code, street_code, geometry FROM g.communities');"
    "t=time.perf_counter();"
    "con.execute('CREATE OR REPLACE TABLE incidents AS SELECT i.*, c.community_code AS cc, c.street_code AS sc, "
    "ST_Point(TRY_CAST(i.lon AS DOUBLE), TRY_CAST(i.lat AS DOUBLE)) AS geometry FROM read_parquet($1, hive_partitioning=true) i "
    "JOIN c ON ST_Contains(c.geometry, ST_Point(TRY_CAST(i.lon AS DOUBLE), TRY_CAST(i.lat AS DOUBLE)))', [files]);"
    "n=con.execute('SELECT count(*) FROM incidents').fetchone()[0];print('RESULT',time.perf_counter()-t,n,0)"
)


def _measure(code: str, proj: Path) -> tuple[float, int, float, float]:
    """Run ``code`` in a child under a psutil poller (child and its children): wall, rows, CPU s, peak RSS MB."""
    out = subprocess.run([sys.executable, "-c", _PEAK, sys.executable, "-c", code, str(proj)], capture_output=True,
                         text=True, cwd=Path(__file__).resolve().parents[1])
    res = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT")]
    peak = [ln for ln in out.stdout.splitlines() if ln.startswith("PEAK")]
    if not res or not peak:
        sys.stderr.write(out.stderr[-3000:])
        raise SystemExit("bench child failed")
    _, wall, kept, _ = res[-1].split()
    _, rss, cpu, _ = peak[-1].split()
    return float(wall), int(kept), float(cpu), float(rss)


def bench_parquet_folder(n: int, size: str, workdir: Path, memory_limit: str, repeats: int = 1,
                         bad_share: float = 0.0) -> None:
    """Ingest of ``n`` incidents from a hive-partitioned Parquet folder (the streamed DuckDB path),
    against DuckDB's own bare point-in-polygon join of the same files into communities. Each in a
    fresh process; wall, CPU (process and children) and peak RSS (psutil, polled every 50 ms)."""
    import pandas as pd

    from gridgov.demo_city import build_demo

    base = workdir / f"demo-{size}-src"
    if not (base / "incidents.csv").exists():
        shutil.rmtree(base, ignore_errors=True)
        build_demo(base, size=size)
    pool = pd.read_csv(base / "incidents.csv", dtype=str, keep_default_na=False, na_values=[""])
    proj = workdir / (f"pqfolder-{size}-{n}" + (f"-bad{bad_share}" if bad_share else ""))
    if not (proj / "incidents").exists():
        shutil.rmtree(proj, ignore_errors=True)
        shutil.copytree(base, proj, ignore=shutil.ignore_patterns("gridgov.duckdb*", "incidents.csv", "truth"))
        t = time.perf_counter()
        k = write_parquet_folder(pool, n, proj / "incidents", bad_share=bad_share)
        print(f"wrote {n:,} incidents in {k} files in {time.perf_counter() - t:.0f} s", flush=True)
    toml = (base / "gridgov.toml").read_text(encoding="utf-8")
    (proj / "gridgov.toml").write_text(toml + f'\n[compute]\nmemory_limit = "{memory_limit}"\n', encoding="utf-8")
    size_mb = sum(f.stat().st_size for f in (proj / "incidents").rglob("*.parquet")) / 2**20
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"load average {os.getloadavg()[0]:.1f}; {size_mb:.0f} MB of Parquet; memory_limit {memory_limit}")
    print("| step | incidents | rows written | wall s | CPU s | peak RSS MB |\n|---|---:|---:|---:|---:|---:|")
    for _ in range(repeats):
        (proj / "gridgov.duckdb").unlink(missing_ok=True)
        wall, kept, cpu, rss = _measure(_STREAM_CHILD, proj)
        what = f"gridgov ingest (streamed, all checks{f', {bad_share:.0%} bad rows' if bad_share else ''})"
        print(f"| {what} | {n:,} | {kept:,} | {wall:.1f} | {cpu:.1f} | {rss:.0f} |", flush=True)
        (proj / "bare.duckdb").unlink(missing_ok=True)
        wall, kept, cpu, rss = _measure(_BARE_CHILD, proj)
        print(f"| DuckDB bare ST_Contains join | {n:,} | {kept:,} | {wall:.1f} | {cpu:.1f} | {rss:.0f} |", flush=True)
        (proj / "bare.duckdb").unlink(missing_ok=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--incidents", type=int, default=0, help="time ingest on N resampled incidents, clean and broken")
    ap.add_argument("--bad-share", type=float, default=0.3)
    ap.add_argument("--size", default="full", choices=["full", "small"])
    ap.add_argument("--stages", action="store_true", help="also time `gridgov run` with every stage")
    ap.add_argument("--workdir", default="bench/_work")
    ap.add_argument("--parquet-folder", type=int, default=0,
                    help="time ingest of N incidents from a hive-partitioned Parquet folder vs DuckDB's bare join")
    ap.add_argument("--memory-limit", default="2GB", help="[compute] memory_limit for --parquet-folder")
    ap.add_argument("--repeats", type=int, default=1)
    a = ap.parse_args()
    if a.parquet_folder:
        bench_parquet_folder(a.parquet_folder, a.size, Path(a.workdir), a.memory_limit, a.repeats, a.bad_share
                             if "--bad-share" in sys.argv else 0.0)
        return
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
