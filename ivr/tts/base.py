"""Text-to-speech: one interface. Synthesis is streamed sentence by sentence so the first words can be
played while the rest is still being made."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Iterator

import numpy as np


class TextToSpeech(ABC):
    name: str
    sample_rate: int  # of the audio it yields; the session resamples to the leg's rate
    # What makes its audio what it is (voice file, pace), for phrases kept on disk; None: never kept.
    identity: str | None = None

    @abstractmethod
    def synthesize(self, text: str) -> Iterator[np.ndarray]:
        """Yield int16 mono chunks (one per sentence or clause) as soon as each is ready."""
