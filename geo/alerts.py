"""Early warning (预警, Art. 24): prospective detection of unusual bursts of incidents per grid.

The detector answers one question on the latest data: *did some grid, in the last days, get
more incidents than its usual share of the city's incidents, by more than chance allows?*

Method (``method = "window_scan_quasi_poisson"``)
-------------------------------------------------
* **Expectation** — a space–time permutation model (SaTScan's, which needs no population):
  grid g's expected count on day d is ``share_g × N_d``, with ``N_d`` the city's incidents that
  day (so weekday, month and holiday effects, and a city-wide rise, cancel out) and ``share_g``
  the grid's share of the city's incidents over the ``history_days`` before the monitored days,
  shrunk towards its share of households (``prior_incidents`` pseudo-incidents per grid, half
  spread by households, half equally, so a grid with no history still has an expectation).
* **Windows** — for each of the last ``monitor_days`` days and each length L in
  ``windows_days`` (1, 3, 7, 14), the window of L days ending that day: observed O and
  expected E.
* **Chance** — one-sided ``p = P(Y >= O)`` with Y negative binomial of mean E and variance
  φE (quasi-Poisson; φ fitted robustly on weekly history, :func:`geo.hotspots.robust_dispersion`).
* **Recurrence interval** — every day the detector makes M = grids × windows × categories
  tests; by Bonferroni the city sees a signal as extreme as p at most once every
  ``1 / (M p)`` days by chance alone: that is ``recurrence_days`` (capped at 1,000,000). A signal is raised when it is
  at least ``recurrence_days`` (default 365: chance alone raises about one signal a year).
* **One alert per burst** — overlapping signalling windows of the same grid and category are
  one alert, reported with its strongest window; ``detected_at`` is the data date (the end of
  the first window that crossed the threshold), never the clock.

The functions here are pure (numpy arrays and frames in, frames out); reading and writing the
project's DuckDB file (``alerts``, ``alert_status``) is :mod:`pipelines.alerts`.
A status set by a person (``acknowledged``, ``closed``) is kept in table ``alert_status`` and
carried across runs; a later alert for the same grid and category whose window overlaps a known
one inherits its status.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from geo.hotspots import count_tail_p, robust_dispersion

__all__ = [
    "ALERT_COLUMNS",
    "METHOD",
    "STATUSES",
    "alert_id",
    "baseline_shares",
    "detect",
    "carry_status",
]

METHOD = "window_scan_quasi_poisson"
#: Recurrence intervals are capped here (about 2,700 years; ``p_value`` keeps the exact figure).
MAX_RECURRENCE_DAYS = 1_000_000.0
STATUSES = ("new", "acknowledged", "closed")
ALERT_COLUMNS = [
    "alert_id", "detected_at", "window_start", "window_end", "grid_id", "category", "observed",
    "expected", "recurrence_days", "method", "status", "owner_staff_id",
]


def alert_id(grid_id: str, category: str, window_start, window_end) -> str:
    """Stable id of an alert: a hash of its grid, category and window (same data, same id)."""
    key = f"{grid_id}|{category}|{pd.Timestamp(window_start).date()}|{pd.Timestamp(window_end).date()}"
    return "A" + hashlib.sha1(key.encode("utf-8")).hexdigest()[:12]


def baseline_shares(history, households=None, *, prior_incidents: float = 0.5) -> np.ndarray:
    """Each grid's expected share of the city's incidents.

    ``(h_g + prior_g) / (H + Σ prior)`` with ``h_g`` the grid's incidents in the history and
    ``prior_g = prior_incidents × n × (½ household share + ½ / n)``.

    Examples
    --------
    >>> baseline_shares([10, 0, 30], [100, 100, 0], prior_incidents=0.0).round(3).tolist()
    [0.25, 0.0, 0.75]
    """
    h = np.asarray(history, dtype=float)
    n = len(h)
    if households is None:
        hh_share = np.full(n, 1.0 / n)
    else:
        hh = np.asarray(households, dtype=float)
        hh_share = hh / hh.sum() if hh.sum() > 0 else np.full(n, 1.0 / n)
    prior = prior_incidents * n * (0.5 * hh_share + 0.5 / n)
    tot = h.sum() + prior.sum()
    return (h + prior) / tot if tot > 0 else np.full(n, 1.0 / n)


@dataclass
class Detection:
    """Result of :func:`detect`: ``alerts`` (one row per alert) and the fitted ``dispersion``."""

    alerts: pd.DataFrame
    dispersion: float
    tests_per_day: int


def _window_sums(a: np.ndarray, length: int) -> np.ndarray:
    """Sums of ``length`` consecutive days ending on each day (NaN before there are enough)."""
    c = np.concatenate([np.zeros((a.shape[0], 1)), np.cumsum(a, axis=1)], axis=1)
    out = np.full(a.shape, np.nan)
    out[:, length - 1:] = c[:, length:] - c[:, :-length]
    return out


def detect(
    daily,
    days,
    grid_ids,
    *,
    households=None,
    category: str = "all",
    windows: Sequence[int] = (1, 3, 7, 14),
    monitor_days: int = 14,
    history_days: int = 365,
    recurrence_days: float = 365.0,
    prior_incidents: float = 0.5,
    n_categories: int = 1,
    city_daily=None,
) -> Detection:
    """Signals of the last ``monitor_days`` days of a (grids × days) daily count panel.

    Parameters
    ----------
    daily
        (n, D) incidents per grid and day, days consecutive and in order (last = newest).
    days
        The D dates.
    grid_ids
        n grid ids.
    households
        Households per grid (the prior of the shares); default equal.
    n_categories
        How many categories are monitored in the same run (enters the number of tests).
    city_daily
        (D,) the city's incidents per day for the expectation; default the column sums.

    Returns
    -------
    Detection
        ``alerts`` columns: ``alert_id, detected_at, window_start, window_end, grid_id,
        category, observed, expected, p_value, recurrence_days, method``.
    """
    y = np.asarray(daily, dtype=float)
    n, d_all = y.shape
    days = pd.DatetimeIndex(pd.to_datetime(days))
    grid_ids = np.asarray(grid_ids, dtype=object)
    windows = sorted({int(w) for w in windows if int(w) >= 1})
    monitor_days = int(min(monitor_days, d_all))
    m0 = d_all - monitor_days  # first monitored day
    h0 = max(0, m0 - int(history_days))
    hist = y[:, h0:m0]
    if hist.shape[1] == 0:  # no history: shares from households alone
        shares = baseline_shares(np.zeros(n), households, prior_incidents=max(prior_incidents, 1.0))
    else:
        shares = baseline_shares(hist.sum(axis=1), households, prior_incidents=prior_incidents)
    tot = y.sum(axis=0) if city_daily is None else np.asarray(city_daily, dtype=float)
    mu = shares[:, None] * tot[None, :]
    # over-dispersion from weekly sums of the history (daily counts are too thin to fit it)
    phi = 1.0
    if hist.shape[1] >= 14:
        wk = hist.shape[1] // 7
        hy = hist[:, hist.shape[1] - 7 * wk:].reshape(n, wk, 7).sum(axis=2)
        hm = mu[:, h0:m0][:, hist.shape[1] - 7 * wk:].reshape(n, wk, 7).sum(axis=2)
        ok = hm >= 3
        if ok.sum() >= 20:
            phi = robust_dispersion(hy[ok], hm[ok], model="quasi_poisson")
    m_tests = max(n * len(windows) * max(int(n_categories), 1), 1)
    rows = []
    for length in windows:
        o = _window_sums(y, length)[:, m0:]
        e = _window_sums(mu, length)[:, m0:]
        valid = np.isfinite(o) & (e > 0) & (o >= 2)
        if not valid.any():
            continue
        p_up, _ = count_tail_p(np.where(valid, o, 0.0), np.where(valid, e, 1.0),
                               phi * np.where(valid, e, 1.0))
        p_up = np.where(valid, p_up, 1.0)
        with np.errstate(divide="ignore"):
            rec = np.minimum(1.0 / (m_tests * np.maximum(p_up, 1e-300)), MAX_RECURRENCE_DAYS)
        gi, di = np.nonzero(rec >= recurrence_days)
        for g, dd in zip(gi, di):
            end = m0 + dd
            rows.append((g, end - length + 1, end, o[g, dd], e[g, dd], p_up[g, dd], rec[g, dd]))
    cols = ["alert_id", "detected_at", "window_start", "window_end", "grid_id", "category",
            "observed", "expected", "p_value", "recurrence_days", "method"]
    if not rows:
        return Detection(pd.DataFrame(columns=cols), phi, m_tests)
    sig = pd.DataFrame(rows, columns=["g", "start", "end", "o", "e", "p", "rec"])
    sig = sig.sort_values(["g", "start", "end"], kind="mergesort").reset_index(drop=True)
    out = []
    for g, grp in sig.groupby("g", sort=True):
        # overlapping windows of one grid are one burst
        cluster_end = -1
        members: list[int] = []
        clusters: list[list[int]] = []
        for i, r in zip(grp.index, grp.itertuples()):
            if members and r.start > cluster_end:
                clusters.append(members)
                members = []
            members.append(i)
            cluster_end = max(cluster_end, r.end) if len(members) > 1 else r.end
        if members:
            clusters.append(members)
        for mem in clusters:
            c = sig.loc[mem]
            # the strongest window: the smallest p (recurrence is capped, p is not)
            best = c.sort_values(["p", "end", "start"], ascending=[True, True, True]).iloc[0]
            first_end = int(c["end"].min())
            ws, we = days[int(best["start"])], days[int(best["end"])]
            out.append({
                "alert_id": alert_id(str(grid_ids[g]), category, ws, we),
                "detected_at": days[first_end],
                "window_start": ws,
                "window_end": we,
                "grid_id": str(grid_ids[g]),
                "category": category,
                "observed": float(best["o"]),
                "expected": float(best["e"]),
                "p_value": float(best["p"]),
                "recurrence_days": float(best["rec"]),
                "method": METHOD,
            })
    alerts = pd.DataFrame(out, columns=cols).sort_values(
        ["recurrence_days", "grid_id"], ascending=[False, True], kind="mergesort"
    ).reset_index(drop=True)
    return Detection(alerts, phi, m_tests)


# --------------------------------------------------------------------------------------------
# database: alerts, statuses kept across runs, the open alerts
# --------------------------------------------------------------------------------------------

def carry_status(alerts: pd.DataFrame, known: pd.DataFrame) -> np.ndarray:
    """Status of each alert: the status set for the same id, else for an overlapping window of
    the same grid and category (the burst went on and its strongest window moved), else ``new``."""
    status = np.full(len(alerts), "new", dtype=object)
    if known is None or known.empty or alerts.empty:
        return status
    by_id = dict(zip(known["alert_id"], known["status"]))
    ks = known.assign(ws=pd.to_datetime(known["window_start"]), we=pd.to_datetime(known["window_end"]))
    for i, a in enumerate(alerts.itertuples()):
        if a.alert_id in by_id:
            status[i] = by_id[a.alert_id]
            continue
        same = ks[(ks["grid_id"] == a.grid_id) & (ks["category"] == a.category)
                  & (ks["ws"] <= pd.Timestamp(a.window_end)) & (ks["we"] >= pd.Timestamp(a.window_start))]
        if len(same):
            status[i] = same["status"].iloc[-1]
    return status
