"""Project settings: the one home of every default, merged with the project's ``gridgov.toml``.

Every key is optional. ``DEFAULTS`` below is the single place that defines a default: the
contract keys, the run's own keys and one section per stage. Stage modules read their section
from here (``DEFAULTS = config.DEFAULTS["grids"]``); the staffing model's parameters are
defined, each with its source, in :data:`geo.staffing.DEFAULTS` (``geo/`` is the pure algorithm
layer and cannot import ``pipelines``) and only assembled here. ``docs/settings.md`` has the
table with every key, its default and its source, and the decisions taken where two places used
to disagree.

Loading is strict: a key that is not defined here (``[allocaton]``, ``househlds_min``) stops the
run with one message in Chinese and English naming the key, its section and the nearest valid
name; a value of the wrong type (text where a number belongs) stops it too. Only the tables whose
keys are the user's own names (``[columns.<layer>]``, ``[norms.communities.<code>]``, category
and unit-type tables …, see ``OPEN``) accept any key.
"""
from __future__ import annotations

import copy
import difflib
import fnmatch
import importlib
import re
import tomllib
from pathlib import Path
from typing import Any

from geo import caserates as _caserates_model
from geo import staffing as _staffing_model
from pipelines.errors import SettingsError

DB_NAME = "gridgov.duckdb"
SETTINGS_NAME = "gridgov.toml"
LOCK_NAME = ".gridgov.lock"
STAGES = ("grids", "hotspots", "staffing", "cases")

#: Residents per household where a layer gives households only. Hohhot 2020 census: 1,314,910
#: family households, average family household size 2.3 (data/hohhot/hohhot_census2020_districts.csv,
#: row 150100). Used by [hotspots] household_size and [staffing.workload] persons_per_household
#: (defined in geo.staffing with the same source; tests/pipelines/test_settings.py checks they agree).
PERSONS_PER_HOUSEHOLD = 2.3

DEFAULTS: dict[str, Any] = {
    # --- data contract (docs/data-contract.md) -------------------------------------------------
    "crs": "EPSG:4326",  # contract: coordinates of the input files
    "encoding": "auto",  # contract: CSV/Shapefile text encoding
    "metric_crs": None,  # None = CGCS2000 3-degree GK zone of the streets' longitude (EPSG:4546 for Hohhot)
    "columns": {},  # [columns.<layer>] "your column" = "contract column"
    "layers": {},  # [layers.<layer>] file / crs / encoding
    # Households per basic grid. Urban 300–500: common local practice (no national text fixes it).
    # Rural 150–600, prefer the fewest grids, a village below the minimum drawn whole counts as
    # within the norm (Art. 48: the village as one grid). The rural minimum was 0 here and 150 in
    # geo/partition.py; 150 is decided (0 called a 5-household rural grid "within the norm").
    # geo.partition.DEFAULT_NORMS must hold the same values (checked by test_settings.py).
    "norms": {
        "urban": {"households_min": 300, "households_max": 500, "prefer": "mid", "allow_small_whole": False},
        "rural": {"households_min": 150, "households_max": 600, "prefer": "fewest", "allow_small_whole": True},
    },
    # Art. 37: district headcount shared among streets. min_per_street was 10 here and 1 in
    # stage_staffing.py. 1 is decided: a floor is the district's policy, not the product's; 10 in the data
    # contract is an example next to `budget = 1200` (also an example), and the demo's gridgov.toml sets it.
    # With 10, a small project's derived budget (today's headcount) was silently raised to 10 x streets.
    "allocation": {
        "budget": None,  # None: today's headcount (a re-distribution), or required staff if none recorded
        "min_per_street": 1,
        "min_per_community": 1,  # Art. 42: every community keeps at least one person
    },
    # No [privacy] section: the salt of the reporter hash lives only in <project>/.gridgov-salt (created by
    # pipelines.privacy.salt_for), outside the database and outside gridgov.toml (see RETIRED).
    # --- the app (app_pages/_shared.py) ---------------------------------------------------------
    "app": {
        "attribution": None,  # map credit line; None = the demo's sources or "project"
        # level of detail (#13.4): above these counts a map shows streets first, one street's detail
        # when chosen. ASSUMPTION: about 1 MB of map per view in Chromium at the demo's shapes.
        "map_max_units": 3500,  # hot-spot page: grids or fishnet cells
        "map_max_communities": 2000,  # map page
    },
    # --- the run (pipelines/run.py) ------------------------------------------------------------
    "ingest": {
        # A layer of which more than this share of rows is rejected stops the run and the previous
        # database stays; 1.0 lets any share through. ASSUMPTION: half is clearly a wrong file/column map.
        "max_reject_share": 0.5,
        # A located row (building, incident, unit) this far outside every community, or outside its declared
        # community, is a reject even if it carries a code (geometry is the truth). ASSUMPTION: 50 m covers
        # digitising and GCJ-02 rounding error, not a wrong district.
        "location_tolerance_m": 50.0,
        # Incidents in a folder of Parquet files (hive-partitioned by month or plain), or in one file larger
        # than this many MB, are validated and located inside DuckDB (streamed, never all in Python memory).
        # ASSUMPTION: below 256 MB the pandas reader is fast and its memory is a few GB at most.
        "stream_threshold_mb": 256,
    },
    # --- where per-community work runs (pipelines/compute.py, docs/scale.md) ------------------
    "compute": {
        # "" = [grids] n_jobs processes on this machine (default); "local" = a Dask LocalCluster of
        # `workers` processes; "tcp://host:8786" = an existing Dask scheduler. Same plan in every case.
        "scheduler": "",
        "workers": 2,  # worker processes of the "local" Dask cluster
        # DuckDB's memory limit for the run ("4GB", "800MB" …; "" = DuckDB's default, 80 % of RAM). Above it,
        # joins, sorts and aggregates spill to `temp_directory`. ASSUMPTION: 4 GB leaves room for Python beside it.
        "memory_limit": "4GB",
        # Where DuckDB spills; "" = <project>/.gridgov-tmp (removed after the run). Relative paths are
        # relative to the project folder.
        "temp_directory": "",
    },
    "run": {
        # A second `gridgov run` on the same project waits this long for the first, then stops with a
        # message (0 = stop at once). A planner save during a run is refused after this wait too.
        "lock_wait_seconds": 0.0,
    },
    # --- stage grids (docs/grid-engine.md) -----------------------------------------------------
    "grids": {
        "seed": 0,
        # Work budget of the local search per community (cell visits), so the plan never depends on
        # the machine's load; geo.partition.DEFAULT_SEARCH_BUDGET holds the same value (test_settings.py).
        "search_budget": 60_000,
        # Wall-clock safety net per community (seconds); logged when it fires (geo.partition.DEFAULT_MAX_SECONDS).
        "max_seconds": 60.0,
        "n_jobs": 2,  # worker processes (communities are independent)
        # Keep each community's cells and adjacency in <project>/.gridgov_cache/cells under a fingerprint of its
        # inputs (boundary, buildings, barriers, special units, these settings, the code), so a run with unchanged
        # inputs reads them back (pipelines/cellcache.py); the cells are the same either way. false = build every time.
        "cell_cache": True,
        "max_cell_area": 40_000,  # m²: empty land is split into cells of at most this size
        "redraw": True,  # re-draw from the current plan instead of starting afresh
        # Contract (second round): with a current_grids layer and no plan yet, today's map is plan P0000
        # and the proposal keeps every community that meets the rules; false = draw from scratch.
        "start_from_current_grids": True,
        "weights": {},  # objective weights: norm, balance, compactness, move
        "dedicated": {},  # per unit_type rules, e.g. {school = {min_area_m2 = 10000}}
        "workload_weights": {},  # per-building workload weights (geo.tessellation.building_workload)
    },
    # --- stage hotspots (docs/hotspots.md) -----------------------------------------------------
    "hotspots": {
        # analysis units
        "use_grids": True,  # use the `grids` table when it exists
        "cell_size_m": 500.0,  # fallback cells: square side / hex centre spacing (metres)
        "cell_shape": "square",  # "square" or "hex"
        "drop_empty_cells": True,  # leave out cells without incidents, buildings or special units
        # spatial weights of Gi*
        "weights": "knn",  # "knn" or "distance_band"
        "k": 8,  # neighbours (knn) / target neighbours for the automatic band
        "band_m": None,  # distance band in metres; None = chosen from the data
        "value": "count",  # Gi* on "count" or "density" (count per km²)
        # significance
        "fdr": True,  # Benjamini–Hochberg across units, per category and period
        "alpha": 0.05,  # significance of a bin in the emerging hot spot analysis
        "trend_alpha": 0.05,  # Mann–Kendall trend significance
        "min_periods": 10,  # fewer months: no emerging hot spot analysis
        "max_categories": 20,  # analyse the N most frequent categories separately
        "min_category_incidents": 30,  # ... with at least this many incidents
        # residents per household when `residents` is missing: the census figure (was 2.5 here)
        "household_size": PERSONS_PER_HOUSEHOLD,
        "kde": {
            "bandwidth_m": None,  # None = median spacing of unit centres, within 200–2000 m
            "cell_m": 100.0,  # raster cell of the density surface
            # raster cells over all months at most; a wider area (a province) gets a coarser cell so
            # that the surface and its FFT stay within a few hundred MB (20M cells ≈ 160 MB)
            "max_cells": 20_000_000,
            "kernel": "quartic",  # or "epanechnikov"
            "write": True,  # write the `hotspot_density` table
        },
        "risk": {
            "weights": {
                "incidents": 0.4,
                "elderly_alone": 0.2,
                "disabled": 0.15,
                "low_income": 0.15,
                "special_units": 0.1,
            },
            "normalise": "minmax",  # or "rank"
            "months": 12,  # incidents of the last N months count towards the risk
            "severity_weights": {"1": 0.5, "2": 0.75, "3": 1.0, "4": 1.5, "5": 2.0},
            "category_weights": {},  # category -> weight (default 1.0)
        },
        "forecast": {
            "enabled": True,
            "backtest_months": 6,  # rolling origins
            "area_shares": [0.05, 0.10, 0.20],
            "train_window": 12,  # months of targets the model learns from
            "max_iter": 60,
            "kde_window": 12,  # months of past events in the KDE baseline
            "seed": 0,
            "threads": 1,  # model threads (OpenMP); more only helps on an idle machine
            "rank_by": "density",  # rank units by predicted count per km² (the budget is area) or "count"
            # also backtest on the equal-area fishnet of hotspot_fishnet (NIJ style; ~5 s on the demo): the grid
            # PAI mostly says "urban vs rural", the equal-cell PAI is the honest one (hot's measurement)
            "equal_cells": True,
        },
        # the leaders' verdict (hotspot_class): "excess" = more incidents than the unit's expectation
        # beyond chance (geo.hotspots.excess_test); "gi_star" = Gi* on the units (the former answer)
        "verdict": "excess",
        "expectation": "households",  # what incidents are expected to follow: "households", "residents" or "area"
        "dispersion": "quasi_poisson",  # over-dispersion model: "quasi_poisson", "negative_binomial" or "poisson"
        "recent_months": 6,  # recent window of the space–time trend classes
        "fishnet": {  # Gi* hot spots of concentration on an equal-area fishnet (the second answer)
            "enabled": True,
            "cell_m": None,  # None = chosen by incremental spatial autocorrelation
            "candidates_m": [150, 200, 300, 400, 500, 750, 1000, 1500, 2000],
            "max_cells": 60000,  # candidate sizes with more occupied cells are skipped
        },
        "alerts": {
            "enabled": True,
            # raise a signal only if chance alone raises one this rare less often than once in this many
            # days, anywhere in the city
            "recurrence_days": 365,
            "windows_days": [1, 3, 7, 14],  # lengths of the windows ending on each monitored day
            "monitor_days": 14,  # the last N days of data are monitored
            "history_days": 365,  # baseline shares from the N days before the monitored ones
            "max_categories": 8,  # 'all' plus the N most frequent categories
            "prior_incidents": 0.5,  # pseudo-incidents per grid, spread by households (shrinks shares)
        },
        "timeliness": {
            "deadlines": {},  # {class: {respond_hours, close_hours}} overrides
            "category_deadlines": {},  # {category: [respond_hours, close_hours]}
            "emergency_severity": 5,
            "utility_keywords": None,  # None = built-in list (water/power/gas/heating, 供水/停电 …)
            "complex_keywords": None,  # None = built-in list (complex, 疑难, 复杂)
        },
    },
    # --- stage staffing (docs/staffing.md) -----------------------------------------------------
    # The model's parameters, each with its source, are geo.staffing.DEFAULTS; these keys are the stage's.
    "staffing": _staffing_model.deep_merge(
        _staffing_model.DEFAULTS,
        {
            "plan_id": "",  # grid plan to staff; "" = the newest plan in `grids`
            "incident_window_months": 12,  # incident rates from the last N months of records
            "method": "webster",  # or "huntington_hill"
        },
    ),
    # --- stage cases (docs/cases.md) -----------------------------------------------------------
    # Case rates and the 红黑榜; each default with its reasoning in geo.caserates.DEFAULTS. Deadlines are
    # those of [hotspots.timeliness] (shared with case_timeliness and worker_performance).
    "cases": {k: copy.deepcopy(v) for k, v in _caserates_model.DEFAULTS.items() if k != "timeliness"},
}

#: Tables whose keys are the user's own names (layers, categories, unit types, codes): any key is
#: accepted there. Patterns over the dotted path of the table; ``*`` is one key.
OPEN = (
    "columns.*", "layers.*",
    "norms.communities", "norms.communities.*",
    "grids.dedicated", "grids.dedicated.*", "grids.workload_weights",
    "hotspots.risk.severity_weights", "hotspots.risk.category_weights",
    "hotspots.timeliness.deadlines", "hotspots.timeliness.deadlines.*", "hotspots.timeliness.category_deadlines",
    "staffing.workload.incident_minutes", "staffing.workload.severity_factor",
    "staffing.workload.special_unit_hours", "staffing.workload.visits", "staffing.workload.visits.*",
    "staffing.score.function_multipliers",
)

#: Tables with a fixed set of keys that are not (all) in DEFAULTS, and the type of each key.
EXTRA_KEYS: dict[str, dict[str, tuple[type, ...]]] = {
    "layers.*": {"file": (str,), "crs": (str,), "encoding": (str,)},
    "grids.weights": {k: (int, float) for k in ("norm", "balance", "compactness", "move")},
    "norms.communities.*": {"households_min": (int,), "households_max": (int,), "prefer": (str,),
                            "allow_small_whole": (bool,)},
}

#: Keys that no longer exist, and what replaced them (an old gridgov.toml gets this hint).
RETIRED: dict[str, tuple[str, str]] = {
    "grids.time_limit": ("已改为按工作量计的 search_budget（不再按秒），使结果与机器负载无关；请删除 time_limit",
                         ("was replaced by search_budget (work, not seconds) so plans do not depend on the "
                         "machine's load; delete time_limit")),
    "privacy": (("已取消：盐值只保存在项目文件夹的 .gridgov-salt 文件中（不进数据库、不进 gridgov.toml）；请删除 [privacy] 节，"
                "如需沿用旧盐值，把它写入 .gridgov-salt"),
                ("is gone: the salt lives only in the project's .gridgov-salt file (never in the database or "
                "gridgov.toml); delete the [privacy] section, and to keep an old salt write it into .gridgov-salt")),
}

#: Types of keys whose default is None or that take more than their default's type (any other known key
#: takes the type of its default).
TYPES: dict[str, tuple[type, ...]] = {
    "hotspots.alerts.recurrence_days": (int, float),
    "metric_crs": (str,),
    "allocation.budget": (int,),
    "app.attribution": (str,),
    "hotspots.band_m": (int, float),
    "hotspots.kde.bandwidth_m": (int, float),
    "hotspots.fishnet.cell_m": (int, float),
    "hotspots.timeliness.utility_keywords": (list,),
    "hotspots.timeliness.complex_keywords": (list,),
}

_TYPE_NAMES = {bool: ("true 或 false", "true or false"), int: ("整数", "a whole number"),
               float: ("数字", "a number"), str: ("带引号的文本", "quoted text"),
               list: ("列表 [...]", "a list [...]"), dict: ("表 [...] 或 {...}", "a table [...] or {...}")}


def deep_merge(base: dict, override: dict) -> dict:
    """Return ``base`` updated recursively with ``override`` (neither is modified)."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def stage_defaults() -> dict[str, Any]:
    """``DEFAULTS`` of stage modules whose section is not (yet) defined here."""
    found: dict[str, Any] = {}
    for name in STAGES:
        if name in DEFAULTS:
            continue
        try:
            mod = importlib.import_module(f"pipelines.stage_{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"pipelines.stage_{name}":
                raise
            continue
        found[name] = copy.deepcopy(getattr(mod, "DEFAULTS", {}))
    return found


def default_settings() -> dict[str, Any]:
    """All defaults (a deep copy): the contract keys, the run's keys and every stage's section."""
    return deep_merge(stage_defaults(), DEFAULTS)


def load_settings(project_dir: str | Path) -> dict[str, Any]:
    """Read ``gridgov.toml`` in ``project_dir`` (if any) over the defaults, and check it.

    Raises
    ------
    SettingsError
        The file is not TOML, names a key that does not exist (the message names the nearest
        valid one), or gives a value of the wrong type or range.
    """
    path = Path(project_dir) / SETTINGS_NAME
    user: dict[str, Any] = {}
    if path.exists():
        try:
            user = tomllib.loads(path.read_text(encoding="utf-8-sig"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SettingsError(
                f"{path} 不是有效的 TOML 文件（{exc}）。请检查引号和等号，或删除该文件使用默认设置。",
                f"{path} is not valid TOML ({exc}). Check quotes and '=' signs, or delete it to use defaults.",
            ) from exc
    return check_settings(user, path)


def check_settings(user: dict[str, Any], path: str | Path = SETTINGS_NAME) -> dict[str, Any]:
    """Check the user's settings ``user`` (keys and types) and return them merged over the defaults."""
    defaults = default_settings()
    _check_keys(user, defaults, (), Path(path))
    settings = deep_merge(defaults, user)
    _check_values(settings, Path(path))
    return settings


def _dotted(parts: tuple[str, ...]) -> str:
    return ".".join(parts)


def _matches(parts: tuple[str, ...], patterns) -> str | None:
    dotted = _dotted(parts)
    for pat in patterns:
        if pat.count(".") == dotted.count(".") and fnmatch.fnmatchcase(dotted, pat):
            return pat
    return None


def _known(parts: tuple[str, ...], defaults: Any) -> dict[str, Any]:
    """Valid keys of the table at ``parts`` -> their default (or a type tuple for EXTRA_KEYS)."""
    known: dict[str, Any] = dict(defaults) if isinstance(defaults, dict) else {}
    pat = _matches(parts, EXTRA_KEYS)
    if pat:
        known.update({k: v for k, v in EXTRA_KEYS[pat].items() if k not in known})
    if parts in (("layers",), ("columns",)):
        from pipelines.layers import LAYERS

        known.update({name: {} for name in LAYERS})
    if parts == ("norms",):
        known.setdefault("communities", {})
    return known


def _section(parts: tuple[str, ...]) -> tuple[str, str]:
    if not parts:
        return "文件顶层", "the top level of the file"
    return f"[{_dotted(parts)}]", f"[{_dotted(parts)}]"


def _check_keys(user: Any, defaults: Any, parts: tuple[str, ...], path: Path) -> None:
    if not isinstance(user, dict):
        return
    if _matches(parts, OPEN) and not _matches(parts, EXTRA_KEYS):
        for key, value in user.items():  # the user's own names; a sub-table with fixed keys is checked
            here = parts + (str(key),)
            if isinstance(value, dict) and _matches(here, EXTRA_KEYS):
                _check_keys(value, {}, here, path)
        return
    known = _known(parts, defaults)
    for key, value in user.items():
        key = str(key)
        if key not in known:
            _unknown(key, parts, known, path)
        spec = known[key]
        here = parts + (key,)
        if isinstance(spec, tuple) and spec and all(isinstance(t, type) for t in spec):
            _check_type(value, spec, here, path)
            continue
        if isinstance(spec, dict):
            if not isinstance(value, dict):
                _wrong_type(value, (dict,), here, path)
            _check_keys(value, spec, here, path)
            continue
        wanted = TYPES.get(_dotted(here))
        if wanted:
            _check_type(value, wanted, here, path)
        elif spec is not None:
            _check_type(value, _type_of(spec), here, path)


def _type_of(default: Any) -> tuple[type, ...]:
    if isinstance(default, bool):
        return (bool,)
    if isinstance(default, int):
        return (int,)
    if isinstance(default, float):
        return (int, float)
    if isinstance(default, str):
        return (str,)
    if isinstance(default, list | tuple):
        return (list,)
    return (object,)


def _check_type(value: Any, types: tuple[type, ...], parts: tuple[str, ...], path: Path) -> None:
    if object in types:
        return
    ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
    if not ok:
        _wrong_type(value, types, parts, path)


def _wrong_type(value: Any, types: tuple[type, ...], parts: tuple[str, ...], path: Path) -> None:
    main = float if float in types else types[0]
    zh_t, en_t = _TYPE_NAMES.get(main, (main.__name__, main.__name__))
    sec_zh, sec_en = _section(parts[:-1])
    raise SettingsError(
        f"{path}：{sec_zh} 中 {parts[-1]} = {value!r} 类型不对；应为{zh_t}。",
        f"{path}: {parts[-1]} = {value!r} in {sec_en} has the wrong type; it must be {en_t}.",
    )


def _unknown(key: str, parts: tuple[str, ...], known: dict[str, Any], path: Path) -> None:
    sec_zh, sec_en = _section(parts)
    retired = RETIRED.get(_dotted(parts + (key,)))
    if retired:
        raise SettingsError(f"{path}：{sec_zh} 中的设置 {key!r} {retired[0]}。",
                            f"{path}: setting {key!r} in {sec_en} {retired[1]}.")
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    if not close:  # also try case-insensitively (Budget, MIN_PER_STREET)
        lower = {k.lower(): k for k in known}
        close = [lower[m] for m in difflib.get_close_matches(key.lower(), list(lower), n=1, cutoff=0.6)]
    valid = ", ".join(sorted(known))
    if close:
        hint = close[0]
        shown = f"[{_dotted(parts + (hint,))}]" if isinstance(known[hint], dict) else hint
        raise SettingsError(
            f"{path}：{sec_zh} 中的设置 {key!r} 不存在；您是否想写 {shown}？",
            f"{path}: unknown setting {key!r} {'at' if not parts else 'in'} {sec_en}; did you mean {shown}?",
        )
    raise SettingsError(
        f"{path}：{sec_zh} 中的设置 {key!r} 不存在；有效的键：{valid}。",
        f"{path}: unknown setting {key!r} {'at' if not parts else 'in'} {sec_en}; valid keys: {valid}.",
    )


def _check_values(settings: dict[str, Any], path: Path) -> None:
    enc = str(settings.get("encoding", "auto")).lower()
    if enc not in {"auto", "utf-8", "utf8", "gbk", "gb18030", "gb2312", "utf-8-sig"}:
        raise SettingsError(
            f"{path}: encoding = {enc!r} 不受支持；请使用 auto、utf-8、gbk 或 gb18030。",
            f"{path}: encoding = {enc!r} is not supported; use auto, utf-8, gbk or gb18030.",
        )
    norms = settings.get("norms", {})
    checks = [(kind, norm) for kind, norm in norms.items() if kind != "communities"]
    checks += [(f"communities.{code}", {**norms.get("urban", {}), **norm})
               for code, norm in (norms.get("communities") or {}).items()]
    for kind, norm in checks:
        lo, hi = norm.get("households_min", 0), norm.get("households_max", 0)
        if not (isinstance(lo, int | float) and isinstance(hi, int | float)) or lo < 0 or hi <= 0 or lo > hi:
            raise SettingsError(
                f"{path}: [norms.{kind}] households_min={lo} households_max={hi} 无效；需要 0 ≤ min ≤ max 且 max > 0。",
                f"{path}: [norms.{kind}] households_min={lo} households_max={hi} is invalid; "
                "need 0 ≤ min ≤ max and max > 0.",
            )
    alloc = settings.get("allocation", {})
    budget = alloc.get("budget")
    if budget is not None and (not isinstance(budget, int) or isinstance(budget, bool) or budget <= 0):
        raise SettingsError(
            f"{path}: [allocation] budget = {budget!r} 必须是正整数。",
            f"{path}: [allocation] budget = {budget!r} must be a positive integer.",
        )
    for key in ("min_per_street", "min_per_community"):
        if alloc.get(key, 0) < 0:
            raise SettingsError(f"{path}: [allocation] {key} = {alloc[key]!r} 不能为负数。",
                                f"{path}: [allocation] {key} = {alloc[key]!r} must not be negative.")
    share = settings.get("ingest", {}).get("max_reject_share", 0.5)
    if not 0 <= share <= 1:
        raise SettingsError(
            f"{path}: [ingest] max_reject_share = {share!r} 必须在 0 与 1 之间（1 = 允许任意比例的拒收）。",
            f"{path}: [ingest] max_reject_share = {share!r} must be between 0 and 1 (1 = allow any share).",
        )
    mem = str(settings.get("compute", {}).get("memory_limit", "") or "")
    if mem and not re.fullmatch(r"\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*", mem, flags=re.I):
        raise SettingsError(
            f"{path}: [compute] memory_limit = {mem!r} 无效；请写成 \"4GB\"、\"800MB\" 这样的大小，或留空使用 DuckDB 默认值。",
            f"{path}: [compute] memory_limit = {mem!r} is not a size; write e.g. \"4GB\" or \"800MB\", "
            "or \"\" for DuckDB's default.",
        )
    thr = settings.get("ingest", {}).get("stream_threshold_mb", 256)
    if thr < 0:
        raise SettingsError(f"{path}: [ingest] stream_threshold_mb = {thr!r} 不能为负数。",
                            f"{path}: [ingest] stream_threshold_mb = {thr!r} must not be negative.")
    wait = settings.get("run", {}).get("lock_wait_seconds", 0)
    if wait < 0:
        raise SettingsError(f"{path}: [run] lock_wait_seconds = {wait!r} 不能为负数。",
                            f"{path}: [run] lock_wait_seconds = {wait!r} must not be negative.")


def settings_for_record(settings: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``settings`` fit to store in ``runs.settings``: never a privacy salt, wherever it sits."""
    out = copy.deepcopy(settings)
    out.pop("privacy", None)
    return out
