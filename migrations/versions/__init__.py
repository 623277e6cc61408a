"""Revision files. Alembic skips ``__init__.py`` when it scans this directory."""
