"""The grids stage in one process, with 2 local processes and on a 2-worker Dask LocalCluster.

    python bench/bench_dask.py [--size small|full] [--work DIR]

Builds the demo (small: one street; full: the city), ingests it once, then draws the grids from
scratch on a copy per configuration, each in its own interpreter, and prints wall time, the
load average at the start and whether ``grid_members`` equals the single-process plan.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DRAW = textwrap.dedent("""
    import sys
    from pathlib import Path
    from pipelines import stage_grids
    from pipelines.config import load_settings
    from pipelines.db import connect
    if __name__ == "__main__":
        project = Path(sys.argv[1])
        con = connect(project / "gridgov.duckdb")
        try:
            stage_grids.run(con, load_settings(project))
        finally:
            con.close()
""")

CONFIGS = {
    "1 process": "[grids]\nstart_from_current_grids = false\nn_jobs = 1\n",
    "2 local processes": "[grids]\nstart_from_current_grids = false\nn_jobs = 2\n",
    "Dask LocalCluster, 2 workers": "[grids]\nstart_from_current_grids = false\n"
                                    "[compute]\nscheduler = \"local\"\nworkers = 2\n",
}


def members(project: Path):
    from pipelines.db import connect, read_table

    con = connect(project / "gridgov.duckdb", read_only=True)
    try:
        return read_table(con, "SELECT building_id, grid_id FROM grid_members ORDER BY building_id")
    finally:
        con.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=["small", "full"], default="small")
    ap.add_argument("--work", default=str(ROOT / "bench" / "_work" / "dask"))
    args = ap.parse_args()
    from gridgov.demo_city import build_demo
    from pipelines.run import run_project

    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    base = work / "base"
    build_demo(base, size=args.size)
    run_project(base, stages=[])
    script = work / "draw.py"
    script.write_text(DRAW, encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    ref = None
    print("| configuration | wall s | load average at start | same plan as 1 process |")
    print("|---|---:|---:|---|")
    for name, toml in CONFIGS.items():
        project = work / name.split()[0].replace(",", "")
        shutil.copytree(base, project)
        (project / "gridgov.toml").write_text(
            (project / "gridgov.toml").read_text(encoding="utf-8") + "\n" + toml, encoding="utf-8")
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        subprocess.run([sys.executable, str(script), str(project)], check=True, env=env, cwd=work)
        wall = time.perf_counter() - t0
        m = members(project)
        if ref is None:
            ref = m
        same = "yes" if m.equals(ref) else "NO"
        print(f"| {name} | {wall:.1f} | {load:.1f} | {same} ({len(m):,} buildings) |", flush=True)


if __name__ == "__main__":
    main()
