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
from typing import Any, Protocol

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


class CrlSource(Protocol):
    def fetch_crl(self, url: str, now: datetime) -> x509.CertificateRevocationList:
        """The CRL at ``url``; raises CertificateFetchError."""
        ...


def _remember(cache: dict[str, Any], key: str, value: Any, limit: int) -> None:
    if key not in cache and len(cache) >= limit:
        cache.pop(next(iter(cache)))  # oldest first
    cache[key] = value


def _load_crl(data: bytes) -> x509.CertificateRevocationList:
    try:
        if b"-----BEGIN X509 CRL-----" in data:
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except ValueError as exc:
        raise CertificateFetchError(f"not a certificate revocation list: {exc}") from exc


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
    max_crl_bytes: int = 1024 * 1024
    _cache: dict[str, Fetched] = field(default_factory=dict, repr=False)
    _crl_cache: dict[str, tuple[x509.CertificateRevocationList, datetime]] = field(
        default_factory=dict, repr=False
    )

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
        body, lifetime = self._download(url, "x5u")
        fetched = Fetched(tuple(load_certificates(body)), None if lifetime is None else now + lifetime)
        if fetched.fresh_until is not None:
            _remember(self._cache, url, fetched, self.max_entries)
        return fetched

    def fetch_crl(self, url: str, now: datetime) -> x509.CertificateRevocationList:
        """A CRL named by a certificate's CRL distribution point (RFC 5280 §4.2.1.13), reused until
        its nextUpdate; http is allowed here because a CRL is signed by its issuer."""
        cached = self._crl_cache.get(url)
        if cached is not None and now < cached[1]:
            return cached[0]
        if url.split(":", 1)[0].lower() not in ("http", "https"):
            raise CertificateFetchError(f"CRL distribution point must be an http(s) URL, not {url!r}")
        body, lifetime = self._download(url, "CRL", limit=self.max_crl_bytes)
        crl = _load_crl(body)
        if lifetime is not None:  # reused as Cache-Control allows, never past its nextUpdate
            fresh_until = now + lifetime
            if crl.next_update_utc is not None:
                fresh_until = min(fresh_until, crl.next_update_utc)
            if fresh_until > now:
                _remember(self._crl_cache, url, (crl, fresh_until), self.max_entries)
        return crl

    def _download(self, url: str, what: str, limit: int | None = None) -> tuple[bytes, timedelta | None]:
        """GET ``url`` within the timeout and size limit; the body and how long it may be reused."""
        max_bytes = limit or self.max_bytes
        try:
            with self._client().stream("GET", url, timeout=self.timeout_seconds) as response:
                if response.status_code != 200:
                    raise CertificateFetchError(f"{what} {url} answered HTTP {response.status_code}")
                declared = response.headers.get("content-length")
                if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                    raise CertificateFetchError(f"{what} {url} serves more than {max_bytes} bytes")
                body = bytearray()
                # httpx's timeout bounds each read; this bounds the whole transfer, so a server
                # dripping bytes cannot hold a call (monotonic time measures I/O, not the call).
                deadline = time.monotonic() + self.timeout_seconds
                for chunk in response.iter_bytes():
                    body.extend(chunk)
                    if len(body) > max_bytes:
                        raise CertificateFetchError(f"{what} {url} serves more than {max_bytes} bytes")
                    if time.monotonic() > deadline:
                        raise CertificateFetchError(f"{what} {url} took longer than {self.timeout_seconds} s")
                lifetime = cache_lifetime(response.headers.get("cache-control"), self.default_ttl)
        except httpx.HTTPError as exc:
            raise CertificateFetchError(f"{what} {url} could not be fetched: {type(exc).__name__}") from exc
        return bytes(body), lifetime

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


@dataclass
class TrustStore:
    """Trust anchors (STI-CA roots) and revocation lists the verifier consults."""

    roots: list[x509.Certificate] = field(default_factory=list)
    crls: list[x509.CertificateRevocationList] = field(default_factory=list)
    #: When set, the CRL distribution points named in certificates are fetched and consulted too
    #: (ATIS-1000080 §6.4); a CRL that cannot be fetched makes the credential unusable.
    crl_source: CrlSource | None = None

    @classmethod
    def from_files(cls, roots: Iterable[Path | str], crls: Iterable[Path | str] = ()) -> TrustStore:
        store = cls(load_certificate_files(roots))
        for path in crls:
            store.add_crl_bytes(Path(path).read_bytes())
        return store

    def add_crl_bytes(self, data: bytes) -> None:
        try:
            self.crls.append(_load_crl(data))
        except CertificateFetchError as exc:
            raise UntrustedCertificate(str(exc)) from exc

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
                self._check_revocation(current, anchor, now)
                return anchor
            issuer = _find_issuer(current, pool)
            if issuer is None:
                raise UntrustedCertificate(
                    f"no trusted issuer for {current.subject.rfc4514_string()!r} "
                    f"(issuer {current.issuer.rfc4514_string()!r})"
                )
            self._check_revocation(current, issuer, now)
            current = issuer
        raise UntrustedCertificate("certificate chain is too long")

    def _anchor_for(self, cert: x509.Certificate) -> x509.Certificate | None:
        for root in self.roots:
            if root == cert:
                return root
            if root.subject == cert.issuer and _issued_by(cert, root):
                return root
        return None

    def _check_revocation(self, cert: x509.Certificate, issuer: x509.Certificate, now: datetime) -> None:
        key = issuer.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise UntrustedCertificate("the issuer does not hold an EC key")
        crls = [crl for crl in self.crls if crl.issuer == issuer.subject and crl.is_signature_valid(key)]
        if self.crl_source is not None:
            for url in _crl_urls(cert):
                try:
                    crl = self.crl_source.fetch_crl(url, now)
                except CertificateFetchError as exc:
                    raise UntrustedCertificate(f"revocation status unknown: {exc}") from exc
                if crl.issuer != issuer.subject or not crl.is_signature_valid(key):
                    raise UntrustedCertificate(f"the CRL at {url} is not signed by the certificate's issuer")
                crls.append(crl)
        for crl in crls:
            if crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None:
                raise UntrustedCertificate(f"certificate serial {cert.serial_number} is revoked")


def _crl_urls(cert: x509.Certificate) -> list[str]:
    """The URIs of a certificate's CRL distribution points (RFC 5280 §4.2.1.13)."""
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return []
    return [
        name.value
        for point in points
        for name in point.full_name or ()
        if isinstance(name, x509.UniformResourceIdentifier)
    ]


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
