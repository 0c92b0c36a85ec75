"""The wiring of one process: settings, engine, sessions, clock and adapters, built once.

Entry points (API, web, CLI) build a ``Runtime`` and hand its parts to actions and queries; tests
build one on their own database with fakes where they need them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from quietline.platform.clock import Clock, SystemClock
from quietline.platform.db import make_engine, make_session_factory
from quietline.platform.secrets import load_or_create_secret
from quietline.platform.settings import Settings
from quietline.platform.sms import DevelopmentSmsSender, DisabledSmsSender, SmsSender


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Clock
    sms: SmsSender
    secret: bytes = field(repr=False)

    @classmethod
    def build(
        cls, settings: Settings, *, clock: Clock | None = None, sms: SmsSender | None = None
    ) -> Runtime:
        engine = make_engine(settings.database_url)
        sessions = make_session_factory(engine)
        if sms is None:
            sms = DevelopmentSmsSender(sessions) if settings.uses_development_sms else DisabledSmsSender()
        return cls(
            settings=settings,
            engine=engine,
            sessions=sessions,
            clock=clock or SystemClock(),
            sms=sms,
            secret=load_or_create_secret(settings),
        )

    def close(self) -> None:
        self.engine.dispose()
