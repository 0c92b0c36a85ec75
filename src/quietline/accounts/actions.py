"""The write path of accounts: one-time codes, subscriber sessions, enterprises and API keys.

Each action is one transaction with its audit row in it. Refusals that must leave a trace (a wrong
code uses up a try, a rate-limited request is recorded) commit first and raise afterwards, so the
error the user sees never rolls back the evidence. Codes, tokens and key secrets are never stored or
audited in clear: only HMAC-SHA256 digests keyed with the server secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import Session

from quietline.accounts import model
from quietline.accounts.model import (
    ApiKey,
    Enterprise,
    EnterpriseStatus,
    OtpState,
    SessionState,
    StaffSessionState,
)
from quietline.accounts.orm import (
    ApiKeyRow,
    EnterpriseRow,
    OtpChallengeRow,
    OtpSendRow,
    StaffLoginFailureRow,
    StaffSessionRow,
    SubscriberSessionRow,
)
from quietline.accounts.queries import api_key_from_row, enterprise_from_row
from quietline.platform import audit, changefeed
from quietline.platform.actor import Actor
from quietline.platform.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    QuietlineError,
    RateLimited,
    Unauthenticated,
)
from quietline.platform.runtime import Runtime
from quietline.platform.secrets import keyed_digest, same_digest
from quietline.platform.sms import SmsMessage
from quietline.vocabulary import NumberType, Role

if TYPE_CHECKING:
    from quietline.numbers import PhoneNumber

ENTERPRISE_TOPIC = "accounts.enterprise"
API_KEY_TOPIC = "accounts.api_key"
RATE_WINDOW = timedelta(hours=1)
#: Send records are only needed for the sliding hour; a day is kept for investigating abuse.
SEND_LOG_KEPT = timedelta(days=1)
#: Numbers that can receive an SMS code: ordinary mobiles and resale (170/171/162/165/167) mobiles.
OTP_NUMBER_TYPES = (NumberType.MOBILE, NumberType.RESALE)
ANONYMOUS = Actor(Role.SUBSCRIBER, "anonymous")


class SmsUnavailable(QuietlineError):
    """The SMS gateway refused or is not configured; the code was not delivered."""

    status = 503


# --- One-time codes ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CodeSent:
    number: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class IssuedSession:
    """A new subscriber session; ``token`` goes into the cookie and is never stored."""

    token: str
    session_id: str
    number: str
    expires_at: datetime

    @property
    def actor(self) -> Actor:
        return Actor(Role.SUBSCRIBER, self.number, key_id=self.session_id)


def parse_mobile(text: str, field: str = "number") -> PhoneNumber:
    """A number that can receive a code (the number plan decides; ``InvalidNumber`` says why not)."""
    # Imported here so that importing the API auth module stays cheap (the number plan loads tables).
    from quietline.numbers import parse

    number = parse(text, field=field)
    if number.type not in OTP_NUMBER_TYPES:
        raise InvalidInput(
            f"only a mobile number can receive a verification code ({number.national} is "
            f"{number.type.label})",
            field=field,
        )
    return number


def _otp_digest(rt: Runtime, number: str, code: str) -> str:
    return keyed_digest(rt.secret, "otp", number, code)


def _serialise(session: Session, now: datetime, *keys: str) -> None:
    """Serialise concurrent senders on the same keys so the counted limits hold across processes.

    SQLite: the transaction's first statement is a write (pruning send records older than a day),
    so it takes the database write lock before it counts anything; a concurrent sender waits on the
    busy timeout instead of counting the same rows (a deferred transaction that reads first cannot
    be upgraded safely). PostgreSQL at READ COMMITTED would let two transactions count the same rows,
    so we take transaction-scoped advisory locks, in sorted order so two requests never deadlock.
    """
    session.execute(delete(OtpSendRow).where(OtpSendRow.at < now - SEND_LOG_KEPT))
    if session.get_bind().dialect.name != "postgresql":
        return
    for key in sorted(set(keys)):
        session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": key})


def request_code(rt: Runtime, number_text: str, *, client: str, actor: Actor | None = None) -> CodeSent:
    """Send a new six-digit code to a mobile number, replacing any earlier code of that number.

    Limits (settings): ``otp_send_per_number_per_hour`` per number and ``otp_send_per_client_per_hour``
    per client (IP address or API key), counted over the last hour from ``otp_sends``. The answer
    is the same whatever the number is registered for, so it reveals nothing (no enumeration).
    """
    number = parse_mobile(number_text).e164
    settings = rt.settings
    now = rt.clock.now()
    who = actor or ANONYMOUS
    code = model.new_otp_code()
    expires_at = now + timedelta(seconds=settings.otp_ttl_seconds)
    refusal: RateLimited | None = None
    with rt.sessions.begin() as session:
        _serialise(session, now, f"otp:number:{number}", f"otp:client:{client}")
        since = now - RATE_WINDOW
        per_number = session.scalar(
            select(func.count()).where(OtpSendRow.number == number, OtpSendRow.at > since)
        )
        per_client = session.scalar(
            select(func.count()).where(OtpSendRow.client == client, OtpSendRow.at > since)
        )
        if (per_number or 0) >= settings.otp_send_per_number_per_hour:
            refusal = RateLimited(
                f"at most {settings.otp_send_per_number_per_hour} codes per number per hour; try again later",
                field="otp_send_per_number_per_hour",
            )
        elif (per_client or 0) >= settings.otp_send_per_client_per_hour:
            refusal = RateLimited(
                f"at most {settings.otp_send_per_client_per_hour} codes per client per hour; try again later",
                field="otp_send_per_client_per_hour",
            )
        if refusal is not None:
            audit.record(
                session,
                actor=who,
                action="accounts.otp.refused",
                subject_type="number",
                subject=number,
                at=now,
                after={"client": client, "limit": refusal.field},
            )
        else:
            session.add(OtpSendRow(at=now, number=number, client=client))
            session.execute(delete(OtpChallengeRow).where(OtpChallengeRow.number == number))
            session.add(
                OtpChallengeRow(
                    number=number,
                    digest=_otp_digest(rt, number, code),
                    created_at=now,
                    expires_at=expires_at,
                    attempts=0,
                    max_attempts=settings.otp_max_attempts,
                )
            )
            audit.record(
                session,
                actor=who,
                action="accounts.otp.request",
                subject_type="number",
                subject=number,
                at=now,
                after={"client": client, "expires_at": expires_at},
            )
    if refusal is not None:
        raise refusal
    # Sent after commit: the development sender writes its outbox in its own transaction, and a code
    # must exist before anyone can read it.
    try:
        rt.sms.send(
            SmsMessage(
                to=number, text=model.otp_sms_text(code, settings.otp_ttl_seconds), at=now, purpose="otp"
            )
        )
    except RuntimeError as exc:
        raise SmsUnavailable(f"the verification SMS could not be sent: {exc}", field="number") from None
    return CodeSent(number=number, expires_at=expires_at)


def verify_code(rt: Runtime, number_text: str, code_text: str, *, client: str) -> IssuedSession:
    """Check a code; on success the code is used up and a subscriber session is opened.

    A wrong code uses up one of ``otp_max_attempts`` tries (then the code is dead); the try is
    committed before the error is raised, so retrying cannot roll it back.
    """
    number = parse_mobile(number_text).e164
    code = model.clean_otp_code(code_text)
    now = rt.clock.now()
    failure: InvalidInput | None = None
    issued: IssuedSession | None = None
    with rt.sessions.begin() as session:
        _serialise(session, now, f"otp:number:{number}")
        row = session.get(OtpChallengeRow, number, with_for_update=True)
        if row is None:
            failure = InvalidInput("no code was requested for this number; request one", field="code")
        else:
            state = OtpState(row.digest, row.expires_at, row.attempts, row.max_attempts)
            reason = state.refusal(now)
            if reason is not None:
                failure = InvalidInput(reason, field="code")
            elif not same_digest(state.digest, _otp_digest(rt, number, code)):
                row.attempts += 1
                left = state.tries_left_after_failure
                failure = InvalidInput(
                    f"wrong code; {left} tries left" if left else "wrong code; request a new code",
                    field="code",
                )
            else:
                session.delete(row)
                issued = _open_session(rt, session, number, now)
        audit.record(
            session,
            actor=issued.actor if issued else ANONYMOUS,
            action="accounts.otp.verified" if issued else "accounts.otp.failed",
            subject_type="number",
            subject=number,
            at=now,
            after={"client": client, **({"session": issued.session_id} if issued else {})},
        )
    if issued is None:
        raise failure or InvalidInput("the code could not be verified", field="code")
    return issued


# --- Subscriber sessions -------------------------------------------------------------------------


def _session_digest(rt: Runtime, token: str) -> str:
    return keyed_digest(rt.secret, "session", token)


def _open_session(rt: Runtime, session: Session, number: str, now: datetime) -> IssuedSession:
    token = model.new_session_token()
    session_id = model.new_id(8)
    session.add(
        SubscriberSessionRow(
            id=session_id,
            token_digest=_session_digest(rt, token),
            number=number,
            created_at=now,
            last_seen_at=now,
            revoked_at=None,
        )
    )
    state = SessionState(session_id, number, now, now, None)
    return IssuedSession(token=token, session_id=session_id, number=number, expires_at=state.expires_at())


def authenticate_session(rt: Runtime, token: str) -> Actor | None:
    """The subscriber behind a session cookie, or None when it is unknown, revoked or expired.

    Seeing a session moves its idle deadline; that bookkeeping write is not audited (it is not a
    change anyone acts on) and happens at most once a minute.
    """
    if not token or len(token) > 200:
        return None
    now = rt.clock.now()
    digest = _session_digest(rt, token)
    with rt.sessions() as session:
        row = session.scalar(select(SubscriberSessionRow).where(SubscriberSessionRow.token_digest == digest))
        if row is None:
            return None
        state = SessionState(row.id, row.number, row.created_at, row.last_seen_at, row.revoked_at)
    if not state.is_valid(now):
        return None
    if state.needs_touch(now):
        with rt.sessions.begin() as session:
            session.execute(
                update(SubscriberSessionRow)
                .where(SubscriberSessionRow.id == state.id)
                .values(last_seen_at=now)
            )
    return Actor(Role.SUBSCRIBER, state.number, key_id=state.id)


def end_session(rt: Runtime, actor: Actor) -> None:
    """Log out: revoke the session the subscriber is using (``actor.key_id``)."""
    if actor.role is not Role.SUBSCRIBER or actor.key_id is None:
        raise InvalidInput("only a subscriber session can be logged out", field="session")
    now = rt.clock.now()
    with rt.sessions.begin() as session:
        row = session.get(SubscriberSessionRow, actor.key_id)
        if row is None or row.number != actor.subject:
            raise NotFound("no such session", field="session")
        if row.revoked_at is None:
            row.revoked_at = now
        audit.record(
            session,
            actor=actor,
            action="accounts.session.logout",
            subject_type="number",
            subject=actor.subject,
            at=now,
            after={"session": row.id},
        )


# --- Staff sessions ------------------------------------------------------------------------------


class StaffLoginFailed(Unauthenticated):
    """The presented key does not sign in. One message for every cause (malformed, unknown id, wrong
    secret, revoked, suspended enterprise), so a failed login never tells whether a key id exists."""


@dataclass(frozen=True, slots=True)
class IssuedStaffSession:
    """A new staff session; ``token`` goes into the ``ql_staff`` cookie and is never stored."""

    token: str
    session_id: str
    actor: Actor
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class StaffIdentity:
    """Who is behind a staff session cookie: the key's role and subject (``actor.key_id`` is the API
    key's id, so rate limits and audit rows name the key) and the session's own id."""

    actor: Actor
    session_id: str


def _staff_digest(rt: Runtime, token: str) -> str:
    return keyed_digest(rt.secret, "staff-session", token)


def open_staff_session(rt: Runtime, presented_key: str, *, client: str) -> IssuedStaffSession:
    """Sign a carrier, enterprise, regulator or 12321 operator in to the portal with its API key.

    The key is checked exactly as on the API (``authenticate_api_key``: revoked keys and keys of
    suspended enterprises fail). Success and failure are both audited; a failure names only the key id
    the text claims (never the secret), and the error says nothing about why.
    """
    now = rt.clock.now()
    limit = rt.settings.staff_login_failures_per_client_per_hour
    with rt.sessions() as session:
        failures = session.scalar(
            select(func.count()).where(
                StaffLoginFailureRow.client == client[:120], StaffLoginFailureRow.at > now - RATE_WINDOW
            )
        )
    if (failures or 0) >= limit:
        # Refused before the key is even looked at: guessing stops here, and a refusal writes nothing.
        raise RateLimited(
            f"at most {limit} failed sign-ins per client per hour; try again later",
            field="staff_login_failures_per_client_per_hour",
        )
    found = authenticate_api_key(rt, presented_key) if len(presented_key) <= 200 else None
    parts = model.split_api_key(presented_key) if len(presented_key) <= 200 else None
    with rt.sessions.begin() as session:
        if found is None:
            session.execute(delete(StaffLoginFailureRow).where(StaffLoginFailureRow.at < now - SEND_LOG_KEPT))
            session.add(StaffLoginFailureRow(at=now, client=client[:120]))
            audit.record(
                session,
                actor=ANONYMOUS,
                action="accounts.staff.login_failed",
                subject_type="api_key",
                subject=parts[0] if parts else "malformed",
                at=now,
                after={"client": client},
            )
            issued = None
        else:
            key_id = found.actor.key_id or ""  # authenticate_api_key always names the key
            token = model.new_session_token()
            session_id = model.new_id(8)
            session.add(
                StaffSessionRow(
                    id=session_id,
                    token_digest=_staff_digest(rt, token),
                    api_key_id=key_id,
                    client=client[:120],
                    created_at=now,
                    last_seen_at=now,
                    revoked_at=None,
                )
            )
            state = StaffSessionState(session_id, key_id, now, now, None, key_active=True)
            issued = IssuedStaffSession(token, session_id, found.actor, state.expires_at())
            audit.record(
                session,
                actor=found.actor,
                action="accounts.staff.login",
                subject_type="api_key",
                subject=key_id,
                at=now,
                after={"client": client, "session": session_id, "expires_at": issued.expires_at},
            )
    if issued is None:
        raise StaffLoginFailed("API 密钥无效或已停用", field="key")
    return issued


def authenticate_staff_session(rt: Runtime, token: str) -> StaffIdentity | None:
    """The staff member behind a ``ql_staff`` cookie, or None when the session is unknown, logged out,
    idle or past its absolute limit, or its API key was revoked or its enterprise suspended.

    The key is re-read on every request, so a revocation ends the session at once. Seeing a session
    moves its idle deadline at most once a minute (bookkeeping, not audited).
    """
    if not token or len(token) > 200:
        return None
    now = rt.clock.now()
    digest = _staff_digest(rt, token)
    with rt.sessions() as session:
        found = session.execute(
            select(StaffSessionRow, ApiKeyRow)
            .join(ApiKeyRow, ApiKeyRow.id == StaffSessionRow.api_key_id)
            .where(StaffSessionRow.token_digest == digest)
        ).first()
        if found is None:
            return None
        row, key_row = found
        state = StaffSessionState(
            row.id,
            row.api_key_id,
            row.created_at,
            row.last_seen_at,
            row.revoked_at,
            key_row.revoked_at is None,
        )
        key = api_key_from_row(key_row)
        if key.role is Role.ENTERPRISE:
            enterprise = session.get(EnterpriseRow, key.subject)
            if enterprise is None or enterprise.status != EnterpriseStatus.ACTIVE.value:
                return None
    if not state.is_valid(now):
        return None
    if state.needs_touch(now):
        with rt.sessions.begin() as session:
            session.execute(
                update(StaffSessionRow).where(StaffSessionRow.id == state.id).values(last_seen_at=now)
            )
    return StaffIdentity(Actor(key.role, key.subject, key_id=key.id), state.id)


def end_staff_session(rt: Runtime, token: str) -> bool:
    """Log a staff member out: revoke the session behind the cookie (audited). False when the token
    names no live session (logging out twice is harmless)."""
    identity = authenticate_staff_session(rt, token)
    if identity is None:
        return False
    now = rt.clock.now()
    with rt.sessions.begin() as session:
        row = session.get(StaffSessionRow, identity.session_id)
        if row is None or row.revoked_at is not None:
            return False
        row.revoked_at = now
        audit.record(
            session,
            actor=identity.actor,
            action="accounts.staff.logout",
            subject_type="api_key",
            subject=row.api_key_id,
            at=now,
            after={"session": row.id},
        )
    return True


# --- Enterprises ---------------------------------------------------------------------------------


def _enterprise_changed(session: Session, enterprise: Enterprise, at: datetime) -> None:
    changefeed.emit(session, topic=ENTERPRISE_TOPIC, key=enterprise.uscc, payload=enterprise.as_dict(), at=at)


def register_enterprise(
    rt: Runtime, actor: Actor, *, uscc: str, name: str, categories: list[str] | tuple[str, ...] = ()
) -> Enterprise:
    """Register an enterprise under its unified social credit code (checksum verified, GB 32100-2015)."""
    code = model.parse_uscc(uscc)
    clean_name = model.clean_enterprise_name(name)
    cats = model.parse_categories(categories)
    now = rt.clock.now()
    with rt.sessions.begin() as session:
        if session.get(EnterpriseRow, code) is not None:
            raise Conflict(f"an enterprise with code {code} is already registered", field="uscc")
        row = EnterpriseRow(
            uscc=code,
            name=clean_name,
            categories=[c.value for c in cats],
            status=EnterpriseStatus.ACTIVE.value,
            registered_at=now,
            updated_at=now,
        )
        session.add(row)
        enterprise = enterprise_from_row(row)
        audit.record(
            session,
            actor=actor,
            action="accounts.enterprise.register",
            subject_type="enterprise",
            subject=code,
            at=now,
            after=enterprise.as_dict(),
        )
        _enterprise_changed(session, enterprise, now)
    return enterprise


def _change_enterprise(
    rt: Runtime,
    actor: Actor,
    uscc: str,
    action: str,
    *,
    categories: list[str] | None = None,
    status: EnterpriseStatus | None = None,
    reason: str | None = None,
) -> Enterprise:
    code = model.parse_uscc(uscc)
    cats = model.parse_categories(categories) if categories is not None else None
    now = rt.clock.now()
    with rt.sessions.begin() as session:
        row = session.get(EnterpriseRow, code, with_for_update=True)
        if row is None:
            raise NotFound(f"no enterprise is registered with code {code}", field="uscc")
        before = enterprise_from_row(row)
        if cats is not None:
            row.categories = [c.value for c in cats]
        if status is not None:
            row.status = status.value
        row.updated_at = now
        after = enterprise_from_row(row)
        audit.record(
            session,
            actor=actor,
            action=action,
            subject_type="enterprise",
            subject=code,
            at=now,
            before=before.as_dict(),
            after={**after.as_dict(), **({"reason": reason} if reason else {})},
        )
        _enterprise_changed(session, after, now)
    return after


def update_enterprise_categories(
    rt: Runtime, actor: Actor, uscc: str, categories: list[str] | tuple[str, ...]
) -> Enterprise:
    """Replace the categories the enterprise markets in."""
    return _change_enterprise(rt, actor, uscc, "accounts.enterprise.categories", categories=list(categories))


def suspend_enterprise(rt: Runtime, actor: Actor, uscc: str, *, reason: str) -> Enterprise:
    """Suspend an enterprise: its API keys stop authenticating until it is reinstated."""
    if not reason.strip():
        raise InvalidInput("a suspension needs a reason", field="reason")
    return _change_enterprise(
        rt,
        actor,
        uscc,
        "accounts.enterprise.suspend",
        status=EnterpriseStatus.SUSPENDED,
        reason=reason.strip(),
    )


def reinstate_enterprise(rt: Runtime, actor: Actor, uscc: str) -> Enterprise:
    return _change_enterprise(
        rt, actor, uscc, "accounts.enterprise.reinstate", status=EnterpriseStatus.ACTIVE
    )


# --- API keys ------------------------------------------------------------------------------------


def _key_digest(rt: Runtime, key_id: str, secret: str) -> str:
    return keyed_digest(rt.secret, "apikey", key_id, secret)


@dataclass(frozen=True, slots=True)
class CreatedKey:
    key: ApiKey
    plaintext: str  # shown once; only its digest is stored

    def as_dict(self) -> dict[str, object]:
        return {**self.key.as_dict(), "key": self.plaintext}


def create_api_key(
    rt: Runtime,
    actor: Actor,
    *,
    role: str | Role,
    subject: str,
    scopes: list[str] | tuple[str, ...] = (),
    label: str = "",
) -> CreatedKey:
    """Issue a key bound to a role and subject (an enterprise key needs a registered enterprise)."""
    key_role = model.parse_key_role(role)
    key_subject = model.clean_key_subject(key_role, subject)
    key_scopes = model.parse_scopes(scopes)
    clean_label = " ".join(label.split())
    if len(clean_label) > 200:
        raise InvalidInput("the label is longer than 200 characters", field="label")
    key_id, secret = model.new_api_key_parts()
    now = rt.clock.now()
    with rt.sessions.begin() as session:
        if key_role is Role.ENTERPRISE and session.get(EnterpriseRow, key_subject) is None:
            raise NotFound(
                f"no enterprise is registered with code {key_subject}; register it first", field="subject"
            )
        row = ApiKeyRow(
            id=key_id,
            digest=_key_digest(rt, key_id, secret),
            role=key_role.value,
            subject=key_subject,
            scopes=list(key_scopes),
            label=clean_label,
            created_at=now,
            created_by=str(actor),
            last_used_at=None,
            revoked_at=None,
        )
        session.add(row)
        key = api_key_from_row(row)
        audit.record(
            session,
            actor=actor,
            action="accounts.key.create",
            subject_type="api_key",
            subject=key_id,
            at=now,
            after=key.as_dict(),
        )
        changefeed.emit(session, topic=API_KEY_TOPIC, key=key_id, payload={"active": True}, at=now)
    return CreatedKey(key, model.format_api_key(key_id, secret))


def revoke_api_key(rt: Runtime, actor: Actor, key_id: str) -> ApiKey:
    """Revoke a key; it stops authenticating at once (every request checks the table)."""
    now = rt.clock.now()
    with rt.sessions.begin() as session:
        row = session.get(ApiKeyRow, key_id.strip().lower(), with_for_update=True)
        if row is None:
            raise NotFound(f"no API key with id {key_id!r}", field="id")
        if row.revoked_at is not None:
            raise Conflict(f"API key {row.id} is already revoked", field="id")
        before = api_key_from_row(row)
        row.revoked_at = now
        # The portal sessions opened with this key end with it (authentication also checks the key).
        session.execute(
            update(StaffSessionRow)
            .where(StaffSessionRow.api_key_id == row.id, StaffSessionRow.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        key = api_key_from_row(row)
        audit.record(
            session,
            actor=actor,
            action="accounts.key.revoke",
            subject_type="api_key",
            subject=row.id,
            at=now,
            before=before.as_dict(),
            after=key.as_dict(),
        )
        changefeed.emit(session, topic=API_KEY_TOPIC, key=row.id, payload={"active": False}, at=now)
    return key


@dataclass(frozen=True, slots=True)
class KeyIdentity:
    actor: Actor
    scopes: frozenset[str]


def authenticate_api_key(rt: Runtime, presented: str) -> KeyIdentity | None:
    """The holder of a presented ``ql_<id>_<secret>`` key, or None when it is malformed, unknown,
    revoked, or belongs to a suspended enterprise. ``last_used_at`` is refreshed (not audited)."""
    parts = model.split_api_key(presented)
    if parts is None:
        return None
    key_id, secret = parts
    now = rt.clock.now()
    with rt.sessions() as session:
        row = session.get(ApiKeyRow, key_id)
        if row is None or row.revoked_at is not None:
            return None
        if not same_digest(row.digest, _key_digest(rt, key_id, secret)):
            return None
        key = api_key_from_row(row)
        if key.role is Role.ENTERPRISE:
            enterprise = session.get(EnterpriseRow, key.subject)
            if enterprise is None or enterprise.status != EnterpriseStatus.ACTIVE.value:
                return None
    if key.last_used_at is None or now - key.last_used_at >= model.KEY_TOUCH_EVERY:
        with rt.sessions.begin() as session:
            session.execute(update(ApiKeyRow).where(ApiKeyRow.id == key_id).values(last_used_at=now))
    return KeyIdentity(Actor(key.role, key.subject, key_id=key_id), frozenset(key.scopes))
