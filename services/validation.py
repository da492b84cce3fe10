"""One way to turn input into a validated model: pydantic, with errors a user can read."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError

from services.errors import InvalidInput

M = TypeVar("M", bound=BaseModel)

#: The largest id a row can have: the id columns are 32-bit integers.
MAX_ID = 2**31 - 1


def is_storable_id(value: int) -> bool:
    """Tell whether an id could name a row (a larger one makes PostgreSQL refuse the query)."""
    return 1 <= value <= MAX_ID


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
