"""Caller-authentication verification throughput with a warm certificate cache.

Baseline, measured in the same run on the same tokens: the raw cryptography (OpenSSL) ES256
verification of each signing input, which is the floor cost of any verifier. quietline's figure is
the full verification service: Identity header parsing, token decoding, claim checks, iat
freshness, orig/dest matching, TNAuthList authority and the signature, with the x5u certificate
served once over (mocked) HTTPS with Cache-Control max-age and then taken from the cache.
Single thread, so the rate is per core (CPU seconds of this process, so other load on a shared
machine does not count against it). Target: ≥ 4,000 verifications/s/core. Also reported: the whole
screening step (presentation checks against the ledger, then verification) per call.

    .venv/bin/python benchmarks/bench_callerauth.py [--tokens 20000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from quietline.callerauth import passport as pp
from quietline.callerauth.ca import CertificateAuthority
from quietline.callerauth.certs import HttpsCertificateFetcher, TrustStore
from quietline.callerauth.model import LedgerSnapshot, Origin, Outcome
from quietline.callerauth.service import Call, CallerAuthentication
from quietline.callerauth.verify import Verifier

TARGET_PER_SECOND = 4_000
X5U = "https://cert.example.cn:8443/sp.pem"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=20_000)
    args = parser.parse_args()
    now = datetime.now(UTC).replace(microsecond=0)
    with tempfile.TemporaryDirectory() as tmp:
        ca = CertificateAuthority.init(Path(tmp) / "ca", now=now - timedelta(days=1))
        key, cert = ca.issue(now=now - timedelta(days=1), spc="1234")
    chain_pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (cert, ca.cert))
    requests = 0

    def serve(request: httpx.Request) -> httpx.Response:
        nonlocal requests
        requests += 1
        return httpx.Response(200, content=chain_pem, headers={"cache-control": "max-age=3600"})

    fetcher = HttpsCertificateFetcher(client=httpx.Client(transport=httpx.MockTransport(serve)))
    verifier = Verifier(fetcher, TrustStore([ca.cert]))
    iat = int(now.timestamp())

    calls: list[tuple[str, str, str]] = []
    t0 = time.perf_counter()
    for i in range(args.tokens):
        orig, dest = f"86138{i:08d}", f"86139{i:08d}"
        passport = pp.build(orig=orig, dest=dest, attest="A", x5u=X5U, iat=iat)
        calls.append((pp.identity_header(pp.sign(passport, key), X5U), orig, dest))
    sign_seconds = time.perf_counter() - t0

    # Baseline: the raw ES256 verification of the same signing inputs with cryptography.
    public_key = cert.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    raw_inputs = []
    for header, _, _ in calls:
        decoded = pp.decode(pp.parse_identity_header(header).token)
        raw_inputs.append((decoded.signing_input, pp.raw_to_der(decoded.signature)))
    algorithm = ec.ECDSA(hashes.SHA256())
    t0, c0 = time.perf_counter(), time.process_time()
    for signing_input, signature in raw_inputs:
        public_key.verify(signature, signing_input, algorithm)
    raw_seconds, raw_cpu = time.perf_counter() - t0, time.process_time() - c0

    # quietline, warm cache: one verification fetches x5u, the rest reuse the validated credential.
    assert verifier.verify_identity(calls[0][0], now=now, orig=calls[0][1], dest=calls[0][2]).valid
    t0, c0 = time.perf_counter(), time.process_time()
    valid = 0
    for header, orig, dest in calls:
        valid += verifier.verify_identity(header, now=now, orig=orig, dest=dest).valid
    verify_seconds, verify_cpu = time.perf_counter() - t0, time.process_time() - c0
    assert valid == len(calls), f"only {valid} of {len(calls)} verified"

    # The whole screening step per call: presentation checks against the ledger + verification.
    service = CallerAuthentication(verifier, LedgerSnapshot(), cursor=0)
    screen_calls = [
        Call(orig, dest, Origin.DOMESTIC_INTERCONNECT, identity_headers=(header,))
        for header, orig, dest in calls
    ]
    c0 = time.process_time()
    allowed = sum(service.screen(call, now=now).check.outcome is Outcome.ALLOW for call in screen_calls)
    screen_cpu = time.process_time() - c0
    assert allowed == len(screen_calls), f"only {allowed} of {len(screen_calls)} allowed"

    # Per core = per CPU-second of this (single-threaded) process, so that other work on a shared
    # machine does not count against it; wall-clock rates are reported alongside.
    quietline_rate = len(calls) / verify_cpu
    raw_rate = len(raw_inputs) / raw_cpu
    print(
        json.dumps(
            {
                "benchmark": "callerauth_verify_warm_cache",
                "tokens": len(calls),
                "x5u_fetches": requests,
                "quietline_verify_per_cpu_s": round(quietline_rate),
                "quietline_verify_per_wall_s": round(len(calls) / verify_seconds),
                "baseline": "cryptography ES256 verify (raw)",
                "baseline_verify_per_cpu_s": round(raw_rate),
                "baseline_verify_per_wall_s": round(len(raw_inputs) / raw_seconds),
                "quietline_vs_baseline": round(quietline_rate / raw_rate, 3),
                "screening_step_per_cpu_s": round(len(screen_calls) / screen_cpu),
                "sign_per_s": round(len(calls) / sign_seconds),
                "target_per_s_per_core": TARGET_PER_SECOND,
                "meets_target": quietline_rate >= TARGET_PER_SECOND,
                "threads": 1,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
