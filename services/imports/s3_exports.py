"""Cost exports in S3 (CUR 2.0, FOCUS, legacy CUR): find an export's files by prefix or manifest,
and download them to a private folder for the importer.

AWS Data Exports write each billing period under ``<prefix>/<export>/data/BILLING_PERIOD=YYYY-MM/``
with a manifest under ``metadata/``; the manifest's ``dataFiles`` lists the period's files as
``s3://`` URIs (legacy CUR manifests give ``bucket`` and ``reportKeys`` instead).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from services.errors import InvalidInput

SUFFIXES = (".csv.gz", ".csv", ".parquet")
MAX_FILES = 2000
MAX_MANIFEST_BYTES = 5 * 1024 * 1024
BUCKET = r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$"
_KEY_TEXT = r"^[^\x00-\x1f\x7f]*$"


class S3Location(BaseModel):
    """Where an export lies: a bucket and either a key prefix or a manifest's key."""

    model_config = ConfigDict(extra="forbid")
    bucket: str = Field(max_length=63, title="Bucket", description="The export's S3 bucket.")
    prefix: str = Field(default="", max_length=1024, title="Prefix",
                        description="Import every .csv, .csv.gz and .parquet file under this key prefix.")
    manifest_key: str = Field(default="", max_length=1024, title="Manifest key",
                              description="Or import the files a CUR / Data Exports manifest (.json) lists.")

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, value: str) -> str:
        if not re.fullmatch(BUCKET, value):
            raise ValueError("a bucket name: 3 to 63 lowercase letters, digits, dots and hyphens")
        return value

    @field_validator("prefix", "manifest_key")
    @classmethod
    def _key(cls, value: str) -> str:
        if not re.fullmatch(_KEY_TEXT, value):
            raise ValueError("an S3 key holds no control characters (such as a line break)")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> S3Location:
        if bool(self.prefix) == bool(self.manifest_key):
            raise ValueError("give either a prefix or a manifest key, not both and not neither")
        if self.manifest_key and not self.manifest_key.endswith(".json"):
            raise ValueError("manifest_key: the key of a manifest .json file")
        return self

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.manifest_key or self.prefix}"


@dataclass(frozen=True)
class S3Object:
    bucket: str
    key: str
    size: int


def _s3_error(exc: Exception, where: str) -> InvalidInput:
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        words = {
            "NoSuchBucket": f"The bucket of {where} does not exist.",
            "NoSuchKey": f"{where} does not exist.",
            "404": f"{where} does not exist.",
            "AccessDenied": f"The profile may not read {where}: allow s3:ListBucket and s3:GetObject on it.",
            "403": f"The profile may not read {where}: allow s3:ListBucket and s3:GetObject on it.",
        }
        return InvalidInput(words.get(code, f"S3 refused to read {where} ({code})."))
    return InvalidInput(f"S3 could not be reached for {where} ({type(exc).__name__}).")


def _is_cost_file(key: str) -> bool:
    return key.lower().endswith(SUFFIXES) and not key.endswith("/")


def list_export(client: Any, location: S3Location) -> list[S3Object]:
    """Return the export's data files, following every listing page; refuse an empty export."""
    try:
        objects = _from_manifest(client, location) if location.manifest_key else _from_prefix(client, location)
    except (ClientError, BotoCoreError) as exc:
        raise _s3_error(exc, location.describe()) from exc
    if not objects:
        raise InvalidInput(f"No .csv, .csv.gz or .parquet cost file was found at {location.describe()}.")
    if len(objects) > MAX_FILES:
        raise InvalidInput(f"{location.describe()} holds {len(objects):,} files: import at most {MAX_FILES:,} "
                           "at a time (choose a narrower prefix, e.g. one billing period).")
    return objects


def _from_prefix(client: Any, location: S3Location) -> list[S3Object]:
    found = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=location.bucket, Prefix=location.prefix):
        found += [S3Object(location.bucket, item["Key"], int(item["Size"])) for item in page.get("Contents", [])
                  if _is_cost_file(item["Key"])]
    return sorted(found, key=lambda o: o.key)


_S3_URI = re.compile(r"^s3://([a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])/(.+)$")


def _from_manifest(client: Any, location: S3Location) -> list[S3Object]:
    where = location.describe()
    head = client.head_object(Bucket=location.bucket, Key=location.manifest_key)
    if int(head["ContentLength"]) > MAX_MANIFEST_BYTES:
        raise InvalidInput(f"{where} is too large to be a manifest.")
    body = client.get_object(Bucket=location.bucket, Key=location.manifest_key)["Body"].read()
    try:
        manifest = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{where} is not a JSON manifest.") from exc
    if not isinstance(manifest, dict):
        raise InvalidInput(f"{where} is not a JSON manifest.")
    wanted: list[tuple[str, str]] = []
    if isinstance(manifest.get("dataFiles"), list):  # Data Exports (CUR 2.0, FOCUS)
        for uri in manifest["dataFiles"]:
            match = _S3_URI.fullmatch(uri) if isinstance(uri, str) else None
            if match is None:
                raise InvalidInput(f"{where}: dataFiles holds {str(uri)[:200]!r}, not an s3:// URI.")
            wanted.append((match.group(1), match.group(2)))
    elif isinstance(manifest.get("reportKeys"), list):  # legacy CUR
        bucket = manifest.get("bucket") or location.bucket
        if not isinstance(bucket, str) or not re.fullmatch(BUCKET, bucket):
            raise InvalidInput(f"{where}: its bucket is not a bucket name.")
        wanted = [(bucket, key) for key in manifest["reportKeys"] if isinstance(key, str)]
    else:
        raise InvalidInput(f"{where} lists no files: a manifest has dataFiles (Data Exports) or reportKeys (CUR).")
    objects = []
    for bucket, key in wanted:
        if not _is_cost_file(key):
            raise InvalidInput(f"{where} lists {key[:200]!r}: only .csv, .csv.gz and .parquet files are imported.")
        try:
            size = int(client.head_object(Bucket=bucket, Key=key)["ContentLength"])
        except ClientError as exc:
            raise _s3_error(exc, f"s3://{bucket}/{key} (listed in {where})") from exc
        objects.append(S3Object(bucket, key, size))
    return objects


def download(client: Any, objects: list[S3Object], folder: Path, *,
             on_progress: Callable[[int, int], None] | None = None,
             should_stop: Callable[[], bool] | None = None) -> list[Path]:
    """Download each object to ``folder`` (streamed to disk by boto3's managed transfer); return
    the local paths, named so that each keeps its key's last part and its order."""
    total = sum(o.size for o in objects) or 1
    done = 0
    paths = []
    for index, obj in enumerate(objects):
        if should_stop is not None and should_stop():
            break
        target = folder / f"{index:04d}-{obj.key.rsplit('/', 1)[-1][-120:]}"
        try:
            client.download_file(obj.bucket, obj.key, str(target))
        except (ClientError, BotoCoreError) as exc:
            raise _s3_error(exc, f"s3://{obj.bucket}/{obj.key}") from exc
        target.chmod(0o600)
        paths.append(target)
        done += obj.size
        if on_progress is not None:
            on_progress(done, total)
    return paths
