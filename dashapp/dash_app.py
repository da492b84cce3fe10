"""Build the Dash app on the Flask server, with the background-callback manager of the mode."""

from __future__ import annotations

import uuid
from pathlib import Path

import dash
import dash_bootstrap_components as dbc  # noqa: F401 - registers the component suite
from dash import Dash
from flask import Flask

from callbacks import data, explorer, jobs, navigation, overview
from callbacks.context import actor_payload
from dashapp.settings import Settings
from layouts import shell

ASSETS = Path(__file__).parent / "assets"


@dash.hooks.custom_data("actor")
def _actor_for_callbacks(_ctx: object) -> dict[str, object]:
    """Carry the signed-in user into every callback, background jobs included."""
    return actor_payload()


def _root_layout() -> object:
    # A new id per page load keeps each tab's background jobs apart.
    return shell.frame(page_load_id=uuid.uuid4().hex)


def _background_manager(settings: Settings, server: Flask) -> object:
    if settings.uses_celery:
        from dash import CeleryManager

        return CeleryManager(server.extensions["celery"])
    import diskcache
    from dash import DiskcacheManager

    cache_dir = Path(settings.INSTANCE_DIR) / "jobs-cache"
    cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    return DiskcacheManager(diskcache.Cache(str(cache_dir)))


def build_dash(server: Flask, settings: Settings) -> Dash:
    """Create the Dash app and register every page's callbacks."""
    app = Dash(
        __name__,
        server=server,
        url_base_pathname="/",
        assets_folder=str(ASSETS),
        external_stylesheets=["/static/css/bootstrap.min.css"],
        background_callback_manager=_background_manager(settings, server),
        title="FinOps Dashboard",
        update_title=None,
        suppress_callback_exceptions=True,
        serve_locally=True,
        compress=False,
    )
    app.index_string = app.index_string.replace("<html>", '<html lang="en">', 1)
    app.layout = _root_layout
    navigation.register(app)
    overview.register(app)
    explorer.register(app)
    jobs.register(app)
    data.register(app)
    return app
