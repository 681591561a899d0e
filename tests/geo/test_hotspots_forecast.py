"""Tests of geo.forecast: hit rate / PAI on toys, baselines, no look-ahead, backtest."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geo import forecast as fc
from geo import hotspots as hs


def test_pai_toy_by_hand():
    area = np.array([1.0, 1.0, 2.0, 4.0, 2.0])  # total 10
    actual = np.array([6, 0, 2, 2, 0])  # 10 incidents
    score = np.array([0.9, 0.1, 0.5, 0.3, 0.2])
    # 10 % of area = 1: grid 0 alone (area 1, 6 incidents)
    assert fc.hit_rate_pai(score, actual, area, 0.10) == pytest.approx((0.6, 6.0))
    # 20 % = 2: grid 0 (1) + half of grid 2 (area 2, 2 incidents -> 1)
    assert fc.hit_rate_pai(score, actual, area, 0.20) == pytest.approx((0.7, 3.5))
    # 100 %: every incident, PAI 1
    assert fc.hit_rate_pai(score, actual, area, 1.0) == pytest.approx((1.0, 1.0))


def test_pai_ties_are_neutral():
    actual = np.array([4, 0, 0, 0])
    area = np.ones(4)
    flat = np.zeros(4)  # no information: expected hit rate = area share
    hr, pai = fc.hit_rate_pai(flat, actual, area, 0.25)
    assert hr == pytest.approx(0.25) and pai == pytest.approx(1.0)
    assert np.isnan(fc.hit_rate_pai(flat, np.zeros(4), area, 0.1)[0])


def test_baselines_by_hand():
    y = np.array([[1, 2, 3, 4, 5], [0, 0, 6, 0, 0]], dtype=float)
    kde = y * 0.5
    b = fc.baseline_scores(y, 4, kde=kde, kde_window=2)
    np.testing.assert_allclose(b["last_period"], [4, 0])
    np.testing.assert_allclose(b["moving_average_3"], [3, 2])
    np.testing.assert_allclose(b["historical_mean"], [2.5, 1.5])
    np.testing.assert_allclose(b["kde"], [1.75, 1.5])


def _panel(seed=0, n_side=12, t=30):
    """Counts with stable hot cells, a seasonal cycle and a cell that switches on mid-way."""
    rng = np.random.default_rng(seed)
    n = n_side * n_side
    base = rng.gamma(1.0, 2.0, n)
    season = 1 + 0.4 * np.sin(2 * np.pi * np.arange(t) / 12)
    lam = base[:, None] * season[None, :]
    lam[7, 15:] += 25
    xy = np.column_stack(np.unravel_index(np.arange(n), (n_side, n_side))) * 500.0
    return rng.poisson(lam).astype(float), hs.knn_weights(xy, k=8)


def test_features_do_not_look_ahead():
    y, w = _panel()
    p1 = fc._Panel(y, w, None)
    y2 = y.copy()
    y2[:, 20:] = 999  # change the future
    p2 = fc._Panel(y2, w, None)
    x1, names = fc.feature_matrix(p1, 20, first_month=1, static=None, log_area=np.zeros(len(y)))
    x2, _ = fc.feature_matrix(p2, 20, first_month=1, static=None, log_area=np.zeros(len(y)))
    np.testing.assert_array_equal(np.nan_to_num(x1, nan=-1), np.nan_to_num(x2, nan=-1))
    assert "nb_lag1" in names and "month" in names


def test_backtest_runs_and_scores_consistently():
    y, w = _panel()
    area = np.ones(len(y))
    bt = fc.backtest(
        y,
        area=area,
        neighbours=w,
        kde=y * 0.9,
        n_origins=3,
        max_iter=40,
        periods=[f"p{i}" for i in range(y.shape[1])],
    )
    assert set(bt["method"]) == set(fc.METHODS)
    assert len(bt) == 3 * len(fc.METHODS) * 3
    assert bt["target_period"].unique().tolist() == ["p27", "p28", "p29"]
    # one row recomputed by hand
    row = bt[
        (bt.method == "last_period") & (bt.area_share == 0.1) & (bt.target_period == "p28")
    ].iloc[0]
    hr, pai = fc.hit_rate_pai(y[:, 27], y[:, 28], area, 0.1)
    assert row.hit_rate == pytest.approx(hr) and row.pai == pytest.approx(pai)
    assert row.events == y[:, 28].sum()
    summ = fc.summarise_backtest(bt)
    assert (summ["target_period"] == "mean").all() and len(summ) == len(fc.METHODS) * 3
    # the panel has strong, stable concentration: every method beats random (PAI > 1)
    assert (summ.loc[summ.area_share == 0.1, "pai"] > 1.5).all()


def test_forecast_next_has_every_method_and_sensible_scale():
    y, w = _panel(seed=1)
    out = fc.forecast_next(y, area=np.ones(len(y)), neighbours=w, max_iter=60)
    assert list(out.columns) == ["model", "last_period", "moving_average_3", "historical_mean"]
    assert (out["model"] >= 0).all()
    assert out["model"].sum() == pytest.approx(y[:, -12:].mean(axis=1).sum(), rel=0.35)
    # the cell that switched on: ranked near the top and above its (diluted) long-run mean
    assert 7 in out["model"].nlargest(3).index
    assert out["model"][7] > out["historical_mean"][7]


def test_fit_predict_needs_history():
    y = np.ones((4, 4))
    with pytest.raises(ValueError, match="past periods"):
        fc.fit_predict(y, 4, area=np.ones(4))


def test_density_ranking_when_the_budget_is_area():
    # a huge rural grid with the most incidents and tiny urban grids with many per km²
    score = [100.0, 10.0, 10.0, 1.0]
    actual = [100.0, 10.0, 10.0, 1.0]
    area = [50.0, 0.5, 0.5, 49.0]  # total 100 km²
    hr_count, pai_count = fc.hit_rate_pai(score, actual, area, 0.01, rank_by="count")
    hr_dens, pai_dens = fc.hit_rate_pai(score, actual, area, 0.01, rank_by="density")
    # by count the 1 km² budget is 1/50 of the big grid: 2 incidents of 121
    assert hr_count == pytest.approx(2 / 121)
    # by density it is both small grids: 20 of 121
    assert hr_dens == pytest.approx(20 / 121) and pai_dens == pytest.approx(2000 / 121)
    assert fc.pei(score, actual, area, 0.01) == pytest.approx(1.0)
    assert fc.pei(score, actual, area, 0.01, rank_by="count") == pytest.approx(0.1)


def test_recommendation_only_above_random():
    rows = [("model", 0.1, 0.3, 3.0), ("last_period", 0.1, 0.2, 2.0), ("kde", 0.1, 0.25, 2.5)]
    summ = pd.DataFrame(rows, columns=["method", "area_share", "hit_rate", "pai"]).assign(pei=0.5)
    rec = fc.recommendation(summ).iloc[0]
    assert rec["recommended"] and rec["method"] == "model"
    assert rec["vs_best_baseline"] == pytest.approx(3.0 / 2.5) and rec["best_baseline"] == "kde"
    assert "+20.0%" in rec["text_en"] and "kde" in rec["text_zh"]
    summ["pai"] = [2.55, 2.0, 2.5]  # 2 % above the best baseline: said to be equal
    rec = fc.recommendation(summ).iloc[0]
    assert rec["recommended"] and "practically equal" in rec["text_en"] and "+2.0%" in rec["text_en"]
    summ["pai"] = [0.4, 0.7, 0.9]
    rec = fc.recommendation(summ).iloc[0]
    assert not rec["recommended"] and rec["method"] is None
    assert "No method beats random" in rec["text_en"]


def test_prebinned_features_give_scikit_learns_bins_and_the_same_forecast(monkeypatch):
    """The model's features are binned in one pass (issue #13.5): the very thresholds
    scikit-learn's weighted binning finds, so the same trees and the same predictions."""
    from sklearn.ensemble._hist_gradient_boosting.binning import _find_binning_thresholds

    rng = np.random.default_rng(3)
    w = rng.gamma(2.0, 1.0, 5000) + 0.05
    cols = [rng.normal(size=5000),  # many distinct values: weighted percentiles
            rng.poisson(3, 5000).astype(float),  # few distinct values: midpoints
            np.round(rng.exponential(2, 5000), 1),  # ties among many values
            np.where(rng.random(5000) < 0.1, np.nan, rng.normal(size=5000)),  # missing values
            np.full(5000, 7.0)]  # constant
    for col in cols:
        np.testing.assert_array_equal(fc._bin_thresholds(col, w), _find_binning_thresholds(col, 255, w))

    n, t_all = 800, 20
    lam = rng.gamma(0.6, 3, size=n)[:, None] * (1 + 0.3 * np.sin(np.arange(t_all) / 2))[None, :]
    y = rng.poisson(lam)
    area = rng.uniform(0.1, 2, n)
    kw = dict(area=area, static=rng.poisson(5, size=(n, 2)), kde=y * 0.7 + 0.1)
    monkeypatch.setattr(fc, "PREBIN", False)
    bt0, nx0 = fc.backtest(y, n_origins=3, **kw), fc.forecast_next(y, **kw)
    monkeypatch.setattr(fc, "PREBIN", True)
    bt1, nx1 = fc.backtest(y, n_origins=3, **kw), fc.forecast_next(y, **kw)
    pd.testing.assert_frame_equal(bt0, bt1)
    pd.testing.assert_frame_equal(nx0, nx1)
    assert nx1["model"].std() > 0  # a real model, not a constant
