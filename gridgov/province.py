"""Seeded synthetic *province*: several cities, ~1M buildings, ~100M incidents, streamed to disk.

``build_province(out_dir, buildings=1_000_000, incidents=100_000_000, seed=2023)`` writes a project
folder with the layout and columns of the demo city (gridgov/demo_city.py), except that the
incidents come as a hive-partitioned Parquet folder, the way large exports arrive::

    streets.geojson  communities.geojson  buildings.parquet  special_units.geojson
    barriers.geojson  staff.csv  current_grids.geojson  department_grids.geojson
    gridgov.toml  README.txt  truth/planted_hotspots.csv
    incidents/month=2024-01/part-00000.parquet … incidents/month=2025-12/part-000NN.parquet

What is real and what is synthetic
----------------------------------
* City 0 is Hohhot on its **real** boundaries: the nine districts and counties of
  ``data/hohhot/`` (新城区, 回民区, 玉泉区, 赛罕区, 土默特左旗, 托克托县, 和林格尔县, 清水河县, 武川县),
  with their real NBS 2023 street / community names and codes and 2020 census totals, exactly
  as the demo city uses them for its four urban districts.
* Cities 1, 2, … are **synthetic copies**: the same nine boundaries *shifted* to the points of a
  230 km lattice around Hohhot (east, west, north, south, diagonals, …), each drawn with its own
  random stream. Their
  codes start with ``99`` (no real province has that code: ``99CC`` + the Hohhot code's last
  digits) and their names carry ``合成N市`` / ``·合成N`` ("synthetic city N"). They do not describe
  any real place; their census profile is Hohhot's.
* Everything else (street / community polygons, buildings, special units, barriers, staff,
  today's grids, department grids, incidents) is synthetic in every city, as in the demo.

The size is chosen by streets: streets are taken round-robin over the nine districts of city 0,
then city 1, … until the expected number of buildings reaches ``buildings`` (so ``10_000`` gives a
handful of streets across the nine districts, ``1_000_000`` about seven cities). Incident rates
are the demo's (per resident, by category, season, weekday and hour) scaled so the expected total
is ``incidents``.

Streaming and reproducibility
-----------------------------
Buildings are generated and written one city at a time (one Parquet row group per city).
Incidents are generated per *unit* = (month, block of ``BLOCK_SITES`` consecutive building sites)
with vectorised numpy from a random stream keyed by (seed, month, block) only, and each unit is
written straight to ``incidents/month=YYYY-MM/part-BBBBB.parquet`` (one unit in memory at a time
per process). ``chunk_rows`` only decides how many units make one step (one task of a worker),
and ``workers`` how many processes run the steps: neither changes a byte of the output. Repeats (``repeat_of``) link incidents within one
unit (same community and category, within 14 days); no link crosses a month or block.
"""
from __future__ import annotations

import json
import math
import multiprocessing as mp
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import shapely

from gridgov import demo_city as dc

TEMPLATE_DISTRICTS = ("150102", "150103", "150104", "150105", "150121", "150122", "150123",
                      "150124", "150125")
DEFAULT_BUILDINGS = 1_000_000
DEFAULT_INCIDENTS = 100_000_000
DEFAULT_CHUNK_ROWS = 2_000_000
BLOCK_SITES = 50_000          # building sites per incident block (fixed: part of the file layout)
CITY_STEP_M = 230_000.0       # lattice step between the synthetic copies (both directions)
MAX_CITIES = 100              # city 0 (Hohhot) + copies 1..99 (codes 9901..9999)
JITTER_M = 3.5                # incidents lie within ±3.5 m (x and y) of their building's centre
REPEAT_DAYS = 14
# text columns with few distinct values: dictionary-encoded in the Parquet files (ids, times and
# phone numbers are not: 4x faster to write and smaller)
DICT_COLUMNS = ["category", "service_type", "source", "status", "staff_id", "resolved", "satisfaction",
                "returned", "department", "service_company", "reporter_name"]

OUTPUT_FILES = tuple(f for f in dc.OUTPUT_FILES if f != "incidents.csv")
INCIDENT_COLUMNS = (
    "incident_id", "occurred_at", "category", "service_type", "severity", "source", "status",
    "accepted_at", "dispatched_at", "responded_at", "closed_at", "staff_id", "repeat_of", "resolved",
    "satisfaction", "returned", "department", "service_company", "lon", "lat", "reporter_name",
    "reporter_phone",
)


# --------------------------------------------------------------------------------------------
# cities: which streets, where, under which codes and names
# --------------------------------------------------------------------------------------------

# Empty land of a province (about 200,000 km² here) in cells of at most 0.25 km², not the city
# default of 0.04 km²: 5.7M cells become about 1.8M, the grids stage's main process holds a third
# of the geometry, and rural grids (tens of km²) keep room to take shape (docs/scale.md).
PROVINCE_MAX_CELL_AREA = 250_000
PROVINCE_GRIDS_TOML = f"""
[grids]
max_cell_area = {PROVINCE_MAX_CELL_AREA}   # m²: empty land in cells of at most 0.25 km² (a city: 40000)
"""


def city_seed(seed: int, c: int) -> int:
    """City 0 draws with ``seed`` itself (its urban streets are the demo's); copies get their own."""
    return int(seed) if c == 0 else dc._key(f"{int(seed)}:province-city:{c}")


def _lattice() -> list[tuple[int, int]]:
    """Lattice positions around Hohhot (0, 0), nearest first: where the copies go."""
    pts = [(i, j) for i in range(-6, 7) for j in range(-6, 7) if (i, j) != (0, 0)]
    return sorted(pts, key=lambda p: (p[0] ** 2 + p[1] ** 2, abs(p[1]), -p[0], -p[1]))


_LATTICE = _lattice()


def city_offset(c: int) -> tuple[float, float]:
    """Metres added to city ``c``'s template coordinates: (0, 0) for Hohhot, then the points of a
    230 km lattice around it, nearest first (east, west, north, south, the diagonals, …), so the
    copies stay near the projection's central meridian (111°E) and never overlap (Hohhot's nine
    districts span about 160 km east-west and 200 km north-south)."""
    if c == 0:
        return 0.0, 0.0
    i, j = _LATTICE[c - 1]
    return CITY_STEP_M * i, CITY_STEP_M * j


def city_code(code: str, c: int) -> str:
    """A template (Hohhot) code as city ``c`` writes it: unchanged for Hohhot, ``99CC…`` for copies."""
    return code if c == 0 else f"99{c:02d}" + code[4:]


def _mean_households() -> dict:
    """Mean households per building of each building mix (what one building holds on average)."""
    rng = np.random.default_rng(0)
    out = {}
    for key, mix in dc.BMIX.items():
        t = dc._draw_types(rng, mix, 20_000)
        out[key] = float(np.mean(dc._draw_specs(t, rng)[3]))
    return out


def plan_cities(src: dict, n_buildings: int, seed: int) -> list[dict]:
    """Cities and their streets: round-robin over the nine districts until ``n_buildings``
    buildings are expected (a street is never split)."""
    mean_hh = _mean_households()
    vill = src["villages"]
    plans, total = [], 0.0
    for c in range(MAX_CITIES):
        sc = city_seed(seed, c)
        streets = dc._make_streets(src, TEMPLATE_DISTRICTS, sc)
        targets = pd.concat([dc._household_targets(src, d, sc) for d in TEMPLATE_DISTRICTS],
                            ignore_index=True).merge(
            vill[["code12", "street_code", "kind"]].rename(columns={"code12": "community_code"}),
            on="community_code", how="left", validate="1:1")
        func = dict(zip(streets["street_code"], streets["function_type"]))
        key = np.where(targets["kind"].values == "村委会", "rural",
                       targets["street_code"].map(func).fillna("residential").values)
        targets["est"] = targets["households_target"].values / np.array([mean_hh[k] for k in key])
        est = targets.groupby("street_code")["est"].sum()
        by_d = {d: list(streets.loc[streets["district_code"] == d, "street_code"]) for d in TEMPLATE_DISTRICTS}
        order = [s for i in range(max(map(len, by_d.values()))) for d in TEMPLATE_DISTRICTS
                 if i < len(by_d[d]) for s in [by_d[d][i]]]
        chosen = []
        for s in order:
            if total >= n_buildings:
                break
            chosen.append(s)
            total += float(est.get(s, 0.0))
        if chosen:
            sel = streets[streets["street_code"].isin(chosen)].reset_index(drop=True)
            plans.append({"city": c, "seed": sc, "streets": sel,
                          "dcodes": tuple(d for d in TEMPLATE_DISTRICTS if d in set(sel["district_code"])),
                          "expected_buildings": int(sum(est.get(s, 0.0) for s in chosen))})
        if total >= n_buildings:
            return plans
    raise ValueError(
        f"buildings={n_buildings:,} 超出上限（{MAX_CITIES} 座城市）。 / buildings={n_buildings:,} needs more "
        f"than {MAX_CITIES} cities; ask for fewer buildings.")


def _shift(geoms, dx: float, dy: float):
    if dx == 0 and dy == 0:
        return geoms
    return shapely.transform(geoms, lambda xy: xy + np.array([dx, dy]))


# --------------------------------------------------------------------------------------------
# writers
# --------------------------------------------------------------------------------------------

class _BuildingsWriter:
    """buildings.parquet written one city at a time (GeoParquet metadata of the first chunk,
    without its bbox, which would only describe that chunk)."""

    def __init__(self, path: Path):
        self.path, self.writer, self.schema = path, None, None

    def write(self, gdf) -> None:
        from geopandas.io.arrow import _geopandas_to_arrow

        t = _geopandas_to_arrow(gdf, index=False)
        if self.writer is None:
            meta = dict(t.schema.metadata)
            geo = json.loads(meta[b"geo"])
            for col in geo["columns"].values():
                col.pop("bbox", None)
                col["geometry_types"] = ["Polygon"]
            meta[b"geo"] = json.dumps(geo).encode()
            self.schema = t.schema.with_metadata(meta)
            self.writer = pq.ParquetWriter(self.path, self.schema, compression="zstd")
        self.writer.write_table(t.replace_schema_metadata(self.schema.metadata), row_group_size=1 << 20)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _fixed_strings(prefix: str, numbers: np.ndarray, width: int, valid=None) -> pa.Array:
    """``prefix`` + zero-padded ``numbers`` as an Arrow string array, built without Python strings."""
    n = len(numbers)
    pre = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
    w = len(pre) + width
    buf = np.empty((n, w), dtype=np.uint8)
    buf[:, :len(pre)] = pre
    v = np.asarray(numbers, dtype=np.int64).copy()
    for k in range(w - 1, len(pre) - 1, -1):
        buf[:, k] = 48 + (v % 10)
        v //= 10
    offsets = (np.arange(n + 1, dtype=np.int64) * w).astype(np.int32)
    arr = pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(buf.tobytes())])
    if valid is not None:
        arr = pc.if_else(pa.array(np.asarray(valid, dtype=bool)), arr, pa.scalar(None, pa.string()))
    return arr


def _codes_to_strings(codes: np.ndarray, names) -> pa.Array:
    """Integer codes into ``names`` (-1 = NULL) as a plain string array (Parquet dictionary-encodes it)."""
    codes = np.asarray(codes, dtype=np.int32)
    idx = pa.array(codes, mask=codes < 0, type=pa.int32())
    return pa.DictionaryArray.from_arrays(idx, pa.array(list(names), pa.string())).dictionary_decode()


def _timestamps(sec: np.ndarray, valid=None) -> pa.Array:
    sec = np.asarray(sec, dtype=np.int64)
    mask = None if valid is None else ~np.asarray(valid, dtype=bool)
    return pa.array(sec, type=pa.timestamp("s"), mask=mask)


# --------------------------------------------------------------------------------------------
# incidents: state shared by the steps (inherited by forked workers)
# --------------------------------------------------------------------------------------------

_STATE: dict = {}
CAT_INDEX = {c: i for i, c in enumerate(dc.CATEGORIES)}
SUBTYPES = [(c, s, sh) for c in dc.CATEGORIES
            for s, sh in (dc.COMPLAINT_SHARE.items() if c == "complaint_12345" else [("", 1.0)])]
STYPE_NAMES = tuple(dc.SERVICE_TYPES)
STATUS_NAMES = ("open", "in_progress", "closed")
RESOLVED_NAMES = ("是", "否")
SAT_NAMES = ("满意", "基本满意", "不满意")
RETURNED_NAMES = ("0", "1", "2")
REPORTER_NAMES = tuple(s + g for s in dc._SURNAMES for g in ("先生", "女士"))


def _departments() -> tuple[tuple, np.ndarray]:
    """Department names and, per SUBTYPES entry, the index of its department."""
    names = sorted(set(dc.DEPARTMENTS.values()) | set(dc.DEPARTMENTS_12345.values()) | {"城管局"})
    idx = [names.index(dc.DEPARTMENTS_12345.get(s, "城管局") if c == "complaint_12345"
                       else dc.DEPARTMENTS.get(c, "城管局")) for c, s, _ in SUBTYPES]
    return tuple(names), np.array(idx, dtype=np.int32)


def _companies() -> tuple[tuple, dict]:
    names = tuple(n for v in dc.SERVICE_COMPANIES.values() for n in v)
    start, first = {}, 0
    for stype, v in dc.SERVICE_COMPANIES.items():
        start[stype] = (first, len(v))
        first += len(v)
    return names, start


def _csr(keys: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Start and count per key 0..n-1 of rows sorted by key."""
    counts = np.bincount(keys, minlength=n)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    return starts, counts


def _unit(m: int, b: int) -> dict:
    """Generate and write the incidents of month ``m`` and site block ``b``; return counts."""
    S = _STATE
    days_all = S["days"]
    month = S["months"][m]
    rng = dc._rng(S["seed"], "province-incidents", month, b)
    dsel = S["month_of_day"] == m
    days = days_all[dsel]
    lo, hi = b * BLOCK_SITES, min((b + 1) * BLOCK_SITES, S["n_sites"])
    res = S["site_res"][lo:hi]
    bt = S["site_btype"][lo:hi]
    fn = S["site_func"][lo:hi]
    spw = S["site_spw"][lo:hi]
    is_b = bt >= 0
    bt0 = np.where(is_b, bt, 0)
    cats, stys, tss, sites = [], [], [], []
    for k, (cat, stype, share) in enumerate(SUBTYPES):
        w = np.where(is_b, res * dc.SITE_F[cat][bt0], 0.0)
        for f, mult in dc.FUNC_F.get(cat, {}).items():
            w = np.where(fn == dc.FUNCTION_ORDER.index(f), w * mult, w)
        if cat in ("sanitation", "public_order"):
            w = np.where(is_b, w, spw)
        elif cat == "complaint_12345":
            w = np.where(is_b, w, spw * 0.5)
        cum = np.cumsum(w)
        wsum = float(cum[-1]) if len(cum) else 0.0
        if wsum <= 0:
            continue
        lam = S["base"][k] * S["prof"][stype or cat][dsel] * (wsum / S["wtotal"][CAT_INDEX[cat]])
        counts = rng.poisson(lam)
        n = int(counts.sum())
        day = np.repeat(days, counts)
        ts = day.astype("datetime64[s]").astype(np.int64) + dc._clock(rng, cat, n)
        site = np.minimum(np.searchsorted(cum, rng.random(n) * wsum, side="right"), len(cum) - 1) + lo
        cats.append(np.full(n, CAT_INDEX[cat], np.int8))
        stys.append(np.full(n, STYPE_NAMES.index(stype) if stype else -1, np.int8))
        tss.append(ts)
        sites.append(site)
    cat_a, sty_a, ts_a, site_a = (np.concatenate(x) for x in (cats, stys, tss, sites))
    xy = np.column_stack([S["site_x"][site_a], S["site_y"][site_a]]) + rng.uniform(-JITTER_M, JITTER_M, (len(site_a), 2))
    hot = np.full(len(site_a), -1, np.int16)
    # planted hotspots whose centre lies in this block: extra incidents in a disc around it
    hx, hy = [], []
    for h in S["hotspots"]:
        if h["block"] != b or m < h["start"]:
            continue
        lam_h = h["per_month"] * ((m - h["start"] + 0.5) / (len(S["months"]) - h["start"]) * 2.0
                                  if h["kind"] == "intensifying" else 1.0)
        n = int(rng.poisson(lam_h))
        rr = h["r"] * np.sqrt(rng.random(n))
        aa = rng.uniform(0, 2 * np.pi, n)
        ts = (rng.choice(days, n).astype("datetime64[s]").astype(np.int64) + dc._clock(rng, h["category"], n))
        cat_a = np.r_[cat_a, np.full(n, CAT_INDEX[h["category"]], np.int8)]
        sty_a = np.r_[sty_a, np.full(n, STYPE_NAMES.index(h["stype"]) if h["stype"] else -1, np.int8)]
        ts_a = np.r_[ts_a, ts]
        site_a = np.r_[site_a, np.full(n, h["site"], np.int64)]
        hot = np.r_[hot, np.full(n, h["index"], np.int16)]
        hx.append(h["x"] + rr * np.cos(aa))
        hy.append(h["y"] + rr * np.sin(aa))
    if hx:
        xy = np.vstack([xy, np.column_stack([np.concatenate(hx), np.concatenate(hy)])])
    n = len(ts_a)
    order = np.lexsort((rng.random(n), ts_a))
    cat_a, sty_a, ts_a, site_a, hot, xy = cat_a[order], sty_a[order], ts_a[order], site_a[order], hot[order], xy[order]
    comm = S["site_comm"][site_a]
    street = S["comm_street"][comm]

    # repeats: a later report of the same kind in the same community within 14 days
    key = comm.astype(np.int64) * 8 + cat_a
    o2 = np.lexsort((np.arange(n), key))
    same = np.r_[False, key[o2][1:] == key[o2][:-1]]
    gap = np.r_[0, np.diff(ts_a[o2])]
    is_rep = same & (gap <= REPEAT_DAYS * 86400) & (rng.random(n) < 0.08)
    rep_of = np.full(n, -1, np.int64)
    rep_of[o2[is_rep]] = o2[np.flatnonzero(is_rep) - 1]
    rows = np.flatnonzero(rep_of >= 0)
    move = rows[(hot[rows] < 0) & (hot[rep_of[rows]] < 0)]  # background repeats: same address
    xy[move] = xy[rep_of[move]]

    # attributes (the demo's distributions, vectorised with integer codes)
    sev = np.empty(n, np.int8)
    src = np.empty(n, np.int8)  # index into dc.SOURCES
    u = rng.random(n)
    for cat, ci in CAT_INDEX.items():
        mk = cat_a == ci
        sev[mk] = 1 + np.searchsorted(np.cumsum(dc.SEVERITY_P[cat])[:-1], u[mk], side="right")
    u = rng.random(n)
    for cat, ci in CAT_INDEX.items():
        mk = cat_a == ci
        if cat == "complaint_12345":
            src[mk] = np.where(u[mk] < 0.93, dc.SOURCES.index("12345"), dc.SOURCES.index("app"))
        else:
            src[mk] = np.searchsorted(np.cumsum(dc.SOURCE_P[cat])[:-1], u[mk], side="right")
    slow = np.where(S["street_factor"][street] < 0.8, 1.7, 1.0)
    slow *= np.where(street == S["plant_fast"], dc.LIFE_SPEED["fast"],
                     np.where(street == S["plant_slow"], dc.LIFE_SPEED["slow"], 1.0))
    heat = sty_a == STYPE_NAMES.index("heating")
    comp_names, comp_start = S["companies"]
    comp = np.full(n, -1, np.int32)
    for stype, (first, cnt) in comp_start.items():
        mk = sty_a == STYPE_NAMES.index(stype)
        comp[mk] = first + comm[mk] % cnt
    slow_co = comp_names.index(dc.SLOW_COMPANY)
    slow *= np.where(heat & (comp == slow_co), 4.0, 1.0)
    med_r = np.where(heat, 3.0, S["resp_h"][cat_a])
    med_c = np.where(heat, 20.0, S["close_h"][cat_a])
    resp = ts_a + (med_r * slow * rng.lognormal(0.0, 0.8, n) * 3600).astype(np.int64) + 60
    close = resp + (med_c * slow * rng.lognormal(0.0, 1.0, n) * 3600).astype(np.int64) + 300
    cutoff = dc.DATA_CUTOFF.astype(np.int64)
    never = rng.random(n) < 0.025
    status = np.where(resp > cutoff, 0, np.where(never | (close > cutoff), 1, 2)).astype(np.int8)
    resp_known = (status != 0) & ~(rng.random(n) < 0.03)
    # life cycle: resolved, satisfaction, returned; accepted / dispatched stamps
    p = np.tile(np.array(dc.LIFE_P["base"]), (n, 1))
    p[street == S["plant_fast"]] = dc.LIFE_P["fast"]
    p[street == S["plant_slow"]] = dc.LIFE_P["slow"]
    p[comp == slow_co] = dc.LIFE_P["slow_company"]
    closed = status == 2
    uu = rng.random((n, 5))
    resolved = np.where(closed, np.where(uu[:, 0] < p[:, 0], 0, 1), -1)
    rated = closed & (src != dc.SOURCES.index("patrol")) & (uu[:, 1] < 0.7)
    sat = np.where(uu[:, 2] < p[:, 1], np.where(uu[:, 3] < 0.6, 0, 1), 2)
    satisfaction = np.where(rated, sat, -1)
    ret = np.where(uu[:, 4] < p[:, 2], np.where(uu[:, 4] < p[:, 2] * 0.2, 2, 1), 0)
    returned = np.where(closed, ret, -1)
    acc = ts_a + rng.integers(60, 1800, n)
    has_resp = status != 0
    acc = np.where(has_resp, np.minimum(acc, resp), acc)
    disp = acc + (np.maximum(resp - acc, 0) * rng.uniform(0.1, 0.5, n)).astype(np.int64)
    sub = S["subtype_index"][cat_a.astype(np.int64) * 8 + (sty_a.astype(np.int64) + 1)]
    dept = S["dept_of_subtype"][sub]
    # staff of the community, else of the street; a few cases unassigned
    u = rng.random(n)
    c_start, c_cnt = S["staff_by_comm"]
    s_start, s_cnt = S["staff_by_street"]
    st_start = np.where(c_cnt[comm] > 0, c_start[comm], s_start[street])
    st_cnt = np.where(c_cnt[comm] > 0, c_cnt[comm], s_cnt[street])
    pick = st_start + (u * 1e6).astype(np.int64) % np.maximum(st_cnt, 1)
    staff_ok = (st_cnt > 0) & (u >= 0.04)
    staff_num = S["staff_num"][np.where(staff_ok, pick, 0)]
    # fake reporters (the ingest must drop / hash these)
    has = (src != dc.SOURCES.index("patrol")) & (rng.random(n) < 0.8)
    rname = np.where(has, rng.integers(0, len(dc._SURNAMES), n) * 2 + rng.integers(0, 2, n), -1)
    phone = rng.integers(0, 10000, n)
    phone_ok = has | ((src == dc.SOURCES.index("12345")) & (rng.random(n) < 0.3))
    ll = dc._inv(xy)
    ll = np.round(ll, dc.DECIMALS)

    yyyymm = month.replace("-", "")
    prefix = f"E{yyyymm}{b:04d}"
    table = pa.table({
        "incident_id": _fixed_strings(prefix, np.arange(1, n + 1), 7),
        "occurred_at": _timestamps(ts_a),
        "category": _codes_to_strings(cat_a, dc.CATEGORIES),
        "service_type": _codes_to_strings(sty_a, STYPE_NAMES),
        "severity": pa.array(sev, pa.int8()),
        "source": _codes_to_strings(src, dc.SOURCES),
        "status": _codes_to_strings(status, STATUS_NAMES),
        "accepted_at": _timestamps(acc, acc <= cutoff),
        "dispatched_at": _timestamps(disp, has_resp),
        "responded_at": _timestamps(resp, resp_known),
        "closed_at": _timestamps(close, closed),
        "staff_id": _fixed_strings("S", staff_num, 6, staff_ok),
        "repeat_of": _fixed_strings(prefix, rep_of + 1, 7, rep_of >= 0),
        "resolved": _codes_to_strings(resolved, RESOLVED_NAMES),
        "satisfaction": _codes_to_strings(satisfaction, SAT_NAMES),
        "returned": _codes_to_strings(returned, RETURNED_NAMES),
        "department": _codes_to_strings(dept, S["dept_names"]),
        "service_company": _codes_to_strings(comp, comp_names),
        "lon": pa.array(ll[:, 0], pa.float64()),
        "lat": pa.array(ll[:, 1], pa.float64()),
        "reporter_name": _codes_to_strings(rname, REPORTER_NAMES),
        "reporter_phone": _fixed_strings("1380000", phone, 4, phone_ok),
    })
    path = S["out"] / "incidents" / f"month={month}" / f"part-{b:05d}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd", row_group_size=1 << 20, use_dictionary=DICT_COLUMNS)
    hot_counts = np.bincount(hot[hot >= 0].astype(np.int64), minlength=len(S["hotspots"]))
    return {"rows": n, "hot": hot_counts}


def _step(units: list[tuple[int, int]]) -> list[dict]:
    return [_unit(m, b) for m, b in units]


# --------------------------------------------------------------------------------------------
# main entry
# --------------------------------------------------------------------------------------------

def _prepare(out: Path, overwrite: bool) -> None:
    """The demo's own check and clean-up of the folder, then our incidents layout."""
    dc._prepare_out_dir(out, overwrite)
    inc = out / "incidents"
    if inc.is_dir():  # only our own layout: month=YYYY-MM/part-*.parquet
        for d in inc.glob("month=*"):
            for f in d.glob("part-*.parquet"):
                f.unlink()
            if d.is_dir() and not any(d.iterdir()):
                d.rmdir()
        if not any(inc.iterdir()):
            inc.rmdir()


def build_province(out_dir, *, buildings: int = DEFAULT_BUILDINGS, incidents: int = DEFAULT_INCIDENTS,
                   seed: int = 2023, chunk_rows: int = DEFAULT_CHUNK_ROWS, workers: int = 1,
                   overwrite: bool = False, progress=None) -> dict:
    """Write a synthetic province's project folder; return summary counts (see the module doc).

    ``buildings`` and ``incidents`` are targets: whole streets are added until the expected
    buildings reach ``buildings``; incident counts are Poisson draws around ``incidents``.
    ``chunk_rows`` (expected rows per step, one task of a worker) and ``workers`` (processes) change speed,
    never the files. The same ``seed`` writes byte-identical files.
    """
    t0 = time.perf_counter()
    if buildings < 1 or incidents < 0 or chunk_rows < 1 or workers < 1:
        raise ValueError("buildings, chunk_rows 与 workers 须为正数 / buildings, chunk_rows and workers must be "
                         "positive, incidents not negative")
    say = (lambda m: progress(m)) if progress else (lambda m: None)
    out = Path(out_dir)
    _prepare(out, overwrite)
    src = dc._load_sources(TEMPLATE_DISTRICTS)
    say("planning cities / 规划城市")
    plans = plan_cities(src, int(buildings), seed)
    say(f"{len(plans)} cities, ~{sum(p['expected_buildings'] for p in plans):,} buildings expected / 座城市")

    w_streets = dc.GeoJSONWriter(out / "streets.geojson", "streets")
    w_comms = dc.GeoJSONWriter(out / "communities.geojson", "communities")
    w_special = dc.GeoJSONWriter(out / "special_units.geojson", "special_units")
    w_barriers = dc.GeoJSONWriter(out / "barriers.geojson", "barriers")
    w_grids = dc.GeoJSONWriter(out / "current_grids.geojson", "current_grids")
    w_dept = dc.GeoJSONWriter(out / "department_grids.geojson", "department_grids")
    w_bld = _BuildingsWriter(out / "buildings.parquet")
    staff_path = out / "staff.csv"
    n_bld = n_unit = n_staff = 0
    site_parts, comm_codes, comm_street, street_codes, street_factor = [], [], [], [], []
    staff_comm, staff_street, staff_nums, city_rows, areas = [], [], [], [], []
    hh_total = res_total = 0
    census = src["census"]
    try:
        for plan in plans:
            c, sc = plan["city"], plan["seed"]
            dx, dy = city_offset(c)
            streets = plan["streets"].copy()
            say(f"city {c}: {len(streets)} streets / 城市 {c}")
            city = dc.make_city(src, streets, plan["dcodes"], sc, progress=say)
            comms, bld, staff, grids = city["communities"], city["buildings"], city["staff"], city["grids"]
            special, barriers = city["special"], city["barriers"]
            # place the city, then give copies their synthetic codes and names
            streets["geometry"] = _shift(streets["geometry"].values, dx, dy)
            comms["geometry"] = _shift(comms["geometry"].values, dx, dy)
            grids["geometry"] = _shift(grids["geometry"].values, dx, dy)
            special["geometry"] = _shift(special["geometry"].values, dx, dy)
            special["footprint"] = _shift(special["footprint"].values, dx, dy)
            barriers["geometry"] = _shift(barriers["geometry"].values, dx, dy)
            area = _shift(city["area"], dx, dy)
            bgeoms = _shift(city["building_geoms"], dx, dy)
            bld["cx"] = bld["cx"].values + dx
            bld["cy"] = bld["cy"].values + dy
            tag = f"合成{c}市"
            code = (lambda s: city_code(s, c))
            if c:
                streets["district_name"] = tag + "·" + streets["district_name"]
                streets["street_name"] = streets["street_name"] + f"·合成{c}"
                comms["community_name"] = comms["community_name"] + f"·合成{c}"
                special["unit_name"] = special["unit_name"].str.replace("呼和浩特市", tag, regex=False)
                for df, cols in ((streets, ("street_code", "district_code")),
                                 (comms, ("community_code", "street_code", "district_code")),
                                 (bld, ("community_code", "district_code")),
                                 (grids, ("grid_id", "community_code")),
                                 (staff, ("street_code", "community_code"))):
                    for col in cols:
                        df[col] = df[col].map(code)
            # province-wide ids
            new_sid = {s: f"S{n_staff + i + 1:06d}" for i, s in enumerate(staff["staff_id"])}
            staff["staff_id"] = staff["staff_id"].map(new_sid)
            grids["staff_id"] = grids["staff_id"].map(lambda s: new_sid.get(s, s))
            special["unit_id"] = [f"U{n_unit + i + 1:06d}" for i in range(len(special))]
            bld["building_id"] = [f"B{n_bld + i + 1:08d}" for i in range(len(bld))]
            dept = dc._make_department_grids(streets, area)
            dept["grid_id"] = np.where(dept["department"] == "城管", f"C{c:02d}-" + dept["grid_id"], dept["grid_id"])

            say(f"city {c}: writing {len(bld):,} buildings / 写出")
            w_streets.write(streets[["street_code", "street_name", "district_code", "district_name",
                                     "function_type", "street_type"]], dc._finalize(streets["geometry"].values))
            w_comms.write(comms[["community_code", "community_name", "street_code", "kind"]],
                          dc._finalize(comms["geometry"].values))
            w_special.write(special[["unit_id", "unit_name", "unit_type", "households", "headcount"]],
                            dc._finalize(special["geometry"].values))
            w_barriers.write(barriers[["kind", "name"]], dc._finalize(barriers["geometry"].values))
            w_grids.write(grids[["grid_id", "grid_type", "community_code", "staff_id"]],
                          dc._finalize(grids["geometry"].values))
            w_dept.write(dept[["department", "grid_id"]], dc._finalize(dept["geometry"].values))
            import geopandas as gpd

            btab = pd.DataFrame({
                "building_id": bld["building_id"].values,
                **{k: bld[k].astype("int32").values for k in ("households", "residents", "elderly",
                                                             "elderly_alone", "disabled", "low_income",
                                                             "children", "renters")},
                "community_code": pd.array(np.where(bld["blank"].values, None, bld["community_code"].values),
                                           dtype="string"),
                "floors": bld["floors"].astype("int32").values,
                "building_type": np.array(dc.BTYPES, dtype=object)[bld["btype"].values],
            })
            w_bld.write(gpd.GeoDataFrame(btab, geometry=gpd.GeoSeries(dc._finalize(bgeoms), crs=dc.STORAGE_CRS)))
            staff.to_csv(staff_path, mode="w" if n_staff == 0 else "a", header=n_staff == 0, index=False,
                         encoding="utf-8", lineterminator="\n")

            # what the incidents need: sites (buildings, then markets / commercial buildings)
            c0 = len(comm_codes)
            s0 = len(street_codes)
            st_idx = {s: s0 + i for i, s in enumerate(streets["street_code"])}
            cm_idx = {s: c0 + i for i, s in enumerate(comms["community_code"])}
            street_codes += list(streets["street_code"])
            street_factor += [city["staff_factor"][s] for s in plan["streets"]["street_code"]]
            comm_codes += list(comms["community_code"])
            comm_street += [st_idx[s] for s in comms["street_code"]]
            sp = special[special["unit_type"].isin(["market", "commercial_building"])]
            sp_xy = shapely.get_coordinates(shapely.point_on_surface(sp["footprint"].values)) if len(sp) else np.zeros((0, 2))
            sp_comm = []
            if len(sp):
                tree = shapely.STRtree(comms["geometry"].values)
                si, ti = tree.query(shapely.points(sp_xy), predicate="within")
                first = np.full(len(sp), -1)
                u, k = np.unique(si, return_index=True)
                first[u] = ti[k]
                keep = first >= 0
                sp, sp_xy, sp_comm = sp[keep], sp_xy[keep], c0 + first[keep]
            bcomm = np.array([cm_idx[s] for s in bld["community_code"].values], dtype=np.int32)
            func_of = {f: i for i, f in enumerate(dc.FUNCTION_ORDER)}
            site_parts.append({
                "x": np.r_[bld["cx"].values, sp_xy[:, 0]], "y": np.r_[bld["cy"].values, sp_xy[:, 1]],
                "res": np.r_[bld["residents"].values.astype(np.float64), np.zeros(len(sp))],
                "btype": np.r_[bld["btype"].values.astype(np.int8), np.full(len(sp), -1, np.int8)],
                "func": np.r_[np.array([func_of[f] for f in bld["function_type"].values], np.int8),
                              np.full(len(sp), -1, np.int8)],
                "spw": np.r_[np.zeros(len(bld)), np.where(sp["unit_type"].values == "market", 900.0, 500.0)],
                "comm": np.r_[bcomm, np.asarray(sp_comm, dtype=np.int32)],
                "urban": np.r_[(bld["kind"].values == "urban") & (bld["residents"].values > 0),
                               np.zeros(len(sp), bool)],
            })
            staff_comm += [cm_idx[s] for s in staff["community_code"]]
            staff_street += [st_idx[s] for s in staff["street_code"]]
            staff_nums += [int(s[1:]) for s in staff["staff_id"]]
            areas.append(area)
            city_rows.append({"city": c, "name": "呼和浩特市" if c == 0 else tag, "offset_km": (dx / 1000, dy / 1000),
                              "districts": len(plan["dcodes"]), "streets": len(streets),
                              "communities": len(comms), "buildings": len(bld),
                              "households": int(bld["households"].sum()),
                              "residents": int(bld["residents"].sum())})
            hh_total += int(bld["households"].sum())
            res_total += int(bld["residents"].sum())
            n_bld += len(bld)
            n_unit += len(special)
            n_staff += len(staff)
            del city, comms, bld, staff, grids, special, barriers, bgeoms, btab
            say(f"city {c}: done, {n_bld:,} buildings so far / 累计建筑")
    finally:
        for w in (w_streets, w_comms, w_special, w_barriers, w_grids, w_dept, w_bld):
            w.close()
    counts = {"streets": w_streets.count, "communities": w_comms.count, "special_units": w_special.count,
              "barriers": w_barriers.count, "current_grids": w_grids.count, "department_grids": w_dept.count}

    say("incidents: planning / 事件")
    sites = {k: np.concatenate([p[k] for p in site_parts]) for k in site_parts[0]}
    del site_parts
    inc_summary, truth = _write_incidents(out, sites, seed, int(incidents), chunk_rows, workers, areas,
                                          comm_codes, comm_street, street_codes, street_factor,
                                          staff_comm, staff_street, staff_nums, say)
    truth.to_csv(out / "truth" / "planted_hotspots.csv", index=False, encoding="utf-8", lineterminator="\n")
    budget = round(n_staff * 1.1)
    (out / "gridgov.toml").write_text(dc._toml("province", seed, budget) + PROVINCE_GRIDS_TOML, encoding="utf-8",
                                      newline="\n")
    summary = {
        "size": "province", "seed": int(seed), "out_dir": str(out), "cities": len(plans),
        **counts, "buildings": n_bld, "households": hh_total, "residents": res_total, "staff": n_staff,
        "incidents": inc_summary["rows"], "incident_files": inc_summary["files"],
        "planted_hotspots": len(truth), "allocation_budget": budget, "city_rows": city_rows,
        "census_households_per_copy": int(census.loc[list(TEMPLATE_DISTRICTS), "family_households"].sum()),
    }
    (out / "README.txt").write_text(_readme(summary), encoding="utf-8", newline="\n")
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    say(f"done in {summary['seconds']} s / 完成")
    return summary


def _write_incidents(out, sites, seed, target, chunk_rows, workers, areas, comm_codes, comm_street,
                     street_codes, street_factor, staff_comm, staff_street, staff_nums, say):
    days = np.arange(dc.PERIOD_START, dc.PERIOD_END + np.timedelta64(1, "D"))
    n_days = len(days)
    years = n_days / 365.25
    prof = dc._day_profiles(days)
    months = sorted({str(d)[:7] for d in days.astype("datetime64[M]")})
    month_of_day = np.searchsorted(np.array(months), np.array([str(d)[:7] for d in days.astype("datetime64[M]")]))
    n_sites = len(sites["x"])
    total_res = float(sites["res"].sum())
    natural = sum(total_res / 1000.0 * dc.RATE_PER_1000[c] * sh * years for c, _, sh in SUBTYPES)
    scale = target / natural if natural > 0 else 0.0
    base = np.array([scale * total_res / 1000.0 * dc.RATE_PER_1000[c] * sh * years / n_days for c, _, sh in SUBTYPES])
    is_b = sites["btype"] >= 0
    bt0 = np.where(is_b, sites["btype"], 0)
    wtotal = np.zeros(len(dc.CATEGORIES))
    for cat, ci in CAT_INDEX.items():
        w = np.where(is_b, sites["res"] * dc.SITE_F[cat][bt0], 0.0)
        for f, mult in dc.FUNC_F.get(cat, {}).items():
            w = np.where(sites["func"] == dc.FUNCTION_ORDER.index(f), w * mult, w)
        if cat in ("sanitation", "public_order"):
            w = np.where(is_b, w, sites["spw"])
        elif cat == "complaint_12345":
            w = np.where(is_b, w, sites["spw"] * 0.5)
        wtotal[ci] = max(float(w.sum()), 1e-12)
    n_blocks = max(1, math.ceil(n_sites / BLOCK_SITES))

    # planted hotspots: three per city, at urban buildings well inside the city
    rng = dc._rng(seed, "province-hotspots")
    specs = [("sanitation", "persistent"), ("public_order", "new"), ("complaint_12345", "intensifying"),
             ("dispute", "persistent"), ("safety_hazard", "new"), ("sanitation", "intensifying")]
    hotspots, hot_rows = [], []
    # a city's candidate sites: inside its bounding box (the 230 km lattice keeps the boxes apart)
    cx_all = sites["x"]
    for ci_, area in enumerate(areas):
        minx, miny, maxx, maxy = area.bounds
        cand = np.flatnonzero(sites["urban"] & (cx_all >= minx) & (cx_all <= maxx)
                              & (sites["y"] >= miny) & (sites["y"] <= maxy))
        if not len(cand):
            continue
        cand = rng.permutation(cand)
        boundary = area.boundary
        centres = []
        for j in range(3):
            cat, kind = specs[(3 * ci_ + j) % len(specs)]
            r = float(np.round(rng.uniform(150, 400), -1))
            chosen = None
            for i in cand[:5000]:
                x, y = sites["x"][i], sites["y"][i]
                if boundary.distance(shapely.Point(x, y)) < r + 100:
                    continue
                if any(math.hypot(x - a, y - b_) < r + rr + 1500 for a, b_, rr in centres):
                    continue
                chosen = int(i)
                break
            if chosen is None:
                continue
            x, y = float(sites["x"][chosen]), float(sites["y"][chosen])
            centres.append((x, y, r))
            start = 0 if kind != "new" else int(rng.integers(18, 22))
            total_extra = (int(rng.integers(300, 500)) if kind != "new" else int(rng.integers(150, 250))) * scale
            stype = str(rng.choice(["property", "noise", "water"])) if cat == "complaint_12345" else ""
            h = {"index": len(hotspots), "x": x, "y": y, "r": r, "category": cat, "kind": kind,
                 "start": start, "stype": stype, "site": chosen, "block": chosen // BLOCK_SITES,
                 "per_month": total_extra / (len(months) - start)}
            hotspots.append(h)
            hot_rows.append({"hotspot_id": f"H{len(hotspots):03d}", "x": x, "y": y, "radius_m": int(r),
                             "category": cat, "kind": kind, "start_month": months[start]})
    dept_names, dept_of_sub = _departments()
    subtype_index = np.zeros(len(dc.CATEGORIES) * 8, np.int64)
    for k, (c, s, _) in enumerate(SUBTYPES):
        subtype_index[CAT_INDEX[c] * 8 + (STYPE_NAMES.index(s) + 1 if s else 0)] = k
    plant = dc.life_cycle_plant(street_codes, comm_codes)
    st_pos = {s: i for i, s in enumerate(street_codes)}
    staff_comm = np.asarray(staff_comm, np.int64)
    staff_street = np.asarray(staff_street, np.int64)
    staff_nums = np.asarray(staff_nums, np.int64)
    # staff rows sorted by community (and separately by street) for the per-case pick
    oc = np.argsort(staff_comm, kind="stable")
    os_ = np.argsort(staff_street, kind="stable")
    staff_sorted_c = staff_nums[oc]
    staff_sorted_s = staff_nums[os_]
    c_start, c_cnt = _csr(staff_comm, len(comm_codes))
    s_start, s_cnt = _csr(staff_street, len(street_codes))
    _STATE.clear()
    _STATE.update({
        "seed": seed, "out": out, "days": days, "months": months, "month_of_day": month_of_day,
        "prof": prof, "base": base, "wtotal": wtotal, "n_sites": n_sites,
        "site_x": sites["x"], "site_y": sites["y"], "site_res": sites["res"], "site_btype": sites["btype"],
        "site_func": sites["func"], "site_spw": sites["spw"], "site_comm": sites["comm"],
        "comm_street": np.asarray(comm_street, np.int64),
        "street_factor": np.asarray(street_factor, np.float64),
        "plant_fast": st_pos.get(plant["fast"], -1), "plant_slow": st_pos.get(plant["slow"], -1),
        "companies": _companies(), "dept_names": dept_names, "dept_of_subtype": dept_of_sub,
        "subtype_index": subtype_index,
        "resp_h": np.array([dc.RESP_H[c] for c in dc.CATEGORIES]),
        "close_h": np.array([dc.CLOSE_H[c] for c in dc.CATEGORIES]),
        "staff_num": np.r_[staff_sorted_c, staff_sorted_s],
        "staff_by_comm": (c_start, c_cnt),
        "staff_by_street": (s_start + len(staff_sorted_c), s_cnt),
        "hotspots": hotspots,
    })
    # steps: consecutive units (month-major) up to chunk_rows expected rows each
    per_unit = target / (len(months) * n_blocks) if target else 0.0
    units = [(m, b) for m in range(len(months)) for b in range(n_blocks)]
    per_step = max(1, int(chunk_rows // max(per_unit, 1.0)))
    steps = [units[i:i + per_step] for i in range(0, len(units), per_step)]
    say(f"incidents: ~{target:,} rows in {len(units)} files, {len(steps)} steps, {workers} worker(s) / 事件分块")
    results = []
    done = 0
    if workers == 1:
        for st in steps:
            results += _step(st)
            done += len(st)
            say(f"incidents: {done}/{len(units)} files, {sum(r['rows'] for r in results):,} rows / 事件")
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("fork")) as ex:
            for st, res in zip(steps, ex.map(_step, steps)):
                results += res
                done += len(st)
                say(f"incidents: {done}/{len(units)} files, {sum(r['rows'] for r in results):,} rows / 事件")
    _STATE.clear()
    hot = np.sum([r["hot"] for r in results], axis=0) if hotspots else np.zeros(0, np.int64)
    truth = pd.DataFrame(hot_rows, columns=["hotspot_id", "x", "y", "radius_m", "category", "kind", "start_month"])
    if len(truth):
        ll = dc._round_coords(dc._inv(truth[["x", "y"]].values))
        truth.insert(1, "lon", [f"{v:.6f}" for v in ll[:, 0]])
        truth.insert(2, "lat", [f"{v:.6f}" for v in ll[:, 1]])
    else:
        truth.insert(1, "lon", [])
        truth.insert(2, "lat", [])
    truth = truth.drop(columns=["x", "y"])
    truth["extra_incidents"] = [int(v) for v in hot]
    return {"rows": int(sum(r["rows"] for r in results)), "files": len(units)}, truth


def _city_line(r: dict) -> str:
    where = ("real boundaries" if r["city"] == 0 else
             f"SYNTHETIC copy, shifted {r['offset_km'][0]:+.0f} km east, {r['offset_km'][1]:+.0f} km north")
    return (f"  city {r['city']}: {r['name']} ({where}) -- {r['districts']} districts, {r['streets']} streets, "
            f"{r['communities']} communities, {r['buildings']:,} buildings, {r['residents']:,} residents")


def _readme(s: dict) -> str:
    cities = "\n".join(_city_line(r) for r in s["city_rows"])
    return f"""合成省份 / gridgov synthetic province -- SYNTHETIC DATA (合成数据)
seed={s['seed']}  cities={s['cities']}  written by gridgov/province.py (gridgov demo DIR --province)

City 0 is Hohhot (呼和浩特市) on the REAL boundaries of its nine districts and counties
(新城区, 回民区, 玉泉区, 赛罕区, 土默特左旗, 托克托县, 和林格尔县, 清水河县, 武川县) with their real
NBS 2023 street / community names and codes and 2020 census totals. Every other city is a
SYNTHETIC COPY of those nine boundaries, shifted by multiples of 230 km east / north: its codes
start with 99 (no real province has that code) and its names carry 合成N市 / ·合成N ("synthetic
city N"). The copies do not describe any real place; they reuse Hohhot's census profile.
Everything else in every city -- street / community polygons, buildings, special units,
barriers, incidents, staff, today's grids and department grids -- is synthetic, as in the demo
city (gridgov demo). Names and phone / ID numbers of persons are fake (phones 1380000xxxx, ID
cards starting 000000) and must be dropped by the ingest.

Incidents 2024-2025 come as a hive-partitioned Parquet folder:
  incidents/month=YYYY-MM/part-BBBBB.parquet  (BBBBB = block of {BLOCK_SITES:,} buildings)
with the demo's incident columns; times are Parquet timestamps (local time), missing values NULL.
repeat_of links stay within one file. Planted hotspots: truth/planted_hotspots.csv (not an input).

{cities}

Counts: streets {s['streets']}, communities {s['communities']}, buildings {s['buildings']},
households {s['households']}, residents {s['residents']}, special units {s['special_units']},
barriers {s['barriers']}, incidents {s['incidents']} in {s['incident_files']} files, staff {s['staff']},
current grids {s['current_grids']}, department grids {s['department_grids']},
planted hotspots {s['planted_hotspots']}.

Sources and licences: data/README.md and data/hohhot/SOURCES.md in the gridgov repository.
Next: gridgov run <this folder>  then  gridgov app <this folder>
"""
