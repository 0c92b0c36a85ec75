"""Bulk CSV imports of refusals and consent records (operators migrating existing registrations).

Both run through ``platform.bulk.run_import`` (streaming, line-numbered errors, one transaction, the
two modes) and merge set-based: staged rows are compared with the current state and only real changes
produce a per-number audit row (with before/after) and a change-feed row, written by ``INSERT …
SELECT`` in the same transaction as the change. One more audit row names the file (SHA-256) and the
counts. Imports send no confirmation SMS: they migrate registrations the subscribers already made.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    case,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.orm import Session

from quietline.numbers import parse
from quietline.platform.actor import Actor
from quietline.platform.bulk import (
    DEFAULT_BATCH_SIZE,
    ImportMode,
    ImportSpec,
    ImportSummary,
    Progress,
    run_import,
)
from quietline.platform.db import UtcDateTime
from quietline.platform.errors import InvalidInput, NotFound, PermissionDenied
from quietline.platform.runtime import Runtime
from quietline.platform.sqlbulk import (
    audit_import,
    audit_rows_from,
    feed_rows_from,
    iso_time,
    json_bool,
    json_object,
    prepare_merge,
    stage_rows,
    upsert_insert,
)
from quietline.registry import model
from quietline.registry.actions import TOPIC_CONSENT, TOPIC_REFUSAL
from quietline.registry.orm import ConsentRow, RefusalRow
from quietline.vocabulary import Category, Role, VocabularyError, parse_category_or_all, parse_channels

REFUSAL_COLUMNS = ("number", "category", "channel")
REFUSAL_OPTIONAL_COLUMNS = ("valid_until",)
CONSENT_COLUMNS = ("number", "category", "evidence")
CONSENT_OPTIONAL_COLUMNS = ("enterprise", "channel", "granted_at", "evidence_ref", "consent_text_version")

_stage_metadata = MetaData()
_refusal_stage = Table(
    "ql_refusal_stage",
    _stage_metadata,
    Column("number", String(24), nullable=False),
    Column("category", String(32), nullable=False),
    Column("channel", String(8), nullable=False),
    Column("valid_until", UtcDateTime, nullable=True),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)
#: The staged refusals that change something, with the state they replace (none for a new refusal),
#: computed once by a single join and sorted, so the inserts that follow walk the indexes in order.
_refusal_changes = Table(
    "ql_refusal_changes",
    _stage_metadata,
    Column("number", String(24), nullable=False),
    Column("category", String(32), nullable=False),
    Column("channel", String(8), nullable=False),
    Column("valid_until", UtcDateTime, nullable=True),
    Column("existed", Boolean, nullable=False),
    Column("prev_active", Boolean, nullable=True),
    Column("prev_since", UtcDateTime, nullable=True),
    Column("prev_valid_until", UtcDateTime, nullable=True),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)
_consent_stage = Table(
    "ql_consent_stage",
    _stage_metadata,
    Column("line", Integer, nullable=False),
    Column("enterprise", String(18), nullable=False),
    Column("number", String(24), nullable=False),
    Column("category", String(32), nullable=False),
    Column("channel", String(8), nullable=False),
    Column("granted_at", UtcDateTime, nullable=False),
    Column("evidence_ref", String(200), nullable=True),
    Column("evidence_text", Text, nullable=True),
    Column("evidence_sha256", String(64), nullable=False),
    Column("consent_text_version", String(64), nullable=True),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)

RefusalStage = tuple[str, str, str, datetime | None]


def _time(text: str, field: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{text!r} is not an ISO 8601 date or time", field=field) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _vocabulary(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except VocabularyError as exc:
        raise InvalidInput(str(exc), field=exc.field) from None


def _refusal_validator(now: datetime) -> Callable[[Mapping[str, str], int], list[RefusalStage]]:
    # A file has millions of rows but a handful of distinct category and channel spellings.
    categories: dict[str, str] = {}
    channels: dict[str, tuple[str, ...]] = {}

    def validate(row: Mapping[str, str], _line: int) -> list[RefusalStage]:
        number = model.require_subscriber_number(parse(row["number"], field="number"))
        raw_category, raw_channel = row["category"], row["channel"] or "both"
        category = categories.get(raw_category)
        if category is None:
            category = model.category_code(_vocabulary(lambda: parse_category_or_all(raw_category)))
            categories[raw_category] = category
        wanted = channels.get(raw_channel)
        if wanted is None:
            wanted = tuple(ch.value for ch in _vocabulary(lambda: parse_channels(raw_channel)))
            channels[raw_channel] = wanted
        until_text = row.get("valid_until", "")
        until = _time(until_text, "valid_until") if until_text else None
        if until is not None:
            model.validate_valid_until(until, now)
        e164 = number.e164
        return [(e164, category, ch, until) for ch in wanted]

    return validate


def _stage_refusals(session: Session, rows: Sequence[list[RefusalStage]]) -> None:
    flat = [r for group in rows for r in group]
    stage_rows(session, _refusal_stage, ("number", "category", "channel", "valid_until"), flat)


def _upsert_refusals(dialect: str, source: Any) -> Any:
    columns = ["number", "category", "channel", "active", "since", "valid_until", "source"]
    stmt = upsert_insert(dialect, RefusalRow).from_select(columns, source)
    return stmt.on_conflict_do_update(
        index_elements=[RefusalRow.number, RefusalRow.category, RefusalRow.channel],
        set_={
            "active": stmt.excluded.active,
            "since": stmt.excluded.since,
            "valid_until": stmt.excluded.valid_until,
            "source": stmt.excluded.source,
        },
        where=or_(
            RefusalRow.active.is_(False),
            RefusalRow.valid_until.is_distinct_from(stmt.excluded.valid_until),
        ),
    )


def _merge_refusals(session: Session, actor: Actor, now: datetime, summary: ImportSummary) -> dict[str, Any]:
    """Set-based merge: the changes (one join, duplicates in the file folded), then the per-number
    audit rows and change-feed rows for them, then the upsert of the changed refusals only."""
    prepare_merge(session, _refusal_stage)
    connection = session.connection()
    dialect = connection.dialect.name
    s = _refusal_stage.c
    staged = (
        select(s.number, s.category, s.channel, func.max(s.valid_until).label("valid_until"))
        .group_by(s.number, s.category, s.channel)
        .subquery("staged")
    )
    d = staged.c
    r = RefusalRow.__table__.c
    joined = staged.outerjoin(
        RefusalRow.__table__, and_(r.number == d.number, r.category == d.category, r.channel == d.channel)
    )
    _refusal_changes.create(connection)
    session.execute(
        insert(_refusal_changes).from_select(
            [c.name for c in _refusal_changes.columns],
            select(
                d.number,
                d.category,
                d.channel,
                d.valid_until,
                r.id.is_not(None),
                r.active,
                r.since,
                r.valid_until,
            )
            .select_from(joined)
            .where(or_(r.id.is_(None), r.active.is_(False), r.valid_until.is_distinct_from(d.valid_until)))
            .order_by(d.number, d.category, d.channel),
        )
    )
    staged_total = int(session.scalar(select(func.count()).select_from(staged)) or 0)
    changed_total = int(session.scalar(select(func.count()).select_from(_refusal_changes)) or 0)
    import_id = audit_import(
        session,
        actor=actor,
        action="registry.import_refusals",
        subject_type="refusal_import",
        summary=summary,
        at=now,
        counts={
            "refusals": staged_total,
            "changed": changed_total,
            "unchanged": staged_total - changed_total,
        },
    )
    c = _refusal_changes.c
    at = literal(now, UtcDateTime())
    active_true = literal(True)
    before = case(
        (c.existed.is_(False), None),
        else_=json_object(
            dialect,
            ("category", c.category),
            ("channel", c.channel),
            ("active", json_bool(dialect, c.prev_active)),
            ("since", iso_time(dialect, c.prev_since)),
            ("valid_until", iso_time(dialect, c.prev_valid_until)),
        ),
    )
    after = json_object(
        dialect,
        ("category", c.category),
        ("channel", c.channel),
        ("active", json_bool(dialect, active_true)),
        ("since", iso_time(dialect, at)),
        ("valid_until", iso_time(dialect, c.valid_until)),
        ("import_audit_id", literal(import_id)),
    )
    audit_rows_from(
        session,
        actor=actor,
        at=at,
        action="registry.refuse",
        subject_type="number",
        subject=c.number,
        before=before,
        after=after,
    )
    payload = json_object(
        dialect,
        ("number", c.number),
        ("category", c.category),
        ("channel", c.channel),
        ("active", json_bool(dialect, active_true)),
    )
    feed_rows_from(session, at=at, topic=TOPIC_REFUSAL, key=c.number, payload=payload)
    # ``WHERE true`` keeps SQLite's parser from reading ON CONFLICT as a join constraint.
    source = select(c.number, c.category, c.channel, active_true, at, c.valid_until, literal("import")).where(
        true()
    )
    session.execute(_upsert_refusals(dialect, source))
    if dialect != "postgresql":  # PostgreSQL drops them at commit (ON COMMIT DROP)
        _refusal_changes.drop(connection)
        _refusal_stage.drop(connection)
    return {"refusals": staged_total, "changed": changed_total, "audit_id": import_id}


def import_refusals(
    rt: Runtime,
    actor: Actor,
    path: Path | str,
    mode: ImportMode | str = ImportMode.ALL_OR_NOTHING,
    *,
    progress: Progress | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> ImportSummary:
    """Import refusals from CSV: ``number,category,channel`` (category may be ``all``, channel ``call``,
    ``sms`` or ``both``), optionally ``valid_until``. Operators only."""
    if actor.role is not Role.OPERATOR:
        raise PermissionDenied("bulk refusal imports are operator actions")
    mode = ImportMode.parse(mode)
    now = rt.clock.now()
    spec: ImportSpec[list[RefusalStage]] = ImportSpec(
        columns=REFUSAL_COLUMNS,
        optional_columns=REFUSAL_OPTIONAL_COLUMNS,
        validate=_refusal_validator(now),
        write=_stage_refusals,
        prepare=lambda session: _refusal_stage.create(session.connection()),
        finish=lambda session, summary: _merge_refusals(session, actor, now, summary),
        batch_size=batch_size,
    )
    return run_import(rt.sessions, path, spec, mode=mode, progress=progress)


# --- consent records ------------------------------------------------------------------------------

ConsentStage = tuple[int, str, str, str, str, datetime, str | None, str | None, str, str | None]


def _consent_validator(
    now: datetime, default_enterprise: str | None, known: set[str]
) -> Callable[[Mapping[str, str], int], list[ConsentStage]]:
    import hashlib

    def validate(row: Mapping[str, str], line: int) -> list[ConsentStage]:
        enterprise = (row.get("enterprise") or default_enterprise or "").strip().upper()
        if not enterprise:
            raise InvalidInput("no enterprise (give the column or --enterprise)", field="enterprise")
        if default_enterprise and enterprise != default_enterprise:
            raise InvalidInput(
                f"an enterprise imports only its own records, not {enterprise}", field="enterprise"
            )
        if enterprise not in known:
            raise InvalidInput(f"enterprise {enterprise} is not registered or not active", field="enterprise")
        number = model.require_subscriber_number(parse(row["number"], field="number"))
        category = _vocabulary(lambda: Category.parse(row["category"]))
        channels = _vocabulary(lambda: parse_channels(row.get("channel") or "both"))
        evidence, ref = row["evidence"], row.get("evidence_ref") or None
        if not evidence and not ref:
            raise InvalidInput("proof of consent is required (evidence or evidence_ref)", field="evidence")
        granted_text = row.get("granted_at", "")
        granted = _time(granted_text, "granted_at") if granted_text else now
        if granted > now:
            raise InvalidInput("consent cannot be granted in the future", field="granted_at")
        digest = hashlib.sha256((evidence or ref or "").encode()).hexdigest()
        version = row.get("consent_text_version") or None
        return [
            (
                line,
                enterprise,
                number.e164,
                category.value,
                ch.value,
                granted,
                ref,
                evidence or None,
                digest,
                version,
            )
            for ch in channels
        ]

    return validate


def _stage_consents(session: Session, rows: Sequence[list[ConsentStage]]) -> None:
    columns = (
        "line",
        "enterprise",
        "number",
        "category",
        "channel",
        "granted_at",
        "evidence_ref",
        "evidence_text",
        "evidence_sha256",
        "consent_text_version",
    )
    stage_rows(session, _consent_stage, columns, [r for group in rows for r in group])


def _merge_consents(
    session: Session, actor: Actor, now: datetime, summary: ImportSummary, retention_days: int
) -> dict[str, Any]:
    """New grants close the open consent they supersede (latest expression wins), then insert."""
    prepare_merge(session, _consent_stage)
    connection = session.connection()
    dialect = connection.dialect.name
    s = _consent_stage.c
    c = ConsentRow.__table__.c
    latest = (
        select(s.enterprise, s.number, s.category, s.channel, func.min(s.granted_at).label("first_granted"))
        .group_by(s.enterprise, s.number, s.category, s.channel)
        .subquery("latest")
    )
    superseded = (
        select(c.id)
        .join(
            latest,
            and_(
                c.enterprise == latest.c.enterprise,
                c.number == latest.c.number,
                c.category == latest.c.category,
                c.channel == latest.c.channel,
            ),
        )
        .where(c.withdrawn_at.is_(None), c.granted_at <= latest.c.first_granted)
    )
    closing = [row_id for (row_id,) in session.execute(superseded)]
    if closing:
        retain = model.consent_retain_until(now, retention_days)
        session.execute(
            update(ConsentRow)
            .where(ConsentRow.id.in_(closing))
            .values(withdrawn_at=now, withdrawn_by=str(actor), retain_until=retain)
        )
    staged = int(session.scalar(select(func.count()).select_from(_consent_stage)) or 0)
    import_id = audit_import(
        session,
        actor=actor,
        action="consent.import",
        subject_type="consent_import",
        summary=summary,
        at=now,
        counts={"consents": staged, "superseded": len(closing)},
    )
    at = literal(now, UtcDateTime())
    # Within one file, the latest grant per key stays open; earlier ones are recorded as superseded.
    later = _consent_stage.alias("later")
    overtaken = (
        select(later.c.line)
        .where(
            later.c.enterprise == s.enterprise,
            later.c.number == s.number,
            later.c.category == s.category,
            later.c.channel == s.channel,
            or_(
                later.c.granted_at > s.granted_at,
                and_(later.c.granted_at == s.granted_at, later.c.line > s.line),
            ),
        )
        .exists()
    )
    session.execute(
        insert(ConsentRow).from_select(
            [
                "enterprise",
                "number",
                "category",
                "channel",
                "granted_at",
                "evidence_ref",
                "evidence_text",
                "evidence_sha256",
                "consent_text_version",
                "recorded_by",
                "withdrawn_at",
                "withdrawn_by",
                "retain_until",
            ],
            select(
                s.enterprise,
                s.number,
                s.category,
                s.channel,
                s.granted_at,
                s.evidence_ref,
                s.evidence_text,
                s.evidence_sha256,
                s.consent_text_version,
                literal(str(actor)),
                case((overtaken, at), else_=None),
                case((overtaken, literal(str(actor))), else_=None),
                case(
                    (overtaken, literal(model.consent_retain_until(now, retention_days), UtcDateTime())),
                    else_=None,
                ),
            ).order_by(s.line),
        )
    )
    audit_rows_from(
        session,
        actor=actor,
        at=at,
        action="consent.grant",
        subject_type="consent",
        subject=s.enterprise + literal(":") + s.number,
        before=literal(None),
        after=json_object(
            dialect,
            ("category", s.category),
            ("channel", s.channel),
            ("evidence_sha256", s.evidence_sha256),
            ("import_audit_id", literal(import_id)),
        ),
        where=~overtaken,
    )
    payload = json_object(
        dialect,
        ("enterprise", s.enterprise),
        ("number", s.number),
        ("category", s.category),
        ("channel", s.channel),
        ("granted", json_bool(dialect, literal(True))),
        ("granted_at", iso_time(dialect, s.granted_at)),
    )
    feed_rows_from(
        session,
        at=at,
        topic=TOPIC_CONSENT,
        key=s.number,
        payload=payload,
        where=~overtaken,
        order_by=[s.line],
    )
    if dialect != "postgresql":
        _consent_stage.drop(connection)
    return {"consents": staged, "superseded": len(closing), "audit_id": import_id}


def import_consents(
    rt: Runtime,
    actor: Actor,
    path: Path | str,
    mode: ImportMode | str = ImportMode.ALL_OR_NOTHING,
    *,
    enterprise: str | None = None,
    progress: Progress | None = None,
) -> ImportSummary:
    """Import consent records: ``number,category,evidence`` plus optional ``enterprise``, ``channel``,
    ``granted_at``, ``evidence_ref``, ``consent_text_version``. An enterprise imports only its own."""
    from quietline.accounts import queries as accounts_queries

    if actor.role is Role.ENTERPRISE:
        if enterprise and enterprise.strip().upper() != actor.subject:
            raise PermissionDenied("an enterprise imports only its own consent records", field="enterprise")
        enterprise = actor.subject
    elif actor.role is not Role.OPERATOR:
        raise PermissionDenied("consent imports are for enterprises and operators")
    mode = ImportMode.parse(mode)
    now = rt.clock.now()
    with rt.sessions() as session:
        known = {e.uscc for e in accounts_queries.list_enterprises(session, limit=100_000_000) if e.is_active}
    default = enterprise.strip().upper() if enterprise else None
    if default is not None and default not in known:
        raise NotFound(f"enterprise {default} is not registered or not active", field="enterprise")
    spec: ImportSpec[list[ConsentStage]] = ImportSpec(
        columns=CONSENT_COLUMNS,
        optional_columns=CONSENT_OPTIONAL_COLUMNS,
        validate=_consent_validator(now, default, known),
        write=_stage_consents,
        prepare=lambda session: _consent_stage.create(session.connection()),
        finish=lambda session, summary: _merge_consents(
            session, actor, now, summary, rt.settings.consent_retention_days
        ),
    )
    return run_import(rt.sessions, path, spec, mode=mode, progress=progress)
