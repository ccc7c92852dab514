"""Pacing: at most `rate` call attempts per second, as a token bucket. A campaign's bucket is kept in the
store (models.campaign_dialing: every dialer node takes from the same one) and runs on real time, Unix
seconds (pacing is about real calls hitting a trunk, so it runs on real time even when a test moves the
store's clock)."""
from __future__ import annotations

import time
from typing import Callable


class TokenBucket:
    def __init__(self, rate: float, *, burst: float | None = None, monotonic: Callable[[], float] = time.monotonic):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self.monotonic = monotonic
        self.tokens = self.burst
        self.updated = monotonic()

    def available(self) -> int:
        """Whole tokens available now."""
        now = self.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        return int(self.tokens)

    def take(self, count: int = 1) -> None:
        self.available()
        if count > self.tokens + 1e-9:
            raise ValueError(f"{count} tokens taken, {self.tokens:.2f} available")
        self.tokens -= count

    def set_rate(self, rate: float) -> None:
        self.available()
        self.rate, self.burst = rate, max(1.0, rate)
        self.tokens = min(self.tokens, self.burst)
