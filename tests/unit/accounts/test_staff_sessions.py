"""Pure rules of staff portal sessions: idle and absolute expiry, and the binding to the API key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from quietline.accounts import model
from quietline.accounts.model import StaffSessionState

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def _state(
    last_seen: timedelta = timedelta(0), *, revoked: bool = False, key_active: bool = True
) -> StaffSessionState:
    return StaffSessionState(
        "s1", "k1", T0, T0 + last_seen, T0 + timedelta(minutes=1) if revoked else None, key_active=key_active
    )


def test_fresh_session_is_valid_until_the_idle_limit() -> None:
    state = _state()
    assert state.is_valid(T0 + model.STAFF_SESSION_IDLE - timedelta(seconds=1))
    assert not state.is_valid(T0 + model.STAFF_SESSION_IDLE)


def test_activity_moves_the_idle_limit_but_never_the_absolute_one() -> None:
    state = _state(last_seen=model.STAFF_SESSION_ABSOLUTE - timedelta(minutes=1))
    assert state.is_valid(T0 + model.STAFF_SESSION_ABSOLUTE - timedelta(seconds=1))
    assert not state.is_valid(T0 + model.STAFF_SESSION_ABSOLUTE)


def test_logged_out_or_revoked_key_ends_the_session() -> None:
    assert not _state(revoked=True).is_valid(T0 + timedelta(minutes=2))
    assert not _state(key_active=False).is_valid(T0 + timedelta(seconds=1))


def test_staff_cookie_is_not_the_subscriber_cookie() -> None:
    assert model.STAFF_SESSION_COOKIE != model.SESSION_COOKIE


@given(
    seen=st.integers(min_value=0, max_value=12 * 3600),
    later=st.integers(min_value=0, max_value=12 * 3600),
)
def test_validity_is_exactly_both_limits(seen: int, later: int) -> None:
    state = _state(last_seen=timedelta(seconds=seen))
    now = T0 + timedelta(seconds=seen + later)
    expected = (
        now < T0 + model.STAFF_SESSION_ABSOLUTE
        and now < T0 + timedelta(seconds=seen) + model.STAFF_SESSION_IDLE
    )
    assert state.is_valid(now) is expected
    assert state.expires_at() <= T0 + model.STAFF_SESSION_ABSOLUTE
