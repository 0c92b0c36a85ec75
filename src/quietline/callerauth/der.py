"""A small DER reader and writer: just enough ASN.1 for TNAuthList (RFC 8226 §9).

cryptography hands an unknown extension back as its raw DER value; pyasn1 is not a dependency, and
the structure needed here (SEQUENCE, context tags, IA5String, INTEGER) is small enough to read
strictly by hand. Definite lengths only, as DER requires (X.690 §10.1).
"""

from __future__ import annotations

from dataclasses import dataclass

TAG_INTEGER = 0x02
TAG_IA5STRING = 0x16
TAG_SEQUENCE = 0x30


class DerError(ValueError):
    """Malformed DER."""


@dataclass(frozen=True, slots=True)
class Tlv:
    tag: int
    value: bytes

    @property
    def constructed(self) -> bool:
        return bool(self.tag & 0x20)

    @property
    def context_number(self) -> int | None:
        """The number of a context-specific tag ([n]), else None."""
        return self.tag & 0x1F if self.tag & 0xC0 == 0x80 else None


def read_all(data: bytes) -> list[Tlv]:
    """Every TLV in ``data`` in order; the whole input must be consumed."""
    items: list[Tlv] = []
    pos = 0
    while pos < len(data):
        item, pos = _read_one(data, pos)
        items.append(item)
    return items


def read_single(data: bytes) -> Tlv:
    items = read_all(data)
    if len(items) != 1:
        raise DerError(f"expected one DER element, found {len(items)}")
    return items[0]


def _read_one(data: bytes, pos: int) -> tuple[Tlv, int]:
    if pos + 2 > len(data):
        raise DerError("truncated DER header")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise DerError("high tag numbers are not used by TNAuthList")
    first = data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4:
            raise DerError("indefinite or oversized length is not DER")
        if pos + count > len(data):
            raise DerError("truncated DER length")
        length = int.from_bytes(data[pos : pos + count], "big")
        if length < 0x80 or data[pos] == 0:
            raise DerError("non-minimal DER length")
        pos += count
    end = pos + length
    if end > len(data):
        raise DerError("DER value runs past the end")
    return Tlv(tag, data[pos:end]), end


def read_integer(tlv: Tlv) -> int:
    if tlv.tag != TAG_INTEGER or not tlv.value:
        raise DerError("expected an INTEGER")
    return int.from_bytes(tlv.value, "big", signed=True)


def read_ia5(tlv: Tlv) -> str:
    if tlv.tag != TAG_IA5STRING:
        raise DerError("expected an IA5String")
    try:
        return tlv.value.decode("ascii")
    except UnicodeDecodeError as exc:
        raise DerError("IA5String holds non-ASCII bytes") from exc


def encode(tag: int, value: bytes) -> bytes:
    length = len(value)
    if length < 0x80:
        header = bytes([tag, length])
    else:
        raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
        header = bytes([tag, 0x80 | len(raw), *raw])
    return header + value


def encode_integer(value: int) -> bytes:
    size = max(1, (value.bit_length() + 8) // 8)
    return encode(TAG_INTEGER, value.to_bytes(size, "big", signed=True))


def encode_ia5(text: str) -> bytes:
    return encode(TAG_IA5STRING, text.encode("ascii"))
