"""The callerauth commands as a user runs them: real processes, the exact contract, exit codes."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import jwt
import pytest
from cryptography import x509

from quietline.accounts.model import uscc_check_character

CLI = str(Path(sys.executable).parent / "quietline")
X5U = "https://cert.example.cn:8443/sp.pem"
USCC = "91110000100000000" + uscc_check_character("91110000100000000")


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


class InProcess:
    """Runs ``quietline callerauth …`` through the console entry point (``cli.main.app``, which
    turns user errors into exit 2 and one line) inside the test process: a fresh interpreter costs
    seconds per command on a loaded machine. One test below also runs a real process."""

    def __init__(self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
        self.capsys = capsys
        self.monkeypatch = monkeypatch

    def __call__(self, *args: str) -> Result:
        from quietline.cli import main

        self.capsys.readouterr()
        self.monkeypatch.setattr(sys, "argv", ["quietline", "callerauth", *args])
        try:
            main.app()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = self.capsys.readouterr()
        return Result(code, out, err)


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> InProcess:
    return InProcess(capsys, monkeypatch)


@pytest.fixture
def pki(tmp_path: Path, run: InProcess) -> Path:
    d = tmp_path / "pki"
    assert run("ca", "init", "--dir", str(d / "ca")).returncode == 0
    issued = run(
        "ca", "issue", "--dir", str(d / "ca"), "--spc", "1234", "--tn-range", "8613800138000", "100",
        "--tn-range", "861088886600", "10", "--out", str(d / "sp.pem"), "--json",
    )  # fmt: skip
    assert issued.returncode == 0, issued.stderr
    return d


def test_ca_writes_private_keys_0600_and_tnauthlist(run: InProcess, pki: Path) -> None:
    for key in (pki / "ca" / "ca.key", pki / "sp.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    chain = x509.load_pem_x509_certificates((pki / "sp.pem").read_bytes())
    assert len(chain) == 2  # leaf and CA, as x5u serves them
    from quietline.callerauth import tnauth

    authority = tnauth.from_certificate(chain[0])
    assert authority is not None
    assert authority.spcs == ("1234",)
    assert authority.covers("8613800138099")
    assert not authority.covers("8613800138100")


def test_sign_then_verify_contract(run: InProcess, pki: Path, tmp_path: Path) -> None:
    iat = int(time.time())
    signed = run(
        "sign", "--orig", "+86 138 0013 8000", "--dest", "13912345678", "--attest", "B",
        "--key", str(pki / "sp.key"), "--x5u", X5U, "--iat", str(iat),
    )  # fmt: skip
    assert signed.returncode == 0, signed.stderr
    token = signed.stdout.strip()
    assert token.count(".") == 2
    cert = x509.load_pem_x509_certificates((pki / "sp.pem").read_bytes())[0]
    claims = jwt.decode(token, cert.public_key(), algorithms=["ES256"], options={"verify_iat": False})
    assert claims["orig"] == {"tn": "8613800138000"}
    assert claims["dest"] == {"tn": ["8613912345678"]}
    assert claims["iat"] == iat

    (tmp_path / "t.jws").write_text(token + "\n")
    common = ["--cert", str(pki / "sp.pem"), "--trust", str(pki / "ca" / "ca.pem"), "--json"]
    ok = run("verify", "--passport", str(tmp_path / "t.jws"), "--orig", "8613800138000",
             "--dest", "8613912345678", "--now", str(iat + 5), *common)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    verdict = json.loads(ok.stdout)
    assert verdict["valid"] is True
    assert verdict["verstat"] == "TN-Validation-Passed"
    assert verdict["attest"] == "B"
    assert verdict["orig"] == "8613800138000"
    assert verdict["dest"] == ["8613912345678"]
    assert "reason_code" not in verdict

    stale = json.loads(
        run("verify", "--passport", str(tmp_path / "t.jws"), "--now", str(iat + 61), *common).stdout
    )
    assert (stale["valid"], stale["reason_code"]) == (False, 403)
    wrong_dest = run("verify", "--passport", str(tmp_path / "t.jws"), "--dest", "8613912345670",
                     "--now", str(iat), *common)  # fmt: skip
    assert json.loads(wrong_dest.stdout)["reason_code"] == 438

    header = run(
        "sign", "--orig", "8613800138001", "--dest", "8613912345678", "--attest", "A",
        "--key", str(pki / "sp.key"), "--x5u", X5U, "--iat", str(iat), "--identity-header",
    ).stdout.strip()  # fmt: skip
    assert header.endswith(f";info=<{X5U}>;alg=ES256;ppt=shaken")
    (tmp_path / "h.txt").write_text(f"Identity: {header}\r\n")
    via_header = json.loads(
        run("verify", "--identity-header", str(tmp_path / "h.txt"), "--now", str(iat), *common).stdout
    )
    assert via_header["valid"] is True
    assert via_header["attest"] == "A"
    # A whole header handed to --passport is read as the header it is.
    (tmp_path / "p.txt").write_text(header)
    as_passport = json.loads(
        run("verify", "--passport", str(tmp_path / "p.txt"), "--now", str(iat), *common).stdout
    )
    assert as_passport["valid"] is True


def test_revoked_certificate_fails_437_via_crl(run: InProcess, tmp_path: Path) -> None:
    ca = tmp_path / "ca"
    assert run("ca", "init", "--dir", str(ca)).returncode == 0
    issued = json.loads(
        run("ca", "issue", "--dir", str(ca), "--spc", "9", "--out", str(tmp_path / "sp.pem"), "--json").stdout
    )
    iat = int(time.time())
    token = run("sign", "--orig", "8613800138000", "--dest", "8613912345678", "--attest", "A",
                "--key", issued["key"], "--x5u", X5U, "--iat", str(iat)).stdout  # fmt: skip
    (tmp_path / "t.jws").write_text(token)
    args = ["verify", "--passport", str(tmp_path / "t.jws"), "--cert", issued["cert"], "--trust",
            str(ca / "ca.pem"), "--crl", str(ca / "crl.pem"), "--now", str(iat), "--json"]  # fmt: skip
    assert json.loads(run(*args).stdout)["valid"] is True
    assert run("ca", "revoke", "--dir", str(ca), "--serial", str(issued["serial"])).returncode == 0
    after = json.loads(run(*args).stdout)
    assert (after["valid"], after["reason_code"]) == (False, 437)
    listed = json.loads(run("ca", "list", "--dir", str(ca), "--json").stdout)
    assert listed[0]["revoked_at"] is not None
    assert run("ca", "crl", "--dir", str(ca)).returncode == 0
    assert json.loads(run(*args).stdout)["reason_code"] == 437  # the fresh CRL still lists it


@pytest.mark.parametrize(
    "args",
    [
        ["sign", "--orig", "+86abc", "--dest", "1", "--attest", "A", "--key", "/nonexistent", "--x5u", X5U],
        ["verify", "--cert", "/nonexistent", "--json"],
        ["ca", "issue", "--dir", "/nonexistent", "--spc", "1", "--out", "/tmp/x.pem"],
        ["ca", "issue", "--dir", "/nonexistent", "--tn-range", "123", "--out", "/tmp/x.pem"],
    ],
)
def test_bad_input_is_one_line_and_exit_2(run: InProcess, args: list[str]) -> None:
    result = run(*args)
    assert result.returncode == 2, result
    assert result.stderr.startswith("error: ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_attest_must_be_a_b_or_c(run: InProcess, pki: Path) -> None:
    result = run("sign", "--orig", "8613800138000", "--dest", "8613912345678", "--attest", "D",
                 "--key", str(pki / "sp.key"), "--x5u", X5U)  # fmt: skip
    assert result.returncode == 2
    assert "attest" in result.stderr


def test_ledger_commands(
    run: InProcess, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from quietline.cli import common
    from quietline.platform.settings import get_settings

    monkeypatch.setenv("QUIETLINE_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("QUIETLINE_SECRET_KEY", "cli-test")
    monkeypatch.setenv("QUIETLINE_ENV", "test")
    get_settings.cache_clear()
    common.runtime.cache_clear()
    try:
        _ledger_commands(run, tmp_path)
    finally:
        common.runtime().close()
        common.runtime.cache_clear()
        get_settings.cache_clear()


def _ledger_commands(run: InProcess, tmp_path: Path) -> None:
    assert run("ledger", "add-line", "--line", "L1", "--enterprise", USCC, "--name", "专线",
               "--kind", "voice_private_line").returncode == 0  # fmt: skip
    added = run("ledger", "add-number", "--line", "L1", "--number", "01088886666", "--purpose", "通知提醒",
                "--undertaking-ref", "CN-1", "--undertaking-signed-on", "2026-11-01",
                "--undertaking-signatory", "张三")  # fmt: skip
    assert added.returncode == 0, added.stderr
    export = run("ledger", "export")
    assert "861088886666" in export.stdout
    (tmp_path / "l.csv").write_text(export.stdout.replace("L1", "L2"))
    imported = json.loads(run("ledger", "import", str(tmp_path / "l.csv"), "--json").stdout)
    assert imported["numbers_changed"] == 1
    check = json.loads(run("check", "--caller", "01088886666", "--callee", "13912345678",
                           "--origin", "enterprise_line", "--line", "L2", "--json").stdout)  # fmt: skip
    assert (check["outcome"], check["attest"]) == ("allow", "A")
    (tmp_path / "k").mkdir()
    assert run("ca", "init", "--dir", str(tmp_path / "k" / "ca")).returncode == 0
    assert run("ca", "issue", "--dir", str(tmp_path / "k" / "ca"), "--spc", "1",
               "--out", str(tmp_path / "k" / "sp.pem")).returncode == 0  # fmt: skip
    signed = run("sign", "--line", "L2", "--orig", "01088886666", "--dest", "13912345678",
                 "--key", str(tmp_path / "k" / "sp.key"), "--x5u", X5U)  # fmt: skip
    assert signed.returncode == 0, signed.stderr
    assert "attest A" in signed.stderr
    from quietline.callerauth import passport as pp

    assert pp.decode(signed.stdout.strip()).claims["attest"] == "A"
    k = tmp_path / "k"
    call = ["--caller", "01088886666", "--callee", "13912345678", "--origin", "domestic_interconnect"]
    header = run("sign", "--line", "L2", "--orig", "01088886666", "--dest", "13912345678",
                 "--identity-header", "--key", str(k / "sp.key"), "--x5u", X5U).stdout  # fmt: skip
    (tmp_path / "h.txt").write_text(header)
    signed_call = ["--identity-header", str(tmp_path / "h.txt")]
    screened = json.loads(run("check", *call, *signed_call, "--cert", str(k / "sp.pem"),
                              "--trust", str(k / "ca" / "ca.pem"), "--json").stdout)  # fmt: skip
    assert (screened["outcome"], screened["verification"]["verstat"]) == ("allow", "TN-Validation-Passed")
    unsigned = json.loads(run("check", *call, "--json").stdout)
    assert unsigned["code"] == "unsigned_from_risky_origin"
    assert run("check", *call, *signed_call).returncode == 2  # no --cert
    both = run("sign", "--line", "L2", "--attest", "A", "--orig", "01088886666", "--dest", "13912345678",
               "--key", str(tmp_path / "k" / "sp.key"), "--x5u", X5U)  # fmt: skip
    assert both.returncode == 2
    bad = run("ledger", "add-number", "--line", "L1", "--number", "01088886667", "--purpose", "marketing")
    assert bad.returncode == 2
    assert "purpose" in bad.stderr


def test_real_process_keeps_the_contract(tmp_path: Path) -> None:
    """One real process: the console script, its exit code and its one-line error."""
    result = subprocess.run(
        [CLI, "callerauth", "sign", "--orig", "+86abc", "--dest", "1", "--attest", "A",
         "--key", str(tmp_path / "none.pem"), "--x5u", X5U],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.startswith("error: ")
    assert len(result.stderr.strip().splitlines()) == 1


def test_verify_a_forwarded_call_from_a_header_file(run: InProcess, pki: Path, tmp_path: Path) -> None:
    from quietline.callerauth import passport as pp
    from quietline.callerauth.ca import load_private_key

    iat = int(time.time())
    key = load_private_key(pki / "sp.key")
    shaken = pp.build(orig="8613800138000", dest="8613912345678", attest="A", x5u=X5U, iat=iat)
    div = pp.DivPassport("8613800138000", ("8613700137000",), "8613912345678", iat, X5U)
    token = pp.sign(shaken, key)
    folded = pp.identity_header(token, X5U).replace(";info=", "\r\n  ;info=")
    (tmp_path / "h.txt").write_text(
        f"{folded}\r\n{pp.identity_header(pp.sign_div(div, key), X5U, ppt=pp.PPT_DIV)}\r\n"
    )
    result = run("verify", "--identity-header", str(tmp_path / "h.txt"), "--cert", str(pki / "sp.pem"),
                 "--trust", str(pki / "ca" / "ca.pem"), "--dest", "8613700137000",
                 "--now", str(iat), "--json")  # fmt: skip
    verdict = json.loads(result.stdout)
    assert verdict["valid"] is True, verdict
    assert verdict["diverted_from"] == "8613912345678"
    (tmp_path / "empty.txt").write_text("\n")
    none = run(
        "verify", "--identity-header", str(tmp_path / "empty.txt"), "--cert", str(pki / "sp.pem"), "--json"
    )
    assert json.loads(none.stdout)["reason_code"] == 428


def test_a_pinned_certificate_needs_no_tnauthlist_but_a_trusted_one_does(
    run: InProcess, tmp_path: Path
) -> None:
    """--cert without --trust pins that certificate (e.g. one made with openssl); judged against a
    trust store, a certificate without TNAuthList is not a STIR credential (437)."""
    from datetime import UTC, datetime, timedelta

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "plain")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(5).not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    (tmp_path / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "k.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    token = run("sign", "--orig", "8613800138000", "--dest", "8613912345678", "--attest", "C",
                "--key", str(tmp_path / "k.pem"), "--x5u", X5U).stdout  # fmt: skip
    (tmp_path / "t.jws").write_text(token)
    base = ["verify", "--passport", str(tmp_path / "t.jws"), "--cert", str(tmp_path / "c.pem"), "--json"]
    pinned = json.loads(run(*base).stdout)
    assert (pinned["valid"], pinned["chain_checked"], pinned["attest"]) == (True, False, "C")
    trusted = json.loads(run(*base, "--trust", str(tmp_path / "c.pem")).stdout)
    assert (trusted["valid"], trusted["reason_code"]) == (False, 437)


def test_ca_with_a_crl_url_names_it_in_issued_certificates(run: InProcess, tmp_path: Path) -> None:
    url = "http://crl.example.cn/sti.crl"
    assert run("ca", "init", "--dir", str(tmp_path / "ca"), "--crl-url", url).returncode == 0
    assert (
        run(
            "ca", "issue", "--dir", str(tmp_path / "ca"), "--spc", "7", "--out", str(tmp_path / "sp.pem")
        ).returncode
        == 0
    )
    leaf = x509.load_pem_x509_certificates((tmp_path / "sp.pem").read_bytes())[0]
    points = leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert [n.value for p in points for n in p.full_name or ()] == [url]
    bad = run("ca", "init", "--dir", str(tmp_path / "ca2"), "--crl-url", "ftp://x")
    assert bad.returncode == 2
    assert not (tmp_path / "ca2" / "ca.key").exists()


def test_sign_and_verify_north_american_digits(run: InProcess, pki: Path, tmp_path: Path) -> None:
    iat = int(time.time())
    token = run("sign", "--orig", "12155551212", "--dest", "12155551213", "--attest", "A",
                "--key", str(pki / "sp.key"), "--x5u", X5U, "--iat", str(iat))  # fmt: skip
    assert token.returncode == 0, token.stderr
    (tmp_path / "t.jws").write_text(token.stdout)
    base = ["verify", "--passport", str(tmp_path / "t.jws"), "--cert", str(pki / "sp.pem"), "--now", str(iat)]
    ok = json.loads(run(*base, "--orig", "12155551212", "--dest", "12155551213", "--json").stdout)
    assert (ok["valid"], ok["orig"], ok["dest"]) == (True, "12155551212", ["12155551213"])
    wrong = json.loads(run(*base, "--dest", "12155551299", "--json").stdout)
    assert (wrong["valid"], wrong["reason_code"]) == (False, 438)


def test_ca_issue_into_a_directory(run: InProcess, tmp_path: Path) -> None:
    assert run("ca", "init", "--dir", str(tmp_path / "ca")).returncode == 0
    (tmp_path / "out").mkdir()
    issued = run(
        "ca", "issue", "--dir", str(tmp_path / "ca"), "--spc", "1", "--out", str(tmp_path / "out"), "--json"
    )
    paths = json.loads(issued.stdout)
    assert Path(paths["cert"]) == tmp_path / "out" / "sp.pem"
    assert stat.S_IMODE(Path(paths["key"]).stat().st_mode) == 0o600


def test_ca_file_trouble_is_one_line(run: InProcess, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    blocked = run("ca", "init", "--dir", str(tmp_path / "file" / "ca"))
    assert blocked.returncode == 2
    assert blocked.stderr.startswith("error: dir: ")
    assert run("ca", "init", "--dir", str(tmp_path / "ca")).returncode == 0
    (tmp_path / "ca" / "issued.json").write_text("{damaged")
    damaged = run("ca", "list", "--dir", str(tmp_path / "ca"))
    assert damaged.returncode == 2
    assert "damaged" in damaged.stderr
    missing = run(
        "ca", "issue", "--dir", str(tmp_path / "nope"), "--spc", "1", "--out", str(tmp_path / "x.pem")
    )
    assert missing.returncode == 2
    assert "ca init" in missing.stderr
