"""Tag aliases: which tag keys resolve to team, cost centre and environment; admins change them."""

from __future__ import annotations

from flask import Response
from flask_openapi3 import APIBlueprint, Tag

from callbacks.context import current_actor
from dashapp.api.problems import SECURITY, WRITE_RESPONSES, NoQuery, json_response, operation_id
from services import database
from services.costs import tag_aliases

bp = APIBlueprint("tag_aliases", __name__,
                  abp_tags=[Tag(name="tag aliases", description="Tag keys that mean one allocation key")],
                  abp_security=SECURITY, operation_id_callback=operation_id, abp_responses=WRITE_RESPONSES)


@bp.get("/tag-aliases/", responses={200: tag_aliases.TagAliases})
def get_tag_aliases(query: NoQuery) -> Response:
    """The tag aliases in force, first match wins."""
    with database.session_scope() as session:
        return json_response(tag_aliases.get_tag_aliases(session))


@bp.put("/tag-aliases/", responses={200: tag_aliases.TagAliases})
def put_tag_aliases(query: NoQuery, body: tag_aliases.TagAliases) -> Response:
    """Replace the tag aliases (admins); stored costs are resolved again with them, and the change audited."""
    with database.session_scope() as session:
        return json_response(tag_aliases.update_tag_aliases(session, actor=current_actor(), data=body))
