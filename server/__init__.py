"""Giao Ban: the web service (pages, JSON API, accounts, units, scheduling)."""
