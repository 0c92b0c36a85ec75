"""The only write path of the registry: each action is one transaction with its audit rows and its
change-feed rows, so a change, its history and its announcement to the screening engine commit together.

Who may do what is decided here, not in the entry points: a subscriber changes only its own number, an
enterprise records consent only in its own name, operators may act for anyone (and are audited as such).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from quietline.numbers import PhoneNumber, parse_prefix
from quietline.platform import audit, changefeed
from quietline.platform.actor import Actor
from quietline.platform.errors import InvalidInput, NotFound, PermissionDenied
from quietline.platform.runtime import Runtime
from quietline.platform.sms import SmsMessage
from quietline.registry import model, queries
from quietline.registry.model import EntryKind, ListName
from quietline.registry.orm import ConsentRow, PersonalListRow, RefusalRow, SystemListRow
from quietline.vocabulary import Category, Channel, Role

log = logging.getLogger(__name__)

TOPIC_REFUSAL = "registry.refusal"
TOPIC_PERSONAL_LIST = "registry.personal_list"
TOPIC_CONSENT = "registry.consent"
TOPIC_SYSTEM_LIST = "registry.system_list"


def _require_owner_or_operator(actor: Actor, number: PhoneNumber) -> None:
    model.require_subscriber_number(number)
    if actor.role is Role.OPERATOR:
        return
    if actor.role is Role.SUBSCRIBER and actor.subject == number.e164:
        return
    raise PermissionDenied("only the number's verified owner or an operator may change it", field="number")


def _refusal_dict(row: RefusalRow) -> dict[str, Any]:
    return {
        "category": row.category,
        "channel": row.channel,
        "active": row.active,
        "since": row.since.isoformat(),
        "valid_until": row.valid_until.isoformat() if row.valid_until else None,
    }


def _emit_refusal(session: Session, row: RefusalRow, now: datetime) -> None:
    changefeed.emit(
        session,
        topic=TOPIC_REFUSAL,
        key=row.number,
        payload={
            "number": row.number,
            "category": row.category,
            "channel": row.channel,
            "active": row.active,
        },
        at=now,
    )


def _set_refusal(
    session: Session,
    *,
    actor: Actor,
    number: str,
    category: str,
    channel: Channel,
    active: bool,
    valid_until: datetime | None,
    now: datetime,
    source: str,
) -> str | None:
    """Bring one refusal to the wanted state; return a description when something changed."""
    row = session.scalar(
        select(RefusalRow).where(
            RefusalRow.number == number, RefusalRow.category == category, RefusalRow.channel == channel.value
        )
    )
    if row is None and not active:
        return None
    if row is not None and row.active == active and (not active or row.valid_until == valid_until):
        return None
    before = _refusal_dict(row) if row is not None else None
    if row is None:
        row = RefusalRow(number=number, category=category, channel=channel.value, source=source)
        session.add(row)
    row.active = active
    row.since = now
    row.valid_until = valid_until if active else None
    # "The latest expression wins both ways" (DESIGN.md decision order, step 6): a refusal given after a
    # consent withdraws nothing from the ledger; ``since`` lets readers see that the refusal is newer.
    row.source = source
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="registry.refuse" if active else "registry.withdraw_refusal",
        subject_type="number",
        subject=number,
        at=now,
        before=before,
        after=_refusal_dict(row),
    )
    _emit_refusal(session, row, now)
    state = model.RefusalState(number, category, channel, row.active, row.since, row.valid_until)
    return state.describe()


def refuse(
    rt: Runtime,
    actor: Actor,
    number: PhoneNumber,
    categories: Sequence[Category | None],
    channels: Sequence[Channel],
    *,
    valid_until: datetime | None = None,
    source: str = "portal",
    notify: bool = True,
) -> list[str]:
    """Refuse marketing in the given categories (``None`` = all marketing) on the given channels.

    Effective system-wide within a second through the change feed (DESIGN.md "Do-not-call").
    """
    return _change_refusals(rt, actor, number, categories, channels, True, valid_until, source, notify)


def withdraw(
    rt: Runtime,
    actor: Actor,
    number: PhoneNumber,
    categories: Sequence[Category | None],
    channels: Sequence[Channel],
    *,
    source: str = "portal",
    notify: bool = True,
) -> list[str]:
    """Withdraw refusals: the subscriber accepts those marketing categories again."""
    return _change_refusals(rt, actor, number, categories, channels, False, None, source, notify)


def _change_refusals(
    rt: Runtime,
    actor: Actor,
    number: PhoneNumber,
    categories: Sequence[Category | None],
    channels: Sequence[Channel],
    active: bool,
    valid_until: datetime | None,
    source: str,
    notify: bool,
) -> list[str]:
    _require_owner_or_operator(actor, number)
    if not categories:
        raise InvalidInput("name at least one category (or all)", field="category")
    if not channels:
        raise InvalidInput("name at least one channel", field="channel")
    now = rt.clock.now()
    model.validate_valid_until(valid_until, now)
    changes: list[str] = []
    with rt.sessions.begin() as session:
        for category in dict.fromkeys(categories):
            for channel in dict.fromkeys(channels):
                described = _set_refusal(
                    session,
                    actor=actor,
                    number=number.e164,
                    category=model.category_code(category),
                    channel=channel,
                    active=active,
                    valid_until=valid_until,
                    now=now,
                    source=source,
                )
                if described:
                    changes.append(described)
    if changes and notify:
        _confirm(rt, number.e164, changes)
    return changes


def set_refusals(
    rt: Runtime,
    actor: Actor,
    number: PhoneNumber,
    wanted: Iterable[tuple[Category | None, Channel]],
    *,
    valid_until: datetime | None = None,
    source: str = "portal",
) -> list[str]:
    """Make the number's refusals exactly ``wanted`` (the portal's form submits the whole set)."""
    _require_owner_or_operator(actor, number)
    now = rt.clock.now()
    model.validate_valid_until(valid_until, now)
    target = {(model.category_code(c), ch) for c, ch in wanted}
    changes: list[str] = []
    with rt.sessions.begin() as session:
        existing = session.scalars(select(RefusalRow).where(RefusalRow.number == number.e164)).all()
        keys = {(r.category, Channel(r.channel)) for r in existing} | target
        for category, channel in sorted(keys):
            described = _set_refusal(
                session,
                actor=actor,
                number=number.e164,
                category=category,
                channel=channel,
                active=(category, channel) in target,
                valid_until=valid_until,
                now=now,
                source=source,
            )
            if described:
                changes.append(described)
    if changes:
        _confirm(rt, number.e164, changes)
    return changes


def expire_refusals(rt: Runtime, actor: Actor) -> int:
    """Deactivate refusals whose validity period has ended (run by the scheduler), audited and announced."""
    now = rt.clock.now()
    with rt.sessions.begin() as session:
        rows = session.scalars(
            select(RefusalRow).where(RefusalRow.active.is_(True), RefusalRow.valid_until <= now)
        ).all()
        for row in rows:
            before = _refusal_dict(row)
            row.active = False
            row.since = now
            audit.record(
                session,
                actor=actor,
                action="registry.refusal_expired",
                subject_type="number",
                subject=row.number,
                at=now,
                before=before,
                after=_refusal_dict(row),
            )
            _emit_refusal(session, row, now)
    return len(rows)


# --- personal lists -------------------------------------------------------------------------------


def _list_value(kind: EntryKind, value: str, parse_number: Any) -> str:
    if kind is EntryKind.NUMBER:
        return str(parse_number(value, field="value").e164)
    if kind is EntryKind.PREFIX:
        return parse_prefix(value, field="value")
    return ""


def add_list_entry(
    rt: Runtime,
    actor: Actor,
    owner: PhoneNumber,
    list_name: ListName,
    kind: EntryKind,
    value: str = "",
    note: str | None = None,
) -> str:
    """Add a number, prefix or "all international" to the owner's personal block or allow list."""
    from quietline.numbers import parse

    _require_owner_or_operator(actor, owner)
    stored = _list_value(kind, value, parse)
    if note is not None and len(note) > 100:
        raise InvalidInput("a note is at most 100 characters", field="note")
    now = rt.clock.now()
    with rt.sessions.begin() as session:
        if _find_entry(session, owner, list_name, kind, stored) is not None:
            return stored
        size = session.scalar(
            select(func.count())
            .select_from(PersonalListRow)
            .where(PersonalListRow.owner == owner.e164, PersonalListRow.list_name == list_name.value)
        )
        model.check_list_capacity(int(size or 0), 1, rt.settings.personal_list_limit, list_name)
        session.add(
            PersonalListRow(
                owner=owner.e164,
                list_name=list_name.value,
                kind=kind.value,
                value=stored,
                note=note,
                created_at=now,
            )
        )
        entry = {"list": list_name.value, "kind": kind.value, "value": stored}
        audit.record(
            session,
            actor=actor,
            action=f"registry.{list_name.value}_list.add",
            subject_type="number",
            subject=owner.e164,
            at=now,
            before=None,
            after=entry,
        )
        changefeed.emit(
            session,
            topic=TOPIC_PERSONAL_LIST,
            key=owner.e164,
            payload={"owner": owner.e164, **entry, "active": True},
            at=now,
        )
    label = "黑名单" if list_name is ListName.BLOCK else "白名单"
    _confirm(rt, owner.e164, [f"{label}新增{_describe_entry(kind, stored)}"])
    return stored


def remove_list_entry(
    rt: Runtime, actor: Actor, owner: PhoneNumber, list_name: ListName, kind: EntryKind, value: str = ""
) -> None:
    from quietline.numbers import parse

    _require_owner_or_operator(actor, owner)
    stored = _list_value(kind, value, parse)
    now = rt.clock.now()
    with rt.sessions.begin() as session:
        row = _find_entry(session, owner, list_name, kind, stored)
        if row is None:
            raise NotFound("no such entry in the list", field="value")
        entry = {"list": list_name.value, "kind": kind.value, "value": stored}
        session.delete(row)
        audit.record(
            session,
            actor=actor,
            action=f"registry.{list_name.value}_list.remove",
            subject_type="number",
            subject=owner.e164,
            at=now,
            before=entry,
            after=None,
        )
        changefeed.emit(
            session,
            topic=TOPIC_PERSONAL_LIST,
            key=owner.e164,
            payload={"owner": owner.e164, **entry, "active": False},
            at=now,
        )
    label = "黑名单" if list_name is ListName.BLOCK else "白名单"
    _confirm(rt, owner.e164, [f"{label}移除{_describe_entry(kind, stored)}"])


def _find_entry(
    session: Session, owner: PhoneNumber, list_name: ListName, kind: EntryKind, stored: str
) -> PersonalListRow | None:
    return session.scalar(
        select(PersonalListRow).where(
            PersonalListRow.owner == owner.e164,
            PersonalListRow.list_name == list_name.value,
            PersonalListRow.kind == kind.value,
            PersonalListRow.value == stored,
        )
    )


def _describe_entry(kind: EntryKind, value: str) -> str:
    if kind is EntryKind.INTERNATIONAL:
        return "全部国际来电"
    if kind is EntryKind.PREFIX:
        return f"号段 {value}*"
    return value


# --- system lists ---------------------------------------------------------------------------------


def set_system_list(
    rt: Runtime, actor: Actor, list_name: ListName, number: PhoneNumber, *, active: bool, reason: str
) -> None:
    """System allow (verified enterprise numbers) and block (confirmed high-risk …) lists: carriers and
    operators only (DESIGN.md decision order, steps 4 and 5)."""
    if actor.role not in (Role.OPERATOR, Role.CARRIER, Role.REGULATOR):
        raise PermissionDenied("only carriers, regulators and operators maintain system lists")
    if not reason.strip():
        raise InvalidInput("a reason is required", field="reason")
    now = rt.clock.now()
    with rt.sessions.begin() as session:
        row = session.scalar(
            select(SystemListRow).where(
                SystemListRow.list_name == list_name.value, SystemListRow.number == number.e164
            )
        )
        before = {"active": row.active, "reason": row.reason} if row else None
        if row is None:
            row = SystemListRow(list_name=list_name.value, number=number.e164)
            session.add(row)
        row.active = active
        row.reason = reason.strip()[:200]
        row.updated_at = now
        audit.record(
            session,
            actor=actor,
            action=f"registry.system_{list_name.value}",
            subject_type="number",
            subject=number.e164,
            at=now,
            before=before,
            after={"active": active, "reason": row.reason},
        )
        changefeed.emit(
            session,
            topic=TOPIC_SYSTEM_LIST,
            key=number.e164,
            payload={"list": list_name.value, "number": number.e164, "active": active, "reason": row.reason},
            at=now,
        )


# --- consent ledger -------------------------------------------------------------------------------


def _require_enterprise_actor(actor: Actor, uscc: str) -> None:
    if actor.role is Role.OPERATOR:
        return
    if actor.role is Role.ENTERPRISE and actor.subject == uscc:
        return
    raise PermissionDenied("an enterprise records consent only in its own name", field="enterprise")


def _consent_payload(row: ConsentRow, granted: bool) -> dict[str, Any]:
    return {
        "enterprise": row.enterprise,
        "number": row.number,
        "category": row.category,
        "channel": row.channel,
        "granted": granted,
        # When the consent was expressed (it may predate its recording): readers compare it with the
        # time of a refusal to apply "the latest expression wins".
        "granted_at": row.granted_at.isoformat(),
    }


def grant_consent(
    rt: Runtime,
    actor: Actor,
    *,
    enterprise: str,
    number: PhoneNumber,
    category: Category,
    channels: Sequence[Channel],
    evidence_ref: str | None = None,
    evidence_text: str | None = None,
    consent_text_version: str | None = None,
    granted_at: datetime | None = None,
) -> list[model.ConsentState]:
    """Record that ``number`` explicitly consented to ``enterprise``'s marketing in ``category``.

    Proof is mandatory: the rules make the enterprise prove consent (2020 draft: no explicit consent =
    refusal), so a grant without a reference or text is refused.
    """
    from quietline.accounts import queries as accounts_queries

    _require_enterprise_actor(actor, enterprise)
    model.require_subscriber_number(number)
    if not (evidence_ref or "").strip() and not (evidence_text or "").strip():
        raise InvalidInput("proof of consent is required (a reference or the text)", field="evidence")
    if evidence_ref is not None and len(evidence_ref) > 200:
        raise InvalidInput("an evidence reference is at most 200 characters", field="evidence")
    if evidence_text is not None and len(evidence_text) > 20_000:
        raise InvalidInput("evidence text is at most 20,000 characters", field="evidence")
    now = rt.clock.now()
    when = granted_at or now
    if when > now:
        raise InvalidInput("consent cannot be granted in the future", field="granted_at")
    digest = hashlib.sha256((evidence_text or evidence_ref or "").encode()).hexdigest()
    states: list[model.ConsentState] = []
    with rt.sessions.begin() as session:
        found = accounts_queries.find_enterprise(session, enterprise, field="enterprise")
        if found is None:
            raise NotFound(f"enterprise {enterprise} is not registered", field="enterprise")
        if not found.is_active:
            raise PermissionDenied(f"enterprise {enterprise} is suspended", field="enterprise")
        for channel in dict.fromkeys(channels):
            active = _active_consent(session, enterprise, number.e164, category.value, channel.value)
            if active is not None:
                # Latest expression wins: a fresh grant supersedes the open one (kept as proof).
                _close_consent(session, active, when, str(actor), rt.settings.consent_retention_days)
            row = ConsentRow(
                enterprise=enterprise,
                number=number.e164,
                category=category.value,
                channel=channel.value,
                granted_at=when,
                evidence_ref=(evidence_ref or "").strip() or None,
                evidence_text=evidence_text,
                evidence_sha256=digest,
                consent_text_version=consent_text_version,
                recorded_by=str(actor),
            )
            session.add(row)
            session.flush()
            audit.record(
                session,
                actor=actor,
                action="consent.grant",
                subject_type="consent",
                subject=f"{enterprise}:{number.e164}",
                at=now,
                before=None,
                after={
                    "id": row.id,
                    "category": row.category,
                    "channel": row.channel,
                    "evidence_sha256": digest,
                },
            )
            changefeed.emit(
                session, topic=TOPIC_CONSENT, key=number.e164, payload=_consent_payload(row, True), at=now
            )
            states.append(queries.consent_state(row))
    return states


def revoke_consent(
    rt: Runtime,
    actor: Actor,
    *,
    enterprise: str,
    number: PhoneNumber,
    category: Category,
    channels: Sequence[Channel] = (Channel.CALL, Channel.SMS),
) -> int:
    """Withdraw consent at any time (the subscriber, the enterprise that holds it, or an operator).

    The record stays as proof for at least the retention period (≥ 5 months) after withdrawal.
    """
    if actor.role is Role.SUBSCRIBER:
        _require_owner_or_operator(actor, number)
    else:
        _require_enterprise_actor(actor, enterprise)
    now = rt.clock.now()
    closed = 0
    with rt.sessions.begin() as session:
        for channel in dict.fromkeys(channels):
            row = _active_consent(session, enterprise, number.e164, category.value, channel.value)
            if row is None:
                continue
            _close_consent(session, row, now, str(actor), rt.settings.consent_retention_days)
            audit.record(
                session,
                actor=actor,
                action="consent.revoke",
                subject_type="consent",
                subject=f"{enterprise}:{number.e164}",
                at=now,
                before={"id": row.id, "category": row.category, "channel": row.channel, "active": True},
                after={"id": row.id, "active": False, "retain_until": row.retain_until},
            )
            changefeed.emit(
                session, topic=TOPIC_CONSENT, key=number.e164, payload=_consent_payload(row, False), at=now
            )
            closed += 1
        if closed == 0:
            raise NotFound("no active consent matches", field="consent")
    if actor.role is Role.SUBSCRIBER:
        _confirm(rt, number.e164, [f"已撤回对企业 {enterprise} 的{category.label}营销授权"])
    return closed


def purge_expired_proofs(rt: Runtime, actor: Actor) -> int:
    """Erase proof text of withdrawn consents whose retention period has ended (never earlier).

    The row, its digest and the audit trail remain, so the fact of consent stays provable.
    """
    now = rt.clock.now()
    with rt.sessions.begin() as session:
        rows = session.scalars(
            select(ConsentRow).where(
                ConsentRow.retain_until.is_not(None),
                ConsentRow.retain_until <= now,
                ConsentRow.evidence_text.is_not(None),
            )
        ).all()
        for row in rows:
            row.evidence_text = None
            audit.record(
                session,
                actor=actor,
                action="consent.proof_purged",
                subject_type="consent",
                subject=f"{row.enterprise}:{row.number}",
                at=now,
                before={"id": row.id, "evidence": "kept"},
                after={"id": row.id, "evidence": "purged", "evidence_sha256": row.evidence_sha256},
            )
    return len(rows)


def _active_consent(
    session: Session, enterprise: str, number: str, category: str, channel: str
) -> ConsentRow | None:
    return session.scalar(
        select(ConsentRow).where(
            ConsentRow.enterprise == enterprise,
            ConsentRow.number == number,
            ConsentRow.category == category,
            ConsentRow.channel == channel,
            ConsentRow.withdrawn_at.is_(None),
        )
    )


def _close_consent(session: Session, row: ConsentRow, when: datetime, by: str, retention_days: int) -> None:
    row.withdrawn_at = when
    row.withdrawn_by = by
    row.retain_until = model.consent_retain_until(when, retention_days)
    session.flush()


def _confirm(rt: Runtime, number: str, changes: list[str]) -> None:
    """Confirm each change by SMS after the commit. A failing gateway does not undo the committed change;
    it is logged so operators see undelivered confirmations."""
    try:
        rt.sms.send(
            SmsMessage(
                to=number, text=model.confirmation_text(changes), at=rt.clock.now(), purpose="confirmation"
            )
        )
    except Exception:
        log.exception("confirmation SMS to %s could not be sent", number)
