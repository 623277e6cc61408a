"""Every table, imported in one place so that ``SQLModel.metadata`` is complete (Alembic)."""

from __future__ import annotations

from sqlmodel import SQLModel

from server.accounts.models import User
from server.audit.models import AuditEntry
from server.units.models import Unit, UnitChange

metadata = SQLModel.metadata

__all__ = ["AuditEntry", "Unit", "UnitChange", "User", "metadata"]
