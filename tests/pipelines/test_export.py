"""Exports: no cell becomes a formula (CSV, xlsx), and every workbook prints (#9.2, #12.4)."""
from __future__ import annotations

import csv
import shutil
import zipfile
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from pipelines.db import connect, write_gdf
from pipelines.export import (
    csv_safe,
    display_width,
    export_table,
    make_printable,
    write_workbook,
)
from pipelines.run import db_path

HOSTILE = ['=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)", "\t=1+1", "\r=1+1"]


def _frame() -> pd.DataFrame:
    n = len(HOSTILE)
    return pd.DataFrame({
        "community_code": [f"15010200100{i}" for i in range(n)],
        "community_name": HOSTILE,
        "households": [350, -20, 0, 12, 7, 1],
        "workload": [12.5, -3.25, 0.0, 1.5, 2.0, 3.0],
        "note": ["海拉尔东路街道办事处第一社区居民委员会网格服务站与物业服务中心", "ok", "", None, "x", "y"],
    })


@pytest.fixture
def db(tmp_path) -> Path:
    path = tmp_path / "t.duckdb"
    con = connect(path)
    write_gdf(con, "communities_x", _frame())
    con.close()
    return path


def _sheet_xml(path: Path) -> str:
    with zipfile.ZipFile(path) as z:
        return "".join(z.read(n).decode("utf-8") for n in z.namelist() if n.startswith("xl/worksheets/"))


def test_csv_cells_that_would_run_start_with_an_apostrophe(db, tmp_path):
    out = export_table(db, "communities_x", "csv", tmp_path / "c.csv")
    with out.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["community_name"] for r in rows] == ["'" + h for h in HOSTILE]
    assert rows[1]["households"] == "-20" and rows[1]["workload"] == "-3.25"  # numbers stay numbers
    assert rows[0]["community_code"] == "150102001000"
    assert csv_safe(-5) == -5 and csv_safe("社区") == "社区"


def test_xlsx_writes_no_formula_and_keeps_the_text(db, tmp_path):
    out = export_table(db, "communities_x", "xlsx", tmp_path / "c.xlsx")
    xml = _sheet_xml(out)
    assert "<f>" not in xml and "<f " not in xml
    ws = openpyxl.load_workbook(out).active
    names = [ws.cell(row=r, column=2).value for r in range(2, 2 + len(HOSTILE))]
    assert names[:5] == HOSTILE[:5]  # the text as it was, shown as text
    assert all(ws.cell(row=r, column=2).data_type == "s" for r in range(2, 2 + len(HOSTILE)))
    assert ws.cell(row=3, column=3).value == -20 and ws.cell(row=3, column=3).data_type == "n"
    assert ws.cell(row=3, column=4).value == -3.25


def test_workbook_print_settings_codes_and_widths(tmp_path):
    out = write_workbook(tmp_path / "w.xlsx", [("communities", _frame())])
    ws = openpyxl.load_workbook(out)["communities"]
    assert ws.page_setup.orientation == "landscape"
    assert int(ws.page_setup.fitToWidth) == 1 and int(ws.page_setup.fitToHeight) == 0
    assert ws.sheet_properties.pageSetUpPr.fitToPage
    assert ws.print_title_rows == "$1:$1"
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == "A1:E7"
    assert ws.oddFooter.center.text and "&P" in ws.oddFooter.center.text
    # 12-digit codes are text at full width
    codes = [ws.cell(row=r, column=1) for r in range(2, 8)]
    assert all(isinstance(c.value, str) and len(c.value) == 12 and c.number_format == "@" for c in codes)
    assert ws.column_dimensions["A"].width >= 12
    # units in the header, integers without decimals, other numbers with one
    assert ws["C1"].value == "households (户)" and ws["C2"].number_format == "#,##0"
    assert ws["D1"].value == "workload (小时/月)" and ws["D2"].number_format == "#,##0.0"
    # a long CJK name: width counted double, capped, and wrapped instead of cut
    assert display_width("海拉尔东路街道") == 14
    assert ws.column_dimensions["E"].width >= 48 and ws["E2"].alignment.wrap_text


def test_make_printable_turns_any_formula_into_text():
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["street_code", "street_name", "gap"])
    ws.append([150102001000, '=HYPERLINK("http://x","y")', -3])
    ws.append([150102002000, "回民区", 4])
    assert ws["B2"].data_type == "f"  # what openpyxl (and pandas.to_excel) would write
    make_printable(wb, print_rows={ws.title: 1})
    assert ws["B2"].data_type == "s" and ws["B2"].value.startswith("=HYPERLINK")
    assert ws["A2"].value == "150102001000" and ws["C2"].value == -3
    assert str(ws.print_area).endswith("$C$2")  # header + 1 data row printed, all rows kept
    assert ws.max_row == 3


@pytest.fixture
def hostile_demo(small_demo, tmp_path) -> Path:
    """The small demo's database with hostile street and community names."""
    dest = tmp_path / "hostile"
    dest.mkdir()
    shutil.copy(db_path(small_demo), dest / "gridgov.duckdb")
    con = connect(dest / "gridgov.duckdb")
    for table in ("streets", "street_allocation", "communities", "community_allocation"):
        cols = {r[0] for r in con.execute(f'DESCRIBE "{table}"').fetchall()}
        for col, value in (("street_name", HOSTILE[0]), ("community_name", HOSTILE[3])):
            if col in cols:
                con.execute(f'UPDATE "{table}" SET "{col}" = ?', [value])
    con.close()
    return dest


def test_staffing_report_prints_and_holds_no_formula(hostile_demo, tmp_path):
    from pipelines.stage_staffing import export_report

    con = connect(hostile_demo / "gridgov.duckdb", read_only=True)
    try:
        out = export_report(con, tmp_path / "report.xlsx")
    finally:
        con.close()
    assert "<f>" not in _sheet_xml(out)
    wb = openpyxl.load_workbook(out)
    found = 0
    for ws in wb.worksheets:
        assert ws.page_setup.orientation == "landscape" and int(ws.page_setup.fitToWidth) == 1
        assert int(ws.page_setup.fitToHeight) == 0 and ws.print_title_rows
        assert ws.freeze_panes and (ws.max_row < 3 or ws.auto_filter.ref)
        header = [c.value for c in ws[1]]
        for j, h in enumerate(header, start=1):
            if isinstance(h, str) and ("代码" in h or "编码" in h):
                vals = [ws.cell(row=r, column=j).value for r in range(2, ws.max_row + 1)]
                vals = [v for v in vals if v is not None]
                found += bool(vals)
                assert all(isinstance(v, str) and len(v) >= 12 and v.isdigit() for v in vals), (ws.title, h)

        for row in ws.iter_rows(min_row=2):
            for c in row:
                if isinstance(c.value, str) and c.value.startswith("=HYPERLINK"):
                    assert c.data_type == "s"
    assert found >= 2  # street and community codes at least


def test_realignment_report_prints_and_holds_no_formula(small_demo, tmp_path):
    from pipelines.services import planner as pl

    db = db_path(small_demo)
    con = connect(db, read_only=True)
    try:
        code = str(pl.list_communities(con)["community_code"].iloc[0])
    finally:
        con.close()
    ws_ = pl.open_workspace(db, code)
    out = pl.realignment_report(ws_, ws_.current, tmp_path / "realign.xlsx")
    assert "<f>" not in _sheet_xml(Path(out))
    for ws in openpyxl.load_workbook(out).worksheets:
        assert ws.page_setup.orientation == "landscape" and int(ws.page_setup.fitToWidth) == 1
        assert ws.print_title_rows and ws.freeze_panes
