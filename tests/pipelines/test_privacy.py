"""Personal data never stored: plant every format, run, export, and find none of it anywhere."""
from __future__ import annotations

import json
import logging
import re
import stat
import unicodedata
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from pipelines import privacy
from pipelines.db import connect, quote_ident
from pipelines.export import export_table
from pipelines.run import db_path, run_project
from tests.conftest import LAT0, LON0

MOBILES = ["13812340001", "138-1234-0002", "138 1234 0003", "+86 138 1234 0004", "0086-13812340005",
           "１３８１２３４０００６", "+8613812340007", "(+86)13812340008"]
LANDLINES = ["0471-6123456", "(0471)6123457", "010-62345678", "+86 471 6123458"]
IDS = ["11010519491231002X", "110105194912310021", "150102198807154417", "110105491231002"]
NAMES = ["欧阳振华", "司马青衫"]


def _core(value: str) -> str:
    """The digits a planted value is found by: NFKC, separators and the +86 prefix removed."""
    d = re.sub(r"[^0-9Xx]", "", unicodedata.normalize("NFKC", value))
    if len(d) > 11 and d.startswith(("0086", "86")) and len(d) not in (15, 18):
        d = d[4:] if d.startswith("0086") else d[2:]
        if not d.startswith("1"):
            d = "0" + d  # +86 471 … is the landline 0471 …
    return d


def _normalise(text: str) -> str:
    return re.sub(r"[\s\-+()（）]", "", unicodedata.normalize("NFKC", text))


def _plant(project: Path) -> list[str]:
    """Put every format somewhere in the project; return the values to look for."""
    inc = pd.read_csv(project / "incidents.csv", dtype=str)
    values = MOBILES + LANDLINES + IDS
    inc["备注"] = [f"居民反映噪音，回电 {values[k % len(values)]} 谢谢" for k in range(len(inc))]
    inc["description"] = [f"caller id {values[(k + 5) % len(values)]}, see file" for k in range(len(inc))]
    inc["负责人"] = [NAMES[k % 2] for k in range(len(inc))]
    inc["lxdh"] = [values[(k + 9) % len(values)] for k in range(len(inc))]
    inc["13812340095"] = "x"  # a column *named* like a phone number
    bad = [
        # a rejected row (bad date) carrying personal data in free text and in a coordinate
        {"incident_id": "E900", "occurred_at": "not-a-date", "category": "dispute", "severity": "3",
         "lon": str(LON0 + 0.005), "lat": str(LAT0 + 0.005), "备注": "联系 13812340099 或 110105194912310021",
         "description": "x", "负责人": NAMES[0], "lxdh": "13812340098"},
        {"incident_id": "E901", "occurred_at": "2024-03-01 10:00", "category": "dispute", "severity": "3",
         "lon": "138-1234-0097", "lat": str(LAT0), "备注": "坐标栏里写了电话", "description": "x",
         "负责人": NAMES[1], "lxdh": ""},
        # a phone in a column that is not free text (a time): rejected, and masked in raw and reason
        {"incident_id": "E902", "occurred_at": "13812340096", "category": "dispute", "severity": "3",
         "lon": str(LON0 + 0.005), "lat": str(LAT0 + 0.005), "备注": "", "description": "x",
         "负责人": NAMES[1], "lxdh": ""},
    ]
    inc = pd.concat([inc, pd.DataFrame(bad)], ignore_index=True)
    inc.to_csv(project / "incidents.csv", index=False, encoding="utf-8")
    # an integer phone column under an innocent name, and a contact column, in a GeoJSON layer
    gj = json.loads((project / "special_units.geojson").read_text(encoding="utf-8"))
    for k, f in enumerate(gj["features"]):
        f["properties"]["号码"] = 13812340100 + k
        f["properties"]["业主"] = NAMES[k % 2]
        f["properties"]["证件号"] = IDS[k % len(IDS)]
    (project / "special_units.geojson").write_text(json.dumps(gj, ensure_ascii=False), encoding="utf-8")
    return values + ["13812340095", "13812340099", "110105194912310021", "13812340098", "138-1234-0097", "13812340096",
                     "13812340100",
                     "13812340101", "13912345678", "110101199003071234", "11010119900307123X"]


def _db_text(project: Path) -> str:
    con = connect(db_path(project), read_only=True)
    try:
        names = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()]
        parts = []
        for n in names:
            cols = [r[0] for r in con.execute(f"DESCRIBE {quote_ident(n)}").fetchall()]
            parts.append(" | ".join(cols))
            sel = ", ".join(f"CAST({quote_ident(c)} AS VARCHAR)" for c in cols)
            for row in con.execute(f"SELECT {sel} FROM {quote_ident(n)}").fetchall():
                parts.append(" | ".join("" if v is None else str(v) for v in row))
    finally:
        con.close()
    return "\n".join(parts), names


def _xlsx_text(path: Path) -> str:
    wb = openpyxl.load_workbook(path, read_only=True)
    return "\n".join(" | ".join("" if v is None else str(v) for v in row)
                     for ws in wb.worksheets for row in ws.iter_rows(values_only=True))


def test_no_planted_personal_value_anywhere(tiny_project, tmp_path, caplog):
    planted = _plant(tiny_project)
    caplog.set_level(logging.DEBUG)
    said: list[str] = []
    summary = run_project(tiny_project, stages=[], progress=said.append)

    db_text, tables = _db_text(tiny_project)
    texts = {"database": db_text, "log": caplog.text + "\n".join(said),
             "summary": json.dumps(summary, ensure_ascii=False)}
    for t in tables:
        for fmt in ("csv", "xlsx"):
            out = export_table(db_path(tiny_project), t, fmt, tmp_path / "export" / f"{t}.{fmt}")
            texts[f"{t}.{fmt}"] = out.read_text(encoding="utf-8-sig") if fmt == "csv" else _xlsx_text(out)
    for where, text in texts.items():
        norm = _normalise(text)
        for value in planted:
            assert _core(value) not in norm, (where, value)
        for name in NAMES + ["王五", "赵六"]:
            assert name not in text, (where, name)

    # the data itself is still there: every good incident, both rejects, the repeat-count key
    con = connect(db_path(tiny_project), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM incidents").fetchone()[0] == 30
        assert con.execute("SELECT count(DISTINCT reporter_key) FROM incidents").fetchone()[0] == 30
        rej = con.execute("SELECT source_row, raw FROM rejects WHERE layer='incidents' ORDER BY 1").fetchall()
        assert [r[0] for r in rej] == [31, 32, 33]
        assert "联系 *** 或 ***" in rej[0][1]
        cols = [r[0] for r in con.execute("DESCRIBE incidents").fetchall()]
        assert "备注" in cols and "description" in cols and "负责人" not in cols and "lxdh" not in cols
        remark = con.execute("SELECT 备注 FROM incidents WHERE incident_id='E000'").fetchone()[0]
        assert remark.startswith("居民反映噪音，回电 ***")
        ucols = [r[0] for r in con.execute("DESCRIBE special_units").fetchall()]
        assert "unit_name" in ucols and not {"号码", "业主", "证件号"} & set(ucols)
        assert "name" in [r[0] for r in con.execute("DESCRIBE barriers").fetchall()]
        assert con.execute("SELECT street_name FROM streets ORDER BY 1").fetchall() == [("乙街道",), ("甲街道",)]
    finally:
        con.close()
    dropped = summary["ingest"]["layers"]["incidents"]["pii_columns_dropped"]
    assert set(dropped) >= {"负责人", "lxdh", "reporter_phone", "reporter_name"}
    assert set(summary["ingest"]["layers"]["special_units"]["pii_columns_dropped"]) == {"号码", "业主", "证件号"}
    assert "负责人" in caplog.text  # the log says which columns were dropped (names only)


def test_salt_lives_outside_the_database(tiny_project):
    run_project(tiny_project, stages=[])
    salt_file = tiny_project / privacy.SALT_FILE
    assert salt_file.exists() and stat.S_IMODE(salt_file.stat().st_mode) == 0o600
    salt = salt_file.read_text().strip()
    con = connect(db_path(tiny_project), read_only=True)
    try:
        key1 = con.execute("SELECT reporter_key FROM incidents WHERE incident_id='E001'").fetchone()[0]
    finally:
        con.close()
    assert salt not in _db_text(tiny_project)[0]
    # the same salt on the next run: the key of a phone is stable, so repeats can be counted
    run_project(tiny_project, stages=[])
    con = connect(db_path(tiny_project), read_only=True)
    try:
        assert con.execute("SELECT reporter_key FROM incidents WHERE incident_id='E001'").fetchone()[0] == key1
    finally:
        con.close()


def test_reporter_key_ignores_format():
    keys = privacy.reporter_key(pd.Series(["13812340004", "+86 138 1234 0004", "138-1234-0004",
                                           "１３８１２３４０００４", 13812340004, None, "13812340005"]), b"s")
    assert len(set(keys[:5])) == 1 and keys[5] is None and keys[6] != keys[0]


@pytest.mark.parametrize("value", MOBILES + LANDLINES + IDS)
def test_every_format_is_masked(value):
    assert privacy.mask_text(f"备注：{value}。") == "备注：***。"


@pytest.mark.parametrize("value", ["2025-03-05 14:20:00", "150102001001", "150102001001001", "B0003",
                                   "111.601234", "1234567 元", "20250305", "第 2 网格 13 号楼"])
def test_codes_dates_and_amounts_are_not_masked(value):
    assert privacy.mask_text(value) == value


def test_id_checksum():
    assert privacy.id18_checksum_ok("11010519491231002X")
    assert not privacy.id18_checksum_ok("110105194912310022")


@pytest.mark.parametrize("name,person", [
    ("姓名", True), ("负责人", True), ("业主", True), ("联系人", True), ("联系电话", True), ("身份证号", True),
    ("证件号", True), ("lxdh", True), ("zjhm", True), ("xm", True), ("sfzh", True), ("name", True),
    ("reporter_name", True), ("PhoneNumber", True), ("tel", True), ("id_card", True), ("contact", True),
    ("street_name", False), ("building_name", False), ("小区名称", False), ("备注", False), ("hotel", False),
    ("xmin", False), ("staff_id", False), ("户数", False), ("description", False),
])
def test_person_columns_by_name(name, person):
    assert privacy.is_person_column(name) is person


def test_vectorised_masking_finds_every_format():
    values = MOBILES + LANDLINES + IDS + ["138—1234—5678"]
    s = pd.Series([f"备注：{v}。" for v in values] + ["2025-03-05 14:20:00", "111.6910163,40.8"], dtype="str")
    out, n = privacy.mask_series(s)
    assert n == len(values) and (out[: len(values)] == "备注：***。").all()
    assert out.iloc[-2] == "2025-03-05 14:20:00" and out.iloc[-1] == "111.6910163,40.8"
