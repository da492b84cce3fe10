"""The audit trail: append-only rows in an HMAC hash chain keyed outside the database.

Public: ``configure``, ``record`` (the one function every writer calls), ``write_checkpoint``,
``read_checkpoints``, ``verify_chain``; the ``checkpoints`` module.

Signed checkpoints of the head, appended to a file outside the database, anchor the chain: a
trail cut short or rewritten behind the last checkpoint no longer verifies.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import AuditChainHead, AuditLog
from models.base import utcnow
from services.audit import checkpoints
from services.audit.checkpoints import Checkpoint, CheckpointLine
from services.errors import Conflict
from services.identity.permissions import Actor

logger = logging.getLogger(__name__)

GENESIS = "0" * 64
#: Out-of-place rows remembered while verifying, to name a reordering.
_AWAITED_CAP = 10_000
_key: bytes | None = None
_checkpoint_key: bytes | None = None
_checkpoint_path: Path | None = None


def configure(key: str, *, checkpoint_key: str | None = None, checkpoint_path: Path | None = None) -> None:
    """Set the chain's HMAC key, and the key and file of its checkpoints (all kept outside the database)."""
    global _key, _checkpoint_key, _checkpoint_path
    if len(key) < 16:
        raise ValueError("AUDIT_HMAC_KEY must be at least 16 characters")
    if checkpoint_key is not None and len(checkpoint_key) < 16:
        raise ValueError("AUDIT_CHECKPOINT_KEY must be at least 16 characters")
    _key = key.encode()
    _checkpoint_key = (checkpoint_key or key).encode()
    _checkpoint_path = checkpoint_path


def _hash(row: AuditLog, prev_hash: str) -> str:
    if _key is None:
        raise RuntimeError("the audit key is not configured: call services.audit.configure()")
    payload = json.dumps(
        {
            "seq": row.seq,
            "at": row.occurred_at.isoformat(),
            "actor_id": row.actor_id,
            "actor": row.actor_name,
            "action": row.action,
            "type": row.object_type,
            "id": row.object_id,
            "outcome": row.outcome,
            "ip": row.ip_address,
            "agent": row.user_agent,
            "details": row.details,
            "prev": prev_hash,
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hmac.new(_key, payload.encode(), hashlib.sha256).hexdigest()


def record(
    session: Session,
    *,
    actor: Actor | None,
    action: str,
    object_type: str = "",
    object_id: object = "",
    outcome: str = "success",
    details: dict[str, object] | None = None,
) -> AuditLog:
    """Append one event to the chain inside the caller's transaction."""
    head = session.scalar(select(AuditChainHead).where(AuditChainHead.id == 1).with_for_update())
    if head is None:
        head = AuditChainHead(id=1, last_seq=0, last_hash=GENESIS)
        session.add(head)
        session.flush()
    row = AuditLog(
        seq=head.last_seq + 1,
        occurred_at=utcnow(),
        actor_id=actor.user_id if actor else None,
        actor_name=(actor.username if actor else "anonymous")[:150],
        action=action,
        object_type=object_type,
        object_id=str(object_id)[:128],
        outcome=outcome,
        ip_address=actor.ip_address if actor else None,
        user_agent=(actor.user_agent or "")[:512] if actor else None,
        details=details or {},
        prev_hash=head.last_hash,
    )
    row.row_hash = _hash(row, head.last_hash)
    session.add(row)
    head.last_seq = row.seq
    head.last_hash = row.row_hash
    session.flush()
    logger.info("audit %s %s %s by %s: %s", action, object_type, row.object_id, row.actor_name,
                outcome)
    return row


def write_checkpoint(session: Session) -> Checkpoint:
    """Append a signed checkpoint of the chain head to the checkpoint file."""
    if _checkpoint_path is None or _checkpoint_key is None:
        raise RuntimeError("the checkpoint file is not configured: call services.audit.configure()")
    head = session.get(AuditChainHead, 1) or AuditChainHead(id=1, last_seq=0, last_hash=GENESIS)
    if head.last_seq:
        last = session.scalar(select(AuditLog.row_hash).where(AuditLog.seq == head.last_seq))
        if last != head.last_hash:
            # Anchoring a head that its rows contradict would vouch for tampering.
            raise Conflict("the chain head does not match its last row: run `finops-dashboard audit verify`")
    checkpoint = Checkpoint(seq=head.last_seq, row_hash=head.last_hash, at=utcnow())
    checkpoints.append(_checkpoint_path, checkpoint, key=_checkpoint_key)
    logger.info("audit checkpoint at row %s written to %s", checkpoint.seq, _checkpoint_path)
    return checkpoint


def read_checkpoints() -> list[CheckpointLine]:
    """Return the lines of the configured checkpoint file (none when there is none)."""
    if _checkpoint_path is None or _checkpoint_key is None:
        return []
    return checkpoints.read(_checkpoint_path, key=_checkpoint_key)


@dataclass(frozen=True)
class ChainReport:
    """What verification found."""

    rows: int
    is_intact: bool
    problems: tuple[str, ...]
    #: Signed checkpoints the chain was compared with.
    checkpoints: int = 0


def _iter_rows(session: Session) -> Iterator[AuditLog]:
    yield from session.scalars(select(AuditLog).order_by(AuditLog.seq).execution_options(yield_per=1000))


def verify_chain(session: Session, *, checkpoints: Sequence[CheckpointLine] = ()) -> ChainReport:
    """Recompute the chain and report any edit, deletion, reordering, insertion or truncation,
    and any row that differs from, or is missing against, a signed checkpoint."""
    problems: list[str] = []
    anchors: dict[int, Checkpoint] = {}
    for line in checkpoints:
        if line.checkpoint is None:
            problems.append(f"checkpoint line {line.line} is not signed with the checkpoint key")
        else:
            anchors[line.checkpoint.seq] = line.checkpoint
    prev_hash, before_prev = GENESIS, ""
    previous_followed = True
    awaited: dict[str, int] = {}  # hash a row named as its predecessor, but not the one before it
    expected_seq = 1
    count = last_seq = 0
    seen_anchors: set[int] = set()
    for row in _iter_rows(session):
        seq = row.seq
        count, last_seq = count + 1, seq
        if seq != expected_seq:
            problems.append(f"row {expected_seq} is missing (found {seq} next)")
            expected_seq = seq
        moved = awaited.pop(row.row_hash, 0)
        if moved:
            problems.append(f"row {moved} is out of order (its place in the chain was after row {seq})")
        follows = row.prev_hash == prev_hash
        if not follows:
            problems.append(f"row {seq} does not follow the row before it")
            if not moved and previous_followed and row.prev_hash == before_prev:
                problems.append(f"row {seq - 1} was inserted (row {seq} follows the row before it)")
            elif len(awaited) < _AWAITED_CAP:
                awaited[row.prev_hash] = seq
        if not hmac.compare_digest(_hash(row, row.prev_hash), row.row_hash):
            problems.append(f"row {seq} was altered")
        anchor = anchors.get(seq)
        if anchor is not None:
            seen_anchors.add(seq)
            if anchor.row_hash != row.row_hash:
                problems.append(f"row {seq} differs from the checkpoint of {anchor.at.isoformat()}")
        before_prev, prev_hash, previous_followed = prev_hash, row.row_hash, follows
        expected_seq += 1
    problems.extend(_against_checkpoints(anchors, seen_anchors, count=count, last_seq=last_seq))
    problems.extend(_against_head(session, count=count, last_hash=prev_hash))
    return ChainReport(rows=count, is_intact=not problems, problems=tuple(problems), checkpoints=len(anchors))


def _against_checkpoints(anchors: dict[int, Checkpoint], seen: set[int], *, count: int,
                         last_seq: int) -> list[str]:
    problems = [f"row {seq}, recorded by the checkpoint of {anchors[seq].at.isoformat()}, is missing"
                for seq in sorted(set(anchors) - seen) if 0 < seq <= last_seq]
    beyond = [seq for seq in anchors if seq > last_seq]
    if beyond:
        newest = anchors[max(beyond)]
        if count == 0:
            problems.append(f"the trail was truncated: it has no rows but the checkpoint of "
                            f"{newest.at.isoformat()} records row {newest.seq}")
        else:
            problems.append(f"the chain was cut: it ends at row {last_seq} but the checkpoint of "
                            f"{newest.at.isoformat()} records row {newest.seq}")
    return problems


def _against_head(session: Session, *, count: int, last_hash: str) -> list[str]:
    head = session.get(AuditChainHead, 1)
    if head is None:
        return ["the chain head is missing"] if count else []
    if head.last_seq != count:
        return [f"the chain ends at row {count} but its head says row {head.last_seq}"]
    if head.last_hash != last_hash:
        return [f"the chain head's hash is not the hash of its last row, row {count}"]
    return []
