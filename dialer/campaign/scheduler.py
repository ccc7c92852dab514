"""The campaign scheduler: each tick it recovers attempts whose dialer died, renews its own leases, and
claims due attempts of running campaigns (store.claim_due_attempts: calling windows, do-not-call list,
concurrency cap, all under the write lock), as many as the campaign's pacing and this process's free call
slots allow, and places each call: SIP through the process's shared media worker pool, Twilio through its
REST API (the server's status callbacks and media stream take it from there). When a call ends the
attempt gets its outcome and the retry policy is applied by the store.

Given `channel_problem` (serve's dialing job), a campaign whose channel cannot dial here is not claimed
from: it waits, its attempts untouched, and the API and dashboard say why (dialer/channels.py).

Several schedulers (processes, on one machine or several sharing a PostgreSQL store) may run against one
store: claims and leases keep them from calling one candidate twice, and a dead one's attempts are taken
over once its leases run out. The concurrency cap and the pacing are the campaign's, held in the store
for all of them together. Time for due dates, windows and leases is the store's clock (tests move it);
pacing runs on real time (`wallclock`, Unix seconds, comparable between machines)."""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

from config.settings import Settings
from dialer.channels import TWILIO_SLOTS, fail_unplaced
from dialer.sip.shared_pool import SharedPool
from dialer.sip.targets import NoRoute, sip_target
from models.campaign_dialing import NO_ROUTE, Claim, attempt_outcome
from models.db import new_owner
from models.lifecycle import ENDED, IllegalTransition
from models.records import Campaign
from models.store import SessionStore

log = logging.getLogger("phonescreen.campaigns")
DEFAULT_LEASE_S = 30.0
TWILIO_POLL_S = 1.0
DIALER_ERROR = "dialer_error"


class CampaignScheduler:
    def __init__(self, settings: Settings, store: SessionStore, *, pool: SharedPool | None = None,
                 campaign_ids: list[str] | None = None, owner: str | None = None, lease_s: float = DEFAULT_LEASE_S,
                 poll_interval_s: float = 0.5, monotonic: Callable[[], float] = time.monotonic,
                 twilio_calls: object | None = None, wallclock: Callable[[], float] = time.time,
                 channel_problem: Callable[[str], str | None] | None = None) -> None:
        """`campaign_ids`: only these campaigns (the CLI's `campaign run`); None: every running campaign.
        `channel_problem(channel)`: why that channel cannot dial here (its campaigns then wait); None: no check."""
        self.settings, self.store = settings, store
        self.channel_problem = channel_problem
        self.dialing = True  # False once the server is shutting down: calls under way go on, no new ones
        self.blocked: dict[str, str] = {}  # campaign id -> why it waits (logged once per reason)
        self.pool = pool or SharedPool(settings, store)
        self.campaign_ids = campaign_ids
        self.owner = owner or new_owner()
        self.lease_s, self.poll_interval_s, self.monotonic = lease_s, poll_interval_s, monotonic
        self.twilio_calls = twilio_calls
        self.active: dict[str, asyncio.Task] = {}  # attempt id -> its call
        self.interview_of: dict[str, str] = {}  # attempt id -> interview id
        self.campaign_of: dict[str, str] = {}  # attempt id -> campaign id
        self.channel_of: dict[str, str] = {}  # attempt id -> sip | twilio
        self.wallclock = wallclock
        self.last_heartbeat = monotonic()

    # -- the loop --------------------------------------------------------------------------------------
    async def run(self, *, until_done: bool = False) -> None:
        """Tick until cancelled, or (`until_done`) until the campaigns given are over or paused and no call
        of ours is left."""
        while True:
            await self.tick()
            if until_done and self.done():
                return
            await asyncio.sleep(self.poll_interval_s)

    def done(self) -> bool:
        if self.active or self.campaign_ids is None:
            return False
        return all(self.store.get_campaign(cid).status in ("completed", "cancelled", "paused")
                   for cid in self.campaign_ids)

    async def tick(self) -> None:
        for attempt in self.store.recover_expired_attempts(owner=self.owner):
            log.warning("recovered an attempt of a stopped dialer: %s", attempt.outcome or "pending again",
                        extra={"interview_id": attempt.interview_id})
        self._heartbeat()
        for campaign in self._campaigns():
            if campaign.status == "cancelled":
                self._hang_up(campaign.id)
            elif campaign.status == "running" and self.dialing and self._can_dial(campaign):
                self._claim(campaign)

    def _campaigns(self) -> list[Campaign]:
        if self.campaign_ids is not None:
            return [self.store.get_campaign(cid) for cid in self.campaign_ids]
        running = self.store.running_campaigns()
        mine = set(self.campaign_of.values()) - {c.id for c in running}
        return [*running, *(self.store.get_campaign(cid) for cid in mine)]

    def _can_dial(self, campaign: Campaign) -> bool:
        problem = self.channel_problem(campaign.channel) if self.channel_problem is not None else None
        if problem is None:
            self.blocked.pop(campaign.id, None)
        elif self.blocked.get(campaign.id) != problem:
            self.blocked[campaign.id] = problem
            log.warning("campaign %s waits: %s", campaign.id, problem)
        return problem is None

    def _heartbeat(self) -> None:
        if self.monotonic() - self.last_heartbeat < self.lease_s / 3:
            return
        self.last_heartbeat = self.monotonic()
        held = self.store.renew_leases(self.owner, list(self.active), self.lease_s)
        if held < len(self.active):
            log.error("%d of our call attempts were taken over by another dialer (were we stalled?)",
                      len(self.active) - held)

    def _room(self, channel: str) -> int:
        slots = self.pool.capacity if channel == "sip" else TWILIO_SLOTS
        return slots - sum(1 for aid in self.active if self.channel_of.get(aid) == channel)

    def _claim(self, campaign: Campaign) -> None:
        limit = self._room(campaign.channel)
        if limit <= 0:
            return
        claims = self.store.claim_due_attempts(campaign.id, self.owner, limit=limit, lease_s=self.lease_s,
                                               paced_at=self.wallclock())
        for claim in claims:
            aid = claim.attempt.id
            self.interview_of[aid], self.campaign_of[aid] = claim.interview_id, campaign.id
            self.channel_of[aid] = campaign.channel
            task = asyncio.create_task(self._attempt(claim), name=f"attempt-{aid}")
            self.active[aid] = task

    def _hang_up(self, campaign_id: str) -> None:
        for aid, cid in list(self.campaign_of.items()):
            if cid == campaign_id and aid in self.active:
                self.pool.hang_up(self.interview_of[aid])

    # -- one call --------------------------------------------------------------------------------------
    async def _attempt(self, claim: Claim) -> None:
        aid, iid = claim.attempt.id, claim.interview_id
        sip_code: int | None = None
        try:
            if claim.channel == "sip":
                sip_code = await self._dial_sip(iid, claim.phone)
            else:
                await self._dial_twilio(iid)
        except IllegalTransition as exc:  # cancelled or expired since the claim
            log.info("not dialed: %s", exc, extra={"interview_id": iid})
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("campaign call failed", extra={"interview_id": iid})
            fail_unplaced(self.store, iid, DIALER_ERROR)
        finally:
            self.active.pop(aid, None)
            self.campaign_of.pop(aid, None)
            self.interview_of.pop(aid, None)
            self.channel_of.pop(aid, None)
        interview = self.store.get_interview(iid)
        holder = self.store.get_attempt(aid).lease_owner
        if holder not in (self.owner, None):  # e.g. the candidate called in first: that call took the attempt
            log.info("attempt taken over by %s", holder, extra={"interview_id": iid})
        elif interview.status in ENDED:
            retry = self.store.finish_attempt(aid, attempt_outcome(interview), sip_code)
            log.info("attempt %d ended: %s%s", claim.attempt.attempt_no, attempt_outcome(interview),
                     f", retry due {retry.due_at}" if retry else "", extra={"interview_id": iid})
        else:  # e.g. still scheduled after an error placing it: the lease runs out and recovery redials it
            log.error("attempt left %s; its lease will be recovered", interview.status, extra={"interview_id": iid})

    async def _dial_sip(self, iid: str, phone: str) -> int | None:
        try:
            target = sip_target(phone, self.settings.sip)
        except NoRoute as exc:
            log.error("cannot dial: %s", exc, extra={"interview_id": iid})
            fail_unplaced(self.store, iid, NO_ROUTE)
            return None
        pool = await self.pool.get()
        result = await pool.dial(iid, target)
        return result.sip_code

    async def _dial_twilio(self, iid: str) -> None:
        from dialer.twilio.calls import call_until_ended  # the twilio library loads only for Twilio campaigns
        await call_until_ended(self.settings, self.store, iid, calls=self.twilio_calls, poll_s=TWILIO_POLL_S,
                               monotonic=self.monotonic)

    async def close(self, *, hang_up: bool = False, timeout_s: float = 30.0) -> None:
        """Wait for our calls to end (or hang them up first); attempts still open are left to lease recovery."""
        if hang_up:
            for iid in list(self.interview_of.values()):
                self.pool.hang_up(iid)
        if self.active:
            await asyncio.wait(list(self.active.values()), timeout=timeout_s)
        for task in list(self.active.values()):
            task.cancel()
