"""Errors a user can cause. Entry points turn them into HTTP 4xx with a JSON body naming the field,
or a CLI exit code 2 with one line; never a traceback, never a silent drop (DESIGN.md "Conventions")."""

from __future__ import annotations


class QuietlineError(Exception):
    """Base of every error quietline reports to a user."""

    status = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.message = message
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)

    def as_dict(self) -> dict[str, str | None]:
        return {"error": type(self).__name__, "field": self.field, "message": self.message}


class InvalidInput(QuietlineError):
    """A value that is malformed or out of range."""

    status = 422


class NotFound(QuietlineError):
    status = 404


class Conflict(QuietlineError):
    status = 409


class PermissionDenied(QuietlineError):
    status = 403


class Unauthenticated(QuietlineError):
    status = 401


class RateLimited(QuietlineError):
    status = 429
