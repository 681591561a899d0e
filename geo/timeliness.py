"""Case timeliness (Art. 16: answer complaints at once): response and closure times against
deadlines, on-time and repeat rates per grid, worker and street.

Pure module (pandas/numpy). Default deadlines follow the Beijing 12345 hotline norms and are
*defaults to adapt* (``docs/hotspots.md``):

=============  ==============================================  ===========  ==============
class          which cases                                     respond in   close in
=============  ==============================================  ===========  ==============
emergency      severity >= 5                                   1 h          2 h
utility        water, power, gas or heating (category or       2 h          24 h
               ``service_type`` matches a utility keyword)
complex        category / ``service_type`` matches a complex   24 h         15 days
               keyword (疑难, 复杂 …)
general        everything else                                 24 h         7 days
=============  ==============================================  ===========  ==============

A deadline per exact category (``category_deadlines``) overrides the class.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = [
    "COMPLEX_KEYWORDS",
    "DEFAULT_DEADLINES",
    "UTILITY_KEYWORDS",
    "case_outcomes",
    "case_timeliness",
    "deadline_classes",
]

#: Hours to respond (dispatch) and to close (feedback) per deadline class.
DEFAULT_DEADLINES: dict[str, dict[str, float]] = {
    "emergency": {"respond_hours": 1.0, "close_hours": 2.0},
    "utility": {"respond_hours": 2.0, "close_hours": 24.0},
    "general": {"respond_hours": 24.0, "close_hours": 7 * 24.0},
    "complex": {"respond_hours": 24.0, "close_hours": 15 * 24.0},
}
UTILITY_KEYWORDS: tuple[str, ...] = (
    "water",
    "power",
    "electric",
    "gas",
    "heating",
    "utility",
    "utilities",
    "供水",
    "停水",
    "水电",
    "供电",
    "停电",
    "用电",
    "燃气",
    "天然气",
    "煤气",
    "供暖",
    "供热",
    "暖气",
    "采暖",
)
COMPLEX_KEYWORDS: tuple[str, ...] = ("complex", "疑难", "复杂")

#: Scopes of the ``case_timeliness`` table and the column that identifies each.
DEFAULT_SCOPES: dict[str, str] = {"grid": "grid_id", "staff": "staff_id", "street": "street_code"}


def _matcher(words: Sequence[str]):
    if not words:
        return None
    return re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE)


def _factorize(cases: pd.DataFrame, col: str) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes (−1 = missing or blank) and the distinct stripped strings of a column.

    Works on the few distinct values only, so millions of rows (and categorical columns read
    from DuckDB/Arrow) cost one hash pass, not one Python string operation per row.
    """
    if col not in cases:
        return np.full(len(cases), -1, dtype=np.int64), np.array([], dtype=object)
    codes, uniq = pd.factorize(cases[col], use_na_sentinel=True)
    labels = np.array(["" if pd.isna(u) else str(u).strip() for u in uniq], dtype=object)
    codes = np.asarray(codes, dtype=np.int64)
    blank = np.flatnonzero(labels == "")
    if len(blank):
        codes = np.where(np.isin(codes, blank), -1, codes)
    return codes, labels


def _lookup(codes: np.ndarray, values: np.ndarray, missing) -> np.ndarray:
    out = np.append(values, missing)  # code −1 picks the appended value
    return out[codes]


def deadline_classes(
    cases: pd.DataFrame,
    *,
    emergency_severity: int = 5,
    utility_keywords: Sequence[str] = UTILITY_KEYWORDS,
    complex_keywords: Sequence[str] = COMPLEX_KEYWORDS,
) -> pd.Series:
    """Deadline class (``emergency``/``utility``/``complex``/``general``) of each case.

    Uses ``severity`` (when present), and ``category`` plus ``service_type`` (when present)
    matched case-insensitively against the keyword lists (substring match, so ``停水报修``
    matches ``停水``). Emergency wins over utility, utility over complex.
    """
    util_re, cplx_re = _matcher(utility_keywords), _matcher(complex_keywords)
    kinds = []
    for col in ("category", "service_type"):
        codes, labels = _factorize(cases, col)
        util = np.array([bool(util_re and util_re.search(t)) for t in labels], dtype=bool)
        cplx = np.array([bool(cplx_re and cplx_re.search(t)) for t in labels], dtype=bool)
        kinds.append((_lookup(codes, util, False), _lookup(codes, cplx, False)))
    is_util = kinds[0][0] | kinds[1][0]
    is_cplx = kinds[0][1] | kinds[1][1]
    out = np.select([is_util, is_cplx], ["utility", "complex"], "general").astype(object)
    if "severity" in cases:
        sev = pd.to_numeric(cases["severity"], errors="coerce").to_numpy(dtype=float)
        out[sev >= emergency_severity] = "emergency"
    return pd.Series(out, index=cases.index)


def _hours(later: pd.Series, earlier: pd.Series) -> pd.Series:
    return (later - earlier).dt.total_seconds() / 3600.0


def _times(cases: pd.DataFrame, col: str) -> pd.Series:
    if col not in cases:
        return pd.Series(pd.NaT, index=cases.index, dtype="datetime64[ns]")
    return pd.to_datetime(cases[col])


def case_outcomes(
    cases: pd.DataFrame,
    *,
    deadlines: Mapping[str, Mapping[str, float]] | None = None,
    category_deadlines: Mapping[str, Sequence[float]] | None = None,
    as_of=None,
    emergency_severity: int = 5,
    utility_keywords: Sequence[str] = UTILITY_KEYWORDS,
    complex_keywords: Sequence[str] = COMPLEX_KEYWORDS,
) -> pd.DataFrame:
    """Per-case hours, deadlines and on-time flags.

    Rules
    -----
    * hours to respond = ``responded_at − occurred_at`` (``closed_at`` when ``responded_at`` is
      missing: closing a case answers it); hours to close = ``closed_at − occurred_at``. A
      negative duration is a data error and is ignored (NaN).
    * A case is *due* once it is closed, or once ``as_of`` (default: the latest timestamp in the
      data) is past its close deadline; open cases still within their deadline are not judged.
    * A due case is *on time* when it was responded to within the respond deadline and closed
      within the close deadline (an unanswered/unclosed overdue case is late).
    * When the data has no response (or no closure) times at all, that deadline is not judged.

    Returns
    -------
    pandas.DataFrame
        ``deadline_class``, ``respond_deadline_h``, ``close_deadline_h``, ``hours_to_respond``,
        ``hours_to_close``, ``due``, ``on_time`` (NaN when not due), ``respond_on_time``,
        ``close_on_time``, ``repeat``, ``invalid_times`` on the input index.
    """
    dl = {k: dict(v) for k, v in DEFAULT_DEADLINES.items()}
    for k, v in (deadlines or {}).items():
        dl.setdefault(k, {}).update(v)
    cls = deadline_classes(
        cases,
        emergency_severity=emergency_severity,
        utility_keywords=utility_keywords,
        complex_keywords=complex_keywords,
    )
    names = list(dl)
    cls_code = pd.Categorical(cls, categories=names).codes
    resp_dl = np.array([float(dl[k]["respond_hours"]) for k in names])[cls_code]
    close_dl = np.array([float(dl[k]["close_hours"]) for k in names])[cls_code]
    if category_deadlines:
        codes, labels = _factorize(cases, "category")
        for name, (r_h, c_h) in category_deadlines.items():
            hit = np.flatnonzero(labels == str(name).strip())
            m = np.isin(codes, hit) if len(hit) else np.zeros(len(cases), bool)
            resp_dl[m] = float(r_h)
            close_dl[m] = float(c_h)
    occurred = _times(cases, "occurred_at")
    closed = _times(cases, "closed_at")
    responded = _times(cases, "responded_at")
    has_resp_data = bool(responded.notna().any() or closed.notna().any())
    has_close_data = bool(closed.notna().any())
    h_resp = _hours(responded.fillna(closed), occurred).to_numpy(dtype=float, copy=True)
    h_close = _hours(closed, occurred).to_numpy(dtype=float, copy=True)
    invalid = (h_resp < 0) | (h_close < 0)
    h_resp[h_resp < 0] = np.nan
    h_close[h_close < 0] = np.nan
    if as_of is None:
        as_of = max(t.max() for t in (occurred, responded, closed) if t.notna().any())
    age = ((pd.Timestamp(as_of) - occurred).dt.total_seconds() / 3600.0).to_numpy()

    def judged(hours: np.ndarray, deadline: np.ndarray) -> np.ndarray:
        """1.0 on time, 0.0 late (incl. still open past the deadline), NaN not yet judged."""
        res = np.where(np.isnan(hours), np.nan, (hours <= deadline).astype(float))
        res[np.isnan(hours) & (age > deadline)] = 0.0
        return res

    r_ok = judged(h_resp, resp_dl)
    c_ok = judged(h_close, close_dl)
    due = (closed.notna().to_numpy() | (age > close_dl)) & occurred.notna().to_numpy()
    parts = ([r_ok] if has_resp_data else []) + ([c_ok] if has_close_data else [])
    if parts:
        on_time = np.min(np.vstack(parts), axis=0)  # NaN if any part is not judged yet
        on_time[~due] = np.nan
    else:
        on_time = np.full(len(cases), np.nan)
    if "repeat_of" in cases:
        repeat = (_factorize(cases, "repeat_of")[0] >= 0).astype(float)
    else:
        repeat = np.full(len(cases), np.nan)
    nan = np.full(len(cases), np.nan)
    return pd.DataFrame(
        {
            "deadline_class": cls.to_numpy(),
            "respond_deadline_h": resp_dl,
            "close_deadline_h": close_dl,
            "hours_to_respond": h_resp,
            "hours_to_close": h_close,
            "due": due,
            "on_time": on_time,
            "respond_on_time": r_ok if has_resp_data else nan,
            "close_on_time": c_ok if has_close_data else nan,
            "repeat": repeat,
            "invalid_times": invalid,
        },
        index=cases.index,
    )


def case_timeliness(
    cases: pd.DataFrame,
    *,
    scopes: Mapping[str, str] | None = None,
    min_cases: int = 1,
    **outcome_kw,
) -> pd.DataFrame:
    """The ``case_timeliness`` table: one row per grid, worker (staff) and street.

    Parameters
    ----------
    cases
        Incidents with ``occurred_at`` and, when available, ``responded_at``, ``closed_at``,
        ``category``, ``severity``, ``service_type``, ``repeat_of`` and the scope columns
        (default ``grid_id``, ``staff_id``, ``street_code``).
    scopes
        ``{scope name: column}``; scopes whose column is missing are skipped.
    min_cases
        Drop scope ids with fewer cases.
    **outcome_kw
        Passed to :func:`case_outcomes` (deadlines, ``as_of`` …).

    Returns
    -------
    pandas.DataFrame
        ``scope``, ``scope_id``, ``cases``, ``median_hours_to_respond``, ``median_hours_to_close``,
        ``on_time_rate`` (share of due cases on time), ``repeat_rate`` (share of cases that repeat
        an earlier one), and ``due_cases``, ``respond_on_time_rate``, ``close_on_time_rate``.

    Examples
    --------
    >>> t0 = pd.Timestamp("2024-01-01")
    >>> df = pd.DataFrame({"occurred_at": [t0, t0], "responded_at": [t0 + pd.Timedelta(hours=1),
    ...     t0 + pd.Timedelta(hours=30)], "closed_at": [t0 + pd.Timedelta(days=1), t0 +
    ...     pd.Timedelta(days=2)], "category": ["噪音", "噪音"], "street_code": ["S1", "S1"]})
    >>> case_timeliness(df)[["scope", "cases", "on_time_rate"]].values.tolist()
    [['street', 2, 0.5]]
    """
    scopes = dict(DEFAULT_SCOPES if scopes is None else scopes)
    out_cols = [
        "scope",
        "scope_id",
        "cases",
        "median_hours_to_respond",
        "median_hours_to_close",
        "on_time_rate",
        "repeat_rate",
        "due_cases",
        "respond_on_time_rate",
        "close_on_time_rate",
    ]
    if cases.empty:
        return pd.DataFrame(columns=out_cols)
    oc = case_outcomes(cases, **outcome_kw)
    oc["due_f"] = oc["due"].astype(float)
    frames = []
    for scope, col in scopes.items():
        if col not in cases:
            continue
        codes, labels = _factorize(cases, col)
        sel = codes >= 0
        if not sel.any():
            continue
        g = oc[sel].groupby(codes[sel], sort=False)
        agg = pd.DataFrame(
            {
                "cases": g.size(),
                "median_hours_to_respond": g["hours_to_respond"].median(),
                "median_hours_to_close": g["hours_to_close"].median(),
                "on_time_rate": g["on_time"].mean(),
                "repeat_rate": g["repeat"].mean(),
                "due_cases": g["due_f"].sum().astype(int),
                "respond_on_time_rate": g["respond_on_time"].mean(),
                "close_on_time_rate": g["close_on_time"].mean(),
            }
        )
        agg.insert(0, "scope_id", labels[agg.index.to_numpy()])
        agg.insert(0, "scope", scope)
        agg = agg.sort_values("scope_id", kind="stable")
        frames.append(agg[agg["cases"] >= min_cases])
    if not frames:
        return pd.DataFrame(columns=out_cols)
    return pd.concat(frames, ignore_index=True)[out_cols]
