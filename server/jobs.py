"""Background jobs of `phonescreen serve`: expiring old invites, delivering webhooks, scoring finished
interviews (in a worker process: scoring.job), dialing scheduled SIP interviews (server.sip_dialer) and
running campaigns (dialer.campaign.scheduler, sharing its media worker pool),
deleting old transcripts and recordings (server.retention)."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import AsyncIterator

from aiohttp import web

from server.http import STORE
from server.metrics import METRICS
from server.shutdown import OPS
from server.webhooks import WebhookDispatcher, client_session

log = logging.getLogger("phonescreen.jobs")


async def expire_invites_forever(app: web.Application, interval_s: float = 30.0) -> None:
    while True:
        expired = app[STORE].expire_due()
        if expired:
            log.info("expired %d interview invites", len(expired))
        await asyncio.sleep(interval_s)


async def deliver_webhooks_forever(app: web.Application) -> None:
    from server.app import SETTINGS  # server.app imports this module lazily; avoid the cycle
    async with client_session() as session:  # closed when the task is cancelled at shutdown
        await WebhookDispatcher(app[STORE], app[SETTINGS].webhooks, session,
                                on_result=app[METRICS].webhook_attempt).run_forever()


async def score_interviews_forever(app: web.Application) -> None:
    from scoring.job import ScoringWorker
    from server.app import SETTINGS
    from server.logging_setup import configure_logging
    settings = app[SETTINGS]
    worker = ScoringWorker(settings, configure_logging, (settings.log.format, settings.log.level))
    try:
        await worker.run_forever(app[STORE])
    finally:
        worker.close()


async def dial_sip_forever(app: web.Application) -> None:
    from server.app import SETTINGS
    from server.sip_dialer import SipDialer
    from dialer.campaign.scheduler import CampaignScheduler
    from dialer.sip.shared_pool import SharedPool
    # One media worker pool for both dialers: interviews outside campaigns, and running campaigns.
    shared = SharedPool(app[SETTINGS], app[STORE], on_state=app[METRICS].status_changed,
                        on_done=app[METRICS].call_done)
    dialer = SipDialer(app[SETTINGS], app[STORE], shared=shared)
    app[OPS].sip_dialer = dialer  # health, metrics and the graceful shutdown see its pool
    campaigns = asyncio.create_task(CampaignScheduler(app[SETTINGS], app[STORE], pool=shared).run(),
                                    name="dial-campaigns")
    try:
        await dialer.run_forever()
    finally:
        campaigns.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await campaigns


async def apply_retention_forever(app: web.Application) -> None:
    from server.app import SETTINGS
    from server.retention import retention_forever
    await retention_forever(app[STORE], app[SETTINGS])


async def start_background_jobs(app: web.Application) -> AsyncIterator[None]:
    from server.app import SETTINGS
    tasks = [asyncio.create_task(expire_invites_forever(app), name="expire-invites"),
             asyncio.create_task(deliver_webhooks_forever(app), name="deliver-webhooks"),
             asyncio.create_task(score_interviews_forever(app), name="score-interviews"),
             asyncio.create_task(apply_retention_forever(app), name="retention"),
             *([asyncio.create_task(dial_sip_forever(app), name="dial-sip")] if app[SETTINGS].sip.enabled else [])]
    yield
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
