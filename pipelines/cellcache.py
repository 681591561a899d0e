"""Cells and adjacency per community, built on the workers and cached by an input fingerprint.

The tessellation (:func:`geo.tessellation.build_cells`) and the contiguity graph
(:func:`geo.tessellation.community_adjacency`) of one community depend only on that community's
boundary and buildings, the barrier lines, the special units and two settings. This module

* computes a fingerprint (SHA-256) of exactly those inputs plus the code that builds them (this
  module's and ``geo/tessellation.py``'s source, the shapely/GEOS, numpy, pandas, geopandas and
  scipy versions) for every community;
* reads the communities whose fingerprint is in ``PROJECT/.gridgov_cache/cells/`` back from there;
* builds the others on the same workers the grid engine uses (a local process pool of
  ``[grids] n_jobs`` processes, or the Dask executor of ``[compute] scheduler``), in a few
  batches of communities, instead of building every community in the main process;
* writes the cache again when anything was built.

The cache never changes a result: the cells come back column for column and row for row as
:func:`geo.tessellation.build_cells` of the whole city makes them (their order too), and anything
that could change them changes the fingerprint. The barrier lines and special units enter every
community's fingerprint *whole*: :mod:`geo.tessellation` reads them through a spatial index whose
hit order follows the whole index, and that order can change which piece number a cell gets; a
new barrier or unit anywhere therefore rebuilds every community, while a changed building
rebuilds only its own community.

Files: ``cells.parquet`` (every cached cell with its community's fingerprint; geometry as WKB)
and ``adjacency.npz`` (the adjacency arrays of every community, concatenated, read with
``allow_pickle=False``). Delete the folder at any time: it is rebuilt on the next run.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import shapely

from geo import tessellation as T
from geo.tessellation import Adjacency, build_cells, community_adjacency

log = logging.getLogger(__name__)

CACHE_DIR = ".gridgov_cache"
SUBDIR = "cells"
#: Bump when the layout of the cached files changes.
FORMAT = "2"
_EXTRA = re.compile(r"-s\d+$")  # cells split off a multipart cell (geo.tessellation._mend_multipart)
_ADJ = ("indptr", "indices", "shared", "barrier_pairs", "barrier_shared")


def cache_dir_for(con) -> Path | None:
    """``PROJECT/.gridgov_cache/cells`` for the run's database file, or None (in-memory database)."""
    try:
        row = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchone()
    except Exception:  # pragma: no cover - very old DuckDB
        return None
    if not row or not row[0] or row[0] == ":memory:":
        return None
    return Path(row[0]).resolve().parent / CACHE_DIR / SUBDIR


def _code_version() -> bytes:
    h = hashlib.sha256()
    h.update(Path(T.__file__).read_bytes())
    h.update(Path(__file__).read_bytes())
    import scipy

    h.update(f"{shapely.__version__}|{shapely.geos_version_string}|{np.__version__}|{pd.__version__}|"
             f"{gpd.__version__}|{scipy.__version__}|{FORMAT}".encode())
    return h.digest()


def _row_hashes(df: pd.DataFrame | None) -> tuple[bytes, np.ndarray]:
    """(a digest of the frame's columns, dtypes and CRS; one 64-bit hash per row of its values)."""
    if df is None:
        return b"<none>", np.zeros(0, dtype=np.uint64)
    geom_col = df.geometry.name if isinstance(df, gpd.GeoDataFrame) else None
    head = [f"{c}:{df[c].dtype}" for c in df.columns]
    if isinstance(df, gpd.GeoDataFrame):
        head.append(str(df.crs.to_wkt() if df.crs is not None else None))
    cols = []
    for c in df.columns:
        if c == geom_col:
            wkb = shapely.to_wkb(np.asarray(df[c].values, dtype=object), output_dimension=2, include_srid=False)
            cols.append(pd.util.hash_pandas_object(pd.Series(wkb, dtype=object), index=False).to_numpy())
        else:
            col = df[c]
            try:
                cols.append(pd.util.hash_pandas_object(col, index=False).to_numpy())
            except TypeError:  # unhashable values (lists): their text
                cols.append(pd.util.hash_pandas_object(col.map(repr).astype(object), index=False).to_numpy())
    rows = np.zeros(len(df), dtype=np.uint64)
    for k, v in enumerate(cols):  # order-dependent combination, as pandas combines columns
        rows = rows * np.uint64(1_000_003 + 2 * k) ^ v.astype(np.uint64)
    return "|".join(head).encode(), rows


def community_tasks(inp: dict, *, max_cell_area=None, workload_weights=None) -> tuple[list[dict], dict]:
    """One entry per community, in the order the whole-city build walks them.

    Each entry: ``code``, ``com_rows`` and ``bld_rows`` (row positions in the inputs),
    ``fingerprint``. Buildings without a known community or without geometry are left out, with
    the warning the whole-city build gives. Returns the entries and the shared inputs
    (barriers, special units, settings).
    """
    communities = inp["communities"]
    buildings = inp["buildings"]
    codes_all = communities["community_code"].astype("string")
    if codes_all.duplicated().any():  # build_cells dissolves them: one row per code, sorted
        order = sorted(codes_all.dropna().unique())
    else:
        order = list(codes_all)
    bcode = buildings["community_code"].astype("string")
    bgeom = np.asarray(buildings.geometry.values, dtype=object)
    unknown = (~bcode.isin(set(order)).to_numpy(bool)
               | shapely.is_missing(bgeom) | shapely.is_empty(bgeom))
    if unknown.any():
        warnings.warn(
            f"{int(unknown.sum())} building(s) have no known community_code or no geometry "
            "and are left out of the cells", stacklevel=3)
    settings = {"max_cell_area": max_cell_area, "workload_weights": workload_weights or None}
    h_shared = hashlib.sha256(_code_version())
    h_shared.update(repr(sorted((settings["workload_weights"] or {}).items())).encode())
    h_shared.update(repr(settings["max_cell_area"]).encode())
    for name in ("barriers", "special_units"):  # whole (see the module docstring)
        head, rows = _row_hashes(inp.get(name))
        h_shared.update(name.encode() + head + rows.tobytes())
    shared = h_shared.digest()
    b_head, b_rows = _row_hashes(buildings)
    c_head, c_rows = _row_hashes(communities)
    bpos = np.flatnonzero(~unknown)
    bkeys = bcode.to_numpy()[bpos]
    b_by = pd.Series(bpos).groupby(pd.Series(bkeys, dtype="string"), sort=False).indices
    c_by = pd.Series(np.arange(len(communities))).groupby(codes_all, sort=False).indices
    tasks = []
    for code in order:
        crow = np.asarray(c_by.get(code, []), dtype=np.int64)
        brow = bpos[np.asarray(b_by.get(code, []), dtype=np.int64)]
        h = hashlib.sha256(shared)
        h.update(str(code).encode() + b"\0" + c_head + c_rows[crow].tobytes() + b"\0" + b_head
                 + b_rows[brow].tobytes())
        tasks.append({"code": str(code), "com_rows": crow, "bld_rows": brow, "fingerprint": h.hexdigest()})
    return tasks, {"barriers": inp.get("barriers"), "special_units": inp.get("special_units"), "settings": settings}


def _pack(df):
    """A GeoDataFrame as plain columns + WKB (one vectorised call, not one pickle per shape)."""
    if not isinstance(df, gpd.GeoDataFrame):
        return df
    name = df.geometry.name
    return {"_packed": True, "frame": pd.DataFrame(df.drop(columns=[name])), "name": name, "crs": df.crs,
            "wkb": shapely.to_wkb(np.asarray(df.geometry.values, dtype=object))}


def _unpack(x):
    if isinstance(x, dict) and x.get("_packed"):
        out = gpd.GeoDataFrame(x["frame"], geometry=shapely.from_wkb(x["wkb"]), crs=x["crs"])
        return out.rename_geometry(x["name"]) if x["name"] != "geometry" else out
    return x


def build_batch(task: dict) -> list[tuple[str, gpd.GeoDataFrame, Adjacency | None]]:
    """Cells and adjacency of a batch of communities (runs on a worker): one ``build_cells`` call.

    Inputs and cells travel packed (:func:`_pack`) when ``task['pack']`` is set.
    """
    task = {k: _unpack(v) for k, v in task.items()}
    cells = build_cells(task["buildings"], task["communities"], task["barriers"],
                        special_units=task["special_units"], **task["settings"])
    out = []
    if not len(cells):
        return out
    for code, grp in cells.groupby(cells["community_code"].astype(str), sort=False):
        out.append((str(code), _pack(grp) if task.get("pack") else grp, community_adjacency(grp)))
    return out


def _batches(todo: list[dict], n: int) -> list[list[dict]]:
    """``n`` batches of about equal buildings (largest first into the lightest batch)."""
    n = max(1, min(n, len(todo)))
    load = [0] * n
    out: list[list[dict]] = [[] for _ in range(n)]
    for t in sorted(todo, key=lambda t: -len(t["bld_rows"])):
        k = min(range(n), key=lambda i: load[i])
        out[k].append(t)
        load[k] += len(t["bld_rows"]) + 50  # + a community's own cost
    return [b for b in out if b]


def _save(folder: Path, frames: list[pd.DataFrame], adj: dict, fps: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = f".tmp-{os.getpid()}"
    cells = pd.concat(frames, ignore_index=True)
    frame = pd.DataFrame(cells.drop(columns=["geometry"]))
    frame["geometry"] = shapely.to_wkb(np.asarray(cells["geometry"].to_numpy(), dtype=object))
    frame["_fp"] = frame["community_code"].astype(str).map(fps)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[b"gridgov_dtypes"] = json.dumps({c: str(frame[c].dtype) for c in frame.columns}).encode()
    codes = list(adj)
    arrays = {"codes": np.array(codes, dtype=str), "fps": np.array([fps[c] for c in codes], dtype=str)}
    for f in _ADJ:
        parts = [np.asarray(getattr(adj[c], f)) for c in codes]
        arrays[f"{f}_len"] = np.array([len(p) for p in parts], dtype=np.int64)
        arrays[f] = (np.concatenate(parts) if parts else np.zeros(0)).astype(
            np.float64 if f in ("shared", "barrier_shared") else np.int64)
    arrays["barrier_pairs"] = arrays["barrier_pairs"].reshape(-1, 2)
    with open(folder / f"adjacency.npz{tmp}", "wb") as fh:
        np.savez(fh, **arrays)
    pq.write_table(table.replace_schema_metadata(meta), str(folder / f"cells.parquet{tmp}"))
    os.replace(folder / f"adjacency.npz{tmp}", folder / "adjacency.npz")
    os.replace(folder / f"cells.parquet{tmp}", folder / "cells.parquet")


def _load(folder: Path, fps: dict) -> tuple[pd.DataFrame | None, dict]:
    """Cached cells (one frame, geometry as shapely) and adjacency of the communities whose fingerprint matches."""
    pq_path, npz_path = folder / "cells.parquet", folder / "adjacency.npz"
    if not (pq_path.is_file() and npz_path.is_file()):
        return None, {}
    try:
        with np.load(npz_path, allow_pickle=False) as z:
            codes, cfps = z["codes"].tolist(), z["fps"].tolist()
            ok = {c for c, f in zip(codes, cfps) if fps.get(c) == f}
            if not ok:
                return None, {}
            arrs = {f: z[f] for f in _ADJ}
            lens = {f: z[f"{f}_len"] for f in _ADJ}
        table = pq.read_table(pq_path)
        fp_col = table.column("_fp").to_pandas()
        code_col = table.column("community_code").to_pandas().astype(str)
        keep = (code_col.isin(ok) & (fp_col.to_numpy() == code_col.map(fps).to_numpy())).to_numpy(bool)
        frame = table.filter(pa.array(keep)).to_pandas()
        dtypes = json.loads(table.schema.metadata[b"gridgov_dtypes"])
        for c, dt in dtypes.items():  # back to the dtypes build_cells gives (None, not NaN, in object columns)
            if c in ("geometry", "_fp", "building_ids"):
                continue
            if dt == "object":
                vals = frame[c].to_numpy(dtype=object)
                frame[c] = pd.Series([None if v is None or (isinstance(v, float) and np.isnan(v)) else v
                                      for v in vals], dtype=object, index=frame.index)
            elif dt != str(frame[c].dtype):
                frame[c] = frame[c].astype(dt)
        frame["building_ids"] = [v.tolist() if isinstance(v, np.ndarray) else (list(v) if v is not None else [])
                                 for v in frame["building_ids"]]
        frame["geometry"] = shapely.from_wkb(frame["geometry"].to_numpy())
        frame = frame.drop(columns=["_fp"])
        adj = {}
        starts = {f: np.concatenate([[0], np.cumsum(lens[f])]) for f in _ADJ}
        ids = frame["cell_id"].to_numpy()
        cids = {c: ids[ix] for c, ix in frame.groupby(frame["community_code"].astype(str), sort=False).indices.items()}
        for k, c in enumerate(codes):
            if c not in ok:
                continue
            a = {f: arrs[f][starts[f][k]:starts[f][k + 1]] for f in _ADJ}
            adj[c] = Adjacency(community_code=c, cell_ids=cids[c], **a)
        return frame, adj
    except Exception as exc:  # a damaged or foreign file: rebuild
        log.warning("cell cache: %s unreadable (%s); rebuilding", folder, exc)
        return None, {}


def cells_and_adjacency(inp: dict, *, max_cell_area=None, workload_weights=None, cache_dir: Path | None = None,
                        n_jobs: int = 1, executor=None, n_batches: int | None = None,
                        progress=None) -> tuple[gpd.GeoDataFrame, dict, dict]:
    """All cells and the adjacency per community, exactly as ``build_cells`` + ``cell_adjacency`` give them.

    Parameters
    ----------
    inp
        ``communities``, ``buildings``, ``barriers``, ``special_units`` in one metric CRS.
    cache_dir
        Folder of the cache (None: no cache).
    n_jobs, executor
        Where the communities not in the cache are built: ``executor`` (e.g. a Dask executor),
        else ``n_jobs`` local processes (1: in this process).
    n_batches
        Batches of communities to build (default: one in this process, else four per worker,
        of about equal buildings); every batch is one ``build_cells`` call.

    Returns
    -------
    cells, adjacency, info
        ``info``: ``communities``, ``from_cache``, ``built``.
    """
    say = progress or (lambda m: None)
    crs = inp["communities"].crs or inp["buildings"].crs
    tasks, shared = community_tasks(inp, max_cell_area=max_cell_area, workload_weights=workload_weights)
    fps = {t["code"]: t["fingerprint"] for t in tasks}
    cached, adjacency = (_load(cache_dir, fps) if cache_dir is not None else (None, {}))
    todo = [t for t in tasks if t["code"] not in adjacency]
    frames = [cached] if cached is not None and len(cached) else []
    if todo:
        say(f"grids: cells of {len(todo)} communit{'y' if len(todo) == 1 else 'ies'} "
            f"({len(tasks) - len(todo)} from the cache)")
        workers = n_jobs if executor is None else max(n_jobs, 2)
        nb = n_batches or (1 if workers <= 1 else workers * 4)
        jobs = []
        batches = _batches(todo, nb)
        pack = len(batches) > 1 and (executor is not None or n_jobs > 1)  # to other processes
        shared_sent = {k: (_pack(v) if pack else v) for k, v in shared.items()}
        for batch in batches:
            crow = np.concatenate([t["com_rows"] for t in batch])
            brow = np.sort(np.concatenate([t["bld_rows"] for t in batch]))
            job = {"communities": inp["communities"].iloc[np.sort(crow)],
                   "buildings": inp["buildings"].iloc[brow], **shared_sent, "pack": pack}
            jobs.append({k: (_pack(v) if pack else v) for k, v in job.items()})
        if executor is not None and len(jobs) > 1:
            built = executor.map(build_batch, jobs)
        elif n_jobs > 1 and len(jobs) > 1:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor
            with ProcessPoolExecutor(max_workers=n_jobs, mp_context=mp.get_context("fork")) as ex:
                built = list(ex.map(build_batch, jobs, chunksize=1))
        else:
            built = map(build_batch, jobs)
        for res in built:
            for code, cells, adj in res:
                frames.append(pd.DataFrame(_unpack(cells)))
                adjacency[code] = adj
    rank = {t["code"]: k for k, t in enumerate(tasks)}
    if frames:
        cells = pd.concat(frames, ignore_index=True)
        # the whole-city order: every community's cells, then the cells split off multipart cells
        extra = cells["cell_id"].astype(str).str.contains(_EXTRA).to_numpy(bool)
        key = cells["community_code"].astype(str).map(rank).to_numpy(np.int64) + extra * len(rank)
        cells = cells.iloc[np.argsort(key, kind="stable")].reset_index(drop=True)
        cells = gpd.GeoDataFrame(cells[T.CELL_COLUMNS], geometry="geometry", crs=crs)
    else:
        cells = gpd.GeoDataFrame(pd.DataFrame({c: [] for c in T.CELL_COLUMNS}), geometry="geometry", crs=crs)
    if cache_dir is not None and todo:
        try:
            _save(cache_dir, [pd.DataFrame(cells)], adjacency, fps)
        except OSError as exc:  # a read-only project folder: no cache, same result
            log.warning("cell cache: cannot write %s (%s)", cache_dir, exc)
    # cell_adjacency's order: communities as they first appear among the cells
    seen = pd.unique(cells["community_code"].astype(str)) if len(cells) else []
    adjacency = {str(c): adjacency[str(c)] for c in seen}
    info = {"communities": len(tasks), "from_cache": len(tasks) - len(todo), "built": len(todo)}
    log.info("cells: %d cells of %d communities (%d from the cache, %d built)", len(cells), len(tasks),
             info["from_cache"], len(todo))
    return cells, adjacency, info
