"""The fuzz suite, over a live loopback server and the real store: schemathesis over the whole API (bounded
examples, every check, including that the OpenAPI document accepts exactly what the server accepts),
garbage on every websocket endpoint, and broken CSV and TOML files to the import endpoints. Each part
counts what the server answered: no 5xx, no crash (the server still answers, nothing logged at error
level), and nothing lost (what was stored before is still there, and every row reported imported is)."""
from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import logging
import os
import random
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from config.settings import ServerSettings, Settings, StoreSettings, TwilioSettings, WebhookSettings
from models.store import SessionStore
from server import webhooks
from server.channels import twilio_endpoints
from server.app import make_app
from server.api.auth import SCOPES

SCHEMATHESIS_BUDGET_S = 180  # the bound on the whole-API run
SEED = 20261205
MAX_EXAMPLES = 60  # per operation and phase: ~12,000 requests in ~2 minutes on 2 cores
# Statuses the document gives for valid data the server may still refuse: a missing resource, a state
# conflict, an archived position, and 422 for rules no JSON Schema states (times relative to now, names
# unique across items); each is documented on its operation.
ACCEPTED_REFUSALS = ["2xx", "401", "403", "404", "409", "410", "422"]


class StatusCounter:
    """Counts every response the server sends, by status."""

    def __init__(self) -> None:
        self.statuses: collections.Counter[int] = collections.Counter()

    async def __call__(self, request: web.Request, response: web.StreamResponse) -> None:
        self.statuses[response.status] += 1

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)


class LiveServer:
    """The real app on its own event loop in a thread, so a subprocess can fuzz it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.counter = StatusCounter()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        store = SessionStore(self.settings.store.path)
        app = make_app(self.settings, store, background_jobs=False)
        app.on_response_prepare.append(self.counter)
        runner = web.AppRunner(app)
        self.loop.run_until_complete(runner.setup())
        self.loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.settings.server.port).start())
        self.ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(runner.cleanup())
        store.close()

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        assert self.ready.wait(10), "server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _loopback_only(host: str, port: int, family: int = socket.AF_UNSPEC) -> list[tuple]:
    """Every name a fuzzed webhook holds "resolves" to 127.0.0.1, which the private-target check refuses:
    the ping operation runs, and no lookup or request leaves this machine."""
    return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]


def _seed(path: str, sample_template) -> tuple[str, dict[str, int]]:
    """A store with real records for the fuzzer to find; returns an API key and the seeded counts."""
    store = SessionStore(path)
    _, secret = store.create_api_key("fuzz", list(SCOPES))
    position = store.create_position(sample_template)
    candidate, _ = store.upsert_candidate({"name": "Ana Ruiz", "phone": "+14155550100", "timezone": "UTC"})
    store.create_interview(candidate_id=candidate.id, position_id=position.id, channel="web",
                           expires_at=store.clock() + timedelta(days=1))
    store.create_webhook(url="https://receiver.example.com/hooks", events=["interview.status_changed"])
    counts = _counts(store)
    store.close()
    return secret, counts


def _counts(store: SessionStore) -> dict[str, int]:
    return {table: store.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("positions", "candidates", "interviews", "api_keys")}


def test_schemathesis_over_the_whole_api_finds_no_error(tmp_path: Path, sample_template, monkeypatch) -> None:
    monkeypatch.setattr(webhooks, "resolve_host", _loopback_only)
    port = _free_port()
    settings = Settings(server=ServerSettings(port=port, max_body_bytes=64 * 1024),
                        webhooks=WebhookSettings(allow_private_targets=False),
                        store=StoreSettings(path=str(tmp_path / "fuzz.db"), recordings_dir=str(tmp_path / "rec")))
    secret, seeded = _seed(settings.store.path, sample_template)
    (tmp_path / "schemathesis.toml").write_text(
        "[checks.positive_data_acceptance]\n"
        f"expected-statuses = {json.dumps(ACCEPTED_REFUSALS)}\n", encoding="utf-8")
    command = [str(Path(sys.executable).with_name("schemathesis")), "run",
               f"http://127.0.0.1:{port}/api/v1/openapi.json",
               "--checks", "all", "--phases", "examples,coverage,fuzzing,stateful",
               "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED), "--request-timeout", "10",
               "--generation-database", "none", "--no-color", "--continue-on-failure",
               "-H", f"Authorization: Bearer {secret}"]
    started = time.monotonic()
    with LiveServer(settings) as server:
        result = subprocess.run(command, capture_output=True, text=True, timeout=SCHEMATHESIS_BUDGET_S + 120,
                                env={**os.environ, "SCHEMATHESIS_HOOKS": ""}, cwd=tmp_path)
    elapsed = time.monotonic() - started
    report = result.stdout[-8000:] + result.stderr[-2000:]
    statuses = server.counter.statuses
    summary = (f"schemathesis: {sum(statuses.values())} requests in {elapsed:.0f} s, "
               f"{server.counter.server_errors} 5xx, statuses {dict(sorted(statuses.items()))}")
    print(summary)
    print("\n".join(line for line in result.stdout.splitlines() if "operations" in line.lower()
                    or "test cases" in line.lower() or "passed" in line.lower())[-2000:])
    assert result.returncode == 0, report
    assert server.counter.server_errors == 0, summary
    assert sum(statuses.values()) >= 2000, summary
    assert elapsed < SCHEMATHESIS_BUDGET_S + 60, summary
    store = SessionStore(settings.store.path)
    try:  # the seeded key still works and nothing the fuzzer was not allowed to delete went away
        assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        after = _counts(store)
        assert after["api_keys"] == seeded["api_keys"] and store.authenticate(secret) is not None
    finally:
        store.close()


# -- websockets ------------------------------------------------------------------------------------------
def _garbage(rng: random.Random) -> list[tuple[str, Any]]:
    """(kind, payload) messages a broken or hostile client might send."""
    messages: list[tuple[str, Any]] = [
        ("text", ""), ("text", "{"), ("text", "null"), ("text", "[]"), ("text", '"join"'), ("text", "\x00" * 10),
        ("text", '{"type": "join"}'), ("text", '{"type": "join", "token": 42}'),
        ("text", json.dumps({"type": "join", "token": "x" * 10_000})), ("text", '{"type": "start"}'),
        ("text", '{"event": "start", "start": {"streamSid": null}}'), ("text", '{"event": "media"}'),
        ("text", '{"event": "connected", "protocol": "Call", "version": "1.0.0"}'),
        ("text", json.dumps({"event": "start", "start": {"customParameters": {"interviewId": 1, "streamToken": []}}})),
        ("text", "[" * 50_000 + "]" * 50_000), ("text", "\ud7ff" * 1000), ("binary", b""), ("binary", b"\x00"),
        ("binary", b"\xff" * 641), ("binary", bytes(70_000)), ("text", "x" * 70_000),
    ]
    for _ in range(40):
        size = rng.choice([1, 3, 17, 640, 4096, 20_000])
        if rng.random() < 0.5:
            messages.append(("binary", rng.randbytes(size)))
        else:
            messages.append(("text", "".join(chr(rng.randrange(1, 0xD7FF)) for _ in range(min(size, 2000)))))
    return messages


async def _throw_at_socket(session: aiohttp.ClientSession, url: str, kind: str, payload: Any) -> str:
    """One connection, one garbage message (then silence); returns how it ended."""
    try:
        async with session.ws_connect(url, max_msg_size=0, timeout=aiohttp.ClientWSTimeout(ws_close=2)) as ws:
            if kind == "text":
                await ws.send_str(payload)
            else:
                await ws.send_bytes(payload)
            while True:  # the server must end it: reply and close, or close
                message = await ws.receive(timeout=10)
                if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    return f"closed {ws.close_code}"
    except aiohttp.WSServerHandshakeError as exc:
        return f"handshake {exc.status}"
    except (aiohttp.ClientConnectionError, ConnectionResetError):
        return "reset"


async def test_garbage_on_every_websocket_ends_cleanly(aiohttp_client, settings, store, sample_template,
                                                       caplog, monkeypatch) -> None:
    # A socket that sent only a valid "connected" waits for its "start" this long, then is closed.
    monkeypatch.setattr(twilio_endpoints, "START_TIMEOUT_S", 2.0)
    position = store.create_position(sample_template)
    candidate, _ = store.upsert_candidate({"name": "Ana Ruiz", "phone": "+14155550100"})
    interview, _ = store.create_interview(candidate_id=candidate.id, position_id=position.id, channel="web",
                                          expires_at=store.clock() + timedelta(days=1))
    # The Twilio channel on (with made-up credentials: no call is placed), so /twilio/stream takes sockets.
    twilio = TwilioSettings(enabled=True, account_sid="AC" + "0" * 32, auth_token="fuzz", from_number="+14155550000")
    app = make_app(dataclasses.replace(settings, twilio=twilio), store, background_jobs=False)
    counter = StatusCounter()
    app.on_response_prepare.append(counter)
    client = await aiohttp_client(app)
    socket_paths = sorted({route.resource.canonical for route in app.router.routes()
                           if route.resource is not None and route.resource.canonical.startswith(("/ws/", "/twilio/stream"))})
    assert socket_paths == ["/twilio/stream", "/ws/join"]
    messages = _garbage(random.Random(SEED))
    outcomes: collections.Counter[str] = collections.Counter()
    async with aiohttp.ClientSession() as session:
        for path in socket_paths:
            url = str(client.make_url(path))
            for start in range(0, len(messages), 16):  # 16 sockets at once
                batch = messages[start:start + 16]
                for outcome in await asyncio.gather(*(_throw_at_socket(session, url, k, p) for k, p in batch)):
                    outcomes[outcome] += 1
    print(f"websockets: {sum(outcomes.values())} garbage connections on {socket_paths}, outcomes {dict(outcomes)}, "
          f"HTTP statuses {dict(counter.statuses)}")
    assert sum(outcomes.values()) == 2 * len(messages)
    assert not [o for o in outcomes if o.startswith("handshake")], outcomes  # every socket was taken
    assert counter.server_errors == 0, counter.statuses
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]
    assert (await client.get("/healthz")).status == 200  # still answering
    assert store.get_interview(interview.id).status == "scheduled"  # nothing started, nothing changed


# -- broken import files -------------------------------------------------------------------------------------
GOOD_ROWS = "name,phone,email\nAna Ruiz,+14155550100,ana@example.com\nBo Li,+14155550101,\n"


def _broken_csvs(rng: random.Random) -> list[bytes]:
    fixed = [
        b"", b"\n\n\n", b"name,phone\n", b"\xef\xbb\xbf", b"\xff\xfe\x00n\x00a", b"name,phone\n\x00\x00,\x00\n",
        b'name,phone\n"Ana,+14155550100\n', b"name,phone\r" + b"Ana,+14155550100\r" * 3,
        b"name;phone\nAna;+14155550100\n", b"phone\n" + b"+1415555" * 1000 + b"\n",
        b",".join(b"c%d" % i for i in range(5000)) + b"\n" + b"x," * 4999 + b"x\n",
        b"name,phone\n" + b"=cmd|' /C calc'!A0,+14155550100\n", b"name,name,phone\nA,B,+14155550100\n",
        ("name,phone\n" + "\u202eAna,+14155550100\n").encode(), b"name,phone\n\xc3\x28,+14155550100\n",
        GOOD_ROWS.encode() + b"\x00broken,\"\n", GOOD_ROWS.encode("utf-16"),
        b"name,phone\n" + b"Ana,+14155550100\n" * 3000,
    ]
    for _ in range(12):
        body = bytearray(GOOD_ROWS.encode())
        for _ in range(rng.randrange(1, 8)):
            body[rng.randrange(len(body))] = rng.randrange(256)
        fixed.append(bytes(body))
    return fixed


async def test_broken_csv_and_toml_imports_are_refused_cleanly_and_lose_nothing(api, store, sample_template,
                                                                                caplog) -> None:
    kept = store.upsert_candidate({"name": "Kept Before", "phone": "+14155550199"})[0]
    store.add_do_not_call("+14155550198", "asked")
    files = _broken_csvs(random.Random(SEED))
    statuses: collections.Counter[int] = collections.Counter()
    for body in files:
        for path in ("/api/v1/candidates/import", "/api/v1/dnc/import"):
            for send in ("csv", "multipart"):
                if send == "csv":
                    response = await api.post(path, data=body, headers={"Content-Type": "text/csv"})
                else:
                    form = aiohttp.FormData()
                    form.add_field("file", body, filename="broken.csv", content_type="text/csv")
                    response = await api.post(path, data=form)
                statuses[response.status] += 1
                assert response.status < 500, (path, body[:80], await response.text())
                answer = await response.json()
                if response.status == 200 and path.endswith("candidates/import"):
                    for candidate_id in answer["candidates"]:  # every row reported imported is stored
                        assert store.get_candidate(candidate_id).name
        toml = body.decode("utf-8", "replace")
        response = await api.post("/api/v1/positions/import", data=toml.encode(),
                                  headers={"Content-Type": "application/toml"})
        statuses[response.status] += 1
        assert response.status == 422, (body[:80], await response.text())  # the file is unusable
    print(f"imports: {len(files)} broken files, {sum(statuses.values())} uploads, statuses {dict(statuses)}")
    assert sum(statuses.values()) == len(files) * 5 and statuses[200] > 0
    assert store.get_candidate(kept.id).phone == "+14155550199"  # nothing lost
    assert any(entry.phone == "+14155550198" for entry in store.list_do_not_call()[0])
    assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
