"""One settings home: every default in pipelines/config.py, unknown keys and wrong types refused."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipelines import config
from pipelines.config import check_settings, default_settings, load_settings, settings_for_record
from pipelines.errors import SettingsError

DOCS = Path(__file__).resolve().parents[2] / "docs" / "settings.md"


def _refused(user: dict) -> SettingsError:
    with pytest.raises(SettingsError) as info:
        check_settings(user)
    return info.value


def test_stage_modules_read_their_section_from_config():
    from pipelines import stage_cases, stage_grids, stage_hotspots, stage_staffing

    assert stage_grids.DEFAULTS is config.DEFAULTS["grids"]
    assert stage_hotspots.DEFAULTS is config.DEFAULTS["hotspots"]
    assert stage_staffing.DEFAULTS is config.DEFAULTS["staffing"]
    assert stage_staffing.ALLOCATION_DEFAULTS is config.DEFAULTS["allocation"]
    assert stage_cases.DEFAULTS is config.DEFAULTS["cases"]


def test_decided_values_agree_with_the_algorithm_modules():
    from geo import partition, staffing

    assert config.DEFAULTS["norms"]["rural"]["households_min"] == 150
    for kind in ("urban", "rural"):
        for key, value in config.DEFAULTS["norms"][kind].items():
            assert partition.DEFAULT_NORMS[kind][key] == value, (kind, key)
    assert config.DEFAULTS["grids"]["search_budget"] == partition.DEFAULT_SEARCH_BUDGET
    assert config.DEFAULTS["grids"]["max_seconds"] == partition.DEFAULT_MAX_SECONDS
    assert config.PERSONS_PER_HOUSEHOLD == 2.3
    assert staffing.DEFAULTS["workload"]["persons_per_household"] == config.PERSONS_PER_HOUSEHOLD
    assert default_settings()["hotspots"]["household_size"] == config.PERSONS_PER_HOUSEHOLD
    assert default_settings()["allocation"]["min_per_street"] == 1


def test_census_figure_is_the_one_in_the_data():
    import csv

    path = Path(__file__).resolve().parents[2] / "data" / "hohhot" / "hohhot_census2020_districts.csv"
    with path.open(encoding="utf-8") as fh:
        city = next(r for r in csv.DictReader(fh) if r["adcode"] == "150100")
    assert float(city["household_size"]) == config.PERSONS_PER_HOUSEHOLD


def test_misspelt_section_names_the_nearest_section_in_both_languages():
    err = _refused({"allocaton": {"budget": 3}})
    assert "allocaton" in str(err) and "[allocation]" in err.en and "[allocation]" in err.zh
    assert "did you mean" in err.en and "您是否想写" in err.zh


@pytest.mark.parametrize(("user", "key", "section", "hint"), [
    ({"norms": {"urban": {"househlds_min": 3}}}, "househlds_min", "[norms.urban]", "households_min"),
    ({"hotspots": {"kde": {"cel_m": 50}}}, "cel_m", "[hotspots.kde]", "cell_m"),
    ({"staffing": {"capacity": {"part_time": 0.5}}}, "part_time", "[staffing.capacity]", "part_time_fte"),
    ({"layers": {"buildngs": {"file": "a.csv"}}}, "buildngs", "[layers]", "[layers.buildings]"),
    ({"layers": {"buildings": {"fle": "a.csv"}}}, "fle", "[layers.buildings]", "file"),
    ({"columns": {"buildngs": {"楼号": "building_id"}}}, "buildngs", "[columns]", "[columns.buildings]"),
    ({"norms": {"communities": {"150102001001": {"households_mn": 3}}}}, "households_mn",
     "[norms.communities.150102001001]", "households_min"),
    ({"grids": {"weights": {"balanse": 1.0}}}, "balanse", "[grids.weights]", "balance"),
    ({"ingest": {"max_reject": 0.9}}, "max_reject", "[ingest]", "max_reject_share"),
    ({"Allocation": {"budget": 3}}, "Allocation", "the top level", "[allocation]"),
])
def test_unknown_key_at_any_level_names_key_section_and_fix(user, key, section, hint):
    err = _refused(user)
    assert repr(key) in err.en and section in err.en and f"did you mean {hint}?" in err.en
    assert repr(key) in err.zh and hint in err.zh


def test_retired_time_limit_says_what_replaced_it():
    err = _refused({"grids": {"time_limit": 0.3}})
    assert "search_budget" in err.en and "search_budget" in err.zh


def test_unknown_key_without_a_near_name_lists_the_valid_ones():
    err = _refused({"zzz_unrelated": 1})
    assert "valid keys" in err.en and "allocation" in err.en and "有效的键" in err.zh


@pytest.mark.parametrize(("user", "key"), [
    ({"grids": {"seed": "7"}}, "seed"),
    ({"grids": {"n_jobs": 1.5}}, "n_jobs"),
    ({"cases": {"board_size": "3"}}, "board_size"),
    ({"hotspots": {"alerts": {"windows_days": 7}}}, "windows_days"),
    ({"hotspots": {"fdr": 1}}, "fdr"),
    ({"hotspots": {"alpha": "0.05"}}, "alpha"),
    ({"hotspots": {"forecast": {"area_shares": 0.1}}}, "area_shares"),
    ({"allocation": {"budget": "1200"}}, "budget"),
    ({"allocation": {"budget": True}}, "budget"),
    ({"metric_crs": 4546}, "metric_crs"),
    ({"norms": {"urban": 300}}, "urban"),
    ({"layers": {"buildings": {"crs": 4326}}}, "crs"),
])
def test_wrong_type_is_refused_naming_the_key(user, key):
    err = _refused(user)
    assert f"{key} = " in err.en and "wrong type" in err.en and "类型不对" in err.zh


def test_values_of_the_right_type_and_users_own_names_are_accepted():
    s = check_settings({
        "crs": "GCJ-02", "metric_crs": "EPSG:4546",
        "columns": {"buildings": {"楼号": "building_id"}},
        "layers": {"incidents": {"crs": "BD-09", "file": "事件.csv"}},
        "norms": {"rural": {"households_min": 100}, "communities": {"150102001001": {"households_max": 450}}},
        "allocation": {"budget": 1200, "min_per_street": 10},
        "grids": {"search_budget": 1000, "max_seconds": 5, "weights": {"balance": 2}, "dedicated": {"school": {"min_area_m2": 1e4}}},
        "cases": {"weights": {"returned_rate": 0.2}, "min_cases": 10},
        "hotspots": {"alpha": 0.1, "band_m": 800, "alerts": {"recurrence_days": 182.5}, "fishnet": {"cell_m": 250}, "risk": {"category_weights": {"噪音": 0.5}}},
        "staffing": {"workload": {"incident_minutes": {"供热": 30}}},
        "app": {"attribution": "数据: 某某街道办"},
    })
    assert s["norms"]["rural"] == {**config.DEFAULTS["norms"]["rural"], "households_min": 100}
    assert s["grids"]["search_budget"] == 1000 and s["grids"]["seed"] == config.DEFAULTS["grids"]["seed"]
    assert s["hotspots"]["risk"]["category_weights"] == {"噪音": 0.5}
    assert s["staffing"]["workload"]["incident_minutes"]["供热"] == 30
    assert s["staffing"]["workload"]["incident_minutes"]["default"] == 60.0  # merged, not replaced


def test_defaults_are_not_modified_by_loading():
    before = default_settings()
    check_settings({"grids": {"weights": {"balance": 3.0}}, "norms": {"urban": {"households_min": 10}}})
    assert default_settings() == before


def test_load_settings_names_the_file(tmp_path):
    (tmp_path / "gridgov.toml").write_text("[allocaton]\nbudget = 12\n", encoding="utf-8")
    with pytest.raises(SettingsError) as info:
        load_settings(tmp_path)
    assert str(tmp_path / "gridgov.toml") in info.value.en and "[allocation]" in info.value.en


def test_demo_settings_file_is_valid(tmp_path):
    from gridgov.demo_city import _toml

    (tmp_path / "gridgov.toml").write_text(_toml("small", 0, 120), encoding="utf-8")
    s = load_settings(tmp_path)
    assert s["allocation"]["budget"] == 120 and s["allocation"]["min_per_street"] == 10


def test_range_checks_stay():
    assert "households_min" in _refused({"norms": {"urban": {"households_min": 600, "households_max": 500}}}).en
    assert "max_reject_share" in _refused({"ingest": {"max_reject_share": 1.5}}).en
    assert "lock_wait_seconds" in _refused({"run": {"lock_wait_seconds": -1}}).en


def test_the_salt_is_not_a_setting_and_never_recorded():
    err = _refused({"privacy": {"salt": "secret-salt"}})
    assert ".gridgov-salt" in err.en and ".gridgov-salt" in err.zh and "secret-salt" not in str(err)
    assert "privacy" not in settings_for_record({**default_settings(), "privacy": {"salt": "x"}})


def _leaves(d: dict, prefix: str = "") -> list[str]:
    out = []
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out += _leaves(v, f"{prefix}{k}.")
        else:
            out.append(f"{prefix}{k}")
    return out


def test_docs_table_covers_every_key_of_the_contract_and_run_sections():
    text = DOCS.read_text(encoding="utf-8")
    sections = [k for k, v in config.DEFAULTS.items() if not isinstance(v, dict) or k not in config.STAGES]
    missing = []
    for sec in sections:
        value = config.DEFAULTS[sec]
        keys = [sec] if not isinstance(value, dict) or not value else [f"{sec}.{k}" for k in _leaves(value)]
        for dotted in keys:
            leaf = dotted.split(".")[-1]
            if not re.search(rf"`[^`]*\b{re.escape(leaf)}\b[^`]*`", text):
                missing.append(dotted)
    assert not missing, f"docs/settings.md does not document {missing}"
    for stage in config.STAGES:
        assert f"[{stage}]" in text
