"""/exports/*: downloads (job result files), each one checked against the caller's rights and audited."""

from __future__ import annotations

import json
from pathlib import Path

from flask import Blueprint, Response, current_app, send_file

from callbacks.context import current_actor
from services import database
from services.errors import NotFound
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
