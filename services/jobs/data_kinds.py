"""Job kinds that bring data in: collecting a profile's AWS data, importing a cost export (uploaded or in S3)."""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import secrets
import shutil
import tempfile
import typing
from pathlib import Path
from typing import IO, Literal

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field

from services import database
from services.aws import collectors, profiles
from services.errors import InvalidInput
from services.imports import pipeline, s3_exports
from services.jobs.kinds import JobCancelled, JobContext, JobKind, register_kind

logger = logging.getLogger(__name__)

_uploads_root: Path | None = None
UPLOAD_ID = re.compile(r"^[a-f0-9]{32}\.(csv|csv\.gz|parquet)$")
MAX_UPLOAD_BYTES = 512 * 1024 * 1024


def configure(*, uploads_root: Path) -> None:
    """Set where uploads wait for their import job."""
    global _uploads_root
    _uploads_root = uploads_root


# --- collect --------------------------------------------------------------------------------------

CollectKind = Literal["accounts", "costs", "budgets", "inventory", "utilisation", "forecast", "anomalies",
                      "commitments", "rightsizing"]


def _all_kinds() -> list[CollectKind]:
    return list(typing.get_args(CollectKind))


class CollectProfile(BaseModel):
    """Parameters of a collection: one profile, what to collect."""

    model_config = ConfigDict(extra="forbid")
    profile_id: int = Field(title="Profile")
    kinds: list[CollectKind] = Field(default_factory=_all_kinds, min_length=1, title="What to collect")


def _estimate_collect(params: BaseModel) -> int:
    kinds = set(params.kinds)  # type: ignore[attr-defined]
    # Costs: 7 requests a month; a daily refresh reads the open and the last month. The first
    # collection of a profile reads more (its history): approval rules see the usual case.
    estimate = 14 if "costs" in kinds else 0
    return estimate + sum(n for kind, n in (("forecast", 1), ("anomalies", 1), ("commitments", 4),
                                            ("rightsizing", 3)) if kind in kinds)


def _run_collect(ctx: JobContext) -> dict[str, object]:
    params = CollectProfile.model_validate(ctx.parameters)
    with database.session_scope() as session:
        summary = collectors.collect_profile(
            session, actor=ctx.actor, profile_id=params.profile_id, kinds=set(params.kinds),
            today=dt.datetime.now(dt.UTC).date(), endpoint_url=profiles.endpoint_url(), task_id=ctx.task_id,
            on_progress=lambda pct, step: ctx.progress(pct, step))
    ctx.aws_requests = summary.ce_requests + summary.other_requests
    ctx.log(f"Cost Explorer: {summary.ce_requests} billable request(s), {summary.ce_pages} of them follow-up pages: "
            f"USD {summary.ce_cost:.2f}")
    for kind, error in summary.errors.items():
        ctx.log(f"{kind}: {error}")
    result: dict[str, object] = {
        "status": summary.status, "account_id": summary.account_id, "ce_requests": summary.ce_requests,
        "ce_cost_usd": str(summary.ce_cost), "rows_written": summary.rows_written,
        "errors": dict(summary.errors), "notes": dict(summary.notes)}
    if summary.status == "failed":
        raise InvalidInput("Nothing was collected: " + "; ".join(f"{k}: {v}" for k, v in summary.errors.items()))
    return result


register_kind(JobKind(name="collect.profile", label="Collect AWS data for a profile", roles=("admin", "finance"),
                      parameters=CollectProfile, run=_run_collect, estimate_ce_requests=_estimate_collect,
                      profile_ids=lambda p: [p.profile_id]))  # type: ignore[attr-defined]


# --- import -------------------------------------------------------------------------------------

class ImportUpload(BaseModel):
    """Parameters of an import: a file uploaded before the job was submitted."""

    model_config = ConfigDict(extra="forbid")
    upload_id: str = Field(pattern=UPLOAD_ID.pattern, title="Uploaded file")
    file_name: str = Field(default="", max_length=255)


def save_upload(stream: IO[bytes], *, file_name: str) -> str:
    """Store an uploaded cost file privately and return its id (the import job's parameter)."""
    if _uploads_root is None:
        raise InvalidInput("Uploads are not configured on this server.")
    lower = file_name.lower()
    suffix = next((s for s in (".csv.gz", ".csv", ".parquet") if lower.endswith(s)), None)
    if suffix is None:
        raise InvalidInput("file: upload a .csv, .csv.gz or .parquet cost export (CUR 2.0 or FOCUS)")
    upload_id = secrets.token_hex(16) + suffix
    target = _uploads_root / upload_id
    written = 0
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        while chunk := stream.read(1024 * 1024):
            written += len(chunk)
            if written > MAX_UPLOAD_BYTES:
                out.close()
                target.unlink()
                raise InvalidInput(f"file: larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
            out.write(chunk)
    if written == 0:
        target.unlink()
        raise InvalidInput("file: the upload is empty")
    return upload_id


def _import(ctx: JobContext, paths: list[Path], file_name: str | None,
            labels: list[str] | None = None, *, start: int = 1) -> dict[str, object]:
    """Import files as one export, all or nothing, in this job's transaction; progress goes from
    ``start`` to 99 as the import reads them."""
    # The progress is stored through another connection while the import's transaction is open:
    # on SQLite that one holds the write lock until it ends, so there the progress is only logged.
    stored = database.get_engine().dialect.name != "sqlite"
    shown = [start]

    def progress(rows: int, share: float) -> None:
        if ctx.is_cancelled():
            raise JobCancelled()
        percent = start + int(share * (99 - start))
        if stored and percent > shown[0]:
            shown[0] = percent
            ctx.progress(percent, f"Imported {rows:,} rows")
        logger.debug("import of job %s at %s rows (%.0f%%)", ctx.task_id, rows, share * 100)

    # All or nothing: an invalid file raises, the transaction rolls back, nothing changes.
    with database.session_scope() as session:
        result = pipeline.import_files(session, paths=paths, file_name=file_name, actor_id=ctx.actor.user_id,
                                        on_progress=progress, labels=labels)
    ctx.progress(100, f"Imported {result.rows:,} rows ({result.format})")
    return {"format": result.format, "rows": result.rows, "providers": result.providers,
            "billing_periods": [p.isoformat() for p in result.billing_periods]}


def _uploads() -> Path:
    if _uploads_root is None:
        raise InvalidInput("Uploads are not configured on this server.")
    return _uploads_root


def _run_import(ctx: JobContext) -> dict[str, object]:
    params = ImportUpload.model_validate(ctx.parameters)
    path = _uploads() / params.upload_id
    if not path.is_file():
        raise InvalidInput("The uploaded file is no longer here: upload it again.")
    ctx.progress(1, f"Reading {params.file_name or params.upload_id}")
    try:
        return _import(ctx, [path], params.file_name or None)
    finally:
        path.unlink(missing_ok=True)


register_kind(JobKind(name="import.file", label="Import a cost file (CUR 2.0 or FOCUS)",
                      roles=("admin", "finance"), parameters=ImportUpload, run=_run_import))


class ImportS3(s3_exports.S3Location):
    """Parameters of an import from S3: the profile that may read the bucket, and the export."""

    profile_id: int = Field(title="Profile", description="A profile allowed to read the bucket.")


def _run_import_s3(ctx: JobContext) -> dict[str, object]:
    params = ImportS3.model_validate(ctx.parameters)
    uploads = _uploads()
    with database.session_scope() as session:
        credentials = profiles.get_credentials(session, actor=ctx.actor, profile_id=params.profile_id,
                                               purpose="import.s3")
    endpoint = profiles.endpoint_url()
    ctx.progress(1, f"Listing {params.describe()}")
    try:
        client = profiles.boto_session(credentials, endpoint_url=endpoint).client(
            "s3", endpoint_url=endpoint, config=collectors.CLIENT_CONFIG)
    except (ClientError, BotoCoreError) as exc:
        raise InvalidInput(profiles.explain(exc, region=credentials.region)) from exc
    objects = s3_exports.list_export(client, params)
    total = sum(o.size for o in objects)
    ctx.log(f"{len(objects)} file(s), {total:,} bytes, at {params.describe()}")
    folder = Path(tempfile.mkdtemp(prefix="s3-", dir=uploads))
    try:
        paths = s3_exports.download(client, objects, folder, should_stop=ctx.is_cancelled,
                                    on_progress=lambda done, size: ctx.progress(
                                        2 + done * 38 // size, f"Downloaded {done:,} of {size:,} bytes"))
        if ctx.is_cancelled():
            raise JobCancelled()
        ctx.progress(40, f"Importing {len(objects)} file(s)")
        summary = _import(ctx, paths, params.describe(), labels=[o.key for o in objects], start=40)
        return {**summary, "files": len(objects), "bytes": total}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


register_kind(JobKind(name="import.s3", label="Import a cost export from S3 (CUR 2.0 or FOCUS)",
                      roles=("admin", "finance"), parameters=ImportS3, run=_run_import_s3,
                      profile_ids=lambda p: [p.profile_id]))  # type: ignore[attr-defined]
