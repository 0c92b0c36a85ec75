"""Reads of accounts. Other packages use these (never the tables) to look up enterprises and keys."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from quietline.accounts.model import ApiKey, Enterprise, EnterpriseStatus, parse_uscc
from quietline.accounts.orm import ApiKeyRow, EnterpriseRow
from quietline.platform.errors import NotFound
from quietline.vocabulary import Category, Role


def enterprise_from_row(row: EnterpriseRow) -> Enterprise:
    return Enterprise(
        uscc=row.uscc,
        name=row.name,
        categories=tuple(c for c in Category if c.value in set(row.categories)),
        status=EnterpriseStatus(row.status),
        registered_at=row.registered_at,
        updated_at=row.updated_at,
    )


def find_enterprise(session: Session, uscc: str, field: str = "uscc") -> Enterprise | None:
    """The enterprise with this code, or None. A malformed code raises ``InvalidInput`` naming ``field``."""
    code = parse_uscc(uscc, field)
    row = session.get(EnterpriseRow, code)
    return None if row is None else enterprise_from_row(row)


def get_enterprise(session: Session, uscc: str, field: str = "uscc") -> Enterprise:
    """The enterprise with this code; ``NotFound`` (naming ``field``) when it is not registered."""
    found = find_enterprise(session, uscc, field)
    if found is None:
        raise NotFound(f"no enterprise is registered with code {uscc.strip().upper()}", field=field)
    return found


def list_enterprises(
    session: Session,
    *,
    status: EnterpriseStatus | None = None,
    category: Category | None = None,
    limit: int = 1000,
    offset: int = 0,
) -> list[Enterprise]:
    """Enterprises ordered by code; ``category`` keeps those that market in it."""
    query = select(EnterpriseRow).order_by(EnterpriseRow.uscc)
    if status is not None:
        query = query.where(EnterpriseRow.status == status.value)
    rows = [enterprise_from_row(r) for r in session.scalars(query)]
    if category is not None:
        rows = [e for e in rows if e.markets_in(category)]
    return rows[offset : offset + limit]


def active_enterprise_codes(session: Session) -> set[str]:
    """Codes of every active enterprise (one column read, for bulk imports checking many rows)."""
    rows = session.scalars(
        select(EnterpriseRow.uscc).where(EnterpriseRow.status == EnterpriseStatus.ACTIVE.value)
    )
    return set(rows)


def api_key_from_row(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        id=row.id,
        role=Role.parse(row.role),
        subject=row.subject,
        scopes=tuple(row.scopes),
        label=row.label,
        created_at=row.created_at,
        created_by=row.created_by,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


def get_api_key(session: Session, key_id: str, field: str = "id") -> ApiKey:
    row = session.get(ApiKeyRow, key_id.strip().lower())
    if row is None:
        raise NotFound(f"no API key with id {key_id!r}", field=field)
    return api_key_from_row(row)


def list_api_keys(
    session: Session, *, subject: str | None = None, role: Role | None = None, include_revoked: bool = False
) -> list[ApiKey]:
    """Keys newest first; never their secrets (only digests are stored)."""
    query = select(ApiKeyRow).order_by(ApiKeyRow.created_at.desc(), ApiKeyRow.id)
    if subject is not None:
        query = query.where(ApiKeyRow.subject == subject)
    if role is not None:
        query = query.where(ApiKeyRow.role == role.value)
    if not include_revoked:
        query = query.where(ApiKeyRow.revoked_at.is_(None))
    return [api_key_from_row(r) for r in session.scalars(query)]
