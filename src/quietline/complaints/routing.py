"""Adapters routing needs: facts about numbers (``quietline.numbers``) and the caller-number ledger.

The ledger belongs to ``quietline.callerauth``, a sibling context this package may not import (layer
contract), so it is a protocol here: the entry points (CLI, API) pass callerauth's implementation in,
and a deployment without a ledger routes service numbers by their carrier alone or leaves them for
manual forwarding.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.orm import Session

from quietline.complaints.model import LedgerHolder, NumberFacts


class Resolver(Protocol):
    def facts(self, session: Session, text: str, field: str) -> NumberFacts:
        """Parse ``text`` (raising ``InvalidInput`` naming ``field``) and find its current carrier."""
        ...

    def holder(self, session: Session, e164: str) -> LedgerHolder | None:
        """The enterprise holding ``e164`` in the caller-number ledger, if any."""
        ...


class LedgerLookup(Protocol):
    def __call__(self, session: Session, e164: str) -> LedgerHolder | None: ...


class NumbersResolver:
    """The real resolver: ``quietline.numbers`` for parsing and portability, a ledger lookup if given."""

    def __init__(self, ledger: LedgerLookup | None = None) -> None:
        self._ledger = ledger

    def facts(self, session: Session, text: str, field: str) -> NumberFacts:
        from quietline.numbers import parse
        from quietline.numbers.queries import current_carrier

        number = parse(text, field=field)
        # 携号转网: the portability table decides, never the prefix alone (工信部信管〔2019〕242号).
        current = current_carrier(session, number)
        return NumberFacts(number.e164, number.type, number.original_carrier, current, number.never_block)

    def holder(self, session: Session, e164: str) -> LedgerHolder | None:
        return None if self._ledger is None else self._ledger(session, e164)
