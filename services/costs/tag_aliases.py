"""Tag aliases: which tag keys resolve to each allocation key (team, cost centre, environment).

A visible, editable setting. Applied when costs are loaded (``ingest.replace_period`` resolves
every line's allocation keys with the aliases in force) and re-applied to the stored costs when
an admin changes them, rather than at query time: the allocation rollups that chargeback and
the team views read are grouped by the resolved keys, and resolving tags per query would mean
reading every line's tags on each query instead of a few thousand rollup rows.
"""

from __future__ import annotations

import logging
from typing import Annotated, cast

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from models import AllocationTagAlias
from models.cost_storage import CostFactKey
from services import audit
from services.identity.permissions import Actor, require_role
from services.validation import parse

logger = logging.getLogger(__name__)

#: The aliases in force where an admin has set none (the rule of earlier releases).
DEFAULTS: dict[str, tuple[str, ...]] = {
    "team": ("team", "Team", "owner_team"),
    "cost_center": ("cost-center", "cost_center", "CostCenter", "costcenter"),
    "environment": ("environment", "Environment", "env"),
}
ALLOCATION_KEYS = tuple(DEFAULTS)
#: How long a resolved value may be, per allocation key (the width of its column).
VALUE_LENGTHS = {"team": 64, "cost_center": 64, "environment": 32}

TagKey = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]


class TagAliases(BaseModel):
    """For each allocation key, the tag keys that resolve to it, first match wins."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    team: list[TagKey] = Field(max_length=20)
    cost_center: list[TagKey] = Field(max_length=20)
    environment: list[TagKey] = Field(max_length=20)

    @model_validator(mode="after")
    def _one_meaning_per_key(self) -> TagAliases:
        seen: dict[str, str] = {}
        for allocation_key in ALLOCATION_KEYS:
            for tag_key in getattr(self, allocation_key):
                if tag_key in seen:
                    raise ValueError(f"the tag key '{tag_key}' is listed for {seen[tag_key]} and {allocation_key}"
                                     if seen[tag_key] != allocation_key else
                                     f"the tag key '{tag_key}' is listed twice for {allocation_key}")
                seen[tag_key] = allocation_key
        return self

    def resolve(self, tags: dict[str, str]) -> tuple[str, str, str]:
        """Return the team, cost centre and environment that tags resolve to ("" for none)."""
        if not tags:
            return "", "", ""
        found = []
        for allocation_key in ALLOCATION_KEYS:
            value = next((str(tags[k]) for k in getattr(self, allocation_key) if tags.get(k)), "")
            found.append(value[:VALUE_LENGTHS[allocation_key]])
        return found[0], found[1], found[2]


DEFAULT_ALIASES = TagAliases(**{k: list(v) for k, v in DEFAULTS.items()})


def parse_tag_aliases(values: object) -> TagAliases:
    """Validate aliases or raise InvalidInput naming the field."""
    return parse(TagAliases, values, default_field="aliases")


def get_tag_aliases(session: Session) -> TagAliases:
    """Return the tag aliases in force (the defaults for an allocation key nobody has set)."""
    stored = dict(session.execute(select(AllocationTagAlias.allocation_key, AllocationTagAlias.tag_keys)).all())
    if not stored:
        return DEFAULT_ALIASES
    return TagAliases(**{k: list(stored.get(k, DEFAULTS[k])) for k in ALLOCATION_KEYS})


def update_tag_aliases(session: Session, *, actor: Actor, data: TagAliases) -> TagAliases:
    """Set the tag aliases (admins), record it in the audit trail, and re-apply them to stored costs."""
    require_role(actor, "admin")
    before = get_tag_aliases(session)
    stored = {row.allocation_key: row for row in session.scalars(select(AllocationTagAlias))}
    for allocation_key in ALLOCATION_KEYS:
        keys = list(getattr(data, allocation_key))
        row = stored.get(allocation_key)
        if row is None:
            session.add(AllocationTagAlias(allocation_key=allocation_key, tag_keys=keys, updated_by_id=actor.user_id))
        else:
            row.tag_keys, row.updated_by_id = keys, actor.user_id
    session.flush()
    changed = reapply(session, aliases=data) if data != before else 0
    audit.record(session, actor=actor, action="settings.tag_aliases", object_type="tag_aliases",
                 details={**data.model_dump(), "previous": before.model_dump(), "cost_keys_changed": changed})
    return data


def reapply(session: Session, *, aliases: TagAliases) -> int:
    """Resolve every stored cost key's allocation keys again and, when any changed, rebuild every
    period's rollups (in the caller's transaction); return how many keys changed.

    A key keeps its id (a hash of the values it was stored with): the id only names the key, and a
    later load that meets the same values stores them under their own id, which repeats a key row
    but never changes a sum.
    """
    from services.costs import ingest, rollups

    changes = []
    for key_id, tags, team, cost_center, environment in session.execute(select(
            CostFactKey.id, CostFactKey.tags, CostFactKey.team, CostFactKey.cost_center, CostFactKey.environment)):
        resolved = aliases.resolve(tags or {})
        if resolved != (team, cost_center, environment):
            changes.append({"key_id": key_id, "team": resolved[0], "cost_center": resolved[1],
                            "environment": resolved[2]})
    if not changes:
        return 0
    table = cast(Table, CostFactKey.__table__)
    statement = update(table).where(table.c.id == bindparam("key_id")).values(
        team=bindparam("team"), cost_center=bindparam("cost_center"), environment=bindparam("environment"))
    connection = session.connection()
    for at in range(0, len(changes), 5_000):
        connection.execute(statement, changes[at:at + 5_000])
    for period in rollups.list_billing_periods(session):
        rollups.rebuild_period(session, billing_period=period)
    ingest.bump_data_version(session)
    logger.info("tag aliases re-applied: %s cost keys changed", len(changes))
    return len(changes)
