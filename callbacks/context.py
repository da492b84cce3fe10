"""Who is asking: the Actor of the current request, for callbacks and the web edge alike."""

from __future__ import annotations

from flask import request
from flask_login import current_user

from services.identity.permissions import Actor


def current_actor() -> Actor:
    """Return the Actor of the current request."""
    user = current_user
    signed_in = bool(user and user.is_authenticated)
    return Actor(
        user_id=user.id if signed_in else None,
        username=user.username if signed_in else "anonymous",
        roles=user.roles if signed_in else frozenset(),
        ip_address=request.remote_addr,
        user_agent=request.user_agent.string[:512] if request.user_agent else None,
    )


def actor_payload() -> dict[str, object]:
    """Return the actor as plain JSON data, to travel into a background job."""
    actor = current_actor()
    return {"user_id": actor.user_id, "username": actor.username, "roles": sorted(actor.roles),
            "ip_address": actor.ip_address, "user_agent": actor.user_agent}


def actor_from_payload(payload: dict[str, object] | None) -> Actor | None:
    """Rebuild the Actor inside a background job; None when no user came along."""
    if not payload or payload.get("user_id") is None:
        return None
    roles = payload.get("roles") or []
    return Actor(user_id=int(payload["user_id"]),  # type: ignore[call-overload]  # JSON int
                 username=str(payload.get("username", "")),
                 roles=frozenset(str(r) for r in roles),  # type: ignore[union-attr]  # JSON list
                 ip_address=payload.get("ip_address"),  # type: ignore[arg-type]  # JSON str
                 user_agent=payload.get("user_agent"))  # type: ignore[arg-type]  # JSON str
