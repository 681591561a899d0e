"""The input layers of the data contract: columns, id, geometry kind, and column aliases."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class LayerSpec:
    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    key: tuple[str, ...] = ()  # unique id columns
    geom: str | None = "polygon"  # polygon | point | line | point_or_polygon | None
    required_layer: bool = False
    ints: tuple[str, ...] = ()
    times: tuple[str, ...] = ()
    accepted: dict[str, tuple[str, ...]] = field(default_factory=dict)
    names: tuple[str, ...] = ()  # columns that hold names of places/units, not persons


UNIT_TYPES = ("school", "hospital", "government", "industrial_park", "market",
              "commercial_building", "enterprise", "other")
FUNCTION_TYPES = ("core_commercial", "old_town", "residential", "new_development", "industrial",
                  "urban_rural_fringe")

LAYERS: dict[str, LayerSpec] = {
    "streets": LayerSpec(
        "streets", ("street_code", "street_name", "district_code", "district_name"), ("function_type",),
        key=("street_code",), geom="polygon", required_layer=True,
        accepted={"function_type": FUNCTION_TYPES}, names=("street_name", "district_name"),
    ),
    "communities": LayerSpec(
        "communities", ("community_code", "community_name", "street_code"), ("kind",),
        key=("community_code",), geom="polygon", required_layer=True,
        accepted={"kind": ("urban", "rural")}, names=("community_name",),
    ),
    "buildings": LayerSpec(
        "buildings", ("building_id", "households"),
        ("residents", "elderly", "elderly_alone", "disabled", "low_income", "children", "renters",
         "community_code"),
        key=("building_id",), geom="point_or_polygon", required_layer=True,
        ints=("households", "residents", "elderly", "elderly_alone", "disabled", "low_income",
              "children", "renters"),
    ),
    "incidents": LayerSpec(
        "incidents", ("incident_id", "occurred_at", "category"),
        ("severity", "source", "status", "accepted_at", "dispatched_at", "responded_at", "closed_at", "staff_id",
         "repeat_of", "resolved", "satisfaction", "returned", "department", "service_company", "service_type"),
        key=("incident_id",), geom="point", ints=("severity",),
        times=("occurred_at", "accepted_at", "dispatched_at", "responded_at", "closed_at"),
    ),
    "special_units": LayerSpec(
        "special_units", ("unit_id", "unit_name", "unit_type"), ("households", "headcount"),
        key=("unit_id",), geom="point_or_polygon", ints=("households", "headcount"),
        accepted={"unit_type": UNIT_TYPES}, names=("unit_name",),
    ),
    "barriers": LayerSpec("barriers", ("kind",), ("name",), geom="line", names=("name",)),
    "staff": LayerSpec(
        "staff", ("staff_id", "street_code"), ("grid_id", "role", "community_code"),
        key=("staff_id",), geom=None, accepted={"role": ("full_time", "part_time")},
    ),
    "current_grids": LayerSpec(
        "current_grids", ("grid_id", "grid_type"), ("community_code", "staff_id"),
        key=("grid_id",), geom="polygon", accepted={"grid_type": ("basic", "dedicated")},
    ),
    "department_grids": LayerSpec(
        "department_grids", ("department", "grid_id"), (), key=("department", "grid_id"), geom="polygon",
    ),
}

# Common Chinese / English column names a user's data may carry (the settings may add more).
ALIASES: dict[str, str] = {
    "街道编码": "street_code", "街道代码": "street_code", "街道名称": "street_name", "街道": "street_name",
    "区县编码": "district_code", "区编码": "district_code", "区县代码": "district_code",
    "区县名称": "district_name", "区县": "district_name", "功能定位": "function_type",
    "社区编码": "community_code", "社区代码": "community_code", "村社区编码": "community_code",
    "社区名称": "community_name", "社区": "community_name", "类型": "kind",
    "楼栋编号": "building_id", "楼栋id": "building_id", "建筑编号": "building_id", "户数": "households",
    "常住人口": "residents", "人口": "residents", "居民人数": "residents", "老年人": "elderly",
    "独居老人": "elderly_alone", "空巢独居老人": "elderly_alone", "残疾人": "disabled",
    "低收入": "low_income", "低保": "low_income", "儿童": "children", "租户": "renters",
    "事件编号": "incident_id", "工单编号": "incident_id", "发生时间": "occurred_at", "受理时间": "occurred_at",
    "类别": "category", "事件类别": "category", "严重程度": "severity", "来源": "source", "状态": "status",
    "响应时间": "responded_at", "办结时间": "closed_at", "处置人员": "staff_id", "重复工单": "repeat_of",
    "单位编号": "unit_id", "单位名称": "unit_name", "单位类型": "unit_type", "职工人数": "headcount",
    "人员编号": "staff_id", "网格员编号": "staff_id", "网格编号": "grid_id", "网格编码": "grid_id",
    "网格类型": "grid_type", "岗位": "role", "部门": "department", "名称": "name",
    "派遣时间": "dispatched_at", "派单时间": "dispatched_at", "处置时间": "responded_at", "结案时间": "closed_at",
    "是否解决": "resolved", "解决情况": "resolved", "满意度": "satisfaction", "回访满意度": "satisfaction",
    "退单": "returned", "返工": "returned", "承办部门": "department", "责任部门": "department",
    "服务企业": "service_company", "服务单位": "service_company", "供热企业": "service_company",
    "物业公司": "service_company", "回访结果": "satisfaction", "退单次数": "returned", "服务类型": "service_type",
    "barrier_type": "kind",
}

# Which columns hold personal data (never stored) is decided in pipelines/privacy.py.
