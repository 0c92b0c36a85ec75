"""The number parser: every usual spelling to one canonical form, everything else refused with a reason."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from quietline.numbers import InvalidNumber, PhoneNumber, parse, parse_prefix, plan
from quietline.platform.errors import InvalidInput
from quietline.vocabulary import NumberType


@pytest.mark.parametrize(
    ("text", "e164", "national", "type_", "carrier"),
    [
        ("13800138000", "+8613800138000", "13800138000", NumberType.MOBILE, "china_mobile"),
        ("+86 138 0013 8000", "+8613800138000", "13800138000", NumberType.MOBILE, "china_mobile"),
        ("8613800138000", "+8613800138000", "13800138000", NumberType.MOBILE, "china_mobile"),
        ("0086 138 0013 8000", "+8613800138000", "13800138000", NumberType.MOBILE, "china_mobile"),
        ("138-0013-8000", "+8613800138000", "13800138000", NumberType.MOBILE, "china_mobile"),
        ("013800138000", "+8613800138000", "13800138000", NumberType.MOBILE, "china_mobile"),
        (
            "＋８６　１３８００１３８０００",
            "+8613800138000",
            "13800138000",
            NumberType.MOBILE,
            "china_mobile",
        ),
        ("13012345678", "+8613012345678", "13012345678", NumberType.MOBILE, "china_unicom"),
        ("18912345678", "+8618912345678", "18912345678", NumberType.MOBILE, "china_telecom"),
        ("19212345678", "+8619212345678", "19212345678", NumberType.MOBILE, "china_broadnet"),
        ("13412345678", "+8613412345678", "13412345678", NumberType.MOBILE, "china_mobile"),
        ("13491234567", "+8613491234567", "13491234567", NumberType.SATELLITE, "china_telecom"),
        ("17400123456", "+8617400123456", "17400123456", NumberType.SATELLITE, "china_telecom"),
        ("17001234567", "+8617001234567", "17001234567", NumberType.RESALE, "china_telecom"),
        ("17031234567", "+8617031234567", "17031234567", NumberType.RESALE, "china_mobile"),
        ("17041234567", "+8617041234567", "17041234567", NumberType.RESALE, "china_unicom"),
        ("17112345678", "+8617112345678", "17112345678", NumberType.RESALE, "china_unicom"),
        ("16212345678", "+8616212345678", "16212345678", NumberType.RESALE, "china_telecom"),
        ("16512345678", "+8616512345678", "16512345678", NumberType.RESALE, "china_mobile"),
        ("16712345678", "+8616712345678", "16712345678", NumberType.RESALE, "china_unicom"),
        ("010-12345678", "+861012345678", "01012345678", NumberType.FIXED_LINE, None),
        ("(010) 1234 5678", "+861012345678", "01012345678", NumberType.FIXED_LINE, None),
        ("+86 10 1234 5678", "+861012345678", "01012345678", NumberType.FIXED_LINE, None),
        ("+86 (0)10 1234 5678", "+861012345678", "01012345678", NumberType.FIXED_LINE, None),
        ("0755-12345678", "+8675512345678", "075512345678", NumberType.FIXED_LINE, None),
        ("4008-123-456", "+864008123456", "4008123456", NumberType.TOLL_FREE_400_800, None),
        ("800 812 3456", "+868008123456", "8008123456", NumberType.TOLL_FREE_400_800, None),
        ("95588", "+8695588", "95588", NumberType.SERVICE_95_96, None),
        ("+86 95588", "+8695588", "95588", NumberType.SERVICE_95_96, None),
        ("951051", "+86951051", "951051", NumberType.SERVICE_95_96, None),
        ("96110", "+8696110", "96110", NumberType.SERVICE_95_96, None),
        ("10086", "+8610086", "10086", NumberType.SHORT_CODE, "china_mobile"),
        ("10010", "+8610010", "10010", NumberType.SHORT_CODE, "china_unicom"),
        ("10000", "+8610000", "10000", NumberType.SHORT_CODE, "china_telecom"),
        ("12321", "+8612321", "12321", NumberType.SHORT_CODE, None),
        ("110", "+86110", "110", NumberType.SHORT_CODE, None),
        ("+86110", "+86110", "110", NumberType.SHORT_CODE, None),
        ("106575000123", "+86106575000123", "106575000123", NumberType.SMS_PORT, None),
        ("1069 0123 4567 89", "+8610690123456789", "10690123456789", NumberType.SMS_PORT, None),
        ("+1 202-555-0123", "+12025550123", "0012025550123", NumberType.INTERNATIONAL, None),
        ("00852 9123 4567", "+85291234567", "0085291234567", NumberType.INTERNATIONAL, None),
    ],
)
def test_spellings(text: str, e164: str, national: str, type_: NumberType, carrier: str | None) -> None:
    n = parse(text)
    assert (n.e164, n.national, n.type, n.original_carrier) == (e164, national, type_, carrier)
    assert n.digits == e164[1:]
    assert n.as_int == int(e164[1:])
    assert parse(n.e164) == n


def test_fixed_lines_carry_their_area_code() -> None:
    assert parse("010-12345678").area_code == "010"
    assert parse("0755 1234 5678").area_code == "0755"
    assert parse("021-62345678").area_code == "021"
    assert parse("13800138000").area_code is None


@pytest.mark.parametrize("code", ["110", "119", "120", "122", "12110", "12345", "12321", "96110"])
def test_emergency_and_public_service_numbers_are_never_blocked(code: str) -> None:
    assert parse(code).never_block
    assert parse("+86" + code).never_block


@pytest.mark.parametrize("text", ["10086", "95588", "13800138000", "4008123456", "010-12345678"])
def test_ordinary_numbers_may_be_blocked(text: str) -> None:
    assert not parse(text).never_block


@pytest.mark.parametrize(
    ("text", "portable"),
    [
        ("13800138000", True),
        ("19212345678", True),
        ("17012345678", False),  # resale
        ("17112345678", False),
        ("16212345678", False),
        ("16512345678", False),
        ("16712345678", False),
        ("13491234567", False),  # satellite
        ("17400123456", False),
        ("14812345678", False),  # IoT
        ("14612345678", False),
        ("010-12345678", False),
        ("95588", False),
        ("4008123456", False),
        ("+12025550123", False),
    ],
)
def test_portability_follows_the_242_rules(text: str, portable: bool) -> None:
    assert parse(text).portable is portable


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("abc", "letters"),
        ("138OO138000", "letters"),  # letter O for zero
        ("13800138000#", "'#'"),
        ("+", "no digits"),
        ("+-", "no digits"),
        ("138+0013", "'\\+' may only stand"),
        ("1", "too short"),
        ("86", "too short"),
        ("1380013800", "too short"),
        ("138001380000", "too long"),
        ("14012345678", "not allocated"),
        ("15412345678", "not allocated"),
        ("12399", "not a known short code"),
        ("111", "not a known short code"),
        ("1063123456789", "not allocated"),
        ("106912", "too short"),
        ("1069" + "1" * 20, "too long"),
        ("95", "too short"),
        ("9512", "too short"),
        ("62345678", "area code"),
        ("4001234", "10 digits"),
        ("0000", "country code"),
        ("+999 1234", "country code"),
        ("+1 202", "not a valid number"),
        ("+86 00 1234", "leading zeros"),
        ("0666-1234567", "not a valid fixed-line"),
        ("0123-1234567", "not a valid fixed-line"),
        ("010-1234567", "not a valid fixed-line"),
        ("x" * 100, "too long"),
    ],
)
def test_garbage_is_refused_with_a_reason(text: str, why: str) -> None:
    with pytest.raises(InvalidNumber, match=why) as caught:
        parse(text)
    assert caught.value.field == "number"
    assert isinstance(caught.value, InvalidInput)


def test_the_caller_names_the_field() -> None:
    with pytest.raises(InvalidNumber) as caught:
        parse("nope", field="callee")
    assert caught.value.field == "callee"
    assert str(caught.value).startswith("callee: ")


@pytest.mark.parametrize("value", [None, 13800138000, b"13800138000", 1.5, ["13800138000"]])
def test_non_text_is_refused(value: object) -> None:
    with pytest.raises(InvalidNumber, match="expected the number as text"):
        parse(value)


def test_ten_digit_106_is_a_port_without_country_code_and_beijing_with_it() -> None:
    # The number plan's one inherent ambiguity, documented in numbers.model.
    assert parse("1069012345").type is NumberType.SMS_PORT
    beijing = parse("+861069012345")
    assert (beijing.type, beijing.national) == (NumberType.FIXED_LINE, "01069012345")
    assert parse("010-69012345") == beijing


def test_phone_numbers_are_values() -> None:
    a, b = parse("13800138000"), parse("+86 138 0013 8000")
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b}) == 1
    assert a != parse("13900138000")
    assert a != "+8613800138000"
    assert str(a) == "+8613800138000"
    assert "+8613800138000" in repr(a)
    assert pickle.loads(pickle.dumps(a)) == a  # noqa: S301 - our own bytes, round-tripped
    with pytest.raises(AttributeError):
        a.e164 = "+8613900138000"  # type: ignore[misc]


def test_every_reference_prefix_names_its_original_carrier() -> None:
    # REFERENCE.md "Number plan" (MIIT allocation as of 2023-03).
    expected = {
        "china_mobile": "135 136 137 138 139 147 150 151 152 157 158 159 172 178 182 183 184 187 188 "
        "195 197 198",
        "china_unicom": "130 131 132 145 155 156 166 175 176 185 186 196",
        "china_telecom": "133 149 153 173 177 180 181 189 190 191 193 199",
        "china_broadnet": "192",
    }
    for carrier, prefixes in expected.items():
        for prefix in prefixes.split():
            n = parse(prefix + "12345678")
            assert (n.original_carrier, n.type, n.portable) == (carrier, NumberType.MOBILE, True), prefix
    for d in "012345678":
        assert parse(f"134{d}1234567").original_carrier == "china_mobile"


# ---------------------------------------------------------------------------------------------------
# Properties (no per-example deadline: the suite shares a small machine, and a slow example is
# not a wrong one)

MOBILE_PREFIXES = sorted(plan.MOBILE_PREFIXES)
AREA_CODES = ["10", "20", "21", "22", "23", "24", "25", "27", "28", "29", "311", "571", "755", "769", "951"]


@st.composite
def mobiles(draw: st.DrawFn) -> str:
    return draw(st.sampled_from(MOBILE_PREFIXES)) + draw(st.from_regex(r"[0-9]{7}", fullmatch=True))


@st.composite
def fixed_lines(draw: st.DrawFn) -> str:
    area = draw(st.sampled_from(AREA_CODES))
    local = draw(st.from_regex(r"[2-8][0-9]{6,7}", fullmatch=True))
    return "0" + area + local


@st.composite
def service_numbers(draw: st.DrawFn) -> str:
    return draw(st.sampled_from(["95", "96"])) + draw(st.from_regex(r"[0-9]{3,6}", fullmatch=True))


@st.composite
def sms_ports(draw: st.DrawFn) -> str:
    head = draw(st.sampled_from(sorted(plan.SMS_PORT_PREFIXES)))
    # Ten digits is the documented exception (it collides with Beijing fixed lines after +86).
    length = draw(st.sampled_from([n for n in range(7, 22) if n != 10]))
    return head + draw(st.from_regex(rf"[0-9]{{{length - 4}}}", fullmatch=True))


@st.composite
def toll_free(draw: st.DrawFn) -> str:
    return draw(st.sampled_from(["400", "800"])) + draw(st.from_regex(r"[0-9]{7}", fullmatch=True))


domestic = st.one_of(
    mobiles(),
    fixed_lines(),
    service_numbers(),
    sms_ports(),
    toll_free(),
    st.sampled_from(sorted(plan.SHORT_CODES)),
)


def _grouped(digits: str, sep: str) -> str:
    return sep.join(digits[i : i + 4] for i in range(0, len(digits), 4))


def spellings(number: PhoneNumber) -> list[str]:
    """Ways people write the same domestic number."""
    nsn = number.e164.removeprefix("+86")
    national = number.national
    fullwidth = national.translate({ord(str(d)): chr(0xFF10 + d) for d in range(10)})
    forms = [national, " " + national + " ", fullwidth, _grouped(national, " "), _grouped(national, "-")]
    forms += ["+86" + nsn, "+86 " + _grouped(nsn, " "), "0086" + nsn, "0086-" + nsn, "86" + nsn]
    if number.area_code:
        forms += [f"{number.area_code}-{national[len(number.area_code) :]}", "+86 (0)" + nsn]
    return forms


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(domestic)
def test_every_accepted_spelling_normalises_to_the_same_number(national: str) -> None:
    try:
        number = parse(national)
    except InvalidNumber:
        assume(False)  # e.g. a 400 block or local number libphonenumber knows to be unallocated
        raise
    assert parse(number.e164) == number
    assert parse(number.digits) == number
    assert parse(number.national) == number
    for spelling in spellings(number):
        assert parse(spelling) == number, spelling


@settings(max_examples=200, deadline=None)
@given(mobiles())
def test_mobiles_are_always_accepted(national: str) -> None:
    number = parse(national)
    assert number.e164 == "+86" + national
    assert number.national == national
    assert number.type in (NumberType.MOBILE, NumberType.RESALE, NumberType.SATELLITE)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=40))
def test_any_text_parses_or_is_refused_with_a_message(text: str) -> None:
    try:
        number = parse(text)
    except InvalidNumber as exc:
        problem = exc
    else:
        assert parse(number.e164) == number
        return
    assert problem.message
    assert problem.field == "number"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789+-() 　８６", max_size=24))
def test_digit_soup_parses_or_is_refused_with_a_message(text: str) -> None:
    try:
        number = parse(text)
    except InvalidNumber as exc:
        problem = exc
    else:
        if number.type is NumberType.SMS_PORT and len(number.national) == 10:
            # The one ambiguity the module documents: a ten-digit 106… port written with +86 is the
            # Beijing line 010-6xxxxxxx (found by this test: "1062000000").
            assert parse(number.e164).type is NumberType.FIXED_LINE
        else:
            assert parse(number.e164) == number
        assert number.as_int == int(number.digits)
        return
    assert problem.message


@settings(deadline=None)
@given(st.text(min_size=1, max_size=20).filter(lambda s: any(c.isalpha() for c in s)))
def test_letters_are_refused(text: str) -> None:
    with pytest.raises(InvalidNumber):
        parse(text)


# ---------------------------------------------------------------------------------------------------
# Prefixes


@pytest.mark.parametrize(
    ("text", "prefix"), [("400", "400"), (" 950 ", "950"), ("1700", "1700"), ("０１０", "010")]
)
def test_prefixes(text: str, prefix: str) -> None:
    assert parse_prefix(text) == prefix
    assert parse("4008123456").national.startswith(parse_prefix("400"))


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("40", "at least 3"),
        ("4OO", "only digits"),
        ("+86", "only digits"),
        ("1" * 12, "at most 11"),
    ],
)
def test_bad_prefixes(text: str, why: str) -> None:
    with pytest.raises(InvalidNumber, match=why) as caught:
        parse_prefix(text)
    assert caught.value.field == "prefix"


@settings(deadline=None)
@given(st.text(max_size=20))
def test_prefix_parser_never_raises_anything_else(text: str) -> None:
    try:
        value = parse_prefix(text)
    except InvalidNumber:
        return
    assert value.isdigit()
    assert 3 <= len(value) <= 11


def test_a_ten_digit_106_port_is_the_documented_ambiguity() -> None:
    """Without a country code it is the SMS port; with +86 it is Beijing 010-6200 0000."""
    port = parse("1062000000")
    assert port.type is NumberType.SMS_PORT
    assert parse(port.e164).type is NumberType.FIXED_LINE
    assert parse("010-62000000").e164 == port.e164
