"""Certificates for verification: where they come from (x5u over HTTPS, or a local store) and
whether they chain to a trusted STI-CA (RFC 8224 §6.2.2, RFC 8226 §8, ATIS-1000080).

Verifiers have stumbled on x5u URLs on non-default ports, on chains served with their
intermediates, and on caches that drop those intermediates (REFERENCE.md "Caller authentication"):
a fetch keeps every certificate the URL serves, in order, and the cache keeps the whole chain.
"""

from __future__ import annotations

import re
import ssl
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.utils import CryptographyDeprecationWarning

#: Longest chain followed from the signing certificate to a trust anchor.
MAX_CHAIN_DEPTH = 4


class CertificateFetchError(Exception):
    """x5u could not be dereferenced (RFC 8224 §6.2.2 → 436 Bad Identity Info)."""


class UntrustedCertificate(Exception):
    """The credential is not acceptable: chain, validity, revocation or key type
    (RFC 8224 §6.2.2 → 437 Unsupported Credential)."""


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """Every certificate in a PEM bundle (leaf first, as x5u serves them) or one DER certificate.

    Some deployed STI certificates carry a zero serial number, which RFC 5280 forbids and
    cryptography warns about; the verifier still has to read them, so that warning is silenced
    here and nowhere else.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        try:
            if b"-----BEGIN CERTIFICATE-----" in data:
                return list(x509.load_pem_x509_certificates(data))
            return [x509.load_der_x509_certificate(data)]
        except ValueError as exc:
            raise CertificateFetchError(f"not a certificate: {exc}") from exc


def load_certificate_files(paths: Iterable[Path | str]) -> list[x509.Certificate]:
    certs: list[x509.Certificate] = []
    for path in paths:
        certs.extend(load_certificates(Path(path).read_bytes()))
    return certs


@dataclass(frozen=True, slots=True)
class Fetched:
    """A chain as served at an x5u URL and until when it may be reused without refetching
    (None: not at all, e.g. ``Cache-Control: no-store``)."""

    chain: tuple[x509.Certificate, ...]
    fresh_until: datetime | None


class CertificateFetcher(Protocol):
    def fetch(self, url: str, now: datetime) -> Fetched:
        """The chain at ``url`` (leaf first); raises CertificateFetchError."""
        ...


class LocalCertificateStore:
    """Certificates held in memory by URL: tests, pilots, and ``--cert`` on the CLI."""

    def __init__(self, by_url: Mapping[str, Sequence[x509.Certificate]] | None = None) -> None:
        self._by_url: dict[str, tuple[x509.Certificate, ...]] = {
            url: tuple(chain) for url, chain in (by_url or {}).items()
        }
        self._fallback: tuple[x509.Certificate, ...] | None = None

    def add(self, url: str, chain: Sequence[x509.Certificate]) -> None:
        self._by_url[url] = tuple(chain)

    def serve_for_any_url(self, chain: Sequence[x509.Certificate]) -> None:
        """Answer every URL with this chain (the operator supplied the certificate directly)."""
        self._fallback = tuple(chain)

    def fetch(self, url: str, now: datetime) -> Fetched:
        chain = self._by_url.get(url, self._fallback)
        if not chain:
            raise CertificateFetchError(f"no certificate stored for {url}")
        return Fetched(chain, _FOREVER)


_FOREVER = datetime.max.replace(tzinfo=UTC)
#: ``max-age`` only: ``s-maxage`` is for shared caches; a verifier's is private (RFC 9111 §5.2.2.10).
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?", re.IGNORECASE)


def cache_lifetime(cache_control: str | None, default: timedelta) -> timedelta | None:
    """How long a response may be reused (RFC 9111 §5.2.2): ``no-store``/``no-cache`` → not at
    all (None), ``max-age=N`` → N seconds, otherwise the configured default."""
    if cache_control is None:
        return default
    lowered = cache_control.lower()
    if "no-store" in lowered or "no-cache" in lowered:
        return None
    match = _MAX_AGE.search(lowered)
    return timedelta(seconds=int(match.group(1))) if match else default


@dataclass
class HttpsCertificateFetcher:
    """Dereferences x5u (RFC 8224 §6.2.2) with a short timeout, a response size limit and a cache
    honouring Cache-Control. Only https URLs unless ``allow_http`` (ATIS-1000074 §5.3.1 requires
    HTTPS); any port is accepted (8443 is common)."""

    timeout_seconds: float = 2.0
    max_bytes: int = 64 * 1024
    default_ttl: timedelta = timedelta(minutes=5)
    max_entries: int = 10_000
    allow_http: bool = False
    verify_tls: bool | ssl.SSLContext = True
    client: httpx.Client | None = None
    _cache: dict[str, Fetched] = field(default_factory=dict, repr=False)

    def _client(self) -> httpx.Client:
        if self.client is None:
            self.client = httpx.Client(
                timeout=self.timeout_seconds, follow_redirects=False, verify=self.verify_tls
            )
        return self.client

    def fetch(self, url: str, now: datetime) -> Fetched:
        cached = self._cache.get(url)
        if cached is not None and cached.fresh_until is not None and now < cached.fresh_until:
            return cached
        scheme = url.split(":", 1)[0].lower()
        if scheme != "https" and not (self.allow_http and scheme == "http"):
            raise CertificateFetchError(f"x5u must be an https URL, not {url!r}")
        try:
            with self._client().stream("GET", url, timeout=self.timeout_seconds) as response:
                if response.status_code != 200:
                    raise CertificateFetchError(f"x5u {url} answered HTTP {response.status_code}")
                declared = response.headers.get("content-length")
                if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
                    raise CertificateFetchError(f"x5u {url} serves more than {self.max_bytes} bytes")
                body = bytearray()
                # httpx's timeout bounds each read; this bounds the whole transfer, so a server
                # dripping bytes cannot hold a call (monotonic time measures I/O, not the call).
                deadline = time.monotonic() + self.timeout_seconds
                for chunk in response.iter_bytes():
                    body.extend(chunk)
                    if len(body) > self.max_bytes:
                        raise CertificateFetchError(f"x5u {url} serves more than {self.max_bytes} bytes")
                    if time.monotonic() > deadline:
                        raise CertificateFetchError(f"x5u {url} took longer than {self.timeout_seconds} s")
                lifetime = cache_lifetime(response.headers.get("cache-control"), self.default_ttl)
        except httpx.HTTPError as exc:
            raise CertificateFetchError(f"x5u {url} could not be fetched: {type(exc).__name__}") from exc
        fetched = Fetched(tuple(load_certificates(bytes(body))), None if lifetime is None else now + lifetime)
        if fetched.fresh_until is not None:
            if len(self._cache) >= self.max_entries:
                self._cache.pop(next(iter(self._cache)))
            self._cache[url] = fetched
        return fetched

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


@dataclass
class TrustStore:
    """Trust anchors (STI-CA roots) and revocation lists the verifier consults."""

    roots: list[x509.Certificate] = field(default_factory=list)
    crls: list[x509.CertificateRevocationList] = field(default_factory=list)

    @classmethod
    def from_files(cls, roots: Iterable[Path | str], crls: Iterable[Path | str] = ()) -> TrustStore:
        store = cls(load_certificate_files(roots))
        for path in crls:
            store.add_crl_bytes(Path(path).read_bytes())
        return store

    def add_crl_bytes(self, data: bytes) -> None:
        try:
            crl = (
                x509.load_pem_x509_crl(data)
                if b"-----BEGIN X509 CRL-----" in data
                else x509.load_der_x509_crl(data)
            )
        except ValueError as exc:
            raise UntrustedCertificate(f"not a certificate revocation list: {exc}") from exc
        self.crls.append(crl)

    def validate(self, chain: Sequence[x509.Certificate], now: datetime) -> x509.Certificate:
        """Walk from the leaf to a trust anchor (RFC 5280 §6.1, simplified to what STIR needs:
        issuer names and signatures, validity periods, CA flags and CRLs). Returns the anchor."""
        if not chain:
            raise UntrustedCertificate("no certificate")
        leaf = chain[0]
        if not isinstance(leaf.public_key(), ec.EllipticCurvePublicKey):
            raise UntrustedCertificate("the signing certificate does not hold an EC key (ES256)")
        pool = list(chain[1:])
        current = leaf
        for _ in range(MAX_CHAIN_DEPTH):
            _check_validity(current, now)
            anchor = self._anchor_for(current)
            if anchor is not None:
                _check_validity(anchor, now)
                self._check_revocation(current, anchor)
                return anchor
            issuer = _find_issuer(current, pool)
            if issuer is None:
                raise UntrustedCertificate(
                    f"no trusted issuer for {current.subject.rfc4514_string()!r} "
                    f"(issuer {current.issuer.rfc4514_string()!r})"
                )
            self._check_revocation(current, issuer)
            current = issuer
        raise UntrustedCertificate("certificate chain is too long")

    def _anchor_for(self, cert: x509.Certificate) -> x509.Certificate | None:
        for root in self.roots:
            if root == cert:
                return root
            if root.subject == cert.issuer and _issued_by(cert, root):
                return root
        return None

    def _check_revocation(self, cert: x509.Certificate, issuer: x509.Certificate) -> None:
        for crl in self.crls:
            if crl.issuer != issuer.subject:
                continue
            key = issuer.public_key()
            if not isinstance(key, ec.EllipticCurvePublicKey) or not crl.is_signature_valid(key):
                continue
            if crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None:
                raise UntrustedCertificate(f"certificate serial {cert.serial_number} is revoked")


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError):  # a bad signature or an unsupported key type
        return False
    return True


def _find_issuer(cert: x509.Certificate, pool: Sequence[x509.Certificate]) -> x509.Certificate | None:
    for candidate in pool:
        if candidate.subject != cert.issuer or not _issued_by(cert, candidate):
            continue
        try:
            constraints = candidate.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            continue
        if constraints.ca:
            return candidate
    return None


def _check_validity(cert: x509.Certificate, now: datetime) -> None:
    if now < cert.not_valid_before_utc:
        raise UntrustedCertificate(f"{cert.subject.rfc4514_string()!r} is not valid yet")
    if now > cert.not_valid_after_utc:
        raise UntrustedCertificate(f"{cert.subject.rfc4514_string()!r} has expired")
