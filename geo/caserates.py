"""Case rates of the 接诉即办 loop and the monthly 红黑榜 (Art. 16, 43, 44, 45).

Pure pandas/numpy: no DuckDB, no files. :func:`case_rates` computes the ``case_rates`` table from
a frame of cases; ``pipelines.stage_cases`` computes the same per-case flags and scope × period
aggregates inside DuckDB (issue #13.2: no incident row in Python), parsing the text fields with
the ``parse_*`` functions below on their distinct values, and scores and ranks the aggregates with
:func:`finish_rates` — one rule, two sizes of input. The rules and defaults are explained in
``docs/cases.md``; in short, per case (:func:`case_flags`):

* **response** (响应率): answered within the respond deadline of its class — the deadlines and
  rule of :func:`geo.timeliness.case_outcomes` (12345 defaults: 1 h emergency, 2 h utilities,
  24 h otherwise, from ``occurred_at``; closing a case answers it);
* **on-time close** (按期办结率): closed within the close deadline of its class (2 h, 24 h,
  7 days, 15 days); an open case past its deadline is late, an open case within it not judged;
* **resolution** (解决率): ``resolved`` is 是/true/1 among cases that carry a value;
* **satisfaction** (满意率): 满意 + 基本满意 among rated cases (a 1–5 scale: 4 or 5);
  empty = not rated;
* **returned** (退单率): ``returned`` > 0 (sent back for rework) among cases that carry a value.

Each rate is the share among the cases that carry its field, NULL (NaN) where none does.
:func:`case_rates` aggregates per scope (street, community, grid, department, service company,
grid worker) × period (``all`` and each ``YYYY-MM``), flags rates with fewer than ``min_cases``
cases (``small_n``: shown, not ranked), scores the rest with weights and ranks them within scope
and period (1 = best); the best ``board_size`` are the red list (红榜), the worst the black list
(黑榜).
"""
from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from geo.timeliness import case_outcomes

__all__ = [
    "DEFAULTS",
    "RATES",
    "SCOPES",
    "board",
    "case_flags",
    "case_rates",
    "finish_rates",
    "parse_resolved",
    "parse_returned",
    "parse_satisfaction",
    "score",
]

#: The five rates, in the order of the table.
RATES = ("response_rate", "resolution_rate", "satisfaction_rate", "on_time_close_rate",
         "returned_rate")

#: Scope name → incident column, in the order of the table (data contract).
SCOPES: dict[str, str] = {
    "street": "street_code",
    "community": "community_code",
    "grid": "grid_id",
    "department": "department",
    "service_company": "service_company",
    "staff": "staff_id",
}

# Every default is documented in docs/cases.md; ASSUMPTION marks a figure to set locally.
DEFAULTS: dict[str, Any] = {
    # ASSUMPTION: below 20 cases in a month a rate moves by 5 points with one case; such rates are
    # shown with a flag and left out of the ranking (the same figure as worker performance).
    "min_cases": 20,
    # ASSUMPTION: weights of the score; the three rates of 12345 assessments (响应率, 解决率,
    # 满意率) weigh most, as in the published 接诉即办 assessments; returned counts as
    # 1 − returned_rate. Rates a row lacks drop out and the others are rescaled.
    "weights": {
        "response_rate": 0.2,
        "resolution_rate": 0.3,
        "satisfaction_rate": 0.3,
        "on_time_close_rate": 0.1,
        "returned_rate": 0.1,
    },
    # 红黑榜: the best and the worst `board_size` ranked entries of a scope and period; with fewer
    # than 2 × board_size ranked entries each list takes half of them (rounded down), so no
    # entry is on both.
    "board_size": 3,
    # Ratings that count as satisfied / rated-but-not-satisfied (compared case-insensitively).
    "satisfied": ["满意", "非常满意", "基本满意", "比较满意", "satisfied", "very satisfied",
                  "basically satisfied", "fairly satisfied"],
    "not_satisfied": ["不满意", "非常不满意", "一般", "dissatisfied", "unsatisfied",
                      "very dissatisfied", "neutral"],
    # On a numeric scale up to `scale_max`, a rating >= `satisfied_min` is satisfied.
    "scale_max": 5,
    "satisfied_min": 4,
    # Deadlines: those of case timeliness ([hotspots.timeliness]) unless set here.
    "timeliness": {},
}

_TRUE = {"是", "已解决", "解决", "true", "t", "yes", "y", "1", "1.0", "已办结解决"}
_FALSE = {"否", "未解决", "不解决", "false", "f", "no", "n", "0", "0.0"}


def _merge(base: Mapping, override: Mapping | None) -> dict:
    out = copy.deepcopy(dict(base))
    for k, v in (override or {}).items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _mapped(values: pd.Series, one) -> pd.Series:
    """Apply ``one`` to the distinct values only (millions of rows, a few distinct values)."""
    obj = values.astype(object)
    uniq = pd.unique(obj)
    table = {u: one(u) for u in uniq if not _missing(u)}
    return obj.map(lambda v: np.nan if _missing(v) else table[v]).astype(float)


def _missing(v: object) -> bool:
    if v is None:
        return True
    if isinstance(v, str):
        return v.strip() == ""
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def parse_resolved(values: pd.Series) -> pd.Series:
    """1.0 solved, 0.0 not solved, NaN unknown: 是/否, true/false, yes/no, 1/0, 已解决/未解决.

    Examples
    --------
    >>> parse_resolved(pd.Series(["是", "否", True, 0, None, "?"])).tolist()
    [1.0, 0.0, 1.0, 0.0, nan, nan]
    """
    def one(v: object) -> float:
        s = str(v).strip().lower()
        if s in _TRUE:
            return 1.0
        if s in _FALSE:
            return 0.0
        return np.nan

    return _mapped(values, one)


def parse_returned(values: pd.Series) -> pd.Series:
    """1.0 sent back for rework (a count above 0, 是, true), 0.0 not, NaN unknown.

    Examples
    --------
    >>> parse_returned(pd.Series([0, 2, "1", "否", "是", None])).tolist()
    [0.0, 1.0, 1.0, 0.0, 1.0, nan]
    """
    def one(v: object) -> float:
        s = str(v).strip().lower()
        try:
            x = float(s)
        except ValueError:
            return 1.0 if s in _TRUE else (0.0 if s in _FALSE else np.nan)
        return float(x > 0) if math.isfinite(x) else np.nan

    return _mapped(values, one)


def parse_satisfaction(
    values: pd.Series, *, params: Mapping | None = None
) -> pd.Series:
    """1.0 satisfied (满意, 基本满意 or ≥ 4 of 5), 0.0 rated otherwise, NaN not rated or unknown.

    Examples
    --------
    >>> parse_satisfaction(pd.Series(["满意", "基本满意", "不满意", 5, "3", None, "x"])).tolist()
    [1.0, 1.0, 0.0, 1.0, 0.0, nan, nan]
    """
    p = _merge(DEFAULTS, params)
    good = {str(s).strip().lower() for s in p["satisfied"]}
    bad = {str(s).strip().lower() for s in p["not_satisfied"]}
    top, cut = float(p["scale_max"]), float(p["satisfied_min"])

    def one(v: object) -> float:
        s = str(v).strip().lower()
        if s in good:
            return 1.0
        if s in bad:
            return 0.0
        try:
            x = float(s)
        except ValueError:
            return np.nan
        if not (1 <= x <= top):
            return np.nan
        return float(x >= cut)

    return _mapped(values, one)


def _times(cases: pd.DataFrame, col: str) -> pd.Series:
    if col not in cases.columns:
        return pd.Series(pd.NaT, index=cases.index, dtype="datetime64[ns]")
    s = cases[col]
    if pd.api.types.is_datetime64_any_dtype(s):
        return s
    return pd.to_datetime(s.astype(object).where(s.notna(), None), errors="coerce", format="mixed")


def case_flags(
    cases: pd.DataFrame,
    *,
    params: Mapping | None = None,
    as_of: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Per case: the five outcome flags (1.0 / 0.0 / NaN = not known) and the stage hours.

    Parameters
    ----------
    cases
        ``occurred_at`` and any of ``accepted_at``, ``dispatched_at``, ``responded_at``,
        ``closed_at``, ``resolved``, ``satisfaction``, ``returned``, ``category``,
        ``service_type``, ``severity``.
    params
        Overrides of :data:`DEFAULTS`; ``timeliness`` holds keyword arguments of
        :func:`geo.timeliness.case_outcomes` (``deadlines``, ``category_deadlines`` …).
    as_of
        When open cases are judged; default the latest timestamp in the data.

    Returns
    -------
    pandas.DataFrame
        On the index of ``cases``: ``period`` (``YYYY-MM`` of ``occurred_at``), ``responded``,
        ``resolved``, ``satisfied``, ``closed_on_time``, ``returned``, and the hours
        ``hours_to_accept``, ``hours_accept_to_dispatch``, ``hours_dispatch_to_respond``,
        ``hours_respond_to_close`` (NaN where a stamp is missing or out of order).
    """
    p = _merge(DEFAULTS, params)
    idx = cases.index
    nan = pd.Series(np.nan, index=idx)
    occurred = _times(cases, "occurred_at")
    base = cases.copy()
    for c in ("occurred_at", "responded_at", "closed_at"):
        if c in base.columns:
            base[c] = _times(cases, c)
    kw = dict(p.get("timeliness") or {})
    out = pd.DataFrame(index=idx)
    out["period"] = occurred.dt.strftime("%Y-%m")
    has_times = "responded_at" in cases.columns or "closed_at" in cases.columns
    if len(cases) and has_times and occurred.notna().any():
        oc = case_outcomes(base, as_of=as_of, **kw)
        out["responded"] = oc["respond_on_time"].astype(float)
        out["closed_on_time"] = (
            oc["close_on_time"].astype(float) if "closed_at" in cases.columns else nan
        )
    else:
        out["responded"] = nan
        out["closed_on_time"] = nan
    out["resolved"] = parse_resolved(cases["resolved"]) if "resolved" in cases.columns else nan
    out["satisfied"] = (
        parse_satisfaction(cases["satisfaction"], params=p)
        if "satisfaction" in cases.columns else nan
    )
    out["returned"] = parse_returned(cases["returned"]) if "returned" in cases.columns else nan

    stamps = [occurred] + [_times(cases, c) for c in
                           ("accepted_at", "dispatched_at", "responded_at", "closed_at")]
    names = ("hours_to_accept", "hours_accept_to_dispatch", "hours_dispatch_to_respond",
             "hours_respond_to_close")
    for name, a, b in zip(names, stamps[:-1], stamps[1:]):
        h = (b - a).dt.total_seconds() / 3600.0
        out[name] = h.where(h >= 0)
    return out


def score(rates: pd.DataFrame, weights: Mapping[str, float]) -> pd.Series:
    """Weighted score of the rates (0–1, higher is better); ``returned_rate`` enters as 1 − rate.

    Rates that are NaN in a row drop out and the remaining weights are rescaled; a row with no
    rate at all scores NaN.

    Examples
    --------
    >>> r = pd.DataFrame({"response_rate": [1.0, 0.5], "returned_rate": [0.0, np.nan]})
    >>> score(r, {"response_rate": 0.5, "returned_rate": 0.5}).tolist()
    [1.0, 0.5]
    """
    num = pd.Series(0.0, index=rates.index)
    den = pd.Series(0.0, index=rates.index)
    for col, w in weights.items():
        if col not in rates.columns or not float(w):
            continue
        v = rates[col].astype(float)
        if col == "returned_rate":
            v = 1.0 - v
        ok = v.notna()
        num = num + np.where(ok, v.fillna(0.0) * float(w), 0.0)
        den = den + np.where(ok, float(w), 0.0)
    return (num / den.where(den > 0)).astype(float)


def board(ranked: pd.Series, *, size: int = 3) -> pd.Series:
    """``red`` for ranks 1..k, ``black`` for the last k ranks, else None (k ≤ half the entries).

    ``ranked`` holds ranks 1..n (NaN = not ranked) of one scope and period.

    Examples
    --------
    >>> board(pd.Series([1, 2, 3, 4, 5, np.nan]), size=3).tolist()
    ['red', 'red', None, 'black', 'black', None]
    """
    n = int(ranked.notna().sum())
    k = min(int(size), n // 2)
    r = ranked.astype(float).to_numpy()
    labels = [
        "red" if k > 0 and v <= k else ("black" if k > 0 and v > n - k else None)
        for v in r
    ]
    return pd.Series(labels, index=ranked.index, dtype=object)


_OUT = ["scope", "scope_id", "period", "cases", *RATES, "responded_n", "resolved_n", "rated_n",
        "close_judged_n", "returned_n", "median_hours_to_accept", "median_hours_accept_to_dispatch",
        "median_hours_dispatch_to_respond", "median_hours_respond_to_close", "score", "small_n",
        "rank", "board"]


def case_rates(
    cases: pd.DataFrame,
    *,
    scopes: Mapping[str, str] | None = None,
    params: Mapping | None = None,
    as_of: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """The ``case_rates`` table: scope × period with the five rates, score, rank and board.

    Parameters
    ----------
    cases
        One row per incident: ``occurred_at``, the scope columns (:data:`SCOPES`) that exist,
        and any life-cycle columns (see :func:`case_flags`).
    scopes
        ``{scope: column}``; default :data:`SCOPES`; scopes whose column is absent or empty
        are left out.
    params
        Overrides of :data:`DEFAULTS`.
    as_of
        When open cases are judged (default: the latest timestamp in the data).

    Returns
    -------
    pandas.DataFrame
        ``scope``, ``scope_id``, ``period`` (``all`` or ``YYYY-MM``), ``cases``, the
        :data:`RATES` (0–1, NaN where no case carries the field), the denominators
        (``responded_n`` … ``returned_n``: cases judged for each rate), the median hours of each
        life-cycle stage, ``score``, ``small_n`` (fewer than ``min_cases`` cases: not ranked),
        ``rank`` (1 = best within scope and period; NaN when not ranked) and ``board``
        (``red``, ``black`` or None).

    Examples
    --------
    >>> t = pd.Timestamp("2025-01-05 09:00")
    >>> cases = pd.DataFrame({"occurred_at": [t] * 4, "street_code": ["a", "a", "b", "b"],
    ...                       "resolved": ["是", "是", "否", "是"]})
    >>> r = case_rates(cases, params={"min_cases": 1, "board_size": 1})
    >>> r[r.period == "all"][["scope_id", "resolution_rate", "rank", "board"]].values.tolist()
    [['a', 1.0, 1, 'red'], ['b', 0.5, 2, 'black']]
    """
    p = _merge(DEFAULTS, params)
    scopes = dict(SCOPES if scopes is None else scopes)
    if cases.empty:
        return pd.DataFrame(columns=_OUT)
    flags = case_flags(cases, params=p, as_of=as_of)
    keep = flags["period"].notna()
    flags, c = flags[keep], cases[keep]
    value_cols = ["responded", "resolved", "satisfied", "closed_on_time", "returned"]
    hours = ["hours_to_accept", "hours_accept_to_dispatch", "hours_dispatch_to_respond",
             "hours_respond_to_close"]
    frames = []
    for scope, col in scopes.items():
        if col not in c.columns:
            continue
        ids = c[col].astype(object)
        ids = ids.where(~ids.map(_missing), None)
        sel = ids.notna()
        if not sel.any():
            continue
        f = flags[sel].copy()
        f["scope_id"] = ids[sel].astype(str).str.strip().values
        for period_key in ("all", "month"):
            keys = ["scope_id"] if period_key == "all" else ["scope_id", "period"]
            g = f.groupby(keys, sort=True)
            agg = pd.DataFrame({"cases": g.size()})
            for v, rate in zip(value_cols, ("response_rate", "resolution_rate",
                                            "satisfaction_rate", "on_time_close_rate",
                                            "returned_rate")):
                agg[rate] = g[v].mean()
                agg[{"responded": "responded_n", "resolved": "resolved_n",
                     "satisfied": "rated_n", "closed_on_time": "close_judged_n",
                     "returned": "returned_n"}[v]] = g[v].count()
            for h in hours:
                agg[f"median_{h}"] = g[h].median()
            agg = agg.reset_index()
            if period_key == "all":
                agg["period"] = "all"
            agg.insert(0, "scope", scope)
            frames.append(agg)
    if not frames:
        return pd.DataFrame(columns=_OUT)
    return finish_rates(pd.concat(frames, ignore_index=True), params=p, scopes=scopes)


def finish_rates(
    out: pd.DataFrame, *, params: Mapping | None = None, scopes: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """Score, flag, rank and board aggregated rates; the ``case_rates`` table in its order.

    ``out`` has one row per scope × scope id × period with ``cases``, the :data:`RATES`, their
    denominators and the median hours — as :func:`case_rates` aggregates them from cases, or as
    ``pipelines.stage_cases`` aggregates them inside DuckDB (issue #13.2). Row order does not
    matter: the result is sorted by scope, period and id.
    """
    p = _merge(DEFAULTS, params)
    scopes = dict(SCOPES if scopes is None else scopes)
    if out.empty:
        return pd.DataFrame(columns=_OUT)
    out = out.reset_index(drop=True)
    out["cases"] = out["cases"].astype(np.int64)
    for n in ("responded_n", "resolved_n", "rated_n", "close_judged_n", "returned_n"):
        out[n] = out[n].astype(np.int64)
    out["score"] = score(out, p["weights"])
    out["small_n"] = out["cases"] < int(p["min_cases"])
    rankable = ~out["small_n"] & out["score"].notna()
    out["rank"] = np.nan
    out["board"] = None
    for idx in out[rankable].groupby(["scope", "period"], sort=False).groups.values():
        part = out.loc[idx]
        # best score first; ties: more cases first, then the id (deterministic)
        order = part.sort_values(["score", "cases", "scope_id"],
                                 ascending=[False, False, True], kind="stable").index
        out.loc[order, "rank"] = np.arange(1, len(order) + 1)
        out.loc[order, "board"] = board(out.loc[order, "rank"], size=int(p["board_size"])).values
    out["rank"] = out["rank"].astype("Int64")
    scope_order = {s: i for i, s in enumerate(scopes)}
    out = out.assign(_s=out["scope"].map(scope_order), _p=out["period"] != "all")
    out = out.sort_values(["_s", "_p", "period", "scope_id"], kind="stable")
    return out[_OUT].reset_index(drop=True)
