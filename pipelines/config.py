"""Project settings: defaults merged with the project's ``gridgov.toml``.

Every key is optional. Keys that are part of the data contract::

    crs = "EPSG:4326"        # or "EPSG:4490", any EPSG code, "GCJ-02", "BD-09"
    encoding = "auto"        # or "utf-8", "gbk", "gb18030"
    [columns.<layer>]        # your column name = contract name
    [norms.urban]            # households per basic grid
    households_min = 300
    households_max = 500
    [allocation]
    budget = 1200
    min_per_street = 10

Further keys documented in ``docs/settings.md``: ``[layers.<layer>] crs/encoding/file`` to
override per layer, ``metric_crs`` (default: chosen from the data's longitude), ``[privacy] salt``,
and one section per stage (``[grids]``, ``[hotspots]``, ``[staffing]``) whose defaults live in the
stage module's ``DEFAULTS``.
"""
from __future__ import annotations

import copy
import importlib
import tomllib
from pathlib import Path
from typing import Any

from pipelines.errors import SettingsError

DB_NAME = "gridgov.duckdb"
SETTINGS_NAME = "gridgov.toml"
STAGES = ("grids", "hotspots", "staffing")

DEFAULTS: dict[str, Any] = {
    "crs": "EPSG:4326",
    "encoding": "auto",
    "metric_crs": None,
    "columns": {},
    "layers": {},
    "norms": {
        "urban": {"households_min": 300, "households_max": 500},
        "rural": {"households_min": 0, "households_max": 600},
    },
    "allocation": {"budget": None, "min_per_street": 10},
    "privacy": {"salt": None},
}


def deep_merge(base: dict, override: dict) -> dict:
    """Return ``base`` updated recursively with ``override`` (neither is modified)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def stage_defaults() -> dict[str, Any]:
    """Collect ``DEFAULTS`` from each stage module that exists."""
    found: dict[str, Any] = {}
    for name in STAGES:
        try:
            mod = importlib.import_module(f"pipelines.stage_{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"pipelines.stage_{name}":
                raise
            continue
        found[name] = copy.deepcopy(getattr(mod, "DEFAULTS", {}))
    return found


def default_settings() -> dict[str, Any]:
    """All defaults: the contract keys plus every stage's section."""
    return deep_merge(stage_defaults(), DEFAULTS)


def load_settings(project_dir: str | Path) -> dict[str, Any]:
    """Read ``gridgov.toml`` in ``project_dir`` (if any) over the defaults, and check it."""
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
    settings = deep_merge(default_settings(), user)
    _check(settings, path)
    return settings


def _check(settings: dict[str, Any], path: Path) -> None:
    enc = str(settings.get("encoding", "auto")).lower()
    if enc not in {"auto", "utf-8", "utf8", "gbk", "gb18030", "gb2312", "utf-8-sig"}:
        raise SettingsError(
            f"{path}: encoding = {enc!r} 不受支持；请使用 auto、utf-8、gbk 或 gb18030。",
            f"{path}: encoding = {enc!r} is not supported; use auto, utf-8, gbk or gb18030.",
        )
    for kind, norm in settings.get("norms", {}).items():
        lo, hi = norm.get("households_min", 0), norm.get("households_max", 0)
        if not (isinstance(lo, int | float) and isinstance(hi, int | float)) or lo < 0 or hi <= 0 or lo > hi:
            raise SettingsError(
                f"{path}: [norms.{kind}] households_min={lo} households_max={hi} 无效；需要 0 ≤ min ≤ max 且 max > 0。",
                f"{path}: [norms.{kind}] households_min={lo} households_max={hi} is invalid; "
                "need 0 ≤ min ≤ max and max > 0.",
            )
    alloc = settings.get("allocation", {})
    budget = alloc.get("budget")
    if budget is not None and (not isinstance(budget, int) or budget <= 0):
        raise SettingsError(
            f"{path}: [allocation] budget = {budget!r} 必须是正整数。",
            f"{path}: [allocation] budget = {budget!r} must be a positive integer.",
        )
