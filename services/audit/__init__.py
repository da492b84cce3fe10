"""The audit trail: append-only rows in an HMAC hash chain keyed outside the database."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import AuditChainHead, AuditLog
from models.base import utcnow
from services.identity.permissions import Actor

logger = logging.getLogger(__name__)

GENESIS = "0" * 64
_key: bytes | None = None


def configure(key: str) -> None:
    """Set the chain's HMAC key (kept outside the database)."""
    global _key
    if len(key) < 16:
        raise ValueError("AUDIT_HMAC_KEY must be at least 16 characters")
    _key = key.encode()


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


@dataclass(frozen=True)
class ChainReport:
    """What verification found."""

    rows: int
    is_intact: bool
    problems: tuple[str, ...]


def _iter_rows(session: Session) -> Iterator[AuditLog]:
    yield from session.scalars(select(AuditLog).order_by(AuditLog.seq).execution_options(yield_per=1000))


def verify_chain(session: Session) -> ChainReport:
    """Recompute the chain and report any edit, deletion, reordering or truncation."""
    problems: list[str] = []
    prev_hash = GENESIS
    expected_seq = 1
    count = 0
    for row in _iter_rows(session):
        count += 1
        if row.seq != expected_seq:
            problems.append(f"row {expected_seq} is missing (found {row.seq} next)")
            expected_seq = row.seq
        if row.prev_hash != prev_hash:
            problems.append(f"row {row.seq} does not follow the row before it")
        if not hmac.compare_digest(_hash(row, row.prev_hash), row.row_hash):
            problems.append(f"row {row.seq} was altered")
        prev_hash = row.row_hash
        expected_seq += 1
    head = session.get(AuditChainHead, 1)
    if head is not None and (head.last_seq != count or head.last_hash != prev_hash):
        problems.append(f"the chain ends at row {count} but its head says row {head.last_seq}")
    if head is None and count:
        problems.append("the chain head is missing")
    return ChainReport(rows=count, is_intact=not problems, problems=tuple(problems))
