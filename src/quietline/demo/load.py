"""Demo data for ``make run``: a few enterprises, refusals, lists, consents and one API key per role.

Loaded once: a second ``quietline demo load`` sees its marker in the audit log and does nothing. The
demo keys are written to ``<data dir>/demo-keys.json`` (owner-only) because they are only ever shown
once; they exist only in development installs.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from quietline.accounts import actions as accounts
from quietline.accounts.model import uscc_check_character
from quietline.numbers import parse
from quietline.platform import audit
from quietline.platform.actor import Actor
from quietline.platform.audit import AuditEntry
from quietline.platform.errors import PermissionDenied
from quietline.platform.runtime import Runtime
from quietline.registry import actions as registry
from quietline.registry.model import EntryKind, ListName
from quietline.vocabulary import Category, Channel, Role

DEMO_ACTOR = Actor.system("demo")
MARKER = "demo.loaded"


def _uscc(first17: str) -> str:
    return first17 + uscc_check_character(first17)


ENTERPRISES = (
    (_uscc("91110000710000001"), "示例银行信用卡中心", ["loan_finance"]),
    (_uscc("91310000710000002"), "示例人寿保险", ["insurance"]),
    (_uscc("91440300710000003"), "示例房产经纪", ["real_estate"]),
)
BOTH = (Channel.CALL, Channel.SMS)


@dataclass(frozen=True)
class DemoResult:
    loaded: bool
    keys_file: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"loaded": self.loaded, "keys_file": self.keys_file}


def already_loaded(rt: Runtime) -> bool:
    with rt.sessions() as session:
        return session.scalar(select(AuditEntry.id).where(AuditEntry.action == MARKER).limit(1)) is not None


def load(rt: Runtime) -> DemoResult:
    """Load the demo data unless it is there already (development and test installs only)."""
    if not (rt.settings.is_development or rt.settings.env.value == "test"):
        raise PermissionDenied("demo data is loaded only with QUIETLINE_ENV=development")
    if already_loaded(rt):
        return DemoResult(False, None)
    for uscc, name, categories in ENTERPRISES:
        accounts.register_enterprise(rt, DEMO_ACTOR, uscc=uscc, name=name, categories=categories)
    bank = ENTERPRISES[0][0]

    alice, bob, carol = parse("13800138000"), parse("13900139000"), parse("13700137000")
    registry.refuse(rt, DEMO_ACTOR, alice, [Category.LOAN_FINANCE, Category.INSURANCE], BOTH, source="demo")
    registry.refuse(rt, DEMO_ACTOR, bob, [None], (Channel.CALL,), source="demo")
    registry.add_list_entry(rt, DEMO_ACTOR, alice, ListName.BLOCK, EntryKind.PREFIX, "400")
    registry.add_list_entry(rt, DEMO_ACTOR, alice, ListName.ALLOW, EntryKind.NUMBER, "95588")
    registry.grant_consent(
        rt,
        DEMO_ACTOR,
        enterprise=bank,
        number=carol,
        category=Category.LOAN_FINANCE,
        channels=(Channel.CALL,),
        evidence_text="2026-10-08 于手机银行 App 勾选《营销信息接收授权》v3",
        consent_text_version="v3",
    )

    keys: dict[str, str] = {}
    for role, subject in (
        (Role.OPERATOR, "demo-operator"),
        (Role.REGULATOR, "demo-regulator"),
        (Role.CARRIER, "china_mobile"),
        (Role.ENTERPRISE, bank),
    ):
        created = accounts.create_api_key(rt, DEMO_ACTOR, role=role, subject=subject, label="demo")
        keys[role.value] = created.plaintext
    path = rt.settings.data_dir / "demo-keys.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(keys, handle, indent=2)

    with rt.sessions.begin() as session:
        audit.record(
            session,
            actor=DEMO_ACTOR,
            action=MARKER,
            subject_type="platform",
            subject="demo",
            at=rt.clock.now(),
            after={"enterprises": len(ENTERPRISES), "keys_file": str(path)},
        )
    return DemoResult(True, str(path))
