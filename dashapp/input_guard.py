"""One check on every request's input before any view sees it: no NUL characters in text, no JSON
nested deeper than a form could need, and Dash callback bodies of the shape Dash sends.

PostgreSQL cannot store a NUL character and answers with an error the views would turn into a 500;
a body nested thousands deep exhausts the recursion of whatever walks it; a callback body without
its keys makes Dash itself fail. Each is refused here with a 4xx that names the field.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Flask, request

from services.errors import InvalidInput, MalformedInput

MAX_JSON_DEPTH = 64
_DASH_CALLBACK = "/_dash-update-component"


def _nul_field(value: Any, where: str, depth: int = 0) -> str | None:
    """Return the path of the first text holding a NUL, raising MalformedInput when nested too deep."""
    if depth > MAX_JSON_DEPTH:
        raise MalformedInput(f"The JSON body is nested deeper than {MAX_JSON_DEPTH} levels.")
    if isinstance(value, str):
        return where if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            child = f"{where}.{key}" if where else str(key)
            if "\x00" in str(key):
                return child
            found = _nul_field(item, child, depth + 1)
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _nul_field(item, f"{where}[{index}]" if where else f"[{index}]", depth + 1)
            if found:
                return found
    return None


def _json_body() -> Any:
    raw = request.get_data(cache=True)
    if not raw or not request.is_json:
        return None
    try:
        return json.loads(raw)
    except RecursionError as exc:
        raise MalformedInput(f"The JSON body is nested deeper than {MAX_JSON_DEPTH} levels.") from exc
    except ValueError:
        return None  # not JSON at all: the view's own parsing says so


def _check_dash_callback(body: Any) -> None:
    is_shaped = (isinstance(body, dict) and isinstance(body.get("output"), str)
                 and isinstance(body.get("inputs"), list) and isinstance(body.get("changedPropIds", []), list)
                 and isinstance(body.get("state", []), list))
    if not is_shaped:
        raise MalformedInput("A callback request needs a JSON object with 'output', 'inputs' and 'changedPropIds'.")


def check_request() -> None:
    """Refuse a request whose text holds NUL, whose JSON is too deep, or whose callback body is malformed."""
    if request.mimetype == "multipart/form-data" and (None in request.form or None in request.files):
        raise MalformedInput("Every part of a multipart body needs a name (Content-Disposition: form-data; name=...).")
    for source, values in (("query", request.args), ("form", request.form)):
        for key, value in values.items(multi=True):
            if "\x00" in str(key) or (isinstance(value, str) and "\x00" in value):
                field = str(key).replace("\x00", "")
                raise InvalidInput(f"{field}: must not contain a NUL character",
                                   details={"fields": [{"field": field,
                                                        "message": f"the {source} value contains a NUL character"}]})
    if "\x00" in request.path:
        raise InvalidInput("path: must not contain a NUL character")
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    body = _json_body()
    if request.path.endswith(_DASH_CALLBACK) and request.method == "POST":
        _check_dash_callback(body)
    where = _nul_field(body, "") if body is not None else None
    if where is not None:
        field = where or "body"
        raise InvalidInput(f"{field}: must not contain a NUL character",
                           details={"fields": [{"field": field, "message": "the text contains a NUL character"}]})


def init_app(app: Flask) -> None:
    """Check each request's input before its view runs."""
    app.before_request(check_request)

