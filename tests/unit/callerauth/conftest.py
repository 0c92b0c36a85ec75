"""Shared fixtures for caller-authentication unit tests: a throw-away STI-CA and signer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from quietline.callerauth.ca import CertificateAuthority
from quietline.callerauth.certs import LocalCertificateStore, TrustStore
from quietline.callerauth.verify import Verifier

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
X5U = "https://cert.example.cn:8443/sp.pem"


@dataclass
class Pki:
    ca: CertificateAuthority
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    store: LocalCertificateStore
    trust: TrustStore

    def verifier(self) -> Verifier:
        return Verifier(self.store, self.trust)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    ca = CertificateAuthority.init(tmp_path / "ca", now=NOW)
    key, cert = ca.issue(now=NOW, spc="1234")
    store = LocalCertificateStore({X5U: [cert, ca.cert]})
    return Pki(ca, key, cert, store, TrustStore([ca.cert]))
