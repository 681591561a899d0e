"""Hot spots: the per-unit excess test, space–time classes, spatial weights, Getis–Ord Gi*, FDR,
fishnet scale by incremental spatial autocorrelation, kernel density, risk index.

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
* :func:`excess_test` — the leaders' verdict: more incidents than the unit's households (or
  residents, area) lead one to expect, with robustly estimated over-dispersion
  (:func:`robust_dispersion`), one-sided p-values (:func:`count_tail_p`) and BH;
  :func:`excess_trends` — space–time classes from pooled early/recent windows + Mann–Kendall.
* :func:`global_moran`, :func:`fishnet_counts`, :func:`incremental_cell_size` — an equal-area
  fishnet whose cell size is the first peak of Moran's I z (Gi* on it is the second answer).
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
    "CHI2_1_MEDIAN",
    "DISPERSIONS",
    "ExcessResult",
    "ExcessTrends",
    "count_tail_p",
    "count_variance",
    "excess_classes",
    "excess_test",
    "excess_trends",
    "fishnet_counts",
    "global_moran",
    "incremental_cell_size",
    "cell_size_by_first_peak",
    "robust_dispersion",
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
    # one layer at a time: the same numbers as the whole stack at once (checked bit for bit), with
    # one layer's FFT buffers in memory instead of every month's
    dens = np.empty(counts.shape, dtype=float)
    for layer in range(counts.shape[0]):
        dens[layer] = fftconvolve(counts[layer], k, mode="same")
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


# --------------------------------------------------------------------------------------------
# excess test: more incidents than the unit's households (or residents, or area) lead one to expect
# --------------------------------------------------------------------------------------------

#: Median of the χ² distribution with one degree of freedom: the median squared standardised
#: residual of a correctly scaled model.
CHI2_1_MEDIAN = float(stats.chi2.ppf(0.5, 1))

#: Dispersion models of :func:`excess_test`.
DISPERSIONS = ("quasi_poisson", "negative_binomial", "poisson")


def robust_dispersion(
    counts, expected, *, model: str = "quasi_poisson", min_expected: float = 0.0
) -> float:
    """Over-dispersion estimated so that a few clusters cannot inflate it.

    The parameter is chosen so that the **median** squared standardised residual equals the
    median of χ²₁ (0.4549): a consistent estimate when the model holds, and one that ignores up
    to half of the units being far off (the planted or real clusters themselves), unlike the
    usual Pearson χ²/(n − 1), which a handful of clusters can multiply several times.

    * ``quasi_poisson``: ``Var y = φ μ``; returns φ = max(1, median(r²) / 0.4549) with Pearson
      residuals ``r = (y − μ)/√μ``.
    * ``negative_binomial``: ``Var y = μ + α μ²``; returns α ≥ 0 (bisection; the median of
      ``(y − μ)²/(μ + α μ²)`` falls as α grows).
    * ``poisson``: returns 1.0 (no over-dispersion; for reference only).

    Units whose expectation is ``<= min_expected`` are left out.

    Examples
    --------
    >>> robust_dispersion([10, 10, 10, 10, 500], [10, 10, 10, 10, 10])
    1.0
    """
    y = np.asarray(counts, dtype=float).ravel()
    mu = np.asarray(expected, dtype=float).ravel()
    ok = (mu > max(min_expected, 0.0)) & np.isfinite(y) & np.isfinite(mu)
    if model == "poisson" or ok.sum() < 3:
        return 1.0 if model != "negative_binomial" else 0.0
    y, mu = y[ok], mu[ok]
    if model == "quasi_poisson":
        return float(max(1.0, np.median((y - mu) ** 2 / mu) / CHI2_1_MEDIAN))
    if model != "negative_binomial":
        raise ValueError(f"unknown dispersion model {model!r}; use one of {DISPERSIONS}")

    def med(a: float) -> float:
        return float(np.median((y - mu) ** 2 / (mu + a * mu**2)))

    if med(0.0) <= CHI2_1_MEDIAN:
        return 0.0
    lo, hi = 0.0, 1.0
    while med(hi) > CHI2_1_MEDIAN and hi < 1e6:
        hi *= 4.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if med(mid) > CHI2_1_MEDIAN:
            lo = mid
        else:
            hi = mid
    return float(0.5 * (lo + hi))


def count_variance(expected, dispersion: float, model: str) -> np.ndarray:
    """Variance of a count with mean ``expected`` under ``model`` (see :func:`robust_dispersion`)."""
    mu = np.asarray(expected, dtype=float)
    if model == "quasi_poisson":
        return dispersion * mu
    if model == "negative_binomial":
        return mu + dispersion * mu**2
    if model == "poisson":
        return mu.copy()
    raise ValueError(f"unknown dispersion model {model!r}; use one of {DISPERSIONS}")


def count_tail_p(observed, expected, variance) -> tuple[np.ndarray, np.ndarray]:
    """One-sided p-values ``P(Y >= y)`` (upper) and ``P(Y <= y)`` (lower) of counts.

    ``Y`` is negative binomial with the given mean and variance (Poisson when the variance does
    not exceed the mean): the count distribution both quasi-Poisson and NB models imply. A unit
    with expectation 0 gets p = 1 both ways (it cannot be judged).

    Examples
    --------
    >>> up, low = count_tail_p([0, 5], [2.0, 2.0], [2.0, 2.0])
    >>> round(float(up[1]), 4), round(float(low[0]), 4)
    (0.0527, 0.1353)
    """
    y = np.asarray(observed, dtype=float)
    mu = np.asarray(expected, dtype=float)
    var = np.maximum(np.asarray(variance, dtype=float), mu)
    shape = np.broadcast_shapes(y.shape, mu.shape, var.shape)
    y, mu, var = (np.broadcast_to(a, shape).astype(float) for a in (y, mu, var))
    up = np.ones(shape)
    low = np.ones(shape)
    pos = mu > 0
    pois = pos & (var <= mu * (1 + 1e-9))
    nb = pos & ~pois
    yi = np.round(y)
    up[pois] = stats.poisson.sf(yi[pois] - 1, mu[pois])
    low[pois] = stats.poisson.cdf(yi[pois], mu[pois])
    if nb.any():
        n = mu[nb] ** 2 / (var[nb] - mu[nb])
        p = mu[nb] / var[nb]
        up[nb] = stats.nbinom.sf(yi[nb] - 1, n, p)
        low[nb] = stats.nbinom.cdf(yi[nb], n, p)
    return np.clip(up, 0.0, 1.0), np.clip(low, 0.0, 1.0)


@dataclass
class ExcessResult:
    """Result of :func:`excess_test`, one entry per unit (or unit × period for 2-D input).

    ``expected`` counts, ``ratio`` = observed / expected, ``z`` = (observed − expected)/√Var,
    one-sided ``p_up`` / ``p_low``, their Benjamini–Hochberg ``q_up`` / ``q_low`` (across units,
    per period), ``classes`` (``hot_99 … cold_99 / none``; ``no_base`` where nothing can be
    expected), ``basis`` per unit (``base`` or ``area`` fallback), and the fitted ``dispersion``.
    """

    observed: np.ndarray
    expected: np.ndarray
    ratio: np.ndarray
    z: np.ndarray
    p_up: np.ndarray
    p_low: np.ndarray
    q_up: np.ndarray
    q_low: np.ndarray
    classes: np.ndarray
    basis: np.ndarray
    dispersion: float
    model: str

    @property
    def p(self) -> np.ndarray:
        """One-sided p-value in the direction of the deviation (upper when z >= 0)."""
        return np.where(self.z >= 0, self.p_up, self.p_low)

    @property
    def q(self) -> np.ndarray:
        """BH-adjusted p-value in the direction of the deviation."""
        return np.where(self.z >= 0, self.q_up, self.q_low)


def excess_classes(q_up, q_low, *, levels=(0.01, 0.05, 0.10)) -> np.ndarray:
    """``hot_99/95/90`` from the upper-tail q-values, ``cold_*`` from the lower-tail ones."""
    q_up = np.asarray(q_up, dtype=float)
    q_low = np.asarray(q_low, dtype=float)
    a1, a5, a10 = levels
    conds = [q_up <= a1, q_up <= a5, q_up <= a10, q_low <= a1, q_low <= a5, q_low <= a10]
    choices = ["hot_99", "hot_95", "hot_90", "cold_99", "cold_95", "cold_90"]
    return np.select(conds, choices, default="none").astype(object)


def excess_test(
    counts,
    base,
    *,
    area=None,
    model: str = "quasi_poisson",
    dispersion: float | None = None,
    min_fallback_units: int = 3,
    iterations: int = 5,
) -> ExcessResult:
    """Per-unit test of "more incidents here than its households lead one to expect".

    Parameters
    ----------
    counts
        (n,) counts per unit, or (n, T): one column per period, each tested on its own (the
        expectation uses that period's total) with **one** dispersion fitted over all periods.
    base
        (n,) the exposure that incidents should follow: households (default of the stage),
        residents or area. ``expected_i = total × base_i / Σ base`` where ``total`` is the count
        over the units with a positive base.
    area
        (n,) fallback exposure of the units with no base (0 households: a school's or market's
        dedicated grid, empty land), e.g. their area, or 1 each (peers expect the same); they
        are then tested against it among themselves (``basis = 'area'``) when there are at
        least ``min_fallback_units`` of them; otherwise, or without ``area``, their class is
        ``no_base``.
    model
        ``quasi_poisson`` (Var = φμ, default), ``negative_binomial`` (Var = μ + αμ²: the spread
        of big units grows faster than their mean) or ``poisson`` (no over-dispersion; flags far
        too much on real data, for reference only).
    dispersion
        Fixed dispersion instead of :func:`robust_dispersion` (estimated on the base units).
    iterations
        The rate per unit of base is re-estimated without the units found hot (at FDR 0.05),
        up to this many times, so the clusters do not raise everyone else's expectation
        (``1`` = the plain ``total × share``). In a small city nine clusters of twice the median
        grid add ~40 % to the total and would otherwise hide themselves and fake cold spots.

    Returns
    -------
    ExcessResult

    Examples
    --------
    >>> r = excess_test([20, 20, 20, 20, 20, 20, 20, 90], [100] * 8, model="poisson")
    >>> str(r.classes[-1]), round(float(r.expected[0]), 2)
    ('hot_99', 20.0)
    """
    y = np.asarray(counts, dtype=float)
    one_d = y.ndim == 1
    if one_d:
        y = y[:, None]
    n, t = y.shape
    b = np.asarray(base, dtype=float).ravel()
    if len(b) != n:
        raise ValueError(f"`base` has {len(b)} values but there are {n} units")
    if not (np.isfinite(y).all() and np.isfinite(b).all()) or (y < 0).any() or (b < 0).any():
        raise ValueError("`counts` and `base` must be finite and non-negative")
    has = b > 0
    basis = np.where(has, "base", "no_base").astype(object)
    fb = np.zeros(n, dtype=bool)
    a = None
    if area is not None and (~has).sum() >= min_fallback_units:
        a = np.asarray(area, dtype=float).ravel()
        fb = ~has & (a > 0)
        if fb.sum() >= min_fallback_units:
            basis[fb] = "area"
        else:
            fb[:] = False
    hot = np.zeros((n, t), dtype=bool)  # units left out of the rate
    for it in range(1 if iterations <= 1 else int(iterations) + 1):
        mu = np.zeros_like(y)
        for grp, w in ((has, b), (fb, a)):
            if not grp.any():
                continue
            if it == 0 and iterations > 1:
                # start from the median rate, which the clusters cannot pull up
                rate = np.median(y[grp] / w[grp, None], axis=0)
            else:
                keep = grp[:, None] & ~hot
                rate = (y * keep).sum(axis=0) / np.maximum(
                    (w[:, None] * keep).sum(axis=0), 1e-300
                )
            mu[grp] = w[grp, None] * rate[None, :]
        if dispersion is not None:
            disp = disp_fb = float(dispersion)
        elif it <= 1:
            # the dispersion is fitted on all units first, then once more without the units
            # that first fit finds hot, and then kept (re-fitting it each time would spiral down)
            ok = ~hot.any(axis=1)
            disp = robust_dispersion(y[has & ok], mu[has & ok], model=model)
            disp_fb = (
                robust_dispersion(y[fb & ok], mu[fb & ok], model=model) if fb.any() else disp
            )
        var = count_variance(mu, disp, model)
        if fb.any():
            var[fb] = count_variance(mu[fb], max(disp, disp_fb), model)
        p_up, p_low = count_tail_p(y, mu, var)
        tested = (mu > 0).any(axis=1) & (basis != "no_base")
        p_up_t = np.where(tested[:, None], p_up, np.nan)
        p_low_t = np.where(tested[:, None], p_low, np.nan)
        q_up = fdr_bh(p_up_t, axis=0)
        q_low = fdr_bh(p_low_t, axis=0)
        new_hot = np.nan_to_num(q_up, nan=1.0) <= 0.05
        # never leave out so many that the rate rests on a minority of the units
        for grp in (has, fb):
            if grp.any() and (new_hot[grp].sum(axis=0) > 0.5 * grp.sum()).any():
                new_hot[grp] = False
        if it > 0 and (new_hot == hot).all():
            break
        hot = new_hot
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(var > 0, (y - mu) / np.sqrt(np.where(var > 0, var, 1.0)), 0.0)
        ratio = np.where(mu > 0, y / np.where(mu > 0, mu, 1.0), np.nan)
    classes = excess_classes(np.nan_to_num(q_up, nan=1.0), np.nan_to_num(q_low, nan=1.0))
    classes[~tested] = "no_base"
    q_up = np.nan_to_num(q_up, nan=1.0)
    q_low = np.nan_to_num(q_low, nan=1.0)
    if one_d:
        y, mu, ratio, z, p_up, p_low, q_up, q_low, classes = (
            a[:, 0] for a in (y, mu, ratio, z, p_up, p_low, q_up, q_low, classes)
        )
    return ExcessResult(
        observed=y,
        expected=mu,
        ratio=ratio,
        z=z,
        p_up=p_up,
        p_low=p_low,
        q_up=q_up,
        q_low=q_low,
        classes=classes,
        basis=basis,
        dispersion=float(disp),
        model=model,
    )


# --------------------------------------------------------------------------------------------
# Gi* on an equal-area fishnet, its scale chosen by incremental spatial autocorrelation
# --------------------------------------------------------------------------------------------


def global_moran(values, weights) -> tuple[float, float]:
    """Global Moran's I and its z-score under the normality assumption (binary weights).

    Examples
    --------
    >>> chain = [[0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 1], [0, 0, 1, 0]]
    >>> i, z = global_moran([1.0, 1.0, 5.0, 5.0], chain)  # (4/6) · 8/16
    >>> round(i, 3)
    0.333
    """
    x = np.asarray(values, dtype=float)
    w = _as_sparse(weights)
    n = len(x)
    d = x - x.mean()
    m2 = float((d**2).sum())
    s0 = float(w.sum())
    if n < 3 or m2 <= 0 or s0 <= 0:
        return 0.0, 0.0
    i = float(n / s0 * (d @ (w @ d)) / m2)
    ws = w + w.T
    s1 = 0.5 * float(ws.multiply(ws).sum())
    s2 = float(((np.asarray(w.sum(axis=1)).ravel() + np.asarray(w.sum(axis=0)).ravel()) ** 2).sum())
    ei = -1.0 / (n - 1)
    var = (n * n * s1 - n * s2 + 3 * s0 * s0) / ((n * n - 1) * s0 * s0) - ei * ei
    z = (i - ei) / np.sqrt(var) if var > 0 else 0.0
    return i, float(z)


def fishnet_counts(event_xy, support_xy, size: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts of events in square cells of side ``size`` anchored at the CRS origin.

    Only cells holding an event or a support point (a building) are kept: empty land is not part
    of the question. Returns ``(col_row, centre_xy, counts)`` with ``col = floor(x / size)``.
    """
    ev = np.asarray(event_xy, dtype=float).reshape(-1, 2)
    su = np.asarray(support_xy, dtype=float).reshape(-1, 2)
    ce = np.floor(ev / size).astype(np.int64)
    cs = np.floor(su / size).astype(np.int64)
    cells, inv = np.unique(np.vstack([ce, cs]), axis=0, return_inverse=True)
    inv = np.asarray(inv).ravel()
    counts = np.bincount(inv[: len(ce)], minlength=len(cells)).astype(float)
    centre = (cells + 0.5) * size
    return cells, centre, counts


def incremental_cell_size(
    event_xy, support_xy, sizes=(150, 200, 300, 400, 500, 750, 1000, 1500, 2000), *, k: int = 8
) -> tuple[float, pd.DataFrame]:
    """Cell size of the fishnet chosen from the data, like Esri's Optimized Hot Spot Analysis.

    For each candidate size, the events are counted in square cells (see
    :func:`fishnet_counts`) and the global Moran's I z-score of the counts is computed with
    ``k`` nearest neighbours. The chosen size is the **first peak** of the z-score (the scale at
    which clustering is most pronounced first); without a peak, the size of the largest z.

    Returns
    -------
    (size, table)
        ``table`` has ``size_m``, ``cells``, ``moran_i``, ``z`` per candidate.
    """
    return cell_size_by_first_peak(
        lambda size: fishnet_counts(event_xy, support_xy, size)[1:], sizes, k=k)


def cell_size_by_first_peak(counts_at, sizes, *, k: int = 8) -> tuple[float, pd.DataFrame]:
    """The first-peak rule of :func:`incremental_cell_size` on counts from anywhere:
    ``counts_at(size) -> (centres, counts)`` of the occupied cells at that size (e.g. binned
    inside a database, so the points never reach Python)."""
    rows = []
    for s in sizes:
        centre, counts = counts_at(float(s))
        if len(counts) < max(k + 2, 10):
            rows.append((float(s), len(counts), np.nan, np.nan))
            continue
        i, z = global_moran(counts, knn_weights(centre, k=k))
        rows.append((float(s), len(counts), i, z))
    table = pd.DataFrame(rows, columns=["size_m", "cells", "moran_i", "z"])
    z = table["z"].to_numpy()
    ok = np.flatnonzero(np.isfinite(z))
    if len(ok) == 0:
        return float(sizes[len(sizes) // 2]), table
    zz = z[ok]
    for j in range(1, len(zz) - 1):
        if zz[j] > zz[j - 1] and zz[j] >= zz[j + 1]:
            return float(table["size_m"].iloc[ok[j]]), table
    return float(table["size_m"].iloc[ok[int(np.argmax(zz))]]), table


# --------------------------------------------------------------------------------------------
# space–time trend classes from the excess test
# --------------------------------------------------------------------------------------------


@dataclass
class ExcessTrends:
    """Result of :func:`excess_trends`: ``trend_class`` per unit and the pieces of the rule."""

    table: pd.DataFrame  # trend_class, early/recent q-values, Mann–Kendall, months hot
    monthly: ExcessResult  # the per-month excess test (n, T)


def excess_trends(
    counts,
    base,
    *,
    area=None,
    recent: int = 6,
    alpha: float = 0.05,
    trend_alpha: float = 0.05,
    model: str = "quasi_poisson",
    min_periods: int = MIN_PERIODS,
) -> ExcessTrends:
    """Space–time classes of an (n units, T months) count panel from excess tests.

    Monthly bins are too thin to be significant one by one (a cluster of twice the median grid
    spread over 24 months is hot in a few of its monthly bins at best), so the rule pools months:

    * **early** = months before the last ``recent``, **recent** = the last ``recent`` months;
      each window is tested with :func:`excess_test` (same expectation, over-dispersion fitted
      on both windows together, BH across units): ``early_hot`` when ``q_up <= alpha``; a unit
      hot early is also ``recent_hot`` when its recent window passes BH among the early-hot
      units only (two-stage: it has already been singled out, so the recent months confirm
      rather than discover).
    * **trend**: Mann–Kendall on each unit's monthly log excess ``log((y + ½)/(μ + ½))``,
      significant at ``trend_alpha``.
    * **monthly**: the per-month excess test (one dispersion for all months, BH per month).

    Classes (hot side; ``_cold`` mirrors it with the lower tail and the trend reversed), in order:

    ==================  =================================================================
    intensifying_hot    early hot, recent hot, significant upward trend
    diminishing_hot     early hot, significant downward trend
    persistent_hot      early hot, recent hot, no significant trend
    historical_hot      early hot, recent not hot
    new_hot             recent hot, early neither hot nor cold, no hot month before
    consecutive_hot     recent hot, early not hot, but some earlier month was hot
    oscillating_hot     recent hot, early cold
    sporadic_hot        none of these, but at least two months hot
    none                anything else
    ==================  =================================================================
    """
    y = np.asarray(counts, dtype=float)
    n, t = y.shape
    if t < min_periods:
        raise _too_few_periods(t, min_periods)
    recent = int(min(max(recent, 1), t - 1))
    windows = np.column_stack([y[:, : t - recent].sum(axis=1), y[:, t - recent :].sum(axis=1)])
    win = excess_test(windows, base, area=area, model=model)
    mon = excess_test(y, base, area=area, model=model)
    lr = np.log((y + 0.5) / (mon.expected + 0.5))
    mk = mann_kendall(lr)
    sig = mk["p"].to_numpy() <= trend_alpha
    up = sig & (mk["s"].to_numpy() > 0)
    down = sig & (mk["s"].to_numpy() < 0)
    out = np.full(n, "none", dtype=object)
    decided = np.zeros(n, dtype=bool)
    m_hot = mon.q_up <= alpha
    m_cold = mon.q_low <= alpha
    for side, q_this, q_other, m_this, rising, falling in (
        ("hot", win.q_up, win.q_low, m_hot, up, down),
        ("cold", win.q_low, win.q_up, m_cold, down, up),
    ):
        early, rec = q_this[:, 0] <= alpha, q_this[:, 1] <= alpha
        early_other = q_other[:, 0] <= alpha
        # units already hot early need less evidence to stay hot: their recent window is
        # tested among themselves only (BH over the early-hot units, a two-stage procedure)
        p_this = win.p_up if side == "hot" else win.p_low
        if early.any():
            q_cond = fdr_bh(np.where(early, p_this[:, 1], np.nan))
            rec = rec | (early & (np.nan_to_num(q_cond, nan=1.0) <= alpha))
        before = m_this[:, : t - recent].any(axis=1)
        conds = [
            early & rec & rising,
            early & falling,
            early & rec,
            early & ~rec,
            rec & ~early & ~early_other & ~before,
            rec & ~early & ~early_other & before,
            rec & early_other,
            m_this.sum(axis=1) >= 2,
        ]
        names = ["intensifying", "diminishing", "persistent", "historical", "new",
                 "consecutive", "oscillating", "sporadic"]
        lab = np.select(conds, [f"{nm}_{side}" for nm in names], default="")
        take = (lab != "") & ~decided
        out[take] = lab[take]
        decided |= take
    out[win.classes[:, 0] == "no_base"] = "none"
    table = pd.DataFrame(
        {
            "trend_class": out,
            "q_early": win.q_up[:, 0],
            "q_recent": win.q_up[:, 1],
            "mk_z": mk["z"].to_numpy(),
            "mk_p": mk["p"].to_numpy(),
            "months_hot": m_hot.sum(axis=1),
        }
    )
    return ExcessTrends(table=table, monthly=mon)
