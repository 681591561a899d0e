"""Early warning (geo.alerts): a planted burst is found at the right grid and window; a city
without change raises at most about one false alert a month; statuses survive re-runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geo import alerts as al


def simulate(n_grids=400, n_days=730, seed=0, per_day=150.0):
    """Daily incidents per grid: city level with weekday and yearly seasonality, grid shares ∝
    households × a lasting factor, over-dispersed by a weekly gamma factor per grid."""
    rng = np.random.default_rng(seed)
    hh = rng.uniform(50, 600, n_grids).round()
    share = hh * rng.gamma(20, 1 / 20, n_grids)
    share /= share.sum()
    days = pd.date_range("2024-01-01", periods=n_days, freq="D")
    week = 1 + 0.25 * np.cos(2 * np.pi * days.day_of_week.to_numpy() / 7)
    season = 1 + 0.3 * np.sin(2 * np.pi * days.day_of_year.to_numpy() / 365)
    lam = per_day * week * season
    wk = np.arange(n_days) // 7
    noise = rng.gamma(10, 0.1, (n_grids, wk.max() + 1))[:, wk]  # Var 0.1 per grid-week
    y = rng.poisson(share[:, None] * lam[None, :] * noise).astype(float)
    return y, days, np.array([f"G{i:03d}" for i in range(n_grids)], dtype=object), hh


def test_shares_and_ids_by_hand():
    assert al.baseline_shares([10, 0, 30], [100, 100, 0], prior_incidents=0).tolist() == [
        0.25, 0.0, 0.75]
    s = al.baseline_shares([0, 0], [100, 300], prior_incidents=1.0)
    assert s.tolist() == pytest.approx([(0.5 * 0.25 + 0.25) / 1, (0.5 * 0.75 + 0.25) / 1])
    a = al.alert_id("G1", "all", "2025-01-01", "2025-01-07")
    assert a == al.alert_id("G1", "all", pd.Timestamp("2025-01-01 00:00"), "2025-01-07")
    assert a != al.alert_id("G1", "all", "2025-01-02", "2025-01-07")


def test_planted_burst_raises_an_alert_at_the_right_grid_and_window():
    y, days, ids, hh = simulate(seed=1)
    g = 123
    burst = np.arange(len(days) - 8, len(days) - 3)  # 5 days ending 3 days before the data end
    rng = np.random.default_rng(5)
    y[g, burst] += rng.poisson(4.0, len(burst))
    det = al.detect(y, days, ids, households=hh)
    a = det.alerts
    assert len(a) >= 1
    top = a.iloc[0]
    assert top["grid_id"] == ids[g]
    assert top["window_start"] <= days[burst[-1]] and top["window_end"] >= days[burst[0]]
    assert days[burst[0]] <= top["detected_at"] <= days[burst[-1]]
    assert top["observed"] > 3 * top["expected"] and top["recurrence_days"] >= 365
    assert (a["grid_id"] == ids[g]).sum() == 1  # one alert per burst, not one per day
    assert len(a) <= 2


def test_no_change_gives_at_most_one_false_alert_a_month():
    y, days, ids, hh = simulate(n_days=365 + 360, seed=2)
    alerts = 0
    for month in range(12):  # a run at the end of every month, monitoring its last 30 days
        end = 365 + 30 * (month + 1)
        det = al.detect(y[:, :end], days[:end], ids, households=hh, monitor_days=30)
        alerts += len(det.alerts)
    assert alerts <= 12, alerts
