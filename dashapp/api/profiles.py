"""AWS profile operations: list, create, read, change, delete and test; secrets are never returned."""

from __future__ import annotations

from flask import Response
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, Field, RootModel

from callbacks.context import current_actor
from dashapp.api.problems import MAX_ID, SECURITY, WRITE_RESPONSES, NoQuery, json_response, operation_id
from services import database
from services.aws import profiles

bp = APIBlueprint("profiles", __name__, abp_tags=[Tag(name="profiles", description="AWS profiles")],
                  abp_security=SECURITY, operation_id_callback=operation_id, abp_responses=WRITE_RESPONSES)


class ProfilePath(BaseModel):
    profile_id: int = Field(ge=1, le=MAX_ID)


class ProfileList(RootModel[list[profiles.ProfileRead]]):
    """Profiles, by name."""


class ConnectionTestOut(BaseModel):
    ok: bool
    message: str
    account_id: str | None


@bp.get("/profiles/", responses={200: ProfileList})
def list_profiles(query: NoQuery) -> Response:
    """AWS profiles the caller may see."""
    with database.session_scope() as session:
        return json_response(ProfileList(profiles.list_profiles(session, actor=current_actor())))


@bp.post("/profiles/", responses={201: profiles.ProfileRead})
def create_profile(query: NoQuery, body: profiles.ProfileCreate) -> Response:
    """Create a profile (admins); its secrets are encrypted before they are stored."""
    with database.session_scope() as session:
        return json_response(profiles.create_profile(session, actor=current_actor(), data=body), 201)


@bp.get("/profiles/<int:profile_id>/", responses={200: profiles.ProfileRead})
def get_profile(path: ProfilePath, query: NoQuery) -> Response:
    """One profile."""
    with database.session_scope() as session:
        return json_response(profiles.get_profile(session, actor=current_actor(), profile_id=path.profile_id))


@bp.patch("/profiles/<int:profile_id>/", responses={200: profiles.ProfileRead})
def update_profile(path: ProfilePath, query: NoQuery, body: profiles.ProfileUpdate) -> Response:
    """Change a profile (admins): only the fields given change; a secret changes only when given."""
    with database.session_scope() as session:
        return json_response(profiles.update_profile(session, actor=current_actor(), profile_id=path.profile_id,
                                                     data=body))


@bp.delete("/profiles/<int:profile_id>/", responses={204: None})
def delete_profile(path: ProfilePath, query: NoQuery) -> Response:
    """Delete a profile (admins)."""
    with database.session_scope() as session:
        profiles.delete_profile(session, actor=current_actor(), profile_id=path.profile_id)
    return Response(status=204)


@bp.post("/profiles/<int:profile_id>/test/", responses={200: ConnectionTestOut})
def test_profile(path: ProfilePath, query: NoQuery) -> Response:
    """Check the profile's credentials with STS GetCallerIdentity; a failure is explained in words."""
    with database.session_scope() as session:
        result = profiles.test_connection(session, actor=current_actor(), profile_id=path.profile_id)
    return json_response(ConnectionTestOut(ok=result.is_ok, message=result.message, account_id=result.account_id))
