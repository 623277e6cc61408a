from __future__ import annotations

import json
from typing import Any

from sqlmodel import Session, col, func, select

from server.audit.models import AuditEntry


def record(
    session: Session,
    action: str,
    *,
    actor: Any = None,
    target: str = "",
    ip: str = "",
    **detail: Any,
) -> AuditEntry:
    """Add an entry in the caller's transaction, so it lands with the change it describes."""
    entry = AuditEntry(
        action=action,
        actor_id=getattr(actor, "id", None),
        actor=getattr(actor, "username", "") if actor is not None else "",
        target=target,
        ip=ip,
        detail=json.dumps(detail, ensure_ascii=False, sort_keys=True, default=str) if detail else "",
    )
    session.add(entry)
    return entry


def list_entries(
    session: Session, *, action: str = "", actor: str = "", offset: int = 0, limit: int = 50
) -> tuple[list[AuditEntry], int]:
    query = select(AuditEntry)
    if action:
        query = query.where(AuditEntry.action == action)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(col(AuditEntry.id).desc()).offset(offset).limit(limit)).all()
    return list(rows), int(total)


def actions(session: Session) -> list[str]:
    return list(session.exec(select(AuditEntry.action).distinct().order_by(AuditEntry.action)).all())
