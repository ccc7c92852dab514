"""Where interview recordings live: a small storage interface, so that several nodes can share them. The
directory implementation is a folder (`store.recordings_dir`), local on one machine or mounted by every
node (NFS, ...): a call cut off on one node and resumed on another appends to the same file. An object
store would implement the same three methods."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable, Protocol

log = logging.getLogger("phonescreen.recordings")


class RecordingStorage(Protocol):
    def location(self, interview_id: str) -> Path:
        """The file a call of this interview writes (a resumed call appends to it)."""

    def exists(self, stored_path: str | None) -> bool:
        """Whether a recording path an interview holds can be read."""

    def delete(self, interview_ids: Iterable[str], stored_paths: Iterable[str]) -> int:
        """Delete these interviews' recordings (the stored paths, and each interview's own location for a
        call whose path was never stored, e.g. a crash mid-call). Returns how many files went."""


class DirectoryRecordings:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def location(self, interview_id: str) -> Path:
        return self.root / f"{interview_id}.wav"

    def exists(self, stored_path: str | None) -> bool:
        return bool(stored_path) and Path(stored_path).is_file()

    def delete(self, interview_ids: Iterable[str], stored_paths: Iterable[str]) -> int:
        paths = {Path(p) for p in stored_paths} | {self.location(iid) for iid in interview_ids}
        deleted = 0
        for path in paths:
            try:
                path.unlink()
                deleted += 1
            except FileNotFoundError:
                continue
            except OSError as exc:  # the rows are gone already; an operator must remove the file
                log.error("could not delete a recording: %s", exc)
        return deleted
