"""The phone channels as the dialers see them: whether this installation can dial on one (and, in words
for the API and the dashboard, why not), and how an interview whose call could not be placed ends.

`phonescreen serve` dials a campaign only while its channel can dial here; until then the campaign waits,
its attempts untouched, and says why (`blockedReason`), instead of showing `running` while nothing happens
or burning its candidates' attempts on calls that cannot be placed."""
from __future__ import annotations

import contextlib

from config.settings import Settings
from dialer.twilio.settings_check import twilio_problems
from models.lifecycle import IllegalTransition, Status
from models.store import SessionStore

OPEN_CAMPAIGN_STATUSES = ("draft", "running", "paused")  # a campaign that may still call someone
# Twilio calls one dialer keeps going at once: they hold no local media worker, but each runs a voice
# session in the server (a campaign's own cap still applies).
TWILIO_SLOTS = 64


def any_phone_channel(settings: Settings) -> bool:
    """Whether serve runs its dialing job at all."""
    return settings.sip.enabled or settings.twilio.enabled


def channel_problem(settings: Settings, channel: str) -> str | None:
    """Why calls on `channel` cannot be placed with these settings; None when they can. Names the setting
    to change and never echoes a secret."""
    if channel == "sip":
        if not settings.sip.enabled:
            return "the SIP channel is not enabled on this server (set sip.enabled = true)"
        if not settings.sip.domain:
            # Candidates' numbers are E.164, dialled as sip:+NUMBER@sip.domain (dialer/sip/targets.py).
            return "sip.domain is not set, so phone numbers cannot be dialled over SIP"
        return None
    if channel == "twilio":
        if not settings.twilio.enabled:
            return "the Twilio channel is not enabled on this server (set twilio.enabled = true)"
        problems = twilio_problems(settings)
        return "the Twilio channel is misconfigured: " + "; ".join(problems) if problems else None
    return f"{channel} interviews are not dialled"


def campaign_blocked_reason(settings: Settings, channel: str, status: str) -> str | None:
    """Why a campaign that may still call someone cannot dial on this server; None when it can (or is over)."""
    return channel_problem(settings, channel) if status in OPEN_CAMPAIGN_STATUSES else None


def fail_unplaced(store: SessionStore, interview_id: str, code: str) -> None:
    """The dialer's own interview (claimed, or about to be) whose call could not be placed ends failed with
    `code`, through dialing as the lifecycle wants; one that ended meanwhile is left as it is."""
    for status in (Status.DIALING, Status.FAILED):
        with contextlib.suppress(IllegalTransition):
            store.transition(interview_id, status, outcome_code=code if status == Status.FAILED else None)
