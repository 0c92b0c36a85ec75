"""PASSporT tokens with the SHAKEN extension, and the SIP Identity header that carries them.

* RFC 8225 (PASSporT): a JWS in compact serialisation; header ``typ: passport``, ``alg: ES256``,
  ``x5u`` naming the signer's certificate; claims serialised as JSON with keys in lexicographic
  order and no whitespace (§9) so every party builds the same signing input.
* RFC 8588 (SHAKEN): ``ppt: shaken`` in the header, claims ``attest`` (A/B/C), ``dest``
  (``{"tn": [...]}``), ``iat``, ``orig`` (``{"tn": ...}``) and ``origid`` (a UUID).
* RFC 7518 §3.4: the ES256 signature is the raw 32-byte R followed by the 32-byte S, not DER.
* RFC 8224 §4.1: ``Identity: <jws>;info=<x5u>;alg=ES256;ppt=shaken``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from quietline.callerauth.tn import canonical_tn

ALG = "ES256"
PPT = "shaken"
#: RFC 8946: the PASSporT a diverting (forwarding) provider adds.
PPT_DIV = "div"
TYP = "passport"
_P256_BYTES = 32
#: Real SHAKEN tokens are a few hundred characters; anything this long is refused unread.
MAX_TOKEN_CHARS = 8192
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class Attestation(StrEnum):
    """SHAKEN attestation levels (ATIS-1000074 §5.2.3, carried in ``attest`` per RFC 8588 §4)."""

    #: Full: the signer knows the customer and the customer may use the calling number.
    A = "A"
    #: Partial: the signer knows the customer but cannot vouch for the number.
    B = "B"
    #: Gateway: the signer only knows where the call entered its network.
    C = "C"

    @classmethod
    def parse(cls, value: str) -> Attestation:
        try:
            return cls(value.strip().upper())
        except ValueError:
            raise PassportFormatError(f"attest must be A, B or C, not {value!r}") from None


class PassportFormatError(ValueError):
    """A token or Identity header that does not follow RFC 8224/8225/8588."""


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    if not _B64URL.fullmatch(text):
        raise PassportFormatError("token part is not base64url (RFC 7515 §2)")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise PassportFormatError(f"token part is not base64url: {exc}") from exc


def canonical_json(value: dict[str, Any]) -> bytes:
    """RFC 8225 §9: keys in lexicographic order, no insignificant whitespace, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def new_origid() -> str:
    """A fresh ``origid`` (RFC 8588 §4: a UUID identifying the origination point)."""
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class ShakenPassport:
    """The content of a SHAKEN PASSporT; numbers are canonical (digits, country code, no ``+``)."""

    attest: Attestation
    orig_tn: str
    dest_tns: tuple[str, ...]
    iat: int
    origid: str
    x5u: str

    def header(self) -> dict[str, Any]:
        return {"alg": ALG, "ppt": PPT, "typ": TYP, "x5u": self.x5u}

    def claims(self) -> dict[str, Any]:
        return {
            "attest": self.attest.value,
            "dest": {"tn": list(self.dest_tns)},
            "iat": self.iat,
            "orig": {"tn": self.orig_tn},
            "origid": self.origid,
        }


def build(
    *,
    orig: str,
    dest: str | list[str] | tuple[str, ...],
    attest: Attestation | str,
    x5u: str,
    iat: int,
    origid: str | None = None,
) -> ShakenPassport:
    """A passport from user-supplied values; numbers in any accepted spelling are canonicalised."""
    dests = [dest] if isinstance(dest, str) else list(dest)
    if not dests:
        raise PassportFormatError("dest needs at least one number (RFC 8225 §5.2.1)")
    if not x5u.strip():
        raise PassportFormatError("x5u is required (RFC 8225 §5.1.1, RFC 8588 §3)")
    oid = origid if origid is not None else new_origid()
    if not _UUID.fullmatch(oid):
        raise PassportFormatError("origid must be a UUID (RFC 8588 §4)")
    return ShakenPassport(
        attest=attest if isinstance(attest, Attestation) else Attestation.parse(attest),
        orig_tn=canonical_tn(orig, "orig"),
        dest_tns=tuple(canonical_tn(d, "dest") for d in dests),
        iat=int(iat),
        origid=oid,
        x5u=x5u.strip(),
    )


def der_to_raw(signature: bytes) -> bytes:
    """DER ECDSA-Sig-Value → raw R‖S, each left-padded to 32 bytes (RFC 7518 §3.4)."""
    r, s = decode_dss_signature(signature)
    return r.to_bytes(_P256_BYTES, "big") + s.to_bytes(_P256_BYTES, "big")


def raw_to_der(signature: bytes) -> bytes:
    if len(signature) != 2 * _P256_BYTES:
        raise PassportFormatError("an ES256 signature is 64 bytes (RFC 7518 §3.4)")
    r = int.from_bytes(signature[:_P256_BYTES], "big")
    s = int.from_bytes(signature[_P256_BYTES:], "big")
    return encode_dss_signature(r, s)


def sign(passport: ShakenPassport, key: ec.EllipticCurvePrivateKey) -> str:
    """The compact JWS: base64url(header).base64url(claims).base64url(R‖S)."""
    if not isinstance(key.curve, ec.SECP256R1):
        raise PassportFormatError("ES256 needs a P-256 key (RFC 7518 §3.4)")
    signing_input = (
        b64url_encode(canonical_json(passport.header()))
        + "."
        + b64url_encode(canonical_json(passport.claims()))
    )
    signature = der_to_raw(key.sign(signing_input.encode("ascii"), _ECDSA_SHA256))
    return signing_input + "." + b64url_encode(signature)


def identity_header(token: str, x5u: str, ppt: str = PPT) -> str:
    """The SIP Identity header value (RFC 8224 §4.1; ``info`` in angle brackets per its ABNF)."""
    return f"{token};info=<{x5u}>;alg={ALG};ppt={ppt}"


@dataclass(frozen=True, slots=True)
class DecodedToken:
    token: str
    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes

    def verify_signature(self, public_key: ec.EllipticCurvePublicKey) -> bool:
        """The ES256 check; False on any mismatch (wrong key, tampered header or claims)."""
        if len(self.signature) != 2 * _P256_BYTES:
            return False
        try:
            public_key.verify(raw_to_der(self.signature), self.signing_input, _ECDSA_SHA256)
        except InvalidSignature:
            return False
        return True


def decode(token: str) -> DecodedToken:
    """Split and decode a compact PASSporT without checking its signature."""
    if len(token) > MAX_TOKEN_CHARS:
        raise PassportFormatError(f"a PASSporT longer than {MAX_TOKEN_CHARS} characters is refused")
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise PassportFormatError("a compact PASSporT has three dot-separated parts (RFC 8225 §7)")
    if not parts[1]:
        raise PassportFormatError("compact form without claims is not supported for SHAKEN (RFC 8224 §4)")
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise PassportFormatError(f"token header or claims are not JSON: {type(exc).__name__}") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise PassportFormatError("token header and claims must be JSON objects")
    return DecodedToken(
        token=token.strip(),
        header=header,
        claims=claims,
        signing_input=f"{parts[0]}.{parts[1]}".encode("ascii"),
        signature=b64url_decode(parts[2]),
    )


def to_passport(decoded: DecodedToken) -> ShakenPassport:
    """Check the header and claims against RFC 8225/8588 and return them as values."""
    h, c = decoded.header, decoded.claims
    if h.get("alg") != ALG:
        raise PassportFormatError(f"alg must be {ALG} (RFC 8588 §3), not {h.get('alg')!r}")
    if h.get("ppt") != PPT:
        raise PassportFormatError(f"ppt must be {PPT} (RFC 8588 §3), not {h.get('ppt')!r}")
    if "typ" in h and h["typ"] != TYP:
        raise PassportFormatError(f"typ must be {TYP} (RFC 8225 §5.1.1)")
    x5u = h.get("x5u")
    if not isinstance(x5u, str) or not x5u:
        raise PassportFormatError("header has no x5u (RFC 8225 §5.1.1)")
    orig = c.get("orig")
    if not isinstance(orig, dict) or not isinstance(orig.get("tn"), str):
        raise PassportFormatError('orig must be an object {"tn": "..."} (RFC 8588 §4)')
    dest = c.get("dest")
    if not isinstance(dest, dict) or "tn" not in dest:
        raise PassportFormatError('dest must be an object {"tn": [...]} (RFC 8225 §5.2.1)')
    dest_tn = dest["tn"]
    dests = [dest_tn] if isinstance(dest_tn, str) else dest_tn
    if not isinstance(dests, list) or not dests or not all(isinstance(d, str) for d in dests):
        raise PassportFormatError("dest.tn must list telephone numbers (RFC 8225 §5.2.1)")
    iat = c.get("iat")
    if not isinstance(iat, int) or isinstance(iat, bool):
        raise PassportFormatError("iat must be an integer NumericDate (RFC 8225 §5.1.1)")
    attest = c.get("attest")
    if not isinstance(attest, str):
        raise PassportFormatError("attest is required (RFC 8588 §4)")
    origid = c.get("origid")
    if not isinstance(origid, str) or not origid:
        raise PassportFormatError("origid is required (RFC 8588 §4)")
    return ShakenPassport(
        attest=Attestation.parse(attest),
        orig_tn=orig["tn"].lstrip("+"),
        dest_tns=tuple(d.lstrip("+") for d in dests),
        iat=iat,
        origid=origid,
        x5u=x5u,
    )


@dataclass(frozen=True, slots=True)
class DivPassport:
    """A diversion PASSporT (RFC 8946 §3): the call from ``orig`` to ``div_tn`` was forwarded to
    ``dest_tns`` by the provider holding the ``x5u`` credential."""

    orig_tn: str
    dest_tns: tuple[str, ...]
    div_tn: str
    iat: int
    x5u: str

    def header(self) -> dict[str, Any]:
        return {"alg": ALG, "ppt": PPT_DIV, "typ": TYP, "x5u": self.x5u}

    def claims(self) -> dict[str, Any]:
        return {
            "dest": {"tn": list(self.dest_tns)},
            "div": {"tn": self.div_tn},
            "iat": self.iat,
            "orig": {"tn": self.orig_tn},
        }


def sign_div(div: DivPassport, key: ec.EllipticCurvePrivateKey) -> str:
    """The compact JWS of a ``div`` PASSporT (same serialisation as SHAKEN, RFC 8946 §3)."""
    signing_input = (
        b64url_encode(canonical_json(div.header())) + "." + b64url_encode(canonical_json(div.claims()))
    )
    signature = der_to_raw(key.sign(signing_input.encode("ascii"), _ECDSA_SHA256))
    return signing_input + "." + b64url_encode(signature)


def to_div(decoded: DecodedToken) -> DivPassport:
    """Check a ``div`` PASSporT's header and claims (RFC 8946 §3)."""
    h, c = decoded.header, decoded.claims
    if h.get("alg") != ALG or h.get("ppt") != PPT_DIV:
        raise PassportFormatError("a div PASSporT has alg ES256 and ppt div (RFC 8946 §3)")
    x5u = h.get("x5u")
    div, orig, dest, iat = c.get("div"), c.get("orig"), c.get("dest"), c.get("iat")
    if not isinstance(x5u, str) or not x5u:
        raise PassportFormatError("header has no x5u (RFC 8225 §5.1.1)")
    if not isinstance(div, dict) or not isinstance(div.get("tn"), str):
        raise PassportFormatError('div must be an object {"tn": "..."} (RFC 8946 §3)')
    if not isinstance(orig, dict) or not isinstance(orig.get("tn"), str):
        raise PassportFormatError('orig must be an object {"tn": "..."} (RFC 8225 §5.2.1)')
    if not isinstance(dest, dict):
        raise PassportFormatError('dest must be an object {"tn": [...]} (RFC 8225 §5.2.1)')
    dests = [dest.get("tn")] if isinstance(dest.get("tn"), str) else dest.get("tn")
    if not isinstance(dests, list) or not dests or not all(isinstance(d, str) for d in dests):
        raise PassportFormatError("dest.tn must list telephone numbers (RFC 8225 §5.2.1)")
    if not isinstance(iat, int) or isinstance(iat, bool):
        raise PassportFormatError("iat must be an integer NumericDate (RFC 8225 §5.1.1)")
    return DivPassport(
        orig["tn"].lstrip("+"), tuple(d.lstrip("+") for d in dests), div["tn"].lstrip("+"), iat, x5u
    )


@dataclass(frozen=True, slots=True)
class IdentityHeader:
    token: str
    info: str | None
    alg: str | None
    ppt: str | None
    params: dict[str, str] = field(default_factory=dict)


_HEADER_NAME = re.compile(r"^\s*(identity|y)\s*:\s*", re.IGNORECASE)
_FOLD = re.compile(r"\r?\n[ \t]+")


_PARAM = re.compile(r';((?:<[^>]*>|"[^"]*"|[^;<>"])*)')


def _split_params(text: str) -> list[str]:
    """Split ``;a=1;info=<uri;x>;b="q"`` on the ``;`` outside ``<...>`` and quoted strings (a URI
    may hold ``;``); unbalanced brackets or quotes are an error rather than silently dropped."""
    pieces: list[str] = []
    pos = 0
    for match in _PARAM.finditer(text):
        if match.start() != pos:
            break
        pieces.append(match.group(1))
        pos = match.end()
    if pos != len(text):
        raise PassportFormatError(
            "unbalanced angle brackets or quotes in the Identity header (RFC 8224 §4.1)"
        )
    return pieces


def parse_identity_header(text: str) -> IdentityHeader:
    """Parse an Identity header value (with or without ``Identity:``), tolerating the spellings
    seen in the field: line folding, spaces around ``;`` and ``=``, any parameter order, quoted
    values, and ``info`` with or without angle brackets (RFC 8224 §4.1 requires them)."""
    value = (_FOLD.sub(" ", text) if "\n" in text else text).strip()
    if ":" in value.partition(".")[0]:  # base64url has no ":", so only a header name puts one here
        value = _HEADER_NAME.sub("", value, count=1).strip()
    if not value:
        raise PassportFormatError("empty Identity header (RFC 8224 §4.1)")
    # The token is base64url and dots, so the first ";" ends it; only the short parameter part
    # needs the bracket-aware split.
    token_part, sep, param_part = value.partition(";")
    token = "".join(token_part.split())
    if token.count(".") != 2:
        raise PassportFormatError("Identity header does not start with a compact PASSporT (RFC 8224 §4.1)")
    pieces = _split_params(sep + param_part)
    params: dict[str, str] = {}
    for raw in pieces:
        piece = raw.strip()
        if not piece:
            continue
        name, sep, val = piece.partition("=")
        name = name.strip().lower()
        if not sep or not name:
            raise PassportFormatError(f"malformed Identity header parameter {piece!r}")
        val = val.strip()
        if len(val) >= 2 and val[0] == '"' and val[-1] == '"':
            val = val[1:-1]
        if name == "info":
            if val.startswith("<") != val.endswith(">"):
                raise PassportFormatError("unbalanced angle brackets around info (RFC 8224 §4.1)")
            val = val.strip("<>").strip()
        params[name] = val
    return IdentityHeader(
        token=token, info=params.get("info"), alg=params.get("alg"), ppt=params.get("ppt"), params=params
    )
