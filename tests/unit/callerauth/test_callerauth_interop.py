"""Tokens from another implementation (SignalWire libstirshaken's published reference PASSporTs).

Both published tokens carry valid ES256 signatures from the reference service provider, whose
certificate chains to the reference STI-CA. That release of libstirshaken serialised ``orig`` and
``dest`` as JSON *strings* (``"dest": "{\\"tn\\":\\"01256500600\\"}"``) instead of the objects
RFC 8588 §4 requires, and its certificate's TNAuthList is an IA5String URL rather than the RFC 8226
structure, so quietline accepts the cryptography and refuses the claims with 438.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import jwt
import pytest

from quietline.callerauth import passport as pp
from quietline.callerauth import tnauth
from quietline.callerauth.certs import LocalCertificateStore, TrustStore, load_certificate_files
from quietline.callerauth.verify import Reason, Verifier

DATA = Path(__file__).resolve().parents[2] / "data" / "callerauth"
X5U = "http://shaken.signalwire.cloud/sp.pem"
HEADER_B64 = (
    "eyJhbGciOiJFUzI1NiIsInBwdCI6InNoYWtlbiIsInR5cCI6InBhc3Nwb3J0IiwieDV1IjoiaHR0cDovL3NoYWtlbi5zaWduYWx3aXJl"
    "LmNsb3VkL3NwLnBlbSJ9"
)
CLAIMS_B64 = (
    "eyJhdHRlc3QiOiJBIiwiZGVzdCI6IntcInRuXCI6XCIwMTI1NjUwMDYwMFwifSIsImlhdCI6MTYwMzQ1ODEzMSwib3JpZyI6IntcInRu"
    "XCI6XCIwMTI1Njc4OTk5OVwifSIsIm9yaWdpZCI6InJlZiJ9"
)
SIGNATURE_1 = "G_6hnwPGAeUalviElXbxl4kKR5qenib6fRrCP-cgwKN2hMsSTXYjIFEhl_VqmeTB8dk9fidroDlFe8dPdyPy3g"
SIGNATURE_2 = "cNI-uIirMOiT19OcQag2UYjHWTgTqtr5jhSk3KxflqSC7FbrrYDr51zCEvzDMoETpge7eQeQ6ASVzb1dhVVhKQ"
TOKEN = f"{HEADER_B64}.{CLAIMS_B64}.{SIGNATURE_1}"
IDENTITY = f"{HEADER_B64}.{CLAIMS_B64}.{SIGNATURE_2};info=<{X5U}>;alg=ES256;ppt=shaken"
IAT = datetime.fromtimestamp(1603458131, UTC)


@pytest.fixture
def sp_chain() -> list[object]:
    return load_certificate_files([DATA / "libstirshaken_sp.pem"])  # type: ignore[return-value]


@pytest.fixture
def trust() -> TrustStore:
    return TrustStore.from_files([DATA / "libstirshaken_ca.pem"])


def test_published_token_signatures_verify(sp_chain: list) -> None:  # type: ignore[type-arg]
    key = sp_chain[0].public_key()
    header = pp.parse_identity_header(IDENTITY)
    assert header.info == X5U
    assert header.alg == "ES256"
    assert header.ppt == "shaken"
    for token in (TOKEN, header.token):
        decoded = pp.decode(token)
        assert decoded.header["x5u"] == X5U
        assert decoded.verify_signature(key)
        # PyJWT, independently, agrees.
        assert jwt.decode(token, key, algorithms=["ES256"], options={"verify_iat": False})["attest"] == "A"
    # One changed bit in the claims breaks it.
    claims_b = pp.b64url_encode(pp.b64url_decode(CLAIMS_B64).replace(b'"attest":"A"', b'"attest":"B"'))
    forged = pp.decode(TOKEN.replace(CLAIMS_B64, claims_b))
    assert forged.claims["attest"] == "B"
    assert not forged.verify_signature(key)


def test_published_certificate_chains_to_published_root(sp_chain: list, trust: TrustStore) -> None:  # type: ignore[type-arg]
    anchor = trust.validate(sp_chain, IAT)
    assert "SignalWire STI-CA" in anchor.subject.rfc4514_string()
    with pytest.raises(tnauth.TNAuthListError):
        tnauth.from_certificate(sp_chain[0])


def test_published_token_claims_are_refused_with_438(sp_chain: list, trust: TrustStore) -> None:  # type: ignore[type-arg]
    verifier = Verifier(LocalCertificateStore({X5U: sp_chain}), trust)
    verdict = verifier.verify_identity(IDENTITY, now=IAT)
    assert not verdict.valid
    assert verdict.reason_code is Reason.INVALID_IDENTITY_HEADER
    assert "must be an object" in verdict.reason
