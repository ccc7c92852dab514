"""The holes a probe of the running server found (issue 18), each over a live loopback server and the real
store: the join socket's time limit and ceiling, deep JSON, JSON only as application/json, nosniff, the
import paths not shadowed by /{id}, a NUL byte in a header, webhook name lookups off the default thread pool,
the admin login's backoff per account and real client, and the OpenAPI document agreeing with the server."""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import aiohttp
import jsonschema_rs
import pytest

from config.settings import Settings, WebhookSettings
from server.channels import web_channel
from server.admin.auth import ADMIN, MAX_FAILURES, BACKOFF_MAX_S, AdminState, note_failure, wait_before_login
from server.app import API_ROUTES, make_app
from server.http import camelize
from server.api.openapi import build_document
from server.api.schemas import COMPONENTS
from server.webhooks import WebhookDispatcher, client_session

PASSWORD = "correct horse battery staple"
DEEP = 100_000


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Room for a 200 KB body of brackets; an admin password; the test client's peer is a trusted proxy.
    server = dataclasses.replace(settings.server, max_body_bytes=1_048_576, admin_password=PASSWORD,
                                 trusted_proxies="127.0.0.1")
    return dataclasses.replace(settings, server=server)


@pytest.fixture
async def client(aiohttp_client, settings, store, make_key):
    return await aiohttp_client(make_app(settings, store, background_jobs=False), headers=make_key())


def _json_operations() -> list[tuple[str, str]]:
    """(method, path with ids filled) of every operation that takes a JSON body."""
    document = build_document(API_ROUTES)
    found = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if "application/json" in operation.get("requestBody", {}).get("content", {}):
                found.append((method.upper(), re.sub(r"\{\w+\}", "1", path)))
    return found


# -- /ws/join -------------------------------------------------------------------------------------------
async def test_join_socket_closes_at_its_time_limit_even_while_pongs_arrive(client, monkeypatch) -> None:
    monkeypatch.setattr(web_channel, "JOIN_TIMEOUT_S", 1.0)
    monkeypatch.setattr(web_channel, "HEARTBEAT_S", 0.2)  # a pong every 0.2 s used to restart the 1 s clock
    started = time.monotonic()
    async with client.ws_connect("/ws/join") as ws:  # the client answers every ping (autoping)
        message = await ws.receive(timeout=5)
        assert message.type == aiohttp.WSMsgType.TEXT and message.json()["reason"] == "bad_request"
        closing = await ws.receive(timeout=5)
        assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert time.monotonic() - started < 3


async def test_unstarted_join_sockets_are_capped(client, monkeypatch) -> None:
    monkeypatch.setattr(web_channel, "MAX_PENDING_SOCKETS", 3)
    sockets = [await client.ws_connect("/ws/join") for _ in range(3)]
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/ws/join")
    assert refused.value.status == 503
    await sockets.pop().close()
    for _ in range(50):  # the server notices the close within a few ms
        try:
            sockets.append(await client.ws_connect("/ws/join"))
            break
        except aiohttp.WSServerHandshakeError:
            await asyncio.sleep(0.05)
    else:
        pytest.fail("a freed slot was never given to a new socket")
    for ws in sockets:
        await ws.close()


# -- JSON bodies and headers ---------------------------------------------------------------------------
async def test_deeply_nested_json_is_a_400_on_every_json_endpoint(client, caplog) -> None:
    operations = _json_operations()
    assert len(operations) >= 10
    body = "[" * DEEP + "]" * DEEP
    for nested in (body, '{"a":' * DEEP + "1" + "}" * DEEP, '{"metadata":' + body + "}"):
        for method, path in operations:
            response = await client.request(method, path, data=nested, headers={"Content-Type": "application/json"})
            assert response.status == 400, (method, path, await response.text())
            assert (await response.json())["error"]["code"] == "invalid_json", (method, path)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_json_bodies_only_as_application_json(client) -> None:
    for method, path in _json_operations():
        for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/octet-stream"):
            response = await client.request(method, path, data=b'{"name": "Ana"}',
                                            headers={"Content-Type": content_type})
            assert response.status == 415, (method, path, content_type)
            assert (await response.json())["error"]["code"] == "unsupported_media_type"
    ok = await client.post("/api/v1/candidates", json={"name": "Ana Ruiz", "phone": "+14155550100"})
    assert ok.status == 201


async def test_api_responses_carry_nosniff(client) -> None:
    for path in ("/api/v1/positions", "/api/v1/candidates/nope", "/api/v1/openapi.json", "/api/v1/nowhere",
                 "/static/join.js"):
        response = await client.get(path)
        assert response.headers.get("X-Content-Type-Options") == "nosniff", path
    refused = await client.post("/api/v1/candidates", data=b"x", headers={"Content-Type": "text/plain"})
    assert refused.headers.get("X-Content-Type-Options") == "nosniff"


@pytest.mark.parametrize("resource", ["candidates", "dnc", "positions"])
@pytest.mark.parametrize("method", ["GET", "OPTIONS", "PUT"])
async def test_import_paths_are_not_shadowed_by_id_routes(client, resource, method) -> None:
    response = await client.request(method, f"/api/v1/{resource}/import")
    assert response.status == 405, await response.text()
    assert response.headers["Allow"] == "POST"
    assert (await response.json())["error"]["code"] == "method_not_allowed"


async def test_unknown_methods_on_id_paths_are_405_with_allow(client) -> None:
    response = await client.request("OPTIONS", "/api/v1/candidates/cnd_x")
    assert response.status == 405 and set(response.headers["Allow"].split(",")) == {"GET", "PATCH", "DELETE"}


async def test_a_nul_byte_in_a_header_is_a_400_without_an_error_traceback(client, caplog) -> None:
    caplog.set_level(logging.INFO)
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(b"GET /api/v1/positions HTTP/1.1\r\nHost: x\r\nX-Probe: a\x00b\r\n\r\n")
    await writer.drain()
    head = await asyncio.wait_for(reader.read(200), 5)
    writer.close()
    assert head.startswith(b"HTTP/1.") and b" 400 " in head.split(b"\r\n")[0]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert any("malformed HTTP request" in r.getMessage() for r in caplog.records)


# -- webhook name lookups -------------------------------------------------------------------------------
async def test_static_join_js_stays_fast_while_webhooks_retry_unresolvable_hosts(client, store, monkeypatch,
                                                                               sample_template) -> None:
    """Lookups of names that take 1.5 s to fail (made up here: no query leaves the machine) fill the webhook
    lookup threads, not the default pool that serves the candidate's page."""
    real_getaddrinfo = socket.getaddrinfo

    def slow_getaddrinfo(host, *args, **kwargs):
        if isinstance(host, str) and host.endswith(".invalid"):
            time.sleep(1.5)
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", slow_getaddrinfo)
    loop = asyncio.get_running_loop()
    default_pool = ThreadPoolExecutor(max_workers=6)  # min(32, cpus + 4) on the 2-core machines we run on
    loop.set_default_executor(default_pool)
    for n in range(16):
        store.create_webhook(url=f"https://hook-{n}.invalid/events", events=["interview.status_changed"])
    position = store.create_position(sample_template)
    candidate, _ = store.upsert_candidate({"name": "Ana Ruiz", "phone": "+14155550100"})
    interview, _ = store.create_interview(candidate_id=candidate.id, position_id=position.id, channel="web",
                                          expires_at=store.clock() + timedelta(days=1))
    store.transition(interview.id, "cancelled")  # one status change: a delivery to each of the 16 hooks
    async with client_session() as session:
        dispatcher = WebhookDispatcher(store, WebhookSettings(allow_private_targets=False), session)
        deliveries = asyncio.create_task(dispatcher.run_once())
        await asyncio.sleep(0.2)  # the lookups are under way
        slowest = 0.0
        for _ in range(5):
            started = time.monotonic()
            response = await client.get("/static/join.js")
            assert response.status == 200 and len(await response.read()) > 100
            slowest = max(slowest, time.monotonic() - started)
            await asyncio.sleep(0.1)
        assert await asyncio.wait_for(deliveries, 30) == 16
    assert slowest < 0.5, f"/static/join.js took {slowest:.2f} s while webhook lookups ran"
    tried = store.list_deliveries(store.list_webhooks()[0][0].id)[0]
    assert tried and "gaierror" in (tried[0].last_error or "")


# -- the admin login ------------------------------------------------------------------------------------
async def _log_in(client, password: str, forwarded_for: str | None = None):
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return await client.post("/admin/login", data={"password": password, "next": "/admin"}, headers=headers,
                             allow_redirects=False)


async def test_someone_elses_wrong_passwords_do_not_lock_out_the_admin_behind_a_proxy(client) -> None:
    for _ in range(MAX_FAILURES + 3):
        assert (await _log_in(client, "guess", "203.0.113.9")).status in (401, 429)
    assert (await _log_in(client, PASSWORD, "203.0.113.9")).status == 429  # the guesser waits
    assert (await _log_in(client, PASSWORD, "198.51.100.7")).status == 303  # the admin does not
    # The client cannot pick its own entry: only the last one, written by the trusted proxy, counts.
    assert (await _log_in(client, PASSWORD, "198.51.100.7, 203.0.113.9")).status == 429


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(aiohttp_client, settings, store) -> None:
    untrusted = dataclasses.replace(settings, server=dataclasses.replace(settings.server, trusted_proxies=""))
    client = await aiohttp_client(make_app(untrusted, store, background_jobs=False))
    for n in range(MAX_FAILURES):  # a new made-up address on every try does not buy more tries
        assert (await _log_in(client, "guess", f"192.0.2.{n}")).status == 401
    assert (await _log_in(client, "guess", "192.0.2.200")).status == 429


async def test_wrong_passwords_back_off_instead_of_locking_a_wall(client) -> None:
    state = AdminState()
    key, now = "admin|203.0.113.9", 1000.0
    for _ in range(MAX_FAILURES):
        assert wait_before_login(state, key, now) == 0  # the first tries are free
        note_failure(state, key, now)
    waits = []
    for _ in range(12):
        waits.append(wait_before_login(state, key, now))
        now += waits[-1]
        assert wait_before_login(state, key, now) == 0  # once waited, a try is allowed
        note_failure(state, key, now)
    assert waits[:4] == [2, 4, 8, 16] and max(waits) == BACKOFF_MAX_S  # doubling, capped
    assert wait_before_login(state, "admin|198.51.100.7", now) == 0
    # Over HTTP: after the wait the right password gets in and clears the record.
    for _ in range(MAX_FAILURES):
        await _log_in(client, "guess", "203.0.113.9")
    assert (await _log_in(client, PASSWORD, "203.0.113.9")).status == 429
    admin_state = client.app[ADMIN]
    for failure in admin_state.failures.values():
        failure.last -= BACKOFF_MAX_S  # the wait has passed
    assert (await _log_in(client, PASSWORD, "203.0.113.9")).status == 303
    assert not admin_state.failures


# -- the OpenAPI document agrees with the server ----------------------------------------------------------
def _validator(name: str, draft: type = jsonschema_rs.Draft4Validator):
    """OpenAPI 3.0 schemas are Draft 4; Draft 7 adds propertyNames (metadata keys), which schemathesis'
    generator honours in our document."""
    return draft({"$ref": f"#/components/schemas/{name}", "components": COMPONENTS})


async def test_the_document_refuses_what_the_server_refuses(client, store, sample_template) -> None:
    position = store.create_position(sample_template)
    for voicemail in ({"action": "leave_message", "message": ""}, {"action": "leave_message", "message": " \n"},
                      {"action": "leave_message"}):
        assert not _validator("CampaignSettingsInput").is_valid({"voicemail": voicemail}), voicemail
        response = await client.post("/api/v1/campaigns", json={"name": "Spring", "positionId": position.id,
                                                                "channel": "sip", "settings": {"voicemail": voicemail}})
        assert response.status == 400, voicemail
    good = {"voicemail": {"action": "leave_message", "message": "Please call us back."}}
    assert _validator("CampaignSettingsInput").is_valid(good)
    assert (await client.post("/api/v1/campaigns", json={"name": "Spring", "positionId": position.id,
                                                         "channel": "sip", "settings": good})).status == 201


async def test_what_the_schema_cannot_state_is_a_documented_422(client, store, sample_template) -> None:
    document = build_document(API_ROUTES)
    # Key names: OpenAPI 3.0 has no propertyNames (we state it anyway, for 3.1-aware tools).
    for key in ("", "k" * 65):
        candidate = {"name": "Ana Ruiz", "metadata": {key: "value"}}
        assert _validator("CandidateInput").is_valid(candidate)
        assert not _validator("CandidateInput", jsonschema_rs.Draft7Validator).is_valid(candidate)
        refused = await client.post("/api/v1/candidates", json=candidate)
        assert refused.status == 422 and (await refused.json())["error"]["field"] == "metadata"
    assert "422" in document["paths"]["/api/v1/candidates"]["post"]["responses"]
    campaign = {"name": "Spring", "positionId": store.create_position(sample_template).id, "channel": "sip",
                "settings": {"window": {"start": "18:00", "end": "09:00"}}}
    assert _validator("CampaignCreate").is_valid(campaign)
    refused = await client.post("/api/v1/campaigns", json=campaign)
    assert refused.status == 422 and (await refused.json())["error"]["field"] == "settings.window.end"
    assert "422" in document["paths"]["/api/v1/campaigns"]["post"]["responses"]
    template = camelize(sample_template.to_dict())
    template["factors"][1]["name"] = template["factors"][0]["name"].upper()
    assert _validator("Template").is_valid(template)
    assert (await client.post("/api/v1/positions", json=template)).status == 422
    assert "422" in document["paths"]["/api/v1/positions"]["post"]["responses"]
    position = store.create_position(sample_template)
    candidate, _ = store.upsert_candidate({"name": "Ana Ruiz", "phone": "+14155550100"})
    body = {"candidateId": candidate.id, "positionId": position.id, "channel": "web",
            "expiresAt": "2001-01-31T17:00:00Z"}
    assert _validator("InterviewCreate").is_valid(body)
    assert (await client.post("/api/v1/interviews", json=body)).status == 422
    assert "422" in document["paths"]["/api/v1/interviews"]["post"]["responses"]


async def test_an_archived_position_answers_as_documented(client, store, sample_template) -> None:
    position = store.create_position(sample_template)
    assert (await client.delete(f"/api/v1/positions/{position.id}")).status == 200
    gone = await client.get(f"/api/v1/positions/{position.id}")
    assert gone.status == 410 and (await gone.json())["error"]["code"] == "archived"
    kept = await client.get(f"/api/v1/positions/{position.id}", params={"includeArchived": "true"})
    assert kept.status == 200 and (await kept.json())["archivedAt"]
    operation = build_document(API_ROUTES)["paths"]["/api/v1/positions/{id}"]["get"]
    assert "410" in operation["responses"]
    assert any(p["name"] == "includeArchived" for p in operation["parameters"])
