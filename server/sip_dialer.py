"""`phonescreen serve` dials SIP interviews as soon as they are scheduled (outside campaigns, which have
their own scheduler). The media worker pool starts on the first call, so a server that never dials SIP
never loads the voice models; the pool's claim (scheduled -> dialing) keeps two servers from dialing
one interview."""
from __future__ import annotations

import asyncio
import contextlib
import logging

from config.settings import Settings
from dialer.sip.pool import MediaWorkerPool
from dialer.sip.targets import NoRoute, sip_target
from models.lifecycle import IllegalTransition, Status
from models.store import SessionStore

log = logging.getLogger("phonescreen.dialer")


class SipDialer:
    def __init__(self, settings: Settings, store: SessionStore, *, with_llm: bool = True,
                 poll_interval_s: float = 1.0) -> None:
        self.settings, self.store, self.with_llm, self.poll_interval_s = settings, store, with_llm, poll_interval_s
        self.pool: MediaWorkerPool | None = None
        self.calls: dict[str, asyncio.Task] = {}

    async def run_forever(self) -> None:
        try:
            while True:
                await self.dial_due()
                await asyncio.sleep(self.poll_interval_s)
        finally:
            await self.close()

    async def dial_due(self) -> None:
        room = self.settings.sip.workers * self.settings.sip.calls_per_worker - len(self.calls)
        if room <= 0:
            return
        for interview in self.store.due_calls("sip", room):
            if interview.id in self.calls:
                continue
            candidate = self.store.get_candidate(interview.candidate_id)
            try:
                target = sip_target(candidate.phone or "", self.settings.sip)
            except NoRoute as exc:
                log.error("cannot dial: %s", exc, extra={"interview_id": interview.id})
                with contextlib.suppress(IllegalTransition):
                    self.store.transition(interview.id, Status.DIALING)
                    self.store.transition(interview.id, Status.FAILED, outcome_code="no_route")
                continue
            if self.pool is None:
                self.pool = MediaWorkerPool(self.settings, self.store, with_llm=self.with_llm)
                await self.pool.start()
            task = asyncio.create_task(self._call(interview.id, target), name=f"sip-{interview.id}")
            self.calls[interview.id] = task

    async def _call(self, interview_id: str, target: str) -> None:
        try:
            result = await self.pool.dial(interview_id, target)
            log.info("call ended: %s (SIP %s)", result.status, result.sip_code, extra={"interview_id": interview_id})
        except IllegalTransition as exc:  # cancelled or claimed elsewhere since we looked
            log.info("not dialed: %s", exc, extra={"interview_id": interview_id})
        finally:
            self.calls.pop(interview_id, None)

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()  # workers hang up their calls; those interviews end partial
        for task in list(self.calls.values()):
            task.cancel()
        self.pool = None
