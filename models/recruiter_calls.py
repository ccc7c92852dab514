"""The store's half of recruiter-led calls (a mixin of SessionStore): who leads an interview, and the
recruiter's notes, saved as they type (one text per interview, replaced on each save)."""
from __future__ import annotations

from models.db import immediate

LED_BY = ("recruiter", "ai_handover")
MAX_NOTES_CHARS = 20_000


class RecruiterCalls:
    def set_led_by(self, iid: str, led_by: str) -> None:
        if led_by not in LED_BY:
            raise ValueError(f"led_by must be one of {', '.join(LED_BY)}, got {led_by!r}")
        with immediate(self.db):
            self.get_interview(iid)  # NotFound for an unknown id
            self.db["interviews"].update(iid, {"led_by": led_by, "updated_at": self.now()})

    def save_notes(self, iid: str, text: str) -> str:
        """Replace the recruiter's notes on an interview; returns when they were saved."""
        if len(text) > MAX_NOTES_CHARS:
            raise ValueError(f"notes must be at most {MAX_NOTES_CHARS} characters")
        with immediate(self.db):
            self.get_interview(iid)
            now = self.now()
            self.db["recruiter_notes"].upsert({"interview_id": iid, "text": text, "updated_at": now},
                                              pk="interview_id")
        return now

    def notes(self, iid: str) -> dict | None:
        """{"text", "updated_at"} or None when nobody wrote any."""
        row = self._one("SELECT text, updated_at FROM recruiter_notes WHERE interview_id = ?", [iid])
        return dict(row) if row else None
