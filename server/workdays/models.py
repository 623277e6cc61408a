from __future__ import annotations

import datetime as dt

from sqlmodel import Field, SQLModel


class Holiday(SQLModel, table=True):
    """A day government offices are closed besides Saturdays and Sundays.

    ``observed`` marks a day off that is not itself the legal holiday: a compensatory day
    (nghỉ bù) for a holiday that fell on a weekend, or a swapped bridge day (nghỉ hoán đổi).
    Both count the same for working days; the flag only tells the administrator which is which.
    """

    __tablename__ = "holidays"

    day: dt.date = Field(primary_key=True)
    name: str = Field(max_length=200)
    observed: bool = Field(default=False)
