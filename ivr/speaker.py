"""The speaker: a reply's text as audio at the line's rate. Fixed phrases (the same for every candidate of a
template) come from the process-wide phrase cache; anything else is synthesized on the engines' thread pool,
its chunks handed back as they are made, so the first plays while the rest is still being made."""
from __future__ import annotations

import asyncio
import logging
from typing import AsyncIterator, Collection

import numpy as np

from ivr.engines import VoiceEngines
from ivr.resample import resample

log = logging.getLogger("phonescreen.ivr")


class Speaker:
    def __init__(self, engines: VoiceEngines, sample_rate: int, fixed_phrases: Collection[str], *,
                 interview_id: str) -> None:
        self.engines, self.sample_rate = engines, sample_rate
        self.phrases = engines.phrases(sample_rate)
        self.fixed_phrases = fixed_phrases
        self._interview_id = interview_id

    async def audio(self, text: str, *, cached: bool = False) -> AsyncIterator[np.ndarray]:
        """The audio of `text` in chunks (int16 at the line's rate); nothing more after a TTS failure, which
        is logged (the call goes on)."""
        loop = asyncio.get_running_loop()
        if cached or text in self.fixed_phrases:
            yield await loop.run_in_executor(self.engines.executor, self.phrases.get, text)
            return
        chunks: asyncio.Queue[np.ndarray | None | BaseException] = asyncio.Queue()
        tts = self.engines.tts

        def produce() -> None:
            try:
                for chunk in tts.synthesize(text):
                    loop.call_soon_threadsafe(chunks.put_nowait, resample(chunk, tts.sample_rate, self.sample_rate))
                loop.call_soon_threadsafe(chunks.put_nowait, None)
            except BaseException as exc:  # surfaced on the event loop, where the call can go on
                loop.call_soon_threadsafe(chunks.put_nowait, exc)

        loop.run_in_executor(self.engines.executor, produce)
        while (item := await chunks.get()) is not None:
            if isinstance(item, BaseException):
                log.error("text-to-speech failed: %s", item, extra={"interview_id": self._interview_id})
                return
            yield item
