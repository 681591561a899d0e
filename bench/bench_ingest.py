"""Time whole-process ingest (and optionally the full run) of the demo city.

Usage::

    python bench/bench_ingest.py [--size full|small] [--stages] [--workdir bench/_work]

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
    line = [l for l in out.stdout.splitlines() if l.startswith("BENCH")][-1].split()
    if line[3] != "0":
        sys.stderr.write(out.stderr)
        raise SystemExit(f"{cmd} failed")
    return float(line[1]), float(line[2])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="full", choices=["full", "small"])
    ap.add_argument("--stages", action="store_true", help="also time `gridgov run` with every stage")
    ap.add_argument("--workdir", default="bench/_work")
    a = ap.parse_args()
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
