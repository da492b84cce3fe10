"""The API's shared shapes: RFC 9457 problem answers, request models, money and JSON replies."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Annotated, Any

from flask import Response, current_app, request
from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, ValidationError, WithJsonSchema

from callbacks.context import current_actor
from dashapp.extensions import limiter
from services.errors import DomainError

PROBLEM_MIMETYPE = "application/problem+json"
MAX_ID = 2**31 - 1  # the id columns are 32-bit integers

_MONEY_PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"
#: Money in and out of the API: an exact decimal string, never an exponent ("0", not "0E-11").
Money = Annotated[
    Decimal,
    PlainSerializer(lambda value: format(value, "f"), return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": _MONEY_PATTERN, "examples": ["1234.56"]}),
]


class FieldProblem(BaseModel):
    """One rejected field and why."""

    field: str
    message: str


class Problem(BaseModel):
    """An error answer (RFC 9457): what went wrong, in words, with the fields at fault."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[FieldProblem] = Field(default_factory=list)


#: The calendar the API answers for: cost data begins long after the first and ends before the last.
FIRST_DAY, LAST_DAY = dt.date(2000, 1, 1), dt.date(2999, 12, 31)


def day_field(description: str, **kwargs: Any) -> Any:
    """Return a date field bounded to the calendar the API answers for."""
    return Field(ge=FIRST_DAY, le=LAST_DAY, description=description, **kwargs)


class QueryModel(BaseModel):
    """Base of query-string models: an unknown parameter is refused, not ignored."""

    model_config = ConfigDict(extra="forbid")


class NoQuery(QueryModel):
    """An operation that takes no query parameters (so any parameter is refused)."""


class IdPath(BaseModel):
    """A path holding one object id."""

    id: int = Field(ge=1, le=MAX_ID)


_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}  # create_app registers it as the validation error model


def _problem_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_MIMETYPE: {"schema": _PROBLEM_REF}}}


#: Answers every operation may give besides its success.
COMMON_RESPONSES: dict[int, Any] = {
    400: _problem_response("Malformed request, or an unknown query parameter"),
    401: _problem_response("Not signed in"),
    403: _problem_response("Signed in, but not allowed"),
    404: _problem_response("Not found (or not visible to the caller)"),
    422: _problem_response("Invalid input; the errors name each field"),
    429: _problem_response("Too many calls: the caller's API budget is spent for now"),
    503: _problem_response("A dependency is away; retry after the Retry-After seconds"),
}
#: ... and the operations that change something, which may also meet a conflict.
WRITE_RESPONSES: dict[int, Any] = {**COMMON_RESPONSES, 409: _problem_response("Conflicts with the current state")}
#: How a client signs in: the session cookie of a signed-in browser (after password and TOTP).
SECURITY_SCHEMES = {"session": {"type": "apiKey", "in": "cookie", "name": "finops_session"}}
SECURITY = [{"session": []}]

_TITLES = {400: "Bad request", 401: "Not signed in", 403: "Forbidden", 404: "Not found",
           405: "Method not allowed", 409: "Conflict", 413: "Too large", 422: "Invalid input",
           429: "Too many requests", 500: "Server error", 503: "Temporarily unavailable"}


def operation_id(*, name: str, path: str, method: str) -> str:
    """Name each operation after its view function (list_tasks, create_profile, ...)."""
    return name


def problem(status: int, detail: str, errors: list[FieldProblem] | None = None) -> Response:
    """Return a problem+json answer with this status and message."""
    body = Problem(title=_TITLES.get(status, "Error"), status=status, detail=detail, errors=errors or [])
    return Response(body.model_dump_json(), status=status, mimetype=PROBLEM_MIMETYPE)


_FIELD_PREFIX = re.compile(r"^([A-Za-z_][\w.\[\]-]*): ")


def fields_of(exc: DomainError) -> list[FieldProblem]:
    """Return the fields a domain error names: its validation details, or the field its message begins with."""
    fields = exc.details.get("fields")
    if isinstance(fields, list):
        return [FieldProblem.model_validate(f) for f in fields]
    match = _FIELD_PREFIX.match(exc.message)
    return [FieldProblem(field=match.group(1), message=exc.message[match.end():])] if match else []


def _where(location: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in location) or "body"


def _message(error: Any) -> str:
    return str(error["msg"]).removeprefix("Value error, ")


def validation_problem(exc: ValidationError) -> Response:
    """Answer a request the models refused: 400 for an unknown query parameter, else 422."""
    errors = exc.errors(include_url=False)
    fields = [FieldProblem(field=_where(e["loc"]), message=_message(e)) for e in errors]
    is_unknown_parameter = any(e["type"] == "extra_forbidden" for e in errors) and exc.title.endswith(
        ("Query", "QueryModel"))
    if is_unknown_parameter:
        unknown = sorted(_where(e["loc"]) for e in errors if e["type"] == "extra_forbidden")
        return problem(400, f"Unknown query parameter: {', '.join(unknown)}.", fields)
    first = fields[0]
    return problem(422, f"{first.field}: {first.message}", fields)


def json_response(model: BaseModel | list[Any], status: int = 200) -> Response:
    """Serialise a model (or a list of them) as the operation's JSON answer."""
    if isinstance(model, list):
        payload = "[" + ",".join(m.model_dump_json() for m in model) + "]"
    else:
        payload = model.model_dump_json()
    return Response(payload, status=status, mimetype="application/json")


def rate_limit_key() -> str:
    """Count API calls per signed-in user (per address before sign-in)."""
    actor = current_actor()
    return f"user:{actor.user_id}" if actor.user_id is not None else f"ip:{request.remote_addr}"


#: One budget of calls per user for the whole API, whatever the operation.
shared_api_limit = limiter.shared_limit(lambda: str(current_app.config["RATE_LIMIT_API"]), scope="api",
                                        key_func=rate_limit_key)


def utc_today() -> dt.date:
    """Return today's date in UTC, the calendar the cost data uses."""
    return dt.datetime.now(dt.UTC).date()
