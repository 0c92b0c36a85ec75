"""The server secret used to HMAC one-time codes, session tokens and API keys.

Codes and keys are stored only as HMAC-SHA256 digests keyed with this secret, so a stolen database
alone does not let anyone brute-force six-digit codes offline. ``QUIETLINE_SECRET_KEY`` sets it; when
unset, a random secret is created once under the data directory with owner-only permissions.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets as _secrets

from quietline.platform.settings import Settings


def load_or_create_secret(settings: Settings) -> bytes:
    if settings.secret_key:
        return settings.secret_key.encode()
    path = settings.data_dir / "secret.key"
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = _secrets.token_hex(32).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        handle.write(value)
    return value


def keyed_digest(secret: bytes, *parts: str) -> str:
    """HMAC-SHA256 over the parts (separated unambiguously), hex encoded."""
    message = "\x1f".join(parts).encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def same_digest(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
