"""Signed webhooks from an outbox: how a forwarded case reaches its company the moment it is forwarded.

Sending side. The action that forwards a case writes one ``complaint_webhook_delivery`` row per endpoint
in the same transaction (transactional outbox), so a crash never loses an announcement and never
announces a case that was rolled back. ``deliver_due`` then posts each due row, at least once:

- every attempt is signed afresh: ``X-Quietline-Signature: v1=<hex HMAC-SHA256(secret, "<ts>." + body)>``
  with ``X-Quietline-Timestamp: <unix seconds>`` (HMAC per RFC 2104 with SHA-256, FIPS 180-4; the scheme
  binds the timestamp so a captured request cannot be replayed after the tolerance window);
- ``X-Quietline-Delivery`` is the row's UUID and stays the same on every retry: a receiver that records
  the ids it has processed makes redelivery idempotent (a crash between the receiver's 2xx and our
  commit, or a lost response, leads to a second post of the same id);
- a failure (network error or a non-2xx answer) is retried with exponential backoff
  (30 s, 1 min, 2 min … capped at one hour); after ``MAX_ATTEMPTS`` the row is ``dead`` and shows in
  ``quietline complaints webhooks --json``, never silently dropped;
- a worker claims due rows with a short lease (``next_attempt_at`` moved forward, ``FOR UPDATE SKIP
  LOCKED`` on PostgreSQL) so two workers do not post the same row at the same time.

Receiving side: ``verify`` checks the signature and the timestamp; ``ProcessedDeliveries`` is the
bookkeeping of ids a receiver needs for idempotency. A company's endpoint, in any framework::

    delivery = verify(secret, request.headers, raw_body, now=datetime.now(UTC))  # 401 if it raises
    if delivery.delivery_id not in already_processed:    # a redelivery: answer 2xx, do nothing
        open_ticket(delivery.payload["case"])             # then remember delivery.delivery_id
    return 204

Events: ``complaint.forwarded`` (a new or reopened case), ``complaint.deadline_warning`` (two working
days before a deadline), ``complaint.breach`` (a deadline passed).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from quietline.complaints.orm import WebhookDeliveryRow, WebhookEndpointRow
from quietline.platform.errors import InvalidInput

SIGNATURE_HEADER = "X-Quietline-Signature"
TIMESTAMP_HEADER = "X-Quietline-Timestamp"
DELIVERY_HEADER = "X-Quietline-Delivery"
EVENT_HEADER = "X-Quietline-Event"
SCHEME = "v1"
#: A receiver refuses signatures whose timestamp is further than this from its clock (replay window).
DEFAULT_TOLERANCE = timedelta(minutes=5)
MAX_ATTEMPTS = 10
BASE_BACKOFF = timedelta(seconds=30)
MAX_BACKOFF = timedelta(hours=1)
#: How long a claimed row stays invisible to other workers while it is being posted.
LEASE = timedelta(seconds=60)


STATUS_PENDING = "pending"
STATUS_DELIVERED = "delivered"
STATUS_DEAD = "dead"


# ------------------------------------------------------------------------------------------- signing


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SCHEME}={mac.hexdigest()}"


def signed_headers(
    secret: str | list[str], *, delivery_id: str, event: str, body: bytes, now: datetime
) -> dict[str, str]:
    """Headers of one attempt; with several secrets (a rotation in progress) one ``v1=`` per secret,
    so a receiver holding either the old or the new secret verifies the delivery."""
    timestamp = int(now.timestamp())
    keys = [secret] if isinstance(secret, str) else secret
    return {
        "Content-Type": "application/json; charset=utf-8",
        DELIVERY_HEADER: delivery_id,
        EVENT_HEADER: event,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: ",".join(signature(key, timestamp, body) for key in keys),
    }


class SignatureInvalid(InvalidInput):
    """A webhook a receiver must refuse (bad or missing signature, stale timestamp)."""

    status = 401


@dataclass(frozen=True)
class VerifiedDelivery:
    delivery_id: str
    event: str
    timestamp: int
    payload: dict[str, Any]


def verify(
    secret: str | list[str],
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: datetime,
    tolerance: timedelta = DEFAULT_TOLERANCE,
) -> VerifiedDelivery:
    """Receiver side: check a delivery's signature and freshness; return its id, event and payload.

    ``secret`` may be a list during a secret rotation (any one matching is enough). Header names are
    matched case-insensitively (HTTP header names are case-insensitive, RFC 9110 §5.1).
    """
    lower = {k.lower(): v for k, v in headers.items()}
    raw_ts = lower.get(TIMESTAMP_HEADER.lower())
    raw_sig = lower.get(SIGNATURE_HEADER.lower())
    delivery_id = lower.get(DELIVERY_HEADER.lower())
    if not raw_ts or not raw_sig or not delivery_id:
        raise SignatureInvalid("missing signature, timestamp or delivery id header", field="headers")
    try:
        timestamp = int(raw_ts)
    except ValueError:
        raise SignatureInvalid("timestamp is not an integer", field=TIMESTAMP_HEADER) from None
    if abs(now.timestamp() - timestamp) > tolerance.total_seconds():
        raise SignatureInvalid("timestamp outside the tolerance window (replayed?)", field=TIMESTAMP_HEADER)
    secrets = [secret] if isinstance(secret, str) else secret
    given = [s.strip() for s in raw_sig.split(",") if s.strip().startswith(f"{SCHEME}=")]
    ok = any(hmac.compare_digest(signature(key, timestamp, body), sig) for key in secrets for sig in given)
    if not ok:
        raise SignatureInvalid("signature does not match the body", field=SIGNATURE_HEADER)
    try:
        payload = json.loads(body)
    except ValueError:
        raise SignatureInvalid("body is not JSON", field="body") from None
    return VerifiedDelivery(delivery_id, lower.get(EVENT_HEADER.lower(), ""), timestamp, payload)


class ProcessedDeliveries:
    """A receiver's record of handled delivery ids: ``handle`` runs the handler once per id."""

    def __init__(self) -> None:
        self._seen: dict[str, Any] = {}

    def handle(self, delivery: VerifiedDelivery, handler: Callable[[VerifiedDelivery], Any]) -> bool:
        """True when the delivery was new and handled, False for a redelivery (ignored, still 2xx)."""
        if delivery.delivery_id in self._seen:
            return False
        self._seen[delivery.delivery_id] = handler(delivery)
        return True

    def __len__(self) -> int:
        return len(self._seen)


# ------------------------------------------------------------------------------------------ sending


class Transport(Protocol):
    def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        """POST and return the HTTP status; raise ``OSError``/``httpx.HTTPError`` on network failure."""
        ...


class HttpxTransport:
    """The real transport (httpx, short timeouts so one slow receiver does not stall the queue)."""

    def __init__(self, timeout: float = 10.0) -> None:
        import httpx

        self._client = httpx.Client(timeout=timeout, follow_redirects=False)

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        return self._client.post(url, content=body, headers=headers).status_code

    def close(self) -> None:
        self._client.close()


def backoff(attempts: int) -> timedelta:
    """Delay before the next attempt after ``attempts`` failed ones: 30 s doubling, capped at 1 h."""
    delay: timedelta = BASE_BACKOFF * (2 ** min(max(attempts - 1, 0), 16))
    return min(delay, MAX_BACKOFF)


def encode(payload: Mapping[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def enqueue(
    session: Session,
    *,
    recipients: list[tuple[str, str]],
    event: str,
    payload: Mapping[str, Any],
    case_id: int | None,
    now: datetime,
) -> int:
    """Add one outbox row per endpoint of each recipient, inside the caller's transaction."""
    if not recipients:
        return 0
    endpoints = session.scalars(
        # Paused endpoints get their rows too: they wait in the outbox until the endpoint resumes.
        select(WebhookEndpointRow).where(WebhookEndpointRow.party_id.in_([pid for _, pid in recipients]))
    ).all()
    wanted = set(recipients)
    body = encode({"event": event, **payload})
    count = 0
    for endpoint in endpoints:
        if (endpoint.party_kind, endpoint.party_id) not in wanted:
            continue
        session.add(
            WebhookDeliveryRow(
                id=str(uuid.uuid4()),
                endpoint_id=endpoint.id,
                event=event,
                case_id=case_id,
                body=body,
                status=STATUS_PENDING,
                attempts=0,
                created_at=now,
                next_attempt_at=now,
            )
        )
        count += 1
    return count


@dataclass
class DeliveryReport:
    delivered: int = 0
    retried: int = 0
    dead: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"delivered": self.delivered, "retried": self.retried, "dead": self.dead}


@dataclass(frozen=True)
class _Claim:
    id: str
    url: str
    secrets: list[str]
    event: str
    body: str
    attempts: int


def _claim(sessions: sessionmaker[Session], now: datetime, limit: int) -> list[_Claim]:
    with sessions.begin() as session:
        query = (
            select(WebhookDeliveryRow, WebhookEndpointRow)
            .join(WebhookEndpointRow, WebhookEndpointRow.id == WebhookDeliveryRow.endpoint_id)
            .where(
                WebhookDeliveryRow.status == STATUS_PENDING,
                WebhookDeliveryRow.next_attempt_at <= now,
                WebhookEndpointRow.active.is_(True),  # a disabled endpoint's rows wait for it
            )
            .order_by(WebhookDeliveryRow.next_attempt_at)
            .limit(limit)
        )
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(of=WebhookDeliveryRow, skip_locked=True)
        claims = []
        for row, endpoint in session.execute(query).all():
            row.next_attempt_at = now + LEASE
            keys = [endpoint.secret]
            if endpoint.previous_secret and endpoint.previous_until and endpoint.previous_until > now:
                keys.append(endpoint.previous_secret)
            claims.append(_Claim(row.id, endpoint.url, keys, row.event, row.body, row.attempts))
        return claims


def deliver_due(
    sessions: sessionmaker[Session], transport: Transport, now: datetime, limit: int = 100
) -> DeliveryReport:
    """Post every due outbox row once; record success, or schedule the retry (or give up: ``dead``)."""
    report = DeliveryReport()
    for claim in _claim(sessions, now, limit):
        body = claim.body.encode()
        headers = signed_headers(claim.secrets, delivery_id=claim.id, event=claim.event, body=body, now=now)
        error: str | None = None
        try:
            status = transport.post(claim.url, body, headers)
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except Exception as exc:  # any transport failure is retried, and recorded
            error = f"{type(exc).__name__}: {exc}"[:500]
        with sessions.begin() as session:
            row = session.get(WebhookDeliveryRow, claim.id)
            if row is None or row.status != STATUS_PENDING:
                continue
            row.attempts = claim.attempts + 1
            if error is None:
                row.status = STATUS_DELIVERED
                row.delivered_at = now
                row.last_error = None
                report.delivered += 1
            elif row.attempts >= MAX_ATTEMPTS:
                row.status = STATUS_DEAD
                row.last_error = error
                report.dead += 1
            else:
                row.next_attempt_at = now + backoff(row.attempts)
                row.last_error = error
                report.retried += 1
    return report
