"""Data page: add and test AWS profiles, collect now, import a cost export (upload or S3)."""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Callable
from typing import Any

from dash import ALL, Dash, Input, Output, State, no_update

from callbacks.context import current_actor
from layouts import data as layout
from layouts import ids
from services import database, validation
from services.aws import profiles
from services.costs import sources, tag_aliases
from services.errors import DomainError
from services.jobs import data_kinds, lifecycle

_ROLE_ONLY = ("role_arn", "source_profile_id", "external_id")
_KEYS_ONLY = ("access_key_id", "secret_access_key")


def _queued(started: lifecycle.StartedJob, what: str) -> object:
    view = started.view
    if view.status == "awaiting_approval":
        return layout.message(f"{what} waits for approval: {view.step}.", color="warning",
                              link=("Follow it", f"/jobs/{view.id}"))
    notice = f" {started.notice}" if started.notice else ""
    return layout.message(f"{what} started as job #{view.id}.{notice}", color="success",
                          link=("Watch it", f"/jobs/{view.id}"))


def _explained(act: Callable[[], object]) -> object:
    """Return what ``act`` shows, or the service's refusal in its own words."""
    try:
        return act()
    except DomainError as exc:
        return layout.message(exc.message, color="danger")


def _with_profile(profile_id: int | None, act: Callable[[int], object], *,
                  choose: str = "Choose a profile first.") -> object:
    """Run ``act`` with the chosen profile, or ask for one first; a refusal is explained."""
    if profile_id is None:
        return layout.message(choose, color="warning")
    return _explained(lambda: act(profile_id))


def save_profile(n_clicks: int | None, values: list[Any], field_ids: list[dict[str, str]]) -> object:
    """Create a profile from the form; only the fields of the chosen kind of credentials count."""
    if not n_clicks:
        return no_update
    form = {f["name"]: v for f, v in zip(field_ids, values, strict=True) if v not in (None, "", [])}
    drop = _KEYS_ONLY if form.get("auth_type") == "assume_role" else _ROLE_ONLY
    return _explained(lambda: _create_profile({k: v for k, v in form.items() if k not in drop}))


def _create_profile(form: dict[str, Any]) -> object:
    data = validation.parse(profiles.ProfileCreate, form, default_field="profile")
    with database.session_scope() as session:
        created = profiles.create_profile(session, actor=current_actor(), data=data)
    return layout.message(f"Profile '{created.name}' saved. Test it next.", color="success",
                          link=("Reload the list", "/data"))


def test_profile(n_clicks: int | None, profile_id: int | None) -> object:
    """Check the chosen profile's credentials against STS."""
    if not n_clicks:
        return no_update
    return _with_profile(profile_id, _test_connection)


def _test_connection(profile_id: int) -> object:
    with database.session_scope() as session:
        result = profiles.test_connection(session, actor=current_actor(), profile_id=profile_id)
    return layout.message(result.message, color="success" if result.is_ok else "danger")


def collect(n_clicks: int | None, profile_id: int | None) -> object:
    """Start a collection of the chosen profile's AWS data."""
    if not n_clicks:
        return no_update
    return _with_profile(profile_id, lambda chosen: _submit("collect.profile", {"profile_id": chosen},
                                                            "The collection"))


def _submit(kind: str, parameters: dict[str, Any], what: str) -> object:
    return _queued(lifecycle.start_job(actor=current_actor(), kind=kind, parameters=parameters), what)


def upload(contents: str | None, file_name: str | None) -> object:
    """Keep the uploaded file privately and start its import job."""
    if not contents or not file_name:
        return no_update
    return _explained(lambda: _import_upload(contents, file_name))


def _import_upload(contents: str, file_name: str) -> object:
    lifecycle.check_may_submit(current_actor(), "import.file")
    try:
        raw = base64.b64decode(contents.split(",", 1)[1], validate=True)
    except (IndexError, binascii.Error):
        return layout.message("The file did not arrive intact: try again.", color="danger")
    upload_id = data_kinds.save_upload(io.BytesIO(raw), file_name=file_name)
    return _submit("import.file", {"upload_id": upload_id, "file_name": file_name[:255]},
                   f"The import of {file_name}")


def import_s3(n_clicks: int | None, profile_id: int | None, bucket: str | None, path: str | None) -> object:
    """Start the import of an export in S3: a manifest's key (.json) or a key prefix."""
    if not n_clicks:
        return no_update
    path = (path or "").strip()
    location = {"manifest_key": path} if path.endswith(".json") else {"prefix": path}
    parameters = {"bucket": (bucket or "").strip(), **location}
    return _with_profile(profile_id, lambda chosen: _submit("import.s3", {"profile_id": chosen, **parameters},
                                                            f"The import of s3://{bucket}/{path}"),
                         choose="Choose the profile that may read the bucket.")


def show_account_sources(_loaded: str | None) -> object:
    """Show which source each account-month the user may see is counted from."""
    with database.session_scope() as session:
        rows = sources.list_account_sources(session, actor=current_actor())
    return layout.account_sources_table(rows, sources.SOURCE_LABELS)


def show_tag_aliases(_loaded: str | None) -> object:
    """Show the tag aliases in force; admins get the form that changes them."""
    with database.session_scope() as session:
        aliases = tag_aliases.get_tag_aliases(session)
    return layout.tag_aliases_form(aliases, can_edit=current_actor().has_role("admin"))


def save_tag_aliases(n_clicks: int | None, values: list[str | None], field_ids: list[dict[str, str]]) -> object:
    """Replace the tag aliases with the form's (keys separated by commas)."""
    if not n_clicks:
        return no_update
    form = {f["name"]: [k.strip() for k in (v or "").split(",") if k.strip()]
            for f, v in zip(field_ids, values, strict=True)}
    return _explained(lambda: _update_tag_aliases(form))


def _update_tag_aliases(form: dict[str, list[str]]) -> object:
    data = tag_aliases.parse_tag_aliases(form)
    with database.session_scope() as session:
        tag_aliases.update_tag_aliases(session, actor=current_actor(), data=data)
    return layout.message("Tag aliases saved; stored costs now follow them.", color="success")


def register(app: Dash) -> None:
    """Register the data page's callbacks."""
    field = {"type": ids.PROFILE_FORM_FIELD, "name": ALL}
    app.callback(Output(ids.PROFILE_MESSAGE, "children"), Input(ids.PROFILE_SAVE, "n_clicks"),
                 State(field, "value"), State(field, "id"), prevent_initial_call=True)(save_profile)
    app.callback(Output(ids.PROFILE_ACTION_MESSAGE, "children"), Input(ids.PROFILE_TEST, "n_clicks"),
                 State(ids.PROFILE_SELECT, "value"), prevent_initial_call=True)(test_profile)
    app.callback(Output(ids.PROFILE_ACTION_MESSAGE, "children", allow_duplicate=True),
                 Input(ids.PROFILE_COLLECT, "n_clicks"), State(ids.PROFILE_SELECT, "value"),
                 prevent_initial_call=True)(collect)
    app.callback(Output(ids.IMPORT_MESSAGE, "children"), Input(ids.IMPORT_UPLOAD, "contents"),
                 State(ids.IMPORT_UPLOAD, "filename"), prevent_initial_call=True)(upload)
    app.callback(Output(ids.IMPORT_MESSAGE, "children", allow_duplicate=True), Input(ids.IMPORT_S3_START, "n_clicks"),
                 State(ids.IMPORT_S3_PROFILE, "value"), State(ids.IMPORT_S3_BUCKET, "value"),
                 State(ids.IMPORT_S3_PATH, "value"), prevent_initial_call=True)(import_s3)
    app.callback(Output(ids.ACCOUNT_SOURCES, "children"), Input(ids.ACCOUNT_SOURCES, "id"))(show_account_sources)
    app.callback(Output(ids.TAG_ALIASES, "children"), Input(ids.TAG_ALIASES, "id"))(show_tag_aliases)
    alias_field = {"type": ids.TAG_ALIAS_FIELD, "name": ALL}
    app.callback(Output(ids.TAG_ALIASES_MESSAGE, "children"), Input(ids.TAG_ALIASES_SAVE, "n_clicks"),
                 State(alias_field, "value"), State(alias_field, "id"), prevent_initial_call=True)(save_tag_aliases)
