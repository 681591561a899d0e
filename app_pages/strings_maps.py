"""Interface strings of the maps' level of detail (issue #13.4): streets first when a project
has too many units to draw at once, the units of one chosen street when zoomed in.
key: (中文, English)."""
from __future__ import annotations

STRINGS: dict[str, tuple[str, str]] = {
    # option labels never change with the language (Streamlit sends the label back)
    "maps.all_streets": ("全部街道 / All streets", "全部街道 / All streets"),
    "maps.street": ("街道", "Street"),
    "maps.street_help": (
        "选择一条街道：地图放大到该街道并显示其全部网格。",
        "Choose a street: the map zooms to it and shows every grid of it.",
    ),
    "maps.street_level": (
        "本项目共 {units} 个分析单元，超过一次可显示的 {max} 个：地图先按街道汇总显示"
        "（颜色为该街道的热点单元占比）；在上方选择一条街道即可查看其网格。",
        "This project has {units} analysis units, more than the {max} one map can carry: the "
        "map first shows streets (coloured by the share of their units that are hot); choose a "
        "street above to see its grids.",
    ),
    "maps.street_units": (
        "显示街道 {street} 的 {n} 个分析单元（全部共 {units} 个）。",
        "Showing the {n} analysis units of {street} ({units} in all).",
    ),
    "maps.areas_capped": (
        "显示前 {n} 个（共 {total} 个，热点在前）；选择街道可查看该街道及其社区。",
        "The first {n} of {total} (hot first); choose a street to see it and its communities.",
    ),
    "maps.layer.streets": ("街道（汇总）", "Streets (summary)"),
    "maps.col.street_name": ("街道", "Street"),
    "maps.col.street_code": ("街道代码", "Street code"),
    "maps.col.district_name": ("区县", "District"),
    "maps.col.units": ("分析单元数", "Analysis units"),
    "maps.col.hot_units": ("热点单元数", "Hot units"),
    "maps.col.cold_units": ("冷点单元数", "Cold units"),
    "maps.col.hot_share": ("热点单元占比", "Share of hot units"),
    "maps.col.trend_units": ("呈热点趋势的单元数", "Units with a hot trend"),
    "maps.col.trend_share": ("呈热点趋势的单元占比", "Share with a hot trend"),
    "maps.col.incidents": ("事件数", "Incidents"),
    "maps.legend.hot_share": ("街道：热点单元占比", "Streets: share of hot units"),
    "maps.legend.trend_share": ("街道：呈热点趋势的单元占比", "Streets: share of units with a hot trend"),
    "maps.legend.none": ("无", "none"),
    "maps.legend.choose": ("选择街道查看其网格", "Choose a street to see its grids"),
    # the map page
    "maps.map_street_level": (
        "本项目共 {communities} 个社区，超过一次可显示的 {max} 个：地图先显示街道（颜色为户籍密度）；"
        "选择一条街道即可查看其社区、楼栋和特殊单位。",
        "This project has {communities} communities, more than the {max} one map can carry: the "
        "map first shows streets (coloured by household density); choose a street to see its "
        "communities, buildings and special units.",
    ),
    "maps.legend.street_density": ("街道户籍密度（户/平方公里）", "Street household density (per km²)"),
}
