"""Alembic environment: imports every context's tables so autogenerate and ``check`` see them all."""

from __future__ import annotations

import importlib

from alembic import context

from quietline.platform.db import Base, make_engine

#: Every module that declares tables. A new context adds its ORM module here.
MODEL_MODULES = (
    "quietline.platform.audit",
    "quietline.platform.changefeed",
    "quietline.platform.sms",
    "quietline.platform.scheduler",
    "quietline.platform.feedcursor",
    "quietline.numbers.orm",
    "quietline.accounts.orm",
    "quietline.registry.orm",
    "quietline.complaints.orm",
    "quietline.marks.orm",
    "quietline.screening.orm",
    "quietline.callerauth.orm",
    "quietline.traffic.orm",
    "quietline.reactions.orm",
    "quietline.oversight.orm",
)

for name in MODEL_MODULES:
    importlib.import_module(name)

config = context.config
target_metadata = Base.metadata


def run_migrations() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url is not configured"
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations()
