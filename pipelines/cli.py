"""The ``gridgov`` command line: demo, ingest, run, app, export."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from pipelines.errors import GridgovError

REPO = Path(__file__).resolve().parents[1]


def _progress(quiet: bool):
    t0 = time.perf_counter()

    def say(msg: str) -> None:
        if not quiet:
            print(f"[{time.perf_counter() - t0:7.1f}s] {msg}", file=sys.stderr, flush=True)

    return say


def cmd_demo(args) -> int:
    from pipelines.demo import build_demo

    summary = build_demo(args.dir, size="small" if args.small else "full", seed=args.seed,
                         overwrite=args.overwrite, progress=_progress(args.quiet))
    print(json.dumps(summary, ensure_ascii=False, indent=1, default=str))
    return 0


def cmd_run(args, stages=None) -> int:
    from pipelines.run import run_project

    summary = run_project(args.dir, stages=stages, progress=_progress(args.quiet))
    ing = summary["ingest"]
    print("图层 / layer            读取 read   保留 kept   拒收 rejected")
    for name, c in ing["layers"].items():
        print(f"{name:22s} {c['read']:>9d} {c['kept']:>10d} {c['rejected']:>14d}")
    print(f"拒收合计 / rejects total: {ing['rejected']}   (详见 rejects 表 / see table rejects)")
    for name, s in summary["stages"].items():
        brief = {k: v for k, v in s.items() if not isinstance(v, dict | list)}
        print(f"stage {name}: {json.dumps(brief, ensure_ascii=False, default=str)}")
    print(f"run {summary['run_id']} ok in {summary['seconds']} s")
    return 0


def cmd_app(args) -> int:
    project = Path(args.dir).resolve()
    env = dict(os.environ, GRIDGOV_PROJECT=str(project))
    cmd = [sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"), "--server.port", str(args.port),
           "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    print(f"gridgov app → http://localhost:{args.port}  (project {project})", file=sys.stderr)
    return subprocess.call(cmd, env=env, cwd=str(REPO))


def cmd_export(args) -> int:
    from pipelines.run import db_path

    db = db_path(args.dir)
    if not db.exists():
        raise GridgovError(f"{db} 不存在；请先运行 gridgov run {args.dir}", f"{db} does not exist; run `gridgov run {args.dir}` first")
    if args.report:
        from pipelines.stage_staffing import export_report
        from pipelines.db import connect

        out = Path(args.out or Path(args.dir) / "gridgov_report.xlsx")
        con = connect(db, read_only=True)
        try:
            export_report(con, out)
        finally:
            con.close()
        print(out)
        return 0
    from pipelines.export import export_table

    if not args.table:
        raise GridgovError("请用 --table 指定要导出的表，或用 --report 导出报告。",
                           "Name a table with --table, or use --report for the Excel report.")
    out = args.out or Path(args.dir) / "export" / f"{args.table}"
    print(export_table(db, args.table, args.format, out))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gridgov",
        description="网格化治理分析平台 / grid-governance analytics for street offices. "
                    "Typical use: gridgov demo demo-city && gridgov run demo-city && gridgov app demo-city",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress messages")
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("demo", help="write the demo city's project folder (呼和浩特演示城市)",
                       description="Write a project folder for the Hohhot demo city: real district boundaries, "
                                   "street and community names and codes; synthetic geometry, buildings and records.")
    d.add_argument("dir")
    d.add_argument("--small", action="store_true", help="one street, a few thousand buildings (fast tests)")
    d.add_argument("--seed", type=int, default=2023, help="random seed (same seed, same files)")
    d.add_argument("--overwrite", action="store_true", help="replace an existing folder's files")
    d.set_defaults(func=cmd_demo)
    i = sub.add_parser("ingest", help="load and validate the project's layers into gridgov.duckdb",
                       description="Read every layer, validate it, write clean tables and rejects (no analysis stages).")
    i.add_argument("dir")
    i.set_defaults(func=lambda a: cmd_run(a, stages=[]))
    r = sub.add_parser("run", help="ingest and run every stage, atomically",
                       description="Ingest plus every stage (grids, hotspots, staffing) into DIR/gridgov.duckdb; "
                                   "a failed run leaves the previous database as it was.")
    r.add_argument("dir")
    r.set_defaults(func=cmd_run)
    a = sub.add_parser("app", help="start the Streamlit app on a project")
    a.add_argument("dir")
    a.add_argument("--port", type=int, default=8501)
    a.set_defaults(func=cmd_app)
    e = sub.add_parser("export", help="export a table (GeoJSON, GeoPackage, Shapefile, CSV, Excel) or the report")
    e.add_argument("dir")
    e.add_argument("--table", help="table name, e.g. grids, streets, rejects")
    e.add_argument("--format", default="geojson", choices=["geojson", "gpkg", "shp", "csv", "xlsx"])
    e.add_argument("--out", help="output file or folder")
    e.add_argument("--report", action="store_true", help="the Excel report for a district meeting (one sheet per table)")
    e.set_defaults(func=cmd_export)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except GridgovError as exc:
        print(f"错误 / error: {exc}", file=sys.stderr)
        return 2
    except FileExistsError as exc:
        print(f"错误 / error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
