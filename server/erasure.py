"""Erasure of a candidate (`DELETE /api/v1/candidates/{id}`, scope candidates:erase): the store removes
every row with their personal data (SessionStore.erase_candidate), then their recording files go. One
anonymous `candidate.erased` event (ids only) is the audit trail."""
from __future__ import annotations

import logging
from pathlib import Path

from models.store import ErasedCandidate, SessionStore

log = logging.getLogger("phonescreen.server")


def delete_recordings(erased: ErasedCandidate, recordings_dir: str | Path) -> int:
    """Delete the recording files of erased or purged interviews: the stored paths, and `<id>.wav` in the
    recordings folder for a call whose path was never stored (a crash mid-call). Returns files deleted."""
    paths = {Path(p) for p in erased.recordings} | {Path(recordings_dir) / f"{iid}.wav" for iid in erased.interview_ids}
    deleted = 0
    for path in paths:
        try:
            path.unlink()
            deleted += 1
        except FileNotFoundError:
            continue
        except OSError as exc:  # the rows are gone already; an operator must remove the file
            log.error("could not delete a recording: %s", exc, extra={"candidate_id": erased.candidate_id})
    return deleted


def erase_candidate(store: SessionStore, candidate_id: str, recordings_dir: str | Path) -> ErasedCandidate:
    erased = store.erase_candidate(candidate_id)
    files = delete_recordings(erased, recordings_dir)
    log.info("candidate erased: %d interviews, %d recording files", len(erased.interview_ids), files,
             extra={"candidate_id": candidate_id})
    return erased
