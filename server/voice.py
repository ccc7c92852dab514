"""Interviews the server process runs itself (Twilio Media Streams, the web channel): the voice engines are
loaded once, on first use, and every such call goes through `run_interview` — one way to start a session
over a leg. SIP calls run in media worker processes instead (dialer/sip)."""
from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass, field

from aiohttp import web

from dialer.handoff import prepare_transfer
from dialer.leg import Leg, bridge
from ivr.engines import VoiceEngines, load_engines
from ivr.session import InterviewSession
from server.http import SETTINGS, STORE
from server.metrics import METRICS

log = logging.getLogger("phonescreen.server")


@dataclass
class VoiceRuntime:
    engines: VoiceEngines | None = None  # None until the first call loads them (tests and the demo pass theirs)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    active: dict[str, InterviewSession] = field(default_factory=dict)  # interview id -> its running session


VOICE = web.AppKey("voice", VoiceRuntime)


async def engines_of(app: web.Application) -> VoiceEngines:
    runtime = app[VOICE]
    async with runtime.lock:
        if runtime.engines is None:
            log.info("loading voice engines")
            runtime.engines = await asyncio.get_running_loop().run_in_executor(None, load_engines, app[SETTINGS])
    return runtime.engines


async def run_interview(app: web.Application, interview_id: str, leg: Leg) -> str:
    """Run a stored interview over a connected leg until it ends; returns the final status. The interview
    must already be in_progress (the leg's owner made that transition when the candidate answered/joined)."""
    settings = app[SETTINGS]
    engines = await engines_of(app)
    session = InterviewSession.for_interview(app[STORE], interview_id, engines=engines, voice=settings.voice,
                                             sample_rate=leg.sample_rate,
                                             recordings_dir=settings.store.recordings_dir,
                                             can_transfer=prepare_transfer(settings.handoff, app[STORE],
                                                                           interview_id, leg))
    app[VOICE].active[interview_id] = session
    try:
        return await bridge(session, leg, silence_timeout_s=settings.sip.rtp_timeout_s)
    finally:
        app[VOICE].active.pop(interview_id, None)
        app[METRICS].observe_timings(dataclasses.asdict(t) | {"total_ms": t.total_ms} for t in session.timings)
