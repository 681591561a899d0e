"""Interface strings in Chinese (default) and English, and the ``t(key)`` helper.

Every label the app shows comes from :data:`STRINGS`, so switching the language in the sidebar
switches the whole interface. Enumerated values (unit types, barrier kinds, run statuses…) live
under dotted keys such as ``"unit_type.school"``; :func:`label` looks them up and falls back to
the raw value when a project uses a value we do not know.
"""
from __future__ import annotations

LANGS = ("zh", "en")
DEFAULT_LANG = "zh"
LANG_NAMES = {"zh": "中文", "en": "English"}

# key: (中文, English)
STRINGS: dict[str, tuple[str, str]] = {
    # app shell
    "app.title": ("网格化治理分析平台", "Grid governance analytics"),
    "nav.overview": ("概览", "Overview"),
    "nav.map": ("地图", "Map"),
    "sidebar.language": ("语言 / Language", "语言 / Language"),
    "sidebar.project": ("项目文件夹", "Project folder"),
    "sidebar.project_help": (
        "启动时指定的项目文件夹（gridgov app 目录、环境变量 GRIDGOV_PROJECT 或 `-- --project 目录`）",
        "The project folder given at start (gridgov app DIR, the GRIDGOV_PROJECT environment "
        "variable or `-- --project DIR`)",
    ),
    "sidebar.database": ("数据库", "Database"),
    "sidebar.modified": ("更新于 {when}", "Modified {when}"),
    "sidebar.map_settings": ("地图设置", "Map settings"),
    "sidebar.tiles": ("底图瓦片 URL 模板", "Basemap tile URL template"),
    "sidebar.tiles_help": (
        "留空 = 不加载底图（离线可用）。也可用环境变量 GRIDGOV_TILES 设置。",
        "Empty = no basemap (works offline). Can also be set with the GRIDGOV_TILES "
        "environment variable.",
    ),
    "sidebar.tiles_examples": ("示例（需要联网）：", "Examples (need internet):"),
    "sidebar.tiles_crs": ("底图坐标系", "Basemap coordinates"),
    "sidebar.tiles_crs_help": (
        "高德、腾讯瓦片使用 GCJ-02（火星坐标），数据会相应偏移后再叠加；天地图、OSM 使用 WGS-84。",
        "AMap and Tencent tiles are in GCJ-02, so the data is shifted to match them; Tianditu "
        "and OSM are WGS-84.",
    ),
    # Selectbox option labels must not change with the language: Streamlit sends the *label*
    # of the chosen option back, and after a language switch the old label would not match.
    "tiles_crs.auto": ("自动识别 / detect from URL", "自动识别 / detect from URL"),
    "tiles_crs.EPSG:4326": ("WGS-84 (OSM, 天地图 Tianditu)", "WGS-84 (OSM, 天地图 Tianditu)"),
    "tiles_crs.GCJ-02": ("GCJ-02 (高德 AMap, 腾讯 Tencent)", "GCJ-02 (高德 AMap, 腾讯 Tencent)"),
    # missing / broken database
    "nodb.title": ("没有找到项目数据库", "No project database found"),
    "nodb.body": (
        "没有找到 `{path}`。请先生成演示项目并运行流程：",
        "`{path}` does not exist. Build the demo project and run the pipeline first:",
    ),
    "nodb.then": (
        "然后在该项目上启动应用（应用只打开启动时指定的项目）：",
        "Then start the app on that project (the app opens only the project it was started on):",
    ),
    "nodb.unset": (
        "尚未指定项目文件夹。",
        "No project folder given.",
    ),
    "dberror.title": ("无法读取数据库 {path}", "Cannot read the database {path}"),
    # overview
    "overview.title": ("概览", "Overview"),
    "overview.counts": ("数据规模", "What the project holds"),
    "count.streets": ("街道", "Streets"),
    "count.communities": ("社区/村", "Communities"),
    "count.buildings": ("楼栋", "Buildings"),
    "count.households": ("户数", "Households"),
    "count.residents": ("人口", "Residents"),
    "count.incidents": ("事件", "Incidents"),
    "count.special_units": ("专属网格单位", "Special units"),
    "count.staff": ("网格员", "Grid staff"),
    "count.not_supplied": ("未提供", "not supplied"),
    "overview.all_tables": ("全部数据表", "All tables"),
    "col.table": ("数据表", "Table"),
    "col.rows": ("行数", "Rows"),
    "overview.run": ("最近一次运行", "Latest run"),
    "overview.no_runs": (
        "还没有运行记录（runs 表为空或不存在）。",
        "No runs recorded yet (the runs table is empty or missing).",
    ),
    "run.status": ("状态", "Status"),
    "run.run_id": ("运行编号", "Run ID"),
    "run.started_at": ("开始时间", "Started"),
    "run.finished_at": ("结束时间", "Finished"),
    "run.duration": ("耗时", "Duration"),
    "run.history": ("运行历史", "Run history"),
    "status.success": ("成功", "success"),
    "status.succeeded": ("成功", "succeeded"),
    "status.ok": ("成功", "ok"),
    "status.completed": ("成功", "completed"),
    "status.failed": ("失败", "failed"),
    "status.error": ("失败", "error"),
    "status.running": ("运行中", "running"),
    "overview.rejects": ("被拒记录", "Rejected rows"),
    "overview.rejects_total": ("被拒行数", "Rejected rows"),
    "overview.rejects_none": ("没有被拒的记录。", "No rows were rejected."),
    "overview.rejects_help": (
        "无法使用的输入行不会丢失：它们连同原因保存在 rejects 表中，可用 `gridgov export` 导出。",
        "Input rows that could not be used are kept, with their reason, in the rejects table; "
        "export them with `gridgov export`.",
    ),
    "col.layer": ("图层", "Layer"),
    "col.reason": ("原因", "Reason"),
    "col.count": ("行数", "Rows"),
    # map
    "map.title": ("地图", "Map"),
    "map.street": ("街道", "Street"),
    "map.download_png": ("下载地图 PNG", "Download map (PNG)"),
    "map.download_pdf": ("下载地图 PDF（A4）", "Download map (PDF, A4)"),
    "map.all_streets": ("全部街道 / all streets", "全部街道 / all streets"),  # option label: fixed
    "map.street_hint": (
        "选择一个街道可显示其中的每栋楼。",
        "Pick one street to draw its individual buildings.",
    ),
    "map.buildings_drawn": ("已绘制 {n} 栋楼", "{n} buildings drawn"),
    "map.buildings_capped": (
        "该街道有 {total} 栋楼，只绘制户数最多的 {n} 栋。",
        "This street has {total} buildings; only the {n} with the most households are drawn.",
    ),
    "map.no_basemap": (
        "未加载底图（离线模式）。可在侧栏“地图设置”中填写瓦片 URL。",
        "No basemap (offline mode). Set a tile URL under “Map settings” in the sidebar.",
    ),
    "map.shifted": (
        "底图为 GCJ-02 坐标，数据已偏移到 GCJ-02 后叠加。",
        "The basemap is in GCJ-02; the data was shifted to GCJ-02 to match it.",
    ),
    "map.shift_unavailable": (
        "底图为 GCJ-02，但坐标转换模块 geo.chinacrs 不可用，数据未偏移（约有数百米误差）。",
        "The basemap is GCJ-02 but geo.chinacrs is not available; the data is not shifted "
        "(expect an offset of a few hundred metres).",
    ),
    "map.assets_missing": (
        "无法准备本地 Leaflet 文件，离线时地图可能无法显示：{error}",
        "Could not prepare the local Leaflet files; the map may be blank offline: {error}",
    ),
    "layer.streets": ("街道边界", "Street boundaries"),
    "layer.communities": ("社区户密度", "Community household density"),
    "layer.buildings": ("楼栋", "Buildings"),
    "layer.special_units": ("专属网格单位", "Special units"),
    "layer.barriers": ("道路、铁路、河流", "Roads, railways, rivers"),
    "layer.basemap": ("底图", "Basemap"),
    "legend.density": ("户密度（户/平方公里）", "Households per km²"),
    "legend.no_data": ("无数据", "no data"),
    "legend.buildings": ("圆圈大小 = 户数", "circle size = households"),
    "legend.special_units": ("专属网格单位", "Special units"),
    "legend.barriers": ("障碍线", "Barriers"),
    "field.street_name": ("街道", "Street"),
    "field.street_code": ("街道代码", "Street code"),
    "field.function_type": ("功能定位", "Function"),
    "field.community_name": ("社区", "Community"),
    "field.community_code": ("社区代码", "Community code"),
    "field.households": ("户数", "Households"),
    "field.residents": ("人口", "Residents"),
    "field.density": ("户/平方公里", "Households/km²"),
    "field.area_km2": ("面积（平方公里）", "Area (km²)"),
    "field.buildings": ("楼栋数", "Buildings"),
    "field.building_id": ("楼栋编号", "Building"),
    "field.unit_name": ("名称", "Name"),
    "field.unit_type": ("类型", "Type"),
    "field.headcount": ("人数", "Headcount"),
    "field.kind": ("类型", "Kind"),
    "field.name": ("名称", "Name"),
    "attribution.demo": (
        "边界: 天地图 (Tianditu) · 名称与代码: 国家统计局 2023 · 街道/社区几何与楼栋为合成演示数据",
        "Boundaries: Tianditu (天地图) · names and codes: NBS 2023 · street/community geometry "
        "and buildings are synthetic demo data",
    ),
    "attribution.project": ("数据: 本项目输入数据", "Data: this project's input files"),
    # enumerations
    "unit_type.school": ("学校", "School"),
    "unit_type.hospital": ("医院", "Hospital"),
    "unit_type.government": ("机关单位", "Government"),
    "unit_type.industrial_park": ("产业园区", "Industrial park"),
    "unit_type.market": ("市场", "Market"),
    "unit_type.commercial_building": ("商务楼宇", "Commercial building"),
    "unit_type.enterprise": ("企业", "Enterprise"),
    "unit_type.other": ("其他", "Other"),
    "kind.major_road": ("主干道", "Major road"),
    "kind.railway": ("铁路", "Railway"),
    "kind.river": ("河流", "River"),
    "kind.other": ("其他", "Other"),
    "function_type.core_commercial": ("核心商圈", "Core commercial"),
    "function_type.old_town": ("老城区", "Old town"),
    "function_type.residential": ("居住区", "Residential"),
    "function_type.new_development": ("新开发区", "New development"),
    "function_type.industrial": ("工业区", "Industrial"),
    "function_type.urban_rural_fringe": ("城乡结合部", "Urban–rural fringe"),
    "layer_name.streets": ("街道", "streets"),
    "layer_name.communities": ("社区", "communities"),
    "layer_name.buildings": ("楼栋", "buildings"),
    "layer_name.incidents": ("事件", "incidents"),
    "layer_name.special_units": ("专属网格单位", "special units"),
    "layer_name.barriers": ("障碍线", "barriers"),
    "layer_name.staff": ("网格员", "staff"),
    "layer_name.current_grids": ("现有网格", "current grids"),
    "layer_name.department_grids": ("部门网格", "department grids"),
}


def _load_page_strings() -> None:
    """Merge ``STRINGS`` of every ``app_pages/strings_<page>.py`` (one file per page, so pages
    can be added without touching this file)."""
    import importlib
    from pathlib import Path

    for path in sorted(Path(__file__).resolve().parent.glob("strings_*.py")):
        mod = importlib.import_module(f"app_pages.{path.stem}")
        STRINGS.update(getattr(mod, "STRINGS", {}))


_load_page_strings()


def current_lang() -> str:
    """The language chosen in the sidebar (``"zh"`` unless the user picked English)."""
    try:
        import streamlit as st

        lang = st.session_state.get("lang", DEFAULT_LANG)
    except Exception:  # outside a Streamlit script run
        lang = DEFAULT_LANG
    return lang if lang in LANGS else DEFAULT_LANG


def t(key: str, lang: str | None = None, **fmt: object) -> str:
    """Return the interface string ``key`` in ``lang`` (default: the sidebar choice).

    Keyword arguments fill ``{placeholders}``. An unknown key returns the key itself, so a
    missing translation shows up on screen instead of crashing the page.

    Examples
    --------
    >>> t("nav.map", "en")
    'Map'
    >>> t("map.buildings_drawn", "zh", n=12)
    '已绘制 12 栋楼'
    """
    lang = lang or current_lang()
    pair = STRINGS.get(key)
    text = key if pair is None else pair[LANGS.index(lang) if lang in LANGS else 0]
    return text.format(**fmt) if fmt else text


def label(kind: str, value: object, lang: str | None = None) -> str:
    """Translate an enumerated value, e.g. ``label("unit_type", "school")`` → ``"学校"``.

    Values without a translation are returned unchanged (as text).
    """
    key = f"{kind}.{value}"
    return t(key, lang) if key in STRINGS else ("" if value is None else str(value))
