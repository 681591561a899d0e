"""The map builder and the offline assets, without Streamlit or a browser."""
from __future__ import annotations

import json
import re

import folium
import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import Polygon
from streamlit_folium import _get_header, _get_map_string

from app_pages import assets
from app_pages._mapbuild import (
    DENSITY_COLORS,
    NO_DATA_COLOR,
    build_map,
    density_breaks,
    density_color,
    detect_tiles_crs,
    prepare_display,
    round_coords,
    simplify_m,
)
from app_pages._shared import load_map_layers
from app_pages.i18n import LANGS, STRINGS, label, t


@pytest.fixture(scope="module")
def display(project):
    return prepare_display(load_map_layers(str(project.db), 0.0))


def _links(m: folium.Map) -> tuple[list[str], list[str]]:
    """The script and stylesheet URLs streamlit-folium would load (its own walk)."""
    js, css = [], []
    stack = [m]
    while stack:
        el = stack.pop()
        js += [u for _, u in getattr(el, "default_js", [])]
        css += [u for _, u in getattr(el, "default_css", [])]
        stack.extend(getattr(el, "_children", {}).values())
    return js, css


def test_every_string_has_both_languages():
    for key, pair in STRINGS.items():
        assert len(pair) == len(LANGS) and all(pair), key
    assert t("nav.map", "en") == "Map" and t("nav.map", "zh") == "地图"
    assert t("no.such.key", "en") == "no.such.key"
    assert label("unit_type", "school", "zh") == "学校"
    assert label("unit_type", "spaceport", "en") == "spaceport"


def test_community_density_is_households_per_km2(display, project):
    comm = display.layers["communities"]
    assert len(comm) == project.communities
    assert comm["households"].sum() == project.households
    expected = (comm["households"] / comm["area_km2"]).round(0)
    assert np.allclose(comm["density"], expected)


def test_coordinates_are_rounded_and_simplified():
    # a 1 km square with 2000 vertices on its edges, near Hohhot
    square = shapely.segmentize(Polygon([(111.6, 40.8), (111.612, 40.8), (111.612, 40.809),
                                         (111.6, 40.809)]), 0.00002)
    frame = gpd.GeoDataFrame({"a": [1]}, geometry=[square], crs="EPSG:4326")
    assert shapely.get_num_coordinates(square) > 1000
    simple = round_coords(simplify_m(frame, 10.0, "EPSG:4546"))
    assert shapely.get_num_coordinates(simple.geometry.iloc[0]) <= 6
    coords = shapely.get_coordinates(simple.geometry.values)
    assert np.allclose(coords, np.round(coords, 5), atol=0)
    assert simple.crs.to_epsg() == 4326


def test_density_classes():
    breaks = density_breaks(np.array([100, 200, 300, 400, 500, 600, 700.0, 0, np.nan]))
    assert breaks == sorted(breaks) and breaks[-1] >= 700
    assert density_color(0, breaks) == NO_DATA_COLOR
    assert density_color(float("nan"), breaks) == NO_DATA_COLOR
    assert density_color(100, breaks) == DENSITY_COLORS[0]
    assert density_color(700, breaks) == DENSITY_COLORS[-1]
    assert density_breaks(np.array([np.nan, 0.0])) == []


def test_tiles_crs_detection():
    assert detect_tiles_crs("https://webrd01.is.autonavi.com/appmaptile?x={x}") == "GCJ-02"
    assert detect_tiles_crs("https://tile.openstreetmap.org/{z}/{x}/{y}.png") == "EPSG:4326"
    assert detect_tiles_crs("https://t0.tianditu.gov.cn/DataServer?T=vec_w") == "EPSG:4326"
    assert detect_tiles_crs(None) == "EPSG:4326"


def test_gcj02_shift_moves_data_east_and_north(project):
    layers = load_map_layers(str(project.db), 0.0)
    wgs = prepare_display(layers).layers["streets"].geometry.iloc[0].centroid
    gcj = prepare_display(layers, "GCJ-02").layers["streets"].geometry.iloc[0].centroid
    dx_m = (gcj.x - wgs.x) * 111_320 * np.cos(np.radians(wgs.y))
    dy_m = (gcj.y - wgs.y) * 110_540
    assert 400 < dx_m < 800 and 50 < dy_m < 300  # about +600 m east, +150 m north at Hohhot


def test_map_layers_and_buildings_only_for_one_street(display, project):
    m, info = build_map(display, lang="zh")
    assert info.layers == ["communities", "barriers", "streets", "special_units"]
    assert info.buildings_drawn == 0
    code, n = next(iter(project.buildings_per_street.items()))
    m, info = build_map(display, lang="en", street_code=code)
    assert "buildings" in info.layers and info.buildings_drawn == info.buildings_total == n
    _, info = build_map(display, street_code=code, max_buildings=5)
    assert info.buildings_drawn == 5 and info.buildings_total == n


def test_map_is_offline_and_small(display, project, tmp_path):
    m, _ = build_map(display, lang="zh", street_code=next(iter(project.buildings_per_street)))
    dropped = assets.localize_map(m)
    assert "bootstrap" in dropped and "awesome_markers" in dropped
    js, css = _links(m)
    assert js and css
    for url in js + css:
        assert url.startswith("../../app/static/vendor/"), url
    # the files those URLs name exist once vendored
    vendor = assets.ensure_vendor(tmp_path / "static")
    for url in js + css:
        assert (vendor / url.removeprefix("../../app/static/vendor/")).is_file(), url
    assert (vendor / "leaflet" / "images" / "layers.png").is_file()
    # what streamlit-folium sends: no external URL anywhere, and small
    m.get_root().render()
    script, header = _get_map_string(m), _get_header(m)
    assert not re.search(r"https?://", script + header)
    assert len(script) < 60_000
    # folium's class defaults are untouched (notebooks in the same process keep working)
    assert folium.Map.default_js[0][1].startswith("https://")


def test_inline_assets_are_data_urls(display):
    m, _ = build_map(display)
    assets.localize_map(m, inline=True)
    js, css = _links(m)
    assert all(u.startswith("data:text/javascript;base64,") for u in js)
    assert all(u.startswith("data:text/css;base64,") for u in css)


def _geojson_layers(m: folium.Map) -> list:
    return [e for e in assets._walk(m) if isinstance(e, folium.GeoJson)]


def test_only_tooltip_fields_travel_and_every_text_is_escaped(project):
    """#9.2: the GeoJSON sent to the browser holds the tooltip fields only (no styling
    columns), every text escaped; the legend and attribution escape the data's words."""
    layers = {k: v.copy() for k, v in load_map_layers(str(project.db), 0.0).items()}
    evil = '<img src=x onerror=alert(1)>'
    layers["communities"]["community_name"] = evil
    layers["streets"]["street_name"] = evil
    layers["special_units"]["unit_name"] = evil
    layers["barriers"]["kind"] = evil
    layers["barriers"]["name"] = evil
    code = next(iter(project.buildings_per_street))
    m, info = build_map(prepare_display(layers), lang="zh", street_code=code, attribution=evil)
    geo = _geojson_layers(m)
    assert len(geo) == len(info.layers) == 5
    for layer in geo:
        tip = next(c for c in layer._children.values() if isinstance(c, folium.GeoJsonTooltip))
        for feature in layer.data["features"]:
            assert list(feature["properties"]) == list(tip.fields)
            for value in feature["properties"].values():
                assert not (isinstance(value, str) and "<" in value), value
        assert all("<" not in alias for alias in tip.aliases)
    html = m.get_root().render()
    assert evil not in html  # neither in the data, the legend nor the attribution
    # as escaped text (folium writes it JSON-encoded: & is \u0026)
    assert html.count("\\u0026lt;img src=x onerror=alert(1)\\u0026gt;") >= 5


# ---- packed polygons (#13.4) ---------------------------------------------------------------

HOSTILE = '</script><script>alert(1)</script>"\'&<img src=x onerror=alert(2)>\u2028'


def _collection() -> dict:
    hole = [[[111.6, 40.8], [111.7, 40.8], [111.7, 40.9], [111.6, 40.8]],
            [[111.62, 40.81], [111.65, 40.81], [111.65, 40.82], [111.62, 40.81]]]
    multi = [[[[111.8, 40.7], [111.81, 40.7], [111.81, 40.71], [111.8, 40.7]]],
             [[[111.9, 40.6], [111.91234, 40.6], [111.91234, 40.61567], [111.9, 40.6]]]]
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": "0", "properties": {"name": "甲", "n": 3, "z": 1.25},
         "geometry": {"type": "Polygon", "coordinates": hole}},
        {"type": "Feature", "id": "1", "properties": {"name": HOSTILE, "n": "—", "z": None},
         "geometry": {"type": "MultiPolygon", "coordinates": multi}},
        {"type": "Feature", "id": "2", "properties": {"name": "甲", "n": 0, "z": -2.5},
         "geometry": {"type": "Polygon", "coordinates": [hole[0]]}},
        {"type": "Feature", "id": "3", "properties": {"name": "点", "n": 7, "z": 0.0},
         "geometry": {"type": "Point", "coordinates": [111.71234, 40.85678]}},
        {"type": "Feature", "id": "4", "properties": {"name": "路", "n": 1, "z": 0.5},
         "geometry": {"type": "LineString", "coordinates": [[111.7, 40.8], [111.75, 40.85]]}},
        {"type": "Feature", "id": "5", "properties": {"name": "河", "n": 2, "z": 0.5},
         "geometry": {"type": "MultiLineString",
                      "coordinates": [[[111.7, 40.8], [111.75, 40.85]],
                                      [[111.6, 40.7], [111.61, 40.72], [111.62, 40.7]]]}},
    ]}


def _unpack_in_node(packed_js: str) -> dict:
    import json
    import shutil
    import subprocess

    from app_pages._mapbuild import UNPACK_JS

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the unpacker is checked by the browser tests")
    script = f"process.stdout.write(JSON.stringify({UNPACK_JS}({packed_js})));"
    out = subprocess.run([node, "-e", script], capture_output=True, text=True, check=True,
                         timeout=60)
    return json.loads(out.stdout)


def test_packed_polygons_unpack_to_the_same_features():
    from app_pages._mapbuild import _script_json, pack_features

    data = _collection()
    packed = pack_features(data)
    assert packed is not None and packed["i"] is True
    assert packed["s"][0] == ["甲", HOSTILE, "点", "路", "河"]  # each distinct text once
    text = _script_json(packed)
    for bad in ("<", ">", "&", "'", "\u2028"):
        assert bad not in text  # nothing in the data can end the <script> it sits in
    got = _unpack_in_node(text)
    assert len(got["features"]) == len(data["features"])
    for a, b in zip(got["features"], data["features"]):
        assert a["id"] == b["id"] and a["properties"] == b["properties"]
        assert a["geometry"]["type"] == b["geometry"]["type"]
        np.testing.assert_allclose(_flat(a["geometry"]["coordinates"]),
                                   _flat(b["geometry"]["coordinates"]), atol=1e-9)


def _flat(coords) -> list[float]:
    if isinstance(coords, (int, float)):
        return [float(coords)]
    return [v for c in coords for v in _flat(c)]


def test_unpackable_data_is_sent_as_folium_does():
    from app_pages._mapbuild import CompactGeoJson, pack_features

    data = _collection()
    data["features"].append({"type": "Feature", "id": "6", "properties": {"name": "p"},
                             "geometry": {"type": "MultiPoint",
                                          "coordinates": [[111.7, 40.8], [111.8, 40.9]]}})
    assert pack_features(data) is None
    m = folium.Map(tiles=None)
    CompactGeoJson(data, style_function=lambda f: {"color": "#000000"}).add_to(m)
    html = m.get_root().render()
    assert '"coordinates"' in html  # folium's own GeoJSON


def test_packed_map_is_smaller_and_draws_with_styles_and_tooltips():
    from app_pages._mapbuild import CompactGeoJson, tooltip_for

    def render(cls) -> str:
        m = folium.Map(tiles=None)
        cls(_collection(), style_function=lambda f: {"fillColor": "#b2182b"},
            highlight_function=lambda f: {"weight": 3},
            tooltip=tooltip_for(["name", "n"], ["名称", "数"])).add_to(m)
        return m.get_root().render()

    plain, packed = render(folium.GeoJson), render(CompactGeoJson)
    assert '"coordinates"' in plain and '"coordinates"' not in packed
    assert "<script>alert(1)" not in packed and "<img src=x" not in packed
    # folium's styler, highlight and tooltip are the same code around the data
    for part in ("_styler(feature)", "_highlighter", "bindTooltip", "_onEachFeature"):
        assert part in packed

    # on a grid of 400 squares the packed map is well under half of folium's
    squares = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"grid_id": f"g{i:03d}", "name": "社区 Community"},
         "geometry": shapely.geometry.mapping(shapely.box(
             111.6 + (i % 20) * 0.00123, 40.8 + (i // 20) * 0.00117,
             111.6 + (i % 20 + 1) * 0.00123, 40.8 + (i // 20 + 1) * 0.00117))}
        for i in range(400)]}
    sizes = {}
    for cls in (folium.GeoJson, CompactGeoJson):
        m = folium.Map(tiles=None)
        cls(json.loads(json.dumps(squares)), style_function=lambda f: {"weight": 1}).add_to(m)
        sizes[cls.__name__] = len(m.get_root().render())
    assert sizes["CompactGeoJson"] < 0.5 * sizes["GeoJson"], sizes


# ---- restyling in the browser (#13.4: a toggle re-sends no geometry) -----------------------


def test_packed_columns_escape_texts_and_keep_missing_values_empty():
    import pandas as pd

    from app_pages._mapbuild import pack_columns

    frame = pd.DataFrame({"name": ["甲", HOSTILE, None, "甲"], "n": [3, 0, 7, 1],
                          "z": [1.25, float("nan"), -2.0, 0.5]})
    packed = pack_columns(frame, ["name", "n", "z", "absent"])
    assert packed["k"] == ["name", "n", "z", "absent"]
    assert packed["s"][0] == ["甲", '&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;'
                                    '&quot;&#x27;&amp;&lt;img src=x onerror=alert(2)&gt;\u2028']
    assert packed["c"][0] == [0, 1, None, 0]
    assert packed["c"][1] == [3, 0, 7, 1] and packed["s"][1] is None
    assert packed["c"][2] == [1.25, None, -2, 0.5]
    assert packed["c"][3] == [None] * 4


def _hotspot_inputs():
    import pandas as pd

    ids = [f"G{i:02d}" for i in range(12)]
    geometry = {g: shapely.geometry.mapping(shapely.box(
        111.6 + (i % 4) * 0.01, 40.8 + (i // 4) * 0.01,
        111.6 + (i % 4 + 1) * 0.01, 40.8 + (i // 4 + 1) * 0.01)) for i, g in enumerate(ids)}
    shapes = {"ids": ids, "geometry": geometry, "bounds": (111.6, 40.8, 111.64, 40.83)}
    classes = ["hot_99", "hot_95", "none", "cold_90", "none", "hot_90",
               "none", "none", "cold_99", "none", "hot_99", "none"]
    trends = ["new_hot", "none", None, "persistent_cold", "none", "sporadic_hot",
              "none", "none", "none", "none", "intensifying_hot", "none"]

    def sel(shift: int) -> pd.DataFrame:
        return pd.DataFrame({
            "grid_id": ids, "z_score": [2.5 - 0.4 * i for i in range(12)],
            "p_fdr": [0.001 * (i + 1) for i in range(12)],
            "hotspot_class": classes[shift:] + classes[:shift],
            "trend_class": trends, "observed": list(range(12)),
            "expected": [1.25] * 12, "ratio": [0.5] * 12,
            "top_category": [HOSTILE] + ["dispute"] * 11, "incidents": list(range(12))})

    community = {g: (HOSTILE if i == 3 else f"社区{i // 4}") for i, g in enumerate(ids)}
    return shapes, sel, community


def _st_folium_args(m: folium.Map) -> dict:
    """The arguments streamlit-folium would send for ``m`` (its own code, no Streamlit)."""
    import streamlit_folium as sf

    captured = []
    original = sf._component_func
    sf._component_func = lambda **kw: captured.append(kw)
    try:
        assets.localize_map(m)
        sf.st_folium(m, key="hotspots_map", height=600, use_container_width=True,
                     returned_objects=[])
    finally:
        sf._component_func = original
    (args,) = captured
    return {k: v for k, v in args.items() if k != "on_change"}


def test_hotspot_map_is_the_same_text_whatever_the_selection_and_channels_carry_no_geometry():
    from app_pages._hotspots import (
        CLASS_COLORS,
        CLASS_ORDER,
        TREND_ORDER,
        hotspot_base_map,
        hotspot_channels,
    )
    from app_pages._mapbuild import layer_json

    shapes, sel, community = _hotspot_inputs()
    first = _st_folium_args(hotspot_base_map(shapes, lang="zh", tiles=None, attribution="x",
                                             community=community))
    again = _st_folium_args(hotspot_base_map(shapes, lang="zh", tiles=None, attribution="x",
                                             community=community))
    assert first == again  # byte-identical: Streamlit sends a reference on a rerun
    script = first["script"]
    assert '"coordinates"' not in script and HOSTILE not in script  # packed, escaped
    assert "\\u0026lt;/script\\u0026gt;" in script  # the community name, escaped
    assert "L.map(" in script and 'postMessage({gridgov: "ready"' in script  # the receiver
    english = _st_folium_args(hotspot_base_map(shapes, lang="en", tiles=None, attribution="x",
                                               community=community))
    assert english["script"] != script  # another language: another map (tooltip names)

    a = hotspot_channels(shapes, sel(0), mode="class", lang="zh", title_line=HOSTILE,
                         tiles=None, density=None, fishnet=None)
    b = hotspot_channels(shapes, sel(1), mode="trend", lang="zh", title_line="t",
                         tiles=None, density=None, fishnet=None)
    assert set(a) == {"values", "view", "kde", "fishnet"}
    for channels in (a, b):
        for payload in channels.values():
            text = layer_json(payload)
            assert '"coordinates"' not in text and '"q":' not in text  # no geometry
            assert HOSTILE not in text and "<script>" not in text and "<img" not in text
    # one class and trend index per unit, in the map's order
    classes = sel(0)["hotspot_class"].tolist()
    assert [CLASS_ORDER[i] for i in a["values"]["cls"]] == classes
    assert [TREND_ORDER[i] for i in a["values"]["trend"]][:2] == ["new_hot", "none"]
    assert TREND_ORDER[a["values"]["trend"][2]] == "none"  # missing trend: none
    assert b["values"]["cls"] != a["values"]["cls"]
    # the legend counts the selection's classes; colours are the page's palette
    assert a["view"]["mode"] == "class" and b["view"]["mode"] == "trend"
    assert "(2)" in a["view"]["legend"] and "&lt;/script&gt;" in a["view"]["legend"]
    assert CLASS_COLORS["hot_99"] in a["view"]["legend"]
    tip = a["values"]["tip"]
    assert tip["k"][0] == "incidents" and len(tip["a"]) == len(tip["k"])
    top = tip["c"][tip["k"].index("top_label")]
    assert tip["s"][tip["k"].index("top_label")][top[0]].startswith("&lt;/script&gt;")


# --------------------------------------------------------------------------------------------
# level of detail (#13.4): streets first, one street's detail when chosen


def _street_shapes() -> dict:
    """Three streets over the 12 units of :func:`_hotspot_inputs` (a row of four each)."""
    codes = ["S1", "S2", "S3"]
    geometry = {c: shapely.geometry.mapping(shapely.box(
        111.6, 40.8 + i * 0.01, 111.64, 40.8 + (i + 1) * 0.01)) for i, c in enumerate(codes)}
    return {"kind": "streets", "ids": codes, "geometry": geometry,
            "bounds": (111.6, 40.8, 111.64, 40.83),
            "bbox": {c: (111.6, 40.8 + i * 0.01, 111.64, 40.81 + i * 0.01)
                     for i, c in enumerate(codes)},
            "names": {"S1": HOSTILE, "S2": "锡林路街道"}, "districts": {"S1": "新城区"}}


def test_street_level_channels_count_hot_units_per_street_and_carry_no_geometry():
    from app_pages._hotspots import (
        SHARE_COLORS,
        hotspot_base_map,
        hotspot_channels,
        share_index,
        street_subset,
    )
    from app_pages._mapbuild import layer_json

    units, sel, community = _hotspot_inputs()
    streets = _street_shapes()
    unit_street = {g: f"S{i // 4 + 1}" for i, g in enumerate(units["ids"])}
    args = _st_folium_args(hotspot_base_map(streets, lang="zh", tiles=None, attribution="x",
                                            community=community))
    script = args["script"]
    assert HOSTILE not in script and "\\u0026lt;/script\\u0026gt;" in script  # name escaped
    assert json.dumps(list(SHARE_COLORS)).replace(" ", "") in script.replace(" ", "")  # palette
    assert args == _st_folium_args(hotspot_base_map(streets, lang="zh", tiles=None,
                                                    attribution="x", community=community))
    a = hotspot_channels(streets, sel(0), mode="class", lang="zh", title_line=HOSTILE,
                         tiles=None, density=None, fishnet=None, unit_street=unit_street)
    b = hotspot_channels(streets, sel(0), mode="trend", lang="en", title_line="t",
                         tiles=None, density=None, fishnet=None, unit_street=unit_street)
    for channels in (a, b):
        for payload in channels.values():
            text = layer_json(payload)
            assert '"coordinates"' not in text and '"q":' not in text  # no geometry
            assert HOSTILE not in text
    # S1: hot_99, hot_95 of 4 units (50 %); S2: hot_90 of 4 (25 %); S3: hot_99 of 4 (25 %)
    tip = dict(zip(a["values"]["tip"]["k"], a["values"]["tip"]["c"]))
    assert tip["units"] == [4, 4, 4] and tip["hot_units"] == [2, 1, 1]
    assert tip["cold_units"] == [1, 0, 1]
    assert a["values"]["cls"] == share_index([0.5, 0.25, 0.25]) == [5, 4, 4]
    # hot trends: new_hot (S1), sporadic_hot (S2), intensifying_hot (S3)
    assert tip["trend_units"] == [1, 1, 1] and a["values"]["trend"] == [4, 4, 4]
    assert share_index([0.0, float("nan"), 0.05, 0.051, 1.0]) == [0, 0, 1, 2, 5]
    assert "街道：热点单元占比" in a["view"]["legend"] and "(2)" in a["view"]["legend"]
    assert "Streets: share of units with a hot trend" in b["view"]["legend"]
    # one street: its four units, framed on them
    s2 = street_subset(units, unit_street, "S2")
    assert s2["ids"] == units["ids"][4:8]
    assert np.allclose(s2["bounds"], (111.6, 40.81, 111.64, 40.82))
    c = hotspot_channels(s2, sel(0), mode="class", lang="zh", title_line="t", tiles=None,
                         density=None, fishnet=None, unit_street=unit_street)
    assert len(c["values"]["cls"]) == 4 and c["values"]["sig"] != a["values"]["sig"]


def _boxes_with_units() -> dict:
    from shapely.geometry import box

    units = {"special_units": gpd.GeoDataFrame(
        {"unit_id": ["U1", "U2"], "unit_name": ["学校", "医院"], "unit_type": ["school", "hospital"],
         "households": [0, 0], "headcount": [10, 20], "street_code": ["A", "B"]},
        geometry=[shapely.Point(111.605, 40.805), shapely.Point(111.615, 40.805)], crs=4326)}
    communities = gpd.GeoDataFrame(
        {"community_code": [f"C{i}" for i in range(6)], "community_name": [f"社区{i}" for i in range(6)],
         "street_code": ["A", "A", "A", "B", "B", "B"], "area_km2": [1.0] * 6,
         "buildings": [1] * 6, "households": [100, 200, 300, 1000, 1000, 1000],
         "residents": [1] * 6},
        geometry=[box(111.6 + i * 0.002, 40.8, 111.602 + i * 0.002, 40.81) for i in range(6)],
        crs=4326)
    streets = gpd.GeoDataFrame(
        {"street_code": ["A", "B"], "street_name": ["甲街道", "乙街道"],
         "function_type": ["old_town", None]},
        geometry=[box(111.6, 40.8, 111.606, 40.81), box(111.606, 40.8, 111.612, 40.81)],
        crs=4326)
    return {"streets": streets, "communities": communities, **units}


def test_map_page_street_level_above_the_community_limit(monkeypatch):
    from app_pages import _mapbuild
    from app_pages._mapbuild import street_level

    display = prepare_display(_boxes_with_units(), metric_crs="EPSG:4546")
    assert street_level(display, None) is display  # within the limit: drawn as it is
    monkeypatch.setattr(_mapbuild, "MAP_MAX_COMMUNITIES", 5)
    overview = street_level(display, None)
    assert set(overview.layers) == {"streets"}  # no communities, no special units
    density = dict(zip(overview.layers["streets"]["street_code"],
                       overview.layers["streets"]["density"]))
    assert density == {"A": 200.0, "B": 1000.0}  # households per km² of their communities
    m, info = build_map(overview, lang="zh")
    assert info.layers == ["streets"] and info.breaks
    html = m.get_root().render()
    assert density_color(1000.0, info.breaks) in html
    one = street_level(display, "B")
    assert list(one.layers["communities"]["community_code"]) == ["C3", "C4", "C5"]
    assert list(one.layers["special_units"]["unit_id"]) == ["U2"]
    assert len(one.layers["streets"]) == 2 and "density" not in one.layers["streets"]


def test_unit_streets_from_grids_else_by_location(tmp_path):
    from shapely.geometry import box

    from pipelines.db import connect, write_gdf
    from pipelines.results_maps import street_outlines, unit_streets

    con = connect(tmp_path / "gridgov.duckdb")
    try:
        assert unit_streets(con) == {} and street_outlines(con).empty
        write_gdf(con, "streets", gpd.GeoDataFrame(
            {"street_code": ["A", "B"], "street_name": ["甲", "乙"]},
            geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1)], crs=4326))
        write_gdf(con, "grids", gpd.GeoDataFrame(
            {"grid_id": ["g1"], "street_code": ["B"]}, geometry=[box(0, 0, 0.5, 0.5)], crs=4326))
        write_gdf(con, "hotspot_units", gpd.GeoDataFrame(
            {"grid_id": ["g1", "c2", "c3", "c4"]},
            geometry=[box(0, 0, 0.5, 0.5), box(0.1, 0.1, 0.2, 0.2), box(1.5, 0.5, 1.6, 0.6),
                      box(5, 5, 6, 6)], crs=4326))
        # g1: the grid's own street (even where it lies); c2, c3: by location; c4: no street
        assert unit_streets(con) == {"g1": "B", "c2": "A", "c3": "B"}
        out = street_outlines(con)
        assert list(out["street_code"]) == ["A", "B"] and out["district_name"].isna().all()
    finally:
        con.close()
