"""Reads of the numbers context: the current carrier of a number and everything known about it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from quietline.numbers import plan
from quietline.numbers.model import PhoneNumber
from quietline.numbers.orm import PortedNumber
from quietline.vocabulary import Carrier

_CARRIER_LABELS = {c.value: c.label for c in Carrier}


def carrier_label(code: str | None) -> str | None:
    """The Chinese name of a carrier code (``china_mobile`` → 中国移动)."""
    if code is None:
        return None
    return _CARRIER_LABELS.get(code, code)


def ported_record(session: Session, number: PhoneNumber) -> PortedNumber | None:
    if not number.portable:
        return None  # resale, satellite, IoT, fixed and service numbers never have a record
    return session.get(PortedNumber, number.e164)


def current_carrier(session: Session, number: PhoneNumber) -> str | None:
    """The carrier serving ``number`` now: the portability table first, then the original carrier.

    A prefix never decides the current carrier of a ported number (携号转网, 工信部信管〔2019〕242号):
    the number plan only says where the range was first allocated.
    """
    record = ported_record(session, number)
    return record.carrier if record is not None else number.original_carrier


def describe(number: PhoneNumber) -> str:
    """A short Chinese description of the number from the number plan."""
    code = plan.SHORT_CODES.get(number.national)
    if code is not None and number.is_domestic:
        return code.label
    mobile = plan.MOBILE_PREFIXES.get(number.national[:4]) if len(number.national) == 11 else None
    if mobile is not None and number.national[0] == "1":
        return mobile.label
    if number.area_code:
        return f"固定电话（区号 {number.area_code}）"
    if number.national.startswith("106"):
        return plan.SMS_PORT_PREFIXES.get(number.national[:4], number.type.label)
    return number.type.label


def info(session: Session, number: PhoneNumber) -> dict[str, Any]:
    """Everything quietline knows about a number (the ``numbers info`` and ``GET /v1/numbers`` view)."""
    record = ported_record(session, number)
    current = record.carrier if record is not None else number.original_carrier
    return {
        "e164": number.e164,
        "digits": number.digits,
        "national": number.national,
        "type": number.type.value,
        "type_label": number.type.label,
        "description": describe(number),
        "original_carrier": number.original_carrier,
        "original_carrier_label": carrier_label(number.original_carrier),
        "current_carrier": current,
        "current_carrier_label": carrier_label(current),
        "ported": record is not None and record.carrier != number.original_carrier,
        "ported_at": record.ported_at.isoformat() if record is not None else None,
        "area_code": number.area_code,
        "never_block": number.never_block,
        "portable": number.portable,
    }


def iter_ported(session: Session, batch_size: int = 50_000) -> Iterator[tuple[str, str]]:
    """Every (e164, current carrier) record, streamed in key order (for routing snapshots)."""
    last = ""
    while True:
        rows = session.execute(
            select(PortedNumber.number, PortedNumber.carrier)
            .where(PortedNumber.number > last)
            .order_by(PortedNumber.number)
            .limit(batch_size)
        ).all()
        if not rows:
            return
        yield from ((number, carrier) for number, carrier in rows)
        last = rows[-1][0]


def ported_counts(session: Session) -> dict[str, int]:
    """How many portability records name each current carrier."""
    rows = session.execute(select(PortedNumber.carrier, func.count()).group_by(PortedNumber.carrier)).all()
    return {carrier: int(count) for carrier, count in rows}
