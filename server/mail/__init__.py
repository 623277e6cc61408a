"""Outgoing mail: iMIP invitations composed per attendee, an outbox written in the caller's
transaction, and a sender that delivers it over SMTP with retry and backoff."""
