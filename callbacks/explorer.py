"""Cost explorer page: every control, click and link changes one state, which the URL holds."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from dash import Dash, Input, Output, State, ctx, no_update

from callbacks.context import current_actor
from layouts import explorer as layout
from layouts import ids
from services import database
from services.costs import explorer
from services.costs.queries import METRIC_LABELS
from services.errors import DomainError

logger = logging.getLogger(__name__)

#: The controls the state is read back into, in the callback's output order.
CONTROLS = (
    (ids.EXPLORER_PRESET, "value"), (ids.EXPLORER_RANGE, "start_date"), (ids.EXPLORER_RANGE, "end_date"),
    (ids.EXPLORER_GRAIN, "value"), (ids.EXPLORER_METRIC, "value"), (ids.EXPLORER_GROUP, "value"),
    (ids.EXPLORER_CHART, "value"), (ids.EXPLORER_COMPARE, "value"), (ids.EXPLORER_SEARCH, "value"),
)
_SIMPLE = {ids.EXPLORER_GRAIN: "granularity", ids.EXPLORER_METRIC: "metric", ids.EXPLORER_GROUP: "group_by",
           ids.EXPLORER_CHART: "chart", ids.EXPLORER_COMPARE: "compare"}


def today() -> dt.date:
    """Today in UTC, the day every range is read against."""
    return dt.datetime.now(dt.UTC).date()


def _with(state: explorer.ExplorerState, **changes: object) -> explorer.ExplorerState:
    """The state with some settings changed, validated again (raises InvalidInput)."""
    return explorer.state_from_dict({**explorer.state_to_dict(state), **changes})


def href(state: explorer.ExplorerState, *, embedded: bool = False) -> str:
    """The explorer's link for a state (kept in the portal's embed mode when it was)."""
    query = explorer.state_to_query(state)
    if embedded:
        query = f"{query}&embed=1" if query else "?embed=1"
    return f"/explorer{query}"


def changed_state(state: explorer.ExplorerState, trigger: str, values: dict[str, Any],
                  keys: list[str]) -> explorer.ExplorerState | None:
    """The state after one control changed or one click, or None when nothing changes."""
    if trigger == ids.EXPLORER_PRESET:
        if values["preset"] == "custom":
            start, end = state.date_range(today())
            return _with(state, preset="custom", start=start.isoformat(), end=end.isoformat(), page=1)
        return _with(state, preset=values["preset"], start=None, end=None, page=1)
    if trigger == ids.EXPLORER_RANGE:
        if not values["start"] or not values["end"]:
            return None  # half-typed: wait for both dates
        return _with(state, preset="custom", start=values["start"][:10], end=values["end"][:10], page=1)
    if trigger in _SIMPLE:
        name = _SIMPLE[trigger]
        value = values[name]
        if name == "compare":
            value = bool(value)
        return _with(state, **{name: value, "page": 1})
    if trigger == ids.EXPLORER_SEARCH:
        return _with(state, search=(values["search"] or "").strip()[:128], page=1)
    if trigger == ids.EXPLORER_GRAPH:
        key = _clicked_key(values, keys)
        return explorer.drill_into(state, key) if key is not None else None
    if trigger == ids.EXPLORER_TABLE:
        return _table_change(state, values)
    if trigger == ids.EXPLORER_FILTER_ADD:
        dimension, chosen = values["filter_dimension"], values["filter_values"] or []
        if not dimension or not chosen:
            return None
        return _with(state, filters={**state.filters, dimension: list(chosen)}, page=1)
    return None


def _clicked_key(values: dict[str, Any], keys: list[str]) -> str | None:
    """The key of a clicked bar or slice (its customdata), or of a clicked legend entry."""
    if ctx.triggered and ctx.triggered[0]["prop_id"].endswith(".restyleData"):
        restyle = values["restyle"]
        # a legend click hides its trace: {"visible": ["legendonly"]}, [trace index]
        if (isinstance(restyle, list) and len(restyle) == 2 and isinstance(restyle[1], list) and len(restyle[1]) == 1
                and isinstance(restyle[0], dict) and restyle[0].get("visible") == ["legendonly"]):
            index = restyle[1][0]
            return keys[index] if isinstance(index, int) and 0 <= index < len(keys) else None
        return None
    points = (values["click"] or {}).get("points") or []
    if not points:
        return None
    custom = points[0].get("customdata")
    return str(custom[0]) if isinstance(custom, list) and custom else None


def _table_change(state: explorer.ExplorerState, values: dict[str, Any]) -> explorer.ExplorerState | None:
    prop = ctx.triggered[0]["prop_id"].rsplit(".", 1)[-1] if ctx.triggered else ""
    if prop == "sort_by":
        sort_by = values["sort_by"] or []
        if not sort_by:
            return _with(state, sort="amount", descending=True, page=1)
        column = {"key": "key", "amount": "amount", "previous": "previous", "change": "change",
                  "change_pct": "change"}.get(sort_by[0].get("column_id"), "amount")
        return _with(state, sort=column, descending=sort_by[0].get("direction") != "asc", page=1)
    if prop == "page_current":
        return _with(state, page=int(values["page_current"] or 0) + 1)
    if prop == "active_cell":
        cell = values["active_cell"] or {}
        rows = values["table_rows"] or []
        row = cell.get("row")
        if cell.get("column_id") == "key" and isinstance(row, int) and 0 <= row < len(rows):
            return explorer.drill_into(state, rows[row].get("_key", ""))
    return None


def explore(search: str | None, current: str | None, preset: str | None, start: str | None, end: str | None,
            granularity: str | None, metric: str | None, group_by: str | None, chart: str | None,
            compare: bool | None, text: str | None, click: dict[str, Any] | None, restyle: object,
            sort_by: list[dict[str, str]] | None, page_current: int | None, active_cell: dict[str, Any] | None,
            _add_filter: int | None, pathname: str | None, keys: list[str] | None, filter_dimension: str | None,
            filter_values: list[str] | None, table_rows: list[dict[str, str]] | None) -> tuple[object, ...]:
    """Turn what changed (a control, a click, the URL) into the next state, and show that state."""
    if pathname is not None and pathname != "/explorer":
        return (no_update,) * _OUTPUTS  # the URL left this page: the router replaces it
    trigger = ctx.triggered_id if isinstance(ctx.triggered_id, str) else None
    # Nothing shown yet (the page was just built): whatever fired, show the state it holds.
    if keys is None:
        trigger = None
    embedded = "embed=1" in (search or "")
    try:
        if trigger == ids.EXPLORER_URL:  # back, forward, or a link inside the page
            if search is None:
                return (no_update,) * _OUTPUTS
            state = explorer.parse_state(search)
            if explorer.state_to_query(state) == current:
                return (no_update,) * _OUTPUTS
        else:
            state = explorer.parse_state(current)
            values = {"preset": preset, "start": start, "end": end, "granularity": granularity, "metric": metric,
                      "group_by": group_by, "chart": chart, "compare": compare, "search": text, "click": click,
                      "restyle": restyle, "sort_by": sort_by, "page_current": page_current,
                      "active_cell": active_cell, "filter_dimension": filter_dimension,
                      "filter_values": filter_values, "table_rows": table_rows}
            if trigger is not None and trigger != ids.EXPLORER_STATE:
                moved = changed_state(state, trigger, values, keys or [])
                if moved is None or explorer.state_to_query(moved) == current:
                    return (no_update,) * _OUTPUTS
                state = moved
    except DomainError as exc:
        return _message(exc.message)
    return show(state, embedded=embedded, search=search)


def _message(text: str) -> tuple[object, ...]:
    """Every output left as it is but the message."""
    return (*((no_update,) * (_OUTPUTS - 2)), layout.message(text), no_update)


def show(state: explorer.ExplorerState, *, embedded: bool, search: str | None) -> tuple[object, ...]:
    """Every output of the page for one state."""
    actor = current_actor()
    day = today()
    try:
        with database.session_scope() as session:
            view = explorer.get_view(session, actor=actor, state=state, today=day)
    except DomainError as exc:
        return _message(exc.message)
    start, end = view.start, view.end
    dimension = explorer.dimension_label(state.group_by)
    labels = {k: explorer.display_key(state.group_by, k, view.names) for k, _ in view.keys}
    query = explorer.state_to_query(state)
    link = href(state, embedded=embedded)
    url_search = link.removeprefix("/explorer")
    trail = explorer.breadcrumbs(state, view.names)
    crumb_links = [href(explorer.climb_to(state, c.depth), embedded=embedded) for c in trail]
    chips = [(explorer.dimension_label(d), ", ".join(explorer.display_key(d, v, view.names) for v in values),
              href(_with(state, filters={k: list(v) for k, v in state.filters.items() if k != d}, page=1),
                   embedded=embedded))
             for d, values in state.filters.items()]
    params = export_params(state, start, end)
    controls = (state.preset, start.isoformat(), end.isoformat(), state.granularity, state.metric, state.group_by,
                state.chart, state.compare, state.search)
    return (
        *controls,
        layout.figure(view, dimension_label=dimension, labels=labels),
        [k for k, _ in view.keys],
        layout.table_data(view),
        view.page_count,
        view.page - 1,
        [{"column_id": state.sort, "direction": "desc" if state.descending else "asc"}],
        layout.table_columns(dimension, compare=state.compare),
        layout.table_total(view),
        layout.summary(view, metric_label=METRIC_LABELS[state.metric]),
        layout.crumbs(trail, crumb_links, current=dimension),
        layout.filter_chips(chips),
        layout.export_href("/exports/costs.csv", params),
        layout.export_href("/exports/costs.pdf", params),
        query,
        url_search if url_search != (search or "") else no_update,
        None,
        explorer.shared_filters(state),
    )


def export_params(state: explorer.ExplorerState, start: dt.date, end: dt.date) -> list[tuple[str, str]]:
    """The cost query parameters (those of /api/v1/costs/) of what the chart shows, every key kept."""
    params = [("start", start.isoformat()), ("end", end.isoformat()), ("granularity", state.granularity),
              ("group_by", state.group_by), ("metric", state.metric)]
    for dimension, values in state.fixed().items():
        params += [(f"filter.{dimension}", v) for v in values]
    return params


_OUTPUTS = len(CONTROLS) + 17


def filter_choices(dimension: str | None, current: str | None) -> list[dict[str, str]]:
    """The values a filter on a dimension may take: those with costs in the view's range."""
    if not dimension:
        return []
    try:
        state = explorer.parse_state(current)
        start, end = state.date_range(today())
        with database.session_scope() as session:
            found = explorer.list_values(session, actor=current_actor(), dimension=dimension, start=start, end=end)
            names = explorer.account_names(session) if dimension == "account" else {}
    except DomainError:
        return []
    return [{"label": explorer.display_key(dimension, v, names), "value": v} for v in found]


def register(app: Dash) -> None:
    """Register the explorer's callbacks."""
    app.callback(
        *(Output(component, prop) for component, prop in CONTROLS),
        Output(ids.EXPLORER_GRAPH, "figure"),
        Output(ids.EXPLORER_KEYS, "data"),
        Output(ids.EXPLORER_TABLE, "data"),
        Output(ids.EXPLORER_TABLE, "page_count"),
        Output(ids.EXPLORER_TABLE, "page_current"),
        Output(ids.EXPLORER_TABLE, "sort_by"),
        Output(ids.EXPLORER_TABLE, "columns"),
        Output(ids.EXPLORER_TABLE_TOTAL, "children"),
        Output(ids.EXPLORER_SUMMARY, "children"),
        Output(ids.EXPLORER_CRUMBS, "children"),
        Output(ids.EXPLORER_FILTERS, "children"),
        Output(ids.EXPLORER_CSV, "href"),
        Output(ids.EXPLORER_PDF, "href"),
        Output(ids.EXPLORER_STATE, "data"),
        Output(ids.EXPLORER_URL, "search"),
        Output(ids.EXPLORER_MESSAGE, "children"),
        Output(ids.SHARED_FILTERS, "data"),
        Input(ids.EXPLORER_URL, "search"),
        Input(ids.EXPLORER_STATE, "data"),
        *(Input(component, prop) for component, prop in CONTROLS),
        Input(ids.EXPLORER_GRAPH, "clickData"),
        Input(ids.EXPLORER_GRAPH, "restyleData"),
        Input(ids.EXPLORER_TABLE, "sort_by"),
        Input(ids.EXPLORER_TABLE, "page_current"),
        Input(ids.EXPLORER_TABLE, "active_cell"),
        Input(ids.EXPLORER_FILTER_ADD, "n_clicks"),
        State(ids.EXPLORER_URL, "pathname"),
        State(ids.EXPLORER_KEYS, "data"),
        State(ids.EXPLORER_FILTER_DIMENSION, "value"),
        State(ids.EXPLORER_FILTER_VALUES, "value"),
        State(ids.EXPLORER_TABLE, "data"),
    )(explore)
    app.callback(
        Output(ids.EXPLORER_FILTER_VALUES, "options"),
        Output(ids.EXPLORER_FILTER_VALUES, "value"),
        Input(ids.EXPLORER_FILTER_DIMENSION, "value"),
        State(ids.EXPLORER_STATE, "data"),
    )(lambda dimension, current: (filter_choices(dimension, current), []))
