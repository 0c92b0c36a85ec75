"""Pure registry rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from quietline.platform.errors import InvalidInput
from quietline.registry import model
from quietline.registry.model import ListName
from quietline.vocabulary import Category, Channel

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def test_refusal_with_validity_stops_being_effective_when_it_ends() -> None:
    state = model.RefusalState(
        "+8613800138000", "loan_finance", Channel.CALL, True, NOW, NOW + timedelta(days=1)
    )
    assert state.effective(NOW + timedelta(hours=23))
    assert not state.effective(NOW + timedelta(days=1))


def test_withdrawn_refusal_is_never_effective() -> None:
    state = model.RefusalState("+8613800138000", "all", Channel.SMS, False, NOW, None)
    assert not state.effective(NOW)
    assert state.describe() == "已恢复接收全部营销类营销短信"


def test_validity_must_end_in_the_future() -> None:
    with pytest.raises(InvalidInput, match="future") as err:
        model.validate_valid_until(NOW, NOW)
    assert err.value.field == "valid_until"


def test_list_capacity_is_china_mobiles_thousand() -> None:
    model.check_list_capacity(999, 1, 1000, ListName.BLOCK)
    with pytest.raises(InvalidInput, match="at most 1000"):
        model.check_list_capacity(1000, 1, 1000, ListName.BLOCK)


def test_consent_proof_is_kept_for_the_retention_period() -> None:
    assert model.consent_retain_until(NOW, 153) == NOW + timedelta(days=153)


def test_category_codes_and_labels() -> None:
    assert model.category_code(None) == "all"
    assert model.category_code(Category.INSURANCE) == "insurance"
    assert model.category_label("insurance") == "保险推销"
    assert model.category_label("all") == "全部营销"


def test_confirmation_text_is_chinese_and_bounded() -> None:
    text = model.confirmation_text([f"变更{i}" for i in range(8)])
    assert text.startswith("【quietline】") and "变更4等" in text and "变更5" not in text
