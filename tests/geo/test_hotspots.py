"""Tests of geo.hotspots: weights, Gi* (against esda), FDR, classes, EHSA, KDE, cells, risk."""

from __future__ import annotations

import time

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from scipy import stats

from geo import hotspots as hs

libpysal = pytest.importorskip("libpysal")
esda = pytest.importorskip("esda")


def lattice_xy(nx: int, ny: int, size: float = 500.0) -> np.ndarray:
    """Centres of an nx × ny lattice of square cells (metres)."""
    xx, yy = np.meshgrid((np.arange(nx) + 0.5) * size, (np.arange(ny) + 0.5) * size)
    return np.column_stack([xx.ravel(), yy.ravel()])


def counts_on_lattice(px, py, nx, ny, size=500.0) -> np.ndarray:
    ix = np.clip((np.asarray(px) // size).astype(int), 0, nx - 1)
    iy = np.clip((np.asarray(py) // size).astype(int), 0, ny - 1)
    return np.bincount(iy * nx + ix, minlength=nx * ny).astype(float)


# --------------------------------------------------------------------------------------------
# Gi* equals esda
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_gi_star_equals_esda_knn(seed):
    rng = np.random.default_rng(seed)
    xy = rng.random((400, 2)) * 10_000
    y = rng.poisson(2.0, 400).astype(float)  # counts with many zeros and ties
    w = libpysal.weights.KNN(xy, k=8)
    ref = esda.G_Local(y, w, star=True, transform="B", permutations=0)
    z, p = hs.gi_star(y, w.sparse)
    np.testing.assert_allclose(z, ref.Zs, atol=1e-6, rtol=0)
    # esda's p_norm is one-sided; ours is two-sided
    np.testing.assert_allclose(p, 2 * ref.p_norm, atol=1e-6, rtol=0)
    # our own knn weights are libpysal's
    assert abs(hs.knn_weights(xy, k=8) - w.sparse).sum() == 0
    # a libpysal W object is accepted directly, too
    np.testing.assert_allclose(hs.gi_star(y, w).z, ref.Zs, atol=1e-6, rtol=0)


def test_gi_star_equals_esda_distance_band():
    rng = np.random.default_rng(3)
    xy = lattice_xy(15, 12) + rng.normal(0, 30, (180, 2))
    y = rng.gamma(2.0, 3.0, 180)
    band = hs.auto_band(xy, k=8) * 1.001  # off an exact pair distance: no rounding ambiguity
    w = libpysal.weights.DistanceBand(xy, threshold=band, binary=True, silence_warnings=True)
    ours = hs.distance_band_weights(xy, band)
    assert abs(ours - w.sparse).sum() == 0
    ref = esda.G_Local(y, w, star=True, transform="B", permutations=0)
    res = hs.gi_star(y, ours)
    np.testing.assert_allclose(res.z, ref.Zs, atol=1e-6, rtol=0)
    np.testing.assert_allclose(res.p, 2 * ref.p_norm, atol=1e-6, rtol=0)


def test_gi_plain_equals_esda_star_false():
    rng = np.random.default_rng(4)
    xy = rng.random((150, 2)) * 5000
    y = rng.poisson(4.0, 150).astype(float)
    w = libpysal.weights.KNN(xy, k=6)
    ref = esda.G_Local(y, w, star=False, transform="B", permutations=0)
    np.testing.assert_allclose(hs.gi_star(y, w.sparse, star=False).z, ref.Zs, atol=1e-6, rtol=0)


def test_gi_star_columns_are_independent_analyses():
    rng = np.random.default_rng(5)
    xy = rng.random((120, 2)) * 4000
    w = hs.knn_weights(xy, k=8)
    ys = rng.poisson(3.0, (120, 7)).astype(float)
    ys[:, 3] = 2.0  # a constant column: no variance -> z 0, p 1
    z, p = hs.gi_star(ys, w)
    for c in (0, 4, 6):
        zc, pc = hs.gi_star(ys[:, c], w)
        np.testing.assert_allclose(z[:, c], zc, atol=1e-12)
        np.testing.assert_allclose(p[:, c], pc, atol=1e-12)
    assert np.all(z[:, 3] == 0) and np.all(p[:, 3] == 1)


def test_gi_star_rejects_bad_input():
    w = hs.knn_weights(lattice_xy(3, 3), k=2)
    with pytest.raises(ValueError, match="weights are"):
        hs.gi_star(np.ones(5), w)
    with pytest.raises(ValueError, match="NaN"):
        hs.gi_star(np.r_[np.ones(8), np.nan], w)


def test_auto_band_has_no_islands_and_about_k_neighbours():
    rng = np.random.default_rng(6)
    xy = np.vstack([rng.random((200, 2)) * 3000, [[20_000, 20_000]]])  # one far outlier
    w = hs.distance_band_weights(xy, k=8)
    card = np.asarray(w.sum(axis=1)).ravel()
    assert card.min() >= 1
    w2 = hs.distance_band_weights(xy[:-1], k=8)
    assert abs(np.median(np.asarray(w2.sum(axis=1)).ravel()) - 8) <= 1


# --------------------------------------------------------------------------------------------
# FDR and classes
# --------------------------------------------------------------------------------------------


def test_fdr_bh_hand_computed_example():
    # m = 10 sorted p-values; q_(i) = min_{j>=i} m p_(j) / j, worked by hand:
    # m p / i = .01 .04 .13 .1025 .084 .1 .10571 .25625 .23556 .216
    p = np.array([0.001, 0.008, 0.039, 0.041, 0.042, 0.060, 0.074, 0.205, 0.212, 0.216])
    expected = [0.01, 0.04, 0.084, 0.084, 0.084, 0.1, 0.74 / 7, 0.216, 0.216, 0.216]
    perm = np.random.default_rng(0).permutation(10)
    q = hs.fdr_bh(p[perm])
    np.testing.assert_allclose(q, np.asarray(expected)[perm], atol=1e-12)
    assert (q <= 0.05).sum() == 2  # only the two smallest survive at FDR 5 %
    np.testing.assert_allclose(q, stats.false_discovery_control(p[perm]), atol=1e-12)


def test_fdr_bh_per_column_and_nan():
    p = np.array([[0.01, 0.5], [0.02, np.nan], [0.9, 0.01]])
    q = hs.fdr_bh(p, axis=0)
    np.testing.assert_allclose(q[:, 0], hs.fdr_bh(p[:, 0]))
    assert np.isnan(q[1, 1])
    np.testing.assert_allclose(q[[0, 2], 1], [0.5, 0.02])


def test_hotspot_classes_thresholds():
    z = np.array([3.0, 2.0, 1.7, 0.1, -1.7, -2.0, -3.0, 2.5])
    p = np.array([0.01, 0.05, 0.10, 0.9, 0.10, 0.05, 0.001, 0.11])
    assert hs.hotspot_classes(z, p).tolist() == [
        "hot_99",
        "hot_95",
        "hot_90",
        "none",
        "cold_90",
        "cold_95",
        "cold_99",
        "none",
    ]
    assert set(hs.HOTSPOT_CLASSES) == {
        "hot_99",
        "hot_95",
        "hot_90",
        "cold_90",
        "cold_95",
        "cold_99",
        "none",
    }


# --------------------------------------------------------------------------------------------
# planted hot spots found, uniform data gives (almost) none
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_planted_hotspots_are_detected(seed):
    rng = np.random.default_rng(seed)
    nx = ny = 30
    size = 500.0
    n_bg = 15_000  # ~17 incidents per cell
    px, py = rng.random(n_bg) * nx * size, rng.random(n_bg) * ny * size
    planted = np.zeros(nx * ny, bool)
    xs, ys = [px], [py]
    for cx, cy in [(5, 6), (20, 22), (24, 8)]:  # 3×3-cell blocks with 3× the background rate
        for i in range(cx - 1, cx + 2):
            for j in range(cy - 1, cy + 2):
                planted[j * nx + i] = True
                m = rng.poisson(35)
                xs.append((i + rng.random(m)) * size)
                ys.append((j + rng.random(m)) * size)
    y = counts_on_lattice(np.concatenate(xs), np.concatenate(ys), nx, ny, size)
    w = hs.knn_weights(lattice_xy(nx, ny, size), k=8)
    z, p = hs.gi_star(y, w)
    cls = hs.hotspot_classes(z, hs.fdr_bh(p))
    hot = np.isin(cls, ["hot_99", "hot_95"])  # significant at FDR 0.05
    recall = hot[planted].mean()
    assert recall >= 0.95
    # false hot cells: at most 5 % of the cells outside the planted blocks (in practice only
    # the blocks' immediate ring, which shares their neighbourhood, ~2 %), none further away
    assert hot[~planted].mean() <= 0.05
    ring = (w @ planted.astype(float)) > 0
    assert (hot & ~planted & ~ring).sum() <= 2


@pytest.mark.parametrize("seed", range(5))
def test_uniform_random_incidents_give_few_false_hot_cells(seed):
    rng = np.random.default_rng(100 + seed)
    nx = ny = 30
    n = 20_000
    y = counts_on_lattice(rng.random(n) * nx * 500, rng.random(n) * ny * 500, nx, ny)
    w = hs.knn_weights(lattice_xy(nx, ny), k=8)
    z, p = hs.gi_star(y, w)
    hot = np.isin(hs.hotspot_classes(z, hs.fdr_bh(p)), ["hot_99", "hot_95"])
    assert hot.mean() <= 0.05
    # without FDR correction the 90 % class flags noticeably more (why FDR is on by default)
    assert (hs.hotspot_classes(z, p) != "none").sum() >= (
        hs.hotspot_classes(z, hs.fdr_bh(p)) != "none"
    ).sum()


# --------------------------------------------------------------------------------------------
# Mann–Kendall and emerging hot spots
# --------------------------------------------------------------------------------------------


def test_mann_kendall_matches_scipy_kendalltau_without_ties():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(6, 15)) + np.linspace(0, 1.5, 15)
    mk = hs.mann_kendall(x, continuity=False)
    for i in range(6):
        ref = stats.kendalltau(np.arange(15), x[i], method="asymptotic")
        assert mk["tau"][i] == pytest.approx(ref.statistic, abs=1e-12)
        assert mk["p"][i] == pytest.approx(ref.pvalue, abs=1e-12)


def test_mann_kendall_ties_brute_force():
    x = np.array([[1, 2, 2, 3, 3, 3, 5, 4, 4, 6, 7, 7]], dtype=float)
    t = x.shape[1]
    s = sum(np.sign(x[0, j] - x[0, i]) for i in range(t) for j in range(i + 1, t))
    groups = np.unique(x[0], return_counts=True)[1]
    var = (t * (t - 1) * (2 * t + 5) - sum(g * (g - 1) * (2 * g + 5) for g in groups)) / 18
    mk = hs.mann_kendall(x)
    assert mk["s"][0] == s
    assert mk["var_s"][0] == pytest.approx(var)
    assert mk["z"][0] == pytest.approx((s - 1) / np.sqrt(var))


T = 12
SIG = 3.0  # a clearly significant z


def series(*pairs, base=0.0):
    """A z-series of length T: `base` everywhere, then (index, value) pairs."""
    z = np.full(T, base)
    for i, v in pairs:
        z[i] = v
    return z


EHSA_CASES = {
    "new_hot": series((T - 1, SIG)),
    "new_cold": series((T - 1, -SIG)),
    "consecutive_hot": series((T - 3, SIG), (T - 2, SIG), (T - 1, SIG)),
    "consecutive_cold": series((T - 2, -SIG), (T - 1, -SIG)),
    "intensifying_hot": np.linspace(2.5, 6.0, T),
    "intensifying_cold": -np.linspace(2.5, 6.0, T),
    "diminishing_hot": np.linspace(6.0, 2.5, T),
    "diminishing_cold": -np.linspace(6.0, 2.5, T),
    "persistent_hot": np.array([3.1, 2.9, 3.3, 2.8, 3.0, 3.2, 2.7, 3.1, 3.0, 2.9, 3.2, 3.0]),
    "persistent_cold": -np.array([3.1, 2.9, 3.3, 2.8, 3.0, 3.2, 2.7, 3.1, 3.0, 2.9, 3.2, 3.0]),
    "sporadic_hot": series((2, SIG), (6, SIG), (T - 1, SIG)),
    "sporadic_cold": series((4, -SIG), (T - 1, -SIG)),
    "oscillating_hot": series((3, -SIG), (7, SIG), (T - 1, SIG)),
    "oscillating_cold": series((1, SIG), (T - 2, -SIG), (T - 1, -SIG)),
    "historical_hot": np.r_[np.full(T - 1, SIG), 0.5],
    "historical_cold": np.r_[np.full(T - 1, -SIG), -0.5],
    "none": series((4, SIG), (5, SIG)),  # hot in the past, not at the end, < 90 %
}


def test_ehsa_categories_on_hand_made_series():
    names = list(EHSA_CASES)
    z = np.vstack([EHSA_CASES[n] for n in names])
    got = hs.classify_emerging(z, np.abs(z) >= 1.96)
    assert dict(zip(names, got)) == {n: n for n in names}
    assert set(got) == set(hs.TREND_CLASSES)  # all 17 categories covered


def test_ehsa_consecutive_needs_a_clean_history():
    # a cold bin before the final hot run makes it oscillating, not consecutive / new
    z = series((0, -SIG), (T - 2, SIG), (T - 1, SIG))
    assert hs.classify_emerging(z[None], np.abs(z[None]) >= 1.96).tolist() == ["oscillating_hot"]
    # a final run of one is "new" only without earlier significant bins
    z = series((2, SIG), (T - 1, SIG))
    assert hs.classify_emerging(z[None], np.abs(z[None]) >= 1.96).tolist() == ["sporadic_hot"]


def test_ehsa_refuses_fewer_than_ten_periods():
    z = np.zeros((3, 9))
    with pytest.raises(ValueError, match="至少需要 10 个时段.*at least 10 time periods"):
        hs.classify_emerging(z, z > 1)
    w = hs.knn_weights(lattice_xy(3, 1), k=2)
    with pytest.raises(ValueError, match="got 9"):
        hs.emerging_hotspots(np.ones((3, 9)), w)


def test_emerging_hotspots_finds_a_growing_cluster():
    rng = np.random.default_rng(8)
    nx = ny = 20
    t = 24
    y = rng.poisson(5.0, (nx * ny, t)).astype(float)
    block = [(j * nx + i) for i in range(8, 11) for j in range(8, 11)]
    y[block, 14:] += rng.poisson(20.0, (len(block), t - 14))  # appears in month 15
    w = hs.knn_weights(lattice_xy(nx, ny), k=8)
    res = hs.emerging_hotspots(y, w)
    assert res.z.shape == (nx * ny, t) and res.p_fdr.shape == (nx * ny, t)
    cls = res.trend["trend_class"].to_numpy()
    assert (cls[block] == "consecutive_hot").mean() >= 0.8
    others = np.setdiff1d(np.arange(nx * ny), block)
    assert np.isin(cls[others], ["persistent_hot", "intensifying_hot"]).sum() == 0


# --------------------------------------------------------------------------------------------
# kernel density
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kernel", ["quartic", "epanechnikov"])
def test_kde_integrates_to_n(kernel):
    rng = np.random.default_rng(9)
    xy = np.vstack([rng.normal(0, 800, (3000, 2)), rng.random((2000, 2)) * 5000])
    kd = hs.kernel_density(xy, bandwidth=400.0, cell=50.0, kernel=kernel)
    assert kd.total() == pytest.approx(len(xy), rel=1e-9)
    wts = rng.integers(1, 6, len(xy))
    assert hs.kernel_density(xy, bandwidth=400, cell=50, weights=wts).total() == pytest.approx(
        wts.sum()
    )


def test_kde_peak_matches_the_continuous_quartic_kernel():
    h = 1000.0
    kd = hs.kernel_density([[0.0, 0.0]], bandwidth=h, cell=20.0, bounds=(-1990, -1990, 2010, 2010))
    peak = kd.density.max()
    analytic = 3.0 / (np.pi * h**2) * 1e6  # per km²
    assert peak == pytest.approx(analytic, rel=0.01)
    # finite support: nothing beyond the bandwidth (plus the binning's half cell)
    cx, cy = kd.centres()
    assert kd.density[np.hypot(cx - 10, cy - 10) > h + 30].max() == 0


def test_kde_layers_and_zones():
    rng = np.random.default_rng(10)
    xy = rng.random((5000, 2)) * 4000
    month = rng.integers(0, 6, 5000)
    stack = hs.kernel_density(
        xy, bandwidth=300, cell=50, layers=month, n_layers=6, bounds=(-500, -500, 4500, 4500)
    )
    single = hs.kernel_density(xy, bandwidth=300, cell=50, bounds=(-500, -500, 4500, 4500))
    np.testing.assert_allclose(stack.density.sum(axis=0), single.density, atol=1e-6)
    zones = gpd.GeoSeries(
        [
            shapely.box(-500, -500, 2000, 4500),
            shapely.box(2000, -500, 4500, 4500),
            shapely.box(30, 30, 45, 45),
        ]
    )
    per_zone = hs.raster_to_zones(stack, zones)
    assert per_zone.shape == (3, 6)
    assert per_zone[:2].sum() == pytest.approx(5000, rel=1e-6)
    assert per_zone[2].sum() > 0  # smaller than a cell: centroid × area


def test_kde_is_fast_for_many_points():
    rng = np.random.default_rng(11)
    xy = rng.random((500_000, 2)) * 30_000
    t0 = time.perf_counter()
    kd = hs.kernel_density(xy, bandwidth=500, cell=100)
    assert time.perf_counter() - t0 < 5
    assert kd.total() == pytest.approx(500_000, rel=1e-9)


# --------------------------------------------------------------------------------------------
# cells and risk
# --------------------------------------------------------------------------------------------


def test_cell_grid_square_and_hex():
    area = gpd.GeoDataFrame(geometry=[shapely.box(1000, 2000, 3400, 3100)], crs="EPSG:4546")
    sq = hs.cell_grid(area, 500)
    assert len(sq) == 5 * 3 and sq["grid_id"].iloc[0].startswith("C_")
    assert "C_2_4" in set(sq["grid_id"])  # x 1000-1500, y 2000-2500
    assert sq.union_all().covers(area.union_all())
    hx = hs.cell_grid(area, 500, shape="hex")
    assert hx["grid_id"].str.startswith("H_").all()
    assert hx.area.iloc[0] == pytest.approx(np.sqrt(3) / 2 * 500**2)
    assert hx.union_all().buffer(1e-6).covers(area.union_all())
    assert hx.overlay(hx, how="intersection", keep_geom_type=True).area.sum() == pytest.approx(
        hx.area.sum()
    )
    with pytest.raises(ValueError, match="projected"):
        hs.cell_grid(area.to_crs(4326), 500)


def test_risk_index_weights_and_components():
    comp = pd.DataFrame(
        {
            "incidents": [0.0, 10.0, 5.0],
            "elderly_alone": [2.0, 0.0, 4.0],
            "special_units": [1.0, 1.0, 1.0],
        },
        index=["a", "b", "c"],
    )
    r = hs.risk_index(
        comp, {"incidents": 0.5, "elderly_alone": 0.5, "special_units": 0.2, "disabled": 0.1}
    )
    # weights rescaled over present columns (0.5, 0.5, 0.2 → /1.2); constant column adds 0
    assert r.loc["b", "risk_score"] == pytest.approx(100 * 0.5 / 1.2)
    assert r.loc["c", "risk_score"] == pytest.approx(100 * (0.5 * 0.5 + 0.5) / 1.2)
    contrib = r[[c for c in r if c.endswith("_contribution")]].sum(axis=1)
    np.testing.assert_allclose(contrib, r["risk_score"])
    rk = hs.risk_index(comp, {"incidents": 1}, method="rank")
    assert rk["incidents_norm"].tolist() == [0.0, 1.0, 0.5]
