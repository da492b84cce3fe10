"""Alembic revisions; every schema change is a reviewed revision that runs on SQLite and PostgreSQL."""
