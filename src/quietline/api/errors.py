"""User errors as HTTP 4xx with a JSON body naming the field (DESIGN.md "Conventions")."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from quietline.platform.errors import QuietlineError
from quietline.vocabulary import VocabularyError


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(QuietlineError)
    async def _quietline_error(_request: Request, exc: QuietlineError) -> JSONResponse:
        return JSONResponse(status_code=exc.status, content=exc.as_dict())

    @app.exception_handler(VocabularyError)
    async def _vocabulary_error(_request: Request, exc: VocabularyError) -> JSONResponse:
        return JSONResponse(
            status_code=422,
            content={"error": "InvalidInput", "field": exc.field, "message": str(exc)},
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
        return JSONResponse(
            status_code=422,
            content={
                "error": "InvalidInput",
                "field": ".".join(loc) or None,
                "message": str(first.get("msg", "invalid request")),
                "details": [
                    {"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg")}
                    for e in errors
                ],
            },
        )
