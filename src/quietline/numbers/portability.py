"""Number portability (携号转网) rules, pure: who may port, and to which carrier.

In force nationally since 2019-12-01 (工信部信管〔2019〕242号《携号转网服务管理规定》): a cellular
number of a basic carrier may move to another basic carrier within the same local network; resale
(转售), satellite and IoT (物联网) numbers cannot port, nor can fixed lines, service numbers or short
codes. The prefix then names only the original carrier; the current one comes from the portability
records.
"""

from __future__ import annotations

from datetime import datetime

from quietline.numbers.model import PhoneNumber
from quietline.platform.errors import InvalidInput
from quietline.vocabulary import Carrier

#: Carriers a number can port to: the basic carriers only (resale operators are not port targets).
PORT_TARGETS: dict[str, str] = {}
for _carrier in Carrier:
    PORT_TARGETS[_carrier.value] = _carrier.value
    PORT_TARGETS[_carrier.label] = _carrier.value


def check_portable(number: PhoneNumber, field: str = "number") -> None:
    """Raise ``InvalidInput`` saying why ``number`` cannot have a portability record (242号文)."""
    if number.portable:
        return
    raise InvalidInput(
        f"{number.e164} is a {number.type.label} ({number.type.value}) and cannot port: "
        "携号转网 covers only the basic carriers' ordinary cellular numbers "
        "(not resale, satellite, IoT, fixed-line or service numbers)",
        field=field,
    )


def parse_port_target(text: str, field: str = "carrier") -> str:
    """A basic carrier's code (``china_mobile`` …) or its Chinese label (``中国移动`` …)."""
    value = text.strip()
    code = PORT_TARGETS.get(value.lower()) or PORT_TARGETS.get(value)
    if code is None:
        raise InvalidInput(
            f"{value!r} is not a carrier a number can port to (one of {', '.join(c.value for c in Carrier)})",
            field=field,
        )
    return code


def parse_ported_at(text: str, now: datetime, field: str = "ported_at") -> datetime:
    """An ISO 8601 time with its UTC offset (``2026-01-05T10:00:00+08:00``), not in the future."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(
            f"{text!r} is not an ISO 8601 time (e.g. 2026-01-05T10:00:00+08:00)", field=field
        ) from None
    if value.tzinfo is None:
        raise InvalidInput(
            f"{text!r} has no UTC offset; write it as e.g. 2026-01-05T10:00:00+08:00", field=field
        )
    if value > now:
        raise InvalidInput(f"{text!r} is in the future", field=field)
    return value
