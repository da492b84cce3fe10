"""Domain exceptions; the web edge maps each to a status code and a friendly message."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a user may be shown."""

    status_code = 400

    def __init__(self, message: str, *, details: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class InvalidInput(DomainError):
    status_code = 422


class MalformedInput(DomainError):
    """A request that is not of the shape any operation takes (not a value that fails a rule)."""

    status_code = 400


class NotFound(DomainError):
    status_code = 404


class PermissionDenied(DomainError):
    status_code = 403


class Conflict(DomainError):
    status_code = 409


class AuthenticationFailed(DomainError):
    status_code = 401


class RateLimited(DomainError):
    status_code = 429


class ProgramUnavailable(DomainError):
    """An allow-listed program is not installed on this server (an operator's matter)."""

    status_code = 503
