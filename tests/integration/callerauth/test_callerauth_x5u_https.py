"""x5u over a real HTTPS server on a non-default port, serving a chain with an intermediate CA."""

from __future__ import annotations

import ipaddress
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from quietline.callerauth import passport as pp
from quietline.callerauth.certs import HttpsCertificateFetcher, TrustStore
from quietline.callerauth.tnauth import TNAuthList
from quietline.callerauth.verify import Reason, Verifier

NOW = datetime.now(UTC).replace(microsecond=0)


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[str, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool,
    extensions: list[x509.ExtensionType] = (),  # type: ignore[assignment]
) -> x509.Certificate:
    issuer_name, issuer_key = issuer or (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    for ext in extensions:
        builder = builder.add_extension(ext, critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


@dataclass
class X5uServer:
    url: str
    tls: ssl.SSLContext
    root: x509.Certificate
    sp_key: ec.EllipticCurvePrivateKey
    hits: dict[str, int] = field(default_factory=dict)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[X5uServer]:
    d = tmp_path_factory.mktemp("x5u")
    root_key, inter_key, sp_key, tls_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(4))
    root = _cert("STI root", root_key, None, ca=True)
    inter = _cert("STI intermediate", inter_key, ("STI root", root_key), ca=True)
    leaf = _cert("SHAKEN 1234", sp_key, ("STI intermediate", inter_key), ca=False,
                 extensions=[TNAuthList(spcs=("1234",)).as_extension()])  # fmt: skip
    tls_cert = _cert(
        "127.0.0.1", tls_key, ("STI root", root_key), ca=False,
        extensions=[x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                    x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])],
    )  # fmt: skip
    (d / "tls.pem").write_bytes(_pem(tls_cert))
    (d / "tls.key").write_bytes(
        tls_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    (d / "tls-ca.pem").write_bytes(_pem(root))
    bodies = {
        "/sp.pem": (_pem(leaf, inter), "max-age=60"),
        "/nostore.pem": (_pem(leaf, inter), "no-store"),
        "/huge.pem": (b"x" * 200_000, "max-age=60"),
        "/leaf-only.pem": (_pem(leaf), "max-age=60"),
    }
    hits: dict[str, int] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits[self.path] = hits.get(self.path, 0) + 1
            if self.path == "/slow.pem":
                # A real slow server: the client's network timeout is what is under test, and
                # no clock in quietline is involved (FakeClock cannot delay a socket).
                time.sleep(1.5)
            body, cache = bodies.get(self.path, (b"", "no-store"))
            self.send_response(200 if self.path in bodies else 404)
            self.send_header("Cache-Control", cache)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(d / "tls.pem", d / "tls.key")
    httpd.socket = server_tls.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    client_tls = ssl.create_default_context(cafile=str(d / "tls-ca.pem"))
    try:
        yield X5uServer(f"https://127.0.0.1:{httpd.server_address[1]}", client_tls, root, sp_key, hits)
    finally:
        httpd.shutdown()
        httpd.server_close()


def _token(server: X5uServer, path: str, iat: datetime) -> str:
    passport = pp.build(
        orig="8613800138000",
        dest="8613912345678",
        attest="A",
        x5u=server.url + path,
        iat=int(iat.timestamp()),
    )
    return pp.sign(passport, server.sp_key)


def _verifier(server: X5uServer, **kwargs: object) -> Verifier:
    fetcher = HttpsCertificateFetcher(verify_tls=server.tls, **kwargs)  # type: ignore[arg-type]
    return Verifier(fetcher, TrustStore([server.root]))


def test_chain_with_intermediate_on_a_non_default_port_is_cached(server: X5uServer) -> None:
    verifier = _verifier(server)
    before = server.hits.get("/sp.pem", 0)
    for _ in range(3):
        verdict = verifier.verify_token(_token(server, "/sp.pem", NOW), now=NOW)
        assert verdict.valid, verdict.reason
        assert verdict.signer == "CN=SHAKEN 1234"
    assert server.hits["/sp.pem"] - before == 1
    later = NOW + timedelta(seconds=61)  # max-age=60 has passed: fetched again
    assert verifier.verify_token(_token(server, "/sp.pem", later), now=later).valid
    assert server.hits["/sp.pem"] - before == 2


def test_no_store_is_fetched_for_every_call(server: X5uServer) -> None:
    verifier = _verifier(server)
    before = server.hits.get("/nostore.pem", 0)
    for _ in range(2):
        assert verifier.verify_token(_token(server, "/nostore.pem", NOW), now=NOW).valid
    assert server.hits["/nostore.pem"] - before == 2


def test_a_chain_missing_its_intermediate_is_437(server: X5uServer) -> None:
    verdict = _verifier(server).verify_token(_token(server, "/leaf-only.pem", NOW), now=NOW)
    assert verdict.reason_code is Reason.UNSUPPORTED_CREDENTIAL


@pytest.mark.parametrize("path", ["/huge.pem", "/missing.pem", "/slow.pem"])
def test_unusable_x5u_is_436(server: X5uServer, path: str) -> None:
    verifier = _verifier(server, timeout_seconds=0.5, max_bytes=64 * 1024)
    verdict = verifier.verify_token(_token(server, path, NOW), now=NOW)
    assert verdict.reason_code is Reason.BAD_IDENTITY_INFO, verdict.reason


def test_tls_to_an_untrusted_server_is_436(server: X5uServer) -> None:
    verifier = Verifier(HttpsCertificateFetcher(), TrustStore([server.root]))  # system CAs only
    verdict = verifier.verify_token(_token(server, "/sp.pem", NOW), now=NOW)
    assert verdict.reason_code is Reason.BAD_IDENTITY_INFO


def test_cli_fetches_x5u_when_no_cert_is_given(
    server: X5uServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import json
    import sys

    from quietline.cli import main

    (tmp_path / "t.jws").write_text(_token(server, "/sp.pem", NOW))
    (tmp_path / "root.pem").write_bytes(_pem(server.root))
    cafile = tmp_path / "tls-ca.pem"
    cafile.write_bytes(_pem(server.root))
    monkeypatch.setattr(
        sys,
        "argv",
        ["quietline", "callerauth", "verify", "--passport", str(tmp_path / "t.jws"), "--trust",
         str(tmp_path / "root.pem"), "--tls-ca", str(cafile), "--now", str(int(NOW.timestamp())), "--json"],
    )  # fmt: skip
    with pytest.raises(SystemExit) as exit_info:
        main.app()
    assert exit_info.value.code in (0, None)
    assert json.loads(capsys.readouterr().out)["valid"] is True
