"""Graceful shutdown of `phonescreen serve` (SIGTERM, SIGINT): stop dialing, give the interviews under way
`server.shutdown_grace_s` to end by themselves, then end the rest politely (a short goodbye, then the
hang-up: partial, every turn stored) within `server.shutdown_goodbye_s`. It runs as an on_shutdown hook,
before aiohttp cancels request handlers (the Twilio and web channels' calls are WebSocket handlers) and
before the background jobs stop the media workers.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from server.voice import VOICE, VoiceRuntime
from server.http import SETTINGS

if TYPE_CHECKING:
    from dialer.sip.pool import MediaWorkerPool
    from server.dialing import DialingJob

log = logging.getLogger("phonescreen.server")
POLL_S = 0.2


@dataclass
class Operations:
    """What the health checks, metrics and shutdown need to see of the running server."""
    dialing: "DialingJob | None" = None  # set by the background job that dials interviews (server/dialing.py)
    stopping: bool = False

    def media_pool(self) -> "MediaWorkerPool | None":
        """The process's media worker pool once a SIP call (through the API or a campaign) started it."""
        return self.dialing.media_pool if self.dialing is not None else None

    def pool_restarts(self) -> int:
        pool = self.media_pool()
        return pool.restarts if pool is not None else 0


OPS = web.AppKey("operations", Operations)


async def wind_down(app: web.Application) -> None:
    ops, server = app[OPS], app[SETTINGS].server
    ops.stopping = True
    log.info("shutting down: no new calls; active interviews get %g s to finish", server.shutdown_grace_s)
    jobs = [_wind_down_sessions(app[VOICE], server.shutdown_grace_s, server.shutdown_goodbye_s)]
    if ops.dialing is not None:
        jobs.append(ops.dialing.wind_down(server.shutdown_grace_s, server.shutdown_goodbye_s))
    await asyncio.gather(*jobs)


async def _wind_down_sessions(voice: VoiceRuntime, grace_s: float, goodbye_s: float) -> None:
    """The interviews this process runs itself (Twilio Media Streams, the web channel)."""
    if not await _until_empty(voice, grace_s):
        log.info("ending %d in-process interviews politely", len(voice.active))
        for session in list(voice.active.values()):
            session.end_politely("shutdown")
        if not await _until_empty(voice, goodbye_s):
            log.warning("%d in-process interviews did not end within %g s", len(voice.active), goodbye_s)


async def _until_empty(voice: VoiceRuntime, limit_s: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while voice.active and loop.time() < deadline:
        await asyncio.sleep(POLL_S)
    return not voice.active
