"""`phonescreen serve` dials SIP interviews created through the API as soon as they are due (campaigns
have their own scheduler; server/dialing.py runs both). The process's shared media worker pool starts on
the first call, so a server that never dials SIP never loads the voice models; the pool's claim
(scheduled -> dialing) keeps two servers from dialing one interview."""
from __future__ import annotations

import asyncio
import contextlib
import logging

from config.settings import Settings
from dialer.sip.pool import MediaWorkerPool
from dialer.sip.shared_pool import SharedPool
from dialer.sip.targets import NoRoute, sip_target
from models.lifecycle import IllegalTransition, Status
from models.store import SessionStore

log = logging.getLogger("phonescreen.dialer")


class SipDialer:
    def __init__(self, settings: Settings, store: SessionStore, shared: SharedPool, *,
                 poll_interval_s: float = 1.0) -> None:
        """`shared`: the process's one pool, also used by the campaign scheduler."""
        self.settings, self.store, self.shared, self.poll_interval_s = settings, store, shared, poll_interval_s
        self.dialing = True  # False once the server is shutting down: calls under way go on, no new ones
        self.calls: dict[str, asyncio.Task] = {}

    async def run_forever(self) -> None:
        try:
            while True:
                await self.dial_due()
                await asyncio.sleep(self.poll_interval_s)
        finally:
            self.close()

    async def dial_due(self) -> None:
        if not self.dialing:
            return
        room = self.shared.capacity - len(self.calls)
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
                with contextlib.suppress(IllegalTransition):  # claimed elsewhere since we looked: theirs
                    self.store.transition(interview.id, Status.DIALING)
                    self.store.transition(interview.id, Status.FAILED, outcome_code="no_route")
                continue
            pool = await self.shared.get()  # workers that cannot start raise (saying which setting to change)
            task = asyncio.create_task(self._call(pool, interview.id, target), name=f"sip-{interview.id}")
            self.calls[interview.id] = task

    async def _call(self, pool: MediaWorkerPool, interview_id: str, target: str) -> None:
        try:
            result = await pool.dial(interview_id, target)
            log.info("call ended: %s (SIP %s)", result.status, result.sip_code, extra={"interview_id": interview_id})
        except IllegalTransition as exc:  # cancelled or claimed elsewhere since we looked
            log.info("not dialed: %s", exc, extra={"interview_id": interview_id})
        finally:
            self.calls.pop(interview_id, None)

    def close(self) -> None:
        """Stop waiting for our calls; the pool's owner closes the pool (its workers hang up: partial)."""
        for task in list(self.calls.values()):
            task.cancel()
