"""Per-unit excess test (geo.hotspots.excess_test): hand-checkable panels and planted clusters
on generated cities of 2, 10 and 45 streets (tests/geo/hotspots_synth.py)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from geo import hotspots as hs
from tests.geo.hotspots_synth import far_share, make_city

# --------------------------------------------------------------------------------------------
# hand-checkable panels
# --------------------------------------------------------------------------------------------


def test_tail_p_values_by_hand():
    up, low = hs.count_tail_p([5, 0], [2.0, 2.0], [2.0, 2.0])
    # Poisson(2): P(Y >= 5) = 1 − e^-2 (1 + 2 + 2 + 4/3 + 2/3)
    assert up[0] == pytest.approx(1 - np.exp(-2) * (1 + 2 + 2 + 4 / 3 + 2 / 3))
    assert low[1] == pytest.approx(np.exp(-2))
    # variance 3 × mean: negative binomial with that mean and variance
    up, _ = hs.count_tail_p([10], [4.0], [12.0])
    n, p = 4.0**2 / 8.0, 4.0 / 12.0
    assert stats.nbinom.mean(n, p) == pytest.approx(4.0)
    assert up[0] == pytest.approx(stats.nbinom.sf(9, n, p))
    # expectation 0: cannot be judged
    up, low = hs.count_tail_p([3], [0.0], [0.0])
    assert up[0] == 1.0 and low[0] == 1.0


def test_robust_dispersion_ignores_a_few_clusters():
    rng = np.random.default_rng(0)
    mu = np.full(400, 50.0)
    y = rng.poisson(mu).astype(float)
    assert hs.robust_dispersion(y, mu) == pytest.approx(1.0, abs=0.25)
    y_nb = rng.poisson(rng.gamma(1 / 0.1, 0.1 * mu)).astype(float)  # Var = μ + 0.1 μ² = 6 μ
    y_nb[:20] += 300  # 5 % clusters
    assert hs.robust_dispersion(y_nb, mu, model="quasi_poisson") == pytest.approx(6.0, rel=0.3)
    assert hs.robust_dispersion(y_nb, mu, model="negative_binomial") == pytest.approx(0.1, rel=0.3)
    # the classical Pearson estimate is blown up by the same 20 clusters
    pearson = float(((y_nb - mu) ** 2 / mu).sum() / (len(mu) - 1))
    assert pearson > 4 * hs.robust_dispersion(y_nb, mu)


def test_expected_follows_households_not_area():
    # four units: same rate per household, very different areas; one has twice its share
    counts = [100, 200, 50, 100]
    hh = [100, 200, 50, 50]
    r = hs.excess_test(counts, hh, area=[0.01, 50.0, 0.2, 3.0], model="poisson", iterations=1)
    assert r.expected.tolist() == pytest.approx([450 * 100 / 400, 450 * 200 / 400, 450 * 50 / 400,
                                                 450 * 50 / 400])
    r = hs.excess_test(counts, hh, model="poisson")  # rate re-estimated without the hot unit
    assert r.expected[:3].tolist() == pytest.approx([100.0, 200.0, 50.0])
    assert r.classes.tolist() == ["none", "none", "none", "hot_99"]


def test_classes_use_one_sided_bh():
    y = np.array([30.0] * 18 + [60.0, 15.0])
    r = hs.excess_test(y, np.ones(20), model="poisson", iterations=1)
    assert r.classes[18] == "hot_99" and r.classes[19].startswith("cold")
    assert r.q_up[18] == pytest.approx(min(1.0, r.p_up[18] * 20 / 1))  # smallest of 20 p-values
    assert (r.classes[:18] == "none").all()


def test_units_without_households_use_area_or_no_base():
    counts = [50, 50, 50, 50, 5, 5, 40]
    hh = [100, 100, 100, 100, 0, 0, 0]
    area = [0.1, 0.1, 0.1, 0.1, 1.0, 1.0, 1.0]
    r = hs.excess_test(counts, hh, area=area, model="poisson")
    assert r.basis.tolist() == ["base"] * 4 + ["area"] * 3
    assert r.classes[6] == "hot_99"  # 40 incidents where its area expects (50/3) among its kind
    r = hs.excess_test(counts, hh, model="poisson")  # no area given
    assert r.classes[4:].tolist() == ["no_base"] * 3
    assert (r.classes[:4] == "none").all()


def test_monthly_panel_is_tested_per_column():
    y = np.full((10, 3), 20.0)
    y[0, 2] = 60
    r = hs.excess_test(y, np.ones(10), model="poisson")
    assert r.classes.shape == (10, 3)
    assert r.classes[0, 2] == "hot_99"
    assert (r.classes[:, :2] == "none").all()


# --------------------------------------------------------------------------------------------
# planted clusters on generated cities
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("streets", "clusters"), [(2, 9), (10, 18), (45, 24)])
def test_planted_clusters_found_and_few_far_hits(streets, clusters):
    found = planted = n_hot = n_far = 0
    for seed in range(3):
        city = make_city(streets, clusters, seed)
        areas = city.area_km2
        assert areas.max() / areas.min() > 40  # grids of very unequal size
        r = hs.excess_test(city.total, city.households, area=areas)
        hot = r.q_up <= 0.05
        found += int(hot[city.centres].sum())
        planted += len(city.centres)
        n_hot += int(hot.sum())
        n_far += round(far_share(hot, city) * hot.sum())
    assert planted >= 3 * clusters - 3
    assert found / planted >= 0.95, (found, planted)
    assert n_far <= 0.05 * n_hot, (n_far, n_hot)  # hot grids > 1.5 km from every planted spot


@pytest.mark.parametrize("model", ["quasi_poisson", "negative_binomial"])
def test_no_planted_cluster_gives_almost_no_hot_grid(model):
    hot_total = units = 0
    for seed in range(4):
        city = make_city(10, 0, 100 + seed, alpha=0.1)  # heavier over-dispersion, no cluster
        r = hs.excess_test(city.total, city.households, area=city.area_km2, model=model)
        hot_total += int((r.q_up <= 0.05).sum())
        units += len(city.total)
    assert hot_total <= 0.01 * units


def test_plain_poisson_is_fooled_by_over_dispersion():
    city = make_city(10, 0, 7, alpha=0.1)
    pois = hs.excess_test(city.total, city.households, model="poisson")
    quasi = hs.excess_test(city.total, city.households)
    assert (pois.q_up <= 0.05).sum() > 10 * max((quasi.q_up <= 0.05).sum(), 1)


# --------------------------------------------------------------------------------------------
# space–time classes
# --------------------------------------------------------------------------------------------


def test_trend_rule_on_a_hand_made_panel():
    base = np.ones(30)
    y = np.full((30, 12), 20.0)
    y[0] = 60  # hot every month
    y[1, 9:] = 80  # only the last three months
    y[2] = 20 + 8 * np.arange(12)  # rising
    y[3] = 90 - 6 * np.arange(12)  # falling
    y[4, :9] = 70  # hot early, back to normal
    res = hs.excess_trends(y, base, model="poisson", recent=3)
    cls = res.table["trend_class"].tolist()
    assert cls[:5] == ["persistent_hot", "new_hot", "intensifying_hot", "diminishing_hot",
                       "historical_hot"]
    assert set(cls[5:]) == {"none"}


def test_trend_needs_ten_months():
    with pytest.raises(ValueError, match="10"):
        hs.excess_trends(np.ones((5, 6)), np.ones(5))


def test_planted_trends_are_recovered():
    """Cities of 2, 10 and 45 streets, 4 seeds, 8 planted clusters each (2 of every kind)."""
    kinds = ("persistent", "intensifying", "new", "diminishing")
    right: dict[str, list[bool]] = {k: [] for k in kinds}
    for streets in (2, 10, 45):
        for seed in range(4):
            city = make_city(streets, 8, 50 + seed, kinds=kinds)
            res = hs.excess_trends(city.counts, city.households, area=city.area_km2)
            got = res.table["trend_class"].to_numpy()
            for c, kind in zip(city.centres, city.kinds):
                right[kind].append(got[c] == f"{kind}_hot")
    rates = {k: float(np.mean(v)) for k, v in right.items()}
    overall = float(np.mean(np.concatenate([right[k] for k in kinds])))
    assert overall >= 0.9 and min(rates.values()) >= 0.85, (overall, rates)
