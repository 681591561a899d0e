"""Hot spots: spatial weights, Getis–Ord Gi*, FDR, emerging hot spots, kernel density, risk index.

Pure module (numpy, scipy, pandas, shapely, geopandas): no DuckDB, files or Streamlit. Every
array of locations is in the order the caller gives; coordinates are metres in a projected CRS
(``geo.chinacrs.metric_crs``; EPSG:4546 for Hohhot). The methods and their choices are written
up in ``docs/hotspots.md``.

Main entry points
-----------------
* :func:`knn_weights`, :func:`distance_band_weights`, :func:`spatial_weights` — binary weights
  (no self-weight; :func:`gi_star` adds it) as a ``scipy.sparse`` CSR matrix.
* :func:`gi_star` — analytic local Gi* z-scores and two-sided p-values for one or many value
  columns at once; equal to ``esda.G_Local(y, w, star=True, transform='B', permutations=0)``.
* :func:`fdr_bh` — Benjamini–Hochberg adjusted p-values; :func:`hotspot_classes` — the
  ``hot_99 … cold_99 / none`` classes of ArcGIS's Hot Spot Analysis.
* :func:`mann_kendall`, :func:`classify_emerging`, :func:`emerging_hotspots` — Emerging Hot
  Spot Analysis with the 17 categories of ESRI's tool.
* :func:`kernel_density` — quartic / Epanechnikov kernel density on a raster by binning + FFT;
  :func:`raster_to_zones` integrates it over polygons.
* :func:`cell_grid` — a regular square or hexagonal cell grid over an area.
* :func:`risk_index` — a weighted index of normalised components.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse, stats
from scipy.signal import fftconvolve
from scipy.spatial import cKDTree

log = logging.getLogger(__name__)

__all__ = [
    "HOTSPOT_CLASSES",
    "MIN_PERIODS",
    "TREND_CLASSES",
    "EmergingResult",
    "GiStar",
    "KernelDensity",
    "auto_band",
    "cell_grid",
    "classify_emerging",
    "distance_band_weights",
    "emerging_hotspots",
    "fdr_bh",
    "gi_star",
    "hotspot_classes",
    "kernel_density",
    "knn_weights",
    "mann_kendall",
    "normalise",
    "raster_to_zones",
    "risk_index",
    "spatial_weights",
]

#: Gi* classes, from hottest to coldest, as in ArcGIS's Hot Spot Analysis (Gi_Bin +3 … -3, 0).
HOTSPOT_CLASSES = ("hot_99", "hot_95", "hot_90", "cold_90", "cold_95", "cold_99", "none")

_PATTERNS = (
    "new",
    "consecutive",
    "intensifying",
    "persistent",
    "diminishing",
    "sporadic",
    "oscillating",
    "historical",
)
#: The 17 Emerging Hot Spot Analysis categories.
TREND_CLASSES = tuple(f"{p}_{s}" for s in ("hot", "cold") for p in _PATTERNS) + ("none",)

#: Fewest periods (time steps) an emerging hot spot analysis accepts.
MIN_PERIODS = 10


# --------------------------------------------------------------------------------------------
# spatial weights
# --------------------------------------------------------------------------------------------


def _as_xy(xy) -> np.ndarray:
    arr = np.asarray(xy, dtype=float)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(
            f"`xy` must be an (n, 2) array of projected coordinates, got shape {arr.shape}"
        )
    if not np.isfinite(arr).all():
        raise ValueError("`xy` contains NaN or infinite coordinates; drop empty geometries first")
    return arr


def knn_weights(xy, k: int = 8) -> sparse.csr_matrix:
    """Binary k-nearest-neighbour weights (self excluded) as an n×n CSR matrix.

    Parameters
    ----------
    xy
        (n, 2) projected coordinates (metres), e.g. polygon centroids.
    k
        Neighbours per location (capped at n − 1). Ties at the k-th distance are broken by the
        k-d tree's order, like ``libpysal.weights.KNN``.

    Returns
    -------
    scipy.sparse.csr_matrix
        ``w[i, j] = 1`` when j is one of i's k nearest neighbours (not symmetric in general).

    Examples
    --------
    >>> w = knn_weights([[0, 0], [1, 0], [3, 0]], k=1)
    >>> w.toarray().astype(int).tolist()
    [[0, 1, 0], [1, 0, 0], [0, 1, 0]]
    """
    xy = _as_xy(xy)
    n = len(xy)
    k = int(min(k, n - 1))
    if k < 1:
        return sparse.csr_matrix((n, n))
    _, idx = cKDTree(xy).query(xy, k=k + 1)
    idx = np.atleast_2d(idx)
    rows = np.arange(n)
    # drop self from each row; with duplicate points self may not come first
    is_self = idx == rows[:, None]
    no_self = ~is_self.any(axis=1)
    is_self[no_self, -1] = True  # then drop the farthest instead
    keep = ~is_self
    cols = idx[keep].reshape(n, k)
    data = np.ones(n * k)
    return sparse.csr_matrix((data, (np.repeat(rows, k), cols.ravel())), shape=(n, n))


def auto_band(xy, k: int = 8) -> float:
    """Distance band chosen from the data's scale.

    The larger of (a) the largest nearest-neighbour distance, so that no location is an island
    (ArcGIS's default band), and (b) the median distance to the k-th nearest neighbour, so that a
    typical location has about k neighbours (at least 8 is the usual advice for Gi*).
    """
    xy = _as_xy(xy)
    n = len(xy)
    if n < 2:
        return 0.0
    kk = int(min(k, n - 1))
    d, _ = cKDTree(xy).query(xy, k=kk + 1)
    d = np.atleast_2d(d)
    return float(max(d[:, 1].max(), np.median(d[:, kk])))


def distance_band_weights(xy, threshold: float | None = None, *, k: int = 8) -> sparse.csr_matrix:
    """Binary distance-band weights: ``w[i, j] = 1`` when 0 < d(i, j) <= threshold (self excluded).

    Parameters
    ----------
    xy
        (n, 2) projected coordinates (metres).
    threshold
        Band in metres; ``None`` picks :func:`auto_band` (every location gets a neighbour and the
        median location about ``k``).
    k
        Target neighbour count for the automatic band.

    Examples
    --------
    >>> distance_band_weights([[0, 0], [1, 0], [3, 0]], threshold=1.5).toarray().astype(int).tolist()
    [[0, 1, 0], [1, 0, 0], [0, 0, 0]]
    """
    xy = _as_xy(xy)
    n = len(xy)
    if threshold is None:
        threshold = auto_band(xy, k=k)
    tree = cKDTree(xy)
    pairs = tree.query_pairs(r=float(threshold) * (1 + 1e-12), output_type="ndarray")
    if len(pairs) == 0:
        return sparse.csr_matrix((n, n))
    i = np.concatenate([pairs[:, 0], pairs[:, 1]])
    j = np.concatenate([pairs[:, 1], pairs[:, 0]])
    w = sparse.csr_matrix((np.ones(len(i)), (i, j)), shape=(n, n))
    w.sum_duplicates()
    w.data[:] = 1.0
    return w


def spatial_weights(
    xy, *, method: Literal["knn", "distance_band"] = "knn", k: int = 8, band: float | None = None
) -> sparse.csr_matrix:
    """Binary spatial weights by ``method`` (``"knn"`` with ``k``, or ``"distance_band"`` with ``band``)."""
    if method == "knn":
        return knn_weights(xy, k=k)
    if method in ("distance_band", "band"):
        return distance_band_weights(xy, band, k=k)
    raise ValueError(f"unknown weights method {method!r}; use 'knn' or 'distance_band'")


def _as_sparse(weights) -> sparse.csr_matrix:
    if hasattr(weights, "sparse"):  # libpysal W / Graph
        weights = weights.sparse
    if not sparse.issparse(weights):
        weights = sparse.csr_matrix(np.asarray(weights, dtype=float))
    return sparse.csr_matrix(weights, dtype=float)


# --------------------------------------------------------------------------------------------
# Getis–Ord Gi*
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GiStar:
    """Result of :func:`gi_star`: z-scores and two-sided normal p-values (same shape as input)."""

    z: np.ndarray
    p: np.ndarray

    def __iter__(self):  # allows ``z, p = gi_star(...)``
        return iter((self.z, self.p))


def gi_star(values, weights, *, star: bool = True) -> GiStar:
    """Local Getis–Ord Gi* (Getis & Ord 1992; Ord & Getis 1995) with analytic inference.

    Parameters
    ----------
    values
        (n,) or (n, m) array: one value per location, or m columns (e.g. one per month) that are
        analysed independently in one sparse product.
    weights
        n×n spatial weights (``scipy.sparse`` matrix, dense array or ``libpysal`` W/Graph), no
        row-standardisation. With ``star=True`` a zero diagonal is replaced by 1 (the location
        counts itself, like esda's binary Gi*); a non-zero diagonal is kept as given.
    star
        ``False`` gives the plain Gi (self excluded, n − 1 other locations as reference).

    Returns
    -------
    GiStar
        ``z``: standardised Gi*, ``(Σ_j w_ij x_j − x̄ W_i) / (s √((n S1_i − W_i²)/(n − 1)))`` with
        ``W_i = Σ_j w_ij``, ``S1_i = Σ_j w_ij²`` and ``s`` the population standard deviation; for
        binary weights this equals esda's ``G_Local(..., star=True, transform='B').Zs``.
        ``p``: two-sided p-value ``2·(1 − Φ(|z|))`` (esda's ``p_norm`` is one-sided: ×2).
        A column with no variance gives z = 0, p = 1.

    Examples
    --------
    >>> w = knn_weights([[0, 0], [1, 0], [2, 0], [10, 0], [11, 0]], k=1)
    >>> z, p = gi_star([5.0, 6.0, 5.0, 0.0, 1.0], w)
    >>> bool(z[0] > 0 > z[3])
    True
    """
    x = np.asarray(values, dtype=float)
    one_d = x.ndim == 1
    if one_d:
        x = x[:, None]
    w = _as_sparse(weights)
    n = x.shape[0]
    if w.shape != (n, n):
        raise ValueError(f"weights are {w.shape} but there are {n} values")
    if not np.isfinite(x).all():
        raise ValueError("`values` contain NaN or infinite numbers; fill missing counts with 0")
    if star:
        if not w.diagonal().any():
            w = (w + sparse.identity(n, format="csr")).tocsr()
        ref_n = n
        xbar = x.mean(axis=0)
        s = x.std(axis=0)
        wsum = np.asarray(w.sum(axis=1)).ravel()[:, None]
        s1 = np.asarray(w.multiply(w).sum(axis=1)).ravel()[:, None]
        num = w @ x - wsum * xbar
        den = s * np.sqrt(np.maximum(ref_n * s1 - wsum**2, 0.0) / (ref_n - 1))
    else:
        w = w.tolil()
        w.setdiag(0)
        w = w.tocsr()
        ref_n = n - 1
        tot = x.sum(axis=0)
        tot2 = (x**2).sum(axis=0)
        xbar = (tot - x) / ref_n  # mean of the other locations, per location
        s = np.sqrt(np.maximum((tot2 - x**2) / ref_n - xbar**2, 0.0))
        wsum = np.asarray(w.sum(axis=1)).ravel()[:, None]
        s1 = np.asarray(w.multiply(w).sum(axis=1)).ravel()[:, None]
        num = w @ x - wsum * xbar
        den = s * np.sqrt(np.maximum(ref_n * s1 - wsum**2, 0.0) / (ref_n - 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    p = 2.0 * stats.norm.sf(np.abs(z))
    if one_d:
        z, p = z[:, 0], p[:, 0]
    return GiStar(z=z, p=p)


# --------------------------------------------------------------------------------------------
# multiple testing and classes
# --------------------------------------------------------------------------------------------


def fdr_bh(p, *, axis: int = 0) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (q-values), computed along ``axis``.

    ``q_(i) = min_{j >= i} min(1, m p_(j) / j)`` for the sorted p-values ``p_(1) <= … <= p_(m)``;
    a test is significant at FDR level α exactly when ``q <= α``. NaNs are ignored and stay NaN.

    Examples
    --------
    >>> fdr_bh([0.01, 0.04, 0.03, 0.20]).round(4).tolist()
    [0.04, 0.0533, 0.0533, 0.2]
    """
    p = np.asarray(p, dtype=float)
    if p.ndim == 0:
        return p.copy()
    p = np.moveaxis(p, axis, 0)
    out = np.full(p.shape, np.nan)
    flat = p.reshape(p.shape[0], -1)
    out_flat = out.reshape(p.shape[0], -1)
    for c in range(flat.shape[1]):
        col = flat[:, c]
        ok = np.flatnonzero(~np.isnan(col))
        m = len(ok)
        if m == 0:
            continue
        order = ok[np.argsort(col[ok], kind="mergesort")]
        ranked = col[order] * m / np.arange(1, m + 1)
        q = np.minimum.accumulate(ranked[::-1])[::-1]
        out_flat[order, c] = np.minimum(q, 1.0)
    return np.moveaxis(out_flat.reshape(p.shape), 0, axis)


def hotspot_classes(z, p) -> np.ndarray:
    """ArcGIS-style classes from z-scores and (two-sided, possibly FDR-adjusted) p-values.

    ``hot_99`` when z > 0 and p <= 0.01, ``hot_95`` when p <= 0.05, ``hot_90`` when p <= 0.10;
    ``cold_*`` likewise for z < 0; otherwise ``none``. Pass :func:`fdr_bh` p-values to get the
    FDR-corrected classes (ArcGIS's "Apply False Discovery Rate correction").

    Examples
    --------
    >>> hotspot_classes([3.0, 2.0, -1.8, 0.5], [0.002, 0.04, 0.07, 0.6]).tolist()
    ['hot_99', 'hot_95', 'cold_90', 'none']
    """
    z = np.asarray(z, dtype=float)
    p = np.asarray(p, dtype=float)
    hot, cold = z > 0, z < 0
    conds = [
        hot & (p <= 0.01),
        hot & (p <= 0.05),
        hot & (p <= 0.10),
        cold & (p <= 0.01),
        cold & (p <= 0.05),
        cold & (p <= 0.10),
    ]
    choices = ["hot_99", "hot_95", "hot_90", "cold_99", "cold_95", "cold_90"]
    return np.select(conds, choices, default="none").astype(object)


# --------------------------------------------------------------------------------------------
# Mann–Kendall and emerging hot spots
# --------------------------------------------------------------------------------------------


def mann_kendall(series, *, continuity: bool = True) -> pd.DataFrame:
    """Mann–Kendall monotonic trend test for each row of an (n, T) array (vectorised).

    ``S = Σ_{i<j} sign(x_j − x_i)``, ``Var S = [T(T−1)(2T+5) − Σ_g t_g(t_g−1)(2t_g+5)] / 18``
    (tie groups ``t_g``), ``Z = (S − sign(S)) / √Var S`` with the continuity correction
    (``S / √Var S`` without), two-sided ``p = 2(1 − Φ(|Z|))``, Kendall's ``tau = S / (T(T−1)/2)``.

    Returns
    -------
    pandas.DataFrame
        Columns ``s``, ``var_s``, ``z``, ``p``, ``tau``, one row per input row.
    """
    x = np.atleast_2d(np.asarray(series, dtype=float))
    n, t = x.shape
    s = np.zeros(n)
    for d in range(1, t):
        s += np.sign(x[:, d:] - x[:, :-d]).sum(axis=1)
    # tie correction: each element of a tie group of size g contributes (g-1)(2g+5)
    eq = np.zeros_like(x)
    for k in range(t):
        eq += x == x[:, k : k + 1]
    ties = ((eq - 1) * (2 * eq + 5)).sum(axis=1)
    var = (t * (t - 1) * (2 * t + 5) - ties) / 18.0
    num = s - np.sign(s) if continuity else s
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(var > 0, num / np.sqrt(np.where(var > 0, var, 1.0)), 0.0)
    p = 2.0 * stats.norm.sf(np.abs(z))
    tau = s / (t * (t - 1) / 2.0) if t > 1 else np.zeros(n)
    return pd.DataFrame({"s": s, "var_s": var, "z": z, "p": p, "tau": tau})


def _too_few_periods(t: int, min_periods: int) -> ValueError:
    return ValueError(
        f"新兴热点分析至少需要 {min_periods} 个时段（例如 {min_periods} 个月），当前只有 {t} 个。 / "
        f"Emerging hot spot analysis needs at least {min_periods} time periods "
        f"(e.g. {min_periods} months of incidents); got {t}."
    )


def classify_emerging(
    z,
    significant,
    *,
    trend_alpha: float = 0.05,
    min_periods: int = MIN_PERIODS,
    trend: pd.DataFrame | None = None,
) -> np.ndarray:
    """The 17 Emerging Hot Spot Analysis categories from per-period Gi* z-scores.

    Parameters
    ----------
    z
        (n, T) Gi* z-scores, one row per location, periods in time order (last = most recent).
    significant
        (n, T) bool: the bin is statistically significant (e.g. FDR-adjusted p <= 0.05). A bin is
        *hot* when significant and z > 0, *cold* when significant and z < 0.
    trend_alpha
        Significance level of the Mann–Kendall trend of each location's z-series.
    min_periods
        Fewer periods raise ``ValueError`` (default 10).
    trend
        Precomputed :func:`mann_kendall` of ``z`` (computed when omitted).

    Returns
    -------
    numpy.ndarray
        One of :data:`TREND_CLASSES` per location. The rules (hot side; cold mirrors it with
        hot ↔ cold and the trend sign flipped), checked in this order:

        1. final bin hot and >= 90 % of bins hot: ``intensifying_hot`` if the trend is
           significantly upward, ``diminishing_hot`` if significantly downward, else
           ``persistent_hot``;
        2. final bin hot and no significant bin (hot or cold) before it: ``new_hot``;
        3. final bin hot, the final uninterrupted run of hot bins is >= 2 long and no significant
           bin precedes the run: ``consecutive_hot``;
        4. final bin hot and some earlier bin cold: ``oscillating_hot``;
        5. final bin hot otherwise (on-and-off hot, never cold): ``sporadic_hot``;
        6. final bin not hot (nor cold) but >= 90 % of bins hot: ``historical_hot``;
        7. anything else: ``none``.

    Examples
    --------
    >>> z = np.zeros((1, 12)); z[0, -1] = 3.0
    >>> classify_emerging(z, np.abs(z) > 1.96).tolist()
    ['new_hot']
    """
    z = np.atleast_2d(np.asarray(z, dtype=float))
    sig = np.atleast_2d(np.asarray(significant, dtype=bool))
    if z.shape != sig.shape:
        raise ValueError(f"`z` {z.shape} and `significant` {sig.shape} must have the same shape")
    n, t = z.shape
    if t < min_periods:
        raise _too_few_periods(t, min_periods)
    if trend is None:
        trend = mann_kendall(z)
    mk_sig = trend["p"].to_numpy() <= trend_alpha
    up = mk_sig & (trend["s"].to_numpy() > 0)
    down = mk_sig & (trend["s"].to_numpy() < 0)
    hot = sig & (z > 0)
    cold = sig & (z < 0)
    out = np.full(n, "none", dtype=object)
    before_final_sig = sig[:, :-1].any(axis=1)
    cols = np.arange(t)
    decided = np.zeros(n, dtype=bool)
    for side, this, other, rising, falling in (
        ("hot", hot, cold, up, down),
        ("cold", cold, hot, down, up),
    ):
        final = this[:, -1]
        share = this.mean(axis=1)
        ninety = share >= 0.9
        run = np.cumprod(this[:, ::-1], axis=1).sum(axis=1)  # trailing run length
        sig_before_run = (sig & (cols[None, :] < (t - run)[:, None])).any(axis=1)
        any_other = other.any(axis=1)
        conds = [
            final & ninety & rising,
            final & ninety & falling,
            final & ninety,
            final & ~before_final_sig,
            final & (run >= 2) & ~sig_before_run,
            final & any_other,
            final,
        ]
        names = [
            "intensifying",
            "diminishing",
            "persistent",
            "new",
            "consecutive",
            "oscillating",
            "sporadic",
        ]
        lab = np.select(conds, [f"{nm}_{side}" for nm in names], default="")
        take = (lab != "") & ~decided
        out[take] = lab[take]
        decided |= take
    # historical: final bin not hot/cold but >= 90 % of the bins were
    for side, this in (("hot", hot), ("cold", cold)):
        take = ~decided & ~this[:, -1] & (this.mean(axis=1) >= 0.9)
        out[take] = f"historical_{side}"
        decided |= take
    return out


@dataclass
class EmergingResult:
    """Result of :func:`emerging_hotspots`.

    ``z``, ``p``, ``p_fdr``: (n, T) per-period Gi*; ``trend``: one row per location with
    ``trend_class``, Mann–Kendall ``mk_z``, ``mk_p``, ``tau``, ``share_hot``, ``share_cold``.
    """

    z: np.ndarray
    p: np.ndarray
    p_fdr: np.ndarray
    trend: pd.DataFrame


def emerging_hotspots(
    values,
    weights,
    *,
    alpha: float = 0.05,
    fdr: bool = True,
    trend_alpha: float = 0.05,
    min_periods: int = MIN_PERIODS,
) -> EmergingResult:
    """Emerging hot spot analysis of an (n locations, T periods) value panel.

    Gi* is computed for every period separately with the same spatial weights (no time
    neighbourhood), p-values are FDR-adjusted within each period when ``fdr`` is true, a bin is
    significant at ``alpha``, and :func:`classify_emerging` labels each location.

    Raises
    ------
    ValueError
        With fewer than ``min_periods`` periods (message in Chinese and English).
    """
    y = np.asarray(values, dtype=float)
    if y.ndim != 2:
        raise ValueError(f"`values` must be (locations, periods), got shape {y.shape}")
    if y.shape[1] < min_periods:
        raise _too_few_periods(y.shape[1], min_periods)
    z, p = gi_star(y, weights)
    q = fdr_bh(p, axis=0) if fdr else p
    trend = mann_kendall(z)
    classes = classify_emerging(
        z, q <= alpha, trend_alpha=trend_alpha, min_periods=min_periods, trend=trend
    )
    hot = (q <= alpha) & (z > 0)
    cold = (q <= alpha) & (z < 0)
    table = pd.DataFrame(
        {
            "trend_class": classes,
            "mk_z": trend["z"].to_numpy(),
            "mk_p": trend["p"].to_numpy(),
            "tau": trend["tau"].to_numpy(),
            "share_hot": hot.mean(axis=1),
            "share_cold": cold.mean(axis=1),
        }
    )
    return EmergingResult(z=z, p=p, p_fdr=q if fdr else fdr_bh(p, axis=0), trend=table)


# --------------------------------------------------------------------------------------------
# kernel density
# --------------------------------------------------------------------------------------------


@dataclass
class KernelDensity:
    """A density raster. ``density[row, col]`` is events per km² in the cell whose lower-left
    corner is ``(x0 + col·cell, y0 + row·cell)`` (row 0 at the bottom, metres in ``crs``)."""

    density: np.ndarray
    x0: float
    y0: float
    cell: float
    bandwidth: float
    kernel: str
    crs: object = None

    @property
    def cell_area_km2(self) -> float:
        return (self.cell / 1000.0) ** 2

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        """x and y of cell centres as 2-D arrays shaped like ``density``."""
        ny, nx = self.density.shape[-2:]
        xs = self.x0 + (np.arange(nx) + 0.5) * self.cell
        ys = self.y0 + (np.arange(ny) + 0.5) * self.cell
        return np.meshgrid(xs, ys)

    def total(self) -> float:
        """Events represented by the surface (integral of the density)."""
        return float(self.density.sum() * self.cell_area_km2)


def _kernel_array(bandwidth: float, cell: float, kernel: str) -> np.ndarray:
    r = int(np.ceil(bandwidth / cell))
    off = np.arange(-r, r + 1) * cell
    dx, dy = np.meshgrid(off, off)
    u2 = (dx**2 + dy**2) / bandwidth**2
    if kernel == "quartic":
        k = np.where(u2 < 1, (1 - u2) ** 2, 0.0)
    elif kernel == "epanechnikov":
        k = np.where(u2 < 1, 1 - u2, 0.0)
    else:
        raise ValueError(f"unknown kernel {kernel!r}; use 'quartic' or 'epanechnikov'")
    if k.sum() <= 0:  # bandwidth below half a cell: all mass in the own cell
        k = np.zeros_like(k)
        k[r, r] = 1.0
    return k / k.sum()


def _bin_points(x, y, weights, x0, y0, cell, nx, ny, layers=None, n_layers: int = 1) -> np.ndarray:
    ix = np.floor((x - x0) / cell).astype(np.int64)
    iy = np.floor((y - y0) / cell).astype(np.int64)
    ok = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
    lin = iy[ok] * nx + ix[ok]
    if layers is not None:
        lin = np.asarray(layers, dtype=np.int64)[ok] * (nx * ny) + lin
    w = None if weights is None else np.asarray(weights, dtype=float)[ok]
    counts = np.bincount(lin, weights=w, minlength=n_layers * nx * ny)
    return counts.reshape(n_layers, ny, nx)


def kernel_density(
    xy,
    *,
    bandwidth: float,
    cell: float | None = None,
    bounds=None,
    weights=None,
    kernel: Literal["quartic", "epanechnikov"] = "quartic",
    layers=None,
    n_layers: int | None = None,
    crs=None,
) -> KernelDensity:
    """Kernel density of points on a raster by binning + FFT convolution (fast for millions).

    Points are counted into ``cell``-sized bins, and the bin counts are convolved
    (``scipy.signal.fftconvolve``) with the kernel sampled on the same grid and normalised to sum
    to 1, so every point keeps a mass of exactly one: the surface integrates to the number of
    points (or the sum of ``weights``) when ``bounds`` leave a margin of one bandwidth, which the
    default bounds do. The binning moves each point by at most half a cell (keep ``cell`` well
    below ``bandwidth``; default ``bandwidth / 5``).

    Parameters
    ----------
    xy
        (n, 2) projected coordinates in metres.
    bandwidth
        Kernel radius in metres (finite support: zero beyond it).
    cell
        Raster cell size in metres.
    bounds
        (minx, miny, maxx, maxy) of the raster; default the points' bounds plus one bandwidth.
    weights
        Optional weight per point (e.g. severity).
    kernel
        ``"quartic"`` (biweight, ``(1 − d²/h²)²``, ArcGIS's kernel) or ``"epanechnikov"``.
    layers, n_layers
        Optional integer layer per point (e.g. month index) to get a stack of ``n_layers``
        surfaces in one pass; ``density`` is then (n_layers, ny, nx).

    Returns
    -------
    KernelDensity
        Density in events per km².

    Examples
    --------
    >>> kd = kernel_density([[0.0, 0.0], [100.0, 50.0]], bandwidth=200.0, cell=20.0)
    >>> round(kd.total(), 6)
    2.0
    """
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    if bandwidth <= 0:
        raise ValueError(f"`bandwidth` must be positive metres, got {bandwidth}")
    cell = float(cell) if cell else bandwidth / 5.0
    if bounds is None:
        if len(xy) == 0:
            raise ValueError("no points and no `bounds`: nothing to grid")
        minx, miny = xy.min(axis=0) - bandwidth
        maxx, maxy = xy.max(axis=0) + bandwidth
    else:
        minx, miny, maxx, maxy = map(float, bounds)
    nx = max(int(np.ceil((maxx - minx) / cell)), 1)
    ny = max(int(np.ceil((maxy - miny) / cell)), 1)
    if nx * ny * (n_layers or 1) > 400_000_000:
        raise ValueError(
            f"raster of {nx}×{ny} cells is too large; use a larger `cell` (now {cell} m)"
        )
    if layers is not None and n_layers is None:
        n_layers = int(np.max(layers)) + 1 if len(layers) else 1
    nl = n_layers or 1
    counts = _bin_points(xy[:, 0], xy[:, 1], weights, minx, miny, cell, nx, ny, layers, nl)
    k = _kernel_array(bandwidth, cell, kernel)
    dens = fftconvolve(counts, k[None, :, :], mode="same", axes=(1, 2))
    # FFT round-off leaves ~1e-16 noise where the kernel is exactly zero: remove it
    dens[dens < 1e-12 * max(float(counts.max()), 1.0)] = 0.0
    dens /= (cell / 1000.0) ** 2
    if layers is None:
        dens = dens[0]
    return KernelDensity(
        density=dens,
        x0=minx,
        y0=miny,
        cell=cell,
        bandwidth=float(bandwidth),
        kernel=kernel,
        crs=crs,
    )


def raster_to_zones(kd: KernelDensity, zones: gpd.GeoSeries) -> np.ndarray:
    """Integrate a density raster over polygons: expected events per zone.

    Each raster cell is given to the zone containing its centre; a zone containing no cell centre
    (smaller than a cell) gets its centroid's density × its area. Works on a stack of surfaces
    (returns (n_zones, n_layers)) or one surface (returns (n_zones,)).
    """
    dens = kd.density if kd.density.ndim == 3 else kd.density[None]
    nl, ny, nx = dens.shape
    cx, cy = kd.centres()
    pts = shapely.points(cx.ravel(), cy.ravel())
    geoms = np.asarray(zones.values if hasattr(zones, "values") else zones)
    tree = shapely.STRtree(geoms)
    pi, zi = tree.query(pts, predicate="within")
    # a centre on a shared edge may fall "within" none; exact ties are rare, ignore
    first = np.full(len(pts), -1)
    first[pi[::-1]] = zi[::-1]
    flat = dens.reshape(nl, -1)
    out = np.zeros((len(geoms), nl))
    has = first >= 0
    for layer in range(nl):
        out[:, layer] = np.bincount(first[has], weights=flat[layer, has], minlength=len(geoms))
    out *= kd.cell_area_km2
    empty = np.bincount(first[has], minlength=len(geoms)) == 0
    if empty.any():
        cen = shapely.centroid(geoms[empty])
        ix = np.floor((shapely.get_x(cen) - kd.x0) / kd.cell).astype(int)
        iy = np.floor((shapely.get_y(cen) - kd.y0) / kd.cell).astype(int)
        inside = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
        area_km2 = shapely.area(geoms[empty]) / 1e6
        vals = np.zeros((empty.sum(), nl))
        vals[inside] = dens[:, iy[inside], ix[inside]].T * area_km2[inside, None]
        out[empty] = vals
    return out if kd.density.ndim == 3 else out[:, 0]


# --------------------------------------------------------------------------------------------
# regular cell grid
# --------------------------------------------------------------------------------------------


def cell_grid(
    area: gpd.GeoDataFrame | gpd.GeoSeries,
    size: float = 500.0,
    shape: Literal["square", "hex"] = "square",
) -> gpd.GeoDataFrame:
    """A regular grid of square or hexagonal cells covering ``area`` (projected CRS, metres).

    Cells are anchored at the CRS origin, so the same location always gets the same id between
    runs: squares ``C_<col>_<row>`` with ``col = floor(x / size)``, hexagons ``H_<q>_<r>``
    (pointy-top, axial coordinates, ``size`` = distance between neighbouring centres). Only cells
    that intersect ``area`` are returned (whole, not clipped).

    Returns
    -------
    geopandas.GeoDataFrame
        ``grid_id``, ``geometry`` in ``area``'s CRS.
    """
    if area.crs is None or not area.crs.is_projected:
        raise ValueError(
            f"`area` must be in a projected CRS (metres), got {area.crs}; "
            "project it first, e.g. with geo.chinacrs.metric_crs"
        )
    size = float(size)
    if size <= 0:
        raise ValueError(f"cell size must be positive metres, got {size}")
    geoms = area.geometry.values
    minx, miny, maxx, maxy = area.total_bounds
    if shape == "square":
        c0, c1 = int(np.floor(minx / size)), int(np.floor(maxx / size))
        r0, r1 = int(np.floor(miny / size)), int(np.floor(maxy / size))
        cc, rr = np.meshgrid(np.arange(c0, c1 + 1), np.arange(r0, r1 + 1))
        cc, rr = cc.ravel(), rr.ravel()
        cells = shapely.box(cc * size, rr * size, (cc + 1) * size, (rr + 1) * size)
        ids = np.char.add(np.char.add(np.char.add("C_", cc.astype(str)), "_"), rr.astype(str))
    elif shape == "hex":
        # pointy-top hexagons: centre of (q, r) at x = size (q + r/2), y = size √3/2 r
        dy = size * np.sqrt(3) / 2
        r0, r1 = int(np.floor(miny / dy)) - 1, int(np.ceil(maxy / dy)) + 1
        rr_all, qq_all = [], []
        for r in range(r0, r1 + 1):
            q0 = int(np.floor(minx / size - r / 2)) - 1
            q1 = int(np.ceil(maxx / size - r / 2)) + 1
            q = np.arange(q0, q1 + 1)
            qq_all.append(q)
            rr_all.append(np.full(len(q), r))
        qq, rr = np.concatenate(qq_all), np.concatenate(rr_all)
        cx = size * (qq + rr / 2.0)
        cy = dy * rr
        rad = size / np.sqrt(3)  # centre-to-vertex
        ang = np.deg2rad(np.arange(6) * 60 + 30)
        ring = np.stack([cx[:, None] + rad * np.cos(ang), cy[:, None] + rad * np.sin(ang)], axis=-1)
        cells = shapely.polygons(ring)
        ids = np.char.add(np.char.add(np.char.add("H_", qq.astype(str)), "_"), rr.astype(str))
    else:
        raise ValueError(f"unknown cell shape {shape!r}; use 'square' or 'hex'")
    tree = shapely.STRtree(geoms)
    hit = np.unique(tree.query(cells, predicate="intersects")[0])
    return gpd.GeoDataFrame({"grid_id": ids[hit].astype(object)}, geometry=cells[hit], crs=area.crs)


# --------------------------------------------------------------------------------------------
# risk index
# --------------------------------------------------------------------------------------------


def normalise(values, method: Literal["minmax", "rank"] = "minmax") -> np.ndarray:
    """Scale to [0, 1]: ``minmax`` ((x − min)/(max − min)) or ``rank`` (average percentile rank,
    ties share a rank; the smallest value maps to 0). A constant input maps to 0."""
    x = np.asarray(values, dtype=float)
    x = np.where(np.isfinite(x), x, 0.0)
    if len(x) == 0:
        return x
    if method == "minmax":
        lo, hi = x.min(), x.max()
        return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
    if method == "rank":
        if x.max() == x.min():
            return np.zeros_like(x)
        r = stats.rankdata(x, method="average")
        return (r - r.min()) / (r.max() - r.min())
    raise ValueError(f"unknown normalisation {method!r}; use 'minmax' or 'rank'")


def risk_index(
    components: pd.DataFrame,
    weights: Mapping[str, float],
    *,
    method: Literal["minmax", "rank"] = "minmax",
) -> pd.DataFrame:
    """Weighted risk index (0–100) of normalised components.

    Parameters
    ----------
    components
        One row per grid, one column of raw values per component (e.g. ``incidents`` = severity-
        and category-weighted incident count, ``elderly_alone``, ``disabled``, ``low_income``,
        ``special_units``).
    weights
        Weight per component name; components without a weight (or weight 0) are ignored.
        Weights are rescaled to sum to 1.
    method
        Normalisation of each component, see :func:`normalise`.

    Returns
    -------
    pandas.DataFrame
        Same index; ``risk_score`` and per component ``<name>_norm`` (0–1) and
        ``<name>_contribution`` (points of the score; contributions sum to ``risk_score``).

    Examples
    --------
    >>> comp = pd.DataFrame({"incidents": [0, 5, 10], "elderly_alone": [4, 0, 2]})
    >>> risk_index(comp, {"incidents": 3, "elderly_alone": 1})["risk_score"].tolist()
    [25.0, 37.5, 87.5]
    """
    used = {k: float(v) for k, v in weights.items() if k in components.columns and float(v) > 0}
    missing = [k for k, v in weights.items() if float(v) > 0 and k not in components.columns]
    if missing:
        log.warning("risk components without data are left out: %s", ", ".join(missing))
    total = sum(used.values())
    out = pd.DataFrame(index=components.index)
    score = np.zeros(len(components))
    for name, w in used.items():
        norm = normalise(components[name].to_numpy(), method)
        contrib = 100.0 * w / total * norm
        out[f"{name}_norm"] = norm
        out[f"{name}_contribution"] = contrib
        score += contrib
    out.insert(0, "risk_score", score)
    return out
