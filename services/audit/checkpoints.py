"""Signed checkpoints of the chain head, appended to a file the database cannot reach.

A checkpoint says: at this time the chain held this many rows and its last row had this hash. It
is signed with the checkpoint key (HMAC-SHA256) and appended, one JSON line each, to a file the
application only ever opens for appending. Whoever can rewrite the database but not that file
cannot shorten the chain or rewrite its history past a checkpoint unnoticed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Checkpoint:
    """The chain's length and last hash at one moment."""

    seq: int
    row_hash: str
    at: dt.datetime


@dataclass(frozen=True)
class CheckpointLine:
    """One line of the checkpoint file: its checkpoint, or None when it is unreadable or unsigned."""

    line: int
    checkpoint: Checkpoint | None


def _mac(key: bytes, seq: int, row_hash: str, at: str) -> str:
    payload = json.dumps({"seq": seq, "hash": row_hash, "at": at}, sort_keys=True, separators=(",", ":"))
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()


def format_line(checkpoint: Checkpoint, *, key: bytes) -> str:
    """Return the signed JSON line of a checkpoint."""
    at = checkpoint.at.isoformat()
    return json.dumps({"seq": checkpoint.seq, "hash": checkpoint.row_hash, "at": at,
                       "mac": _mac(key, checkpoint.seq, checkpoint.row_hash, at)}, sort_keys=True) + "\n"


def parse_line(number: int, text: str, *, key: bytes) -> CheckpointLine:
    """Read one line; a line whose signature does not match the key has no checkpoint."""
    try:
        data = json.loads(text)
        seq, row_hash, at, mac = int(data["seq"]), str(data["hash"]), str(data["at"]), str(data["mac"])
        when = dt.datetime.fromisoformat(at)
    except (ValueError, KeyError, TypeError) as exc:
        logger.warning("checkpoint line %s is unreadable: %s", number, exc)
        return CheckpointLine(number, None)
    if not hmac.compare_digest(_mac(key, seq, row_hash, at), mac):
        return CheckpointLine(number, None)
    return CheckpointLine(number, Checkpoint(seq=seq, row_hash=row_hash, at=when))


def append(path: Path, checkpoint: Checkpoint, *, key: bytes) -> None:
    """Append one signed line and flush it to disk (the file is never opened for rewriting)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, format_line(checkpoint, key=key).encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def read(path: Path, *, key: bytes) -> list[CheckpointLine]:
    """Return every line of the checkpoint file (none when there is no file yet)."""
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as handle:
        return [parse_line(n, text, key=key) for n, text in enumerate(handle, start=1) if text.strip()]
