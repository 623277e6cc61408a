"""Alembic migrations for Giao Ban (see alembic.ini and server/migrate.py).

A package only so that ``migrations*`` in pyproject.toml ships these files; Alembic itself
loads ``env.py`` and the revision files by path, never by import.
"""
