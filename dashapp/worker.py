"""Celery entry: ``celery -A dashapp.worker worker``; builds the same app (and Dash callbacks) as the web."""

from dashapp import create_app

flask_app = create_app()
celery = flask_app.extensions["celery"]
