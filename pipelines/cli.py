"""The ``gridgov`` command line: demo, ingest, run, app, export.

``-q`` / ``-v`` work before or after the subcommand (``gridgov -q run DIR`` and
``gridgov run DIR -q`` are the same). Long steps show a tqdm progress line on stderr (the step
in progress and the elapsed time); results are printed on stdout as one short table.
"""
from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

from pipelines.errors import GridgovError

REPO = Path(__file__).resolve().parents[1]

#: Streamlit options of ``gridgov app`` (given on the command line, so they hold whatever the
#: current folder: ``.streamlit/config.toml`` is only read from the folder Streamlit starts in).
STREAMLIT_OPTIONS = {
    "server.headless": "true",
    "server.enableStaticServing": "true",  # Leaflet/jQuery served from the app (offline maps)
    "server.enableWebsocketCompression": "true",
    "browser.gatherUsageStats": "false",
    "client.toolbarMode": "minimal",
    "theme.base": "light",
}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gridgov")
    except PackageNotFoundError:  # a source checkout that was never installed
        return "0+unknown"


# ---- progress ---------------------------------------------------------------------------

class Progress:
    """A tqdm line on stderr fed by the pipeline's ``progress(message)`` callbacks.

    Each message is one step: the line shows the latest message, the number of steps done (of
    ``total`` when known) and the elapsed time, refreshed every second while a step runs so a
    long step never looks frozen. With ``-v`` every message is also kept as its own line; with
    ``-q`` nothing is shown. Use it as a context manager; ``advance_on`` names the message
    prefixes that start a new step (others only change the text).
    """

    def __init__(self, desc: str, *, total: int | None = None, quiet: bool = False,
                 verbose: int = 0, advance_on: tuple[str, ...] = ()):
        self.quiet, self.verbose, self.advance_on = quiet, verbose, advance_on
        self.desc = desc
        self.total = total
        self.bar = None
        self.plain = False
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._redirect = None
        self._t0 = time.perf_counter()

    def __enter__(self) -> Progress:  # noqa: PYI034
        if self.quiet:
            return self
        if not sys.stderr.isatty():  # a log file or CI: one plain line per message
            self.plain = True
            return self
        from tqdm.auto import tqdm

        fmt = "{n_fmt}/{total_fmt} [{elapsed}] {desc}" if self.total else "{n_fmt} [{elapsed}] {desc}"
        self.bar = tqdm(total=self.total, desc=self.desc, unit="step", file=sys.stderr,
                        dynamic_ncols=True, leave=True, bar_format=fmt)
        # log records go above the line instead of through it
        from tqdm.contrib.logging import logging_redirect_tqdm

        self._redirect = logging_redirect_tqdm(tqdm_class=tqdm)
        self._redirect.__enter__()
        # refresh the elapsed time once a second while a step runs (display only)
        self._ticker = threading.Thread(target=self._tick, daemon=True)
        self._ticker.start()
        return self

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            if self.bar is not None:
                self.bar.refresh()

    def __call__(self, message: str) -> None:
        msg = str(message)
        if self.plain:
            print(f"[{time.perf_counter() - self._t0:7.1f}s] {msg}", file=sys.stderr, flush=True)
            return
        if self.bar is None:
            return
        if self.verbose:
            self.bar.write(f"[{time.perf_counter() - self._t0:7.1f}s] {msg}", file=sys.stderr)
        if not self.advance_on or msg.startswith(self.advance_on):
            self.bar.update(1)
        self.bar.set_description_str(f"{self.desc}: {msg[:80]}", refresh=True)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=2)
        if self.bar is not None:
            if exc[0] is None and self.total:
                self.bar.n = max(self.bar.n, self.total)
                self.bar.set_description_str(f"{self.desc}: 完成 / done", refresh=False)
            self.bar.close()
        if self._redirect is not None:
            self._redirect.__exit__(*exc)


# ---- summaries --------------------------------------------------------------------------

def _table(rows: list[tuple], header: tuple) -> str:
    """A plain text table; column widths count a CJK character as two."""
    import unicodedata

    def width(s: str) -> int:
        return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)

    cells = [tuple(str(c) for c in header)] + [tuple(str(c) for c in r) for r in rows]
    widths = [max(width(r[i]) for r in cells) for i in range(len(header))]
    out = []
    for k, r in enumerate(cells):
        parts = []
        for i, c in enumerate(r):
            pad = " " * (widths[i] - width(c))
            numeric = i > 0 and re.fullmatch(r"[\d,.%—-]+", c) is not None
            parts.append(pad + c if numeric else c + pad)
        out.append("  ".join(parts).rstrip())
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def _fmt(v, pct: bool = False) -> str:
    if v is None:
        return "—"
    if pct:
        return f"{float(v):.1%}"
    if isinstance(v, float):
        return f"{v:,.1f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def run_summary(summary: dict, db: Path | None = None) -> str:
    """The readable end of ``gridgov run``: layers read/kept/rejected, then one line per stage."""
    ing = summary.get("ingest") or {}
    rows = [(name, _fmt(c.get("read")), _fmt(c.get("kept")), _fmt(c.get("rejected")))
            for name, c in (ing.get("layers") or {}).items()]
    lines = [_table(rows, ("图层 layer", "读取 read", "保留 kept", "拒收 rejected"))]
    if ing.get("rejected"):
        lines.append(f"拒收合计 / rejected in total: {_fmt(ing['rejected'])} "
                     "(见 rejects 表 / see table rejects)")
    for note in ing.get("notes") or []:
        lines.append(f"注意 / note: {note}")
    layers = ing.get("layers") or {}
    dropped = {n: c["pii_columns_dropped"] for n, c in layers.items() if c.get("pii_columns_dropped")}
    masked = {n: c["pii_values_masked"] for n, c in layers.items() if c.get("pii_values_masked")}
    if dropped:
        lines.append("个人信息列未入库 / personal-data columns not stored: "
                     + "; ".join(f"{n}: {', '.join(map(str, cols))}" for n, cols in dropped.items()))
    if masked:
        lines.append("个人信息已遮盖 / personal numbers masked: "
                     + ", ".join(f"{n} {_fmt(v)}" for n, v in masked.items()))
    st = summary.get("stages") or {}
    facts: list[tuple[str, str]] = []
    if "grids" in st:
        g = st["grids"]
        facts.append(("网格方案 plan", f"{g.get('plan_id', '—')} ({g.get('source', '')})"))
        facts.append(("网格 grids", (f"{_fmt(g.get('n_grids'))} = {_fmt(g.get('n_basic'))} basic + "
                                   f"{_fmt(g.get('n_dedicated'))} dedicated; "
                                   f"{_fmt(g.get('share_within_norm'), pct=True)} within the norm")))
    if "hotspots" in st:
        h = st["hotspots"]
        facts.append(("热点 hot spots", (f"{_fmt(h.get('hot_units'))} hot, {_fmt(h.get('cold_units'))} cold "
                                      f"of {_fmt(h.get('units'))} units; "
                                      f"{_fmt(h.get('incidents_used'))} incidents, {_fmt(h.get('months'))} months")))
    if "staffing" in st:
        s = st["staffing"]
        facts.append(("人员 staffing", (f"{_fmt(s.get('current_staff'))} today, budget {_fmt(s.get('budget'))}, "
                                      f"workload needs {_fmt(s.get('required_people'))}; "
                                      f"{_fmt(s.get('streets_short'))} street(s) short by "
                                      f"{_fmt(s.get('people_short'))}")))
    if "cases" in st:
        c = st["cases"]
        facts.append(("案件 cases", (f"{_fmt(c.get('cases'))} cases, {_fmt(c.get('periods'))} months; "
                                   f"rates in {_fmt((c.get('rows') or {}).get('case_rates'))} rows "
                                   "(红黑榜 red/black lists)")))
    for name, s in st.items():
        if name not in ("grids", "hotspots", "staffing", "cases"):
            brief = ", ".join(f"{k}={v}" for k, v in s.items() if not isinstance(v, dict | list))
            facts.append((name, brief))
    if facts:
        lines.append("")
        lines.append(_table(facts, ("阶段 stage", "结果 result")))
    secs = {n: s.get("seconds") for n, s in st.items() if s.get("seconds") is not None}
    timing = ", ".join(f"{n} {v:.1f} s" for n, v in secs.items())
    lines.append("")
    lines.append(f"运行 / run {summary.get('run_id', '—')} ok in {_fmt(summary.get('seconds'))} s"
                 + (f" ({timing})" if timing else "") + (f" → {db}" if db else ""))
    return "\n".join(lines)


def demo_summary(summary: dict) -> str:
    keys = ("streets", "communities", "buildings", "households", "residents", "special_units",
            "barriers", "incidents", "staff", "current_grids", "department_grids")
    rows = [(k, _fmt(summary[k])) for k in keys if k in summary]
    what = "合成省份 / synthetic province" if summary.get("size") == "province" else "演示城市 / demo city"
    extra = f", {summary['cities']} cities" if "cities" in summary else ""
    head = (f"{what} ({summary.get('size', '?')}, seed {summary.get('seed', '?')}{extra}) "
            f"→ {summary.get('out_dir', '')}")
    tail = (f"下一步 / next: gridgov run {summary.get('out_dir', 'DIR')} "
            f"&& gridgov app {summary.get('out_dir', 'DIR')}")
    return "\n".join([head, _table(rows, ("图层 layer", "行数 rows")), tail])


# ---- commands ---------------------------------------------------------------------------

def cmd_demo(args) -> int:
    scale = ("buildings", "incidents", "workers", "chunk_rows")
    if not args.province:
        given = [f"--{k.replace('_', '-')}" for k in scale if getattr(args, k) is not None]
        if given:
            raise GridgovError(f"{', '.join(given)} 只能与 --province 一起使用。",
                               f"{', '.join(given)} only go with --province.")
        from gridgov.demo_city import build_demo

        with Progress("demo", quiet=args.quiet, verbose=args.verbose) as say:
            summary = build_demo(args.dir, size="small" if args.small else "full", seed=args.seed,
                                 overwrite=args.overwrite, progress=say)
        print(demo_summary(summary))
        return 0
    if args.small:
        raise GridgovError("--small 与 --province 不能同时使用。", "--small and --province cannot be combined.")
    from gridgov import province as pv

    kw = {k: getattr(args, k) for k in scale if getattr(args, k) is not None}
    for k, v in kw.items():
        if v < (0 if k == "incidents" else 1):
            raise GridgovError(f"--{k.replace('_', '-')} = {v} 无效：请给出正整数。",
                               f"--{k.replace('_', '-')} = {v} is invalid: give a positive whole number.")
    with Progress("province", quiet=args.quiet, verbose=args.verbose) as say:
        summary = pv.build_province(args.dir, seed=args.seed, overwrite=args.overwrite, progress=say, **kw)
    print(demo_summary(summary))
    return 0


def cmd_run(args, stages=None) -> int:
    from pipelines.run import available_stages, db_path, run_project

    todo = available_stages() if stages is None else stages
    with Progress("run", total=1 + len(todo), quiet=args.quiet, verbose=args.verbose,
                  advance_on=("阶段 / stage", "完成 / done")) as say:
        summary = run_project(args.dir, stages=stages, progress=say)
    print(run_summary(summary, db_path(args.dir)))
    return 0


def app_script() -> Path:
    """The Streamlit entry script: ``app_pages/main.py`` (installed with the package), or the
    checkout's ``app.py`` where the app has no packaged entry script."""
    import importlib.util

    spec = importlib.util.find_spec("app_pages")
    for loc in (spec.submodule_search_locations or []) if spec else []:
        if (Path(loc) / "main.py").is_file():
            return Path(loc) / "main.py"
    if (REPO / "app.py").is_file():
        return REPO / "app.py"
    raise GridgovError("找不到应用入口（app_pages/main.py）；请重新安装 gridgov。",
                       "The app's entry script (app_pages/main.py) is missing; reinstall gridgov.")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def app_command(project: Path, port: int, host: str = "127.0.0.1") -> list[str]:
    """The ``streamlit run`` command line of ``gridgov app``."""
    cmd = [sys.executable, "-m", "streamlit", "run", str(app_script()),
           "--server.port", str(port), "--server.address", host]
    for k, v in STREAMLIT_OPTIONS.items():
        cmd += [f"--{k}", v]
    return cmd + ["--", "--project", str(project)]


def _vendor_assets(script: Path) -> None:
    """Copy Leaflet and jQuery into the ``static/`` folder next to the entry script before
    Streamlit starts, so the static route serves them from the first request (the pages would
    copy them on first use otherwise). A failure (read-only install) only warns: the pages then
    try again, or inline the files."""
    try:
        from app_pages.assets import ensure_vendor

        ensure_vendor(script.parent / "static")
    except Exception as exc:  # noqa: BLE001 - any failure leaves the pages' own fallback
        print(f"警告 / warning: 未能复制地图脚本 / could not copy the map's scripts ({type(exc).__name__}: {exc})",
              file=sys.stderr)


def cmd_app(args) -> int:
    project = Path(args.dir).resolve()
    if not project.is_dir():
        raise GridgovError(f"项目文件夹 {project} 不存在；可用 gridgov demo {args.dir} 生成演示项目。",
                           f"Project folder {project} does not exist; `gridgov demo {args.dir}` writes the demo.")
    if not is_loopback(args.host):
        print(f"警告 / warning: the app listens on {args.host}: anyone who can reach this machine can open "
              "it, and it has no login. 应用对外开放且无登录；共享时请放在带登录的反向代理之后 "
              "(put it behind a reverse proxy with a login when shared).", file=sys.stderr)
    cmd = app_command(project, args.port, args.host)
    _vendor_assets(app_script())
    env = dict(os.environ, GRIDGOV_PROJECT=str(project))
    shown = "localhost" if is_loopback(args.host) else args.host
    print(f"gridgov app → http://{shown}:{args.port}  (project {project})", file=sys.stderr)
    return subprocess.call(cmd, env=env)


def cmd_alerts(args) -> int:
    from pipelines.alerts import print_open_alerts

    print_open_alerts(args.dir)
    return 0


def cmd_brief(args) -> int:
    from pipelines.brief import write_brief

    print(write_brief(args.dir, args.out))
    return 0


def cmd_map(args) -> int:
    from pipelines.mapexport import export_map, file_name

    out = args.out or Path(args.dir) / "maps" / file_name(
        args.kind, args.format, street_code=args.street, category=args.category, plan_id=args.plan)
    print(export_map(args.dir, args.kind, out, fmt=args.format, street_code=args.street,
                     category=args.category, plan_id=args.plan, level=args.level))
    return 0


def cmd_export(args) -> int:
    from pipelines.run import db_path

    db = db_path(args.dir)
    if not db.exists():
        raise GridgovError(f"{db} 不存在；请先运行 gridgov run {args.dir}", f"{db} does not exist; run `gridgov run {args.dir}` first")
    if args.report:
        from pipelines.db import connect
        from pipelines.stage_staffing import export_report

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


# ---- parser -----------------------------------------------------------------------------

def _verbosity(parser: argparse.ArgumentParser, *, sub: bool) -> None:
    """``-q``/``-v`` on the main parser and on every subcommand (a subcommand's default must not
    overwrite what was given before it, hence SUPPRESS there)."""
    d = argparse.SUPPRESS if sub else None
    parser.add_argument("-q", "--quiet", action="store_true", default=d if sub else False,
                        help="no progress line, only the result and errors / 仅输出结果")
    parser.add_argument("-v", "--verbose", action="count", default=d if sub else 0,
                        help="every progress message on its own line; -vv adds debug logs / 详细输出")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gridgov",
        description="网格化治理分析平台 / grid-governance analytics for street offices. "
                    "Typical use: gridgov demo demo-city && gridgov run demo-city && gridgov app demo-city",
    )
    p.add_argument("--version", action="version", version=f"gridgov {_version()}")
    _verbosity(p, sub=False)
    sub = p.add_subparsers(dest="cmd", required=True)

    def add(name: str, **kw) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, **kw)
        _verbosity(sp, sub=True)
        return sp

    d = add("demo", help="write the demo city's project folder (呼和浩特演示城市)",
            description="Write a project folder for the Hohhot demo city: real district boundaries, "
                        "street and community names and codes; synthetic geometry, buildings and records.")
    d.add_argument("dir")
    d.add_argument("--small", action="store_true", help="one street, a few thousand buildings (fast tests)")
    d.add_argument("--seed", type=int, default=2023, help="random seed (same seed, same files)")
    d.add_argument("--overwrite", action="store_true", help="replace an existing folder's files")
    d.add_argument("--province", action="store_true",
                   help="a synthetic province instead: Hohhot's nine real districts plus shifted synthetic "
                        "copies, ~1M buildings, ~100M incidents as a Parquet folder incidents/month=YYYY-MM/ "
                        "(gridgov/province.py) / 合成省份")
    d.add_argument("--buildings", type=int, help="--province: about this many buildings (default 1,000,000)")
    d.add_argument("--incidents", type=int, help="--province: about this many incidents (default 100,000,000)")
    d.add_argument("--workers", type=int, help="--province: processes writing incidents (default 1; same files)")
    d.add_argument("--chunk-rows", dest="chunk_rows", type=int,
                   help="--province: incident rows per step (default 2,000,000; same files)")
    d.set_defaults(func=cmd_demo)
    i = add("ingest", help="load and validate the project's layers into gridgov.duckdb",
            description="Read every layer, validate it, write clean tables and rejects (no analysis stages).")
    i.add_argument("dir")
    i.set_defaults(func=lambda a: cmd_run(a, stages=[]))
    r = add("run", help="ingest and run every stage, atomically",
            description="Ingest plus every stage (grids, hotspots, staffing) into DIR/gridgov.duckdb; "
                        "a failed run leaves the previous database as it was.")
    r.add_argument("dir")
    r.set_defaults(func=cmd_run)
    a = add("app", help="start the Streamlit app on a project (on this machine only, by default)",
            description="Start the Streamlit app on DIR. It listens on 127.0.0.1 (this machine only) unless "
                        "--host says otherwise; it has no login, so put it behind a reverse proxy with one "
                        "when it is shared.")
    a.add_argument("dir")
    a.add_argument("--port", type=int, default=8501)
    a.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; 0.0.0.0 = every interface, with a warning)")
    a.set_defaults(func=cmd_app)
    al = add("alerts", help="list the open early-warning alerts of a project (预警)",
             description="Print the open alerts (status new or acknowledged) of DIR's last run, one per line.")
    al.add_argument("dir")
    al.set_defaults(func=cmd_alerts)
    b = add("brief", help="write the one-page PDF brief for a district meeting (简报)",
            description="Write a PDF brief of DIR's last run (read-only on the database; needs a CJK font). "
                        "See docs/brief.md.")
    b.add_argument("dir")
    b.add_argument("--out", help="PDF file to write (default DIR/brief.pdf)")
    b.set_defaults(func=cmd_brief)
    m = add("map", help="one map as an A4 PNG or PDF (legend, scale bar, north arrow) / 打印地图",
            description="Draw one map of DIR's last run as an A4 landscape PNG (150 dpi) or PDF with a legend, "
                        "scale bar, north arrow, data date and attribution.")
    m.add_argument("dir")
    m.add_argument("--kind", required=True, choices=["overview", "grids", "hotspots", "alerts", "staffing"])
    m.add_argument("--format", default="png", choices=["png", "pdf"])
    m.add_argument("--street", help="street code: only that street")
    m.add_argument("--category", help="incident category (hotspots, alerts)")
    m.add_argument("--plan", help="plan id (grids; default the current plan)")
    m.add_argument("--level", choices=["street", "community"], help="staffing: street or community gaps")
    m.add_argument("--out", help="file to write (default DIR/maps/gridgov-KIND….png)")
    m.set_defaults(func=cmd_map)
    e = add("export", help="export a table (GeoJSON, GeoPackage, Shapefile, CSV, Excel) or the report")
    e.add_argument("dir")
    e.add_argument("--table", help="table name, e.g. grids, streets, rejects")
    e.add_argument("--format", default="geojson", choices=["geojson", "gpkg", "shp", "csv", "xlsx"])
    e.add_argument("--out", help="output file or folder")
    e.add_argument("--report", action="store_true", help="the Excel report for a district meeting (one sheet per table)")
    e.set_defaults(func=cmd_export)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.WARNING if args.quiet or not args.verbose else (
        logging.INFO if args.verbose == 1 else logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return args.func(args)
    except (GridgovError, FileExistsError) as exc:
        print(f"错误 / error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("已中断 / interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
