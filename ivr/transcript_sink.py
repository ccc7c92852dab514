"""What the voice engine writes as the call goes on: the narrow interface between `InterviewSession` and the
session store (models.store.SessionStore implements it; the engine never reads or writes anything else)."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, Protocol

from models.records import Turn


class TranscriptSink(Protocol):
    clock: Callable[[], datetime]  # "now", aware (tests move it): callback times are read against it

    def add_turn(self, iid: str, *, role: str, text: str, start_ms: int, end_ms: int,
                 stt_confidence: float | None = None, interrupted: bool = False) -> Turn:
        """Commit one finished turn, as it happens (a crash never loses a stored turn)."""

    def set_turn_evaluation(self, iid: str, turn_number: int, *, role: str, kind: str, factor: str | None = None,
                            question: str | None = None, evaluation: dict | None = None) -> None:
        """What the interviewer understood of a stored turn."""

    def set_recording(self, iid: str, recording_path: str) -> Any: ...

    def schedule_callback(self, iid: str, at: datetime) -> Any:
        """The candidate asked to be called back at `at`."""

    def transition(self, iid: str, new_status: str, *, reason: str | None = None) -> Any:
        """The interview's final status."""
