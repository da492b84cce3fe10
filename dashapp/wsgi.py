"""WSGI entry for any server: ``gunicorn dashapp.wsgi:app``."""

from dashapp import create_app

app = create_app()
