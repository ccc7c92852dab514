"""The one MediaWorkerPool of a process, shared by the dialers in it (serve's SipDialer for interviews
outside campaigns, the campaign scheduler for campaign calls). It starts on the first call, so a process
that never dials SIP never loads the voice models."""
from __future__ import annotations

import asyncio

from config.settings import Settings
from dialer.sip.pool import DoneListener, MediaWorkerPool, StateListener
from models.store import SessionStore


class SharedPool:
    def __init__(self, settings: Settings, store: SessionStore, *, with_llm: bool = True,
                 on_state: StateListener | None = None, on_done: DoneListener | None = None) -> None:
        self.settings, self.store, self.with_llm = settings, store, with_llm
        self.on_state, self.on_done = on_state, on_done
        self.pool: MediaWorkerPool | None = None
        self._lock = asyncio.Lock()

    @property
    def capacity(self) -> int:
        """Calls the pool can hold at once, started or not."""
        return self.settings.sip.workers * self.settings.sip.calls_per_worker

    async def get(self) -> MediaWorkerPool:
        async with self._lock:
            if self.pool is None:
                pool = MediaWorkerPool(self.settings, self.store, with_llm=self.with_llm, on_state=self.on_state,
                                       on_done=self.on_done)
                await pool.start()  # a failed start stops the workers that did start
                self.pool = pool
            return self.pool

    def hang_up(self, interview_id: str) -> None:
        if self.pool is not None:
            self.pool.hang_up(interview_id)

    async def close(self) -> None:
        async with self._lock:
            pool, self.pool = self.pool, None
        if pool is not None:
            await pool.close()  # workers hang up their calls; those interviews end partial
