"""The shared vocabulary accepts codes and Chinese labels, and names the field on errors."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quietline.vocabulary import (
    Category,
    Channel,
    VocabularyError,
    parse_category_or_all,
    parse_channels,
)


@pytest.mark.parametrize("member", list(Category))
def test_every_category_parses_from_code_and_label(member: Category) -> None:
    assert Category.parse(member.value) is member
    assert Category.parse(member.label) is member
    assert Category.parse(f"  {member.value.upper()} ") is member


def test_all_means_every_category() -> None:
    assert parse_category_or_all("all") is None
    assert parse_category_or_all("全部营销") is None


def test_unknown_category_names_field_and_choices() -> None:
    with pytest.raises(VocabularyError) as err:
        parse_category_or_all("lottery", field="refusals.0.category")
    assert err.value.field == "refusals.0.category"
    assert "all" in err.value.accepted and "loan_finance" in err.value.accepted


def test_channels() -> None:
    assert parse_channels("both") == (Channel.CALL, Channel.SMS)
    assert parse_channels("短信") == (Channel.SMS,)
    with pytest.raises(VocabularyError, match="call, sms, both"):
        parse_channels("fax")


@given(st.text(max_size=20))
def test_parse_never_raises_anything_but_vocabulary_error(text: str) -> None:
    with contextlib.suppress(VocabularyError):
        Category.parse(text)
