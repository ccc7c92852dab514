"""Retention: every day, interviews that ended more than `retention.days` ago lose their transcript and
recording (scorecards stay without their quoted answers when `retention.keep_scorecards`). Off at 0."""
from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from config.settings import Settings
from models.store import SessionStore
from server.erasure import delete_recordings

log = logging.getLogger("phonescreen.retention")
DAY_S = 86_400.0


def apply_retention(store: SessionStore, settings: Settings) -> int:
    """One pass; returns how many interviews were purged."""
    days = settings.retention.days
    if days <= 0:
        return 0
    purged = store.purge_old_content(store.clock() - timedelta(days=days),
                                     keep_scorecards=settings.retention.keep_scorecards)
    for entry in purged:
        delete_recordings(entry, settings.store.recordings_dir)
    count = sum(len(entry.interview_ids) for entry in purged)
    if count:
        log.info("retention: purged the transcripts and recordings of %d interviews older than %d days", count, days)
    return count


async def retention_forever(store: SessionStore, settings: Settings, interval_s: float = DAY_S) -> None:
    """Once at start, then every `interval_s`."""
    while True:
        try:
            apply_retention(store, settings)
        except Exception:  # a locked store or a full disk must not stop the job for good
            log.exception("retention pass failed; trying again at the next one")
        await asyncio.sleep(interval_s)
