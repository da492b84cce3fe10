"""/api/v1/*: the JSON API. flask-openapi3 validates each request with its pydantic models and builds
the OpenAPI 3.1 description from them (/api/v1/openapi.json); /api/v1/docs/ browses it.

One module per area (``costs``, ``profiles``, ``tasks``, ``schedules``, ``tag_aliases``, ``views``),
each an APIBlueprint nested in the one here; errors everywhere are ``application/problem+json`` (``problems``).
"""

from __future__ import annotations

import json
from pathlib import Path

import flask_openapi3_swagger
from flask import Response, current_app, request, send_from_directory
from flask_openapi3 import APIBlueprint, OpenAPI
from pydantic import BaseModel, Field
from werkzeug.exceptions import HTTPException

from dashapp.api import costs, profiles, schedules, tag_aliases, tasks, views
from dashapp.api.problems import operation_id, problem, shared_api_limit

PREFIX = "/api/v1"
_SWAGGER = Path(flask_openapi3_swagger.__file__).resolve().parent / "templates" / "swagger"
#: The Swagger UI files the docs page loads, served from the installed package (no CDN).
_DOC_ASSETS = {"swagger-ui.css": "css", "swagger-ui-bundle.js": "js", "swagger-ui-standalone-preset.js": "js"}
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


bp = APIBlueprint("api", __name__, url_prefix=PREFIX, operation_id_callback=operation_id)
for _area in (costs, profiles, tasks, schedules, tag_aliases, views):
    bp.register_api(_area.bp)

_DOCS_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>FinOps Dashboard API</title><link rel="stylesheet" href="{prefix}/docs/assets/swagger-ui.css"></head>
<body><div id="swagger-ui" data-spec-url="{prefix}/openapi.json"></div>
<script src="{prefix}/docs/assets/swagger-ui-bundle.js"></script>
<script src="/static/js/api-docs.js"></script></body></html>"""


class AssetPath(BaseModel):
    name: str = Field(max_length=64)


@bp.get("/openapi.json", doc_ui=False)
def openapi() -> Response:
    """The OpenAPI 3.1 description of this API, built from its pydantic models."""
    app: OpenAPI = current_app  # type: ignore[assignment]  # create_app builds an OpenAPI app
    return Response(json.dumps(app.api_doc), mimetype="application/json")


@bp.get("/docs/", doc_ui=False)
def docs() -> Response:
    """Browse and try the API (Swagger UI, served from this server) with the signed-in session."""
    return Response(_DOCS_PAGE.format(prefix=PREFIX), mimetype="text/html")


@bp.get("/docs/assets/<name>", doc_ui=False)
def docs_asset(path: AssetPath) -> Response:
    """One of Swagger UI's files."""
    folder = _DOC_ASSETS.get(path.name)
    if folder is None:
        return problem(404, "There is no such file.")
    return send_from_directory(_SWAGGER / folder, path.name, max_age=3600)


def unknown_path(unknown: str) -> Response:
    """Answer an address the API does not have: 404, or 405 when only the method is wrong."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    allowed = []
    for method in _METHODS:
        try:
            endpoint, _ = adapter.match(method=method)
        except HTTPException:
            continue
        if endpoint != request.endpoint:
            allowed.append(method)
    if allowed:
        response = problem(405, f"This address accepts {', '.join(allowed)}, not {request.method}.")
        response.headers["Allow"] = ", ".join(allowed)
        return response
    return problem(404, f"The API has no {PREFIX}/{unknown}: see {PREFIX}/openapi.json for what it offers.")


bp.add_url_rule("/<path:unknown>", view_func=unknown_path, methods=list(_METHODS))
#: Routes under the prefix that are not operations of the API, so not in its description.
UNDOCUMENTED = frozenset({"api.openapi", "api.docs", "api.docs_asset", "api.unknown_path"})
shared_api_limit(bp)  # one budget of calls per user across every operation, not one per operation


def init_app(app: OpenAPI) -> None:
    """Register the API on the app."""
    app.register_api(bp)
