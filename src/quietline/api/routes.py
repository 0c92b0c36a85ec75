"""Every API router, included in one place."""

from __future__ import annotations

from fastapi import FastAPI

from quietline.api import accounts, registry
from quietline.api import callerauth as callerauth_api
from quietline.api import complaints as complaints_api
from quietline.api import marks as marks_api
from quietline.api import numbers as numbers_api
from quietline.api import oversight as oversight_api
from quietline.api import screening as screening_api
from quietline.api import traffic as traffic_api


def include_all(app: FastAPI) -> None:
    """Each context's router module is added here."""
    accounts.install(app)  # the accounts router and the 401 challenge handler
    app.include_router(numbers_api.router)
    app.include_router(registry.router)
    app.include_router(complaints_api.router)
    app.include_router(callerauth_api.router)
    marks_api.install(app)  # the marks router and the reputation look-up's cached fast path
    app.include_router(oversight_api.router)
    screening_api.install(app)  # the screening router and the engine's shutdown
    app.include_router(traffic_api.router)
