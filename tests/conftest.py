"""Shared fixtures: a real SQLite file per test and a real aiohttp server on 127.0.0.1."""
from __future__ import annotations

from pathlib import Path

import pytest

from config.settings import ServerSettings, Settings, SipSettings, SttSettings, StoreSettings, TtsSettings, WebhookSettings
from config.templates import InterviewTemplate, load_template_file, sample_template_path
from ivr.engines import VoiceEngines
from models.store import SessionStore
from server.app import make_app
from server.auth import SCOPES


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # Webhook receivers in tests listen on 127.0.0.1, which production refuses by default.
    # No SIP dialing unless a test sets it up (tests/sip_harness.py): API tests schedule SIP interviews.
    return Settings(server=ServerSettings(max_body_bytes=64 * 1024), sip=SipSettings(enabled=False),
                    webhooks=WebhookSettings(allow_private_targets=True),
                    store=StoreSettings(path=str(tmp_path / "phonescreen.db"),
                                        recordings_dir=str(tmp_path / "recordings")))


@pytest.fixture
def store(settings: Settings):
    store = SessionStore(settings.store.path)
    yield store
    store.close()


@pytest.fixture
def sample_template() -> InterviewTemplate:
    return load_template_file(sample_template_path())


@pytest.fixture(scope="session")
def engines() -> VoiceEngines:
    """The real engines (Whisper tiny.en, Piper), loaded once per test run; no LLM (the interviewer
    falls back to the template's wording), so calls are deterministic."""
    from ivr.stt.whisper_stt import WhisperStt
    from ivr.tts.piper_tts import PiperTts
    return VoiceEngines(stt=WhisperStt(SttSettings()), tts=PiperTts(TtsSettings()), llm=None)


@pytest.fixture
async def double():
    """A local Twilio (REST Calls, signed status callbacks, Media Streams client) on 127.0.0.1."""
    from twilio_double import TwilioDouble
    twilio = TwilioDouble()
    await twilio.start()
    yield twilio
    await twilio.close()


@pytest.fixture
def make_key(store: SessionStore):
    """make_key(scopes) -> the Authorization header for a new key with those scopes."""
    def make(scopes=SCOPES) -> dict[str, str]:
        _, secret = store.create_api_key("test", list(scopes))
        return {"Authorization": f"Bearer {secret}"}
    return make


@pytest.fixture
async def api(aiohttp_client, settings: Settings, store: SessionStore, make_key):
    """An HTTP client on a live server over loopback, holding a key with every scope."""
    app = make_app(settings, store, background_jobs=False)
    return await aiohttp_client(app, headers=make_key())
