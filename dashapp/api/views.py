"""Saved view operations: the cost explorer's views kept by name, private or shared."""

from __future__ import annotations

from flask import Response, url_for
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, ConfigDict, Field

from callbacks.context import current_actor
from dashapp.api.problems import MAX_ID, SECURITY, WRITE_RESPONSES, NoQuery, QueryModel, json_response, operation_id
from services import database, views
from services.costs.explorer import ExplorerState

bp = APIBlueprint("views", __name__, abp_tags=[Tag(name="views", description="Saved views of the cost explorer")],
                  abp_security=SECURITY, operation_id_callback=operation_id, abp_responses=WRITE_RESPONSES)


class ViewPath(BaseModel):
    view_id: int = Field(ge=1, le=MAX_ID)


class ViewListQuery(QueryModel):
    limit: int = Field(default=50, ge=1, le=views.saved.MAX_LIMIT)
    offset: int = Field(default=0, ge=0, le=views.saved.MAX_OFFSET)


class ViewWrite(BaseModel):
    """A view to save: its name, the explorer's state, and whether everyone may open it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=views.saved.NAME_LENGTH, examples=["EC2 by region"])
    state: ExplorerState = Field(description="The explorer's state, as the page's address holds it; {} is the "
                                             "default view", examples=[{"group_by": "region",
                                                                        "filters": {"service": ["Amazon EC2"]}}])
    shared: bool = Field(default=False, description="Everyone signed in may open it (not for auditors)")


def _location(view: views.SavedView) -> str:
    return url_for("api.views.get_view", view_id=view.id)


@bp.get("/views/", responses={200: views.ViewPage})
def list_views(query: ViewListQuery) -> Response:
    """The caller's own saved views plus those others shared, by name, one page at a time."""
    with database.session_scope() as session:
        return json_response(views.list_views(session=session, actor=current_actor(), limit=query.limit,
                                              offset=query.offset))


@bp.post("/views/", responses={201: views.SavedView})
def create_view(query: NoQuery, body: ViewWrite) -> Response:
    """Save the explorer's state under a name, private unless shared (audited)."""
    with database.session_scope() as session:
        view = views.create_view(session=session, actor=current_actor(), name=body.name, state=body.state,
                                 shared=body.shared)
    response = json_response(view, 201)
    response.headers["Location"] = _location(view)
    return response


@bp.get("/views/<int:view_id>/", responses={200: views.SavedView})
def get_view(path: ViewPath, query: NoQuery) -> Response:
    """One saved view: one's own or a shared one."""
    with database.session_scope() as session:
        return json_response(views.get_view(session=session, actor=current_actor(), view_id=path.view_id))


@bp.put("/views/<int:view_id>/", responses={200: views.SavedView})
def update_view(path: ViewPath, query: NoQuery, body: ViewWrite) -> Response:
    """Replace a view's name, state and sharing (its owner, or an admin; audited)."""
    with database.session_scope() as session:
        return json_response(views.update_view(session=session, actor=current_actor(), view_id=path.view_id,
                                               name=body.name, state=body.state, shared=body.shared))


@bp.delete("/views/<int:view_id>/", responses={204: None})
def delete_view(path: ViewPath, query: NoQuery) -> Response:
    """Delete a view (its owner, or an admin; audited)."""
    with database.session_scope() as session:
        views.delete_view(session=session, actor=current_actor(), view_id=path.view_id)
    return Response(status=204)
