"""`phonescreen serve` dials Twilio interviews created through the API as soon as they are due (campaigns
have their own scheduler; server/dialing.py runs both). The claim is place_twilio_call's first step,
scheduled -> dialing under the store's write lock, before the REST request: two servers never dial one
interview, and a crash after the claim leaves it dialing, never dialled twice. The server's status
callbacks and media stream take the call from there."""
from __future__ import annotations

import asyncio
import logging

from config.settings import Settings
from dialer.channels import TWILIO_SLOTS, fail_unplaced
from dialer.twilio.calls import TwilioCalls, call_until_ended
from models.lifecycle import IllegalTransition
from models.store import SessionStore

log = logging.getLogger("phonescreen.dialer")
DIALER_ERROR = "dialer_error"


class TwilioDialer:
    def __init__(self, settings: Settings, store: SessionStore, *, calls: TwilioCalls | None = None,
                 poll_interval_s: float = 1.0, slots: int = TWILIO_SLOTS) -> None:
        """`calls`: the server's REST client (the one its status callbacks hang up with)."""
        self.settings, self.store, self.twilio, self.poll_interval_s = settings, store, calls, poll_interval_s
        self.slots = slots
        self.dialing = True  # False once the server is shutting down: calls under way go on, no new ones
        self.calls: dict[str, asyncio.Task] = {}  # interview id -> its call, until the interview ends

    async def run_forever(self) -> None:
        try:
            while True:
                self.dial_due()
                await asyncio.sleep(self.poll_interval_s)
        finally:
            self.close()

    def dial_due(self) -> None:
        room = self.slots - len(self.calls)
        if not self.dialing or room <= 0:
            return
        for interview in self.store.due_calls("twilio", room):
            if interview.id not in self.calls:
                self.calls[interview.id] = asyncio.create_task(self._call(interview.id),
                                                               name=f"twilio-{interview.id}")

    async def _call(self, interview_id: str) -> None:
        try:
            await call_until_ended(self.settings, self.store, interview_id, calls=self.twilio)
        except IllegalTransition as exc:  # cancelled or claimed elsewhere since we looked
            log.info("not dialed: %s", exc, extra={"interview_id": interview_id})
        except Exception:  # never a loop of failing attempts on one interview: it ends failed
            log.exception("twilio call failed", extra={"interview_id": interview_id})
            fail_unplaced(self.store, interview_id, DIALER_ERROR)
        finally:
            self.calls.pop(interview_id, None)

    def close(self) -> None:
        for task in list(self.calls.values()):
            task.cancel()
