"""`phonescreen serve` dials SIP interviews as soon as they are scheduled (outside campaigns, which have
their own scheduler). The media worker pool starts on the first call, so a server that never dials SIP
never loads the voice models; the pool's claim (scheduled -> dialing) keeps two servers from dialing
one interview."""
from __future__ import annotations

import asyncio
import contextlib
import logging

from config.settings import Settings
from dialer.sip.pool import DoneListener, MediaWorkerPool, StateListener
from dialer.sip.shared_pool import SharedPool
from dialer.sip.targets import NoRoute, sip_target
from models.lifecycle import IllegalTransition, Status
from models.store import SessionStore

log = logging.getLogger("phonescreen.dialer")


class SipDialer:
    def __init__(self, settings: Settings, store: SessionStore, *, with_llm: bool = True,
                 poll_interval_s: float = 1.0, on_state: StateListener | None = None,
                 on_done: DoneListener | None = None, shared: SharedPool | None = None) -> None:
        """`shared`: the process's one pool, also used by the campaign scheduler (server/jobs.py)."""
        self.shared = shared
        self.settings, self.store, self.with_llm, self.poll_interval_s = settings, store, with_llm, poll_interval_s
        self.on_state, self.on_done = on_state, on_done  # the server's metrics
        self.dialing = True  # False once the server is shutting down: calls under way go on, no new ones
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
        if not self.dialing:
            return
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
            if self.pool is None and self.shared is not None:
                self.pool = await self.shared.get()
            if self.pool is None:
                pool = MediaWorkerPool(self.settings, self.store, with_llm=self.with_llm,
                                       on_state=self.on_state, on_done=self.on_done)
                await pool.start()  # a failure leaves no pool behind: the next loop tries again
                self.pool = pool
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

    async def wind_down(self, grace_s: float, goodbye_s: float) -> None:
        """Shutdown: dial nothing new, give the calls under way `grace_s` to end by themselves, then end
        the rest politely (a goodbye, partial) within `goodbye_s`."""
        self.dialing = False
        if self.calls:
            log.info("waiting up to %g s for %d calls to end", grace_s, len(self.calls))
            await asyncio.wait(list(self.calls.values()), timeout=grace_s)
        if self.calls and self.pool is not None:
            log.info("ending %d calls politely", len(self.calls))
            left = await self.pool.end_all("shutdown", goodbye_s)
            if left:
                log.warning("%d calls did not end within %g s; hanging up", left, goodbye_s)

    async def close(self) -> None:
        if self.shared is not None:
            await self.shared.close()
        elif self.pool is not None:
            await self.pool.close()  # workers hang up their calls; those interviews end partial
        for task in list(self.calls.values()):
            task.cancel()
        self.pool = None
