"""China's 34 provincial-level divisions and the default service regions (seed 002, 附件二)."""

from __future__ import annotations

# Short names, as people write them on forms and as regions list them.
PROVINCES: tuple[str, ...] = (
    "北京", "天津", "河北", "山西", "内蒙古", "辽宁", "吉林", "黑龙江", "上海", "江苏",
    "浙江", "安徽", "福建", "江西", "山东", "河南", "湖北", "湖南", "广东", "广西",
    "海南", "重庆", "四川", "贵州", "云南", "西藏", "陕西", "甘肃", "青海", "宁夏",
    "新疆", "台湾", "香港", "澳门",
)  # fmt: skip

# Long forms that reduce to a short name.
_SUFFIXES = (
    "特别行政区",
    "维吾尔自治区",
    "壮族自治区",
    "回族自治区",
    "自治区",
    "省",
    "市",
)

# code -> (Chinese name, English name, provinces)
DEFAULT_REGIONS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "north": ("华北", "North", ("山西", "陕西", "河北", "北京", "天津")),
    "east": ("华东", "East", ("山东", "江苏", "上海", "安徽")),
    "northeast": ("东北", "Northeast", ("黑龙江", "吉林", "辽宁")),
    "south": ("华南", "South", ("湖南", "广东", "海南", "福建", "江西")),
    "central": ("华中", "Central", ("重庆", "湖北", "河南", "浙江")),
    "southwest": ("西南", "Southwest", ("四川", "贵州", "云南", "广西")),
}


def normalize_province(value: str | None) -> str | None:
    """``四川省`` → ``四川``, ``广西壮族自治区`` → ``广西``; None when it is not a province."""
    text = (value or "").strip()
    if text in PROVINCES:
        return text
    for suffix in _SUFFIXES:
        if text.endswith(suffix) and text[: -len(suffix)] in PROVINCES:
            return text[: -len(suffix)]
    return None


def normalize_city(value: str | None) -> str:
    """``成都市`` → ``成都`` (so a city written either way compares equal)."""
    text = (value or "").strip()
    for suffix in ("地区", "自治州", "市", "盟"):
        if len(text) > len(suffix) + 1 and text.endswith(suffix):
            return text[: -len(suffix)]
    return text
