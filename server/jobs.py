"""Background jobs of `phonescreen serve`: expiring old invites, delivering webhooks, scoring finished
interviews (in a worker process: scoring.job), dialing (server.dialing: interviews created through the API
and running campaigns, each on its own channel, whenever SIP or Twilio is enabled),
deleting old transcripts and recordings (server.retention), sending invitations (server.invitations).

A node's role (`phonescreen serve --role`) chooses its jobs: `api` nodes expire invites, deliver webhooks,
score, apply retention and send invitations; `dialer` nodes dial (and run the calls); `all` does everything
(one machine). Each job is safe to run on several nodes at once: the store's claims and leases split the work."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import AsyncIterator

from aiohttp import web

from server.http import SETTINGS, STORE
from server.metrics import METRICS
from server.shutdown import OPS
from server.webhooks import WebhookDispatcher, client_session

log = logging.getLogger("phonescreen.jobs")
ROLE = web.AppKey("role", str)
ROLES = ("all", "api", "dialer")


async def expire_invites_forever(app: web.Application, interval_s: float = 30.0) -> None:
    while True:
        expired = app[STORE].expire_due()
        if expired:
            log.info("expired %d interview invites", len(expired))
        await asyncio.sleep(interval_s)


async def deliver_webhooks_forever(app: web.Application) -> None:
    async with client_session() as session:  # closed when the task is cancelled at shutdown
        await WebhookDispatcher(app[STORE], app[SETTINGS].webhooks, session,
                                on_result=app[METRICS].webhook_attempt).run_forever()


async def score_interviews_forever(app: web.Application) -> None:
    from scoring.job import ScoringWorker
    from config.logging_setup import configure_logging
    settings = app[SETTINGS]
    worker = ScoringWorker(settings, configure_logging, (settings.log.format, settings.log.level))
    try:
        await worker.run_forever(app[STORE])
    finally:
        worker.close()


async def dial_forever(app: web.Application) -> None:
    from server.dialing import DialingJob
    settings = app[SETTINGS]
    twilio_calls = None
    if settings.twilio.enabled:  # the REST client the status callbacks hang up with, made once
        from server.channels.twilio_endpoints import calls_of
        twilio_calls = calls_of(app)
    job = DialingJob(settings, app[STORE], twilio_calls=twilio_calls, on_state=app[METRICS].status_changed,
                     on_done=app[METRICS].call_done)
    app[OPS].dialing = job  # health, metrics and the graceful shutdown see its media worker pool
    await job.run_forever()


async def send_invitations_forever(app: web.Application) -> None:
    from server.invitations import InvitationSender
    await InvitationSender(app[SETTINGS], app[STORE]).run_forever()


async def apply_retention_forever(app: web.Application) -> None:
    from server.retention import retention_forever
    await retention_forever(app[STORE], app[SETTINGS])


def job_names(role: str, dials: bool) -> list[str]:
    """The background jobs of a node with this role; `dials`: a phone channel is enabled here."""
    names = ["expire-invites", "deliver-webhooks", "score-interviews", "retention", "send-invitations"] \
        if role in ("all", "api") else []
    return [*names, "dial"] if role in ("all", "dialer") and dials else names


async def start_background_jobs(app: web.Application) -> AsyncIterator[None]:
    from dialer.channels import any_phone_channel
    jobs = {"expire-invites": expire_invites_forever, "deliver-webhooks": deliver_webhooks_forever,
            "score-interviews": score_interviews_forever, "retention": apply_retention_forever,
            "send-invitations": send_invitations_forever, "dial": dial_forever}
    tasks = [asyncio.create_task(jobs[name](app), name=name)
             for name in job_names(app.get(ROLE, "all"), any_phone_channel(app[SETTINGS]))]
    yield
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
