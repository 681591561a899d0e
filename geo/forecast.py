"""Next-period incident forecast per grid, naive baselines and a rolling-origin backtest.

Pure module (numpy, pandas, scipy, scikit-learn). The input is a count panel: one row per grid,
one column per period (month) in time order. Every feature of a target period ``t`` uses only
periods ``< t``, so the backtest never looks ahead.

* :func:`hit_rate_pai` — share of the period's incidents in the top-scored ``share`` of the
  area (hit rate) and the Predictive Accuracy Index (PAI = hit rate / area share).
* :func:`baseline_scores` — last period, 3-period moving average, historical mean and (when
  supplied) a kernel density of past events aggregated to the grids.
* :func:`fit_predict` — a Poisson ``HistGradientBoostingRegressor`` on lagged counts, month of
  year, neighbours' lagged counts, a KDE of past events and static grid features.
* :func:`backtest`, :func:`forecast_next` — the evaluation and the forecast used by the stage.

See ``docs/hotspots.md`` for the choices and how to read the results.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import sparse
from threadpoolctl import threadpool_limits

log = logging.getLogger(__name__)

__all__ = [
    "BASELINES",
    "METHODS",
    "backtest",
    "baseline_scores",
    "feature_matrix",
    "fit_predict",
    "forecast_next",
    "hit_rate_pai",
    "pei",
    "recommendation",
    "summarise_backtest",
]

MODEL = "model"
BASELINES = ("last_period", "moving_average_3", "historical_mean", "kde")
METHODS = (MODEL,) + BASELINES
#: Earliest target period the model is trained on / evaluated at (needs 3 lags).
MIN_LAG = 3
#: Columns of :func:`backtest` (``pei`` and ``ranked_by`` added by issue #11).
BACKTEST_COLUMNS = ["target_period", "method", "area_share", "hit_rate", "pai", "events", "mae",
                    "pei", "ranked_by"]


def hit_rate_pai(score, actual, area, share: float, *, rank_by: str = "count") -> tuple[float, float]:
    """Hit rate and PAI of a ranking at ``share`` of the total area.

    ``rank_by = "density"`` ranks by ``score / area`` (predicted incidents per km²): the right
    order when the budget is area and units differ in size (a 52 km² rural grid with the
    highest predicted count would otherwise eat the whole budget); ``"count"`` ranks by
    ``score`` as given.

    Grids are taken in decreasing ``score`` until their area reaches ``share`` of the total.
    Grids with equal scores are one block: when a block straddles the limit only the needed
    fraction of its area is taken and it is credited the same fraction of its incidents (the
    expected value under a random order inside the block), so the area share is exactly ``share``
    and ties neither help nor hurt a method.

    Returns
    -------
    (hit_rate, pai)
        ``hit_rate`` = incidents in the selected area / all incidents of the period (NaN when the
        period has none); ``pai`` = hit_rate / share.

    Examples
    --------
    >>> hit_rate_pai([3, 2, 1, 0], [10, 0, 5, 5], [1, 1, 1, 1], 0.25)
    (0.5, 2.0)
    >>> hit_rate_pai([1, 1, 0, 0], [10, 0, 5, 5], [1, 1, 1, 1], 0.25)
    (0.25, 1.0)
    """
    score = np.asarray(score, dtype=float)
    actual = np.asarray(actual, dtype=float)
    area = np.asarray(area, dtype=float)
    if not 0 < share <= 1:
        raise ValueError(f"`share` must be in (0, 1], got {share}")
    events = actual.sum()
    if events <= 0 or area.sum() <= 0:
        return float("nan"), float("nan")
    if rank_by == "density":
        score = np.where(area > 0, score / np.where(area > 0, area, 1.0), -np.inf)
    elif rank_by != "count":
        raise ValueError(f"rank_by must be 'density' or 'count', got {rank_by!r}")
    score = np.where(np.isfinite(score), score, -np.inf)
    uniq, inv = np.unique(-score, return_inverse=True)  # ascending -score = descending score
    g_area = np.bincount(inv, weights=area, minlength=len(uniq))
    g_hits = np.bincount(inv, weights=actual, minlength=len(uniq))
    target = share * area.sum()
    cum = np.cumsum(g_area)
    before = cum - g_area
    frac = np.clip((target - before) / np.where(g_area > 0, g_area, 1.0), 0.0, 1.0)
    frac = np.where(g_area > 0, frac, (before < target).astype(float))
    hits = float((frac * g_hits).sum())
    hr = hits / events
    return float(hr), float(hr / share)


def pei(score, actual, area, share: float, *, rank_by: str = "density") -> float:
    """Predictive Efficiency Index: the hit rate of the ranking over the best possible hit rate
    at the same area (the actual counts ranked by actual density), 0–1.

    Examples
    --------
    >>> pei([3, 2, 1, 0], [10, 0, 5, 5], [1, 1, 1, 1], 0.25)
    1.0
    """
    hr, _ = hit_rate_pai(score, actual, area, share, rank_by=rank_by)
    best, _ = hit_rate_pai(actual, actual, area, share, rank_by="density")
    return float(hr / best) if best and best > 0 else float("nan")


#: A model within this relative margin of the best baseline is reported as "practically equal".
EQUAL_MARGIN = 0.05


def recommendation(summary: pd.DataFrame, share: float = 0.10) -> pd.DataFrame:
    """The advice the page shows, from :func:`summarise_backtest` rows (one row returned).

    A method is recommended only when its mean PAI at the area share nearest ``share`` is above
    1 (better than patrolling at random); the best such method wins, and the row says by how
    much it beats the best naive baseline (``vs_best_baseline`` = its PAI / the baseline's).
    """
    cols = ["area_share", "method", "pai", "hit_rate", "pei", "best_baseline", "baseline_pai",
            "model_pai", "vs_best_baseline", "recommended", "text_zh", "text_en"]
    if summary.empty:
        return pd.DataFrame(columns=cols)
    shares = summary["area_share"].unique()
    s10 = float(min(shares, key=lambda s: abs(s - share)))
    sub = summary[summary["area_share"] == s10].set_index("method")
    pai = sub["pai"].astype(float)
    base = pai.drop(MODEL, errors="ignore").dropna()
    best_base = str(base.idxmax()) if len(base) else None
    base_pai = float(base.max()) if len(base) else float("nan")
    model_pai = float(pai.get(MODEL, float("nan")))
    winner = str(pai.dropna().idxmax()) if pai.notna().any() else None
    ok = winner is not None and float(pai[winner]) > 1.0
    pct = f"{s10:.0%}"
    if ok:
        w_pai = float(pai[winner])
        if winner == MODEL and best_base:
            ratio = w_pai / base_pai if base_pai > 0 else float("nan")
            gain = f"{ratio - 1:+.1%}"
            if ratio < 1 + EQUAL_MARGIN:
                zh = (f"预测模型与最好的简单方法（{best_base}）几乎一样好：在 {pct} 的面积上 PAI 分别为 "
                      f"{w_pai:.2f} 和 {base_pai:.2f}（随机为 1，模型高 {gain}）；两者都可用，"
                      f"简单方法更易解释。")
                en = (f"The model and the best naive method ({best_base}) are practically equal: "
                      f"PAI {w_pai:.2f} and {base_pai:.2f} at {pct} of the area (random = 1; model "
                      f"{gain}); either will do, the naive one is easier to explain.")
            else:
                zh = (f"建议采用预测模型：在 {pct} 的面积上 PAI 为 {w_pai:.2f}（随机为 1），"
                      f"比最好的简单方法（{best_base}，{base_pai:.2f}）高 {gain}。")
                en = (f"Use the model: PAI {w_pai:.2f} at {pct} of the area (random = 1), "
                      f"{gain} over the best naive method ({best_base}, {base_pai:.2f}).")
        else:
            ratio = w_pai / model_pai if model_pai > 0 else float("nan")
            zh = (f"建议采用简单方法 {winner}：在 {pct} 的面积上 PAI 为 {w_pai:.2f}（随机为 1），"
                  f"模型为 {model_pai:.2f}。")
            en = (f"Use the naive method {winner}: PAI {w_pai:.2f} at {pct} of the area "
                  f"(random = 1); the model reaches {model_pai:.2f}.")
    else:
        ratio = float("nan")
        zh = f"没有方法优于随机巡查（{pct} 面积上 PAI 均不超过 1），不作推荐。"
        en = f"No method beats random patrols (PAI <= 1 at {pct} of the area): no recommendation."
    row = {
        "area_share": s10,
        "method": winner if ok else None,
        "pai": float(pai[winner]) if winner else float("nan"),
        "hit_rate": float(sub.loc[winner, "hit_rate"]) if winner else float("nan"),
        "pei": float(sub.loc[winner, "pei"]) if winner and "pei" in sub else float("nan"),
        "best_baseline": best_base,
        "baseline_pai": base_pai,
        "model_pai": model_pai,
        "vs_best_baseline": (model_pai / base_pai) if base_pai > 0 else float("nan"),
        "recommended": bool(ok),
        "text_zh": zh,
        "text_en": en,
    }
    return pd.DataFrame([row], columns=cols)


# --------------------------------------------------------------------------------------------
# features
# --------------------------------------------------------------------------------------------


def _row_standardised(neighbours, n: int) -> sparse.csr_matrix:
    if neighbours is None:
        return sparse.csr_matrix((n, n))
    w = sparse.csr_matrix(neighbours, dtype=float).tolil()
    w.setdiag(0)
    w = w.tocsr()
    w.eliminate_zeros()
    rs = np.asarray(w.sum(axis=1)).ravel()
    return sparse.diags(np.where(rs > 0, 1.0 / np.where(rs > 0, rs, 1), 0.0)) @ w


class _Panel:
    """Cumulative sums of the counts and the neighbours' mean counts, for O(1) window means."""

    def __init__(self, counts, neighbours, kde):
        self.y = np.asarray(counts, dtype=float)
        n, self.t = self.y.shape
        self.nb = np.asarray(_row_standardised(neighbours, n) @ self.y)
        self.cy = np.concatenate([np.zeros((n, 1)), np.cumsum(self.y, axis=1)], axis=1)
        self.cnb = np.concatenate([np.zeros((n, 1)), np.cumsum(self.nb, axis=1)], axis=1)
        self.kde = None if kde is None else np.asarray(kde, dtype=float)
        if self.kde is not None:
            self.ck = np.concatenate([np.zeros((n, 1)), np.cumsum(self.kde, axis=1)], axis=1)

    def mean(self, c: np.ndarray, t: int, w: int | None) -> np.ndarray:
        a = 0 if w is None else max(t - w, 0)
        return (c[:, t] - c[:, a]) / max(t - a, 1)

    def lag(self, t: int, k: int) -> np.ndarray:
        return self.y[:, t - k] if t - k >= 0 else np.full(self.y.shape[0], np.nan)


def baseline_scores(counts, t: int, *, kde=None, kde_window: int = 12) -> dict[str, np.ndarray]:
    """Naive predictions of period ``t`` from periods ``< t``.

    ``last_period`` = count at t − 1; ``moving_average_3`` = mean of t − 3 … t − 1;
    ``historical_mean`` = mean of 0 … t − 1; ``kde`` (only when ``kde`` is given) = mean over the
    last ``kde_window`` periods of ``kde`` (an (n, T) array of each period's kernel density of
    events integrated over each grid, i.e. smoothed monthly counts).
    """
    p = counts if isinstance(counts, _Panel) else _Panel(counts, None, kde)
    if t < 1:
        raise ValueError("need at least one past period")
    out = {
        "last_period": p.y[:, t - 1].copy(),
        "moving_average_3": p.mean(p.cy, t, 3),
        "historical_mean": p.mean(p.cy, t, None),
    }
    if p.kde is not None:
        out["kde"] = p.mean(p.ck, t, kde_window)
    return out


def feature_matrix(
    panel: _Panel,
    t: int,
    *,
    first_month: int,
    static: np.ndarray | None,
    log_area: np.ndarray,
    kde_window: int = 12,
) -> tuple[np.ndarray, list[str]]:
    """Features of target period ``t`` (every grid), built from periods ``< t`` only."""
    n = panel.y.shape[0]
    cols = {
        "lag1": panel.lag(t, 1),
        "lag2": panel.lag(t, 2),
        "lag3": panel.lag(t, 3),
        # same month last year; the historical mean before there is one (an all-NaN column
        # would break the binning of short panels)
        "lag12": panel.lag(t, 12) if t >= 12 else panel.mean(panel.cy, t, None),
        "ma3": panel.mean(panel.cy, t, 3),
        "ma6": panel.mean(panel.cy, t, 6),
        "ma12": panel.mean(panel.cy, t, 12),
        "hist_mean": panel.mean(panel.cy, t, None),
        "nb_lag1": panel.nb[:, t - 1],
        "nb_ma3": panel.mean(panel.cnb, t, 3),
        "nb_hist_mean": panel.mean(panel.cnb, t, None),
        "month": np.full(n, (first_month - 1 + t) % 12 + 1, dtype=float),
        "log_area": log_area,
    }
    if panel.kde is not None:
        cols["kde"] = panel.mean(panel.ck, t, kde_window)
    names = list(cols)
    x = np.column_stack([cols[k] for k in names])
    if static is not None and static.shape[1]:
        x = np.hstack([x, static])
        names += [f"static_{i}" for i in range(static.shape[1])]
    return x, names


#: Floor of the base rate (incidents per period) of the model's offset.
BASE_FLOOR = 0.05


def _base(panel: _Panel, t: int) -> np.ndarray:
    """Base rate of period t: mean of the 3- and 12-period moving averages, floored."""
    return np.maximum(
        0.5 * panel.mean(panel.cy, t, 3) + 0.5 * panel.mean(panel.cy, t, 12), BASE_FLOOR
    )


def _model(seed: int, max_iter: int):
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(
        loss="poisson",
        learning_rate=0.1,
        max_iter=max_iter,
        max_leaf_nodes=31,
        min_samples_leaf=40,
        l2_regularization=1.0,
        early_stopping=False,
        random_state=seed,
    )


#: Pre-bin the features with :func:`_bin_thresholds` (scikit-learn's own weighted quantile bins,
#: computed for all 255 quantiles at once) before each fit; the model then finds at most 255
#: distinct values per feature and skips its own binning, which calls a weighted percentile once
#: per quantile (255 sorts of every feature, two thirds of the forecast's time). The bins, and
#: so the trees, are the ones scikit-learn would make (tests/geo/test_hotspots_forecast.py).
PREBIN = True
#: scikit-learn's binning subsample (``_BinMapper(subsample=2e5)``): above it the model draws a
#: random subsample for its bins (fast already); we pre-bin only below it.
_BIN_SUBSAMPLE = 200_000
_MAX_BINS = 255


def _bin_thresholds(col: np.ndarray, weight: np.ndarray, max_bins: int = _MAX_BINS) -> np.ndarray:
    """Bin thresholds of one feature as scikit-learn's ``_find_binning_thresholds`` with sample weights.

    Midpoints of the distinct values when there are at most ``max_bins`` of them, else the
    weighted 'averaged inverted CDF' percentiles at ``linspace(0, 100, max_bins + 1)[1:-1]``,
    all computed from one sort and one cumulative sum.
    """
    from sklearn.ensemble._hist_gradient_boosting.common import ALMOST_INF

    ok = ~np.isnan(col) & (weight != 0)
    col, weight = col[ok], weight[ok]
    order = np.argsort(col)
    col, weight = col[order], weight[order]
    distinct = np.unique(col)
    if len(distinct) <= 1:
        return np.asarray([])
    if len(distinct) <= max_bins:
        thr = (distinct[:-1] + distinct[1:]) / 2
    else:
        n = len(col)
        cdf = np.cumsum(weight)
        rank = np.linspace(0, 100, num=max_bins + 1)[1:-1] / 100 * cdf[-1]
        idx = np.clip(np.searchsorted(cdf, rank), 0, n - 1)
        above = (cdf[idx] - rank) > np.finfo(float).eps
        nxt = np.clip(idx + 1, 0, n - 1)
        thr = np.where(above, col[idx], (col[idx] + col[nxt]) / 2)
        thr = np.unique(thr)
    return np.clip(thr, None, ALMOST_INF)


def _prebin(x_train: np.ndarray, weight: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Features as bin numbers (NaN stays NaN), with the bins of ``x_train`` and ``weight``."""
    out = [np.empty_like(x_train, dtype=float)] + [np.empty_like(o, dtype=float) for o in others]
    for j in range(x_train.shape[1]):
        thr = _bin_thresholds(x_train[:, j], weight)
        for src, dst in zip((x_train, *others), out):
            col = src[:, j]
            dst[:, j] = np.where(np.isnan(col), np.nan, np.searchsorted(thr, col, side="left"))
    return out


def fit_predict(
    counts,
    t: int,
    *,
    area=None,
    neighbours=None,
    first_month: int = 1,
    static=None,
    kde=None,
    kde_window: int = 12,
    train_window: int | None = 12,
    max_iter: int = 60,
    seed: int = 0,
    threads: int | None = 1,
    _panel: _Panel | None = None,
) -> np.ndarray:
    """Train on targets ``MIN_LAG … t − 1`` and predict period ``t`` for every grid.

    Parameters
    ----------
    counts
        (n, T) counts; only periods ``< t`` are read (``t`` may equal T: the next period).
    area
        Grid areas (any unit; used as ``log(area)``); default all equal.
    neighbours
        n×n spatial weights (binary); row-standardised internally, self excluded.
    first_month
        Month of year (1–12) of period 0.
    static
        (n, k) grid features that do not change over time (e.g. vulnerable residents).
    kde
        (n, T) per-period kernel density mass per grid (see :func:`baseline_scores`).
    train_window
        Use only the last ``train_window`` target periods for training (``None``: all).
    threads
        OpenMP threads of the model (``None``: all cores).

    Returns
    -------
    numpy.ndarray
        Expected count per grid for period ``t``.
    """
    panel = _panel or _Panel(counts, neighbours, kde)
    n = panel.y.shape[0]
    log_area = np.log(np.asarray(area, dtype=float)) if area is not None else np.zeros(n)
    static = None if static is None else np.asarray(static, dtype=float).reshape(n, -1)
    first = MIN_LAG if train_window is None else max(MIN_LAG, t - train_window)
    if t - first < 2:
        raise ValueError(f"need at least {MIN_LAG + 2} past periods to train, got {t}")
    xs, ys, bs = [], [], []
    for s in range(first, t):
        x, _ = feature_matrix(
            panel,
            s,
            first_month=first_month,
            static=static,
            log_area=log_area,
            kde_window=kde_window,
        )
        xs.append(x)
        ys.append(panel.y[:, s])
        bs.append(_base(panel, s))
    x_train, y_train, b_train = np.vstack(xs), np.concatenate(ys), np.concatenate(bs)
    model = _model(seed, max_iter)
    x_t, _ = feature_matrix(
        panel, t, first_month=first_month, static=static, log_area=log_area, kde_window=kde_window
    )
    # The model learns the ratio of the count to a base rate (Poisson with offset log(base):
    # target y / base, weight base): a unit far above all others is then scaled by its own
    # history instead of being shrunk to the mean of a leaf of >= 40 rows.
    # scikit-learn's OpenMP threads stall badly when the cores are shared with other work
    # (a 200k-row fit measured 4.6 s on one thread, 59 s on two busy cores): one by default.
    if PREBIN and len(x_train) <= _BIN_SUBSAMPLE:
        x_train, x_t = _prebin(x_train, b_train, x_t)
    with threadpool_limits(limits=threads, user_api="openmp"):
        model.fit(x_train, y_train / b_train, sample_weight=b_train)
        return model.predict(x_t) * _base(panel, t)


def backtest(
    counts,
    *,
    area,
    neighbours=None,
    first_month: int = 1,
    static=None,
    kde=None,
    n_origins: int = 6,
    shares: Sequence[float] = (0.05, 0.10, 0.20),
    kde_window: int = 12,
    train_window: int | None = 12,
    max_iter: int = 60,
    seed: int = 0,
    periods=None,
    threads: int | None = 1,
    rank_by: str = "density",
) -> pd.DataFrame:
    """Rolling-origin backtest: for each of the last ``n_origins`` periods ``t``, train on data
    before ``t``, predict ``t``, and score the model and the baselines against the actual counts.

    Returns
    -------
    pandas.DataFrame
        One row per target period × method × area share: ``target_period``, ``method``,
        ``area_share``, ``hit_rate``, ``pai``, ``events`` (incidents in the target period),
        ``mae`` (mean absolute error of the predicted counts; for ``kde`` the smoothed counts).
    """
    panel = _Panel(counts, neighbours, kde)
    t_all = panel.y.shape[1]
    area = np.asarray(area, dtype=float)
    targets = [t for t in range(t_all - n_origins, t_all) if t >= MIN_LAG + 2]
    labels = list(periods) if periods is not None else [str(t) for t in range(t_all)]
    rows = []
    for t in targets:
        preds = _all_predictions(panel, t, area=area, first_month=first_month, static=static,
                                 kde_window=kde_window, train_window=train_window, max_iter=max_iter,
                                 seed=seed, threads=threads)
        actual = panel.y[:, t]
        for method, pred in preds.items():
            mae = float(np.abs(pred - actual).mean())
            for share in shares:
                hr, pai = hit_rate_pai(pred, actual, area, share, rank_by=rank_by)
                rows.append(
                    {
                        "target_period": labels[t],
                        "method": method,
                        "area_share": share,
                        "hit_rate": hr,
                        "pai": pai,
                        "events": float(actual.sum()),
                        "mae": mae,
                        "pei": pei(pred, actual, area, share, rank_by=rank_by),
                        "ranked_by": rank_by,
                    }
                )
    return pd.DataFrame(rows, columns=BACKTEST_COLUMNS)


def summarise_backtest(bt: pd.DataFrame) -> pd.DataFrame:
    """Mean hit rate, PAI and MAE per method and area share over the backtest's periods."""
    if bt.empty:
        return bt.copy()
    g = bt.groupby(["method", "area_share"], sort=False)
    out = g[["hit_rate", "pai", "mae", "pei"]].mean().reset_index()
    out["events"] = g["events"].sum().to_numpy()
    out["ranked_by"] = g["ranked_by"].first().to_numpy()
    out.insert(0, "target_period", "mean")
    return out[bt.columns]


def forecast_next(
    counts,
    *,
    area,
    neighbours=None,
    first_month: int = 1,
    static=None,
    kde=None,
    kde_window: int = 12,
    train_window: int | None = 12,
    max_iter: int = 60,
    seed: int = 0,
    threads: int | None = 1,
) -> pd.DataFrame:
    """Predictions of the period after the panel's last one, by the model and every baseline.

    Returns
    -------
    pandas.DataFrame
        One column per method (:data:`METHODS`, ``kde`` only when ``kde`` is given), one row per
        grid in input order.
    """
    panel = _Panel(counts, neighbours, kde)
    t = panel.y.shape[1]
    preds = _all_predictions(panel, t, area=area, first_month=first_month, static=static,
                             kde_window=kde_window, train_window=train_window, max_iter=max_iter,
                             seed=seed, threads=threads)
    return pd.DataFrame(preds)


def _all_predictions(panel, t: int, *, area, first_month, static, kde_window, train_window, max_iter, seed,
                     threads) -> dict:
    """Scores of the model and of every naive baseline for period ``t`` of ``panel``."""
    preds = {MODEL: fit_predict(None, t, area=area, first_month=first_month, static=static,
                                kde_window=kde_window, train_window=train_window, max_iter=max_iter,
                                seed=seed, threads=threads, _panel=panel)}
    preds.update(baseline_scores(panel, t, kde_window=kde_window))
    return preds
