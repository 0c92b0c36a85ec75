"""The caller-authentication step of call screening, as one object the screening engine holds.

It keeps the ledger snapshot in memory (built once, then patched from the change feed, so nothing
on the per-call path touches SQL) and a verifier with its warm certificate cache, and turns a call
into one ``CallerCheck``: a failed verification or a confirmed spoof blocks (system block,
``caller_auth_failed``), an unsigned call from a risky origin is connected with a warning label,
anything else is connected (DESIGN.md decision order, step 5; REFERENCE.md "Caller authentication").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from quietline.callerauth import model, queries
from quietline.callerauth.verify import Verdict, Verifier
from quietline.platform import changefeed


@dataclass(frozen=True, slots=True)
class Call:
    """What the terminating side knows about a call: the presented caller, the callee, where the
    call entered, the enterprise line (when it came from one) and its SIP Identity headers."""

    caller: str
    callee: str
    origin: model.Origin
    line: str | None = None
    identity_headers: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class Screened:
    check: model.CallerCheck
    verdict: Verdict | None

    def as_dict(self) -> dict[str, object]:
        return {
            **self.check.as_dict(),
            "verification": None if self.verdict is None else self.verdict.as_dict(),
        }


class CallerAuthentication:
    def __init__(self, verifier: Verifier, snapshot: model.LedgerSnapshot, cursor: int) -> None:
        self.verifier = verifier
        self.snapshot = snapshot
        self.cursor = cursor

    @classmethod
    def load(cls, session: Session, verifier: Verifier) -> CallerAuthentication:
        """Read the ledger once; ``refresh`` then follows the change feed from this point."""
        cursor = changefeed.head(session)
        return cls(verifier, queries.snapshot(session), cursor)

    def refresh(self, session: Session) -> int:
        """Apply ledger changes committed since the last refresh; returns the new cursor."""
        self.cursor = queries.follow(session, self.snapshot, self.cursor)
        return self.cursor

    def screen(self, call: Call, *, now: datetime | float) -> Screened:
        presentation = model.check_presentation(
            self.snapshot, caller=call.caller, callee=call.callee, origin=call.origin, line=call.line
        )
        if presentation.outcome is model.Outcome.BLOCK:
            return Screened(presentation, None)  # a confirmed spoof needs no token to be blocked
        verdict = None
        if call.identity_headers:
            verdict = self.verifier.verify_call(
                list(call.identity_headers), now=now, orig=call.caller, dest=call.callee
            )
        return Screened(model.decide(verdict, presentation, call.origin), verdict)
