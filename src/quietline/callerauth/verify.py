"""The verification service (terminating side): is the caller ID signed by someone entitled to it?

Follows RFC 8224 §6.2 with the SHAKEN profile (RFC 8588, ATIS-1000074 §5.3): parse the Identity
header (or take a bare token), dereference ``x5u``, check the certificate chains to a trusted STI-CA
and is not revoked, check the ES256 signature, that ``iat`` is within the freshness window of the
call (60 s, RFC 8224 §6.2.1 — from ``iat``, never from the SIP Date header), that ``orig``/``dest``
are the call's numbers, and that the certificate's TNAuthList (RFC 8226) covers the caller.
The outcome is a ``verstat`` (TN-Validation-Passed / -Failed / No-TN-Validation) with the RFC 8224
reason code, and the attestation level. A valid attestation says who signed, not that the call is
wanted: screening decides that.

Time is passed in (``now``); the verifier never reads a clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import IntEnum, StrEnum
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from quietline.callerauth import passport as pp
from quietline.callerauth import tnauth
from quietline.callerauth.certs import (
    CertificateFetcher,
    CertificateFetchError,
    TrustStore,
    UntrustedCertificate,
)
from quietline.callerauth.tn import canonical_tn
from quietline.platform.errors import InvalidInput

#: RFC 8224 §6.2.1: the verifier rejects an ``iat`` more than this many seconds from the call.
FRESHNESS_SECONDS = 60
#: How long a failed x5u (unreachable, untrusted) is remembered before it is tried again.
NEGATIVE_CACHE = timedelta(seconds=30)
#: Most x5u credentials (and failures) kept in memory; the oldest is dropped first.
MAX_CACHED_CREDENTIALS = 10_000


class Verstat(StrEnum):
    """Verification status passed on to the called party (ATIS-1000074 §5.3.1, 3GPP TS 24.229)."""

    PASSED = "TN-Validation-Passed"
    FAILED = "TN-Validation-Failed"
    NO_VALIDATION = "No-TN-Validation"


class Reason(IntEnum):
    """SIP response codes a STIR verifier uses (RFC 8224 §6.2.2, §13.2)."""

    STALE_DATE = 403
    USE_IDENTITY_HEADER = 428
    BAD_IDENTITY_INFO = 436
    UNSUPPORTED_CREDENTIAL = 437
    INVALID_IDENTITY_HEADER = 438

    @property
    def phrase(self) -> str:
        return _PHRASES[self]


_PHRASES = {
    Reason.STALE_DATE: "Stale Date",
    Reason.USE_IDENTITY_HEADER: "Use Identity Header",
    Reason.BAD_IDENTITY_INFO: "Bad Identity Info",
    Reason.UNSUPPORTED_CREDENTIAL: "Unsupported Credential",
    Reason.INVALID_IDENTITY_HEADER: "Invalid Identity Header",
}


@dataclass(frozen=True, slots=True)
class Verdict:
    valid: bool
    verstat: Verstat
    reason_code: Reason | None = None
    reason: str = ""
    attest: pp.Attestation | None = None
    orig: str | None = None
    dest: tuple[str, ...] = ()
    origid: str | None = None
    x5u: str | None = None
    signer: str | None = None
    chain_checked: bool = False
    diverted_from: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "valid": self.valid,
            "verstat": self.verstat.value,
            "attest": None if self.attest is None else self.attest.value,
            "orig": self.orig,
            "dest": list(self.dest),
            "origid": self.origid,
            "x5u": self.x5u,
            "signer": self.signer,
            "chain_checked": self.chain_checked,
        }
        if self.diverted_from is not None:
            out["diverted_from"] = self.diverted_from
        if self.reason_code is not None:
            out["reason_code"] = int(self.reason_code)
            out["reason_phrase"] = self.reason_code.phrase
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass(frozen=True, slots=True)
class _Credential:
    public_key: ec.EllipticCurvePublicKey
    authority: tnauth.TNAuthList | None
    signer: str
    usable_from: datetime
    usable_until: datetime
    fresh_until: datetime | None


@dataclass(frozen=True, slots=True)
class _Parsed:
    header: pp.IdentityHeader
    decoded: pp.DecodedToken


def _sort_headers(headers: Sequence[str]) -> tuple[list[_Parsed], list[_Parsed]]:
    """Split a call's Identity headers into SHAKEN and ``div`` PASSporTs (by ``ppt``), each
    parsed and decoded once."""
    shaken: list[_Parsed] = []
    diversions: list[_Parsed] = []
    for text in headers:
        header = pp.parse_identity_header(text)
        decoded = pp.decode(header.token)
        parsed = _Parsed(header, decoded)
        kind = str(decoded.header.get("ppt"))
        if header.ppt is not None and header.ppt != kind:
            # RFC 8225 §8.1 / RFC 8224 §4.1: the ppt parameter repeats the token's ppt.
            raise pp.PassportFormatError(f"ppt parameter {header.ppt!r} does not match the token's {kind!r}")
        (diversions if kind == pp.PPT_DIV else shaken).append(parsed)
    return shaken, diversions


def _same_tn(given: str | None, canonical: str, field: str) -> bool:
    """Whether a number from the call (any spelling; None = not given) is the token's number.
    A number that cannot be read is simply not the token's number (a mismatch, 438)."""
    if given is None or given == canonical:
        return True
    try:
        return canonical_tn(given, field) == canonical
    except InvalidInput:
        return False


def _as_datetime(now: datetime | float) -> datetime:
    if isinstance(now, datetime):
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        return now
    return datetime.fromtimestamp(now, UTC)


class _Failure(Exception):
    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class Verifier:
    """A verification service. ``trust=None`` skips the chain check (the operator pinned the
    certificate, e.g. ``--cert`` without ``--trust``); verdicts say whether the chain was checked.
    Validated credentials are cached per x5u until the fetch expires or the certificate does."""

    def __init__(
        self,
        fetcher: CertificateFetcher,
        trust: TrustStore | None,
        *,
        freshness_seconds: int = FRESHNESS_SECONDS,
        require_tn_auth_list: bool = True,
    ) -> None:
        self.fetcher = fetcher
        self.trust = trust
        self.freshness_seconds = freshness_seconds
        self.require_tn_auth_list = require_tn_auth_list
        self._credentials: dict[str, _Credential] = {}
        self._failures: dict[str, tuple[datetime, _Failure]] = {}

    def verify_identity(
        self,
        header: str | None,
        *,
        now: datetime | float,
        orig: str | None = None,
        dest: str | None = None,
    ) -> Verdict:
        """Verify a SIP Identity header value; ``None``/empty means the call carried none."""
        if header is None or not header.strip():
            # RFC 8224 §6.2: no Identity header → 428 Use Identity Header; nothing was validated.
            return Verdict(
                valid=False,
                verstat=Verstat.NO_VALIDATION,
                reason_code=Reason.USE_IDENTITY_HEADER,
                reason="the call carries no Identity header",
                orig=orig,
                dest=() if dest is None else (dest,),
            )
        try:
            parsed = pp.parse_identity_header(header)
        except pp.PassportFormatError as exc:
            return Verdict(False, Verstat.FAILED, Reason.INVALID_IDENTITY_HEADER, str(exc))
        if parsed.alg is not None and parsed.alg != pp.ALG:
            return Verdict(
                False, Verstat.FAILED, Reason.INVALID_IDENTITY_HEADER, f"alg={parsed.alg} is not {pp.ALG}"
            )
        if parsed.ppt is not None and parsed.ppt != pp.PPT:
            return Verdict(
                False,
                Verstat.FAILED,
                Reason.INVALID_IDENTITY_HEADER,
                f"ppt={parsed.ppt} is not supported (only {pp.PPT}; RFC 8588 §3)",
            )
        return self.verify_token(parsed.token, now=now, orig=orig, dest=dest, info=parsed.info)

    def verify_token(
        self,
        token: str,
        *,
        now: datetime | float,
        orig: str | None = None,
        dest: str | None = None,
        info: str | None = None,
    ) -> Verdict:
        """Verify a bare compact PASSporT (``info`` is the Identity header's, when there was one)."""
        try:
            decoded = pp.decode(token)
        except pp.PassportFormatError as exc:
            return Verdict(False, Verstat.FAILED, Reason.INVALID_IDENTITY_HEADER, str(exc))
        return self._verify_decoded(decoded, now=now, orig=orig, dest=dest, info=info)

    def _verify_decoded(
        self,
        decoded: pp.DecodedToken,
        *,
        now: datetime | float,
        orig: str | None,
        dest: str | None,
        info: str | None,
    ) -> Verdict:
        when = _as_datetime(now)
        try:
            passport = pp.to_passport(decoded)
        except pp.PassportFormatError as exc:
            return Verdict(False, Verstat.FAILED, Reason.INVALID_IDENTITY_HEADER, str(exc))
        try:
            credential = self._check_signed(decoded, passport.x5u, passport.iat, info, when)
            if not _same_tn(orig, passport.orig_tn, "orig"):
                raise _Failure(
                    Reason.INVALID_IDENTITY_HEADER, "orig.tn is not the calling number (RFC 8224 §6.2.3)"
                )
            if dest is not None and not any(_same_tn(dest, tn, "dest") for tn in passport.dest_tns):
                raise _Failure(
                    Reason.INVALID_IDENTITY_HEADER,
                    "dest.tn does not name the called number (RFC 8224 §6.2.3)",
                )
            authority = credential.authority
            # RFC 8226 §9: a certificate that lists numbers vouches only for those; one that names
            # a service provider code (the SHAKEN profile, ATIS-1000080) vouches for its SPC.
            if (
                authority is not None
                and authority.lists_numbers
                and not authority.spcs
                and not authority.covers(passport.orig_tn)
            ):
                raise _Failure(
                    Reason.UNSUPPORTED_CREDENTIAL,
                    "the certificate's TNAuthList does not cover orig.tn (RFC 8226 §9)",
                )
        except _Failure as failure:
            return self._verdict(passport, reason=failure.reason, message=failure.message)
        return self._verdict(passport, signer=credential.signer)

    def _check_signed(
        self, decoded: pp.DecodedToken, x5u: str, iat: int, info: str | None, when: datetime
    ) -> _Credential:
        """Certificate, signature and freshness: what every PASSporT type shares."""
        if info is not None and info != x5u:
            # ATIS-1000074 §5.3.1: the info parameter and x5u must name the same certificate.
            raise _Failure(Reason.BAD_IDENTITY_INFO, "info parameter does not match x5u")
        credential = self._credential(x5u, when)
        if not decoded.verify_signature(credential.public_key):
            raise _Failure(Reason.INVALID_IDENTITY_HEADER, "signature does not verify (RFC 8225 §7)")
        age = when.timestamp() - iat
        if abs(age) > self.freshness_seconds:
            raise _Failure(
                Reason.STALE_DATE,
                f"iat is {int(age)} s from the call time (limit {self.freshness_seconds} s, RFC 8224 §6.2.1)",
            )
        return credential

    def verify_call(
        self,
        headers: Sequence[str],
        *,
        now: datetime | float,
        orig: str | None = None,
        dest: str | None = None,
    ) -> Verdict:
        """Verify the Identity headers of one call, which may hold a SHAKEN PASSporT and, for a
        forwarded call, a ``div`` PASSporT (RFC 8946) from the diverting provider.

        A SHAKEN token naming the called number is verified directly. Otherwise a valid ``div``
        token whose ``dest`` is the called number and whose ``orig`` is the caller lets the SHAKEN
        token be checked against the original called number (``div.tn``), one diversion deep.
        """
        if not headers:
            return self.verify_identity(None, now=now, orig=orig, dest=dest)
        try:
            shaken, diversions = _sort_headers(headers)
        except pp.PassportFormatError as exc:
            return Verdict(False, Verstat.FAILED, Reason.INVALID_IDENTITY_HEADER, str(exc))
        if not shaken:
            return Verdict(
                False, Verstat.FAILED, Reason.INVALID_IDENTITY_HEADER, "no SHAKEN PASSporT among the headers"
            )
        direct = self._first_for_dest(shaken, dest)
        if direct is not None or not diversions:
            first = direct or shaken[0]
            return self._verify_decoded(first.decoded, now=now, orig=orig, dest=dest, info=first.header.info)
        return self._verify_diverted(shaken, diversions, now=now, orig=orig, dest=dest)

    def _verify_diverted(
        self,
        shaken: Sequence[_Parsed],
        diversions: Sequence[_Parsed],
        *,
        now: datetime | float,
        orig: str | None,
        dest: str | None,
    ) -> Verdict:
        when = _as_datetime(now)
        for parsed in diversions:
            try:
                div = pp.to_div(parsed.decoded)
                self._check_signed(parsed.decoded, div.x5u, div.iat, parsed.header.info, when)
                if not _same_tn(orig, div.orig_tn, "orig"):
                    raise _Failure(Reason.INVALID_IDENTITY_HEADER, "orig is not the caller (RFC 8946 §3)")
            except pp.PassportFormatError as exc:
                return Verdict(False, Verstat.FAILED, Reason.INVALID_IDENTITY_HEADER, f"div: {exc}")
            except _Failure as failure:
                return Verdict(False, Verstat.FAILED, failure.reason, f"div: {failure.message}")
            if dest is not None and not any(_same_tn(dest, tn, "dest") for tn in div.dest_tns):
                continue
            original = self._first_for_dest(shaken, div.div_tn)
            if original is not None:
                verdict = self._verify_decoded(
                    original.decoded, now=now, orig=orig, dest=div.div_tn, info=original.header.info
                )
                return replace(verdict, diverted_from=div.div_tn)
        return Verdict(
            False,
            Verstat.FAILED,
            Reason.INVALID_IDENTITY_HEADER,
            "no PASSporT names the called number, directly or through a diversion (RFC 8946)",
        )

    @staticmethod
    def _first_for_dest(headers: Sequence[_Parsed], dest: str | None) -> _Parsed | None:
        for parsed in headers:
            if dest is None:
                return parsed
            try:
                dests = pp.to_passport(parsed.decoded).dest_tns
            except pp.PassportFormatError:
                continue
            if any(_same_tn(dest, tn, "dest") for tn in dests):
                return parsed
        return None

    def _verdict(
        self,
        passport: pp.ShakenPassport,
        *,
        reason: Reason | None = None,
        message: str = "",
        signer: str | None = None,
    ) -> Verdict:
        return Verdict(
            valid=reason is None,
            verstat=Verstat.PASSED if reason is None else Verstat.FAILED,
            reason_code=reason,
            reason=message,
            attest=passport.attest,
            orig=passport.orig_tn,
            dest=passport.dest_tns,
            origid=passport.origid,
            x5u=passport.x5u,
            signer=signer,
            chain_checked=self.trust is not None,
        )

    def clear_cache(self) -> None:
        """Forget validated credentials (after the trust store or its CRLs change)."""
        self._credentials.clear()
        self._failures.clear()

    def _credential(self, x5u: str, now: datetime) -> _Credential:
        cached = self._credentials.get(x5u)
        if (
            cached is not None
            and cached.fresh_until is not None
            and cached.usable_from <= now <= cached.usable_until
            and now < cached.fresh_until
        ):
            return cached
        failed = self._failures.get(x5u)
        if failed is not None and now < failed[0]:
            raise failed[1]
        try:
            credential = self._load_credential(x5u, now)
        except _Failure as failure:
            # A short negative cache: a token naming a slow or broken x5u must not make every
            # call wait for the fetch timeout again.
            self._remember(self._failures, x5u, (now + NEGATIVE_CACHE, failure))
            raise
        self._failures.pop(x5u, None)
        if credential.fresh_until is not None:
            self._remember(self._credentials, x5u, credential)
        return credential

    def _remember(self, cache: dict[str, Any], key: str, value: Any) -> None:
        if key not in cache and len(cache) >= MAX_CACHED_CREDENTIALS:
            cache.pop(next(iter(cache)))  # oldest first
        cache[key] = value

    def _load_credential(self, x5u: str, now: datetime) -> _Credential:
        try:
            fetched = self.fetcher.fetch(x5u, now)
        except CertificateFetchError as exc:
            raise _Failure(Reason.BAD_IDENTITY_INFO, str(exc)) from exc
        if not fetched.chain:
            raise _Failure(Reason.BAD_IDENTITY_INFO, f"x5u {x5u} serves no certificate")
        leaf = fetched.chain[0]
        used = list(fetched.chain)
        try:
            if self.trust is not None:
                used.append(self.trust.validate(fetched.chain, now))
            elif not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
                raise UntrustedCertificate("the certificate is outside its validity period")
            try:
                usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
            except x509.ExtensionNotFound:
                usage = None
            if usage is not None and not usage.digital_signature:
                # RFC 5280 §4.2.1.3, ATIS-1000080 §6.4: a signing certificate asserts digitalSignature.
                raise UntrustedCertificate("the certificate's key usage does not allow signatures")
            key = leaf.public_key()
            if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
                raise UntrustedCertificate("the certificate does not hold a P-256 key (ES256)")
            try:
                authority = tnauth.from_certificate(leaf)
            except tnauth.TNAuthListError as exc:
                raise UntrustedCertificate(str(exc)) from exc
            if authority is None and self.require_tn_auth_list:
                raise UntrustedCertificate("the certificate carries no TNAuthList (RFC 8226 §9)")
        except UntrustedCertificate as exc:
            raise _Failure(Reason.UNSUPPORTED_CREDENTIAL, str(exc)) from exc
        return _Credential(
            public_key=key,
            authority=authority,
            signer=leaf.subject.rfc4514_string(),
            usable_from=max(c.not_valid_before_utc for c in used),
            usable_until=min(c.not_valid_after_utc for c in used),
            fresh_until=fetched.fresh_until,
        )
