"""Webhook signatures from the receiver's side, and the retry schedule."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quietline.complaints.webhooks import (
    MAX_BACKOFF,
    ProcessedDeliveries,
    SignatureInvalid,
    backoff,
    signed_headers,
    verify,
)

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
SECRET = "s3cret-s3cret-s3cret"
BODY = b'{"case":{"id":1},"event":"complaint.forwarded"}'


def headers(**kw: object) -> dict[str, str]:
    return signed_headers(SECRET, delivery_id="d-1", event="complaint.forwarded", body=BODY, now=NOW)


def test_signature_is_hmac_sha256_over_timestamp_and_body() -> None:
    h = headers()
    ts = int(NOW.timestamp())
    expected = hmac.new(SECRET.encode(), f"{ts}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert h["X-Quietline-Signature"] == f"v1={expected}"
    got = verify(SECRET, {k.lower(): v for k, v in h.items()}, BODY, now=NOW + timedelta(seconds=30))
    assert (got.delivery_id, got.event, got.payload["case"]["id"]) == ("d-1", "complaint.forwarded", 1)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda h, b: (h, b + b" "), "X-Quietline-Signature"),  # body tampered
        (
            lambda h, b: ({**h, "X-Quietline-Timestamp": str(int(h["X-Quietline-Timestamp"]) + 1)}, b),
            "X-Quietline-Signature",
        ),
        (lambda h, b: ({k: v for k, v in h.items() if k != "X-Quietline-Signature"}, b), "headers"),
        (lambda h, b: ({**h, "X-Quietline-Timestamp": "soon"}, b), "X-Quietline-Timestamp"),
    ],
)
def test_tampering_is_refused(mutate, field: str) -> None:  # type: ignore[no-untyped-def]
    h, b = mutate(headers(), BODY)
    with pytest.raises(SignatureInvalid) as info:
        verify(SECRET, h, b, now=NOW)
    assert info.value.field == field


def test_wrong_secret_and_stale_timestamp_are_refused_and_rotation_works() -> None:
    with pytest.raises(SignatureInvalid):
        verify("another-secret-value", headers(), BODY, now=NOW)
    with pytest.raises(SignatureInvalid, match="tolerance"):
        verify(SECRET, headers(), BODY, now=NOW + timedelta(minutes=6))
    assert verify(["old-secret-value-x", SECRET], headers(), BODY, now=NOW).delivery_id == "d-1"


def test_redelivery_is_handled_once() -> None:
    seen = ProcessedDeliveries()
    handled: list[int] = []
    first = verify(SECRET, headers(), BODY, now=NOW)
    assert seen.handle(first, lambda d: handled.append(d.payload["case"]["id"]))
    again = verify(SECRET, headers(), BODY, now=NOW + timedelta(minutes=1))
    assert not seen.handle(again, lambda d: handled.append(d.payload["case"]["id"]))
    assert handled == [1]


def test_backoff_doubles_and_caps() -> None:
    assert [backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert backoff(50) == MAX_BACKOFF


@given(st.binary(max_size=500), st.text(min_size=16, max_size=40))
def test_any_body_round_trips_only_with_its_own_signature(body: bytes, secret: str) -> None:
    h = signed_headers(secret, delivery_id="x", event="e", body=body, now=NOW)
    try:
        json.loads(body)
    except ValueError:
        with pytest.raises(SignatureInvalid, match="not JSON"):  # signature fine, body unusable
            verify(secret, h, body, now=NOW)
    else:
        assert verify(secret, h, body, now=NOW).delivery_id == "x"
    with pytest.raises(SignatureInvalid):
        verify(secret + "x", h, body, now=NOW)
