"""When a candidate asks to be called back: "tomorrow at ten", "in an hour", "Monday morning", "after 5",
resolved to an aware datetime in the candidate's time zone.

dateparser does the parsing (weekdays, relative days, "in two hours", "tomorrow"). Two things it cannot
know are our conventions for a call center, applied first by rewriting the words: a bare hour means
business hours (7-11 a.m., 12 noon, 1-6 p.m.: nobody asks for a call at 3 a.m.), and a part of the day
is a fixed hour (morning 9, noon 12, afternoon 14, evening 18, tonight 19). A day without a time is
10 a.m.; a time today that has passed is the next day."""
from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import dateparser

DEFAULT_HOUR = 10
DAY_PARTS = {"morning": 9, "noon": 12, "lunchtime": 12, "lunch time": 12, "afternoon": 14, "evening": 18,
             "tonight": 19, "night": 19}
_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
                 "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30,
                 "forty five": 45, "forty": 40, "a couple of": 2, "a couple": 2, "an": 1, "a": 1, "half an": 0.5}
# Speech-to-text spellings of the day words (heard in calls): "to marrow", "tomorow".
_STT_FIXES = {r"\bto ?mm?orr?ow\b": "tomorrow", r"\bto marrow\b": "tomorrow", r"\btmrw\b": "tomorrow",
              r"\ba\.m\.": "am", r"\bp\.m\.": "pm", r"\bo'?clock\b": ""}
_HOUR = re.compile(r"\b(?P<lead>at|after|around|by|about|before|past)?\s*(?P<h>\d{1,2})(?::(?P<m>\d{2}))?"
                   r"\s*(?P<ampm>am|pm)?\b(?!\s*(?:minutes?|mins?|hours?|hrs?|days?|weeks?))")
_RELATIVE = re.compile(r"\b(?:in|give me|after)\s+(?P<n>[\d.]+)\s+(?P<unit>minutes?|mins?|hours?|hrs?)\b")


def _normalise(text: str) -> str:
    text = " " + text.lower().replace("-", " ") + " "
    for pattern, replacement in _STT_FIXES.items():
        text = re.sub(pattern, replacement, text)
    for word, number in sorted(_NUMBER_WORDS.items(), key=lambda item: -len(item[0])):
        if word in ("a", "an", "a couple", "a couple of", "half an"):  # only before a unit
            text = re.sub(rf"\b{word}\s+(?=(?:minutes?|hours?|hour)\b)", f"{number:g} ", text)
        else:
            text = re.sub(rf"\b{word}\b", str(number), text)
    text = re.sub(r"\bhalf an? hour\b", "30 minutes", text)
    text = re.sub(r"\bhalf past (\d{1,2})\b", r"\1:30", text)
    text = re.sub(r"\bquarter past (\d{1,2})\b", r"\1:15", text)
    text = re.sub(r"\b(\d{1,2}) (15|30|45)\b", r"\1:\2", text)  # "three thirty"
    text = re.sub(r"\bin (?:like|about|maybe|around|say) ", "in ", text)
    return " ".join(text.split())


def _business_hour(hour: int, ampm: str | None) -> int:
    if ampm == "am":
        return hour % 12
    if ampm == "pm":
        return hour % 12 + 12
    return hour if 7 <= hour <= 12 else hour + 12 if 1 <= hour <= 6 else hour


_WEEKDAYS = "monday|tuesday|wednesday|thursday|friday|saturday|sunday"
# The words naming a day, handed to dateparser: "tomorrow", "next friday", "the 5th", "december 3".
_DAY_PHRASE = re.compile(
    rf"\b(?:day after tomorrow|today|tomorrow|(?:next |this )?(?:{_WEEKDAYS})|next week"
    r"|(?:january|february|march|april|may|june|july|august|september|october|november|december) \d{1,2}"
    r"|the \d{1,2}(?:st|nd|rd|th))\b")
_EVENING_PARTS = ("evening", "tonight", "night", "afternoon")


def _clock_and_rest(words: str) -> tuple[time | None, str]:
    """The time of day the words name (with our conventions), and the words without it."""
    part = next((name for name in DAY_PARTS if re.search(rf"\b{name}\b", words)), None)
    for match in _HOUR.finditer(words):
        hour = int(match["h"])
        if 1 <= hour <= 12 and (match["lead"] or match["ampm"] or match["m"] or part):
            ampm = match["ampm"] or ("pm" if part in _EVENING_PARTS and hour < 12 else None)
            rest = words[:match.start()] + " " + words[match.end():]
            return time(_business_hour(hour, ampm), int(match["m"] or 0)), rest
    if part is not None:
        return time(DAY_PARTS[part]), re.sub(rf"\b{part}\b", " ", words)
    return None, words


def resolve_callback_time(text: str, timezone: str, now: datetime) -> datetime | None:
    """The moment the candidate asked to be called back, in `timezone`, or None when they named none
    ("later", "another time": the interviewer asks when)."""
    zone = ZoneInfo(timezone)
    local_now = now.astimezone(zone).replace(second=0, microsecond=0)
    words = _normalise(text)
    relative = _RELATIVE.search(words)
    if relative:
        amount = float(relative["n"])
        delta = timedelta(hours=amount) if relative["unit"].startswith("h") else timedelta(minutes=amount)
        return local_now + delta
    clock, rest = _clock_and_rest(words)
    day_phrase = _DAY_PHRASE.search(rest)
    if day_phrase is None and clock is None:
        return None
    day = local_now.date()
    if day_phrase is not None:
        parsed = dateparser.parse(day_phrase.group(0), languages=["en"], settings={
            "PREFER_DATES_FROM": "future", "RELATIVE_BASE": local_now.replace(tzinfo=None)})
        if parsed is not None:
            day = parsed.date()
        if day <= local_now.date() and re.fullmatch(rf"(?:next |this )?(?:{_WEEKDAYS})", day_phrase.group(0)):
            day += timedelta(days=7)  # "Tuesday" said on a Tuesday is next week's
    moment = datetime.combine(day, clock or time(DEFAULT_HOUR), zone)
    if moment <= local_now:
        moment += timedelta(days=1)
    return moment
