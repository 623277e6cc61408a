"""Meetings: scheduling, participants, occurrences, conflicts, roll-call and minutes."""
