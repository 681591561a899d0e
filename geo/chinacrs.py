"""Chinese coordinate offsets (GCJ-02, BD-09) and CRS helpers.

Pure module: numpy, shapely and pyproj (geopandas only for the frame helpers).

Coordinate systems met in Chinese data
--------------------------------------
* **WGS84** (EPSG:4326) and **CGCS2000** (EPSG:4490): true geodetic lon/lat. They differ by
  centimetres; pyproj treats EPSG:4490 -> EPSG:4326 as a null ("ballpark") transformation.
* **GCJ-02** ("火星坐标", 国测局坐标): the state obfuscation of WGS84 that every map published in
  China must apply (AMap/高德, Tencent, Google .cn, DataV). It adds a smooth, non-linear offset of
  a few hundred metres (about +600 m east, +150 m north around Hohhot).
* **BD-09** (百度坐标, bd09ll): Baidu's second obfuscation on top of GCJ-02 (about another
  +650 m east, +600 m north). Baidu's Mercator metres (bd09mc) are not supported.

GCJ-02 and BD-09 are not EPSG coordinate reference systems: they are lon/lat values with a
deliberate error. The forward offsets follow the formulas that circulate publicly (leaked
implementation, Krasovsky 1940 semi-major axis a = 6378245 m, e^2 = 0.00669342162296594323); the
official implementation also adds pseudo-random noise of up to about 1 m that is not reproducible.
There is no closed-form inverse: :func:`gcj02_to_wgs84` and :func:`bd09_to_gcj02` solve
``forward(x) = y`` by fixed-point iteration to better than 1e-7 degrees (in practice ~1e-12).

"Inside China" rule
-------------------
Offsets are applied only to points inside the bounding box commonly used for this purpose
(eviltransform, PRCoords): 72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271 (inclusive).
Everything else is returned unchanged (NaN too). The test is made on the *input* coordinates of
each conversion. The box is deliberately coarse: it covers all of mainland China but also parts
of neighbouring countries (Mongolia, Korea, Japan, South-East Asia), Hong Kong, Macau and Taiwan,
where real map providers may not offset; data from there needs care.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError as _PyprojCRSError

__all__ = [
    "CRSError",
    "GCJ02",
    "BD09",
    "CHINA_BBOX",
    "in_china",
    "wgs84_to_gcj02",
    "gcj02_to_wgs84",
    "gcj02_to_bd09",
    "bd09_to_gcj02",
    "wgs84_to_bd09",
    "bd09_to_wgs84",
    "normalize_crs",
    "to_wgs84",
    "from_wgs84",
    "metric_crs",
    "metric_crs_for",
]

GCJ02 = "GCJ-02"
BD09 = "BD-09"

#: (min_lon, min_lat, max_lon, max_lat) of the "inside China" test, inclusive.
CHINA_BBOX = (72.004, 0.8293, 137.8347, 55.8271)

# Krasovsky 1940 ellipsoid, as used by the GCJ-02 formulas.
_GCJ_A = 6378245.0
_GCJ_EE = 0.00669342162296594323
# Baidu's constants.
_BD_X_PI = math.pi * 3000.0 / 180.0
_BD_DLON = 0.0065
_BD_DLAT = 0.006

#: Convergence threshold (degrees) of the iterative inverses and their iteration cap.
INVERSE_TOL = 1e-12
INVERSE_MAX_ITER = 30


class CRSError(ValueError):
    """An unsupported or unknown coordinate reference system."""


# --------------------------------------------------------------------------------------------
# point offsets (vectorised)
# --------------------------------------------------------------------------------------------


def _as_arrays(lon, lat) -> tuple[np.ndarray, np.ndarray, bool]:
    lon_a = np.asarray(lon, dtype=float)
    lat_a = np.asarray(lat, dtype=float)
    scalar = lon_a.ndim == 0 and lat_a.ndim == 0
    lon_a, lat_a = np.broadcast_arrays(lon_a, lat_a)
    return lon_a, lat_a, scalar


def _out(lon: np.ndarray, lat: np.ndarray, scalar: bool):
    if scalar:
        return float(lon), float(lat)
    return lon, lat


def in_china(lon, lat) -> np.ndarray:
    """True where (lon, lat) is inside :data:`CHINA_BBOX` (the offset area). NaN -> False."""
    lon_a, lat_a, scalar = _as_arrays(lon, lat)
    x0, y0, x1, y1 = CHINA_BBOX
    with np.errstate(invalid="ignore"):
        inside = (lon_a >= x0) & (lon_a <= x1) & (lat_a >= y0) & (lat_a <= y1)
    return bool(inside) if scalar else inside


def _gcj_delta(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 offset (dlon, dlat) in degrees at WGS84 (lon, lat), without the China test."""
    x = lon - 105.0
    y = lat - 35.0
    sqrt_abs_x = np.sqrt(np.abs(x))
    common = 20.0 * np.sin(6.0 * np.pi * x) + 20.0 * np.sin(2.0 * np.pi * x)
    # offsets in metres (of arc) on the Krasovsky ellipsoid
    d_lat_m = (
        -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sqrt_abs_x
        + (
            common
            + 20.0 * np.sin(np.pi * y) + 40.0 * np.sin(np.pi * y / 3.0)
            + 160.0 * np.sin(np.pi * y / 12.0) + 320.0 * np.sin(np.pi * y / 30.0)
        ) * (2.0 / 3.0)
    )
    d_lon_m = (
        300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sqrt_abs_x
        + (
            common
            + 20.0 * np.sin(np.pi * x) + 40.0 * np.sin(np.pi * x / 3.0)
            + 150.0 * np.sin(np.pi * x / 12.0) + 300.0 * np.sin(np.pi * x / 30.0)
        ) * (2.0 / 3.0)
    )
    rad_lat = np.radians(lat)
    w = 1.0 - _GCJ_EE * np.sin(rad_lat) ** 2
    # length of one degree of latitude / longitude on the ellipsoid, in metres
    m_per_deg_lat = np.radians(_GCJ_A * (1.0 - _GCJ_EE) / (w * np.sqrt(w)))
    m_per_deg_lon = np.radians(_GCJ_A / np.sqrt(w) * np.cos(rad_lat))
    return d_lon_m / m_per_deg_lon, d_lat_m / m_per_deg_lat


def _wgs_to_gcj_raw(lon: np.ndarray, lat: np.ndarray, mask: np.ndarray):
    out_lon = lon.copy()
    out_lat = lat.copy()
    if mask.any():
        dlon, dlat = _gcj_delta(lon[mask], lat[mask])
        out_lon[mask] = lon[mask] + dlon
        out_lat[mask] = lat[mask] + dlat
    return out_lon, out_lat


def _gcj_to_bd_raw(lon: np.ndarray, lat: np.ndarray, mask: np.ndarray):
    out_lon = lon.copy()
    out_lat = lat.copy()
    if mask.any():
        x = lon[mask]
        y = lat[mask]
        z = np.hypot(x, y) + 0.00002 * np.sin(y * _BD_X_PI)
        theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _BD_X_PI)
        out_lon[mask] = z * np.cos(theta) + _BD_DLON
        out_lat[mask] = z * np.sin(theta) + _BD_DLAT
    return out_lon, out_lat


def _bd_to_gcj_onestep(lon: np.ndarray, lat: np.ndarray):
    """The classic one-step approximate inverse of gcj->bd (error ~1e-6 deg)."""
    x = lon - _BD_DLON
    y = lat - _BD_DLAT
    z = np.hypot(x, y) - 0.00002 * np.sin(y * _BD_X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _BD_X_PI)
    return z * np.cos(theta), z * np.sin(theta)


def _invert(forward, lon: np.ndarray, lat: np.ndarray, guess_lon, guess_lat):
    """Solve forward(x) = (lon, lat) by fixed-point iteration x <- x - (forward(x) - target).

    The offsets' Jacobians differ from the identity by ~1e-3, so each step gains roughly
    three decimal digits; 4-5 steps reach the float64 floor.
    """
    x, y = guess_lon, guess_lat
    for _ in range(INVERSE_MAX_ITER):
        fx, fy = forward(x, y)
        ex = fx - lon
        ey = fy - lat
        x = x - ex
        y = y - ey
        err = np.maximum(np.abs(ex), np.abs(ey))
        if not np.any(err > INVERSE_TOL):  # NaN compares False: NaN inputs do not loop
            break
    return x, y


def wgs84_to_gcj02(lon, lat):
    """WGS84 -> GCJ-02. Accepts scalars or arrays (broadcast); returns (lon, lat)."""
    lon_a, lat_a, scalar = _as_arrays(lon, lat)
    mask = in_china(lon_a, lat_a)
    return _out(*_wgs_to_gcj_raw(lon_a, lat_a, np.asarray(mask)), scalar)


def gcj02_to_wgs84(lon, lat):
    """GCJ-02 -> WGS84 by fixed-point iteration (accurate to < 1e-7 deg, typically 1e-12)."""
    lon_a, lat_a, scalar = _as_arrays(lon, lat)
    mask = np.asarray(in_china(lon_a, lat_a))
    out_lon = lon_a.copy()
    out_lat = lat_a.copy()
    if mask.any():
        g_lon = lon_a[mask]
        g_lat = lat_a[mask]
        d_lon, d_lat = _gcj_delta(g_lon, g_lat)

        def fwd(x, y):
            dx, dy = _gcj_delta(x, y)
            return x + dx, y + dy

        out_lon[mask], out_lat[mask] = _invert(fwd, g_lon, g_lat, g_lon - d_lon, g_lat - d_lat)
    return _out(out_lon, out_lat, scalar)


def gcj02_to_bd09(lon, lat):
    """GCJ-02 -> BD-09 (Baidu). Points outside the China box are returned unchanged."""
    lon_a, lat_a, scalar = _as_arrays(lon, lat)
    mask = np.asarray(in_china(lon_a, lat_a))
    return _out(*_gcj_to_bd_raw(lon_a, lat_a, mask), scalar)


def bd09_to_gcj02(lon, lat):
    """BD-09 -> GCJ-02 by fixed-point iteration of :func:`gcj02_to_bd09` (< 1e-7 deg)."""
    lon_a, lat_a, scalar = _as_arrays(lon, lat)
    mask = np.asarray(in_china(lon_a, lat_a))
    out_lon = lon_a.copy()
    out_lat = lat_a.copy()
    if mask.any():
        b_lon = lon_a[mask]
        b_lat = lat_a[mask]
        g0_lon, g0_lat = _bd_to_gcj_onestep(b_lon, b_lat)

        def fwd(x, y):
            return _gcj_to_bd_raw(x, y, np.ones(x.shape, dtype=bool))

        out_lon[mask], out_lat[mask] = _invert(fwd, b_lon, b_lat, g0_lon, g0_lat)
    return _out(out_lon, out_lat, scalar)


def wgs84_to_bd09(lon, lat):
    """WGS84 -> BD-09 (via GCJ-02)."""
    lon_a, lat_a, scalar = _as_arrays(lon, lat)
    mask = np.asarray(in_china(lon_a, lat_a))
    g_lon, g_lat = _wgs_to_gcj_raw(lon_a, lat_a, mask)
    return _out(*_gcj_to_bd_raw(g_lon, g_lat, mask), scalar)


def bd09_to_wgs84(lon, lat):
    """BD-09 -> WGS84 (via GCJ-02, both steps inverted iteratively)."""
    lon_a, lat_a, scalar = _as_arrays(lon, lat)
    mask = np.asarray(in_china(lon_a, lat_a))
    out_lon = lon_a.copy()
    out_lat = lat_a.copy()
    if mask.any():
        # The China test is made once, on the BD-09 input, so that both steps agree.
        g_lon, g_lat = bd09_to_gcj02(lon_a[mask], lat_a[mask])
        d_lon, d_lat = _gcj_delta(g_lon, g_lat)

        def fwd(x, y):
            dx, dy = _gcj_delta(x, y)
            return x + dx, y + dy

        out_lon[mask], out_lat[mask] = _invert(fwd, g_lon, g_lat, g_lon - d_lon, g_lat - d_lat)
    return _out(out_lon, out_lat, scalar)


# --------------------------------------------------------------------------------------------
# CRS names
# --------------------------------------------------------------------------------------------


def _key(s: str) -> str:
    return re.sub(r"[\s\-_./()（）]", "", s).lower()


_ALIASES: dict[str, str] = {}
for _names, _target in (
    (("WGS84", "WGS 84", "WGS-84", "GPS", "EPSG4326"), "EPSG:4326"),
    (("CGCS2000", "CGCS 2000", "国家2000", "2000国家大地坐标系", "EPSG4490"), "EPSG:4490"),
    (("Web Mercator", "WebMercator", "Pseudo-Mercator", "EPSG3857"), "EPSG:3857"),
    (
        ("GCJ-02", "GCJ02", "GCJ", "GCJ02LL", "火星坐标", "火星坐标系", "火星",
         "国测局坐标", "国测局坐标系", "高德", "高德坐标", "AMap"),
        GCJ02,
    ),
    (("BD-09", "BD09", "BD09LL", "百度", "百度坐标", "百度坐标系", "百度经纬度", "Baidu"), BD09),
):
    for _n in _names:
        _ALIASES[_key(_n)] = _target

_ACCEPTED_HELP = (
    "可接受的坐标系 / accepted values: EPSG 代码 EPSG codes (\"EPSG:4326\", 4326, \"epsg:4490\", "
    "\"4546\"), \"WGS84\", \"CGCS2000\", \"GCJ-02\" (GCJ02, 火星坐标, 国测局坐标, 高德), "
    "\"BD-09\" (BD09, BD09LL, 百度); a pyproj CRS with an EPSG code is also accepted. "
    "百度墨卡托 (bd09mc) 不受支持 / Baidu Mercator (bd09mc) is not supported."
)


def _epsg(code: int, original: Any) -> str:
    try:
        CRS.from_epsg(code)
    except _PyprojCRSError as exc:
        raise CRSError(
            f"未知的 EPSG 代码 / unknown EPSG code: {original!r}. {_ACCEPTED_HELP}"
        ) from exc
    return f"EPSG:{code}"


def normalize_crs(value: Any) -> str:
    """Normalise a CRS name to ``"EPSG:nnnn"``, ``"GCJ-02"`` or ``"BD-09"``.

    Raises :class:`CRSError` (a ``ValueError``) with a bilingual message for anything else.
    """
    if isinstance(value, bool) or value is None:
        raise CRSError(f"无法识别的坐标系 / unrecognised CRS: {value!r}. {_ACCEPTED_HELP}")
    if isinstance(value, (int, np.integer)):
        return _epsg(int(value), value)
    if isinstance(value, str):
        s = value.strip()
        m = re.fullmatch(r"(?:epsg\s*:\s*)?(\d{4,6})", s, flags=re.IGNORECASE)
        if m:
            return _epsg(int(m.group(1)), value)
        target = _ALIASES.get(_key(s))
        if target is not None:
            return target
        raise CRSError(f"无法识别的坐标系 / unrecognised CRS: {value!r}. {_ACCEPTED_HELP}")
    to_epsg = getattr(value, "to_epsg", None)  # pyproj.CRS (also GeoDataFrame.crs)
    if callable(to_epsg):
        code = to_epsg()
        if code is not None:
            return f"EPSG:{code}"
    raise CRSError(f"无法识别的坐标系 / unrecognised CRS: {value!r}. {_ACCEPTED_HELP}")


# --------------------------------------------------------------------------------------------
# geometry / frame conversion
# --------------------------------------------------------------------------------------------


def _transform_geoms(geoms: np.ndarray, func) -> np.ndarray:
    """Apply a vectorised (lon, lat) -> (lon, lat) function to every vertex; keeps Z."""

    def xy(coords: np.ndarray) -> np.ndarray:
        lon, lat = func(coords[:, 0], coords[:, 1])
        out = coords.copy()
        out[:, 0] = lon
        out[:, 1] = lat
        return out

    geoms = np.asarray(geoms, dtype=object)
    has_z = np.asarray(shapely.has_z(geoms), dtype=bool)
    out = np.empty_like(geoms)
    if (~has_z).any():
        out[~has_z] = shapely.transform(geoms[~has_z], xy, include_z=False)
    if has_z.any():
        out[has_z] = shapely.transform(geoms[has_z], xy, include_z=True)
    return out


def _is_4326(crs) -> bool:
    return CRS.from_user_input(crs).to_epsg() == 4326


def _with_geoms(frame, geoms: np.ndarray, crs: str):
    import geopandas as gpd

    if isinstance(frame, gpd.GeoDataFrame):
        out = frame.copy()
        col = out.geometry.name
        out[col] = gpd.GeoSeries(geoms, index=out.index, crs=crs)
        return out.set_crs(crs, allow_override=True)
    if isinstance(frame, gpd.GeoSeries):
        return gpd.GeoSeries(geoms, index=frame.index, crs=crs, name=frame.name)
    raise TypeError(f"expected a GeoDataFrame or GeoSeries, got {type(frame).__name__}")


def _geom_values(frame) -> np.ndarray:
    import geopandas as gpd

    if isinstance(frame, gpd.GeoDataFrame):
        return np.asarray(frame.geometry.values, dtype=object)
    if isinstance(frame, gpd.GeoSeries):
        return np.asarray(frame.values, dtype=object)
    raise TypeError(f"expected a GeoDataFrame or GeoSeries, got {type(frame).__name__}")


def to_wgs84(frame, crs=None):
    """Return ``frame`` (GeoDataFrame or GeoSeries, any geometry type) in EPSG:4326.

    ``crs`` says what the coordinates really are ("GCJ-02", "BD-09", an EPSG code, ...) and wins
    over ``frame.crs`` (GCJ-02 data is routinely mislabelled EPSG:4326); if omitted, ``frame.crs``
    is used. EPSG codes are handled by pyproj (``to_crs``; EPSG:4490 -> 4326 is a null shift).
    """
    if crs is None:
        if frame.crs is None:
            raise CRSError(
                "数据没有坐标系，请指定 crs / the data has no CRS; pass crs=. " + _ACCEPTED_HELP
            )
        crs = frame.crs
    if isinstance(crs, CRS) and crs.to_epsg() is None:
        # a valid pyproj CRS without an EPSG code (custom projection): let pyproj handle it
        return frame.set_crs(crs, allow_override=True).to_crs("EPSG:4326")
    src = normalize_crs(crs)
    if src == GCJ02:
        return _with_geoms(frame, _transform_geoms(_geom_values(frame), gcj02_to_wgs84),
                           "EPSG:4326")
    if src == BD09:
        return _with_geoms(frame, _transform_geoms(_geom_values(frame), bd09_to_wgs84),
                           "EPSG:4326")
    return frame.set_crs(src, allow_override=True).to_crs("EPSG:4326")


def from_wgs84(frame, crs):
    """Convert an EPSG:4326 ``frame`` to ``crs`` (the reverse of :func:`to_wgs84`).

    For "GCJ-02"/"BD-09" the result holds shifted lon/lat and is still *labelled* EPSG:4326 so
    that web maps draw it; use it only for overlays on AMap/Tencent (GCJ-02) or Baidu (BD-09)
    tiles, never for analysis. A frame without CRS is taken to be EPSG:4326.
    """
    dst = normalize_crs(crs)
    if frame.crs is None:
        frame = frame.set_crs("EPSG:4326")
    elif not _is_4326(frame.crs):
        frame = frame.to_crs("EPSG:4326")
    if dst == GCJ02:
        return _with_geoms(frame, _transform_geoms(_geom_values(frame), wgs84_to_gcj02),
                           "EPSG:4326")
    if dst == BD09:
        return _with_geoms(frame, _transform_geoms(_geom_values(frame), wgs84_to_bd09),
                           "EPSG:4326")
    return frame.to_crs(dst)


# --------------------------------------------------------------------------------------------
# metric CRS
# --------------------------------------------------------------------------------------------

_GK_FIRST_EPSG = 4534  # CGCS2000 / 3-degree Gauss-Kruger CM 75E
_GK_FIRST_CM = 75
_GK_LAST_CM = 135  # EPSG:4554


def metric_crs(lon: float, lat: float | None = None) -> str:
    """Projected CRS for metric work around longitude ``lon``.

    Inside 73.5 <= lon <= 136.5: the CGCS2000 3-degree Gauss-Krüger CRS with the nearest central
    meridian (EPSG:4534 = CM 75°E ... EPSG:4554 = CM 135°E; no zone prefix in the easting), e.g.
    111.7°E -> EPSG:4546 (CM 111°E). Elsewhere the WGS84 UTM zone (EPSG:326zz, or 327zz when
    ``lat`` is given and negative).
    """
    lon = float(lon)
    if not math.isfinite(lon):
        raise ValueError(f"longitude must be finite, got {lon!r}")
    if 73.5 <= lon <= 136.5:
        cm = 3 * math.floor((lon + 1.5) / 3.0)
        cm = min(max(cm, _GK_FIRST_CM), _GK_LAST_CM)
        return f"EPSG:{_GK_FIRST_EPSG + (cm - _GK_FIRST_CM) // 3}"
    lon_w = (lon + 180.0) % 360.0 - 180.0
    zone = min(int(math.floor((lon_w + 180.0) / 6.0)) + 1, 60)
    south = lat is not None and float(lat) < 0
    return f"EPSG:{(32700 if south else 32600) + zone}"


def metric_crs_for(frame) -> str:
    """:func:`metric_crs` at the centre of ``frame``'s total bounds (frame in EPSG:4326)."""
    if frame.crs is not None and not _is_4326(frame.crs):
        frame = frame.to_crs("EPSG:4326")
    minx, miny, maxx, maxy = frame.total_bounds
    if not np.all(np.isfinite([minx, miny, maxx, maxy])):
        raise ValueError("cannot choose a metric CRS for an empty frame")
    return metric_crs((minx + maxx) / 2.0, (miny + maxy) / 2.0)
