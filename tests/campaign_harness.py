"""Campaign test helpers: clocks tests can move, and campaigns of generated candidates."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from config.templates import InterviewTemplate
from models.campaign_settings import clean_campaign_settings
from models.records import Campaign
from models.store import SessionStore

# A Wednesday, 12:00 UTC: inside a 09:00-20:00 weekday window for UTC candidates.
WEDNESDAY_NOON = datetime(2030, 1, 9, 12, 0, tzinfo=timezone.utc)


class MovableClock:
    """A stopped clock that moves only when told."""

    def __init__(self, start: datetime = WEDNESDAY_NOON) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class OffsetClock:
    """Real time plus an offset the test moves forward: leases and heartbeats keep running in real time
    while retry delays of an hour pass at once."""

    def __init__(self, start: datetime = WEDNESDAY_NOON) -> None:
        self.offset = start - datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return datetime.now(timezone.utc) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


def make_campaign(store: SessionStore, template: InterviewTemplate, phones: list[str], *, channel: str = "sip",
                  timezones: list[str] | None = None, **settings) -> Campaign:
    """A draft campaign of a new position and one new candidate per phone number."""
    position = store.create_position(template)
    ids = []
    for index, phone in enumerate(phones):
        zone = timezones[index] if timezones else "UTC"
        candidate, _ = store.upsert_candidate({"name": f"Candidate {index}", "phone": phone, "timezone": zone})
        ids.append(candidate.id)
    return store.create_campaign(name="test campaign", position_id=position.id, channel=channel,
                                 settings=clean_campaign_settings(settings), candidate_ids=ids)
