"""Export tables of a project database to GeoJSON, GeoPackage, Shapefile (.cpg), CSV or Excel,
and make every workbook the product writes safe and printable.

Two rules hold for every spreadsheet cell written here (issue #9 part 2, #12 part 4):

* **No input text becomes a formula.** A CSV cell that starts with ``=``, ``+``, ``-``, ``@``, a tab
  or a carriage return gets a leading apostrophe (OWASP's CSV-injection advice; numbers, negative
  ones included, stay numbers). In xlsx every text cell is stored as a string (``t="s"``), never as
  a formula, so ``=HYPERLINK(…)`` opens as the text it is; the product writes no formulas at all.
* **A workbook prints.** Landscape A4, fit to one page wide (any number of pages tall), the header
  row repeated on every page, frozen header, autofilter, column widths from the content (a CJK
  character counts two), long text wrapped instead of cut, 12-digit codes as text at full width,
  whole numbers with thousands separators and other numbers with sensible decimals, the sheet name
  and page number in the footer. :func:`make_printable` does this to any openpyxl workbook;
  :func:`make_printable_file` to a saved ``.xlsx``.
"""
from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path

import geopandas as gpd
import pandas as pd

from pipelines.db import connect, quote_ident, read_gdf, read_table, table_exists
from pipelines.errors import InputFileError

FORMATS = {"geojson": ".geojson", "gpkg": ".gpkg", "shp": ".shp", "csv": ".csv", "xlsx": ".xlsx"}

#: First characters that make a spreadsheet read a cell as a formula (or DDE payload).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

#: Widest column (in character widths) before text wraps inside the cell.
MAX_WIDTH = 48
#: Header words that mark a code column (kept as text at full width).
_CODE_HEADER = re.compile(r"(code|_id$|^id$|代码|编码|编号|区划)", re.IGNORECASE)
#: Units of contract columns, shown in xlsx headers (CSV keeps the bare names for machines).
UNITS = {
    "households": "户", "residents": "人", "elderly_alone": "人", "disabled": "人", "low_income": "人",
    "renters": "户", "area_km2": "km²", "area_m2": "m²", "workload": "小时/月", "hours": "小时",
    "current_staff": "人", "recommended_staff": "人", "required_staff": "人(FTE)", "required_headcount": "人",
    "gap": "人", "budget": "人", "headcount": "人", "floors": "层", "severity": "1–5",
}


# ---- formula safety ------------------------------------------------------------------------

def is_formula_like(value: object) -> bool:
    """Whether a spreadsheet would run ``value`` as a formula (text starting with ``= + - @``, tab, CR).

    >>> is_formula_like('=HYPERLINK("http://x","y")'), is_formula_like("-3"), is_formula_like(-3)
    (True, True, False)
    """
    return isinstance(value, str) and value.startswith(FORMULA_START)


def csv_safe(value: object) -> object:
    """``value`` with a leading apostrophe when it is formula-like text; anything else unchanged.

    >>> csv_safe("=1+1"), csv_safe("@SUM(A1)"), csv_safe(-5), csv_safe("社区")
    ("'=1+1", "'@SUM(A1)", -5, '社区')
    """
    return "'" + value if is_formula_like(value) else value


def csv_safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose formula-like text cells (and column names) carry a leading apostrophe."""
    out = pd.DataFrame(frame).copy()
    for c in out.columns:
        col = out[c]
        if not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_datetime64_any_dtype(col)):
            if col.map(is_formula_like).any():
                out[c] = col.map(csv_safe)
    out.columns = [csv_safe(str(c)) for c in out.columns]
    return out


def write_csv(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` as UTF-8 CSV with BOM (Excel opens it with Chinese intact), formula-safe."""
    path = Path(path)
    # CRLF line ends: the csv writer then quotes any field holding a bare CR or LF (Excel's own format)
    csv_safe_frame(frame).to_csv(path, index=False, encoding="utf-8-sig", lineterminator="\r\n")
    return path


# ---- printable workbooks --------------------------------------------------------------------

def display_width(text: object) -> int:
    """Width of ``text`` in character cells: CJK and full-width characters count two.

    >>> display_width("150102001001"), display_width("海拉尔东路街道"), display_width(None)
    (12, 14, 0)
    """
    if text is None:
        return 0
    s = text if isinstance(text, str) else _number_text(text)
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in s)


def _number_text(v: object) -> str:
    if isinstance(v, bool):
        return "FALSE"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:,.2f}" if math.isfinite(v) else ""
    if isinstance(v, datetime | date):
        return "2025-01-01 00:00"
    return str(v)


def _is_code_column(header: object, values: list) -> bool:
    if isinstance(header, str) and _CODE_HEADER.search(header):
        return True
    digits = [v for v in values if v is not None and v != ""]
    if not digits:
        return False
    return all((isinstance(v, int) and not isinstance(v, bool) and v >= 10**9)
               or (isinstance(v, str) and v.isdigit() and len(v) >= 9) for v in digits)


def _number_format(values: list) -> str | None:
    nums = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)
            and (not isinstance(v, float) or math.isfinite(v))]
    if not nums:
        return None
    if all(float(v).is_integer() for v in nums):
        return "#,##0"
    typical = sorted(abs(float(v)) for v in nums)[len(nums) // 2]
    if typical >= 100:
        return "#,##0"
    if typical >= 1:
        return "#,##0.0"
    return "0.00"


def make_printable(wb, *, header_row: int = 1, title: str | None = None,
                   print_rows: dict[str, int] | None = None) -> None:
    """Make every sheet of the openpyxl workbook ``wb`` safe and printable, in place.

    Parameters
    ----------
    wb
        An ``openpyxl.Workbook`` (not write-only), e.g. loaded with ``openpyxl.load_workbook``.
    header_row
        Row of the column headers (repeated on every printed page, frozen, autofilter).
    title
        Printed in the page header of every page (default: the sheet name).
    print_rows
        ``{sheet name: n}``: print only the header and the first ``n`` data rows of that sheet
        (the sheet keeps every row; a long detail table is sorted so its first rows matter most).
    """
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.properties import PageSetupProperties

    bold = Font(bold=True)
    fill = PatternFill("solid", fgColor="E8E8E8")
    wrap_top = Alignment(wrap_text=True, vertical="top")
    for ws in wb.worksheets:
        max_row, max_col = ws.max_row, ws.max_column
        if max_row < 1 or max_col < 1:
            continue
        hdr = min(header_row, max_row)
        row_lines: dict[int, int] = {}  # rows whose wrapped text needs more than one line
        for col_idx in range(1, max_col + 1):
            cells = [ws.cell(row=r, column=col_idx) for r in range(1, max_row + 1)]
            for c in cells:  # text stays text: never a formula
                if c.data_type == "f" or isinstance(c.value, str):
                    c.data_type = "s"
            header = cells[hdr - 1].value
            body = cells[hdr:]
            values = [c.value for c in body]
            letter = get_column_letter(col_idx)
            if _is_code_column(header, values):
                for c in body:
                    if isinstance(c.value, int | float) and not isinstance(c.value, bool):
                        c.value = str(int(c.value))
                        c.data_type = "s"
                    c.number_format = "@"
            elif any(isinstance(v, datetime | date) for v in values):
                for c in body:
                    if isinstance(c.value, datetime | date):
                        c.number_format = "yyyy-mm-dd hh:mm" if isinstance(c.value, datetime) else "yyyy-mm-dd"
            else:
                fmt = _number_format(values)
                if fmt:
                    for c in body:
                        if isinstance(c.value, int | float) and not isinstance(c.value, bool):
                            c.number_format = fmt
            widest = max([display_width(c.value) for c in cells[hdr - 1:]] + [4])
            header_w = display_width(header)
            # the header may wrap onto two lines; the values must fit (codes, names) up to MAX_WIDTH
            value_w = max([display_width(v) for v in values] + [4])
            width = min(MAX_WIDTH, max(value_w, math.ceil(header_w / 2), 6)) + 2
            ws.column_dimensions[letter].width = width
            if widest > MAX_WIDTH or value_w > MAX_WIDTH:
                for c in body:
                    c.alignment = wrap_top
                    lines = math.ceil(display_width(c.value) / max(1.0, width - 2))
                    if lines > row_lines.get(c.row, 1):
                        row_lines[c.row] = lines
        lines = 1
        for c in ws[hdr]:
            if c.value is not None:
                c.font = bold
                c.fill = fill
                c.alignment = Alignment(wrap_text=True, vertical="center")
                col_w = ws.column_dimensions[c.column_letter].width or 10
                lines = max(lines, math.ceil(display_width(c.value) / max(1.0, col_w - 1)))
        ws.row_dimensions[hdr].height = 15 * min(lines, 5)  # the wrapped header shows whole
        for r, n_lines in row_lines.items():  # spreadsheet programs do not grow rows on opening a file
            ws.row_dimensions[r].height = 15 * min(n_lines, 10)
        # freeze the header (and the first column when it holds a code or name and the table is wide)
        ws.freeze_panes = f"{'B' if max_col >= 6 else 'A'}{hdr + 1}"
        if max_row > hdr:
            ws.auto_filter.ref = f"A{hdr}:{get_column_letter(max_col)}{max_row}"
        # print: landscape A4, one page wide, header rows on every page
        ws.page_setup.orientation = "landscape"
        ws.page_setup.paperSize = ws.PAPERSIZE_A4
        ws.page_setup.fitToWidth = 1
        ws.page_setup.fitToHeight = 0
        if ws.sheet_properties.pageSetUpPr is None:
            ws.sheet_properties.pageSetUpPr = PageSetupProperties(fitToPage=True)
        else:
            ws.sheet_properties.pageSetUpPr.fitToPage = True
        ws.print_title_rows = f"{hdr}:{hdr}"
        ws.print_options.gridLines = True
        ws.page_margins.left = ws.page_margins.right = 0.4
        ws.page_margins.top = ws.page_margins.bottom = 0.6
        ws.oddHeader.center.text = (title or "&A")
        ws.oddFooter.center.text = "&A · 第 &P 页 / 共 &N 页 · page &P of &N"
        n = (print_rows or {}).get(ws.title)
        if n is not None and max_row > hdr + n:
            ws.print_area = f"A1:{get_column_letter(max_col)}{hdr + n}"


def make_printable_file(path: str | Path, **kw) -> Path:
    """Load the ``.xlsx`` at ``path``, apply :func:`make_printable`, save it in place; return the path."""
    from openpyxl import load_workbook

    path = Path(path)
    wb = load_workbook(path)
    make_printable(wb, **kw)
    wb.save(path)
    return path


def _excel_value(v: object) -> object:
    if v is None:
        return None
    if isinstance(v, float) and not math.isfinite(v):
        return None
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    if isinstance(v, pd.Timestamp):
        return v.to_pydatetime()
    if hasattr(v, "item") and not isinstance(v, str):  # numpy scalars
        return v.item()
    if isinstance(v, dict | list | tuple | set | bytes):
        v = str(v)
    if isinstance(v, str):
        from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

        v = ILLEGAL_CHARACTERS_RE.sub("", v)  # control characters no xlsx may hold
    return v


def write_workbook(path: str | Path, sheets: Iterable[tuple[str, pd.DataFrame]], *,
                   headers: dict[str, str] | None = None, title: str | None = None,
                   print_rows: dict[str, int] | None = None) -> Path:
    """Write DataFrames as sheets of one printable, formula-safe workbook; return the path.

    ``headers`` maps column names to the shown header (default: the name, with its unit from
    :data:`UNITS` in brackets).
    """
    from openpyxl import Workbook

    path = Path(path)
    wb = Workbook()
    wb.remove(wb.active)
    for name, frame in sheets:
        ws = wb.create_sheet(_sheet_name(name))
        cols = list(frame.columns)
        shown = [(headers or {}).get(str(c)) or _with_unit(str(c)) for c in cols]
        for j, h in enumerate(shown, start=1):
            cell = ws.cell(row=1, column=j, value=h)
            cell.data_type = "s"
        for i, row in enumerate(frame.itertuples(index=False, name=None), start=2):
            for j, v in enumerate(row, start=1):
                cell = ws.cell(row=i, column=j, value=_excel_value(v))
                if isinstance(cell.value, str):
                    cell.data_type = "s"
    make_printable(wb, title=title, print_rows=print_rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


def _with_unit(col: str) -> str:
    unit = UNITS.get(col)
    return f"{col} ({unit})" if unit else col


def _sheet_name(name: str) -> str:
    clean = re.sub(r"[\[\]:*?/\\]", "_", str(name)).strip("'") or "sheet"
    return clean[:31]


# ---- table export --------------------------------------------------------------------------

def load_frame(con, table: str) -> pd.DataFrame:
    """A table as a GeoDataFrame when it has a geometry column, else a DataFrame."""
    if not table_exists(con, table):
        names = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables "
                                           "WHERE table_schema='main' ORDER BY 1").fetchall()]
        raise InputFileError(f"数据库中没有表 {table}；可用的表：{names}",
                             f"No table {table} in the database; available: {names}")
    cols = [r[0] for r in con.execute(f"DESCRIBE {quote_ident(table)}").fetchall()]
    if "geometry" in cols:
        return read_gdf(con, table)
    return read_table(con, table)


def export_table(db: str | Path, table: str, fmt: str, out: str | Path) -> Path:
    """Write ``table`` of database ``db`` to ``out`` in format ``fmt``; return the path written."""
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise ValueError(f"未知格式 {fmt}；可选 {list(FORMATS)} / unknown format {fmt}; choose one of {list(FORMATS)}")
    out = Path(out)
    if out.suffix.lower() != FORMATS[fmt]:
        out = out.with_suffix(FORMATS[fmt]) if out.suffix else out / f"{table}{FORMATS[fmt]}"
    out.parent.mkdir(parents=True, exist_ok=True)
    con = connect(db, read_only=True)
    try:
        frame = load_frame(con, table)
    finally:
        con.close()
    for c in frame.columns:  # JSON/list/dict values are not valid attribute types in GIS formats
        if c != "geometry" and frame[c].map(lambda v: isinstance(v, dict | list)).any():
            frame[c] = frame[c].map(lambda v: str(v) if isinstance(v, dict | list) else v)
    if fmt == "csv":
        df = pd.DataFrame(frame)
        if isinstance(frame, gpd.GeoDataFrame):
            df["geometry"] = frame.geometry.to_wkt()
        write_csv(df, out)
    elif fmt == "xlsx":
        df = pd.DataFrame(frame)
        if isinstance(frame, gpd.GeoDataFrame):
            df = df.drop(columns="geometry")
        write_workbook(out, [(table, df)])
    else:
        if not isinstance(frame, gpd.GeoDataFrame):
            raise InputFileError(f"表 {table} 没有几何，请导出为 csv 或 xlsx。",
                                 f"Table {table} has no geometry; export it as csv or xlsx.")
        driver = {"geojson": "GeoJSON", "gpkg": "GPKG", "shp": "ESRI Shapefile"}[fmt]
        kwargs = {"encoding": "UTF-8"} if fmt == "shp" else {}
        frame.to_file(out, driver=driver, engine="pyogrio", **kwargs)
        if fmt == "shp" and not out.with_suffix(".cpg").exists():
            out.with_suffix(".cpg").write_text("UTF-8")
    return out
