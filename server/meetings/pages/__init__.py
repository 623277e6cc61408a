"""The meetings' pages: the list, a meeting, planning and editing one, an occurrence, and the
week and day agendas of a unit or a person. One module per page; the routes are here."""

from __future__ import annotations

from starlette.routing import Route

from server.meetings.pages import agenda, editing, meeting, occurrence

routes = [
    Route("/meetings", meeting.list_page, name="meetings"),
    Route("/meetings/new", editing.new_page, methods=["GET", "POST"], name="meeting_new"),
    Route("/meetings/{id:int}", meeting.meeting_page, name="meeting"),
    Route("/meetings/{id:int}/edit", editing.edit_page, methods=["GET", "POST"], name="meeting_edit"),
    Route("/meetings/{id:int}/cancel", meeting.cancel_meeting, methods=["POST"], name="meeting_cancel"),
    Route("/meetings/{id:int}/occurrences/{original_start}", occurrence.occurrence_page, methods=["GET", "POST"],
          name="meeting_occurrence"),
    Route("/agenda", agenda.agenda_page, name="agenda"),
]
