"""Links into the pages: the overview's date range from the address."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest

from callbacks.navigation import _linked_range
from services.identity.permissions import Actor, may_open, pages_for
from tests.factories import make_user
from tests.web import dash_headers, sign_in_and_enrol

TODAY = dt.date(2026, 11, 27)


def test_a_link_sets_the_overview_range():
    assert _linked_range(parse_qs("start=2024-09-01&end=2024-10-31"), TODAY) == (dt.date(2024, 9, 1),
                                                                                 dt.date(2024, 10, 31))


@pytest.mark.parametrize("search", [
    "", "start=2024-09-01", "start=2024-10-01&end=2024-09-01", "start=x&end=y", "start=2020-01-01&end=2024-01-01",
    "start=2026-11-01&end=2026-12-31", "start=2024-09-01&end=2024-09-30%0A"])
def test_a_missing_or_wrong_range_falls_back_to_the_default(search):
    assert _linked_range(parse_qs(search), TODAY) is None


ROLES = ("admin", "finance", "engineering", "executive", "auditor")
#: Each page's heading, and the roles that may open it (decided from what each role's services allow).
PAGES = {"/": ("Cost overview", set(ROLES)), "/explorer": ("Cost explorer", set(ROLES)),
         "/jobs": ("Jobs", {"admin", "finance", "engineering", "auditor"}),
         "/data": ("Data sources", {"admin", "engineering"}), "/admin": ("Administration", {"admin"})}
NAV_LABELS = {"/": "Overview", "/explorer": "Cost explorer", "/jobs": "Jobs", "/data": "Data",
              "/admin": "Administration"}


def _walk(node: object) -> Iterator[dict[str, Any]]:
    """Yield every component in a serialised Dash tree."""
    if isinstance(node, list):
        for item in node:
            yield from _walk(item)
    elif isinstance(node, dict):
        if "type" in node and "props" in node:
            yield node
            yield from _walk(node["props"].get("children"))
        else:
            for value in node.values():
                yield from _walk(value)


def _render(client: Any, path: str) -> list[dict[str, Any]]:
    body = {"output": "page-content.children", "outputs": {"id": "page-content", "property": "children"},
            "inputs": [{"id": "url", "property": "pathname", "value": path}], "changedPropIds": [],
            "state": [{"id": "url", "property": "search", "value": ""},
                      {"id": "shared-filters", "property": "data", "value": None}]}
    response = client.post("/_dash-update-component", json=body, headers=dash_headers(client))
    assert response.status_code == 200, response.get_data(as_text=True)
    return list(_walk(json.loads(response.data)))


def _nav_links(tree: list[dict[str, Any]]) -> list[str]:
    return [c["props"]["href"] for c in tree if c["type"] == "NavLink" and c["props"].get("href") != "/auth/logout"]


def _headings(tree: list[dict[str, Any]]) -> list[str]:
    return [c["props"]["children"] for c in tree if c["type"] == "H1"]


@pytest.mark.parametrize("role", ROLES)
def test_the_rule_lists_exactly_the_pages_a_role_may_open(role):
    actor = Actor(user_id=1, username="x", roles=frozenset({role}))
    assert [path for _, path in pages_for(actor)] == [p for p, (_, roles) in PAGES.items() if role in roles]
    assert all(may_open(actor, path) == (role in roles) for path, (_, roles) in PAGES.items())
    assert may_open(actor, "/jobs/7") == may_open(actor, "/jobs")
    assert not may_open(actor, "/nowhere")


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("path", list(PAGES))
def test_each_role_sees_its_pages_in_the_nav_and_only_those_open(client, session, role, path):
    make_user(session, username=f"nav{role}", roles=(role,))
    profile_name = f"secret-profile-{role}"
    from models import AwsProfile
    session.add(AwsProfile(name=profile_name, description="", auth_type="keys", default_regions=["us-east-1"]))
    session.commit()
    sign_in_and_enrol(client, f"nav{role}")
    tree = _render(client, path)
    heading, roles = PAGES[path]
    assert _nav_links(tree) == [p for p, (_, allowed) in PAGES.items() if role in allowed]
    if role in roles:
        assert heading in _headings(tree)
    else:
        assert _headings(tree) == ["Page not found"]
        assert profile_name not in json.dumps(tree)


def test_a_job_page_of_a_role_without_jobs_is_not_found(client, session):
    owner = make_user(session, username="jobowner", roles=("admin",))
    make_user(session, username="boss", roles=("executive",))
    from models import Task
    session.add(Task(kind="rollups.rebuild", owner_id=owner.id, parameters={}, status="queued"))
    session.commit()
    task_id = session.query(Task.id).scalar()
    sign_in_and_enrol(client, "boss")
    assert _headings(_render(client, f"/jobs/{task_id}")) == ["Page not found"]
