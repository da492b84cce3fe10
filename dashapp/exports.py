"""/exports/*: downloads (job result files, cost views as CSV or PDF), each one checked against the
caller's rights and audited."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from flask import Blueprint, Response, current_app, request, send_file
from flask_login import current_user
from pydantic import ValidationError

from callbacks.context import current_actor
from dashapp.api.costs import cost_query_from_args
from dashapp.api.problems import fields_of, problem, validation_problem
from services import audit, database, exports
from services.costs import queries
from services.errors import DomainError, NotFound
from services.jobs import lifecycle

bp = Blueprint("exports", __name__, url_prefix="/exports")


@bp.get("/tasks/<int:task_id>/results/<int:result_id>")
def task_result(task_id: int, result_id: int) -> Response:
    """Download one result of a job the caller may see."""
    with database.session_scope() as session:
        result = lifecycle.get_result(session, actor=current_actor(), task_id=task_id, result_id=result_id)
    if result.path is None:
        body = json.dumps(result.data or {}, indent=2, default=str)
        return Response(body, mimetype="application/json",
                        headers={"Content-Disposition": f'attachment; filename="{Path(result.name).name}"'})
    root = Path(current_app.config["FINOPS_SETTINGS"].INSTANCE_DIR).resolve()
    path = Path(result.path).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise NotFound("This result file is no longer available.")
    return send_file(path, mimetype=result.content_type, as_attachment=True, download_name=Path(result.name).name)


def _filters_in_words(query: queries.CostQuery) -> list[tuple[str, str]]:
    words = [("Range", f"{query.start.isoformat()} to {query.end.isoformat()}"),
             ("Grain", {"day": "daily", "month": "monthly", "total": "whole range"}[query.granularity]),
             ("Cost", queries.METRIC_LABELS[query.metric]),
             ("Grouped by", ", ".join(query.group_by) or "nothing (the total)")]
    words += [(f"Filter: {d}", ", ".join(v)) for d, v in query.filters.items()]
    return words


def _export(kind: str) -> Response:
    try:
        query = cost_query_from_args(request.args)
    except ValidationError as exc:
        return validation_problem(exc)
    except DomainError as exc:
        return problem(422, exc.message, fields_of(exc))
    actor = current_actor()
    with database.session_scope() as session:
        result = queries.query_costs(session, actor=actor, query=query)
        currency = queries.currency_of(session, actor=actor, start=query.start, end=query.end,
                                       account_ids=query.filters.get("account", ()))
        audit.record(session, actor=actor, action="costs.export", object_type="costs",
                     details={"format": kind, **query.model_dump(mode="json", exclude_defaults=True),
                              "rows": len(result.rows)})
    name = f"costs_{query.start.isoformat()}_{query.end.isoformat()}.{kind}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"}
    if kind == "csv":
        return Response(exports.costs_csv(result, currency=currency), mimetype="text/csv; charset=utf-8",
                        headers=headers)
    pdf = exports.costs_pdf(result, currency=currency, title="Cost report", filters=_filters_in_words(query),
                            user=getattr(current_user, "display_name", "") or actor.username,
                            generated_at=dt.datetime.now(dt.UTC))
    return Response(pdf, mimetype="application/pdf", headers=headers)


@bp.get("/costs.csv")
def costs_csv() -> Response:
    """The cost query of ``/api/v1/costs/`` (same parameters) as CSV."""
    return _export("csv")


@bp.get("/costs.pdf")
def costs_pdf() -> Response:
    """The cost query of ``/api/v1/costs/`` (same parameters) as a PDF report."""
    return _export("pdf")
