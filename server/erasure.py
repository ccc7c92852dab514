"""Erasure of a candidate (`DELETE /api/v1/candidates/{id}`, scope candidates:erase): the store removes
every row with their personal data (SessionStore.erase_candidate), then their recording files go. One
anonymous `candidate.erased` event (ids only) is the audit trail."""
from __future__ import annotations

import logging
from pathlib import Path

from models.recordings import DirectoryRecordings
from models.store import ErasedCandidate, SessionStore

log = logging.getLogger("phonescreen.server")


def delete_recordings(erased: ErasedCandidate, recordings_dir: str | Path) -> int:
    """Delete the recording files of erased or purged interviews (models.recordings). Returns files deleted."""
    return DirectoryRecordings(recordings_dir).delete(erased.interview_ids, erased.recordings)


def erase_candidate(store: SessionStore, candidate_id: str, recordings_dir: str | Path) -> ErasedCandidate:
    erased = store.erase_candidate(candidate_id)
    files = delete_recordings(erased, recordings_dir)
    log.info("candidate erased: %d interviews, %d recording files", len(erased.interview_ids), files,
             extra={"candidate_id": candidate_id})
    return erased
