"""Human names for stored codes (roles, unit history actions, audit actions), translated."""

from __future__ import annotations

from server.i18n import N_, Text

LABELS: dict[str, dict[str, Text]] = {
    "role": {
        "admin": N_("Administrator"),
        "secretary": N_("Secretary"),
        "official": N_("Official"),
        "endpoint": N_("Meeting-room endpoint"),
    },
    "change": {
        "create": N_("Created"),
        "rename": N_("Renamed"),
        "move": N_("Moved"),
        "merge": N_("Merged"),
        "dissolve": N_("Dissolved"),
        "edit:level": N_("Level changed"),
        "edit:kind": N_("Kind changed"),
        "edit:email": N_("Mailbox changed"),
        "edit:merged_into_id": N_("Merged"),
        "edit:active": N_("Status changed"),
    },
    "audit": {
        "login": N_("Logged in"),
        "login_failed": N_("Failed login"),
        "login_locked": N_("Login refused: account locked"),
        "account_locked": N_("Account locked after failed logins"),
        "user_created": N_("Account created"),
        "users_imported": N_("Accounts imported"),
        "password_reset": N_("Password reset"),
        "user_disabled": N_("Account disabled"),
        "user_enabled": N_("Account enabled"),
        "session_ended": N_("Session ended by its owner"),
        "sessions_ended": N_("Sessions ended"),
        "units_imported": N_("Units imported"),
        "unit_renamed": N_("Unit renamed"),
        "unit_moved": N_("Unit moved"),
        "unit_merged": N_("Unit merged"),
        "unit_dissolved": N_("Unit dissolved"),
        "units_reorganised": N_("Units reorganised"),
        "demo_loaded": N_("Demo data loaded"),
        "holidays_seeded": N_("Holidays loaded from the shipped list"),
        "holiday_added": N_("Holiday added"),
        "holiday_removed": N_("Holiday removed"),
        "holidays_imported": N_("Holidays imported"),
        "meeting_created": N_("Meeting scheduled"),
        "meeting_updated": N_("Meeting changed"),
        "meeting_cancelled": N_("Meeting cancelled"),
        "occurrence_changed": N_("One occurrence changed"),
        "occurrence_cancelled": N_("One occurrence cancelled"),
        "series_split": N_("Series changed from one occurrence on"),
        "series_ended": N_("Series ended early"),
        "document_added": N_("Document added"),
        "document_removed": N_("Document removed"),
        "roll_call_recorded": N_("Roll-call recorded"),
        "minutes_saved": N_("Minutes saved"),
        "feed_created": N_("Calendar feed link created"),
        "feed_revoked": N_("Calendar feed link revoked"),
        "mail_resent": N_("Mail resent"),
        "rsvp_answered": N_("Invitation answered"),
    },
}


def label(value: str, group: str) -> Text | str:
    """The label of ``value`` in ``group``, or the value itself when it has none."""
    return LABELS.get(group, {}).get(value, value)
