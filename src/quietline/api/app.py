"""The FastAPI application: API under /v1, the Chinese web portal at /, OpenAPI at /openapi.json."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import text

from quietline import __version__
from quietline.api.errors import install_error_handlers
from quietline.platform import migrate
from quietline.platform.runtime import Runtime
from quietline.platform.settings import get_settings


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

    @app.get("/healthz", tags=["platform"], summary="Liveness and schema check (anyone)")
    def healthz() -> dict[str, object]:
        with rt.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return {"status": "ok", "version": __version__, "schema_current": migrate.is_current(rt.engine)}

    from quietline.api import routes
    from quietline.web import portal

    routes.include_all(app)
    portal.install(app)
    return app
