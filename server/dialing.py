"""The one dialing job of `phonescreen serve`, running whenever a phone channel (SIP or Twilio) is enabled.
It dials every due interview on its own channel: those created through the API (SipDialer, TwilioDialer,
each only while its channel is enabled) and the attempts of running campaigns (CampaignScheduler, only
for campaigns whose channel can dial here: dialer/channels.py; the others wait, and the API and dashboard
say why). SIP calls of both share the process's media worker pool, started on the first SIP call, or at
once when `sip.inbound_user` takes inbound calls (the workers answer them).

Nothing is dialled twice: an API interview is claimed by its scheduled -> dialing transition, a campaign
attempt by its lease (models/campaign_dialing.py), both under the store's write lock."""
from __future__ import annotations

import asyncio
import contextlib
import logging

from config.settings import Settings
from dialer.campaign.scheduler import CampaignScheduler
from dialer.channels import channel_problem
from dialer.sip.pool import DoneListener, MediaWorkerPool, StateListener
from dialer.sip.shared_pool import SharedPool
from dialer.twilio.calls import TwilioCalls
from models.store import SessionStore
from server.sip_dialer import SipDialer
from server.twilio_dialer import TwilioDialer

log = logging.getLogger("phonescreen.dialer")


class DialingJob:
    def __init__(self, settings: Settings, store: SessionStore, *, twilio_calls: TwilioCalls | None = None,
                 on_state: StateListener | None = None, on_done: DoneListener | None = None) -> None:
        """`twilio_calls`: the server's Twilio REST client; `on_state`, `on_done`: the server's metrics."""
        self.settings = settings
        self.shared = SharedPool(settings, store, on_state=on_state, on_done=on_done)
        self.sip = SipDialer(settings, store, self.shared) if settings.sip.enabled else None
        self.twilio = TwilioDialer(settings, store, calls=twilio_calls) if settings.twilio.enabled else None
        self.campaigns = CampaignScheduler(settings, store, pool=self.shared, twilio_calls=twilio_calls,
                                           channel_problem=lambda channel: channel_problem(settings, channel))

    @property
    def media_pool(self) -> MediaWorkerPool | None:
        """The media worker pool once a SIP call (API or campaign) started it."""
        return self.shared.pool

    async def run_forever(self) -> None:
        tasks = [asyncio.create_task(self.campaigns.run(), name="dial-campaigns")]
        if self.sip is not None and self.settings.sip.inbound_user:  # inbound calls need listening workers
            tasks.append(asyncio.create_task(self.shared.get(), name="sip-inbound"))
        if self.sip is not None:
            tasks.append(asyncio.create_task(self.sip.run_forever(), name="dial-sip"))
        if self.twilio is not None:
            tasks.append(asyncio.create_task(self.twilio.run_forever(), name="dial-twilio"))
        try:
            for done in asyncio.as_completed(tasks):
                try:
                    await done
                except Exception:  # e.g. media workers that cannot start: the other channels go on dialing
                    log.exception("a dialer stopped")
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await self.campaigns.close(timeout_s=0)  # open attempts are left to lease recovery
            await self.shared.close()  # workers hang up their calls; those interviews end partial

    async def wind_down(self, grace_s: float, goodbye_s: float) -> None:
        """Shutdown: dial nothing new, give the calls under way `grace_s` to end by themselves, then end the
        SIP calls left politely (a goodbye, partial) within `goodbye_s`. The server's own sessions (Twilio,
        web) are ended by server/shutdown.py."""
        for dialer in (self.sip, self.twilio, self.campaigns):
            if dialer is not None:
                dialer.dialing = False
        calls = [*(self.sip.calls.values() if self.sip else ()), *self.campaigns.active.values()]
        if calls:
            log.info("waiting up to %g s for %d calls to end", grace_s, len(calls))
            await asyncio.wait(calls, timeout=grace_s)
        pool = self.shared.pool
        if pool is not None and pool.active_calls:
            log.info("ending %d calls politely", pool.active_calls)
            left = await pool.end_all("shutdown", goodbye_s)
            if left:
                log.warning("%d calls did not end within %g s; hanging up", left, goodbye_s)
