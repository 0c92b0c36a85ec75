"""What every portal page reads off the request: the process runtime and the signed-in subscriber."""

from __future__ import annotations

from fastapi import Request

from quietline.api.auth import current_actor
from quietline.platform.actor import Actor
from quietline.platform.runtime import Runtime
from quietline.vocabulary import Role


def runtime_of(request: Request) -> Runtime:
    """The runtime the app was built on (``api.app.create_app``)."""
    runtime: Runtime = request.app.state.runtime
    return runtime


def subscriber_of(request: Request) -> Actor | None:
    """The signed-in subscriber, or None (staff and API keys are not subscribers)."""
    actor = current_actor(request)
    return actor if actor is not None and actor.role is Role.SUBSCRIBER else None
