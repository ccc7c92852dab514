"""The OpenAPI document describes every route, and a schemathesis fuzz run against a live server finds no
500 and no hang."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from pathlib import Path

from aiohttp import web

from config.settings import ServerSettings, Settings, StoreSettings
from models.store import SessionStore
from server.app import API_ROUTES, make_app
from server.auth import SCOPES
from server.openapi import build_document
from server.openapi import ROUTES as DOC_ROUTES


def _served_operations(app: web.Application) -> set[tuple[str, str]]:
    return {(route.method.lower(), route.resource.canonical) for route in app.router.routes()
            if route.method != "HEAD" and route.resource.canonical.startswith("/api/v1/")}


def test_every_route_is_described_and_nothing_else(settings: Settings, store: SessionStore) -> None:
    app = make_app(settings, store, background_jobs=False)
    document = build_document([*API_ROUTES, *DOC_ROUTES])
    documented = {(method, path) for path, operations in document["paths"].items() for method in operations}
    served = _served_operations(app)
    assert len(served) >= 20
    assert served == documented
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation.get("summary") and operation.get("operationId"), (method, path)
            assert any(code.startswith("2") for code in operation["responses"]), (method, path)
            for name in path.replace("}", "{").split("{")[1::2]:
                assert any(p["name"] == name and p["in"] == "path" for p in operation.get("parameters", [])), \
                    f"{method} {path} does not describe its path parameter {name}"


def test_document_is_served_and_scopes_match(settings: Settings, store: SessionStore) -> None:
    document = build_document([*API_ROUTES, *DOC_ROUTES])
    for route in API_ROUTES:
        operation = document["paths"][route.path][route.method.lower()]
        assert operation["security"] == [{"apiKey": [route.scope]}]
        assert route.scope in SCOPES


class LiveServer:
    """The real app on its own event loop in a thread, so a subprocess can fuzz it."""

    def __init__(self, settings: Settings, store_path: str) -> None:
        self.settings, self.store_path = settings, store_path
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        store = SessionStore(self.store_path)
        runner = web.AppRunner(make_app(self.settings, store, background_jobs=False))
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
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_schemathesis_finds_no_server_error(tmp_path: Path, sample_template) -> None:
    port = _free_port()
    settings = Settings(server=ServerSettings(port=port, max_body_bytes=64 * 1024),
                        store=StoreSettings(path=str(tmp_path / "fuzz.db")))
    seed = SessionStore(settings.store.path)
    _, secret = seed.create_api_key("fuzz", list(SCOPES))
    seed.create_position(sample_template)  # real ids give the fuzzer something to find
    seed.upsert_candidate({"name": "Ana Ruiz", "phone": "+14155550100", "timezone": "UTC"})
    seed.close()
    with LiveServer(settings, settings.store.path):
        command = [str(Path(sys.executable).with_name("schemathesis")), "run",
                   f"http://127.0.0.1:{port}/api/v1/openapi.json",
                   "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
                               "response_schema_conformance",
                   "--phases", "examples,coverage,fuzzing",
                   "--max-examples", "25", "--seed", "20261121", "--request-timeout", "10",
                   "--generation-database", "none", "--no-color",
                   # The ping sends a request to whatever URL a fuzzed webhook holds (a DNS lookup for a made-up
                   # host would leave this machine); it is covered by tests/test_webhooks.py instead.
                   "--exclude-path-regex", r"/webhooks/\{id\}/test$",
                   "-H", f"Authorization: Bearer {secret}"]
        env = {**os.environ, "SCHEMATHESIS_HOOKS": ""}
        result = subprocess.run(command, capture_output=True, text=True, timeout=540, env=env, cwd=tmp_path)
    report = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, report
