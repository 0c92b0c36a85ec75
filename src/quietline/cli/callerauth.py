"""``quietline callerauth``: sign and verify SHAKEN PASSporTs, run the small STI-CA, keep the
caller-number ledger. Thin: parsing and printing only; the rules live in quietline.callerauth."""

from __future__ import annotations

import contextlib
import json
import ssl
import sys
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.table import Table

from quietline.callerauth import actions, model, queries
from quietline.callerauth import passport as pp
from quietline.callerauth.ca import (
    CA_CERT,
    CRL,
    CertificateAuthority,
    load_private_key,
    private_key_pem,
    write_certificate,
    write_private,
)
from quietline.callerauth.certs import (
    CertificateFetcher,
    CertificateFetchError,
    HttpsCertificateFetcher,
    LocalCertificateStore,
    TrustStore,
    UntrustedCertificate,
    load_certificate_files,
)
from quietline.callerauth.service import Call, CallerAuthentication
from quietline.callerauth.tn import canonical_tn
from quietline.callerauth.verify import Verifier
from quietline.cli.common import JSON_OPTION, cli_actor, console, emit_json, fail, runtime
from quietline.platform.clock import SystemClock
from quietline.platform.errors import InvalidInput

app = typer.Typer(
    help="Caller authentication (STIR/SHAKEN) and the caller-number ledger.", no_args_is_help=True
)
ca_app = typer.Typer(help="A small STI certificate authority for tests and pilots.", no_args_is_help=True)
app.add_typer(ca_app, name="ca")


#: Epoch seconds accepted on the command line (up to the year 9999).
MAX_EPOCH = 253_402_300_799


def _now(epoch: int | None) -> datetime:
    return SystemClock().now() if epoch is None else datetime.fromtimestamp(epoch, UTC)


def _read(path: Path, option: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"{option}: cannot read {path}: {exc}")


@app.command("sign")
def sign(
    *,
    orig: str = typer.Option(..., "--orig", help="Calling number (any accepted spelling)."),
    dest: list[str] = typer.Option(..., "--dest", help="Called number; repeat for several."),
    attest: str | None = typer.Option(None, "--attest", help="Attestation level A, B or C."),
    line: str | None = typer.Option(
        None, "--line", help="Decide the attestation from the ledger for this line instead of --attest."
    ),
    key: Path = typer.Option(..., "--key", help="The signer's EC P-256 private key (PEM)."),
    x5u: str = typer.Option(..., "--x5u", help="URL of the signer's certificate."),
    iat: int | None = typer.Option(
        None, "--iat", min=0, max=MAX_EPOCH, help="Issued-at time (epoch seconds); default now."
    ),
    origid: str | None = typer.Option(None, "--origid", help="Origination UUID; default a fresh one."),
    header: bool = typer.Option(False, "--identity-header", help="Print the SIP Identity header value."),
) -> None:
    """Print a compact SHAKEN PASSporT (RFC 8225/8588) signed with KEY.

    With --line the ledger decides the attestation (A: the line may present the number outbound;
    B: known customer, number not vouched for; C: unknown line) and origid names the line."""
    if (attest is None) == (line is None):
        fail("give exactly one of --attest or --line")
    private = load_private_key(key)
    issued_at = int(_now(iat).timestamp())
    try:
        if line is not None:
            if len(dest) != 1 or origid is not None:
                fail("--line signs one call: one --dest, and origid comes from the line")
            with runtime().sessions() as session:
                snapshot = queries.snapshot(session)
            signed = model.sign_call(
                snapshot, line=line, orig=orig, dest=dest[0], key=private, x5u=x5u, iat=issued_at
            )
            sys.stderr.write(f"attest {signed.attestation.level.value}: {signed.attestation.reason}\n")
            sys.stdout.write((signed.identity_header if header else signed.token) + "\n")
            return
        passport = pp.build(orig=orig, dest=dest, attest=attest or "", x5u=x5u, iat=issued_at, origid=origid)
    except pp.PassportFormatError as exc:
        fail(str(exc))
    token = pp.sign(passport, private)
    sys.stdout.write((pp.identity_header(token, passport.x5u) if header else token) + "\n")


def _header_lines(text: str) -> list[str]:
    """One Identity header per line; a line starting with white space continues the previous one
    (SIP header folding, RFC 3261 §7.3.1)."""
    headers: list[str] = []
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and headers:
            headers[-1] += " " + line.strip()
        elif line.strip():
            headers.append(line.strip())
    return headers


@app.command("verify")
def verify(
    *,
    passport_file: Path | None = typer.Option(None, "--passport", help="File holding a bare PASSporT."),
    header_file: Path | None = typer.Option(
        None, "--identity-header", help="File holding an Identity header value."
    ),
    cert: Path | None = typer.Option(
        None, "--cert", help="The signer's certificate (PEM, leaf first) instead of fetching x5u."
    ),
    trust: list[Path] = typer.Option([], "--trust", help="Trusted CA certificate(s); repeatable."),
    crl: list[Path] = typer.Option([], "--crl", help="Revocation list(s) to consult; repeatable."),
    orig: str | None = typer.Option(None, "--orig", help="The call's calling number."),
    dest: str | None = typer.Option(None, "--dest", help="The call's called number."),
    now: int | None = typer.Option(
        None, "--now", min=0, max=MAX_EPOCH, help="Verification time (epoch seconds); default now."
    ),
    tls_ca: Path | None = typer.Option(
        None, "--tls-ca", help="CA bundle for the HTTPS fetch of x5u (default: the system's)."
    ),
    timeout: float = typer.Option(2.0, "--timeout", help="Seconds allowed for fetching x5u."),
    fetch_crl: bool | None = typer.Option(
        None,
        "--fetch-crl/--no-fetch-crl",
        help="Consult the CRL distribution points the certificates name (default: on when x5u is fetched).",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Verify a PASSporT or Identity header; --cert supplies the certificate, otherwise x5u is
    fetched over HTTPS (short timeout, size limit) and judged against --trust.

    Exit 0 whenever verification ran (the verdict is in the output), 2 on unusable input."""
    if (passport_file is None) == (header_file is None):
        fail("give exactly one of --passport or --identity-header")
    if cert is None and not trust:
        fail("without --cert, x5u is fetched and --trust is required to judge it")
    fetcher: CertificateFetcher
    try:
        tls = ssl.create_default_context(cafile=str(tls_ca)) if tls_ca is not None else True
        http = HttpsCertificateFetcher(timeout_seconds=timeout, verify_tls=tls)
        fetcher = http
        if cert is not None:
            store = LocalCertificateStore()
            store.serve_for_any_url(load_certificate_files([cert]))
            fetcher = store
        trust_store = TrustStore.from_files(trust, crl) if trust else None
        if trust_store is not None and (fetch_crl if fetch_crl is not None else cert is None):
            trust_store.crl_source = http
    except (OSError, CertificateFetchError, UntrustedCertificate) as exc:
        fail(f"certificates: {exc}")
    # A certificate given with --cert and no --trust is pinned by the operator: its TNAuthList is
    # enforced when present but not required; judged against a trust store, it is required.
    verifier = Verifier(fetcher, trust_store, require_tn_auth_list=trust_store is not None)
    when = _now(now)
    if header_file is not None:
        headers = _header_lines(_read(header_file, "--identity-header"))
        if len(headers) > 1:  # a forwarded call: SHAKEN plus div PASSporTs (RFC 8946)
            verdict = verifier.verify_call(headers, now=when, orig=orig, dest=dest)
        else:
            verdict = verifier.verify_identity(
                headers[0] if headers else None, now=when, orig=orig, dest=dest
            )
    elif passport_file is not None:
        text = _read(passport_file, "--passport").strip()
        if ";" in text:  # a whole Identity header was given as the token: read it as one
            verdict = verifier.verify_identity(text, now=when, orig=orig, dest=dest)
        else:
            verdict = verifier.verify_token(text, now=when, orig=orig, dest=dest)
    if as_json:
        emit_json(verdict.as_dict())
        return
    if verdict.valid:
        console.print(f"[green]{verdict.verstat.value}[/green] attest={verdict.attest} orig={verdict.orig}")
    else:
        code = int(verdict.reason_code) if verdict.reason_code is not None else "-"
        console.print(f"[red]{verdict.verstat.value}[/red] {code} {verdict.reason}")


@ca_app.command("init")
def ca_init(
    *,
    directory: Path = typer.Option(..., "--dir", help="Directory for the CA's key, certificate and CRL."),
    name: str = typer.Option("quietline STI-CA", "--name", help="The CA's common name."),
    days: int = typer.Option(3650, "--days", help="Validity of the root certificate."),
    crl_url: str | None = typer.Option(
        None, "--crl-url", help="Where crl.pem will be published; issued certificates point there."
    ),
) -> None:
    """Create a CA: ca.key (mode 0600), ca.pem, an empty crl.pem."""
    ca = CertificateAuthority.init(directory, now=SystemClock().now(), name=name, days=days, crl_url=crl_url)
    console.print(f"CA created: {ca.directory / CA_CERT}")


@ca_app.command("issue", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def ca_issue(
    ctx: typer.Context,
    *,
    directory: Path = typer.Option(..., "--dir", help="The CA directory."),
    spc: str | None = typer.Option(None, "--spc", help="Service provider code for TNAuthList."),
    tn: list[str] = typer.Option([], "--tn", help="A single number for TNAuthList; repeatable."),
    out: Path = typer.Option(..., "--out", help="Where to write the certificate (PEM, with the CA chain)."),
    key_out: Path | None = typer.Option(None, "--key-out", help="Where to write the key (default OUT.key)."),
    days: int = typer.Option(365, "--days", help="Validity in days."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Issue a service-provider certificate with TNAuthList (RFC 8226) and its private key.

    Number ranges: ``--tn-range START COUNT``, repeatable (COUNT numbers from START)."""
    tn_range = _tn_ranges(ctx.args)
    if not spc and not tn_range and not tn:
        fail("give --spc, --tn-range or --tn (TNAuthList needs at least one entry)")
    if out.is_dir():  # a directory: the certificate and key go in it as sp.pem and sp.key
        out = out / "sp.pem"
    key_path = key_out or out.with_suffix(".key")
    if key_path.resolve() == out.resolve():
        fail("--out and --key-out name the same file")
    ca = CertificateAuthority.load(directory)
    key, cert = ca.issue(now=SystemClock().now(), spc=spc, tn_ranges=tn_range, tns=tn, days=days)
    try:
        write_private(key_path, private_key_pem(key))
        write_certificate(out, cert, [ca.cert])
    except OSError as exc:
        fail(f"cannot write the certificate or key: {exc}")
    if as_json:
        emit_json({"serial": cert.serial_number, "cert": str(out), "key": str(key_path)})
    else:
        console.print(f"issued serial {cert.serial_number}: {out} (key {key_path}, mode 0600)")


def _tn_ranges(args: list[str]) -> list[tuple[str, int]]:
    """``--tn-range START COUNT`` pairs (Typer has no repeatable two-value option)."""
    ranges: list[tuple[str, int]] = []
    rest = list(args)
    while rest:
        flag = rest.pop(0)
        if flag != "--tn-range":
            fail(f"unexpected argument {flag!r}")
        if len(rest) < 2 or not rest[1].isdigit():
            fail("--tn-range takes START COUNT (digits, then a count of numbers)")
        ranges.append((rest.pop(0), int(rest.pop(0))))
    return ranges


@ca_app.command("revoke")
def ca_revoke(
    *,
    directory: Path = typer.Option(..., "--dir", help="The CA directory."),
    serial: int = typer.Option(..., "--serial", help="Serial number of the certificate to revoke."),
) -> None:
    """Revoke a certificate and rewrite crl.pem."""
    ca = CertificateAuthority.load(directory)
    ca.revoke(serial, now=SystemClock().now())
    console.print(f"revoked {serial}; CRL: {directory / CRL}")


@ca_app.command("crl")
def ca_crl(
    *,
    directory: Path = typer.Option(..., "--dir", help="The CA directory."),
) -> None:
    """Publish a fresh crl.pem (a CRL is good for 7 days; RFC 5280 §5.1.2.5 nextUpdate)."""
    path = CertificateAuthority.load(directory).write_crl(now=SystemClock().now())
    console.print(f"CRL written: {path}")


@ca_app.command("list")
def ca_list(
    *,
    directory: Path = typer.Option(..., "--dir", help="The CA directory."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Certificates this CA issued, with revocation state."""
    rows = [r.as_dict() for r in CertificateAuthority.load(directory).issued()]
    if as_json:
        emit_json(rows)
    else:
        for row in rows:
            console.print(json.dumps(row, ensure_ascii=False))


ledger_app = typer.Typer(help="The caller-number ledger (主叫号码台账).", no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")


@ledger_app.command("add-line")
def ledger_add_line(
    *,
    line: str = typer.Option(..., "--line", help="The line's code (unique)."),
    enterprise: str = typer.Option(..., "--enterprise", help="The enterprise's unified social credit code."),
    name: str = typer.Option(..., "--name", help="A name for the line."),
    kind: str = typer.Option(
        ..., "--kind", help="service_number, toll_free, voice_private_line, call_centre, sip_trunk."
    ),
    carrier: str | None = typer.Option(None, "--carrier", help="The carrier providing the line."),
) -> None:
    """Register an enterprise line or trunk."""
    actions.register_line(
        runtime(), cli_actor(), code=line, enterprise=enterprise, name=name, kind=kind, carrier=carrier
    )
    console.print(f"line {line} registered")


@ledger_app.command("add-number")
def ledger_add_number(
    *,
    line: str = typer.Option(..., "--line", help="The line's code."),
    number: str = typer.Option(..., "--number", help="The caller number it may present."),
    purpose: str = typer.Option(
        ..., "--purpose", help="customer_service, notification, consented_follow_up."
    ),
    undertaking_ref: str | None = typer.Option(
        None, "--undertaking-ref", help="承诺书 reference (outbound)."
    ),
    undertaking_signed_on: str | None = typer.Option(None, "--undertaking-signed-on", help="YYYY-MM-DD."),
    undertaking_signatory: str | None = typer.Option(None, "--undertaking-signatory", help="Who signed it."),
) -> None:
    """Let a line present a number; inbound-only unless an undertaking (承诺书) is recorded."""
    undertaking = actions.parse_undertaking(undertaking_ref, undertaking_signed_on, undertaking_signatory)
    changed = actions.assign_number(
        runtime(), cli_actor(), line=line, number=number, purpose=purpose, undertaking=undertaking
    )
    direction = "outbound" if undertaking else "inbound-only"
    console.print(f"{number} on {line}: {direction}" + ("" if changed else " (unchanged)"))


@ledger_app.command("remove-number")
def ledger_remove_number(
    *,
    line: str = typer.Option(..., "--line", help="The line's code."),
    number: str = typer.Option(..., "--number", help="The caller number to take off the line."),
) -> None:
    """Take a number off a line."""
    actions.remove_number(runtime(), cli_actor(), line=line, number=number)
    console.print(f"{number} removed from {line}")


@ledger_app.command("list")
def ledger_list(
    *,
    line: str | None = typer.Option(None, "--line", help="Only this line."),
    enterprise: str | None = typer.Option(None, "--enterprise", help="Only this enterprise (USCC)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """The ledger: line, number, purpose, direction, undertaking."""
    with runtime().sessions() as session:
        rows = [r.as_dict() for r in queries.ledger(session, line=line, enterprise=enterprise)]
    if as_json:
        emit_json(rows)
        return
    table = Table("line", "enterprise", "number", "purpose", "direction", "undertaking")
    for r in rows:
        table.add_row(
            r["line"], r["enterprise"], r["number"], r["purpose"], r["direction"], r["undertaking_ref"]
        )
    console.print(table)


@ledger_app.command("import")
def ledger_import(
    path: Path = typer.Argument(..., help="CSV with the columns of `ledger export`."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Import a ledger CSV (all rows or none; the first bad row is named)."""
    result = actions.import_csv(runtime(), cli_actor(), _read(path, "FILE"))
    if as_json:
        emit_json(result.as_dict())
    else:
        console.print(
            f"{result.rows} rows: {result.lines_changed} lines and {result.numbers_changed} numbers changed"
        )


@ledger_app.command("export")
def ledger_export(
    enterprise: str | None = typer.Option(None, "--enterprise", help="Only this enterprise (USCC)."),
) -> None:
    """Print the ledger as CSV."""
    with runtime().sessions() as session:
        sys.stdout.write(queries.export_csv(session, enterprise=enterprise))


@app.command("check")
def check(
    *,
    caller: str = typer.Option(..., "--caller", help="The presented caller number."),
    callee: str = typer.Option(..., "--callee", help="The called number."),
    origin: str = typer.Option(
        ...,
        "--origin",
        help="enterprise_line, domestic_interconnect, international_gateway or roaming_subscriber.",
    ),
    line: str | None = typer.Option(None, "--line", help="The enterprise line the call came from."),
    header_file: Path | None = typer.Option(
        None, "--identity-header", help="The call's Identity header(s), one per line, if it carried any."
    ),
    cert: Path | None = typer.Option(
        None, "--cert", help="The signer's certificate (with --identity-header)."
    ),
    trust: list[Path] = typer.Option([], "--trust", help="Trusted CA certificate(s); repeatable."),
    now: int | None = typer.Option(None, "--now", min=0, max=MAX_EPOCH, help="Call time (epoch seconds)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """The caller-authentication decision for a call: spoofing checks against the ledger, then the
    Identity headers when given (block with caller_auth_failed, warn, or allow); and the
    attestation a signer would use for the caller on that line."""
    headers: list[str] = []
    verifier = Verifier(LocalCertificateStore(), None)
    if header_file is not None:
        if cert is None:
            fail("--identity-header needs --cert (the certificate that signed it)")
        headers = _header_lines(_read(header_file, "--identity-header"))
        try:
            store = LocalCertificateStore()
            store.serve_for_any_url(load_certificate_files([cert]))
            trust_store = TrustStore.from_files(trust) if trust else None
        except (OSError, CertificateFetchError, UntrustedCertificate) as exc:
            fail(f"certificates: {exc}")
        verifier = Verifier(store, trust_store, require_tn_auth_list=trust_store is not None)
    with runtime().sessions() as session:
        service = CallerAuthentication.load(session, verifier)
    screened = service.screen(
        Call(caller, callee, model.Origin.parse(origin, "origin"), line, tuple(headers)), now=_now(now)
    )
    out = screened.as_dict()
    with contextlib.suppress(InvalidInput):  # a caller ID that is no number gets no attestation
        attestation = model.decide_attestation(service.snapshot, line, canonical_tn(caller, "caller"))
        out["attest"] = attestation.level.value
        out["attest_reason"] = attestation.reason
    if as_json:
        emit_json(out)
    else:
        console.print(f"{out['outcome']}: {out['code']} — {out['explanation']}")
