"""The audit log page, for administrators."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server import permissions
from server.appstate import app_state
from server.audit import service
from server.auth import page_user
from server.edge import query_page
from server.errors import Forbidden
from server.i18n import N_

PAGE_SIZE = 100


async def audit_page(request: Request) -> Response:
    user = page_user(request)
    if not permissions.can_view_audit(user):
        raise Forbidden(N_("Only administrators read the audit log."))
    action = request.query_params.get("action", "")[:50]
    actor = request.query_params.get("actor", "")[:100]
    page = query_page(request)
    db = app_state(request).db
    entries, total = await db.run(service.list_entries, action=action, actor=actor, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    actions = await db.run(service.actions)
    return app_state(request).pages.render(
        request, "admin/audit.html",
        {"entries": entries, "total": total, "action": action, "actor": actor, "actions": actions,
         "page": page, "pages": max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE)},
    )


routes = [Route("/admin/audit", audit_page, name="admin_audit")]
