"""One way to run a stored interview over a connected leg: `start_interview(leg, ...)`, used by the SIP media
worker, the server's Twilio and web channels and the benchmarks (the simulator's `SimulatedLine` is a leg
like any other). It builds the InterviewSession for the leg's rate (template, candidate, recording, resume,
the transfer policy of the interview's channel) and starts `bridge` on it."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

from config.settings import Settings
from dialer.handoff import prepare_transfer
from dialer.leg import Leg, bridge
from ivr.engines import VoiceEngines
from ivr.session import InterviewSession
from models.store import SessionStore


@dataclass(frozen=True)
class InterviewCall:
    session: InterviewSession  # for end_politely, live views and timings while it runs
    finished: "asyncio.Task[str]"  # the interview's final status once either side has ended it


def start_interview(leg: Leg, *, store: SessionStore, interview_id: str, engines: VoiceEngines,
                    settings: Settings) -> InterviewCall:
    """Start the interview (already in_progress: the leg's owner made that transition when the candidate
    answered or joined) on the running event loop. No media for `sip.rtp_timeout_s` is a dropped line."""
    session = InterviewSession.for_interview(
        store, interview_id, engines=engines, voice=settings.voice, sample_rate=leg.sample_rate,
        recordings_dir=settings.store.recordings_dir,
        can_transfer=prepare_transfer(settings.handoff, store, interview_id, leg))
    finished = asyncio.create_task(bridge(session, leg, silence_timeout_s=settings.sip.rtp_timeout_s),
                                   name=f"interview-call-{interview_id}")
    return InterviewCall(session, finished)
