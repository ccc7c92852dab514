"""The transcriber of one candidate turn: its STT stream, fed on a thread of its own so that decoding never
delays the call's frames. The session hands it the turn's frames as they arrive (line rate), hears its
partial transcripts back on the event loop, and awaits its final transcript once the turn has ended."""
from __future__ import annotations

import asyncio
import logging
import queue
import threading
from typing import Callable

from ivr.frames import AudioFrame, FrameChunker
from ivr.resample import StreamResampler
from ivr.stt.base import SpeechToText, Transcript

log = logging.getLogger("phonescreen.ivr")

_DROP = AudioFrame(b"", 8000)  # sentinel: abandon the stream (a burst that was not speech)


class TurnTranscriber:
    def __init__(self, stt: SpeechToText, line_rate: int, *, first_frame_end_ms: int, over_ai: bool,
                 on_partial: Callable[["TurnTranscriber", str, int], None], interview_id: str) -> None:
        """`first_frame_end_ms`: media time at the end of the first frame it will be given; `over_ai`: the
        turn began while the AI was talking (a nod may be just that); `on_partial(self, text, heard_until_ms)`
        is called on the event loop with the words of the audio up to that media time."""
        self.loop = asyncio.get_running_loop()
        self.result: asyncio.Future[Transcript] = self.loop.create_future()
        self.over_ai, self.first_frame_end_ms = over_ai, first_frame_end_ms
        self.given = 0  # frames handed to its thread ...
        self.done = 0  # ... and frames the thread has finished with (its partial, if any, sent)
        self._stt, self._line_rate, self._on_partial = stt, line_rate, on_partial
        self._interview_id = interview_id
        self._frames: queue.Queue[AudioFrame | None] = queue.Queue()
        threading.Thread(target=self._run, daemon=True, name="stt-turn").start()

    @property
    def backlog(self) -> int:
        """Frames given that the recogniser has not got through yet."""
        return self.given - self.done

    def put(self, frame: AudioFrame) -> None:
        self.given += 1
        self._frames.put(frame)

    def finish(self) -> None:
        """The turn has ended: `result` gets the final transcript."""
        self._frames.put(None)

    def drop(self) -> None:
        self._frames.put(_DROP)

    def _run(self) -> None:
        """Resample to the engine's rate, push frames, finish on None."""
        stream = self._stt.open_stream()
        rate = self._stt.sample_rate
        resampler = StreamResampler(self._line_rate, rate) if rate != self._line_rate else None
        chunker = FrameChunker(rate)
        heard_until_ms = self.first_frame_end_ms - 20  # media time of the audio the stream has been given
        try:
            while (frame := self._frames.get()) is not None:
                if frame is _DROP:
                    return
                heard_until_ms += 20
                pcm = frame.pcm if resampler is None else resampler.process(frame.as_array()).tobytes()
                for piece in chunker.feed(pcm):
                    partial = stream.push(piece)
                    if partial is not None and partial.text:
                        self.loop.call_soon_threadsafe(self._on_partial, self, partial.text, heard_until_ms)
                self.done += 1
            if resampler is not None:
                for piece in chunker.feed(resampler.flush().tobytes()):
                    stream.push(piece)
            self.loop.call_soon_threadsafe(_resolve, self.result, stream.finish(), None)
        except Exception as exc:  # an engine failure loses this turn's text, never the call
            log.exception("speech-to-text failed", extra={"interview_id": self._interview_id})
            self.loop.call_soon_threadsafe(_resolve, self.result, None, exc)


def _resolve(future: asyncio.Future, value: object, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)
