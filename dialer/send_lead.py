"""How much a leg sends for each frame received: enough to keep a small lead of audio queued at the far end.

`bridge` sends when a frame arrives, and frames arrive late and then in a burst whenever the event loop
stalled (a model loading, another call's work). Sending one frame per frame received turns such a burst
into a backlog the far end plays for the rest of the call: every reply late by the stall. So a leg keeps
a lead instead: a few frames queued, enough to cover the loop running that late, never more. A SIP port
counts its queue (`dialer/sip/media.py`); a Twilio stream or a browser only knows what it sent, so
`PlayoutClock` works its queue out from the wall clock.
"""
from __future__ import annotations

import math
import time
from typing import Callable

from ivr.frames import FRAME_MS

# Frames kept queued ahead of the far end's clock: the event loop may run this late before the AI's
# speech has a gap in it; each costs 20 ms of reply latency.
SEND_LEAD_FRAMES = 3
# A leg that knows its far end's queue only from the clock (Twilio, a browser) keeps more: we send only
# when a frame comes in, and the candidate's frames cross the internet over TCP, so one may come 100 ms late.
CLOCKED_LEAD_FRAMES = 5
FRAME_S = FRAME_MS / 1000


def frames_short(queued: int, lead: int = SEND_LEAD_FRAMES) -> int:
    """Frames to send now to bring `queued` up to the lead (none while it is there or above)."""
    return max(0, lead - queued)


class PlayoutClock:
    """The far end's playout buffer, known only from what was sent and when: it plays 20 ms of audio per
    20 ms of wall clock. A buffer that ran dry played silence meanwhile, so the next frame starts from now
    (re-anchored), not where the last one ended: a stall is never caught up by sending the missed frames."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._played_out_at: float | None = None  # when what was sent so far will have played; None: empty

    def queued(self) -> int:
        """Frames sent but not yet played (a frame partly played counts)."""
        if self._played_out_at is None:
            return 0
        ahead = (self._played_out_at - self._clock()) / FRAME_S
        return max(0, math.ceil(round(ahead, 6)))  # rounded: 2.0000000001 frames are two

    def frames_wanted(self, lead: int = CLOCKED_LEAD_FRAMES) -> int:
        return frames_short(self.queued(), lead)

    def sent(self) -> None:
        """One frame was sent: it plays after the queue, or now if the queue ran dry."""
        now = self._clock()
        start = now if self._played_out_at is None else max(now, self._played_out_at)
        self._played_out_at = start + FRAME_S

    def clear(self) -> None:
        """The far end dropped its buffer (a barge-in): the next frame plays at once."""
        self._played_out_at = None
