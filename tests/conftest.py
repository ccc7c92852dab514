"""Shared fixtures: a real SQLite file per test (or a real PostgreSQL database, for the store tests that
parametrise `store_backend` over STORE_BACKENDS) and a real aiohttp server on 127.0.0.1."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from config.settings import ServerSettings, Settings, SipSettings, SttSettings, StoreSettings, TtsSettings, WebhookSettings
from config.templates import InterviewTemplate, load_template_file, sample_template_path
from ivr.engines import VoiceEngines
from models.store import SessionStore
from postgres import PgCluster, pg_bin_dir
from requirements import require
from server.app import make_app
from server.api.auth import SCOPES


@pytest.fixture(scope="session")
def pg_cluster():
    """One throwaway PostgreSQL cluster for the whole run, started on first use (tests/postgres.py)."""
    bin_dir = pg_bin_dir()
    require(bin_dir, "PostgreSQL (initdb, pg_ctl)", "apt-get install postgresql, or ./run test")
    cluster = PgCluster(bin_dir).start()
    yield cluster
    cluster.stop()


@pytest.fixture
def store_backend() -> str:
    """The database under a test's store: SQLite, unless a module parametrises this over STORE_BACKENDS
    (TEST_STORE_BACKEND=postgresql runs every other test on PostgreSQL too)."""
    return os.environ.get("TEST_STORE_BACKEND", "sqlite")


@pytest.fixture
def store_url(store_backend: str, request) -> str:
    """settings.store.url: "" (the SQLite file at store.path) or a new database of the test cluster."""
    if store_backend == "postgresql":
        return request.getfixturevalue("pg_cluster").new_database()
    return ""


@pytest.fixture
def settings(tmp_path: Path, store_url: str) -> Settings:
    # Webhook receivers in tests listen on 127.0.0.1, which production refuses by default.
    # No SIP dialing unless a test sets it up (tests/sip_harness.py): API tests schedule SIP interviews.
    return Settings(server=ServerSettings(max_body_bytes=64 * 1024), sip=SipSettings(enabled=False),
                    webhooks=WebhookSettings(allow_private_targets=True),
                    store=StoreSettings(path=str(tmp_path / "phonescreen.db"), url=store_url,
                                        recordings_dir=str(tmp_path / "recordings")))


@pytest.fixture
def store(settings: Settings):
    store = SessionStore(settings.store.target)
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
