"""TNAuthList: the telephone-number authority a STIR certificate carries (RFC 8226 §9).

    TNAuthorizationList ::= SEQUENCE SIZE (1..MAX) OF TNEntry
    TNEntry ::= CHOICE { spc [0] ServiceProviderCode, range [1] TelephoneNumberRange,
                         one [2] TelephoneNumber }
    TelephoneNumberRange ::= SEQUENCE { start TelephoneNumber, count INTEGER (2..MAX), ... }
    TelephoneNumber ::= IA5String (SIZE (1..15)) (FROM ("0123456789#*"))

The module is defined with EXPLICIT TAGS, so each choice is a constructed context tag wrapping the
universal type (a SHAKEN certificate's list is ``30 08 A0 06 16 04 <SPC>``). A reader also accepts
implicitly tagged entries, which some CAs have issued.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier

from quietline.callerauth import der

#: id-pe-TNAuthList (RFC 8226 §9).
TN_AUTH_LIST_OID = ObjectIdentifier("1.3.6.1.5.5.7.1.26")

_TN_CHARS = frozenset("0123456789#*")


class TNAuthListError(ValueError):
    """A TNAuthList that does not follow RFC 8226."""


@dataclass(frozen=True, slots=True)
class TnRange:
    """``count`` consecutive numbers of the same length starting at ``start``."""

    start: str
    count: int

    def covers(self, tn: str) -> bool:
        if len(tn) != len(self.start) or not tn.isdigit() or not self.start.isdigit():
            return False
        offset = int(tn) - int(self.start)
        return 0 <= offset < self.count


@dataclass(frozen=True, slots=True)
class TNAuthList:
    spcs: tuple[str, ...] = ()
    ranges: tuple[TnRange, ...] = ()
    numbers: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not (self.spcs or self.ranges or self.numbers):
            raise TNAuthListError("TNAuthList needs at least one entry (SIZE (1..MAX))")
        for tn in (*self.numbers, *(r.start for r in self.ranges)):
            _check_tn(tn)
        for r in self.ranges:
            if r.count < 2:
                raise TNAuthListError("a TelephoneNumberRange count is at least 2 (RFC 8226 §9)")

    @property
    def lists_numbers(self) -> bool:
        """Whether the certificate names numbers itself (rather than only an SPC)."""
        return bool(self.ranges or self.numbers)

    def covers(self, tn: str) -> bool:
        """Whether ``tn`` is one of the listed numbers or inside a listed range."""
        return tn in self.numbers or any(r.covers(tn) for r in self.ranges)

    def to_der(self) -> bytes:
        entries = [der.encode(0xA0, der.encode_ia5(spc)) for spc in self.spcs]
        for r in self.ranges:
            body = der.encode_ia5(r.start) + der.encode_integer(r.count)
            entries.append(der.encode(0xA1, der.encode(der.TAG_SEQUENCE, body)))
        entries += [der.encode(0xA2, der.encode_ia5(tn)) for tn in self.numbers]
        return der.encode(der.TAG_SEQUENCE, b"".join(entries))

    def as_extension(self) -> x509.UnrecognizedExtension:
        return x509.UnrecognizedExtension(TN_AUTH_LIST_OID, self.to_der())

    def as_dict(self) -> dict[str, object]:
        return {
            "spc": list(self.spcs),
            "ranges": [{"start": r.start, "count": r.count} for r in self.ranges],
            "numbers": list(self.numbers),
        }


def _check_tn(tn: str) -> None:
    if not 1 <= len(tn) <= 15 or not set(tn) <= _TN_CHARS:
        raise TNAuthListError(f"{tn!r} is not a TelephoneNumber (1-15 of 0-9 # *, RFC 8226 §9)")


def parse_der(data: bytes) -> TNAuthList:
    """Decode the extension value (the DER of TNAuthorizationList)."""
    try:
        outer = der.read_single(data)
        if outer.tag != der.TAG_SEQUENCE:
            raise TNAuthListError("TNAuthList is not a SEQUENCE")
        spcs: list[str] = []
        ranges: list[TnRange] = []
        numbers: list[str] = []
        for entry in der.read_all(outer.value):
            number = entry.context_number
            if number == 0:
                spcs.append(_inner_ia5(entry))
            elif number == 1:
                ranges.append(_inner_range(entry))
            elif number == 2:
                numbers.append(_inner_ia5(entry))
            else:
                raise TNAuthListError(f"unknown TNEntry tag 0x{entry.tag:02x}")
    except der.DerError as exc:
        raise TNAuthListError(f"TNAuthList is not valid DER: {exc}") from exc
    return TNAuthList(tuple(spcs), tuple(ranges), tuple(numbers))


def _inner_ia5(entry: der.Tlv) -> str:
    if entry.constructed:  # EXPLICIT: [n] { IA5String }
        return der.read_ia5(der.read_single(entry.value))
    return entry.value.decode("ascii")  # IMPLICIT: [n] replaces the IA5String tag


def _inner_range(entry: der.Tlv) -> TnRange:
    if not entry.constructed:
        raise TNAuthListError("a TelephoneNumberRange must be constructed")
    inner = der.read_all(entry.value)
    # EXPLICIT wraps a SEQUENCE; IMPLICIT puts the SEQUENCE's members directly under [1].
    members = der.read_all(inner[0].value) if len(inner) == 1 and inner[0].tag == der.TAG_SEQUENCE else inner
    if len(members) < 2:
        raise TNAuthListError("a TelephoneNumberRange needs start and count")
    return TnRange(der.read_ia5(members[0]), der.read_integer(members[1]))


def from_certificate(cert: x509.Certificate) -> TNAuthList | None:
    """The certificate's TNAuthList, or None when it carries none."""
    try:
        ext = cert.extensions.get_extension_for_oid(TN_AUTH_LIST_OID)
    except x509.ExtensionNotFound:
        return None
    value = ext.value
    if not isinstance(value, x509.UnrecognizedExtension):
        raise TNAuthListError("TNAuthList extension could not be read")
    return parse_der(value.value)
