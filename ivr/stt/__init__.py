"""Choosing the speech-to-text engine for an interview's language (see SttSettings.engine)."""
from __future__ import annotations

from config.settings import SttSettings
from ivr.stt.base import SpeechToText


def _primary(language: str) -> str:
    """'en-US' -> 'en': a Vosk model serves every region of its language."""
    return language.split("-")[0].strip().lower()


def _vosk(settings: SttSettings, language: str) -> SpeechToText:
    if not settings.vosk_model_path:
        raise ValueError("[stt] engine = \"vosk\" needs [stt] vosk_model_path: a Vosk model folder "
                         "(`phonescreen models fetch vosk-en` gets the English one)")
    if _primary(settings.vosk_language) != _primary(language):
        raise ValueError(f"the interview is in {language!r} but [stt] vosk_language is {settings.vosk_language!r}: "
                         f"set vosk_model_path to a Vosk model for {_primary(language)!r}")
    from ivr.stt.vosk_stt import VoskStt  # each engine's library loads only when it is chosen

    return VoskStt(settings.vosk_model_path)


def _whisper(settings: SttSettings, language: str) -> SpeechToText:
    if _primary(language) != "en":
        raise ValueError(f"Whisper (tiny.en) only transcribes English; an interview in {language!r} needs a "
                         f"Vosk model for {_primary(language)!r}: set [stt] vosk_model_path and vosk_language")
    from ivr.stt.whisper_stt import WhisperStt

    return WhisperStt(settings)


def make_stt(settings: SttSettings, language: str) -> SpeechToText:
    """The engine for an interview in `language` (a template's code, e.g. 'en-US'). ValueError explains a
    setting that cannot work; FileNotFoundError names a missing model folder."""
    if settings.engine == "vosk":
        return _vosk(settings, language)
    if settings.engine == "whisper":
        return _whisper(settings, language)
    if settings.engine != "auto":
        raise ValueError(f"unknown [stt] engine {settings.engine!r}: auto, vosk or whisper")
    if settings.vosk_model_path and _primary(settings.vosk_language) == _primary(language):
        return _vosk(settings, language)
    if _primary(language) == "en":
        return _whisper(settings, language)
    configured = (f" (the configured Vosk model is for {settings.vosk_language!r})"
                  if settings.vosk_model_path else "")
    raise ValueError(f"no speech recognizer for {language!r}{configured}: set [stt] vosk_model_path to a Vosk "
                     f"model for {_primary(language)!r} and vosk_language = {_primary(language)!r}")
