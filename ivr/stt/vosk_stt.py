"""Streaming speech-to-text with Vosk (Kaldi): any language with a Vosk model, fed 8 kHz phone audio directly.

Vosk decodes as audio arrives, so partial text is there during the turn and finish() costs little. It also
closes segments by itself at pauses; a turn's transcript joins every segment it closed.
"""
from __future__ import annotations

import json
import threading
from pathlib import Path

import vosk

from ivr.frames import AudioFrame
from ivr.stt.base import SpeechToText, SttStream, Transcript, Word

vosk.SetLogLevel(-1)  # Kaldi logs every model load and decoder reset to stderr

# PartialResult walks the lattice: asked every 20 ms frame it nearly doubles the decoding cost. Partials
# serve the endpointer's trailing-off check, which works on pauses of half a second and more.
PARTIAL_EVERY_MS = 200

_models: dict[str, vosk.Model] = {}
_models_lock = threading.Lock()


def load_vosk_model(path: Path) -> vosk.Model:
    """One model per folder per process: a model is hundreds of MB and takes seconds to load."""
    if not path.is_dir():
        raise FileNotFoundError(f"no Vosk model folder at {path} (see `phonescreen models check`)")
    key = str(path.resolve())
    with _models_lock:
        if key not in _models:
            try:
                _models[key] = vosk.Model(key)
            except Exception as exc:  # vosk raises a bare Exception("Failed to create a model")
                raise RuntimeError(f"cannot load the Vosk model in {path}: {exc}") from None
        return _models[key]


class VoskStt(SpeechToText):
    name = "vosk"

    def __init__(self, model_path: str | Path, *, sample_rate: int = 8000):
        self.model = load_vosk_model(Path(model_path))
        self.sample_rate = sample_rate

    def open_stream(self) -> VoskStream:
        return VoskStream(self)


class VoskStream(SttStream):
    def __init__(self, stt: VoskStt):
        self._sample_rate = stt.sample_rate
        self._recognizer = vosk.KaldiRecognizer(stt.model, stt.sample_rate)
        self._recognizer.SetWords(True)
        self._texts: list[str] = []  # segments Vosk closed at pauses
        self._words: list[Word] = []
        self._last_partial = ""
        self._since_partial_ms = 0.0
        self._closed = False

    def push(self, frame: AudioFrame) -> Transcript | None:
        """A partial transcript when the text so far changed (checked every PARTIAL_EVERY_MS and whenever Vosk
        closes a segment), else None."""
        if self._closed:
            raise RuntimeError("push() after finish(): open a new stream for the next turn")
        if frame.sample_rate != self._sample_rate:
            raise ValueError(f"this Vosk stream takes {self._sample_rate} Hz frames, got {frame.sample_rate} Hz")
        self._since_partial_ms += frame.duration_ms
        if self._recognizer.AcceptWaveform(frame.pcm):
            self._add_segment(self._recognizer.Result())
            in_progress = ""
        elif self._since_partial_ms >= PARTIAL_EVERY_MS:
            in_progress = json.loads(self._recognizer.PartialResult()).get("partial", "")
        else:
            return None
        self._since_partial_ms = 0.0
        text = " ".join([*self._texts, in_progress]).strip()
        if text == self._last_partial:
            return None
        self._last_partial = text
        return Transcript(text, is_final=False, words=tuple(self._words))

    def finish(self) -> Transcript:
        if self._closed:
            raise RuntimeError("finish() called twice")
        self._closed = True
        self._add_segment(self._recognizer.FinalResult())
        confidences = [word.confidence for word in self._words if word.confidence is not None]
        return Transcript(" ".join(self._texts), is_final=True, words=tuple(self._words),
                          confidence=sum(confidences) / len(confidences) if confidences else None)

    def _add_segment(self, result_json: str) -> None:
        result = json.loads(result_json)
        if result.get("text"):
            self._texts.append(result["text"])
        # Vosk's times count from the start of the stream, across segments.
        self._words.extend(Word(w["word"], round(w["start"] * 1000), round(w["end"] * 1000), w.get("conf"))
                           for w in result.get("result", ()))
