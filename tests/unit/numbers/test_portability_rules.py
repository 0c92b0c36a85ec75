"""Portability (携号转网, 工信部信管〔2019〕242号) rules and the number plan tables, without a database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from quietline.numbers import parse, plan, portability
from quietline.numbers.queries import carrier_label, describe
from quietline.platform.errors import InvalidInput
from quietline.vocabulary import Carrier, NumberType

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize("text", ["13800138000", "13012345678", "18912345678", "19212345678"])
def test_ordinary_cellular_numbers_may_port(text: str) -> None:
    portability.check_portable(parse(text))


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("17012345678", "resale"),
        ("16512345678", "resale"),
        ("13491234567", "satellite"),
        ("14812345678", "mobile"),  # IoT: cellular but excluded
        ("010-12345678", "fixed_line"),
        ("95588", "service_95_96"),
        ("4008123456", "toll_free_400_800"),
        ("10086", "short_code"),
        ("106575000123", "sms_port"),
        ("+12025550123", "international"),
    ],
)
def test_other_numbers_cannot_port(text: str, kind: str) -> None:
    with pytest.raises(InvalidInput, match=f"\\({kind}\\) and cannot port") as caught:
        portability.check_portable(parse(text))
    assert caught.value.field == "number"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("china_mobile", "china_mobile"),
        (" China_Unicom ", "china_unicom"),
        ("中国电信", "china_telecom"),
        ("中国广电", "china_broadnet"),
    ],
)
def test_port_targets_are_the_basic_carriers_by_code_or_label(text: str, code: str) -> None:
    assert portability.parse_port_target(text) == code


@pytest.mark.parametrize("text", ["", "virgin", "蜗牛移动", "china mobile"])
def test_other_carriers_are_not_port_targets(text: str) -> None:
    with pytest.raises(InvalidInput, match="not a carrier a number can port to") as caught:
        portability.parse_port_target(text)
    assert caught.value.field == "carrier"


def test_ported_at_needs_an_offset_and_may_not_be_in_the_future() -> None:
    assert portability.parse_ported_at("2026-01-05T10:00:00+08:00", NOW) == datetime(
        2026, 1, 5, 2, 0, tzinfo=UTC
    )
    with pytest.raises(InvalidInput, match="no UTC offset"):
        portability.parse_ported_at("2026-01-05T10:00:00", NOW)
    with pytest.raises(InvalidInput, match="in the future"):
        portability.parse_ported_at("2026-01-05T18:00:01+08:00", NOW)
    with pytest.raises(InvalidInput, match="not an ISO 8601 time"):
        portability.parse_ported_at("yesterday", NOW)


def test_every_four_digit_mobile_prefix_is_classified_consistently() -> None:
    carriers = {c.value for c in Carrier}
    for prefix, info in plan.MOBILE_PREFIXES.items():
        assert len(prefix) == 4
        assert prefix[0] == "1"
        assert info.carrier is None or info.carrier in carriers
        assert info.portable == (info.type is NumberType.MOBILE and "物联网" not in info.label)
    # Unallocated network codes stay out of the table.
    for unallocated in ("140", "141", "143", "154", "160", "161", "163", "164", "168", "169", "179", "194"):
        assert not any(p.startswith(unallocated) for p in plan.MOBILE_PREFIXES), unallocated


def test_never_block_codes_include_the_design_list() -> None:
    # DESIGN.md decision order, step 1.
    for code in ("110", "119", "120", "122", "12110", "12345", "12321", "96110"):
        assert plan.SHORT_CODES[code].never_block, code
    assert not plan.SHORT_CODES["10086"].never_block


@pytest.mark.parametrize(
    ("text", "description"),
    [
        ("110", "匪警"),
        ("13800138000", "中国移动手机号段"),
        ("17012345678", "转售号段（中国电信网络）"),
        ("0755-12345678", "固定电话（区号 0755）"),
        ("106575000123", "运营商自有短信端口"),
        ("95588", "95/96 服务号码"),
        ("+12025550123", "国际号码"),
    ],
)
def test_descriptions(text: str, description: str) -> None:
    assert describe(parse(text)) == description


def test_carrier_labels() -> None:
    assert carrier_label("china_broadnet") == "中国广电"
    assert carrier_label(None) is None
