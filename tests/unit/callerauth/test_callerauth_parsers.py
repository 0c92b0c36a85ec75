"""The Identity header parser, TNAuthList and the DER reader, driven by hypothesis."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quietline.callerauth import der, tnauth
from quietline.callerauth import passport as pp
from quietline.callerauth.tn import canonical_tn
from quietline.platform.errors import InvalidInput

TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJhdHRlc3QiOiJBIn0.c2lnbmF0dXJl"
URLS = [
    "https://cert.example.cn/sp.pem",
    "https://cert.example.cn:8443/creds/sp.pem",
    "https://sti.example.org/v2/certs/11001.10012",
]
_ws = st.sampled_from(["", " ", "  ", "\t", "\r\n "])


@given(
    url=st.sampled_from(URLS),
    order=st.permutations(["info", "alg", "ppt"]),
    spaces=st.lists(_ws, min_size=8, max_size=8),
    brackets=st.booleans(),
    quote_ppt=st.booleans(),
    prefix=st.sampled_from(["", "Identity: ", "identity:", "IDENTITY :  "]),
    name_case=st.sampled_from([str.lower, str.upper, str.title]),
)
def test_identity_header_spellings(
    *,
    url: str,
    order: list[str],
    spaces: list[str],
    brackets: bool,
    quote_ppt: bool,
    prefix: str,
    name_case: object,
) -> None:
    values = {
        "info": f"<{url}>" if brackets else url,
        "alg": "ES256",
        "ppt": '"shaken"' if quote_ppt else "shaken",
    }
    text = prefix + TOKEN
    for i, name in enumerate(order):
        shown = name_case(name)  # type: ignore[operator]
        text += f"{spaces[2 * i]};{spaces[2 * i + 1]}{shown}={values[name]}"
    text += spaces[7]
    parsed = pp.parse_identity_header(text)
    assert parsed.token == TOKEN
    assert parsed.info == url
    assert parsed.alg == "ES256"
    assert parsed.ppt == "shaken"


def test_identity_header_keeps_semicolons_inside_the_info_uri() -> None:
    parsed = pp.parse_identity_header(f"{TOKEN};info=<https://x.example/c.pem;v=2>;ppt=shaken;alg=ES256")
    assert parsed.info == "https://x.example/c.pem;v=2"
    assert parsed.ppt == "shaken"


@pytest.mark.parametrize(
    "text", ["", "   ", "Identity:", "not-a-token;info=<x>", f"{TOKEN};info=<https://x", f"{TOKEN};alg"]
)
def test_identity_header_rejects_malformed(text: str) -> None:
    with pytest.raises(pp.PassportFormatError):
        pp.parse_identity_header(text)


@given(st.text(max_size=200))
def test_identity_header_parser_only_raises_its_own_error(text: str) -> None:
    with contextlib.suppress(pp.PassportFormatError):
        pp.parse_identity_header(text)


@given(st.binary(max_size=120))
def test_decode_only_raises_its_own_error(blob: bytes) -> None:
    token = ".".join(pp.b64url_encode(part) for part in blob.split(b"|", 2))
    with contextlib.suppress(pp.PassportFormatError):
        pp.decode(token)


def test_signature_conversion_round_trips() -> None:
    raw = bytes(range(1, 65))
    assert pp.der_to_raw(pp.raw_to_der(raw)) == raw
    small = b"\x00" * 31 + b"\x05" + b"\x00" * 31 + b"\x07"
    assert pp.der_to_raw(pp.raw_to_der(small)) == small
    with pytest.raises(pp.PassportFormatError):
        pp.raw_to_der(b"\x01" * 63)


def test_shaken_spc_tnauthlist_has_the_atis_encoding() -> None:
    # ATIS-1000080: SEQUENCE { [0] EXPLICIT IA5String "1234" }
    expected = bytes([0x30, 0x08, 0xA0, 0x06, 0x16, 0x04]) + b"1234"
    assert tnauth.TNAuthList(spcs=("1234",)).to_der() == expected
    assert tnauth.parse_der(expected) == tnauth.TNAuthList(spcs=("1234",))


def test_implicitly_tagged_entries_are_read() -> None:
    implicit = bytes([0x30, 0x06, 0x80, 0x04]) + b"1234"
    assert tnauth.parse_der(implicit).spcs == ("1234",)


_tn = st.from_regex(r"[0-9]{4,15}", fullmatch=True)


@given(
    spcs=st.lists(st.from_regex(r"[0-9A-Z]{1,10}", fullmatch=True), max_size=3),
    ranges=st.lists(st.tuples(_tn, st.integers(2, 10**6)), max_size=3),
    numbers=st.lists(_tn, max_size=3),
)
def test_tnauthlist_round_trips(spcs: list[str], ranges: list[tuple[str, int]], numbers: list[str]) -> None:
    if not (spcs or ranges or numbers):
        with pytest.raises(tnauth.TNAuthListError):
            tnauth.TNAuthList()
        return
    value = tnauth.TNAuthList(tuple(spcs), tuple(tnauth.TnRange(s, c) for s, c in ranges), tuple(numbers))
    assert tnauth.parse_der(value.to_der()) == value


@given(st.binary(max_size=64))
def test_tnauthlist_reader_only_raises_its_own_error(blob: bytes) -> None:
    with contextlib.suppress(tnauth.TNAuthListError):
        tnauth.parse_der(blob)


def test_range_coverage() -> None:
    r = tnauth.TnRange("8613800138000", 10)
    assert r.covers("8613800138000")
    assert r.covers("8613800138009")
    assert not r.covers("8613800138010")
    assert not r.covers("861380013800")
    assert not r.covers("8613800137999")


def test_der_lengths() -> None:
    long_value = b"x" * 300
    encoded = der.encode(0x04, long_value)
    assert encoded[:4] == bytes([0x04, 0x82, 0x01, 0x2C])
    assert der.read_single(encoded).value == long_value
    with pytest.raises(der.DerError):
        der.read_single(bytes([0x04, 0x81, 0x05]) + b"12345")  # non-minimal length
    with pytest.raises(der.DerError):
        der.read_single(bytes([0x04, 0x80]))  # indefinite length
    assert der.read_integer(der.read_single(der.encode_integer(128))) == 128


@pytest.mark.parametrize(
    ("text", "digits"),
    [
        ("+86 138 0013 8000", "8613800138000"),
        ("0086-10-8888-6666", "861088886666"),
        ("tel:+12155551212", "12155551212"),
        ("12155551212", "12155551212"),  # already the PASSporT form of a US number
        ("13800138000", "8613800138000"),  # a Chinese mobile in national form
        ("442079460000", "442079460000"),
    ],
)
def test_canonical_tn(text: str, digits: str) -> None:
    assert canonical_tn(text) == digits


@pytest.mark.parametrize("text", ["+", "+86x", "+1234567890123456", "1234", "abc"])
def test_canonical_tn_rejects(text: str) -> None:
    with pytest.raises(InvalidInput):
        canonical_tn(text)


def test_hostile_tokens_are_refused_cleanly() -> None:
    deep = pp.b64url_encode(b"[" * 5000)  # nesting deeper than the JSON decoder's recursion limit
    with pytest.raises(pp.PassportFormatError, match="RecursionError"):
        pp.decode(f"{pp.b64url_encode(b'{}')}.{deep}.AA")
    with pytest.raises(pp.PassportFormatError, match="longer than"):
        pp.decode("a" * 9000 + ".b.c")
    not_utf8 = pp.b64url_encode(b"\xff\xfe{")
    with pytest.raises(pp.PassportFormatError):
        pp.decode(f"{not_utf8}.{not_utf8}.AA")
