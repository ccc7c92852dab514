"""A candidate who asks for a person: whether a recruiter can take the call now, and where it goes.

The position's template says the policy (`handoff`: transfer or callback); the server's `[handoff]`
settings say where calls go per channel (a SIP URI for REFER, a number for Twilio's <Dial>) and the
recruiters' hours. Outside them, or with nowhere to go, the interviewer notes the request and a recruiter
calls back (ivr.interviewer)."""
from __future__ import annotations

from datetime import datetime
from typing import Callable

from config.settings import HandoffSettings
from config.templates import InterviewTemplate
from dialer.leg import Leg
from models.calling_window import next_call_time
from models.store import SessionStore


def transfer_target(settings: HandoffSettings, channel: str) -> str | None:
    """Where a call on `channel` is put through, or None (the web channel has no transfer)."""
    target = {"sip": settings.sip_uri, "twilio": settings.phone}.get(channel, "")
    return target or None


def recruiters_available(settings: HandoffSettings, now: datetime) -> bool:
    start, end = settings.hours.split("-")
    window = {"start": start, "end": end, "weekdays": [day.strip() for day in settings.weekdays.split(",")]}
    return next_call_time(now, settings.timezone, window) <= now


def transfer_check(settings: HandoffSettings, template: InterviewTemplate, channel: str,
                   clock: Callable[[], datetime]) -> Callable[[], bool] | None:
    """For the interviewer: asked when the candidate wants a person. None when this call can never be put
    through (the position says callback, or nowhere to send this channel's calls)."""
    if template.handoff != "transfer" or transfer_target(settings, channel) is None:
        return None
    return lambda: recruiters_available(settings, clock())


def prepare_transfer(settings: HandoffSettings, store: SessionStore, interview_id: str,
                     leg: Leg) -> Callable[[], bool] | None:
    """Point the leg at the recruiters for its channel and return the interviewer's transfer check."""
    interview = store.get_interview(interview_id)
    template = store.get_position(interview.position_id, interview.position_version).template
    leg.transfer_target = transfer_target(settings, interview.channel)
    return transfer_check(settings, template, interview.channel, store.clock)
