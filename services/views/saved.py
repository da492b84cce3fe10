"""Saved views kept in ``dashboard_configs``: one row per view, the page's normalised state in
``filters`` (the column's name is older than views; it holds the whole state, filters and all)."""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from models import DashboardConfig, User
from services import audit
from services.costs import explorer
from services.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from services.identity.permissions import ROLES, Actor
from services.validation import is_storable_id

#: Every signed-in role may save private views.
SAVE_ROLES = frozenset(ROLES)
#: Every role but auditor may share them (auditors are read-only).
SHARE_ROLES = SAVE_ROLES - {"auditor"}
NAME_LENGTH = 128
MAX_LIMIT = 200
MAX_OFFSET = 10**9


@dataclass(frozen=True)
class PageKind:
    """How one page's state is checked, stored and turned back into a link."""

    path: str
    normalise: Callable[[object], dict[str, object]]
    query: Callable[[Mapping[str, object]], str]


def _normalise_explorer(state: object) -> dict[str, object]:
    if isinstance(state, explorer.ExplorerState):
        return explorer.state_to_dict(state)
    if not isinstance(state, Mapping):
        raise InvalidInput("state: give the view's state as an object", details={"field": "state"})
    try:
        return explorer.state_to_dict(explorer.state_from_dict(state))
    except InvalidInput as exc:
        raise _under_state(exc) from exc


def _explorer_query(stored: Mapping[str, object]) -> str:
    return explorer.state_to_query(explorer.state_from_dict(stored))


#: The pages whose views can be saved, by the name stored in ``page``.
PAGES: dict[str, PageKind] = {
    "explorer": PageKind(path="/explorer", normalise=_normalise_explorer, query=_explorer_query),
}


class SavedView(BaseModel):
    """A saved view as a page or the API shows it; ``url`` reopens it."""

    model_config = ConfigDict(frozen=True)

    id: int
    name: str
    state: dict[str, Any]
    shared: bool
    owner: str
    is_mine: bool
    url: str
    created_at: dt.datetime
    updated_at: dt.datetime


class ViewPage(BaseModel):
    """One page of saved views, by name, and how many there are in all."""

    model_config = ConfigDict(frozen=True)

    items: list[SavedView]
    total: int


def _under_state(exc: InvalidInput) -> InvalidInput:
    """Return the error with each field named under ``state.`` (``state.group_by: ...``)."""
    raw = exc.details.get("fields")
    fields = [dict(f) for f in raw] if isinstance(raw, list) else [{"field": "", "message": exc.message}]
    for item in fields:
        name = str(item.get("field") or "")
        item["field"] = "state" if name in ("", "state") else f"state.{name}"
    first = fields[0]
    return InvalidInput(f"{first['field']}: {first['message']}",
                        details={"fields": fields, "errors": [f"{f['field']}: {f['message']}" for f in fields]})


def _page(page: str) -> PageKind:
    kind = PAGES.get(page)
    if kind is None:
        raise InvalidInput(f"page: views of '{page[:64]}' cannot be saved (only {', '.join(PAGES)})",
                           details={"field": "page"})
    return kind


def _clean_name(name: object) -> str:
    """Return the name trimmed, or raise InvalidInput saying what is wrong with it."""
    if not isinstance(name, str):
        raise InvalidInput("name: give the view a name as text", details={"field": "name"})
    cleaned = name.strip()
    if not cleaned:
        raise InvalidInput("name: give the view a name", details={"field": "name"})
    if len(cleaned) > NAME_LENGTH:
        raise InvalidInput(f"name: at most {NAME_LENGTH} characters", details={"field": "name"})
    if any(unicodedata.category(c) == "Cc" for c in cleaned):
        raise InvalidInput("name: control characters (line breaks, tabs ...) are not allowed",
                           details={"field": "name"})
    return cleaned


def _require_saver(actor: Actor) -> int:
    """Return the actor's user id, or raise PermissionDenied for one who may not save views."""
    if actor.user_id is None or not actor.has_role(*SAVE_ROLES):
        raise PermissionDenied("Only a signed-in person with a role may save views.")
    return actor.user_id


def _require_sharer(actor: Actor) -> None:
    if not actor.has_role(*SHARE_ROLES):
        raise PermissionDenied("Auditors are read-only: they may save private views but not share them.")


def _check_unique(session: Session, *, owner_id: int | None, page: str, name: str, actor: Actor,
                  except_id: int | None = None) -> None:
    query = select(DashboardConfig.id).where(DashboardConfig.owner_id == owner_id, DashboardConfig.page == page,
                                             DashboardConfig.name == name)
    if except_id is not None:
        query = query.where(DashboardConfig.id != except_id)
    if session.scalar(query.limit(1)) is not None:
        whose = "You already have" if owner_id == actor.user_id else "Its owner already has"
        raise Conflict(f"{whose} a view named '{name}': choose another name.")


def _owner_name(user: User | None) -> str:
    if user is None:
        return ""
    return user.display_name or user.username


def _read(row: DashboardConfig, owner: User | None, *, actor: Actor) -> SavedView:
    kind = PAGES[row.page]
    state = dict(row.filters or {})
    try:
        query = kind.query(state)
    except InvalidInput:
        query = ""  # a state saved under older rules still opens, as the page's default view
    return SavedView(id=row.id, name=row.name, state=state, shared=row.is_shared, owner=_owner_name(owner),
                     is_mine=actor.user_id is not None and row.owner_id == actor.user_id,
                     url=kind.path + query, created_at=row.created_at, updated_at=row.updated_at)


def _visible_to(actor: Actor) -> ColumnElement[bool]:
    shared = DashboardConfig.is_shared.is_(True)
    if actor.user_id is None:
        return shared
    return shared | (DashboardConfig.owner_id == actor.user_id)


def _find(session: Session, *, actor: Actor, view_id: int) -> DashboardConfig:
    """Return a view the actor may see, or raise NotFound."""
    row = session.get(DashboardConfig, view_id) if is_storable_id(view_id) else None
    if row is None or row.page not in PAGES or not (
            row.is_shared or (actor.user_id is not None and row.owner_id == actor.user_id)
            or actor.has_role("admin")):
        raise NotFound(f"View {view_id} was not found.")
    return row


def _find_editable(session: Session, *, actor: Actor, view_id: int) -> DashboardConfig:
    """Return a view the actor may change, or raise NotFound (unseen) or PermissionDenied (seen)."""
    row = _find(session, actor=actor, view_id=view_id)
    if not (actor.user_id is not None and row.owner_id == actor.user_id) and not actor.has_role("admin"):
        raise PermissionDenied("Only its owner or an admin may change this view.")
    return row


def _owner(session: Session, row: DashboardConfig) -> User | None:
    return session.get(User, row.owner_id) if row.owner_id is not None else None


def list_views(*, session: Session, actor: Actor, page: str = "explorer", limit: int = 50,
               offset: int = 0) -> ViewPage:
    """Return the actor's own views of a page plus those others shared, by name, one page of them."""
    _page(page)
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit: from 1 to {MAX_LIMIT}", details={"field": "limit"})
    if not 0 <= offset <= MAX_OFFSET:
        raise InvalidInput(f"offset: from 0 to {MAX_OFFSET}", details={"field": "offset"})
    where = (DashboardConfig.page == page, _visible_to(actor))
    total = session.scalar(select(func.count()).select_from(DashboardConfig).where(*where)) or 0
    rows = session.execute(
        select(DashboardConfig, User).outerjoin(User, User.id == DashboardConfig.owner_id).where(*where)
        .order_by(func.lower(DashboardConfig.name), DashboardConfig.name, DashboardConfig.id)
        .limit(limit).offset(offset)).all()
    return ViewPage(items=[_read(row, owner, actor=actor) for row, owner in rows], total=total)


def get_view(*, session: Session, actor: Actor, view_id: int) -> SavedView:
    """Return one view: one's own, a shared one, or (admins) any; else NotFound."""
    row = _find(session, actor=actor, view_id=view_id)
    return _read(row, _owner(session, row), actor=actor)


def create_view(*, session: Session, actor: Actor, name: str, state: object, shared: bool = False,
                page: str = "explorer") -> SavedView:
    """Save a page's state under a name (audited); the state is checked and stored normalised."""
    owner_id = _require_saver(actor)
    kind = _page(page)
    cleaned = _clean_name(name)
    stored = kind.normalise(state)
    if shared:
        _require_sharer(actor)
    _check_unique(session, owner_id=owner_id, page=page, name=cleaned, actor=actor)
    row = DashboardConfig(owner_id=owner_id, name=cleaned, page=page, filters=stored, is_shared=bool(shared))
    session.add(row)
    session.flush()
    audit.record(session, actor=actor, action="views.create", object_type="view", object_id=row.id,
                 details={"name": cleaned, "page": page, "shared": row.is_shared, "state": stored})
    return _read(row, _owner(session, row), actor=actor)


def update_view(*, session: Session, actor: Actor, view_id: int, name: str | None = None,
                state: object | None = None, shared: bool | None = None) -> SavedView:
    """Change a view's name, state or sharing (its owner, or an admin; audited); None keeps a field."""
    row = _find_editable(session, actor=actor, view_id=view_id)
    kind = PAGES[row.page]
    cleaned = _clean_name(name) if name is not None else row.name
    stored = kind.normalise(state) if state is not None else dict(row.filters or {})
    if shared and not row.is_shared:
        _require_sharer(actor)
    if cleaned != row.name:
        _check_unique(session, owner_id=row.owner_id, page=row.page, name=cleaned, actor=actor, except_id=row.id)
    before = {"name": row.name, "shared": row.is_shared, "state": dict(row.filters or {})}
    after = {"name": cleaned, "shared": row.is_shared if shared is None else bool(shared), "state": stored}
    row.name, row.is_shared, row.filters = cleaned, bool(after["shared"]), stored
    session.flush()
    audit.record(session, actor=actor, action="views.update", object_type="view", object_id=row.id,
                 details={**after, "page": row.page, "owner_id": row.owner_id,
                          "changed": sorted(k for k in after if after[k] != before[k]),
                          "previous": {k: before[k] for k in before if after[k] != before[k]}})
    return _read(row, _owner(session, row), actor=actor)


def delete_view(*, session: Session, actor: Actor, view_id: int) -> None:
    """Delete a view (its owner, or an admin; audited)."""
    row = _find_editable(session, actor=actor, view_id=view_id)
    audit.record(session, actor=actor, action="views.delete", object_type="view", object_id=row.id,
                 details={"name": row.name, "page": row.page, "shared": row.is_shared, "owner_id": row.owner_id,
                          "state": dict(row.filters or {})})
    session.delete(row)
    session.flush()
