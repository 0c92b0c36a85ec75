"""Who is acting: every write records its actor in the audit log."""

from __future__ import annotations

from dataclasses import dataclass

from quietline.vocabulary import Role


@dataclass(frozen=True, slots=True)
class Actor:
    """An authenticated party. ``subject`` is the subscriber's number, the enterprise's USCC, the
    carrier code, or the operator's name; ``key_id`` names the API key or session used, if any."""

    role: Role
    subject: str
    key_id: str | None = None

    def __str__(self) -> str:
        return f"{self.role.value}:{self.subject}"

    @classmethod
    def operator(cls, name: str = "cli") -> Actor:
        return cls(Role.OPERATOR, name)

    @classmethod
    def system(cls, process: str) -> Actor:
        """Scheduled jobs and the platform itself act as the operator role under a process name."""
        return cls(Role.OPERATOR, f"system:{process}")
