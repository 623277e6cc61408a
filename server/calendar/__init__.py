"""Calendar: iCalendar objects (``ics``), subscription feeds and their tokens, downloads."""
