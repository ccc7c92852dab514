"""Interviews the server process runs itself (Twilio Media Streams, the web channel): the voice engines are
loaded once, and every such call goes through `run_interview`, which starts it with the one
`dialer.interview_call.start_interview`. SIP calls run in media worker processes instead (dialer/sip).

`serve` with Twilio enabled loads and warms the engines before it listens (`load_at_start`): a Twilio call
can come at any moment, and its first one would otherwise wait a second or more for them. Otherwise they
are loaded by the first call (the web channel, tests that pass no engines)."""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from dataclasses import dataclass, field

from aiohttp import web

from config.settings import Settings
from dialer.interview_call import start_interview
from dialer.leg import Leg
from dialer.twilio.leg import RATE as TWILIO_RATE
from ivr.engines import VoiceEngines, load_engines, warm_engines, warm_follow_ups
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


def loads_at_start(settings: Settings) -> bool:
    """Whether `serve` loads the engines before it listens: when Twilio may stream a call in at once."""
    return settings.twilio.enabled


class EnginesUnavailable(RuntimeError):
    """The voice engines did not load at start-up (a model missing): `serve` stops, saying why."""


async def load_at_start(app: web.Application) -> None:
    """An on_startup hook: aiohttp's runner awaits it before the socket listens, so no call is taken
    before the engines are loaded and have made one short sentence and decoded it."""
    started = time.monotonic()
    try:
        engines = await engines_of(app)
    except Exception as exc:  # FileNotFoundError is an OSError: it must not pass for a port in use
        raise EnginesUnavailable(f"the voice engines could not load: {exc}") from exc
    try:
        await asyncio.get_running_loop().run_in_executor(engines.executor, warm_engines, engines, TWILIO_RATE)
    except Exception:  # loaded but not warmed: the first call pays the first use, as before
        log.exception("voice engines did not warm up")
    await warm_follow_ups(engines)
    log.info("voice engines ready in %.1f s", time.monotonic() - started)


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
