"""Signing and verification: interoperability with PyJWT and the RFC 8224 reason codes."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from quietline.callerauth import passport as pp
from quietline.callerauth.certs import LocalCertificateStore, TrustStore
from quietline.callerauth.verify import Reason, Verifier, Verstat
from quietline.platform.errors import InvalidInput

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
T = int(NOW.timestamp())
X5U = "https://cert.example.cn:8443/sp.pem"
ORIG = "8613800138000"
DEST = "8613912345678"


def _passport(**overrides: Any) -> pp.ShakenPassport:
    values: dict[str, Any] = {"orig": ORIG, "dest": DEST, "attest": "A", "x5u": X5U, "iat": T}
    values.update(overrides)
    return pp.build(**values)


def _b64json(part: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_token_layout_follows_rfc8225_and_rfc8588(pki: Any) -> None:
    token = pp.sign(_passport(), pki.key)
    header_b64, claims_b64, sig_b64 = token.split(".")
    header, claims = _b64json(header_b64), _b64json(claims_b64)
    assert header == {"alg": "ES256", "ppt": "shaken", "typ": "passport", "x5u": X5U}
    assert claims["attest"] == "A"
    assert claims["orig"] == {"tn": ORIG}
    assert claims["dest"] == {"tn": [DEST]}
    assert claims["iat"] == T
    assert len(claims["origid"]) == 36
    # RFC 8225 §9: lexicographic key order and no whitespace in the signed form.
    raw_claims = base64.urlsafe_b64decode(claims_b64 + "==").decode()
    assert " " not in raw_claims
    assert list(json.loads(raw_claims)) == sorted(json.loads(raw_claims))
    assert raw_claims.index('"dest"') < raw_claims.index('"iat"') < raw_claims.index('"orig"')
    # RFC 7518 §3.4: raw R‖S, 64 bytes.
    assert len(base64.urlsafe_b64decode(sig_b64 + "==")) == 64


def test_quietline_tokens_verify_with_pyjwt(pki: Any) -> None:
    token = pp.sign(_passport(dest=[DEST, "8613912345679"]), pki.key)
    claims = jwt.decode(token, pki.cert.public_key(), algorithms=["ES256"], options={"verify_iat": False})
    assert claims["orig"]["tn"] == ORIG
    assert claims["dest"]["tn"] == [DEST, "8613912345679"]
    assert jwt.get_unverified_header(token)["ppt"] == "shaken"
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, other.public_key(), algorithms=["ES256"], options={"verify_iat": False})


def test_pyjwt_tokens_verify_in_quietline(pki: Any) -> None:
    claims = {
        "attest": "B",
        "dest": {"tn": [DEST]},
        "iat": T,
        "orig": {"tn": ORIG},
        "origid": "123e4567-e89b-12d3-a456-426614174000",
    }
    token = jwt.encode(
        claims, pki.key, algorithm="ES256", headers={"ppt": "shaken", "typ": "passport", "x5u": X5U}
    )
    verdict = pki.verifier().verify_token(token, now=NOW, orig=ORIG, dest=DEST)
    assert verdict.valid, verdict.reason
    assert verdict.verstat is Verstat.PASSED
    assert verdict.attest is pp.Attestation.B
    assert verdict.origid == claims["origid"]


def test_identity_header_round_trip(pki: Any) -> None:
    passport = _passport()
    header = pp.identity_header(pp.sign(passport, pki.key), X5U)
    assert header.endswith(f";info=<{X5U}>;alg=ES256;ppt=shaken")
    verdict = pki.verifier().verify_identity(header, now=NOW + timedelta(seconds=3), orig=ORIG, dest=DEST)
    assert verdict.valid
    assert verdict.as_dict()["verstat"] == "TN-Validation-Passed"
    assert "reason_code" not in verdict.as_dict()
    assert verdict.chain_checked


def _tamper(token: str, **claims: Any) -> str:
    header, body, sig = token.split(".")
    values = _b64json(body)
    values.update(claims)
    return ".".join([header, pp.b64url_encode(pp.canonical_json(values)), sig])


@pytest.mark.parametrize(
    "change",
    [{"orig": {"tn": "8613800138001"}}, {"attest": "A", "origid": "00000000-0000-0000-0000-000000000000"}],
)
def test_tampered_claims_fail_438(pki: Any, change: dict[str, Any]) -> None:
    token = pp.sign(_passport(attest="B"), pki.key)
    verdict = pki.verifier().verify_token(_tamper(token, **change), now=NOW)
    assert not verdict.valid
    assert verdict.verstat is Verstat.FAILED
    assert verdict.reason_code is Reason.INVALID_IDENTITY_HEADER


def test_tampered_header_fails_438(pki: Any) -> None:
    token = pp.sign(_passport(), pki.key)
    _, body, sig = token.split(".")
    forged_header = pp.b64url_encode(pp.canonical_json(_passport(x5u=X5U + "?").header()))
    pki.store.add(X5U + "?", [pki.cert, pki.ca.cert])
    verdict = pki.verifier().verify_token(f"{forged_header}.{body}.{sig}", now=NOW)
    assert verdict.reason_code is Reason.INVALID_IDENTITY_HEADER


def test_wrong_key_fails_438(pki: Any) -> None:
    stranger = ec.generate_private_key(ec.SECP256R1())
    verdict = pki.verifier().verify_token(pp.sign(_passport(), stranger), now=NOW)
    assert verdict.reason_code is Reason.INVALID_IDENTITY_HEADER
    assert "signature" in verdict.reason


@pytest.mark.parametrize(("offset", "ok"), [(0, True), (60, True), (-60, True), (61, False), (-61, False)])
def test_iat_must_be_within_60_seconds(pki: Any, offset: int, ok: bool) -> None:
    token = pp.sign(_passport(), pki.key)
    verdict = pki.verifier().verify_token(token, now=T + offset)
    assert verdict.valid is ok
    if not ok:
        assert verdict.reason_code is Reason.STALE_DATE
        assert verdict.verstat is Verstat.FAILED


def test_wrong_dest_and_wrong_orig_fail_438(pki: Any) -> None:
    token = pp.sign(_passport(), pki.key)
    verifier = pki.verifier()
    wrong_dest = verifier.verify_token(token, now=NOW, orig=ORIG, dest="8613912345670")
    assert wrong_dest.reason_code is Reason.INVALID_IDENTITY_HEADER
    assert "dest" in wrong_dest.reason
    wrong_orig = verifier.verify_token(token, now=NOW, orig="+86 138 0013 8001", dest=DEST)
    assert wrong_orig.reason_code is Reason.INVALID_IDENTITY_HEADER
    assert "orig" in wrong_orig.reason
    same = verifier.verify_token(token, now=NOW, orig="+86 138-0013-8000", dest="tel:+8613912345678")
    assert same.valid


def test_missing_header_is_428_no_validation(pki: Any) -> None:
    verdict = pki.verifier().verify_identity(None, now=NOW, orig=ORIG, dest=DEST)
    assert verdict.reason_code is Reason.USE_IDENTITY_HEADER
    assert verdict.verstat is Verstat.NO_VALIDATION


def test_unreachable_x5u_is_436_and_info_mismatch_is_436(pki: Any) -> None:
    token = pp.sign(_passport(x5u="https://nowhere.example/sp.pem"), pki.key)
    assert pki.verifier().verify_token(token, now=NOW).reason_code is Reason.BAD_IDENTITY_INFO
    good = pp.sign(_passport(), pki.key)
    header = f"{good};info=<https://other.example/sp.pem>;alg=ES256;ppt=shaken"
    assert pki.verifier().verify_identity(header, now=NOW).reason_code is Reason.BAD_IDENTITY_INFO


def test_untrusted_revoked_and_expired_credentials_are_437(pki: Any, tmp_path: Any) -> None:
    token = pp.sign(_passport(), pki.key)
    from quietline.callerauth.ca import CertificateAuthority

    stranger_ca = CertificateAuthority.init(tmp_path / "other", now=NOW)
    untrusted = Verifier(pki.store, TrustStore([stranger_ca.cert]))
    assert untrusted.verify_token(token, now=NOW).reason_code is Reason.UNSUPPORTED_CREDENTIAL

    expired = pki.verifier().verify_token(
        pp.sign(_passport(iat=T + 400 * 86400), pki.key), now=T + 400 * 86400
    )
    assert expired.reason_code is Reason.UNSUPPORTED_CREDENTIAL
    assert "expired" in expired.reason

    pki.ca.revoke(pki.cert.serial_number, now=NOW)
    trust = TrustStore([pki.ca.cert])
    trust.add_crl_bytes((pki.ca.directory / "crl.pem").read_bytes())
    revoked = Verifier(pki.store, trust).verify_token(token, now=NOW)
    assert revoked.reason_code is Reason.UNSUPPORTED_CREDENTIAL
    assert "revoked" in revoked.reason


def test_tn_auth_list_ranges_limit_the_numbers_a_certificate_vouches_for(pki: Any) -> None:
    key, cert = pki.ca.issue(now=NOW, tn_ranges=[("8613800138000", 10)], tns=["8610010000"])
    store = LocalCertificateStore({X5U: [cert, pki.ca.cert]})
    verifier = Verifier(store, pki.trust)
    inside = pp.sign(_passport(orig="8613800138009"), key)
    single = pp.sign(_passport(orig="+86 10 010000"), key)
    outside = pp.sign(_passport(orig="8613800138010"), key)
    assert verifier.verify_token(inside, now=NOW).valid
    assert verifier.verify_token(single, now=NOW).valid
    verdict = verifier.verify_token(outside, now=NOW)
    assert verdict.reason_code is Reason.UNSUPPORTED_CREDENTIAL
    assert "TNAuthList" in verdict.reason


def test_certificate_without_tn_auth_list_is_437(pki: Any) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "no tnauth")]))
        .issuer_name(pki.ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=1))
        .sign(pki.ca.key, hashes.SHA256())
    )
    verifier = Verifier(LocalCertificateStore({X5U: [cert]}), pki.trust)
    verdict = verifier.verify_token(pp.sign(_passport(), key), now=NOW)
    assert verdict.reason_code is Reason.UNSUPPORTED_CREDENTIAL


@pytest.mark.parametrize(
    ("header_change", "claims_change"),
    [
        ({"ppt": "div"}, {}),
        ({"alg": "ES384"}, {}),
        ({}, {"attest": "D"}),
        ({}, {"dest": "8613912345678"}),
        ({}, {"iat": "1700000000"}),
        ({}, {"orig": None}),
    ],
)
def test_malformed_tokens_are_438(
    pki: Any, header_change: dict[str, Any], claims_change: dict[str, Any]
) -> None:
    passport = _passport()
    header = {**passport.header(), **header_change}
    claims = {**passport.claims(), **claims_change}
    signing_input = (
        pp.b64url_encode(pp.canonical_json(header)) + "." + pp.b64url_encode(pp.canonical_json(claims))
    )
    from cryptography.hazmat.primitives import hashes

    sig = pp.der_to_raw(pki.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    token = signing_input + "." + pp.b64url_encode(sig)
    verdict = pki.verifier().verify_token(token, now=NOW)
    assert verdict.reason_code is Reason.INVALID_IDENTITY_HEADER


@pytest.mark.parametrize("garbage", ["", "a.b", "a.b.c", "!!!.e30.e30", "e30..sig", "eyJ9.eyJ9.AA"])
def test_garbage_is_438_not_an_exception(pki: Any, garbage: str) -> None:
    verdict = pki.verifier().verify_token(garbage, now=NOW)
    assert verdict.reason_code is Reason.INVALID_IDENTITY_HEADER


def test_build_rejects_bad_input() -> None:
    with pytest.raises(pp.PassportFormatError):
        _passport(attest="D")
    with pytest.raises(pp.PassportFormatError):
        _passport(origid="not-a-uuid")
    with pytest.raises(pp.PassportFormatError):
        _passport(dest=[])
    with pytest.raises(InvalidInput, match="not a telephone number"):
        _passport(orig="+86abc")


_KEY = ec.generate_private_key(ec.SECP256R1())


@given(
    orig=st.from_regex(r"8613[0-9]{9}", fullmatch=True),
    dests=st.lists(st.from_regex(r"86139[0-9]{8}", fullmatch=True), min_size=1, max_size=3),
    attest=st.sampled_from(["A", "B", "C"]),
    skew=st.integers(-60, 60),
)
@settings(max_examples=40, deadline=None)
def test_any_signed_call_verifies_and_any_flipped_bit_fails(
    orig: str, dests: list[str], attest: str, skew: int
) -> None:
    from quietline.callerauth.certs import Fetched

    class OneKey:
        def fetch(self, url: str, now: datetime) -> Fetched:
            return Fetched((_CERT,), None)

    token = pp.sign(_passport(orig=orig, dest=dests, attest=attest), _KEY)
    verifier = Verifier(OneKey(), None)
    verdict = verifier.verify_token(token, now=T + skew, orig=orig, dest=dests[-1])
    assert verdict.valid, verdict.reason
    assert (verdict.orig, verdict.dest, verdict.attest) == (orig, tuple(dests), pp.Attestation(attest))
    header, claims, sig = token.split(".")
    raw = bytearray(pp.b64url_decode(sig))
    raw[skew % 64] ^= 0x01
    forged = f"{header}.{claims}.{pp.b64url_encode(bytes(raw))}"
    assert verifier.verify_token(forged, now=T).reason_code is Reason.INVALID_IDENTITY_HEADER


def _self_signed(key: ec.EllipticCurvePrivateKey) -> Any:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    from quietline.callerauth.tnauth import TNAuthList

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pinned")])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=1))
        .add_extension(TNAuthList(spcs=("1",)).as_extension(), critical=False)
        .sign(key, hashes.SHA256())
    )


_CERT = _self_signed(_KEY)


FORWARD_TO = "8613700137000"
DIV_X5U = "https://cert.example.cn/diverter.pem"


def _diverter(pki: Any) -> Any:
    """The forwarding provider's key; its certificate is served at DIV_X5U."""
    key, cert = pki.ca.issue(now=NOW, spc="5678")
    pki.store.add(DIV_X5U, [cert, pki.ca.cert])
    return key


def _div(key: Any, *, orig: str = ORIG, div_tn: str = DEST, iat: int = T) -> str:
    div = pp.DivPassport(orig, (FORWARD_TO,), div_tn, iat, DIV_X5U)
    return pp.identity_header(pp.sign_div(div, key), DIV_X5U, ppt=pp.PPT_DIV)


def test_forwarded_call_verifies_through_its_div_passport(pki: Any) -> None:
    shaken = pp.identity_header(pp.sign(_passport(attest="A"), pki.key), X5U)
    div = _div(_diverter(pki))
    verifier = pki.verifier()
    verdict = verifier.verify_call([div, shaken], now=NOW, orig=ORIG, dest=FORWARD_TO)
    assert verdict.valid, verdict.reason
    assert verdict.diverted_from == DEST
    assert verdict.attest is pp.Attestation.A
    assert verdict.as_dict()["diverted_from"] == DEST
    # Without the div PASSporT the forwarded-to number is not vouched for.
    alone = verifier.verify_call([shaken], now=NOW, orig=ORIG, dest=FORWARD_TO)
    assert alone.reason_code is Reason.INVALID_IDENTITY_HEADER
    # A direct match needs no diversion.
    assert verifier.verify_call([div, shaken], now=NOW, orig=ORIG, dest=DEST).diverted_from is None
    assert verifier.verify_call([], now=NOW).reason_code is Reason.USE_IDENTITY_HEADER


def test_bad_div_passports_fail(pki: Any) -> None:
    shaken = pp.identity_header(pp.sign(_passport(), pki.key), X5U)
    verifier = pki.verifier()
    key = _diverter(pki)
    wrong_orig = verifier.verify_call(
        [shaken, _div(key, orig="8613800138001")], now=NOW, orig=ORIG, dest=FORWARD_TO
    )
    assert wrong_orig.reason_code is Reason.INVALID_IDENTITY_HEADER
    stale = verifier.verify_call([shaken, _div(key, iat=T - 120)], now=NOW, orig=ORIG, dest=FORWARD_TO)
    assert stale.reason_code is Reason.STALE_DATE
    forged = _div(ec.generate_private_key(ec.SECP256R1()))
    bad_sig = verifier.verify_call([shaken, forged], now=NOW, orig=ORIG, dest=FORWARD_TO)
    assert bad_sig.reason_code is Reason.INVALID_IDENTITY_HEADER
    assert bad_sig.reason.startswith("div: signature")
    elsewhere = verifier.verify_call(
        [shaken, _div(key, div_tn="8613912340000")], now=NOW, orig=ORIG, dest=FORWARD_TO
    )
    assert not elsewhere.valid
    only_div = verifier.verify_call([_div(key)], now=NOW, orig=ORIG, dest=FORWARD_TO)
    assert only_div.reason_code is Reason.INVALID_IDENTITY_HEADER
    mislabelled = _div(key).replace("ppt=div", "ppt=shaken")
    assert verifier.verify_call([shaken, mislabelled], now=NOW).reason_code is Reason.INVALID_IDENTITY_HEADER


def test_a_ca_certificate_cannot_sign_passports(pki: Any) -> None:
    """The CA's own key usage (keyCertSign, cRLSign) does not allow signing calls."""
    store = LocalCertificateStore({X5U: [pki.ca.cert]})
    verdict = Verifier(store, pki.trust).verify_token(pp.sign(_passport(), pki.ca.key), now=NOW)
    assert verdict.reason_code is Reason.UNSUPPORTED_CREDENTIAL
    assert "key usage" in verdict.reason


def test_north_american_numbers_in_passport_form(pki: Any) -> None:
    """The usual STIR/SHAKEN examples: plain E.164 digits of +1 numbers, no Chinese number plan."""
    token = pp.sign(_passport(orig="12155551212", dest="12155551213"), pki.key)
    verifier = pki.verifier()
    assert verifier.verify_token(token, now=NOW, orig="12155551212", dest="+1 215 555 1213").valid
    wrong = verifier.verify_token(token, now=NOW, orig="12155551212", dest="12155551214")
    assert wrong.reason_code is Reason.INVALID_IDENTITY_HEADER
    unreadable = verifier.verify_token(token, now=NOW, orig="12155551212", dest="not a number")
    assert unreadable.reason_code is Reason.INVALID_IDENTITY_HEADER
