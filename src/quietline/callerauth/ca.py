"""A small STI certificate authority for tests and pilots (not for production trust).

It issues service-provider certificates with a TNAuthList (RFC 8226 §9) in the SHAKEN profile
(ATIS-1000080 §6.4: EC P-256, digitalSignature, not a CA) and keeps a revocation list (RFC 5280
§5) that the verifier consults. Everything lives in one directory:

    ca.key (0600)  ca.pem  issued.json  crl.pem

Private keys are written with mode 0600 from the moment the file is created. Time is passed in.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from quietline.callerauth.certs import load_certificates
from quietline.callerauth.tnauth import TNAuthList, TnRange
from quietline.platform.errors import Conflict, InvalidInput, NotFound

CA_KEY = "ca.key"
CA_CERT = "ca.pem"
ISSUED = "issued.json"
CRL = "crl.pem"
SETTINGS = "ca.json"
#: How long a published CRL is good for before the next one is due (RFC 5280 §5.1.2.5).
CRL_LIFETIME = timedelta(days=7)


@contextmanager
def _files(directory: Path) -> Iterator[None]:
    """File-system trouble in the CA directory is a user error with one clear line."""
    try:
        yield
    except OSError as exc:
        raise InvalidInput(f"CA directory {directory}: {exc.strerror or exc}", field="dir") from exc
    except (ValueError, TypeError, KeyError) as exc:  # a damaged issued.json / ca.json
        raise InvalidInput(f"CA directory {directory} holds a damaged file: {exc}", field="dir") from exc


def new_key() -> ec.EllipticCurvePrivateKey:
    """ES256 keys are P-256 (RFC 7518 §3.4, ATIS-1000080 §6.4)."""
    return ec.generate_private_key(ec.SECP256R1())


def private_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def write_private(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 (never briefly world-readable) and write ``data``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600)


def load_private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise InvalidInput(f"cannot read a private key from {path}: {exc}", field="key") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise InvalidInput("the key must be an EC P-256 private key (ES256)", field="key")
    return key


@dataclass(frozen=True, slots=True)
class Issued:
    serial: int
    spc: str | None
    subject: str
    not_after: str
    revoked_at: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "serial": self.serial,
            "spc": self.spc,
            "subject": self.subject,
            "not_after": self.not_after,
            "revoked_at": self.revoked_at,
        }


class CertificateAuthority:
    def __init__(
        self,
        directory: Path,
        key: ec.EllipticCurvePrivateKey,
        cert: x509.Certificate,
        crl_url: str | None = None,
    ) -> None:
        self.directory = directory
        self.key = key
        self.cert = cert
        #: Where crl.pem is published; issued certificates name it as their CRL distribution point.
        self.crl_url = crl_url

    @classmethod
    def init(
        cls,
        directory: Path,
        *,
        now: datetime,
        name: str = "quietline STI-CA",
        days: int = 3650,
        crl_url: str | None = None,
    ) -> CertificateAuthority:
        """Create the CA key and a self-signed root (RFC 5280 §4.2.1.9: CA, keyCertSign, cRLSign)."""
        if (directory / CA_KEY).exists():
            raise Conflict(f"a CA already exists in {directory}", field="dir")
        if crl_url is not None and not crl_url.startswith(("http://", "https://")):
            raise InvalidInput("the CRL URL must be http(s)", field="crl_url")
        key = new_key()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256())
        )
        with _files(directory):
            return cls._write_new(directory, key, cert, crl_url, now)

    @classmethod
    def _write_new(
        cls,
        directory: Path,
        key: ec.EllipticCurvePrivateKey,
        cert: x509.Certificate,
        crl_url: str | None,
        now: datetime,
    ) -> CertificateAuthority:
        directory.mkdir(parents=True, exist_ok=True)
        write_private(directory / CA_KEY, private_key_pem(key))
        (directory / CA_CERT).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (directory / ISSUED).write_text("[]\n", encoding="utf-8")
        (directory / SETTINGS).write_text(json.dumps({"crl_url": crl_url}) + "\n", encoding="utf-8")
        ca = cls(directory, key, cert, crl_url)
        ca.write_crl(now=now)
        return ca

    @classmethod
    def load(cls, directory: Path) -> CertificateAuthority:
        if not (directory / CA_KEY).exists():
            raise NotFound(f"no CA in {directory} (run `quietline callerauth ca init`)", field="dir")
        key = load_private_key(directory / CA_KEY)
        with _files(directory):
            cert = load_certificates((directory / CA_CERT).read_bytes())[0]
            settings_path = directory / SETTINGS
            settings = json.loads(settings_path.read_text(encoding="utf-8")) if settings_path.exists() else {}
            return cls(directory, key, cert, settings.get("crl_url"))

    def issued(self) -> list[Issued]:
        with _files(self.directory):
            rows = json.loads((self.directory / ISSUED).read_text(encoding="utf-8"))
            return [Issued(**row) for row in rows]

    def _save_issued(self, rows: Sequence[Issued]) -> None:
        text = json.dumps([r.as_dict() for r in rows], ensure_ascii=False, indent=2)
        with _files(self.directory):
            (self.directory / ISSUED).write_text(text + "\n", encoding="utf-8")

    def issue(
        self,
        *,
        now: datetime,
        spc: str | None = None,
        tn_ranges: Sequence[tuple[str, int]] = (),
        tns: Sequence[str] = (),
        days: int = 365,
        key: ec.EllipticCurvePrivateKey | None = None,
        common_name: str | None = None,
    ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        """A service-provider certificate carrying TNAuthList (ATIS-1000080 §6.4)."""
        if days < 1:
            raise InvalidInput("days must be at least 1", field="days")
        try:
            authority = TNAuthList(
                spcs=(spc,) if spc else (),
                ranges=tuple(TnRange(start, count) for start, count in tn_ranges),
                numbers=tuple(tns),
            )
        except ValueError as exc:
            raise InvalidInput(str(exc), field="tn_range") from exc
        sp_key = key or new_key()
        name = common_name or (f"SHAKEN {spc}" if spc else "SHAKEN service provider")
        not_after = min(now + timedelta(days=days), self.cert.not_valid_after_utc)
        serial = x509.random_serial_number()
        cert_builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.cert.subject)
            .public_key(sp_key.public_key())
            .serial_number(serial)
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(sp_key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
            .add_extension(authority.as_extension(), critical=False)
        )
        if self.crl_url is not None:
            # ATIS-1000080 §6.4: SP certificates name where their revocation is published.
            point = x509.DistributionPoint([x509.UniformResourceIdentifier(self.crl_url)], None, None, None)
            cert_builder = cert_builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
        cert = cert_builder.sign(self.key, hashes.SHA256())
        rows = self.issued()
        rows.append(Issued(serial, spc, name, not_after.isoformat()))
        self._save_issued(rows)
        return sp_key, cert

    def revoke(self, serial: int, *, now: datetime) -> Issued:
        rows = self.issued()
        for i, row in enumerate(rows):
            if row.serial == serial:
                if row.revoked_at is not None:
                    raise Conflict(f"certificate {serial} is already revoked", field="serial")
                rows[i] = Issued(row.serial, row.spc, row.subject, row.not_after, now.isoformat())
                self._save_issued(rows)
                self.write_crl(now=now)
                return rows[i]
        raise NotFound(f"this CA issued no certificate with serial {serial}", field="serial")

    def crl(self, *, now: datetime) -> x509.CertificateRevocationList:
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.cert.subject)
            .last_update(now)
            .next_update(now + CRL_LIFETIME)
        )
        for row in self.issued():
            if row.revoked_at is not None:
                builder = builder.add_revoked_certificate(
                    x509.RevokedCertificateBuilder()
                    .serial_number(row.serial)
                    .revocation_date(datetime.fromisoformat(row.revoked_at))
                    .build()
                )
        return builder.sign(self.key, hashes.SHA256())

    def write_crl(self, *, now: datetime) -> Path:
        path = self.directory / CRL
        data = self.crl(now=now).public_bytes(serialization.Encoding.PEM)
        with _files(self.directory):
            path.write_bytes(data)
        return path


def write_certificate(path: Path, cert: x509.Certificate, chain: Sequence[x509.Certificate] = ()) -> None:
    """Write a PEM bundle, leaf first, as an x5u URL serves it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (cert, *chain)))
