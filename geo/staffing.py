"""Grid-worker workload, staffing, headcount allocation and worker performance.

Pure pandas/numpy; no DuckDB, no files. ``pipelines.stage_staffing`` feeds it tables and stores
what it returns. The model, every default and where each comes from are explained in
``docs/staffing.md``; in short:

1. :func:`unit_workload` — hours per month per grid (or community) from households, residents,
   renters, visits to vulnerable residents, incidents by category, special units and patrols.
   Every output row carries its components (``wl_*`` columns) and they add up to ``workload``.
2. :func:`assign_staff` / :func:`grid_staffing` — required staff = workload / one worker's
   monthly capacity; current staff from the ``staff`` table; gap = required − current.
3. :func:`allocate` (Art. 37) and :func:`allocate_nested` (Art. 42) — integer headcount per
   street (community) from a documented score, under a budget with minimums, with the divisor
   methods of :mod:`geo.apportion`; :func:`whatif` re-runs it with changes and lists what moved.
4. :func:`equity_summary`, :func:`extremes`, :func:`gini` — how evenly staff match need.
5. :func:`worker_performance` (Art. 28 绩效考核) — per-worker case figures with a Wilson
   interval and a small-numbers flag (:func:`worker_case_figures` then
   :func:`finish_performance`, which also scores figures aggregated elsewhere, e.g. in DuckDB).
6. :func:`split_forecast`, :func:`forecast_workload` (issue #11.5) — next month's predicted
   incidents per grid as hours (same minutes per incident as :func:`incident_hours`, the
   ``wl_incidents`` component), the change against today and in full-time workers.
"""
from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from geo.apportion import apportion, normalize_method
from geo.timeliness import case_outcomes

__all__ = [
    "COMPONENTS",
    "DEFAULTS",
    "FUNCTION_TYPES",
    "Allocation",
    "WORKER_FIGURES",
    "WhatIf",
    "allocate",
    "allocate_nested",
    "allocation_scores",
    "assign_staff",
    "deep_merge",
    "empty_worker_figures",
    "equity_summary",
    "extremes",
    "fill_function_type",
    "finish_performance",
    "forecast_workload",
    "gap_explanation",
    "gap_notes",
    "gini",
    "grid_staffing",
    "headcount",
    "incident_hours",
    "lookup_by_category",
    "monthly_capacity",
    "split_forecast",
    "unit_workload",
    "whatif",
    "wilson_interval",
    "worker_case_figures",
    "worker_performance",
    "workload_carried",
]

#: 功能定位 of a street in the data contract.
FUNCTION_TYPES = (
    "core_commercial",
    "old_town",
    "residential",
    "new_development",
    "industrial",
    "urban_rural_fringe",
)

#: Workload components, in hours per month; ``workload`` is their sum.
COMPONENTS = (
    "wl_households",
    "wl_residents",
    "wl_renters",
    "wl_elderly_alone",
    "wl_disabled",
    "wl_low_income",
    "wl_incidents",
    "wl_special_units",
    "wl_patrol",
)

# Every default below is either taken from a named source or marked ASSUMPTION: a round figure
# from common local practice, to calibrate against the district's own time-use records.
# docs/staffing.md repeats the table with the reasoning.
DEFAULTS: dict[str, Any] = {
    "capacity": {
        # 250 working days a year / 12 (人社部发〔2008〕3号, 全年月平均工作天数 20.83 天).
        "working_days_per_month": 20.83,
        # ASSUMPTION: of an 8-hour day, ~2 h go to records, the grid app, meetings, training.
        "field_hours_per_day": 6.0,
        # ASSUMPTION: a part-time (兼职) grid worker gives half a full-timer's field time.
        "part_time_fte": 0.5,
    },
    "workload": {
        # Hohhot 2020 census: average family household size 2.3 (hohhot_census2020_districts.csv);
        # fills residents where a building gives households only.
        "persons_per_household": 2.3,
        # ASSUMPTION: every household visited (入户走访) once a quarter, 15 minutes a visit.
        "household_visits_per_month": 1 / 3,
        "household_visit_minutes": 15.0,
        # ASSUMPTION: population information upkeep (人口信息采集/更新), 1 min per resident a month.
        "resident_minutes_per_month": 1.0,
        # ASSUMPTION: renter households (出租房屋/流动人口) need registration checks, 10 min a month.
        "renter_minutes_per_month": 10.0,
        # Visits to vulnerable residents: visits per month x minutes per visit.
        # elderly_alone: national guidance on visiting elderly people in special difficulty
        # (特殊困难老年人探访关爱服务, 民政部等) aims at regular, at least monthly, visits; the
        # figure used, 2 visits x 20 min, is ASSUMED.
        # disabled, low_income (低保): monthly follow-up ASSUMED, 20 min.
        "visits": {
            "elderly_alone": {"per_month": 2.0, "minutes": 20.0},
            "disabled": {"per_month": 1.0, "minutes": 20.0},
            "low_income": {"per_month": 1.0, "minutes": 20.0},
        },
        # ASSUMPTION: minutes of a grid worker's own time per incident, by category (first the
        # exact name, then the longest key the category contains, then "default").
        "incident_minutes": {
            "default": 60.0,
            "dispute": 120.0, "纠纷": 120.0, "mediation": 120.0, "调解": 120.0,
            "safety": 90.0, "hazard": 90.0, "安全": 90.0, "隐患": 90.0,
            "fire": 120.0, "消防": 120.0, "emergency": 180.0, "应急": 180.0, "紧急": 180.0,
            "public_order": 60.0, "治安": 60.0,
            "sanitation": 45.0, "environment": 45.0, "环境": 45.0, "卫生": 45.0,
            "garbage": 30.0, "垃圾": 30.0, "noise": 45.0, "噪音": 45.0,
            "parking": 30.0, "traffic": 30.0, "停车": 30.0, "交通": 30.0,
            "illegal_construction": 120.0, "违建": 120.0, "违法建设": 120.0,
            "property": 60.0, "物业": 60.0, "housing": 60.0, "住房": 60.0,
            "water": 45.0, "供水": 45.0, "power": 45.0, "electricity": 45.0, "供电": 45.0,
            "gas": 60.0, "燃气": 60.0, "heating": 45.0, "供热": 45.0, "供暖": 45.0,
            "telecom": 30.0, "通信": 30.0,
            "elderly": 60.0, "养老": 60.0, "assistance": 60.0, "救助": 60.0,
        },
        # ASSUMPTION: incident severity 1-5 scales its handling time (3 = as listed above).
        "severity_factor": {"1": 0.6, "2": 0.8, "3": 1.0, "4": 1.3, "5": 1.6},
        # ASSUMPTION: hours a month of safety inspection and liaison per special unit, by type.
        "special_unit_hours": {
            "school": 4.0, "hospital": 4.0, "government": 2.0, "industrial_park": 6.0,
            "market": 6.0, "commercial_building": 4.0, "enterprise": 2.0, "other": 2.0,
        },
        # Households living in a special unit (dormitories), minutes a month each — set 0 if the
        # buildings layer already holds them. ASSUMPTION: same as a routine household visit.
        "special_unit_household_minutes": 5.0,
        # Patrol (巡查): road length = area x road density; hours = patrols x length / speed.
        # Urban road density 8 km/km²: the national target for built-up areas (中共中央 国务院
        # 《关于进一步加强城市规划建设管理工作的若干意见》, 2016). ASSUMED: a patrol every working
        # day, walking at 4 km/h. Rural: 2 km/km², 8 patrols a month by e-bike at 15 km/h, ASSUMED.
        "patrol": {
            "urban": {"road_km_per_km2": 8.0, "patrols_per_month": 20.83, "speed_kmh": 4.0},
            "rural": {"road_km_per_km2": 2.0, "patrols_per_month": 8.0, "speed_kmh": 15.0},
        },
    },
    "score": {
        # Art. 37 names functional positioning, area and population; we add workload, which
        # carries the rest of the need. ASSUMPTION: weights of the three shares.
        "weights": {"workload": 0.6, "residents": 0.25, "area": 0.15},
        # ASSUMPTION: area enters as area**0.5 so that large fringe streets do not swamp the
        # score (patrol time is already in workload).
        "area_exponent": 0.5,
        # ASSUMPTION: multiplier per 功能定位, to calibrate with the district's own judgement.
        "function_multipliers": {
            "core_commercial": 1.15,  # floating population, commercial complaints
            "old_town": 1.15,  # old housing, many elderly, narrow lanes
            "residential": 1.0,
            "new_development": 0.95,  # newer estates with property management
            "industrial": 0.9,  # few residents, enterprises partly self-managed
            "urban_rural_fringe": 1.1,  # mixed tenure, renters, illegal-building risk
        },
        "default_function_type": "residential",
    },
    "performance": {
        "small_n": 20,  # ASSUMPTION: with fewer cases a rate says little; flagged, not hidden
        "confidence": 0.95,  # of the Wilson interval around the on-time rate
        # Deadlines and the on-time rule are those of case timeliness (geo.timeliness,
        # settings [hotspots.timeliness]) so that both tables agree.
    },
}


def deep_merge(base: Mapping, override: Mapping | None) -> dict:
    """Return a copy of ``base`` with ``override`` merged in, nested dicts merged key by key.

    Examples
    --------
    >>> deep_merge({"a": {"x": 1, "y": 2}}, {"a": {"y": 3}})
    {'a': {'x': 1, 'y': 3}}
    """
    out = copy.deepcopy(dict(base))
    for key, value in (override or {}).items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def monthly_capacity(params: Mapping | None = None) -> float:
    """Field hours one full-time grid worker gives in a month (default 20.83 × 6 = 125 h)."""
    cap = deep_merge(DEFAULTS, params)["capacity"]
    return float(cap["working_days_per_month"]) * float(cap["field_hours_per_day"])


def lookup_by_category(categories: pd.Series, table: Mapping[str, float]) -> pd.Series:
    """Look a value up per category: exact name, else the longest key it contains, else default.

    Matching ignores case and surrounding blanks, so ``"12345_Heating"`` finds ``heating`` and
    ``"邻里纠纷"`` finds ``纠纷``.

    Examples
    --------
    >>> lookup_by_category(pd.Series(["Dispute", "12345_heating", "x"]),
    ...                    {"default": 1, "dispute": 2, "heating": 3}).tolist()
    [2.0, 3.0, 1.0]
    """
    table = {str(k).strip().lower(): float(v) for k, v in table.items()}
    default = table.get("default", 0.0)
    keys = sorted((k for k in table if k != "default"), key=len, reverse=True)

    def one(cat: object) -> float:
        if cat is None or (isinstance(cat, float) and math.isnan(cat)):
            return default
        c = str(cat).strip().lower()
        if c in table:
            return table[c]
        return next((table[k] for k in keys if k in c), default)

    uniques = pd.unique(categories.astype(object))
    mapping = {u: one(u) for u in uniques}
    return categories.astype(object).map(mapping).astype(float)


def _num(frame: pd.DataFrame, col: str, default: float = 0.0) -> pd.Series:
    if col not in frame.columns:
        return pd.Series(default, index=frame.index, dtype=float)
    return pd.to_numeric(frame[col], errors="coerce").astype(float).fillna(default)


def unit_workload(
    units: pd.DataFrame,
    *,
    incidents: pd.DataFrame | None = None,
    special_units: pd.DataFrame | None = None,
    months: float = 1.0,
    params: Mapping | None = None,
    id_col: str = "grid_id",
) -> pd.DataFrame:
    """Workload in hours per month per unit (grid or community), with its components.

    Parameters
    ----------
    units
        One row per unit: ``id_col`` and any of ``households``, ``residents`` (missing values
        are ``households × persons_per_household``), ``renters``, ``elderly_alone``,
        ``disabled``, ``low_income``, ``area_km2``, ``kind`` (``urban``/``rural``; default
        urban). Absent columns count as zero.
    incidents
        One row per incident, or per group with an ``n`` column: ``id_col``, ``category``,
        optional ``service_type`` (looked up together with the category) and ``severity``
        (1–5, default 3). Rows whose unit is not in ``units`` are ignored.
    special_units
        ``id_col``, ``unit_type``, optional ``households``.
    months
        Months the incident records span; incident hours are divided by it.
    params
        Overrides of :data:`DEFAULTS` (the whole dict or just ``{"workload": {...}}``).
    id_col
        Unit id column.

    Returns
    -------
    pandas.DataFrame
        On the index of ``units``: the :data:`COMPONENTS` columns and ``workload``, their sum.

    Examples
    --------
    >>> units = pd.DataFrame({"grid_id": ["a"], "households": [300], "area_km2": [0.0]})
    >>> wl = unit_workload(units)
    >>> round(float(wl.loc[0, "wl_households"]), 6), round(float(wl.loc[0, "workload"]), 1)
    (25.0, 36.5)
    """
    p = deep_merge(DEFAULTS, params)["workload"]
    if months <= 0:
        raise ValueError(f"months must be positive; got {months}.")
    out = pd.DataFrame(index=units.index)
    hh = _num(units, "households")
    residents = (
        pd.to_numeric(units["residents"], errors="coerce").astype(float)
        if "residents" in units.columns
        else pd.Series(np.nan, index=units.index)
    )
    residents = residents.fillna(hh * float(p["persons_per_household"]))
    out["wl_households"] = hh * p["household_visits_per_month"] * p["household_visit_minutes"] / 60
    out["wl_residents"] = residents * p["resident_minutes_per_month"] / 60
    out["wl_renters"] = _num(units, "renters") * p["renter_minutes_per_month"] / 60
    for group in ("elderly_alone", "disabled", "low_income"):
        v = p["visits"][group]
        out[f"wl_{group}"] = _num(units, group) * v["per_month"] * v["minutes"] / 60

    ids = units[id_col]
    out["wl_incidents"] = 0.0
    if incidents is not None and len(incidents):
        hours = incident_hours(incidents, months=months, params=params, id_col=id_col)
        out["wl_incidents"] = ids.map(hours).fillna(0.0).astype(float).values

    out["wl_special_units"] = 0.0
    if special_units is not None and len(special_units):
        su = special_units
        types = su["unit_type"].astype(object).where(su["unit_type"].notna(), "other")
        per_type = {str(k): float(v) for k, v in p["special_unit_hours"].items()}
        base = types.map(lambda t: per_type.get(str(t).strip().lower(), per_type.get("other", 0.0)))
        per_household = p["special_unit_household_minutes"] / 60
        hours = base.astype(float) + _num(su, "households") * per_household
        hours = hours.groupby(su[id_col].values).sum()
        out["wl_special_units"] = ids.map(hours).fillna(0.0).astype(float).values

    kind = (
        units["kind"].astype(object).fillna("urban").astype(str).str.strip().str.lower()
        if "kind" in units.columns
        else pd.Series("urban", index=units.index)
    )
    patrol = {str(k).lower(): cfg for k, cfg in p["patrol"].items()}

    def hours_per_km2(k: str) -> float:  # an unknown kind patrols like an urban one
        cfg = patrol.get(k, patrol["urban"])
        return cfg["road_km_per_km2"] * cfg["patrols_per_month"] / cfg["speed_kmh"]

    out["wl_patrol"] = _num(units, "area_km2").clip(lower=0) * kind.map(hours_per_km2).astype(float)
    out["workload"] = out[list(COMPONENTS)].sum(axis=1)
    return out


def incident_hours(
    incidents: pd.DataFrame,
    *,
    months: float = 1.0,
    params: Mapping | None = None,
    id_col: str = "grid_id",
    count_col: str = "n",
) -> pd.Series:
    """Hours per month of a grid worker's own time to handle ``incidents``, per unit.

    ``hours = Σ count × minutes(category [+ service_type]) × severity factor / 60 / months``
    with ``[workload] incident_minutes`` and ``severity_factor`` (the ``wl_incidents`` component
    of :func:`unit_workload`). ``count_col`` (default ``n``; 1 per row when absent) may be
    fractional: predicted incidents give predicted hours.

    Examples
    --------
    >>> inc = pd.DataFrame({"grid_id": ["a", "a", "b"], "category": ["dispute", "x", "garbage"],
    ...                     "n": [3, 1, 2.5]})
    >>> incident_hours(inc).round(2).to_dict()  # 3 x 120 + 1 x 60 min; 2.5 x 30 min
    {'a': 7.0, 'b': 1.25}
    """
    p = deep_merge(DEFAULTS, params)["workload"]
    if months <= 0:
        raise ValueError(f"months must be positive; got {months}.")
    if incidents is None or not len(incidents):
        return pd.Series(dtype=float)
    inc = incidents
    n = _num(inc, count_col, 1.0)
    sev = _num(inc, "severity", 3.0).round().clip(1, 5).astype(int).astype(str)
    factor = sev.map({str(k): float(v) for k, v in p["severity_factor"].items()}).fillna(1.0)
    text = inc["category"].astype(object)
    if "service_type" in inc.columns:  # 12345 complaints: the service type says more
        service = inc["service_type"].astype(object)
        text = text.where(service.isna(), text.fillna("").astype(str) + " " + service.astype(str))
    minutes = lookup_by_category(text, p["incident_minutes"])
    return (n * minutes * factor / 60 / months).groupby(inc[id_col].values).sum()


#: Columns that describe an incident's handling time (its "mix").
MIX_COLUMNS = ("category", "service_type", "severity")


def split_forecast(
    predicted: pd.DataFrame, history: pd.DataFrame, *, id_col: str = "grid_id",
    predicted_col: str = "predicted",
) -> pd.DataFrame:
    """Spread each unit's predicted incident count over its own recent mix of incidents.

    ``predicted``: ``id_col`` and ``predicted_col`` (incidents expected next month, all
    categories). ``history``: ``id_col``, ``category`` (optional ``service_type``,
    ``severity``) and ``n`` (incidents of the recent window, e.g. the staffing window). A unit's
    forecast is split in proportion to its own rows of ``history``; a unit without history
    takes the city's mix. Returns one row per unit × mix with ``predicted`` (summing back to each
    unit's forecast), ready for :func:`incident_hours` with ``count_col="predicted"``.

    Examples
    --------
    >>> pred = pd.DataFrame({"grid_id": ["a", "b"], "predicted": [4.0, 2.0]})
    >>> hist = pd.DataFrame({"grid_id": ["a", "a"], "category": ["dispute", "garbage"],
    ...                      "n": [3, 1]})
    >>> split_forecast(pred, hist)[["grid_id", "category", "predicted"]].values.tolist()
    [['a', 'dispute', 3.0], ['a', 'garbage', 1.0], ['b', 'dispute', 1.5], ['b', 'garbage', 0.5]]
    """
    mix = [c for c in MIX_COLUMNS if c in history.columns]
    cols = [id_col, *mix, "predicted"]
    pred = predicted[[id_col, predicted_col]].rename(columns={predicted_col: "predicted"})
    pred = pred.assign(predicted=pd.to_numeric(pred["predicted"], errors="coerce")
                       .astype(float).fillna(0.0))
    if pred.empty:
        return pd.DataFrame(columns=cols)
    hist = history[[id_col, *mix]].assign(n=_num(history, "n", 1.0))
    hist = hist[hist["n"] > 0]
    if hist.empty:  # nothing to learn a mix from: every incident at the default time
        return pred.assign(category=None)[[id_col, "category", "predicted"]]
    key = [c for c in mix]
    own = hist.groupby([id_col, *key], dropna=False, sort=True)["n"].sum().reset_index()
    own["share"] = own["n"] / own.groupby(id_col)["n"].transform("sum")
    city = hist.groupby(key, dropna=False, sort=True)["n"].sum().reset_index()
    city["share"] = city["n"] / city["n"].sum()
    with_own = pred[pred[id_col].isin(set(own[id_col]))]
    without = pred[~pred[id_col].isin(set(own[id_col]))]
    a = with_own.merge(own[[id_col, *key, "share"]], on=id_col, how="left")
    b = without.merge(city[[*key, "share"]], how="cross")
    out = pd.concat([x for x in (a, b) if len(x)], ignore_index=True)
    out["predicted"] = out["predicted"] * out["share"]
    return out.sort_values([id_col, *key], kind="stable").reset_index(drop=True)[cols]


def forecast_workload(
    predicted: pd.DataFrame,
    *,
    current_hours: pd.Series | None = None,
    params: Mapping | None = None,
    id_col: str = "grid_id",
) -> pd.DataFrame:
    """Next month's predicted incidents as a workload what-if in hours, per unit.

    ``predicted``: one row per unit × mix (``id_col``, ``category``, optional ``service_type``,
    ``severity``) with ``predicted`` incidents, e.g. from :func:`split_forecast`.
    ``current_hours``: today's incident hours per month per unit (the ``wl_incidents`` of
    :func:`unit_workload`), indexed by unit id.

    Returns one row per unit of ``predicted``: ``predicted_incidents``, ``predicted_hours``
    (:func:`incident_hours` of the predicted counts, same minutes and severity factors),
    ``current_hours``, ``delta_hours = predicted_hours − current_hours`` and
    ``required_fte_delta = delta_hours / monthly_capacity`` (full-time workers more (+) or less
    (−) needed next month for incidents alone).

    Examples
    --------
    >>> pred = pd.DataFrame({"grid_id": ["a", "a"], "category": ["dispute", "garbage"],
    ...                      "predicted": [3.0, 2.0]})
    >>> fw = forecast_workload(pred, current_hours=pd.Series({"a": 5.0}))
    >>> fw[["predicted_incidents", "predicted_hours", "delta_hours"]].values.tolist()
    [[5.0, 7.0, 2.0]]
    """
    cols = [id_col, "predicted_incidents", "predicted_hours", "current_hours", "delta_hours",
            "required_fte_delta"]
    if predicted is None or predicted.empty:
        return pd.DataFrame(columns=cols)
    ids = pd.Index(pd.unique(predicted[id_col].astype(object)), name=id_col)
    count = _num(predicted, "predicted").groupby(predicted[id_col].values).sum()
    hours = incident_hours(predicted, params=params, id_col=id_col, count_col="predicted")
    out = pd.DataFrame({id_col: ids})
    out["predicted_incidents"] = out[id_col].map(count).fillna(0.0).astype(float)
    out["predicted_hours"] = out[id_col].map(hours).fillna(0.0).astype(float)
    cur = current_hours if current_hours is not None else pd.Series(dtype=float)
    out["current_hours"] = out[id_col].map(cur).fillna(0.0).astype(float)
    out["delta_hours"] = out["predicted_hours"] - out["current_hours"]
    out["required_fte_delta"] = out["delta_hours"] / monthly_capacity(params)
    return out[cols]


def _isin(x: pd.Series, values: Any) -> pd.Series:
    """``x.isin(values)`` via object arrays (pandas' Arrow-string ``isin`` is ~20x slower)."""
    obj = pd.Series(np.asarray(x, dtype=object), index=x.index, dtype=object)
    return obj.isin(np.asarray(pd.Series(values).dropna(), dtype=object))


def _integral(x: pd.Series) -> pd.Series:
    """Headcounts as int64 when they are whole numbers (FTE figures stay float)."""
    return x.astype(np.int64) if bool((x % 1 == 0).all()) else x


def _shares(frame: pd.DataFrame, group: str, weight: str) -> pd.Series:
    """Each row's share of ``weight`` within its ``group`` (equal shares when the total is 0)."""
    w = frame[weight].astype(float).clip(lower=0)
    total = w.groupby(frame[group]).transform("sum")
    count = w.groupby(frame[group]).transform("size")
    return pd.Series(np.where(total > 0, w / total.where(total > 0, 1.0), 1.0 / count), frame.index)


def assign_staff(
    staff: pd.DataFrame,
    units: pd.DataFrame,
    *,
    params: Mapping | None = None,
    id_col: str = "grid_id",
) -> pd.DataFrame:
    """Place each worker on units, as full-time equivalents (FTE).

    A worker whose ``grid_id`` is a unit works there. Otherwise their ``community_code`` (else
    their ``street_code``) is known and their FTE is split over that community's (street's)
    basic units in proportion to workload. Dedicated grids only take workers named on them:
    their people come from the unit itself. Part-time workers count ``part_time_fte``.

    Parameters
    ----------
    staff
        ``staff_id``, ``street_code``, optional ``grid_id``, ``community_code``, ``role``.
    units
        ``id_col``, ``community_code``, ``street_code``, ``workload``, optional ``grid_type``.

    Returns
    -------
    pandas.DataFrame
        ``staff_id``, ``id_col``, ``fte`` (this worker's FTE on this unit) and ``placed_by``
        (``grid``, ``community`` or ``street``). Workers that match nothing are left out.

    Examples
    --------
    >>> units = pd.DataFrame({"grid_id": ["g1", "g2"], "community_code": ["c", "c"],
    ...                       "street_code": ["s", "s"], "workload": [30.0, 10.0]})
    >>> staff = pd.DataFrame({"staff_id": ["w1"], "street_code": ["s"], "community_code": ["c"]})
    >>> assign_staff(staff, units)["fte"].tolist()
    [0.75, 0.25]
    """
    part_time = float(deep_merge(DEFAULTS, params)["capacity"]["part_time_fte"])
    cols = ["staff_id", id_col, "fte", "placed_by"]
    if staff is None or not len(staff):
        return pd.DataFrame(columns=cols)
    s = pd.DataFrame({"staff_id": staff["staff_id"].values}, index=staff.index)
    for c in ("grid_id", "community_code", "street_code"):
        s[c] = staff[c].astype(object).values if c in staff.columns else None
    role = staff["role"].astype(object) if "role" in staff.columns else pd.Series(None, staff.index)
    s["fte"] = np.where(role.astype(str).str.lower().str.strip() == "part_time", part_time, 1.0)

    u = units[[id_col, "community_code", "street_code", "workload"]].copy()
    u["grid_type"] = units["grid_type"].values if "grid_type" in units.columns else "basic"
    basic = u[u["grid_type"].astype(str) != "dedicated"]

    on_grid = _isin(s["grid_id"], u[id_col])
    parts = [
        pd.DataFrame(
            {"staff_id": s.loc[on_grid, "staff_id"], id_col: s.loc[on_grid, "grid_id"],
             "fte": s.loc[on_grid, "fte"], "placed_by": "grid"}
        )
    ]
    rest = s[~on_grid]
    for level in ("community_code", "street_code"):
        hit = _isin(rest[level], basic[level])
        if hit.any():
            pool = basic[[id_col, level, "workload"]].copy()
            pool["share"] = _shares(pool, level, "workload")
            m = rest.loc[hit, ["staff_id", level, "fte"]].merge(pool, on=level, how="inner")
            m["fte"] = m["fte"] * m["share"]
            m["placed_by"] = level.removesuffix("_code")
            parts.append(m[cols])
        rest = rest[~hit]
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)


def grid_staffing(
    units: pd.DataFrame,
    assignments: pd.DataFrame,
    *,
    params: Mapping | None = None,
    id_col: str = "grid_id",
) -> pd.DataFrame:
    """Required and current staff per unit, and the gap.

    ``required_staff = workload / monthly_capacity`` (FTE); ``current_staff`` is the FTE placed
    there by :func:`assign_staff`; ``gap = required_staff − current_staff`` (positive: short of
    staff). ``staff_source`` is ``unit`` for dedicated grids (staffed by the unit) and ``street``
    otherwise.

    Returns
    -------
    pandas.DataFrame
        ``units`` (same index) plus ``required_staff``, ``current_staff``, ``gap``,
        ``staff_source``, ``hours_per_current_staff``.
    """
    cap = monthly_capacity(params)
    out = units.copy()
    fte = assignments.groupby(id_col)["fte"].sum() if len(assignments) else pd.Series(dtype=float)
    out["required_staff"] = out["workload"].astype(float) / cap
    out["current_staff"] = out[id_col].map(fte).fillna(0.0).astype(float)
    out["gap"] = out["required_staff"] - out["current_staff"]
    gtype = out["grid_type"].astype(str) if "grid_type" in out.columns else pd.Series("", out.index)
    out["staff_source"] = np.where(gtype == "dedicated", "unit", "street")
    out["hours_per_current_staff"] = out["workload"] / out["current_staff"].where(
        out["current_staff"] > 0
    )
    return out


def workload_carried(
    assignments: pd.DataFrame, staffing: pd.DataFrame, *, id_col: str = "grid_id"
) -> pd.Series:
    """Hours per month each worker carries: their FTE share of each unit's workload, summed."""
    if not len(assignments):
        return pd.Series(dtype=float, name="workload_carried")
    u = staffing.set_index(id_col)
    a = assignments.copy()
    cur = a[id_col].map(u["current_staff"]).astype(float)
    a["carried"] = a["fte"] / cur.where(cur > 0) * a[id_col].map(u["workload"]).astype(float)
    return a.groupby("staff_id")["carried"].sum().rename("workload_carried")


# ---------------------------------------------------------------------------------------------
# Allocation (Art. 37 streets, Art. 42 communities)


def allocation_scores(
    units: pd.DataFrame,
    *,
    score: Mapping | None = None,
    group: str | None = None,
) -> pd.DataFrame:
    """The allocation score of each unit and its parts.

    ``score = function_multiplier × (w_workload·s_workload + w_residents·s_residents +
    w_area·s_area)``, where each ``s`` is the unit's share of the total within its ``group``
    (all units when ``group`` is None) and ``s_area`` uses ``area_km2 ** area_exponent``. A
    quantity that is zero everywhere in a group drops out and the other weights are rescaled.

    Returns
    -------
    pandas.DataFrame
        On the index of ``units``: ``function_multiplier``, ``score_workload``,
        ``score_residents``, ``score_area`` (weighted shares) and ``score``.

    Examples
    --------
    >>> units = pd.DataFrame({"workload": [300.0, 100.0], "residents": [1, 1], "area_km2": [1, 1],
    ...                       "function_type": ["old_town", "residential"]})
    >>> allocation_scores(units)["score"].round(4).tolist()
    [0.7475, 0.35]
    """
    sc = deep_merge(DEFAULTS["score"], score)
    weights = {k: float(v) for k, v in sc["weights"].items()}
    mult_table = {str(k): float(v) for k, v in sc["function_multipliers"].items()}
    default_type = sc["default_function_type"]
    ftype = (
        units["function_type"].astype(object).where(units["function_type"].notna(), default_type)
        if "function_type" in units.columns
        else pd.Series(default_type, index=units.index)
    )
    unknown = sorted({str(t) for t in ftype} - set(mult_table))
    if unknown:
        warnings.warn(
            f"unknown function_type {unknown}; multiplier 1.0 used (known: {sorted(mult_table)})",
            stacklevel=2,
        )
    mult = ftype.astype(str).map(mult_table).fillna(1.0).to_numpy(dtype=float)
    quantities = {
        "workload": _num(units, "workload").to_numpy(),
        "residents": _num(units, "residents").to_numpy(),
        "area": _num(units, "area_km2").clip(lower=0).to_numpy() ** float(sc["area_exponent"]),
    }
    codes = pd.factorize(units[group])[0] if group else np.zeros(len(units), dtype=np.int64)
    count = np.bincount(codes)[codes] if len(units) else np.zeros(0)
    totals = {k: np.bincount(codes, weights=q)[codes] if len(q) else q
              for k, q in quantities.items()}
    present = sum(weights.get(k, 0.0) * (totals[k] > 0) for k in quantities)
    cols: dict[str, np.ndarray] = {"function_multiplier": mult}
    with np.errstate(invalid="ignore", divide="ignore"):
        for k, q in quantities.items():
            w_eff = np.where(present > 0, weights.get(k, 0.0) / np.where(present > 0, present, 1), 0)
            share = np.where(totals[k] > 0, q / np.where(totals[k] > 0, totals[k], 1), 0.0)
            cols[f"score_{k}"] = w_eff * share
    base = cols["score_workload"] + cols["score_residents"] + cols["score_area"]
    base = np.where(present > 0, base, 1.0 / np.maximum(count, 1))  # nothing known: equal shares
    cols["score"] = mult * base
    return pd.DataFrame(cols, index=units.index)


def _equity_columns(t: pd.DataFrame) -> pd.DataFrame:
    """Staff per 10,000 residents, per km², per 1,000 workload hours; hours per head; gap rank."""
    def ratio(num: np.ndarray, den: np.ndarray, scale: float) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, num * scale / np.where(den > 0, den, 1), np.nan)

    res, area, wl = (t[c].to_numpy(dtype=float) for c in ("residents", "area_km2", "workload"))
    cols: dict[str, Any] = {}
    for who in ("current", "recommended"):
        staff = t[f"{who}_staff"].to_numpy(dtype=float)
        cols[f"{who}_per_10k_residents"] = ratio(staff, res, 10_000)
        cols[f"{who}_per_km2"] = ratio(staff, area, 1)
        cols[f"{who}_per_1k_hours"] = ratio(staff, wl, 1_000)
        cols[f"hours_per_{who}_staff"] = ratio(wl, staff, 1)
    gap = t["recommended_staff"].to_numpy() - t["current_staff"].to_numpy()
    cols["gap"] = gap
    cols["status"] = np.select([gap > 0, gap < 0], ["under", "over"], "balanced")
    rel = gap / np.maximum(t["recommended_staff"].to_numpy(dtype=float), 1)
    rank = np.empty(len(t), dtype=np.int64)
    rank[np.lexsort((-rel, -gap))] = np.arange(1, len(t) + 1)
    cols["gap_rank"] = rank  # 1 = furthest under-staffed, last = furthest over-staffed
    return pd.concat([t.drop(columns=[c for c in cols if c in t.columns]),
                      pd.DataFrame(cols, index=t.index)], axis=1)


@dataclass(frozen=True)
class Allocation:
    """An allocation: its ``table`` (one row per unit), the ``inputs`` and ``params`` behind it.

    Keep it to ask :func:`whatif` questions of it later.
    """

    table: pd.DataFrame
    inputs: pd.DataFrame
    params: dict = field(default_factory=dict)

    @property
    def recommended(self) -> pd.Series:
        """Recommended headcount indexed by unit id."""
        return self.table.set_index(self.params["id_col"])["recommended_staff"]


@dataclass(frozen=True)
class WhatIf:
    """Result of :func:`whatif`: the new allocation and the units whose headcount changed."""

    allocation: Allocation
    moved: pd.DataFrame

    @property
    def persons_moved(self) -> int:
        """People who would change street: the sum of the positive changes."""
        return int(self.moved["change"].clip(lower=0).sum())


def allocate(
    units: pd.DataFrame,
    budget: int | None = None,
    *,
    id_col: str = "street_code",
    minimum: int | Mapping = 1,
    method: str = "webster",
    score: Mapping | None = None,
) -> Allocation:
    """Recommend an integer headcount per unit (street) under a budget (Art. 37).

    Each unit's score (:func:`allocation_scores`) is apportioned with the divisor method
    ``method`` (:func:`geo.apportion.apportion`): the result is integer, sums exactly to
    ``budget``, gives every unit at least ``minimum`` and never lowers any unit when the budget
    rises.

    Parameters
    ----------
    units
        One row per unit: ``id_col``, ``workload``; optional ``function_type``, ``area_km2``,
        ``residents``, ``current_staff`` (headcount), ``required_staff``; other columns are
        kept.
    budget
        District headcount. ``None``: today's total ``current_staff`` (a re-distribution), or
        if nobody is recorded the rounded-up total ``required_staff``; raised to the minimums
        if below them.
    minimum
        Minimum per unit: a number, or a mapping unit id → number (others get 0).
    method
        ``"webster"`` (default) or ``"huntington_hill"``.
    score
        Overrides of ``DEFAULTS["score"]``.

    Returns
    -------
    Allocation
        ``table`` holds the inputs, the score parts, ``recommended_staff``, ``gap =
        recommended − current`` (positive: short of staff), ``status``, ``gap_rank`` and the
        equity columns ``{current,recommended}_per_10k_residents``, ``_per_km2``,
        ``_per_1k_hours`` and ``hours_per_{current,recommended}_staff``.

    Raises
    ------
    geo.apportion.BudgetTooSmall
        An explicit budget below the sum of the minimums (message in Chinese and English).

    Examples
    --------
    >>> streets = pd.DataFrame({"street_code": ["a", "b"], "workload": [320.0, 80.0],
    ...                         "current_staff": [5, 5]})
    >>> allocate(streets, 10, score={"weights": {"residents": 0, "area": 0}}).recommended.tolist()
    [8, 2]
    """
    method = normalize_method(method)
    t = units.reset_index(drop=True).copy()
    if id_col not in t.columns or "workload" not in t.columns:
        raise KeyError(f"units need columns {id_col!r} and 'workload'; got {list(t.columns)}")
    if t[id_col].duplicated().any():
        dup = t.loc[t[id_col].duplicated(), id_col].tolist()[:5]
        raise ValueError(f"duplicate {id_col}: {dup}")
    for c in ("current_staff", "residents", "area_km2"):
        t[c] = _num(t, c)
    t["current_staff"] = _integral(t["current_staff"])
    mins = (
        t[id_col].map(minimum).fillna(0).astype(int).values
        if isinstance(minimum, Mapping)
        else np.full(len(t), int(minimum), dtype=np.int64)
    )
    if budget is None:
        budget = round(float(t["current_staff"].sum()))
        if budget == 0 and "required_staff" in t.columns:
            budget = math.ceil(float(_num(t, "required_staff").sum()))
        if budget < mins.sum():
            warnings.warn(
                f"derived budget {budget} is below the minimums; using {int(mins.sum())}",
                stacklevel=2,
            )
            budget = int(mins.sum())
    scores = allocation_scores(t, score=score)
    t = t.join(scores)
    t["recommended_staff"] = apportion(t["score"].values, int(budget), minimum=mins, method=method)
    t = _equity_columns(t)
    params = {
        "id_col": id_col, "budget": int(budget), "minimum": minimum,
        "method": method, "score": deep_merge(DEFAULTS["score"], score),
    }
    inputs = units.reset_index(drop=True).copy()
    return Allocation(table=t, inputs=inputs, params=params)


_WHATIF_KEYS = ("budget", "minimum", "method", "weights", "function_multipliers",
                "area_exponent", "function_type", "workload")


def whatif(base: Allocation, **changes: Any) -> WhatIf:
    """Re-run an allocation with some inputs changed and list the units whose headcount moved.

    Parameters
    ----------
    base
        An allocation from :func:`allocate`.
    **changes
        Any of ``budget``, ``minimum``, ``method``, ``weights`` (partial dict of score weights),
        ``function_multipliers`` (partial dict), ``area_exponent``, ``function_type``
        (mapping unit id → new 功能定位), ``workload`` (mapping unit id → hours per month).

    Returns
    -------
    WhatIf
        ``allocation`` and ``moved``: ``id``, ``before``, ``after``, ``change`` for units whose
        recommended headcount changed, largest gain first.

    Examples
    --------
    >>> streets = pd.DataFrame({"street_code": ["a", "b"], "workload": [320.0, 80.0]})
    >>> w = whatif(allocate(streets, 10), budget=13)
    >>> w.moved[["street_code", "before", "after"]].values.tolist()
    [['a', 8, 10], ['b', 2, 3]]
    """
    bad = sorted(set(changes) - set(_WHATIF_KEYS))
    if bad:
        raise TypeError(f"whatif() got unknown changes {bad}; valid: {list(_WHATIF_KEYS)}")
    p = base.params
    id_col = p["id_col"]
    inputs = base.inputs.copy()
    for col in ("function_type", "workload"):
        if col in changes:
            new = inputs[id_col].map(changes[col])
            inputs[col] = new.where(new.notna(), inputs.get(col)) if col in inputs else new
    score = copy.deepcopy(p["score"])
    for key in ("weights", "function_multipliers"):
        if key in changes:
            score[key] = {**score[key], **changes[key]}
    if "area_exponent" in changes:
        score["area_exponent"] = changes["area_exponent"]
    # A budget that was derived (not given) is kept as the number it came to.
    new = allocate(
        inputs,
        changes.get("budget", p["budget"]),
        id_col=id_col,
        minimum=changes.get("minimum", p["minimum"]),
        method=changes.get("method", p["method"]),
        score=score,
    )
    before = base.recommended
    after = new.recommended
    moved = pd.DataFrame({"before": before, "after": after}).rename_axis(id_col).reset_index()
    moved["change"] = moved["after"] - moved["before"]
    moved = moved[moved["change"] != 0].sort_values(["change", id_col], ascending=[False, True])
    return WhatIf(allocation=new, moved=moved.reset_index(drop=True))


def allocate_nested(
    units: pd.DataFrame,
    budgets: Mapping[str, int],
    *,
    parent_col: str = "street_code",
    id_col: str = "community_code",
    minimum: int = 1,
    method: str = "webster",
    score: Mapping | None = None,
) -> pd.DataFrame:
    """Split each parent's headcount among its children (Art. 42: communities of a street).

    Scores are computed within each parent (function type is the parent's, so it cancels).
    A parent whose budget cannot give every child ``minimum`` fills the minimums round by
    round, heaviest child first, as far as it goes (``apportion(strict=False)``), so raising a
    street's headcount still never lowers a community's.

    Returns
    -------
    pandas.DataFrame
        ``units`` plus the score parts, ``recommended_staff``, ``gap``, ``status``, ``gap_rank``
        (within the whole table) and the same equity columns as :func:`allocate`.
    """
    method = normalize_method(method)
    t = units.reset_index(drop=True).copy()
    for c in ("current_staff", "residents", "area_km2", "workload"):
        t[c] = _num(t, c)
    t["current_staff"] = _integral(t["current_staff"])
    t = t.join(allocation_scores(t, score=score, group=parent_col))
    score_values = t["score"].to_numpy()
    rec = np.zeros(len(t), dtype=np.int64)
    for parent, idx in t.groupby(parent_col, sort=False).indices.items():
        seats = int(budgets.get(parent, 0))
        rec[idx] = apportion(score_values[idx], seats, minimum=minimum, method=method, strict=False)
    t["recommended_staff"] = rec
    return _equity_columns(t)


# ---------------------------------------------------------------------------------------------
# Equity


def gini(values: Any, weights: Any = None) -> float:
    """Gini coefficient of ``values`` (optionally weighted): 0 equal, towards 1 concentrated.

    Computed from the Lorenz curve, ``G = 1 − Σ (p_i − p_{i−1}) (L_i + L_{i−1})`` over values
    sorted ascending; NaN entries are dropped; NaN when nothing is left or the total is 0.

    Examples
    --------
    >>> gini([1, 1, 1, 1]), gini([0, 0, 0, 1])
    (0.0, 0.75)
    """
    x = np.asarray(values, dtype=float)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
    ok = np.isfinite(x) & np.isfinite(w) & (w > 0)
    x, w = x[ok], w[ok]
    if len(x) == 0 or np.sum(w * x) <= 0:
        return float("nan")
    o = np.argsort(x, kind="stable")
    x, w = x[o], w[o]
    p = np.concatenate([[0.0], np.cumsum(w) / w.sum()])
    lorenz = np.concatenate([[0.0], np.cumsum(w * x) / np.sum(w * x)])
    return float(max(0.0, 1.0 - np.sum(np.diff(p) * (lorenz[1:] + lorenz[:-1]))))


def equity_summary(table: pd.DataFrame, *, level: str = "street") -> pd.DataFrame:
    """Equity figures of an allocation table, today's staff against the recommendation.

    Rows (``metric``): ``gini_staff_per_workload`` (Lorenz curve of staff against workload —
    each unit weighted by its workload), ``gini_staff_per_resident`` (weighted by residents),
    ``staff_per_10k_residents``, ``staff_per_1k_hours``, ``max_min_hours_per_staff`` (the most
    over-worked unit's hours per head over the least's), ``units_under`` and ``units_over``.

    Returns
    -------
    pandas.DataFrame
        ``level``, ``metric``, ``current``, ``recommended``.
    """
    rows = []
    res = table["residents"].astype(float)
    wl = table["workload"].astype(float)
    figures: dict[str, dict[str, float]] = {}
    for who in ("current", "recommended"):
        staff = table[f"{who}_staff"].astype(float)
        hours = table[f"hours_per_{who}_staff"].astype(float)
        hours = hours[np.isfinite(hours)]
        figures[who] = {
            "gini_staff_per_workload": gini(staff / wl.where(wl > 0), wl),
            "gini_staff_per_resident": gini(staff / res.where(res > 0), res),
            "staff_per_10k_residents": staff.sum() * 1e4 / res.sum() if res.sum() else np.nan,
            "staff_per_1k_hours": staff.sum() * 1e3 / wl.sum() if wl.sum() else np.nan,
            "max_min_hours_per_staff": (
                hours.max() / hours.min() if len(hours) and hours.min() > 0 else np.nan
            ),
        }
    under = int((table["gap"] > 0).sum())
    over = int((table["gap"] < 0).sum())
    for metric in figures["current"]:
        rows.append((level, metric, figures["current"][metric], figures["recommended"][metric]))
    rows.append((level, "units_under", under, np.nan))
    rows.append((level, "units_over", over, np.nan))
    return pd.DataFrame(rows, columns=["level", "metric", "current", "recommended"])


def extremes(table: pd.DataFrame, *, id_col: str = "street_code", n: int = 3) -> dict:
    """The ``n`` furthest under-staffed and over-staffed units (by ``gap``), as id lists."""
    t = table.sort_values("gap_rank")
    under = t[t["gap"] > 0][id_col].head(n).tolist()
    over = t[t["gap"] < 0][id_col].iloc[::-1].head(n).tolist()
    return {"under": under, "over": over}


def fill_function_type(
    streets: pd.DataFrame, *, default: str | None = None
) -> pd.DataFrame:
    """Fill a missing or empty ``function_type`` with the stated default, and say so.

    A street without 功能定位 counts as ``DEFAULTS["score"]["default_function_type"]``
    (``residential``, multiplier 1.0) unless ``default`` is given. The copy returned has a
    text ``function_type`` (never NA) and a boolean ``function_type_assumed`` that is True where
    the default was used, so pages and reports can show it was not in the data.

    Examples
    --------
    >>> fill_function_type(pd.DataFrame({"street_code": ["a", "b"],
    ...                                  "function_type": ["old_town", None]})).values.tolist()
    [['a', 'old_town', False], ['b', 'residential', True]]
    """
    default = default or DEFAULTS["score"]["default_function_type"]
    out = streets.copy()
    raw = (
        out["function_type"].astype(object)
        if "function_type" in out.columns
        else pd.Series(None, index=out.index, dtype=object)
    )
    text = raw.map(lambda v: None if v is None or (not isinstance(v, str) and pd.isna(v))
                   else (str(v).strip() or None))
    out["function_type_assumed"] = text.isna().astype(bool)
    out["function_type"] = text.where(text.notna(), default).astype(str)
    return out


def headcount(fte: Any) -> np.ndarray:
    """Whole people needed for a full-time-equivalent figure: FTE rounded up (1e-9 tolerance).

    Examples
    --------
    >>> headcount([0.0, 1.0, 1.2, 7.99]).tolist()
    [0, 1, 2, 8]
    """
    x = np.nan_to_num(np.asarray(fte, dtype=float), nan=0.0)
    return np.ceil(np.maximum(x, 0.0) - 1e-9).astype(np.int64)


def gap_explanation(
    table: pd.DataFrame,
    *,
    budget: int,
    required_fte: float,
    capacity_hours: float | None = None,
    name_col: str = "street_name",
    level: str = "street",
) -> dict[str, Any]:
    """Why units are short of staff when the total is not: figures and a sentence, zh and en.

    ``gap = recommended − current`` per unit. Summed over units, shortfalls minus surpluses
    equal ``budget − current``; so when the budget covers today's headcount, every person short
    in one street is matched by a person over in another (or by new posts): the gap is one of
    distribution, not of the total. The sentence says which case holds, with whole people.

    Parameters
    ----------
    table
        Allocation table (:func:`allocate`): ``current_staff``, ``recommended_staff``, ``gap``,
        optional ``name_col`` for naming the furthest under-staffed units.
    budget
        District headcount shared out.
    required_fte
        Total required full-time equivalents (workload ÷ monthly capacity).
    capacity_hours
        One worker's monthly field hours, quoted in the sentence (default: :func:`monthly_capacity`).
    level
        ``street`` or ``community``: the word used for a unit in the sentence.

    Returns
    -------
    dict
        ``budget``, ``current_staff``, ``required_people`` (whole people), ``units``,
        ``units_under``, ``units_over``, ``units_balanced``, ``people_short``, ``people_over``,
        ``movable`` (people who could move from over- to under-staffed units),
        ``new_posts`` (budget − current), ``cause`` (``distribution``, ``total``, ``both``,
        ``none``), ``explanation_zh``, ``explanation_en``.

    Examples
    --------
    >>> t = pd.DataFrame({"current_staff": [5, 5], "recommended_staff": [8, 2], "gap": [3, -3]})
    >>> e = gap_explanation(t, budget=10, required_fte=7.2)
    >>> e["cause"], e["people_short"], e["movable"], e["required_people"]
    ('distribution', 3, 3, 8)
    """
    cap = float(capacity_hours) if capacity_hours else monthly_capacity()
    gap = pd.to_numeric(table["gap"], errors="coerce").fillna(0).round().astype(np.int64)
    current = int(pd.to_numeric(table["current_staff"], errors="coerce").fillna(0).round().sum())
    short = int(gap.clip(lower=0).sum())
    over = int((-gap).clip(lower=0).sum())
    n, n_under, n_over = len(table), int((gap > 0).sum()), int((gap < 0).sum())
    required = int(headcount([required_fte])[0])
    movable = min(short, over)
    new_posts = int(budget) - current
    if short == 0:
        cause = "none"
    elif over == 0:
        cause = "total"
    elif new_posts > 0:
        cause = "both"
    else:
        cause = "distribution"
    worst = []
    if name_col in table.columns and n_under:
        worst = table.assign(_g=gap.values).sort_values("_g", ascending=False)
        worst = [str(v) for v in worst.loc[worst["_g"] > 0, name_col].head(3) if isinstance(v, str)]

    wz, we = {"street": ("街道", "streets"), "community": ("社区", "communities")}.get(
        level, ("单位", "units"))
    zh = [(f"全区编制 {budget:,} 人，现有 {current:,} 人；按工作量折算需 {required:,} 人"
           f"（每人每月 {cap:.0f} 小时）。")]
    en = [(f"The district shares {budget:,} posts among {n} {we}; {current:,} people work today; "
           f"the workload needs {required:,} people ({cap:.0f} field hours per person a month).")]
    zh.append(f"{n_under}/{n} 个{wz}缺员共 {short:,} 人，{n_over} 个超员共 {over:,} 人。")
    en.append(f"{n_under} of {n} {we} are short by {short:,} people in all, {n_over} are over by "
              f"{over:,}.")
    if cause == "none":
        zh.append(f"没有缺员{wz}。")
        en.append(f"No one of the {n} {we} is short of staff.")
    elif cause == "distribution":
        zh.append(f"缺员不是因为总数不够，而是人员分布与工作量不匹配：从超员{wz}调配 {movable:,} 人"
                  f"即可补齐全部缺口。")
        en.append(f"The shortage is one of distribution, not of the total: moving {movable:,} "
                  f"people from over- to under-staffed {we} closes every gap.")
        if new_posts < 0:
            zh.append(f"编制比现有少 {-new_posts:,} 人，其余超员需减员或转岗。")
            en.append(f"The budget is {-new_posts:,} below today's headcount; the remaining "
                      f"surplus leaves or moves to other posts.")
    elif cause == "both":
        zh.append(f"从超员{wz}调配 {movable:,} 人可补一部分，其余 {short - movable:,} 人"
                  f"由新增的 {new_posts:,} 个编制补足。")
        en.append(f"Moving {movable:,} people from over-staffed {we} closes part of it; the "
                  f"other {short - movable:,} come from the {new_posts:,} new posts.")
    else:  # total
        zh.append(f"没有超员{wz}可调：缺口来自新增的 {new_posts:,} 个编制，应优先补给缺员最多的{wz}。")
        en.append(f"None of the {we} is over-staffed: the gap is the {new_posts:,} new posts, to be filled "
                  f"first where the shortage is largest.")
    if short and budget >= required:
        zh.append(f"编制（{budget:,} 人）不少于工作量所需（{required:,} 人），"
                  f"建议人数按工作量、人口、面积和功能定位分配。")
        en.append(f"The budget ({budget:,}) covers the workload ({required:,} people); "
                  f"recommendations share it by workload, residents, area and function type.")
    elif budget < required:
        zh.append(f"编制比工作量所需少 {required - budget:,} 人：即使调配到位，人均工作量仍超标准。")
        en.append(f"The budget is {required - budget:,} people below what the workload needs: "
                  f"even after re-allocation each person carries more than the standard.")
    if worst:
        zh.append("缺员最多：" + "、".join(worst) + "。")
        en.append("Furthest short: " + ", ".join(worst) + ".")
    return {
        "budget": int(budget), "current_staff": current, "required_people": required,
        "units": n, "units_under": n_under, "units_over": n_over,
        "units_balanced": n - n_under - n_over, "people_short": short, "people_over": over,
        "movable": movable, "new_posts": new_posts, "cause": cause,
        "explanation_zh": "".join(zh), "explanation_en": " ".join(en),
    }


def gap_notes(table: pd.DataFrame) -> pd.DataFrame:
    """One short sentence per unit on its gap, in Chinese and English (whole people).

    Uses ``current_staff``, ``recommended_staff``, ``gap`` and, when present, ``workload``
    (its share of the total is quoted).

    Returns
    -------
    pandas.DataFrame
        On the index of ``table``: ``gap_note_zh``, ``gap_note_en``.

    Examples
    --------
    >>> t = pd.DataFrame({"current_staff": [5, 5], "recommended_staff": [8, 2], "gap": [3, -3],
    ...                   "workload": [300.0, 100.0]})
    >>> gap_notes(t)["gap_note_en"].tolist()[0]
    'short by 3: 75.0% of the workload, 8 recommended, 5 today'
    """
    cur = pd.to_numeric(table["current_staff"], errors="coerce").fillna(0).round().astype(np.int64)
    rec = pd.to_numeric(table["recommended_staff"], errors="coerce").fillna(0).round().astype(np.int64)
    gap = pd.to_numeric(table["gap"], errors="coerce").fillna(0).round().astype(np.int64)
    if "workload" in table.columns:
        wl = pd.to_numeric(table["workload"], errors="coerce").fillna(0.0)
        total = float(wl.sum())
        share = (wl / total * 100) if total > 0 else pd.Series(np.nan, index=table.index)
    else:
        share = pd.Series(np.nan, index=table.index)
    zh, en = [], []
    for g, r, c, s in zip(gap, rec, cur, share):
        part_zh = f"工作量占 {s:.1f}%，" if np.isfinite(s) else ""
        part_en = f"{s:.1f}% of the workload, " if np.isfinite(s) else ""
        if g > 0:
            zh.append(f"缺 {g} 人：{part_zh}建议 {r} 人，现有 {c} 人")
            en.append(f"short by {g}: {part_en}{r} recommended, {c} today")
        elif g < 0:
            zh.append(f"超 {-g} 人：{part_zh}建议 {r} 人，现有 {c} 人")
            en.append(f"over by {-g}: {part_en}{r} recommended, {c} today")
        else:
            zh.append(f"持平：{part_zh}建议与现有均为 {r} 人")
            en.append(f"balanced: {part_en}{r} recommended and today")
    return pd.DataFrame({"gap_note_zh": zh, "gap_note_en": en}, index=table.index)


# ---------------------------------------------------------------------------------------------
# Worker performance (Art. 28 绩效考核)


def wilson_interval(
    successes: Any, n: Any, *, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a proportion (NaN where ``n`` is 0).

    Unlike the normal approximation it stays inside [0, 1] and is honest for small ``n``.

    Examples
    --------
    >>> lo, hi = wilson_interval([8], [10])
    >>> round(float(lo[0]), 3), round(float(hi[0]), 3)
    (0.49, 0.943)
    """
    k = np.asarray(successes, dtype=float)
    n = np.asarray(n, dtype=float)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denom = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
        lo = np.where(n > 0, centre - half, np.nan)
        hi = np.where(n > 0, centre + half, np.nan)
    lo = np.where((k == 0) & (n > 0), 0.0, np.clip(lo, 0, 1))  # exact at the ends
    hi = np.where((k == n) & (n > 0), 1.0, np.clip(hi, 0, 1))
    return lo, hi


#: Per-worker case figures: what :func:`worker_case_figures` aggregates from the cases (and
#: ``pipelines.stage_staffing`` inside DuckDB), the input of :func:`finish_performance`.
WORKER_FIGURES = ("cases", "closed", "decided", "on_time", "median_hours_to_respond",
                  "median_hours_to_close", "repeat_complaints")


def worker_performance(
    cases: pd.DataFrame,
    *,
    staff: pd.DataFrame | None = None,
    carried: pd.Series | None = None,
    params: Mapping | None = None,
    as_of: pd.Timestamp | None = None,
    timeliness: Mapping | None = None,
) -> pd.DataFrame:
    """Case figures per grid worker, with their uncertainty shown.

    Whether a case was on time is decided by :func:`geo.timeliness.case_outcomes` — the same
    rule and deadlines as the ``case_timeliness`` table (answered and closed within the
    deadlines of its class; open cases past their deadline are late; open cases within it are
    not judged yet). The on-time rate is over judged (``decided``) cases, with a Wilson
    interval. A *repeat complaint* is a later case whose ``repeat_of`` names a case this worker
    handled: the complaint came back.

    :func:`worker_case_figures` (the cases aggregated per worker) followed by
    :func:`finish_performance` (rates, interval, flags); ``pipelines.stage_staffing`` computes
    the same figures inside DuckDB (issue #13.2) and calls :func:`finish_performance` only.

    Parameters
    ----------
    cases
        ``incident_id``, ``staff_id``, ``occurred_at``, and when known ``responded_at``,
        ``closed_at``, ``category``, ``severity``, ``repeat_of``.
    staff
        The staff table; every worker in it gets a row, even with no cases.
    carried
        Hours per month each worker carries, indexed by ``staff_id``.
    params
        Overrides of :data:`DEFAULTS` (``performance.small_n``, ``performance.confidence``).
    as_of
        When open cases are judged; default the latest time in ``cases``.
    timeliness
        Keyword arguments for :func:`geo.timeliness.case_outcomes` (``deadlines``,
        ``category_deadlines``, ``emergency_severity``, keyword lists).

    Returns
    -------
    pandas.DataFrame
        ``staff_id``, ``cases``, ``closed``, ``decided``, ``on_time``, ``on_time_rate``,
        ``on_time_ci_low``, ``on_time_ci_high``, ``median_hours_to_respond``,
        ``median_hours_to_close``, ``repeat_complaints``, ``repeat_rate``,
        ``workload_carried``, ``small_n``, ``note`` (plus ``street_code``, ``community_code``,
        ``grid_id``, ``role`` from ``staff``).
    """
    figures = worker_case_figures(cases, as_of=as_of, timeliness=timeliness)
    return finish_performance(figures, staff=staff, carried=carried, params=params)


def worker_case_figures(
    cases: pd.DataFrame, *, as_of: pd.Timestamp | None = None, timeliness: Mapping | None = None
) -> pd.DataFrame:
    """The :data:`WORKER_FIGURES` per ``staff_id`` (the index) of the cases with a worker.

    A case counts for its worker when it has a ``staff_id`` and an ``occurred_at``; ``closed``
    counts cases with hours to close, ``decided`` the judged (``due``) ones, ``on_time`` those
    judged on time, medians skip missing hours. ``as_of`` defaults to the latest time of *all*
    ``cases``. ``repeat_complaints``: rows of ``cases`` (any, with or without a worker) whose
    ``repeat_of`` is the ``incident_id`` of a case this worker handled (the first such case of
    an id). Workers without cases have no row.
    """
    has_staff = (
        cases["staff_id"].notna() if "staff_id" in cases.columns else pd.Series(False, cases.index)
    )
    c = cases[has_staff & cases["occurred_at"].notna()] if len(cases) else cases.iloc[:0]
    if as_of is None and len(cases):
        stamps = pd.concat(
            [pd.to_datetime(cases[k]) for k in ("occurred_at", "responded_at", "closed_at")
             if k in cases.columns]
        ).dropna()
        as_of = stamps.max() if len(stamps) else None
    if len(c):
        oc = case_outcomes(c, as_of=as_of, **dict(timeliness or {}))
        oc["staff_id"] = c["staff_id"].values
        oc["closed"] = oc["hours_to_close"].notna()
        oc["on_time_1"] = oc["on_time"] == 1
        g = oc.groupby("staff_id")
        out = pd.DataFrame({
            "cases": g.size(), "closed": g["closed"].sum(), "decided": g["due"].sum(),
            "on_time": g["on_time_1"].sum(),
            "median_hours_to_respond": g["hours_to_respond"].median(),
            "median_hours_to_close": g["hours_to_close"].median(),
        })
    else:
        out = empty_worker_figures().drop(columns="repeat_complaints")
    if len(c) and "repeat_of" in cases.columns:
        handler = c.drop_duplicates("incident_id").set_index("incident_id")["staff_id"]
        rep = cases["repeat_of"].dropna().map(handler).dropna()
        out["repeat_complaints"] = rep.value_counts().reindex(out.index).fillna(0)
    else:
        out["repeat_complaints"] = 0
    return out


def empty_worker_figures() -> pd.DataFrame:
    """:data:`WORKER_FIGURES` of no cases (an empty frame indexed by ``staff_id``)."""
    return pd.DataFrame(columns=list(WORKER_FIGURES), index=pd.Index([], name="staff_id"))


def finish_performance(
    figures: pd.DataFrame,
    *,
    staff: pd.DataFrame | None = None,
    carried: pd.Series | None = None,
    params: Mapping | None = None,
) -> pd.DataFrame:
    """The :func:`worker_performance` table from per-worker case figures.

    ``figures``: the :data:`WORKER_FIGURES` indexed by ``staff_id`` — as
    :func:`worker_case_figures` aggregates them from cases, or as ``pipelines.stage_staffing``
    aggregates them inside DuckDB (issue #13.2). Adds every worker of ``staff`` (zero cases),
    the on-time rate with its Wilson interval, the repeat rate, ``workload_carried``, the
    small-numbers flag and note; one row per worker, sorted by ``staff_id``.
    """
    perf = deep_merge(DEFAULTS, params)["performance"]
    small = int(perf["small_n"])
    out = figures
    if staff is not None and len(staff):
        keep = [k for k in ("staff_id", "street_code", "community_code", "grid_id", "role")
                if k in staff.columns]
        info = staff[keep].drop_duplicates("staff_id").set_index("staff_id")
        out = info.join(out, how="outer")
    out = out.copy()
    out.index.name = "staff_id"
    for col in ("cases", "closed", "decided", "on_time", "repeat_complaints"):
        out[col] = out[col].fillna(0).astype(np.int64)
    for col in ("median_hours_to_respond", "median_hours_to_close"):
        out[col] = out[col].astype(float)
    out["on_time_rate"] = out["on_time"] / out["decided"].where(out["decided"] > 0)
    lo, hi = wilson_interval(out["on_time"], out["decided"], confidence=float(perf["confidence"]))
    out["on_time_ci_low"], out["on_time_ci_high"] = lo, hi
    out["repeat_rate"] = out["repeat_complaints"] / out["cases"].where(out["cases"] > 0)
    out["workload_carried"] = (
        out.index.map(carried).astype(float) if carried is not None and len(carried) else np.nan
    )
    out["small_n"] = out["cases"] < small
    out["note"] = np.where(
        out["small_n"],
        f"案件少于{small}件，比率仅供参考 / fewer than {small} cases: rates are indicative only",
        "",
    )
    return out.reset_index()
