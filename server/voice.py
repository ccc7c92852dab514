"""Interviews the server process runs itself (Twilio Media Streams, the web channel): the voice engines are
loaded once, on first use, and every such call goes through `run_interview`, which starts it with the one
`dialer.interview_call.start_interview`. SIP calls run in media worker processes instead (dialer/sip)."""
from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass, field

from aiohttp import web

from dialer.interview_call import start_interview
from dialer.leg import Leg
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
    engines = await engines_of(app)
    call = start_interview(leg, store=app[STORE], interview_id=interview_id, engines=engines,
                           settings=app[SETTINGS])
    session = app[VOICE].active[interview_id] = call.session
    try:
        return await call.finished
    finally:
        app[VOICE].active.pop(interview_id, None)
        app[METRICS].observe_timings(dataclasses.asdict(t) | {"total_ms": t.total_ms} for t in session.timings)
