"""One way to turn input into a validated model: pydantic, with errors a user can read."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError

from services.errors import InvalidInput

M = TypeVar("M", bound=BaseModel)


def invalid(exc: ValidationError, *, default_field: str = "input") -> InvalidInput:
    """Return an InvalidInput naming the first bad field, with every error in its details."""
    fields = [{"field": ".".join(map(str, e["loc"])) or default_field,
               "message": e["msg"].removeprefix("Value error, ")} for e in exc.errors()]
    return InvalidInput(f"{fields[0]['field']}: {fields[0]['message']}",
                        details={"errors": [f"{f['field']}: {f['message']}" for f in fields], "fields": fields})


def parse(model: type[M], values: object, *, default_field: str = "input") -> M:
    """Validate ``values`` against ``model`` or raise InvalidInput."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise invalid(exc, default_field=default_field) from exc
