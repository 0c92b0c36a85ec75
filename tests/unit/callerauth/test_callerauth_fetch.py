"""x5u fetching: timeouts, size limit, scheme, and a cache that honours Cache-Control."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from quietline.callerauth import passport as pp
from quietline.callerauth.certs import (
    CertificateFetchError,
    HttpsCertificateFetcher,
    cache_lifetime,
)
from quietline.callerauth.verify import Reason, Verifier

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
X5U = "https://cert.example.cn:8443/sp.pem"


class Server:
    """An httpx transport that counts requests and answers with a chosen body and headers."""

    def __init__(self, body: bytes, headers: dict[str, str] | None = None, status: int = 200) -> None:
        self.body = body
        self.headers = headers or {}
        self.status = status
        self.requests = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        return httpx.Response(self.status, content=self.body, headers=self.headers)

    def fetcher(self, **kwargs: Any) -> HttpsCertificateFetcher:
        return HttpsCertificateFetcher(client=httpx.Client(transport=httpx.MockTransport(self)), **kwargs)


def _pem(pki: Any) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (pki.cert, pki.ca.cert))


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, timedelta(minutes=5)),
        ("max-age=60", timedelta(seconds=60)),
        ("public, max-age=3600", timedelta(hours=1)),
        ('max-age="30"', timedelta(seconds=30)),
        ("s-maxage=30", timedelta(minutes=5)),
        ("no-store", None),
        ("max-age=60, no-cache", None),
    ],
)
def test_cache_lifetime(header: str | None, expected: timedelta | None) -> None:
    assert cache_lifetime(header, timedelta(minutes=5)) == expected


def test_cache_honours_max_age(pki: Any) -> None:
    server = Server(_pem(pki), {"cache-control": "max-age=60"})
    fetcher = server.fetcher()
    first = fetcher.fetch(X5U, NOW)
    assert len(first.chain) == 2  # the intermediate/root served with the leaf is kept
    fetcher.fetch(X5U, NOW + timedelta(seconds=59))
    assert server.requests == 1
    fetcher.fetch(X5U, NOW + timedelta(seconds=60))
    assert server.requests == 2


def test_no_store_is_fetched_every_time(pki: Any) -> None:
    server = Server(_pem(pki), {"cache-control": "no-store"})
    fetcher = server.fetcher()
    fetcher.fetch(X5U, NOW)
    fetcher.fetch(X5U, NOW)
    assert server.requests == 2


def test_size_limit_status_and_scheme(pki: Any) -> None:
    with pytest.raises(CertificateFetchError, match="more than"):
        Server(b"x" * 5000).fetcher(max_bytes=4096).fetch(X5U, NOW)
    with pytest.raises(CertificateFetchError, match="HTTP 404"):
        Server(b"", status=404).fetcher().fetch(X5U, NOW)
    with pytest.raises(CertificateFetchError, match="https"):
        Server(_pem(pki)).fetcher().fetch("http://cert.example.cn/sp.pem", NOW)
    with pytest.raises(CertificateFetchError, match="not a certificate"):
        Server(b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n").fetcher().fetch(X5U, NOW)


def test_timeout_is_a_fetch_error() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    fetcher = HttpsCertificateFetcher(client=httpx.Client(transport=httpx.MockTransport(slow)))
    with pytest.raises(CertificateFetchError, match="ReadTimeout"):
        fetcher.fetch(X5U, NOW)


def test_verifier_reuses_a_warm_credential_and_reports_436_when_fetch_fails(pki: Any) -> None:
    server = Server(_pem(pki), {"cache-control": "max-age=600"})
    verifier = Verifier(server.fetcher(), pki.trust)
    passport = pp.build(
        orig="8613800138000", dest="8613912345678", attest="A", x5u=X5U, iat=int(NOW.timestamp())
    )
    token = pp.sign(passport, pki.key)
    for _ in range(5):
        assert verifier.verify_token(token, now=NOW).valid
    assert server.requests == 1
    down = Server(b"", status=503)
    assert (
        Verifier(down.fetcher(), pki.trust).verify_token(token, now=NOW).reason_code
        is Reason.BAD_IDENTITY_INFO
    )


def test_a_failing_x5u_is_not_refetched_for_every_call(pki: Any) -> None:
    down = Server(b"", status=503)
    verifier = Verifier(down.fetcher(), pki.trust)
    iat = int(NOW.timestamp())
    passport = pp.build(orig="8613800138000", dest="8613912345678", attest="A", x5u=X5U, iat=iat)
    token = pp.sign(passport, pki.key)
    for _ in range(3):
        assert verifier.verify_token(token, now=NOW).reason_code is Reason.BAD_IDENTITY_INFO
    assert down.requests == 1
    later = NOW + timedelta(seconds=31)
    verifier.verify_token(token, now=later)
    assert down.requests == 2


CRL_URL = "http://crl.example.cn/sti-ca.crl"


def test_crl_distribution_points_are_fetched_and_honoured(tmp_path: Any) -> None:
    from quietline.callerauth.ca import CertificateAuthority
    from quietline.callerauth.certs import TrustStore

    ca = CertificateAuthority.init(tmp_path / "ca", now=NOW, crl_url=CRL_URL)
    key, cert = ca.issue(now=NOW, spc="1234")
    crl_status = {"code": 200}

    def serve(request: httpx.Request) -> httpx.Response:
        if str(request.url) == CRL_URL:
            body = (ca.directory / "crl.pem").read_bytes()
            return httpx.Response(crl_status["code"], content=body, headers={"cache-control": "max-age=60"})
        return httpx.Response(200, content=_pem_of(cert, ca.cert), headers={"cache-control": "max-age=600"})

    def verifier() -> Verifier:
        fetcher = HttpsCertificateFetcher(client=httpx.Client(transport=httpx.MockTransport(serve)))
        return Verifier(fetcher, TrustStore([ca.cert], crl_source=fetcher))

    passport = pp.build(
        orig="8613800138000", dest="8613912345678", attest="A", x5u=X5U, iat=int(NOW.timestamp())
    )
    token = pp.sign(passport, key)
    assert verifier().verify_token(token, now=NOW).valid
    ca.revoke(cert.serial_number, now=NOW)
    revoked = verifier().verify_token(token, now=NOW)
    assert revoked.reason_code is Reason.UNSUPPORTED_CREDENTIAL
    assert "revoked" in revoked.reason
    crl_status["code"] = 503
    unknown = verifier().verify_token(token, now=NOW)
    assert unknown.reason_code is Reason.UNSUPPORTED_CREDENTIAL
    assert "revocation status unknown" in unknown.reason


def test_a_crl_from_another_issuer_is_refused(tmp_path: Any) -> None:
    from quietline.callerauth.ca import CertificateAuthority
    from quietline.callerauth.certs import TrustStore

    ca = CertificateAuthority.init(tmp_path / "ca", now=NOW, crl_url=CRL_URL)
    other = CertificateAuthority.init(tmp_path / "other", now=NOW)
    key, cert = ca.issue(now=NOW, spc="1234")

    def serve(request: httpx.Request) -> httpx.Response:
        if str(request.url) == CRL_URL:
            return httpx.Response(200, content=(other.directory / "crl.pem").read_bytes())
        return httpx.Response(200, content=_pem_of(cert, ca.cert))

    fetcher = HttpsCertificateFetcher(client=httpx.Client(transport=httpx.MockTransport(serve)))
    passport = pp.build(
        orig="8613800138000", dest="8613912345678", attest="A", x5u=X5U, iat=int(NOW.timestamp())
    )
    verdict = Verifier(fetcher, TrustStore([ca.cert], crl_source=fetcher)).verify_token(
        pp.sign(passport, key), now=NOW
    )
    assert verdict.reason_code is Reason.UNSUPPORTED_CREDENTIAL
    assert "not signed by the certificate's issuer" in verdict.reason


def _pem_of(*certs: Any) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)
