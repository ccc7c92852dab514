"""The scoring job of `phonescreen serve`: finished interviews (completed, or partial after a dropped
call) without a scorecard are graded in a worker process, never on the event loop that serves the API
and the calls. The worker opens its own SessionStore on the same SQLite file (WAL: it writes while the
server reads), saves the scorecard there, and the store moves the interview to report_ready and queues
the `interview.scored` webhooks in the same transaction.

One worker process (max_workers=1): grading is CPU work (or waits on one LLM) and the machine also
runs the calls. It is started with `spawn`, not `fork`: the server has threads (engines, executors)
that a forked child would inherit in an unknown state.

Several nodes (`phonescreen serve` on several machines sharing a PostgreSQL store) may run this job: each
interview is graded under a work lease (`score:<id>`), so one node grades it; a node that dies leaves
its lease to run out and another grades the interview then.
"""
from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Callable

from config.settings import Settings
from models.db import new_owner
from models.lifecycle import Status
from models.records import Scorecard
from models.store import SessionStore

log = logging.getLogger("phonescreen.scoring")
RETRY_AFTER_S = 300.0  # a grading error is retried after this long, not in a tight loop
BATCH = 20
SCORE_LEASE_S = 900.0  # longer than any grading (an LLM's worst case); a dead node's lease ends after it

_worker_store: SessionStore | None = None  # the worker process's own store, opened on first use


@dataclass(frozen=True)
class JobResult:
    interview_id: str
    scorecard_id: str | None  # None: already scored by someone else in the meantime
    status: str | None
    pid: int  # the process that graded it


def pending_interviews(store: SessionStore, limit: int = BATCH) -> list[str]:
    """Finished interviews without a scorecard made since they (last) ended, oldest first: a dropped
    interview scored as partial is scored again once its resumed leg ends."""
    return [row["id"] for row in store.db.query(
        "SELECT id FROM interviews i WHERE status IN (?, ?) "
        "AND NOT EXISTS (SELECT 1 FROM scorecards s WHERE s.interview_id = i.id AND s.created_at >= i.ended_at) "
        "ORDER BY ended_at, id LIMIT ?", [Status.COMPLETED.value, Status.PARTIAL.value, limit])]


def scored_since_ended(store: SessionStore, interview_id: str) -> bool:
    scorecards = store.scorecards(interview_id)
    ended_at = store.get_interview(interview_id).ended_at
    return bool(scorecards) and (ended_at is None or scorecards[-1].created_at >= ended_at)


def _store_for(settings: Settings) -> SessionStore:
    global _worker_store
    if _worker_store is None or _worker_store.path != settings.store.target:
        _worker_store = SessionStore(settings.store.target, busy_timeout_ms=settings.store.busy_timeout_ms)
    return _worker_store


def score_in_worker(settings: Settings, interview_id: str, only_if_unscored: bool = True) -> JobResult:
    """Runs in the worker process: grade one interview with the worker's own store."""
    from scoring.scorecard import score_interview  # the worker imports the graders, the server need not
    store = _store_for(settings)
    if only_if_unscored and scored_since_ended(store, interview_id):
        return JobResult(interview_id, None, None, os.getpid())
    scorecard = score_interview(store, interview_id, settings)
    return JobResult(interview_id, scorecard.id, scorecard.status, os.getpid())


class ScoringWorker:
    """Hands interviews to one worker process and remembers failures so they are not retried at once."""

    def __init__(self, settings: Settings, initializer: Callable[..., Any] | None = None, initargs: tuple = ()):
        """`initializer(*initargs)` runs first in the worker process (e.g. the server's logging setup)."""
        self.settings = settings
        self._initializer, self._initargs = initializer, initargs
        self._pool = self._new_pool()
        self._failed: dict[str, float] = {}  # interview id -> monotonic time of the failure
        self.owner = new_owner()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=self._initializer, initargs=self._initargs)

    async def score(self, interview_id: str, *, only_if_unscored: bool = True) -> JobResult:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, score_in_worker, self.settings, interview_id,
                                              only_if_unscored)
        except BrokenProcessPool:  # the worker died (killed, out of memory): start a fresh one next time
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
            raise

    async def run_once(self, store: SessionStore) -> list[JobResult]:
        """Grade every pending interview (up to BATCH) once; errors are logged, not raised."""
        now = time.monotonic()
        self._failed = {iid: at for iid, at in self._failed.items() if now - at < RETRY_AFTER_S}
        done = []
        for interview_id in pending_interviews(store):
            if interview_id in self._failed:
                continue
            key = f"score:{interview_id}"
            if not store.claim_work(key, self.owner, SCORE_LEASE_S):
                continue  # another node is grading it
            try:
                done.append(await self.score(interview_id))
                store.release_work(key, self.owner)
            except Exception as exc:  # one bad interview must not stop the others being scored
                self._failed[interview_id] = time.monotonic()
                log.error("scoring interview %s failed: %s: %s", interview_id, type(exc).__name__, exc,
                          extra={"interview_id": interview_id})
        return done

    async def run_forever(self, store: SessionStore) -> None:
        while True:
            await self.run_once(store)
            await asyncio.sleep(self.settings.scoring.poll_interval_s)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def rescore_with_own_store(settings: Settings, store_path: str, interview_id: str) -> Scorecard:
    """A new scorecard version, graded with a store of this thread's own (a SQLite connection and its
    transactions belong to one thread): for the API, which runs it off the event loop."""
    from scoring.scorecard import score_interview
    store = SessionStore(store_path, busy_timeout_ms=settings.store.busy_timeout_ms, auto_migrate=False)
    try:
        return score_interview(store, interview_id, settings)
    finally:
        store.close()
