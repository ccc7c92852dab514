"""When a campaign may call a candidate: the campaign's window (e.g. 09:00-20:00, Monday to Friday) read in
the candidate's own time zone. Pure functions over aware datetimes, so tests can move the clock."""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from models.campaign_settings import WEEKDAYS

MAX_DAYS_AHEAD = 8  # every weekday occurs within a week, so an opening is always found within 8 days


def _clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def next_call_time(now: datetime, zone: str, window: dict) -> datetime:
    """`now` (UTC) if it lies inside the window in `zone`, else the start of the next window, in UTC.
    The end of the window is exclusive: a call is never started at 20:00 for a 09:00-20:00 window."""
    tz = ZoneInfo(zone)
    local = now.astimezone(tz)
    start, end = _clock(window["start"]), _clock(window["end"])
    days = set(window["weekdays"])
    for offset in range(MAX_DAYS_AHEAD + 1):
        day = local.date() + timedelta(days=offset)
        if WEEKDAYS[day.weekday()] not in days:
            continue
        opens = datetime.combine(day, start, tzinfo=tz)
        closes = datetime.combine(day, end, tzinfo=tz)
        if offset == 0 and opens <= local < closes:
            return now.astimezone(timezone.utc)
        if opens > local:
            return opens.astimezone(timezone.utc)
    raise ValueError(f"no calling window within {MAX_DAYS_AHEAD} days: {window!r}")  # weekdays is never empty
