"""The recordings storage interface's directory implementation (models/recordings.py) on a real folder:
where a call writes, what a stored path says, and deletion that never fails an erasure."""
from __future__ import annotations

import logging

from models.recordings import DirectoryRecordings, RecordingStorage


def test_a_folder_holds_one_file_per_interview(tmp_path) -> None:
    storage: RecordingStorage = DirectoryRecordings(tmp_path / "rec")
    assert storage.location("int_1") == tmp_path / "rec" / "int_1.wav"
    assert not storage.exists(None) and not storage.exists(str(storage.location("int_1")))
    storage.location("int_1").parent.mkdir()
    storage.location("int_1").write_bytes(b"RIFF")
    assert storage.exists(str(storage.location("int_1")))


def test_delete_takes_stored_paths_and_each_interviews_own_file(tmp_path, caplog) -> None:
    storage = DirectoryRecordings(tmp_path)
    moved = tmp_path / "elsewhere.wav"  # a path an interview stored
    for path in (moved, storage.location("int_crashed")):  # ... and a call whose path was never stored
        path.write_bytes(b"RIFF")
    (tmp_path / "int_odd.wav").mkdir()  # cannot be unlinked: logged, the rest still goes
    with caplog.at_level(logging.ERROR):
        deleted = storage.delete(["int_crashed", "int_gone", "int_odd"], [str(moved)])
    assert deleted == 2 and not moved.exists() and not storage.location("int_crashed").exists()
    assert "could not delete a recording" in caplog.text
    assert storage.delete(["int_crashed"], [str(moved)]) == 0  # already gone: nothing to do, no error
