"""What every collector shares: calls and pages with throttling back-off, figures parsed from AWS's text.

Private to ``services.aws``. Clients retry in botocore's own way first (the collectors' client
config); every call also goes through :func:`call` or :func:`read_pages`, which back off and retry on
throttling that outlasted those (Cost Explorer's ``LimitExceededException`` above all), going on
from the page that failed rather than paying for the earlier pages again.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any, cast

from botocore.exceptions import ClientError
from botocore.paginate import TokenEncoder
from sqlalchemy import Table

logger = logging.getLogger(__name__)

THROTTLE_CODES = frozenset({"Throttling", "ThrottlingException", "LimitExceededException",
                            "TooManyRequestsException", "RequestLimitExceeded"})
#: Waits after throttling that botocore's own retries did not absorb; then the call fails.
THROTTLE_BACKOFF_SECONDS: tuple[float, ...] = (2.0, 5.0, 15.0)
MONEY_QUANTUM = Decimal("1E-11")
_PERCENT_QUANTUM = Decimal("0.01")


@dataclass(frozen=True)
class KindOutcome:
    """What one kind wrote, and a remark for the user when it had nothing to do."""

    rows: int
    note: str | None = None



# -- calls and pages ------------------------------------------------------------------------------


def error_code(exc: ClientError) -> str:
    """Return the AWS error code of a failed call."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def _backoff(operation: str, exc: ClientError, attempt: int) -> None:
    """Wait before retrying a throttled call, or re-raise when it is not throttling or too often."""
    if error_code(exc) not in THROTTLE_CODES or attempt >= len(THROTTLE_BACKOFF_SECONDS):
        raise exc
    delay = THROTTLE_BACKOFF_SECONDS[attempt]
    logger.warning("%s throttled (%s); retrying in %s s", operation, error_code(exc), delay)
    time.sleep(delay)


def call(client: Any, operation: str, **params: Any) -> dict[str, Any]:
    """Call one operation, backing off after throttling that botocore's retries did not absorb."""
    attempt = 0
    while True:
        try:
            return dict(getattr(client, operation)(**params))
        except ClientError as exc:
            _backoff(operation, exc, attempt)
            attempt += 1


def read_pages(client: Any, operation: str, page_param: str, *, page_field: str | None = None,
               **params: Any) -> Iterator[dict[str, Any]]:
    """Yield every page of an operation, through botocore's paginator where one exists.

    ``page_param`` names the request's page token, ``page_field`` the answer's when it differs.
    After throttling, wait and go on from the page that failed: pages already read are not asked
    for again (each Cost Explorer page costs money).
    """
    page_field = page_field or page_param
    if not client.can_paginate(operation):
        next_token: str | None = None
        while True:
            page = call(client, operation, **params, **({page_param: next_token} if next_token else {}))
            yield page
            next_token = page.get(page_field)
            if not next_token:
                return
    paginator = client.get_paginator(operation)
    resume: str | None = None
    attempt = 0
    while True:
        config = {"StartingToken": TokenEncoder().encode({page_param: resume})} if resume else {}
        try:
            for page in paginator.paginate(**params, PaginationConfig=config):
                yield page
                resume = page.get(page_field)
                attempt = 0
            return
        except ClientError as exc:
            _backoff(operation, exc, attempt)
            attempt += 1



# -- small conversions -------------------------------------------------------------------------


def as_decimal(value: object) -> Decimal:
    """Parse a figure from its text (a JSON double by its shortest round-trip text)."""
    if value is None or value == "":
        return Decimal(0)
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"AWS sent a figure that is not a number: {value!r}") from exc


def as_money(value: object) -> Decimal:
    """Parse an amount, rounded half-even to the 11 places of the money columns."""
    return as_decimal(value).quantize(MONEY_QUANTUM, rounding=ROUND_HALF_EVEN)


def as_percent(value: object) -> Decimal | None:
    """Parse a percentage to two places; None when AWS sent none."""
    if value is None or value == "":
        return None
    return as_decimal(value).quantize(_PERCENT_QUANTUM, rounding=ROUND_HALF_EVEN)


def as_date(value: object) -> dt.date:
    """Return the UTC date of a timestamp, a date, or an ISO text."""
    if isinstance(value, dt.datetime):
        return (value.astimezone(dt.UTC) if value.tzinfo else value).date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def jsonable(value: object) -> Any:
    """Return plain JSON data (timestamps become text) for a JSON column."""
    return json.loads(json.dumps(value, default=str))


def tag_map(items: Sequence[Mapping[str, Any]] | None) -> dict[str, str]:
    """Turn AWS's list of Key / Value pairs into a mapping."""
    return {str(t["Key"]): str(t.get("Value", "")) for t in items or () if "Key" in t}


def table_of(model: type[Any]) -> Table:
    """Return a model's table, for bulk inserts."""
    return cast(Table, model.__table__)
