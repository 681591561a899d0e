"""Province bench (#13.3): every stage in its own process, 1 worker vs a 2-worker Dask LocalCluster.

For each size (buildings; incidents = ``--per-building`` × buildings, 100 by default, so 1M
buildings = 100M incidents) the bench

1. generates the province with ``gridgov.province.build_province`` in a child process (or reuses
   the folder when it was generated with the same size, incidents and seed), measuring its wall
   time and peak memory;
2. for each configuration writes ``[compute]`` / ``[grids]`` into the project's ``gridgov.toml``:
   ``1w``  = ``scheduler = ""`` and ``[grids] n_jobs = 1`` (one process),
   ``d2``  = ``scheduler = "local"``, ``workers = 2``, ``n_jobs = 2`` (a 2-worker Dask LocalCluster),
   both with ``[grids] start_from_current_grids = false`` (every community drawn by the engine);
3. runs ``gridgov ingest DIR`` once (it does not use the scheduler; DuckDB takes both cores in
   either configuration), keeps the ingested database, and then, per configuration, each stage
   of ``gridgov run`` (grids, hotspots, staffing, cases, whatever is installed) in its own process
   on a fresh copy of it, in run order.

Each process tree is polled with psutil every 0.2 s: the peak RSS and CPU seconds of the main
process and of every child (Dask workers, pool processes) separately; the tree's total CPU comes
from ``getrusage(RUSAGE_CHILDREN)``. Results go to ``<workdir>/results.json`` (one record per size,
configuration and step, replaced when re-run), and the Markdown tables (per-step time, CPU, peak
memory per process, 1 vs 2 workers, growth exponents = least-squares slope of log time against log
buildings) are printed from every record there. Nothing here is a test: the figures depend on the
machine and its load, which is recorded with them.

Usage::

    nice python bench/bench_province.py --sizes 10000 50000          # small sizes first
    nice python bench/bench_province.py --sizes 1000000 --timeout 5400
    python bench/bench_province.py --report                          # tables only
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
# this checkout's code, whatever an editable install elsewhere points at (its stage processes
# and their Dask workers inherit the path)
sys.path.insert(0, str(REPO))
DEFAULT_WORK = REPO / "bench" / "_work" / "province"
# start_from_current_grids = false: the grids stage draws every community afresh (the engine's
# partition, the path that runs on the Dask cluster; starting from today's grids re-draws them in
# one process whatever the settings), as bench/bench_dask.py does.
CONFIGS = {
    "1w": {"compute": {"scheduler": "", "workers": 1}, "grids": {"n_jobs": 1, "start_from_current_grids": False}},
    "d2": {"compute": {"scheduler": "local", "workers": 2},
           "grids": {"n_jobs": 2, "start_from_current_grids": False}},
}
META = ".bench-province.json"
BASE_TOML = ".bench-base.toml"


# ---- measuring a process tree -----------------------------------------------------------

def _role(p: psutil.Process, root_pid: int) -> str:
    try:
        cmd = " ".join(p.cmdline())
    except (psutil.Error, OSError):
        return "?"
    if p.pid == root_pid:
        return "main"
    if "resource_tracker" in cmd:
        return "resource_tracker"
    if "spawn_main" in cmd or "forkserver" in cmd:
        return "worker (spawned)"
    if "distributed" in cmd or "dask" in cmd:
        return "dask"
    return "child (forked)"


def run_measured(cmd: list[str], *, cwd: Path | None = None, timeout: float | None = None,
                 env: dict | None = None, log: Path | None = None, poll: float = 0.2) -> dict:
    """Run ``cmd``; return wall, total CPU (rusage), per-process peak RSS / CPU, rc and load."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    out = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    procs: dict[int, dict] = {}
    stop = threading.Event()

    def sample() -> None:
        try:
            root = psutil.Process(proc.pid)
        except psutil.Error:
            return
        while not stop.is_set():
            try:
                tree = [root] + root.children(recursive=True)
            except psutil.Error:
                tree = []
            for p in tree:
                try:
                    with p.oneshot():
                        rss = p.memory_info().rss
                        ct = p.cpu_times()
                    rec = procs.get(p.pid)
                    if rec is None:
                        rec = procs[p.pid] = {"pid": p.pid, "role": _role(p, proc.pid), "peak_rss": 0,
                                              "cpu": 0.0, "first_seen": round(time.perf_counter() - t0, 1)}
                    rec["peak_rss"] = max(rec["peak_rss"], rss)
                    rec["cpu"] = max(rec["cpu"], ct.user + ct.system)
                    rec["last_seen"] = round(time.perf_counter() - t0, 1)
                except psutil.Error:
                    continue
            stop.wait(poll)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    timed_out = False
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        for p in [psutil.Process(proc.pid)] + psutil.Process(proc.pid).children(recursive=True):
            try:
                p.kill()
            except psutil.Error:
                pass
        rc = proc.wait()
    wall = time.perf_counter() - t0
    stop.set()
    th.join(timeout=5)
    if log:
        out.close()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    plist = sorted(procs.values(), key=lambda r: (r["role"] != "main", r["first_seen"], r["pid"]))
    for r in plist:
        r["peak_rss_mb"] = round(r.pop("peak_rss") / 2**20)
        r["cpu"] = round(r["cpu"], 1)
    return {"cmd": cmd, "rc": rc, "timed_out": timed_out, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "max_rss_mb_rusage": round(after.ru_maxrss / 1024), "procs": plist,
            "load_before": [round(x, 2) for x in load0], "load_after": [round(x, 2) for x in os.getloadavg()]}


# ---- one stage on an ingested database (runs in its own process) -------------------------

def stage_main(project: str, name: str) -> int:
    import importlib

    from pipelines import db as gdb
    from pipelines.config import load_settings
    from pipelines.run import db_path

    settings = load_settings(Path(project))
    con = gdb.connect(db_path(project))
    if hasattr(gdb, "apply_compute_settings"):
        gdb.apply_compute_settings(con, settings, project)
    try:
        t0 = time.perf_counter()
        mod = importlib.import_module(f"pipelines.stage_{name}")
        summary = mod.run(con, settings, progress=lambda m: print(f"[{time.perf_counter() - t0:8.1f}s] {m}",
                                                                   flush=True)) or {}
        con.execute("CHECKPOINT")
    finally:
        con.close()
    print(json.dumps({"stage": name, "summary": summary}, ensure_ascii=False, default=str))
    return 0


def generate_main(project: str, buildings: int, incidents: int, seed: int, workers: int) -> int:
    from gridgov.province import build_province

    t0 = time.perf_counter()
    s = build_province(project, buildings=buildings, incidents=incidents, seed=seed, workers=workers,
                       overwrite=True, progress=lambda m: print(f"[{time.perf_counter() - t0:8.1f}s] {m}", flush=True))
    s.pop("city_rows", None)
    print(json.dumps(s, ensure_ascii=False))
    return 0


# ---- driver -----------------------------------------------------------------------------

def _toml_with(base: str, cfg: dict) -> str:
    """``base`` with the keys of ``cfg`` set: into the section when ``base`` has it (TOML allows
    a table once), else in a new section at the end."""
    lines = base.rstrip("\n").split("\n")
    for section, kv in cfg.items():
        keys = [f"{k} = {json.dumps(v) if not isinstance(v, bool) else str(v).lower()}" for k, v in kv.items()]
        head = next((i for i, ln in enumerate(lines) if ln.split("#")[0].strip() == f"[{section}]"), None)
        if head is None:
            lines += ["", f"[{section}]   # bench/bench_province.py configuration", *keys]
        else:
            lines[head + 1:head + 1] = [*keys, "# (above: bench/bench_province.py configuration)"]
    return "\n".join(lines) + "\n"


def _stages() -> list[str]:
    from pipelines.run import available_stages

    return available_stages()


def _save(results_path: Path, records: list[dict]) -> None:
    old = json.loads(results_path.read_text()) if results_path.exists() else []
    def key(r: dict) -> tuple:
        return r["buildings_target"], r["config"], r["step"], r.get("variant", "")

    keys = {key(r) for r in records}
    kept = [r for r in old if key(r) not in keys]
    results_path.write_text(json.dumps(kept + records, indent=1, ensure_ascii=False))


def ensure_province(work: Path, size: int, per_building: float, seed: int, gen_workers: int,
                    timeout: float | None) -> tuple[Path, dict]:
    project = work / f"p{size}"
    incidents = int(round(size * per_building))
    want = {"buildings": size, "incidents": incidents, "seed": seed}
    meta_p = project / META
    if meta_p.exists():
        meta = json.loads(meta_p.read_text())
        if meta.get("want") == want:
            print(f"  reusing {project} ({meta['summary']['buildings']:,} buildings, "
                  f"{meta['summary']['incidents']:,} incidents)", flush=True)
            return project, meta
    project.mkdir(parents=True, exist_ok=True)
    meta_p.unlink(missing_ok=True)
    print(f"  generating {project}: {size:,} buildings, {incidents:,} incidents", flush=True)
    log = work / f"p{size}.generate.log"
    m = run_measured([sys.executable, __file__, "_generate", str(project), str(size), str(incidents), str(seed),
                      str(gen_workers)], cwd=REPO, timeout=timeout, log=log)
    if m["rc"] != 0:
        raise SystemExit(f"generation failed (rc {m['rc']}), see {log}")
    summary = json.loads(log.read_text().strip().splitlines()[-1])
    (project / BASE_TOML).write_text((project / "gridgov.toml").read_text(encoding="utf-8"), encoding="utf-8")
    meta = {"want": want, "summary": summary, "generate": m, "gen_workers": gen_workers,
            "bytes": {"incidents": sum(f.stat().st_size for f in (project / "incidents").rglob("*.parquet")),
                      "total": sum(f.stat().st_size for f in project.rglob("*") if f.is_file())}}
    meta_p.write_text(json.dumps(meta, indent=1, ensure_ascii=False))
    print(f"  generated in {m['wall_s']} s, peak {max(p['peak_rss_mb'] for p in m['procs'])} MB per process",
          flush=True)
    return project, meta


def bench_size(work: Path, size: int, args) -> list[dict]:
    project, meta = ensure_province(work, size, args.per_building, args.seed, args.gen_workers, args.timeout)
    base = (project / BASE_TOML).read_text(encoding="utf-8")
    records = [{"buildings_target": size, "config": "-", "step": "generate", "variant": "",
                "buildings": meta["summary"]["buildings"],
                "incidents": meta["summary"]["incidents"], "gen_workers": meta["gen_workers"],
                "bytes": meta["bytes"], **meta["generate"]}]
    _save(work / "results.json", records[:1])
    if args.generate_only:
        return records
    n_incidents = meta["summary"]["incidents"]
    variant = ""
    if args.no_incidents:  # the same province without its incidents folder (symbolic links to the rest)
        bare = work / f"p{size}-no-incidents"
        bare.mkdir(exist_ok=True)
        for f in project.iterdir():
            if f.name in ("incidents", "gridgov.duckdb", "gridgov.toml") or f.name.startswith("."):
                continue
            link = bare / f.name
            if not link.is_symlink():
                link.symlink_to(f.resolve())
        (bare / BASE_TOML).write_text(base, encoding="utf-8")
        project, n_incidents, variant = bare, 0, "no incidents"
    host = {"machine": platform.node(), "cpus": os.cpu_count(),
            "ram_gb": round(psutil.virtual_memory().total / 2**30, 1)}
    stages = args.stages or _stages()
    db = project / "gridgov.duckdb"
    saved = project / ".bench-ingested.duckdb"

    def step(cfg_name: str, name: str, cmd: list[str]) -> dict:
        log = work / f"p{size}.{cfg_name}.{name}.log"
        print(f"  [{cfg_name}] {name} ...", end=" ", flush=True)
        m = run_measured(cmd, cwd=REPO, timeout=args.timeout, log=log)
        rec = {"buildings_target": size, "config": cfg_name, "step": name, "variant": variant,
               "buildings": meta["summary"]["buildings"], "incidents": n_incidents,
               "settings": CONFIGS[cfg_name], "host": host, "finished_at": time.strftime("%H:%M:%S", time.gmtime()),
               **m}
        if m["rc"] != 0:
            rec["error_tail"] = log.read_text(errors="replace")[-3000:]
        records.append(rec)
        peak = max((p["peak_rss_mb"] for p in m["procs"]), default=0)
        print(f"rc {m['rc']}, {m['wall_s']} s wall, {m['cpu_s']} s CPU, peak {peak} MB "
              f"({len(m['procs'])} process(es)), load {m['load_before'][0]}", flush=True)
        _save(work / "results.json", [rec])
        if m["rc"] != 0:
            print(f"    FAILED: see {log}", flush=True)
        return rec

    # ingest once (it does not use the [compute] scheduler; DuckDB uses both cores either way),
    # keep the ingested database and start every configuration's stages from a copy of it
    if not args.skip_ingest or not saved.exists():
        first = args.configs[0]
        (project / "gridgov.toml").write_text(_toml_with(base, CONFIGS[first]), encoding="utf-8")
        db.unlink(missing_ok=True)
        rec = step(first, "ingest", [sys.executable, "-m", "pipelines", "ingest", str(project)])
        if rec["rc"] != 0:
            (project / "gridgov.toml").write_text(base, encoding="utf-8")
            return records
        shutil.copyfile(db, saved)
    if args.ingest_only:
        (project / "gridgov.toml").write_text(base, encoding="utf-8")
        return records
    for cfg_name in args.configs:
        (project / "gridgov.toml").write_text(_toml_with(base, CONFIGS[cfg_name]), encoding="utf-8")
        if not args.reuse_db:
            shutil.copyfile(saved, db)
        for s in stages:
            # the grids stage caches cells per community in PROJECT/.gridgov_cache: measure every
            # configuration cold (the cache is built, and written, in each run)
            shutil.rmtree(project / ".gridgov_cache", ignore_errors=True)
            step(cfg_name, s, [sys.executable, __file__, "_stage", str(project), s])
    (project / "gridgov.toml").write_text(base, encoding="utf-8")
    return records


# ---- report -----------------------------------------------------------------------------

def _slope(xs: list[float], ys: list[float]) -> float | None:
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if x > 0 and y and y > 0]
    if len(pts) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx if sxx else None


def _procs_text(procs: list[dict]) -> str:
    main = [p for p in procs if p["role"] == "main"]
    others = [p for p in procs if p["role"] not in ("main", "resource_tracker")]
    parts = [f"main {main[0]['peak_rss_mb']:,}" if main else "main ?"]
    if others:
        big = sorted(others, key=lambda p: -p["peak_rss_mb"])
        shown = ", ".join(f"{p['peak_rss_mb']:,}" for p in big[:4])
        parts.append(f"{len(others)} child{'ren' if len(others) > 1 else ''}: {shown}"
                     + (" …" if len(big) > 4 else ""))
    return "; ".join(parts)


def report(work: Path) -> str:
    path = work / "results.json"
    if not path.exists():
        return "(no results yet)"
    recs = json.loads(path.read_text())
    out = []
    gens = sorted([r for r in recs if r["step"] == "generate"], key=lambda r: r["buildings_target"])
    if gens:
        out += ["Generation (`build_province`, one process per size):", "",
                "| buildings | incidents | files on disk | wall s | CPU s | peak RSS MB (per process) |",
                "|---:|---:|---:|---:|---:|---|"]
        for r in gens:
            out.append(f"| {r['buildings']:,} | {r['incidents']:,} | {r['bytes']['total'] / 2**30:.2f} GB | "
                       f"{r['wall_s']:,} | {r['cpu_s']:,} | {_procs_text(r['procs'])} |")
        out.append("")
    runs = [r for r in recs if r["step"] != "generate"]
    out += ["Per step (each its own process; wall / CPU of the whole process tree; peak RSS per process in MB; "
            "load = 1-min load average at the start; ended = UTC time it ended, 2026-12-06):", "",
            "| buildings | incidents | config | step | rc | wall s | CPU s | peak RSS MB | load | ended |",
            "|---:|---:|---|---|---:|---:|---:|---|---:|---|"]
    order = {"ingest": 0, "grids": 1, "hotspots": 2, "staffing": 3, "cases": 4}
    for r in runs:
        if r.get("variant"):
            r["step"] = f"{r['step']} ({r['variant']})"
    runs.sort(key=lambda r: (r["buildings_target"], -r["incidents"], r["config"], order.get(r["step"].split()[0], 9)))
    for r in runs:
        rc = "timeout" if r.get("timed_out") else r["rc"]
        out.append(f"| {r['buildings']:,} | {r['incidents']:,} | {r['config']} | {r['step']} | {rc} | "
                   f"{r['wall_s']:,} | {r['cpu_s']:,} | {_procs_text(r['procs'])} | {r['load_before'][0]} | "
                   f"{r.get('finished_at') or '—'} |")
    out.append("")
    # 1 vs 2 workers and growth exponents
    steps = sorted({r["step"] for r in runs}, key=lambda s: (order.get(s.split()[0], 9), s))
    sizes = sorted({r["buildings_target"] for r in runs})
    ok = {(r["buildings_target"], r["config"], r["step"]): r for r in runs if r["rc"] == 0}
    out += ["1 vs 2 workers (wall s, `1w` / `d2`):", "",
            "| step | " + " | ".join(f"{s:,}" for s in sizes) + " |",
            "|---|" + "---:|" * len(sizes)]
    for st in steps:
        cells = []
        for s in sizes:
            a, b = ok.get((s, "1w", st)), ok.get((s, "d2", st))
            cells.append(f"{a['wall_s'] if a else '—'} / {b['wall_s'] if b else '—'}")
        out.append(f"| {st} | " + " | ".join(cells) + " |")
    out.append("")
    out += ["Growth exponents (slope of log time against log buildings over the sizes that ran; 1 = linear):", "",
            "| step | config | sizes | wall exponent | CPU exponent |", "|---|---|---|---:|---:|"]
    for st in steps:
        for cfg in sorted({r["config"] for r in runs}):
            if st == "ingest":  # ingest does not use the scheduler: one series, whichever config ran it
                if cfg != sorted({r["config"] for r in runs})[0]:
                    continue
                pts = [next(ok[(s, c, st)] for c in ("1w", "d2") if (s, c, st) in ok)
                       for s in sizes if any((s, c, st) in ok for c in ("1w", "d2"))]
                cfg = "any"
            else:
                pts = [ok[(s, cfg, st)] for s in sizes if (s, cfg, st) in ok]
            if len(pts) < 2:
                continue
            xs = [p["buildings"] for p in pts]
            ew = _slope(xs, [p["wall_s"] for p in pts])
            ec = _slope(xs, [p["cpu_s"] for p in pts])
            out.append(f"| {st} | {cfg} | {', '.join(f'{x:,}' for x in xs)} | "
                       f"{'—' if ew is None else f'{ew:.2f}'} | {'—' if ec is None else f'{ec:.2f}'} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_stage":
        return stage_main(argv[1], argv[2])
    if argv and argv[0] == "_generate":
        return generate_main(argv[1], int(argv[2]), int(argv[3]), int(argv[4]), int(argv[5]))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[10_000, 50_000],
                    help="buildings (10k 50k 200k 1000000 for the full sweep)")
    ap.add_argument("--per-building", type=float, default=100.0, help="incidents per building (100)")
    ap.add_argument("--configs", nargs="*", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--stages", nargs="*", help="stages to run after ingest (default: all installed)")
    ap.add_argument("--seed", type=int, default=2023)
    ap.add_argument("--gen-workers", type=int, default=2, help="processes writing incidents (same files)")
    ap.add_argument("--workdir", type=Path, default=DEFAULT_WORK)
    ap.add_argument("--timeout", type=float, default=None, help="seconds per process (killed after)")
    ap.add_argument("--generate-only", action="store_true", help="generate (or reuse) the provinces, run nothing")
    ap.add_argument("--no-incidents", action="store_true",
                    help="bench the same province without its incidents (a folder of links beside it)")
    ap.add_argument("--skip-ingest", action="store_true",
                    help="reuse the ingested database kept from an earlier run of the same size")
    ap.add_argument("--reuse-db", action="store_true",
                    help="run the stages on the project's database as an earlier run left it (after its grids), "
                         "not on a fresh copy of the ingested one")
    ap.add_argument("--ingest-only", action="store_true",
                    help="ingest and keep the database for later --skip-ingest runs; run no stage")
    ap.add_argument("--report", action="store_true", help="only print the tables from results.json")
    args = ap.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    if not args.report:
        print(f"machine: {platform.node()}, {os.cpu_count()} CPUs, "
              f"{psutil.virtual_memory().total / 2**30:.1f} GB RAM, load {os.getloadavg()}", flush=True)
        for size in args.sizes:
            print(f"size {size:,} buildings", flush=True)
            bench_size(args.workdir, size, args)
    print(report(args.workdir))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
