"""The audit trail: append-only rows in an HMAC hash chain keyed outside the database.

Public: ``configure``, ``record`` (the one function every writer calls), ``seal_pending``,
``write_checkpoint``, ``read_checkpoints``, ``verify_chain``; the ``checkpoints`` module.

Most events take their place in the chain at once, under the lock of the one chain head row.
Views (``record(..., defer_chain=True)``) are only appended, with an HMAC of their own, so that
readers never queue on that lock; whoever next holds the head (the next writer that finds it
free, any other event, or the periodic seal) chains them in the order they were written.
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

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from models import AuditChainHead, AuditLog
from models.base import utcnow
from services.audit import checkpoints
from services.audit.checkpoints import Checkpoint, CheckpointLine
from services.errors import Conflict
from services.identity.permissions import Actor

logger = logging.getLogger(__name__)

GENESIS = "0" * 64
#: Rows a writer chains in passing, at most (the periodic seal takes any backlog).
SEAL_IN_PASSING = 500
_SEAL_BATCH = 1000
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


def _digest(payload: dict[str, object]) -> str:
    if _key is None:
        raise RuntimeError("the audit key is not configured: call services.audit.configure()")
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hmac.new(_key, text.encode(), hashlib.sha256).hexdigest()


def _event(row: AuditLog) -> dict[str, object]:
    return {
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
    }


def _hash(row: AuditLog, prev_hash: str | None) -> str:
    return _digest({**_event(row), "seq": row.seq, "prev": prev_hash})


def _event_mac(row: AuditLog) -> str:
    # Marked so that an event's own HMAC can never stand in for a link of the chain.
    return _digest({**_event(row), "event": True})


def _link(row: AuditLog, head: AuditChainHead) -> None:
    row.seq = head.last_seq + 1
    row.prev_hash = head.last_hash
    row.row_hash = _hash(row, head.last_hash)
    head.last_seq, head.last_hash = row.seq, row.row_hash


def _lock_head(session: Session, *, wait: bool) -> AuditChainHead | None:
    """Lock the chain head (creating it on the first event); None when another holds it and not ``wait``."""
    query = (select(AuditChainHead).where(AuditChainHead.id == 1)
             .with_for_update(skip_locked=not wait).execution_options(populate_existing=True))
    if session.get_bind().dialect.name == "sqlite":
        # SQLite has no row locks and reads outside a write transaction: take the database's write
        # lock with a write first (waiting for it), so the head read next is the latest one.
        session.execute(update(AuditChainHead).where(AuditChainHead.id == 1)
                        .values(last_seq=AuditChainHead.last_seq).execution_options(synchronize_session=False))
    head = session.scalar(query)
    if head is None:
        if not wait and session.scalar(select(AuditChainHead.id).where(AuditChainHead.id == 1)) is not None:
            return None  # it exists: someone else is chaining right now
        # Waiting, it may just have been created by a writer that committed since: the insert below
        # then does nothing and the locking read finds it.
        # The first event ever: several writers may create the head at once; one row wins.
        insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        session.execute(insert(AuditChainHead).values(id=1, last_seq=0, last_hash=GENESIS)
                        .on_conflict_do_nothing(index_elements=["id"]))
        head = session.scalar(query)
    return head


def _seal(session: Session, head: AuditChainHead, *, limit: int | None) -> int:
    sealed, after_id = 0, 0
    while limit is None or sealed < limit:
        size = _SEAL_BATCH if limit is None else min(_SEAL_BATCH, limit - sealed)
        batch = list(session.scalars(select(AuditLog).where(AuditLog.seq.is_(None), AuditLog.id > after_id)
                                     .order_by(AuditLog.id).limit(size)))
        for row in batch:
            after_id = row.id
            if not row.event_mac or not hmac.compare_digest(_event_mac(row), row.event_mac):
                # Not written by the application: it stays out of the chain, and verify names it.
                logger.error("audit row id %s awaiting the chain is not the application's: left out", row.id)
                continue
            _link(row, head)
            sealed += 1
        if len(batch) < size:
            break
    session.flush()
    return sealed


def seal_pending(session: Session, *, wait: bool = True, limit: int | None = None) -> int:
    """Chain the rows written without their place yet, in the order they were written; return how many.

    With ``wait=False`` it gives up at once when another transaction holds the chain head (that
    one, or a later one, chains them)."""
    head = _lock_head(session, wait=wait)
    if head is None:
        return 0
    return _seal(session, head, limit=limit)


def record(
    session: Session,
    *,
    actor: Actor | None,
    action: str,
    object_type: str = "",
    object_id: object = "",
    outcome: str = "success",
    details: dict[str, object] | None = None,
    defer_chain: bool = False,
) -> AuditLog:
    """Append one event to the chain inside the caller's transaction.

    ``defer_chain`` (for views, written last in their transaction) appends the row without
    waiting for the chain head: it is chained in passing when the head is free, else soon after
    by the next writer or the periodic seal."""
    row = AuditLog(
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
    )
    row.event_mac = _event_mac(row)
    if defer_chain:
        session.add(row)
        session.flush()
        seal_pending(session, wait=False, limit=SEAL_IN_PASSING)
    else:
        head = _lock_head(session, wait=True)
        assert head is not None  # noqa: S101 - a waiting lock always returns the head
        _seal(session, head, limit=SEAL_IN_PASSING)  # rows written before this one go first
        _link(row, head)
        session.add(row)
        session.flush()
    logger.info("audit %s %s %s by %s: %s", action, object_type, row.object_id, row.actor_name,
                outcome)
    return row


def write_checkpoint(session: Session) -> Checkpoint:
    """Chain what waits, then append a signed checkpoint of the chain head to the checkpoint file."""
    if _checkpoint_path is None or _checkpoint_key is None:
        raise RuntimeError("the checkpoint file is not configured: call services.audit.configure()")
    head = _lock_head(session, wait=True)
    assert head is not None  # noqa: S101 - a waiting lock always returns the head
    _seal(session, head, limit=None)
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
    #: Rows written by the application that still wait for their place in the chain.
    pending: int = 0
    #: Signed checkpoints the chain was compared with.
    checkpoints: int = 0


def _iter_rows(session: Session) -> Iterator[AuditLog]:
    yield from session.scalars(select(AuditLog).where(AuditLog.seq.is_not(None)).order_by(AuditLog.seq)
                               .execution_options(yield_per=1000))


def _iter_pending(session: Session) -> Iterator[AuditLog]:
    yield from session.scalars(select(AuditLog).where(AuditLog.seq.is_(None)).order_by(AuditLog.id)
                               .execution_options(yield_per=1000))


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
    prev_hash: str | None = GENESIS
    before_prev: str | None = None
    previous_followed = True
    awaited: dict[str, int] = {}  # hash a row named as its predecessor, but not the one before it
    expected_seq = 1
    count = last_seq = 0
    seen_anchors: set[int] = set()
    for row in _iter_rows(session):
        seq = row.seq or 0
        count, last_seq = count + 1, seq
        if seq != expected_seq:
            problems.append(f"row {expected_seq} is missing (found {seq} next)")
            expected_seq = seq
        moved = awaited.pop(row.row_hash, 0) if row.row_hash is not None else 0
        if moved:
            problems.append(f"row {moved} is out of order (its place in the chain was after row {seq})")
        follows = row.prev_hash == prev_hash
        if not follows:
            problems.append(f"row {seq} does not follow the row before it")
            if not moved and previous_followed and row.prev_hash == before_prev:
                problems.append(f"row {seq - 1} was inserted (row {seq} follows the row before it)")
            elif row.prev_hash is not None and len(awaited) < _AWAITED_CAP:
                awaited[row.prev_hash] = seq
        if row.row_hash is None or not hmac.compare_digest(_hash(row, row.prev_hash), row.row_hash):
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
    pending = 0
    for row in _iter_pending(session):
        if not row.event_mac or not hmac.compare_digest(_event_mac(row), row.event_mac):
            problems.append(f"the row of id {row.id} awaiting its place in the chain is not the application's")
        else:
            pending += 1
    return ChainReport(rows=count, is_intact=not problems, problems=tuple(problems), pending=pending,
                       checkpoints=len(anchors))


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


def _against_head(session: Session, *, count: int, last_hash: str | None) -> list[str]:
    head = session.get(AuditChainHead, 1)
    if head is None:
        return ["the chain head is missing"] if count else []
    if head.last_seq != count:
        return [f"the chain ends at row {count} but its head says row {head.last_seq}"]
    if head.last_hash != last_hash:
        return [f"the chain head's hash is not the hash of its last row, row {count}"]
    return []
