"""The engines one process shares between its calls: loaded once (models are the expensive part)."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from config.settings import LlmSettings, Settings, TtsSettings
from ivr.frames import frames_of
from ivr.llm.base import ChatModel
from ivr.phrasing import ask_in_time
from ivr.resample import resample
from ivr.stt.base import SpeechToText
from ivr.tts.base import TextToSpeech
from ivr.tts.phrase_cache import ACKNOWLEDGEMENTS, PhraseCache
from ivr.vad import VoiceActivity, WebRtcVoiceActivity


@dataclass
class VoiceEngines:
    stt: SpeechToText
    tts: TextToSpeech
    llm: ChatModel | None
    llm_deadline_s: float = LlmSettings.follow_up_deadline_s  # the follow-up's wording is late after this
    # One per call (it keeps state): (aggressiveness, sample rate) -> the VAD. Tests pass a fake.
    vad: Callable[[int, int], VoiceActivity] = WebRtcVoiceActivity
    # Blocking model work (STT decode, TTS synthesis) runs here, never on the event loop.
    executor: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(8, "ivr-engine"))
    phrase_dir: Path | None = None  # fixed phrases kept on disk (TtsSettings.phrase_cache_dir); None: memory only
    _caches: dict[int, PhraseCache] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def phrases(self, sample_rate: int) -> PhraseCache:
        """Fixed phrases synthesized once per process and leg rate."""
        with self._lock:
            if sample_rate not in self._caches:
                self._caches[sample_rate] = PhraseCache(self.tts, sample_rate, disk_dir=self.phrase_dir)
            return self._caches[sample_rate]


def load_engines(settings: Settings, language: str = "en", *, with_llm: bool = True) -> VoiceEngines:
    from ivr.llm import make_chat_model
    from ivr.stt import make_stt
    from ivr.tts.piper_tts import PiperTts
    from understanding.listener import warm_up
    warm_up()  # the understanding models, loaded before the first call like the voice engines
    return VoiceEngines(stt=make_stt(settings.stt, language), tts=PiperTts(settings.tts),
                        llm=make_chat_model(settings.llm) if with_llm else None,
                        llm_deadline_s=settings.llm.follow_up_deadline_s,
                        phrase_dir=phrase_cache_dir(settings.tts))


WARM_UP_TEXT = "Hello there."


def warm_engines(engines: VoiceEngines, sample_rate: int) -> None:
    """One short synthesis and one decode of it, so the first call does not pay for the models' first use
    (graph set-up, allocations: a second or so on our cores, while its frames pile up). The phrases every
    call may need at once (the acknowledgements) are made for the leg rate too (read from disk if kept)."""
    chunks = list(engines.tts.synthesize(WARM_UP_TEXT))
    pcm = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
    stream = engines.stt.open_stream()
    for frame in frames_of(resample(pcm, engines.tts.sample_rate, engines.stt.sample_rate), engines.stt.sample_rate):
        stream.push(frame)
    stream.finish()
    engines.phrases(sample_rate).warm(ACKNOWLEDGEMENTS)


async def warm_follow_ups(engines: VoiceEngines) -> None:
    """Time the follow-up model once before any call (ivr.phrasing.ask_in_time): one too slow for the
    deadline is not waited for."""
    if engines.llm is not None:
        await ask_in_time(engines.llm, engines.llm_deadline_s)


def phrase_cache_dir(settings: TtsSettings) -> Path | None:
    if settings.phrase_cache_dir == "off":
        return None
    return Path(settings.phrase_cache_dir) if settings.phrase_cache_dir else \
        Path.home() / ".cache" / "phonescreen" / "phrases"
