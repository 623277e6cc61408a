"""What the security tests share: the answer links an invited unit finds in its mail."""

from __future__ import annotations

from starlette.applications import Starlette

from server.mail import rsvp
from server.meetings.models import Meeting


def answer_links(app: Starlette, meeting_id: int, mailbox: str) -> rsvp.RsvpLinks:
    """The RSVP links of ``mailbox``'s invitation, as its mail carries them (paths on ``testserver``)."""
    state = app.state.giaoban
    with state.db.session() as session:
        meeting = session.get(Meeting, meeting_id)
        assert meeting is not None
        links = rsvp.links_for(session, rsvp.RsvpSigner(state.settings.effective_secret_key), "http://testserver", meeting, mailbox)
    assert links is not None, f"{mailbox} is not invited to meeting {meeting_id}"
    return links
