"""Demo data for ``make run``: a few enterprises, refusals, lists, consents and one API key per role,
and enough activity that every page has something to show: 12321 complaints over this quarter and the
last (some answered, some waiting on the demo carrier, one past its deadline), crowd marks that display
a label, a high-risk number, and calls that screening blocked for the demo subscriber.

Loaded once: a second ``quietline demo load`` sees its marker in the audit log and does nothing. The
demo keys are written to ``<data dir>/demo-keys.json`` (owner-only) because they are only ever shown
once; they exist only in development installs.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from quietline.accounts import actions as accounts
from quietline.accounts.model import uscc_check_character
from quietline.complaints import actions as complaints
from quietline.complaints.actions import Filing
from quietline.marks import actions as marks
from quietline.numbers import parse
from quietline.oversight.model import Quarter
from quietline.platform import audit
from quietline.platform.actor import Actor
from quietline.platform.audit import AuditEntry
from quietline.platform.errors import PermissionDenied
from quietline.platform.runtime import Runtime
from quietline.registry import actions as registry
from quietline.registry.model import EntryKind, ListName
from quietline.screening.engine import ScreeningEngine, request_for
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

    _activity(rt, bank)

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


#: Demo numbers: reporters are China Mobile subscribers; the reported numbers are on the demo carrier's
#: (China Mobile) ranges so its inbox has work, plus one China Unicom and one resale (170) number.
REPORTERS = tuple(f"+86134{n:08d}" for n in range(10_000_001, 10_000_025))
SPAMMERS = ("+8613512340001", "+8613512340002", "+8615012340003", "+8613012340004", "+8617012340005")
FORMS = ("recorded", "live", "recorded", "bombing", "one_ring", "live")
CATEGORIES = ("loan_finance", "real_estate", "insurance", "education", "loan_finance", "retail")


def _file(rt: Runtime, i: int, received: datetime, *, sms: bool = False) -> int:
    """One complaint, as the 12321 centre imports it (received at ``received``)."""
    filing = Filing(
        reporter=REPORTERS[i % len(REPORTERS)],
        reported=SPAMMERS[i % len(SPAMMERS)],
        channel="sms" if sms else "call",
        at=received - timedelta(hours=2),
        received_at=received,
        duration_seconds=None if sms else 15 + 7 * (i % 5),
        form=None if sms else FORMS[i % len(FORMS)],
        category=CATEGORIES[i % len(CATEGORIES)],
        text="【某贷】低息秒批，回T退订" if sms else None,
        source="import",
    )
    return complaints.file_report(rt, DEMO_ACTOR, filing).id


def _activity(rt: Runtime, bank: str) -> None:
    now = rt.clock.now()
    carrier = Actor(Role.CARRIER, "china_mobile")
    last = Quarter.containing(now).previous()
    # Last quarter: 18 complaints, answered and closed-out as the centre would have done.
    for i in range(18):
        received = last.start + timedelta(days=2 + 5 * i, hours=10)
        case = _file(rt, i, received, sms=i % 4 == 3)
        if i % 3 == 0:
            continue  # still with the company: these show as breaches on the overview
        view = complaints.respond(
            rt,
            DEMO_ACTOR,
            case,
            result="substantiated" if i % 3 == 1 else "unsubstantiated",
            action="warned" if i % 3 == 1 else "核查为正常客户回访",
        )
        complaints.answer(rt, DEMO_ACTOR, view.id)
    # This quarter: recent complaints waiting on the demo carrier (one of them nearly due).
    for i in range(18, 24):
        received = max(now - timedelta(days=2 * (24 - i), hours=3), Quarter.containing(now).start)
        _file(rt, i, received, sms=i == 20)
    complaints.respond(
        rt, carrier, _file(rt, 1, now - timedelta(hours=5)), result="substantiated", action="warned"
    )

    # Crowd marks: six reporters over a week label a real-estate dialler; one says a bank line is fine.
    for k in range(6):
        marks.add_mark(
            rt,
            DEMO_ACTOR,
            number=SPAMMERS[1],
            label="real_estate",
            reporter=REPORTERS[k],
            at=now - timedelta(days=7 - k),
            device=f"demo-device-{k}",
        )
    marks.add_mark(rt, DEMO_ACTOR, number="+8695588", label="legitimate", reporter=REPORTERS[7], at=now)
    marks.flag_high_risk(
        rt, DEMO_ACTOR, number=SPAMMERS[4], source="police", reason="公安机关通报：冒充客服诈骗"
    )

    # Marketing calls and SMS that screening blocked for the demo subscriber (her 拦截记录, and the
    # evening digest), decided by the real engine so each record carries its real reason.
    engine = ScreeningEngine.open(rt)
    alice = parse("13800138000")
    for caller, channel, category in (
        ("02112345678", Channel.CALL, Category.LOAN_FINANCE),
        ("13512340001", Channel.CALL, Category.INSURANCE),
        ("4008123456", Channel.CALL, Category.REAL_ESTATE),
        ("10690000123", Channel.SMS, Category.LOAN_FINANCE),
    ):
        number = parse(caller)
        engine.decide(
            request_for(number, alice, channel, category, None), caller=number.e164, callee=alice.e164
        )
    engine.flush_blocks()
