"""The data page: AWS profiles (add, test, collect) and cost file imports."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import dash_bootstrap_components as dbc
from dash import dash_table, dcc, html

from layouts import ids

if TYPE_CHECKING:
    from services.aws.profiles import ProfileRead
    from services.costs.sources import AccountSource
    from services.costs.tag_aliases import TagAliases

#: How the data page names each allocation key.
ALLOCATION_LABELS = {"team": "Team", "cost_center": "Cost centre", "environment": "Environment"}

MAX_UPLOAD_MB = 50


def page(*, profiles: Sequence[ProfileRead], can_manage: bool, regions: Sequence[str]) -> list[object]:
    """Return the data page."""
    return [
        html.H1("Data sources", className="h3 mb-3"),
        dbc.Row([
            dbc.Col(profiles_card(profiles, can_manage=can_manage), lg=8),
            dbc.Col([add_profile_card(profiles, regions) if can_manage else html.Div(), import_card(profiles)], lg=4),
        ], className="g-3"),
        dbc.Row([dbc.Col(account_sources_card(), lg=8), dbc.Col(tag_aliases_card(), lg=4)], className="g-3 mt-1"),
    ]


def account_sources_card() -> dbc.Card:
    """Return the card that says which source each account-month is counted from (filled on load)."""
    return dbc.Card([dbc.CardHeader("Where each account's month comes from"), dbc.CardBody([
        html.P("When several sources hold an account's month, only the most detailed counts: CUR 2.0 or "
               "FOCUS over Cost Explorer over aws-finops. The others are kept, not added.", className="small"),
        html.Div(id=ids.ACCOUNT_SOURCES),
    ])], className="shadow-sm")


def tag_aliases_card() -> dbc.Card:
    """Return the card that shows (and lets admins change) which tag keys mean each allocation key."""
    return dbc.Card([dbc.CardHeader("Tag aliases"), dbc.CardBody([
        html.P("Tag keys that mean one allocation key, first match wins: costs tagged with any of them "
               "count for that team, cost centre or environment. A change applies to the costs already "
               "stored.", className="small"),
        html.Div(id=ids.TAG_ALIASES),
        html.Div(id=ids.TAG_ALIASES_MESSAGE, className="mt-2"),
    ])], className="shadow-sm")


def tag_aliases_form(aliases: TagAliases, *, can_edit: bool) -> object:
    """Return the aliases in force: a list, or for admins a form (keys separated by commas)."""
    if not can_edit:
        return html.Dl([item for key, label in ALLOCATION_LABELS.items() for item in (
            html.Dt(label), html.Dd(", ".join(getattr(aliases, key)) or "—", className="small"))], className="mb-0")
    return html.Div([
        *(_field(label, key, dbc.Input(id={"type": ids.TAG_ALIAS_FIELD, "name": key}, maxLength=2000,
                                       value=", ".join(getattr(aliases, key))))
          for key, label in ALLOCATION_LABELS.items()),
        dbc.Button("Save aliases", id=ids.TAG_ALIASES_SAVE, color="primary", size="sm"),
    ])


def account_sources_table(rows: Sequence[AccountSource], labels: dict[str, str]) -> object:
    """Return the account-months with the source counted and the others held."""
    if not rows:
        return dbc.Alert("No cost data yet.", color="light", className="mb-0")

    def named(sources: Sequence[str]) -> str:
        return ", ".join(labels.get(s, s) for s in sources) or "—"

    columns = [{"id": "month", "name": "Month"}, {"id": "account", "name": "Account"},
               {"id": "counted", "name": "Counted from"}, {"id": "also_held", "name": "Also held, not added"}]
    data = [{"month": f"{r.billing_period:%Y-%m}",
             "account": f"{r.account_name} ({r.account_id})" if r.account_name else r.account_id,
             "counted": named(r.counted), "also_held": named(r.also_held)} for r in rows]
    # An organisation holds an account-month per account and month: page it, sortable and filterable.
    return dash_table.DataTable(
        columns=columns, data=data, page_size=SOURCES_PAGE_SIZE, sort_action="native", filter_action="native",
        filter_options={"case": "insensitive", "placeholder_text": "filter"},
        style_table={"overflowX": "auto"},
        style_cell={"fontFamily": "inherit", "fontSize": "0.875rem", "textAlign": "left", "padding": "0.25rem 0.5rem"},
        style_header={"fontWeight": "600"}, style_as_list_view=True)


#: Account-months per page of the sources table.
SOURCES_PAGE_SIZE = 15


def profiles_card(profiles: Sequence[ProfileRead], *, can_manage: bool) -> dbc.Card:
    """Return the profiles table with test and collect actions."""
    if not profiles:
        body: list[object] = [dbc.Alert("No AWS profiles yet." + (" Add one with the form." if can_manage else ""),
                                        color="light", className="mb-0")]
    else:
        body = [
            html.Div(profiles_table(profiles), id=ids.PROFILES_TABLE),
            dbc.Row([
                dbc.Col(dcc.Dropdown(id=ids.PROFILE_SELECT, options=[{"label": p.name, "value": p.id}
                                                                      for p in profiles],
                                     placeholder="Choose a profile"), md=6),
                dbc.Col(dbc.ButtonGroup([
                    dbc.Button("Test connection", id=ids.PROFILE_TEST, color="outline-primary", size="sm"),
                    dbc.Button("Collect now", id=ids.PROFILE_COLLECT, color="primary", size="sm"),
                ]), md=6),
            ], className="g-2 mt-2") if can_manage else html.Div(),
            html.Div(id=ids.PROFILE_ACTION_MESSAGE, className="mt-2"),
        ]
    return dbc.Card([dbc.CardHeader("AWS profiles"), dbc.CardBody(body)], className="shadow-sm")


def profiles_table(profiles: Sequence[ProfileRead]) -> dbc.Table:
    """Return the profiles; secrets never appear, only a hint of the key id."""
    def tested(p: ProfileRead) -> object:
        if p.last_test_ok is None:
            return dbc.Badge("not tested", color="light", text_color="dark")
        return dbc.Badge("ok" if p.last_test_ok else "failed", color="success" if p.last_test_ok else "danger")

    return dbc.Table([
        html.Thead(html.Tr([html.Th(h) for h in ("Name", "Access", "Account", "Regions", "Payer", "Test")])),
        html.Tbody([html.Tr([
            html.Td(p.name),
            html.Td(p.access_key_hint or (f"role {p.role_arn}" if p.role_arn else "—"), className="small"),
            html.Td(p.account_id or "—"),
            html.Td(", ".join(p.default_regions), className="small"),
            html.Td("yes" if p.is_payer else ""),
            html.Td(tested(p)),
        ]) for p in profiles]),
    ], size="sm", hover=True, responsive=True, className="mb-0")


def _field(label: str, name: str, control: object) -> html.Div:
    if isinstance(control, dbc.Input):  # a label around its input names it (its id is not a string)
        return html.Div(html.Label([label, control], className="form-label d-block"), className="mb-2")
    return html.Div([dbc.Label(label), control], className="mb-2")


def add_profile_card(profiles: Sequence[ProfileRead], regions: Sequence[str]) -> dbc.Card:
    """Return the form that adds a profile (keys, or a role assumed from another profile)."""
    def field_id(name: str) -> dict[str, str]:
        return {"type": ids.PROFILE_FORM_FIELD, "name": name}

    return dbc.Card([dbc.CardHeader("Add a profile"), dbc.CardBody([
        _field("Name", "name", dbc.Input(id=field_id("name"), placeholder="prod-payer")),
        _field("Credentials", "auth_type", dbc.RadioItems(id=field_id("auth_type"), value="keys", inline=True,
                                                        options=[{"label": "Access key", "value": "keys"},
                                                                 {"label": "Assume a role", "value": "assume_role"}])),
        _field("Access key id", "access_key_id", dbc.Input(id=field_id("access_key_id"), autoComplete="off")),
        _field("Secret access key", "secret_access_key",
               dbc.Input(id=field_id("secret_access_key"), type="password", autoComplete="new-password")),
        _field("Role ARN", "role_arn", dbc.Input(id=field_id("role_arn"),
                                                 placeholder="arn:aws:iam::123456789012:role/FinOpsReadOnly")),
        _field("Assume the role from", "source_profile_id", dcc.Dropdown(
            id=field_id("source_profile_id"), options=[{"label": p.name, "value": p.id} for p in profiles])),
        _field("External id", "external_id", dbc.Input(id=field_id("external_id"), autoComplete="off")),
        _field("Regions", "default_regions", dcc.Dropdown(id=field_id("default_regions"), multi=True,
                                                          value=["us-east-1"], options=list(regions))),
        dbc.Checkbox(id=field_id("is_payer"), label="Payer (management) account", value=False, className="mb-2"),
        html.P("Secrets are encrypted at once and never shown again.", className="form-text"),
        dbc.Button("Save profile", id=ids.PROFILE_SAVE, color="primary"),
        html.Div(id=ids.PROFILE_MESSAGE, className="mt-2"),
    ])], className="shadow-sm mb-3")


def import_card(profiles: Sequence[ProfileRead]) -> dbc.Card:
    """Return the upload area for CUR 2.0 and FOCUS files, and the form to import an export from S3."""
    return dbc.Card([dbc.CardHeader("Import a cost file"), dbc.CardBody([
        html.P(["CUR 2.0 or FOCUS 1.0–1.2, as .csv, .csv.gz or .parquet, up to "
                f"{MAX_UPLOAD_MB} MB here (larger files: ", html.Code("POST /api/v1/imports/"), ")."],
               className="small"),
        dcc.Upload(id=ids.IMPORT_UPLOAD, children=html.Div(["Drop a file here or ", html.A("choose one")]),
                   max_size=MAX_UPLOAD_MB * 1024 * 1024, multiple=False,
                   className="border border-2 border-secondary-subtle rounded p-4 text-center"),
        html.Hr(),
        html.H2("From S3", className="h6"),
        html.P("An export that AWS Data Exports (CUR 2.0 or FOCUS) or legacy CUR writes to a bucket: "
               "every file under a prefix, or the files its manifest lists.", className="small"),
        dcc.Dropdown(id=ids.IMPORT_S3_PROFILE, options=[{"label": p.name, "value": p.id} for p in profiles],
                     placeholder="Profile that may read the bucket", className="mb-2"),
        dbc.Input(id=ids.IMPORT_S3_BUCKET, placeholder="Bucket, e.g. corp-cost-exports", className="mb-2",
                  maxLength=63),
        dbc.Input(id=ids.IMPORT_S3_PATH, className="mb-2", maxLength=1024,
                  placeholder="Prefix, e.g. cur/daily/data/BILLING_PERIOD=2026-10/, or a manifest's .json key"),
        dbc.Button("Import from S3", id=ids.IMPORT_S3_START, color="primary", size="sm"),
        html.Div(id=ids.IMPORT_MESSAGE, className="mt-2"),
    ])], className="shadow-sm")


def message(text: str, *, color: str, link: tuple[str, str] | None = None) -> dbc.Alert:
    """Return an alert, optionally with a link (e.g. to watch the job it started)."""
    children: list[object] = [text]
    if link:
        children += [" ", dcc.Link(link[0], href=link[1])]
    return dbc.Alert(children, color=color, className="py-2 mb-0")
