"""Pure rules of accounts: the GB 32100 checksum, codes, session lifetimes, key format and subjects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quietline.accounts import model
from quietline.accounts.model import USCC_CHARSET, OtpState, SessionState, parse_uscc, uscc_check_character
from quietline.platform.errors import InvalidInput
from quietline.vocabulary import Category, Role

#: Published codes: the example of GB 32100-2015 and two well-known companies.
REAL_CODES = ["91350100M000100Y43", "911100007109310534", "91440300708461136T"]

uscc_body = st.tuples(
    st.sampled_from(USCC_CHARSET),
    st.sampled_from(USCC_CHARSET),
    st.text(alphabet="0123456789", min_size=6, max_size=6),
    st.text(alphabet=USCC_CHARSET, min_size=9, max_size=9),
).map("".join)
valid_uscc = uscc_body.map(lambda body: body + uscc_check_character(body))


@pytest.mark.parametrize("code", REAL_CODES)
def test_published_codes_are_valid(code: str) -> None:
    assert parse_uscc(code) == code
    assert parse_uscc(f"  {code.lower()} ") == code


def test_weights_are_those_of_the_standard() -> None:
    assert model.USCC_WEIGHTS == (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


@given(valid_uscc)
def test_generated_codes_round_trip(code: str) -> None:
    assert parse_uscc(code) == code


@given(valid_uscc, st.integers(0, 17), st.sampled_from(USCC_CHARSET + "IOSVZ*a"))
def test_any_single_character_change_is_rejected(code: str, position: int, replacement: str) -> None:
    if code[position] == replacement.upper():
        return
    changed = code[:position] + replacement + code[position + 1 :]
    with pytest.raises(InvalidInput) as err:
        parse_uscc(changed)
    assert err.value.field == "uscc"


@given(valid_uscc, st.integers(0, 16))
def test_swapping_adjacent_characters_is_rejected_when_they_differ(code: str, position: int) -> None:
    a, b = code[position], code[position + 1]
    if a == b:
        return
    swapped = code[:position] + b + a + code[position + 2 :]
    with pytest.raises(InvalidInput):
        parse_uscc(swapped)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("91350100M000100Y4", "18 characters, got 17"),
        ("91350100M000100Y433", "18 characters, got 19"),
        ("91350100M000100Y4I", "'I'"),
        ("913501A0M000100Y43", "administrative division"),
        ("91350100M000100Y44", "checksum mismatch: the check character (GB 32100-2015 mod-31) should be '3'"),
    ],
)
def test_bad_codes_say_why(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_uscc(text, field="enterprise")


def test_categories_accept_codes_and_labels_and_keep_vocabulary_order() -> None:
    assert model.parse_categories(["保险推销", "loan_finance", "insurance"]) == (
        Category.LOAN_FINANCE,
        Category.INSURANCE,
    )
    with pytest.raises(InvalidInput, match="gambling") as err:
        model.parse_categories(["gambling"])
    assert err.value.field == "category"


def test_enterprise_name_is_cleaned_and_bounded() -> None:
    assert model.clean_enterprise_name("  某某  科技 有限公司 ") == "某某 科技 有限公司"
    with pytest.raises(InvalidInput):
        model.clean_enterprise_name("   ")
    with pytest.raises(InvalidInput):
        model.clean_enterprise_name("x" * 201)


def test_codes_are_six_digits_and_vary() -> None:
    codes = {model.new_otp_code() for _ in range(200)}
    assert all(len(c) == 6 and c.isdigit() for c in codes)
    assert len(codes) > 150


def test_code_input_is_cleaned() -> None:
    assert model.clean_otp_code(" 012 345 ") == "012345"
    for bad in ("12345", "1234567", "12a456", ""):
        with pytest.raises(InvalidInput):
            model.clean_otp_code(bad)


def test_sms_text_is_the_transactional_template() -> None:
    text = model.otp_sms_text("123456", 300)
    assert text == "【quietline】您的验证码是123456，5分钟内有效。如非本人操作请忽略。"


NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_code_refusals() -> None:
    state = OtpState("d", NOW + timedelta(minutes=5), attempts=0, max_attempts=5)
    assert state.refusal(NOW) is None
    assert state.refusal(NOW + timedelta(minutes=5)) == "the code has expired; request a new one"
    dead = OtpState("d", NOW + timedelta(minutes=5), attempts=5, max_attempts=5)
    assert dead.refusal(NOW) == "too many wrong tries; request a new code"
    assert OtpState("d", NOW, attempts=3, max_attempts=5).tries_left_after_failure == 1


def test_session_expires_when_idle_or_too_old() -> None:
    fresh = SessionState("s", "+8613800138000", NOW, NOW, None)
    assert fresh.is_valid(NOW + timedelta(minutes=29))
    assert not fresh.is_valid(NOW + timedelta(minutes=30))
    busy = SessionState("s", "+8613800138000", NOW, NOW + timedelta(hours=11, minutes=59), None)
    assert busy.is_valid(NOW + timedelta(hours=11, minutes=59, seconds=59))
    assert not busy.is_valid(NOW + timedelta(hours=12))
    revoked = SessionState("s", "+8613800138000", NOW, NOW, NOW)
    assert not revoked.is_valid(NOW)


def test_api_key_format_round_trips_and_rejects_garbage() -> None:
    key_id, secret = model.new_api_key_parts()
    text = model.format_api_key(key_id, secret)
    assert text.startswith("ql_")
    assert model.split_api_key(text) == (key_id, secret)
    for bad in ("", "ql_", "ql_xyz_secret", "Bearer " + text, text + " extra", "xx_" + text[3:]):
        assert model.split_api_key(bad) is None


@given(st.text(max_size=200))
def test_split_api_key_never_raises(text: str) -> None:
    model.split_api_key(text)


def test_scopes_are_normalised() -> None:
    assert model.parse_scopes(["registry:read", "SCREEN", "registry:read"]) == ("registry:read", "screen")
    for bad in ("registry read", ":x", "a::b", "x" * 61):
        with pytest.raises(InvalidInput):
            model.parse_scopes([bad])


def test_key_roles_and_subjects() -> None:
    assert model.parse_key_role("平台运营") is Role.OPERATOR
    with pytest.raises(InvalidInput, match="one-time SMS code"):
        model.parse_key_role("subscriber")
    with pytest.raises(InvalidInput):
        model.parse_key_role("admin")
    assert model.clean_key_subject(Role.ENTERPRISE, "91350100m000100y43") == "91350100M000100Y43"
    assert model.clean_key_subject(Role.CARRIER, "中国移动") == "china_mobile"
    assert model.clean_key_subject(Role.CARRIER, "Resale:snail_mobile") == "resale:snail_mobile"
    with pytest.raises(InvalidInput, match="not a carrier"):
        model.clean_key_subject(Role.CARRIER, "acme")
    assert model.clean_key_subject(Role.REGULATOR, " 北京市通信管理局 ") == "北京市通信管理局"
    with pytest.raises(InvalidInput):
        model.clean_key_subject(Role.OPERATOR, "")
