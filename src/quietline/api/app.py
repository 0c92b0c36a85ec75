"""The FastAPI application: API under /v1, the Chinese web portal at /, OpenAPI at /openapi.json."""

from __future__ import annotations

import time

from fastapi import FastAPI
from sqlalchemy import text

from quietline import __version__
from quietline.api.errors import install_error_handlers
from quietline.platform import logredact, migrate
from quietline.platform.runtime import Runtime
from quietline.platform.settings import get_settings

SCHEMA_CHECK_SECONDS = 60.0


def create_app(runtime: Runtime | None = None) -> FastAPI:
    """Build the app on a runtime (tests pass their own; ``quietline serve`` builds from settings)."""
    rt = runtime or Runtime.build(get_settings())
    app = FastAPI(
        title="quietline",
        version=__version__,
        description="谢绝来电 registry, consent ledger and the unwanted-call governance built on them.",
    )
    app.state.runtime = rt
    install_error_handlers(app)
    logredact.install()  # numbers never reach the server's logs in clear

    schema_checked: list[tuple[float, bool]] = []

    @app.get("/healthz", tags=["platform"], summary="Liveness and schema check (anyone)")
    def healthz() -> dict[str, object]:
        with rt.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        # Reading the migration scripts costs tens of milliseconds: check the schema at most once a minute.
        now = time.monotonic()
        if not schema_checked or now - schema_checked[-1][0] > SCHEMA_CHECK_SECONDS:
            schema_checked[:] = [(now, migrate.is_current(rt.engine))]
        return {"status": "ok", "version": __version__, "schema_current": schema_checked[-1][1]}

    from quietline.api import routes
    from quietline.web import complaints as complaint_pages
    from quietline.web import oversight as oversight_pages
    from quietline.web import portal, staff
    from quietline.web import traffic as traffic_pages

    routes.include_all(app)
    portal.install(app)
    app.include_router(staff.router)  # staff sign-in (/staff/login) and the staff landing page
    app.include_router(complaint_pages.router)  # 12321: reporter pages and the company inbox
    app.include_router(oversight_pages.router)  # regulator / 12321 centre overview
    app.include_router(traffic_pages.router)  # the carrier's abnormal-traffic report
    return app
