"""The data page's callbacks: a profile is chosen first, and a refusal is shown in the service's words."""

from __future__ import annotations

import pytest
from dash import no_update

from callbacks import data

NEEDS_PROFILE = [
    pytest.param(lambda profile_id: data.test_profile(1, profile_id), "Choose a profile first.", id="test"),
    pytest.param(lambda profile_id: data.collect(1, profile_id), "Choose a profile first.", id="collect"),
    pytest.param(lambda profile_id: data.import_s3(1, profile_id, "bucket", "exports/"),
                 "Choose the profile that may read the bucket.", id="import-s3"),
]


def _alert(shown: object) -> tuple[str, str]:
    return shown.color, shown.children[0]  # type: ignore[attr-defined]


@pytest.mark.parametrize(("press", "words"), NEEDS_PROFILE)
def test_an_action_on_a_profile_asks_for_one_first(press, words):
    assert _alert(press(None)) == ("warning", words)


@pytest.mark.parametrize(("press", "_words"), NEEDS_PROFILE)
def test_an_action_refused_by_its_service_shows_the_refusal(app, press, _words):
    with app.test_request_context():  # nobody signed in: every service refuses
        color, text = _alert(press(1))
    assert color == "danger" and text and "Choose" not in text, text


def test_nothing_happens_before_a_click_or_a_file():
    assert data.test_profile(None, 1) is no_update and data.collect(0, 1) is no_update
    assert data.import_s3(None, 1, "b", "p") is no_update and data.upload(None, "x.csv") is no_update
    assert data.save_profile(None, [], []) is no_update


def test_a_profile_form_that_does_not_validate_names_the_field(app):
    with app.test_request_context():
        color, text = _alert(data.save_profile(1, ["not a name!"], [{"name": "name"}]))
    assert color == "danger" and text.startswith("name:")


def test_the_sources_table_names_the_counted_source_and_those_held_beside_it():
    import datetime as dt

    from layouts import data as layout
    from services.costs.sources import SOURCE_LABELS, AccountSource

    row = AccountSource(billing_period=dt.date(2026, 10, 1), account_id="111111111111", account_name="web",
                        counted=("cost_explorer",), also_held=("aws_finops",))
    table = layout.account_sources_table([row], SOURCE_LABELS)
    assert [table.data[0][column["id"]] for column in table.columns] == [
        "2026-10", "web (111111111111)", "Cost Explorer", "aws-finops"]
    assert [column["name"] for column in table.columns] == ["Month", "Account", "Counted from",
                                                            "Also held, not added"]


def test_with_nothing_to_see_the_sources_table_says_so(app):
    with app.test_request_context():  # nobody signed in: no account is visible
        shown = data.show_account_sources("account-sources")
    assert shown.children == "No cost data yet."


def test_the_tag_aliases_in_force_are_shown_and_a_refused_change_is_explained(app):
    with app.test_request_context():  # nobody signed in: shown as a list, and a change is refused
        shown = data.show_tag_aliases("tag-aliases")
        color, text = _alert(data.save_tag_aliases(1, ["team", "cost-center", "env"],
                                                   [{"name": "team"}, {"name": "cost_center"},
                                                    {"name": "environment"}]))
    assert "environment, Environment, env" in str(shown)
    assert color == "danger" and "permission" in text
    assert data.save_tag_aliases(None, [], []) is no_update
