"""quietline.callerauth: caller-number authentication (主叫鉴权).

STIR/SHAKEN signing and verification (RFC 8225 PASSporT with the RFC 8588 SHAKEN extension, carried
in the RFC 8224 SIP Identity header, with RFC 8226 TNAuthList certificates), a small certificate
authority for tests and pilots, the caller-number ledger that decides attestation, and the spoofing
checks that need no token. Verdicts feed the screening engine (reason ``caller_auth_failed``).

Public modules: ``passport`` (SHAKEN and div tokens, Identity headers), ``verify`` (the
verification service), ``certs`` (certificate fetchers and trust stores), ``tnauth`` (TNAuthList),
``ca`` (the CA), ``model`` (ledger values, attestation, spoofing checks, ``decide``, ``sign_call``),
``actions`` and ``queries`` (the ledger), ``service`` (the screening step: ``CallerAuthentication``).
"""
