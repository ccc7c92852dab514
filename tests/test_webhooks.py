"""Webhooks end to end: a real receiver on 127.0.0.1 verifies every signature; the store queues deliveries,
the dispatcher sends them, retries with backoff on a controllable clock, and survives restarts."""
from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import aiohttp
import pytest
from aiohttp import web

from config.settings import WebhookSettings
from models.db import parse_time, utcnow
from models.store import WEBHOOK_EVENTS, SessionStore
from postgres import STORE_BACKENDS
from server.app import make_app
from server.webhooks import (DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookDispatcher,
                             client_session, sign, verify)

SECRET = "whsec_test_0123456789abcdef"
FAST = WebhookSettings(max_attempts=4, backoff_base_s=10.0, backoff_max_s=1000.0, timeout_s=2.0,
                       poll_interval_s=0.02, allow_private_targets=True)  # receivers listen on 127.0.0.1
PREFIX = "/api/v1/webhooks"


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance_to(self, moment: str) -> None:
        self.now = max(self.now, parse_time(moment))


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool

    @property
    def event(self) -> dict:
        return json.loads(self.body)


class Receiver:
    """An integrator's endpoint: verifies signatures with `verify`, records what arrives, can fail on purpose."""

    def __init__(self, clock) -> None:
        self.clock = clock
        self.fail_first = 0
        self.received: list[Received] = []
        self.release_slow = asyncio.Event()
        self.app = web.Application()
        self.app.router.add_post("/hook/{name}", self.hook)
        self.app.router.add_post("/slow", self.slow)
        self.app.router.add_post("/moved", self.moved)
        self.server = None

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    def paths(self) -> list[str]:
        return [r.path for r in self.received]

    async def hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        verified = verify(SECRET, request.headers.get(SIGNATURE_HEADER, ""), body, self.clock().timestamp())
        self.received.append(Received(request.path, dict(request.headers), body, verified))
        if len(self.received) <= self.fail_first:
            return web.Response(status=500, text="database down")
        return web.Response(status=204 if verified else 401)

    async def slow(self, request: web.Request) -> web.Response:
        await self.release_slow.wait()
        return web.Response(status=204)

    async def moved(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("/hook/redirected")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=STORE_BACKENDS)
def store_backend(request) -> str:
    return request.param


@pytest.fixture
def fake_store(settings, clock):
    store = SessionStore(settings.store.target, clock=clock)
    yield store
    store.close()


@pytest.fixture
async def receiver(aiohttp_server, clock):
    receiver = Receiver(clock)
    receiver.server = await aiohttp_server(receiver.app)
    yield receiver
    receiver.release_slow.set()


@pytest.fixture
async def session():
    async with client_session() as session:
        yield session


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def new_interview(store: SessionStore, template) -> str:
    position = store.create_position(template)
    candidate, _ = store.upsert_candidate({"name": "Ana", "phone": "+14155550100", "timezone": "UTC"})
    interview, _ = store.create_interview(candidate_id=candidate.id, position_id=position.id, channel="web",
                                          expires_at=store.clock() + timedelta(days=7))
    return interview.id


def only_delivery(store: SessionStore, wid: str):
    deliveries, total = store.list_deliveries(wid)
    assert total == 1
    return deliveries[0]


# -- signing ---------------------------------------------------------------------------------------
def test_verify_accepts_only_fresh_untampered_signatures() -> None:
    body, now = b'{"type":"ping"}', 1_800_000_000
    header = f"t={now},v1={sign(SECRET, now, body)}"
    assert verify(SECRET, header, body, now + 299)
    assert not verify(SECRET, header, body + b" ", now)  # tampered body
    assert not verify("whsec_other_secret_value", header, body, now)  # wrong secret
    assert not verify(SECRET, header, body, now + 301)  # stale: replay protection
    assert not verify(SECRET, header, body, now - 301)  # from the future
    assert not verify(SECRET, f"t={now + 1},v1={sign(SECRET, now, body)}", body, now)  # timestamp is signed too
    for malformed in ("", "v1=abc", f"t=x,v1={sign(SECRET, now, body)}", f"t={now}", "garbage,,=="):
        assert not verify(SECRET, malformed, body, now)
    # several v1 entries (a sender rotating secrets): any may match
    assert verify(SECRET, f"t={now},v1={'0' * 64},v1={sign(SECRET, now, body)}", body, now)


# -- delivery --------------------------------------------------------------------------------------
async def test_status_change_arrives_signed_with_headers_and_body(fake_store, sample_template, receiver,
                                                                  session, clock) -> None:
    webhook = fake_store.create_webhook(url=receiver.url("/hook/a"), events=["interview.status_changed"],
                                        secret=SECRET)
    iid = new_interview(fake_store, sample_template)
    fake_store.transition(iid, "in_progress")
    queued = only_delivery(fake_store, webhook.id)

    assert await WebhookDispatcher(fake_store, FAST, session).run_once() == 1

    [got] = receiver.received
    assert got.verified
    timestamp = int(clock.now.timestamp())
    assert got.headers[SIGNATURE_HEADER] == f"t={timestamp},v1={sign(SECRET, timestamp, got.body)}"
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", got.headers[SIGNATURE_HEADER])
    assert got.headers[TIMESTAMP_HEADER] == str(timestamp)
    assert got.headers[EVENT_HEADER] == "interview.status_changed"
    assert got.headers[DELIVERY_HEADER] == queued.id
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["User-Agent"] == "phonescreen-webhooks/1"
    assert got.body == queued.payload.encode()  # exactly the stored, signed bytes
    event = got.event
    assert event["type"] == "interview.status_changed" and event["id"].startswith("evt_")
    assert event["data"]["interviewId"] == iid
    assert (event["data"]["from"], event["data"]["to"], event["data"]["status"]) == (
        "scheduled", "in_progress", "in_progress")

    delivered = fake_store.get_delivery(queued.id)
    assert (delivered.status, delivered.attempts, delivered.last_status_code) == ("delivered", 1, 204)
    assert delivered.delivered_at and delivered.next_attempt_at is None
    assert await WebhookDispatcher(fake_store, FAST, session).run_once() == 0  # nothing is sent twice


async def test_completion_sends_both_events_and_only_subscribed_ones(fake_store, sample_template, receiver,
                                                                     session) -> None:
    fake_store.create_webhook(url=receiver.url("/hook/all"), events=list(WEBHOOK_EVENTS), secret=SECRET)
    fake_store.create_webhook(url=receiver.url("/hook/completed"), events=["interview.completed"], secret=SECRET)
    fake_store.create_webhook(url=receiver.url("/hook/scored"), events=["interview.scored"], secret=SECRET)
    iid = new_interview(fake_store, sample_template)
    fake_store.transition(iid, "in_progress")
    fake_store.transition(iid, "completed")

    assert await WebhookDispatcher(fake_store, FAST, session).run_once() == 4
    assert all(r.verified for r in receiver.received)
    by_path: dict[str, list[str]] = {}
    for got in receiver.received:
        by_path.setdefault(got.path, []).append(got.event["type"])
    assert sorted(by_path["/hook/all"]) == ["interview.completed", "interview.status_changed",
                                            "interview.status_changed"]
    assert by_path["/hook/completed"] == ["interview.completed"]
    assert "/hook/scored" not in by_path
    transitions = sorted((r.event["data"]["from"], r.event["data"]["to"]) for r in receiver.received
                         if r.event["type"] == "interview.status_changed")
    assert transitions == [("in_progress", "completed"), ("scheduled", "in_progress")]


async def test_failures_retry_with_exponential_backoff_until_delivered(fake_store, sample_template, receiver,
                                                                       session, clock) -> None:
    receiver.fail_first = 2
    webhook = fake_store.create_webhook(url=receiver.url("/hook/a"), events=["interview.status_changed"],
                                        secret=SECRET)
    fake_store.transition(new_interview(fake_store, sample_template), "in_progress")
    dispatcher = WebhookDispatcher(fake_store, FAST, session)

    for attempt, base_delay in ((1, 10), (2, 20)):
        sent_at = clock.now
        assert await dispatcher.run_once() == 1
        delivery = only_delivery(fake_store, webhook.id)
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", attempt, 500)
        assert delivery.last_error == "HTTP 500: database down"
        delay = (parse_time(delivery.next_attempt_at) - sent_at).total_seconds()
        assert base_delay * 0.9 <= delay <= base_delay * 1.1  # base * 2**(attempts-1), ±10% jitter
        clock.now = sent_at + timedelta(seconds=base_delay * 0.85)
        assert await dispatcher.run_once() == 0  # not due yet
        clock.advance_to(delivery.next_attempt_at)

    assert await dispatcher.run_once() == 1
    delivery = only_delivery(fake_store, webhook.id)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 3, 204)
    assert len(receiver.received) == 3 and all(r.verified for r in receiver.received)
    assert {r.headers[DELIVERY_HEADER] for r in receiver.received} == {delivery.id}  # stable for idempotency
    assert len({r.headers[TIMESTAMP_HEADER] for r in receiver.received}) == 3  # each attempt signed afresh


async def test_exhausted_attempts_mark_the_delivery_failed(fake_store, sample_template, receiver, session,
                                                           clock) -> None:
    receiver.fail_first = 1000
    settings = dataclasses.replace(FAST, max_attempts=4, backoff_max_s=15.0)
    webhook = fake_store.create_webhook(url=receiver.url("/hook/a"), events=["interview.status_changed"],
                                        secret=SECRET)
    fake_store.transition(new_interview(fake_store, sample_template), "in_progress")
    dispatcher = WebhookDispatcher(fake_store, settings, session)

    delays = []
    for _ in range(3):
        sent_at = clock.now
        assert await dispatcher.run_once() == 1
        delivery = only_delivery(fake_store, webhook.id)
        delays.append((parse_time(delivery.next_attempt_at) - sent_at).total_seconds())
        clock.advance_to(delivery.next_attempt_at)
    for delay, expected in zip(delays, (10, 15, 15)):  # 10, 20 and 40 capped at backoff_max_s
        assert expected * 0.9 <= delay <= expected * 1.1

    assert await dispatcher.run_once() == 1
    delivery = only_delivery(fake_store, webhook.id)
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 4, None)
    clock.now += timedelta(days=1)
    assert await dispatcher.run_once() == 0
    assert len(receiver.received) == 4


async def test_pending_deliveries_survive_a_restart(settings, sample_template, receiver, clock) -> None:
    path = settings.store.target
    first = SessionStore(path, clock=clock)
    webhook = first.create_webhook(url=receiver.url("/hook/a"), events=["interview.status_changed"],
                                   secret=SECRET)
    iid = new_interview(first, sample_template)
    first.transition(iid, "in_progress")
    receiver.fail_first = 1
    async with client_session() as session:
        assert await WebhookDispatcher(first, FAST, session).run_once() == 1  # fails: a retry is scheduled
    first.transition(iid, "completed")  # queued, never attempted before the "crash"
    first.close()

    clock.now += timedelta(seconds=11)  # past the first retry's time, whatever its jitter
    second = SessionStore(path, clock=clock)
    try:
        async with client_session() as session:
            assert await WebhookDispatcher(second, FAST, session).run_once() == 2
        deliveries, total = second.list_deliveries(webhook.id)
        assert total == 2 and {d.status for d in deliveries} == {"delivered"}
        assert sorted(d.attempts for d in deliveries) == [1, 2]
    finally:
        second.close()
    transitions = sorted((r.event["data"]["from"], r.event["data"]["to"]) for r in receiver.received[1:])
    assert transitions == [("in_progress", "completed"), ("scheduled", "in_progress")]


async def test_unreachable_or_unusable_receivers_are_retries_not_crashes(fake_store, sample_template, receiver,
                                                                         session) -> None:
    down = fake_store.create_webhook(url=closed_port_url(), events=["interview.status_changed"], secret=SECRET)
    # The API refuses such a URL; one stored by an older version must still not break the dispatcher.
    broken = fake_store.create_webhook(url="http://[::1/", events=["interview.status_changed"], secret=SECRET)
    healthy = fake_store.create_webhook(url=receiver.url("/hook/a"), events=["interview.status_changed"],
                                        secret=SECRET)
    fake_store.transition(new_interview(fake_store, sample_template), "in_progress")

    assert await WebhookDispatcher(fake_store, FAST, session).run_once() == 3
    for webhook, error in ((down, "ClientConnectorError"), (broken, "InvalidUrlClientError")):
        delivery = only_delivery(fake_store, webhook.id)
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, None)
        assert delivery.last_error.startswith(error) and delivery.next_attempt_at
    assert only_delivery(fake_store, healthy.id).status == "delivered"


async def test_slow_receiver_times_out_without_holding_up_others_and_redirects_fail(
        fake_store, sample_template, receiver, session) -> None:
    slow = fake_store.create_webhook(url=receiver.url("/slow"), events=["interview.status_changed"], secret=SECRET)
    moved = fake_store.create_webhook(url=receiver.url("/moved"), events=["interview.status_changed"],
                                      secret=SECRET)
    fast = fake_store.create_webhook(url=receiver.url("/hook/a"), events=["interview.status_changed"],
                                     secret=SECRET)
    fake_store.transition(new_interview(fake_store, sample_template), "in_progress")

    started = time.monotonic()
    assert await WebhookDispatcher(fake_store, dataclasses.replace(FAST, timeout_s=0.3), session).run_once() == 3
    assert time.monotonic() - started < 1.5

    assert only_delivery(fake_store, slow.id).last_error == "timed out after 0.3 s"
    redirected = only_delivery(fake_store, moved.id)
    assert (redirected.status, redirected.last_status_code) == ("pending", 302)
    assert redirected.last_error == "HTTP 302 (redirects are not followed)"
    assert only_delivery(fake_store, fast.id).status == "delivered"
    assert receiver.paths() == ["/hook/a"]  # the redirect target was never called


async def test_deactivated_webhook_gets_no_more_traffic(fake_store, sample_template, receiver, session) -> None:
    webhook = fake_store.create_webhook(url=receiver.url("/hook/a"), events=["interview.status_changed"],
                                        secret=SECRET)
    iid = new_interview(fake_store, sample_template)
    fake_store.transition(iid, "in_progress")
    fake_store.update_webhook(webhook.id, active=False)

    assert await WebhookDispatcher(fake_store, FAST, session).run_once() == 1
    delivery = only_delivery(fake_store, webhook.id)
    assert (delivery.status, delivery.last_error) == ("failed", "the webhook is inactive")
    fake_store.transition(iid, "completed")  # not queued at all while inactive
    assert fake_store.list_deliveries(webhook.id)[1] == 1
    assert receiver.received == []


async def test_server_background_job_delivers_and_stops_cleanly(aiohttp_client, settings, store, make_key,
                                                                sample_template, receiver) -> None:
    receiver.clock = utcnow
    app = make_app(dataclasses.replace(settings, webhooks=FAST), store, background_jobs=True)
    client = await aiohttp_client(app, headers=make_key())
    response = await client.post(PREFIX, json={"url": receiver.url("/hook/a"), "secret": SECRET,
                                               "events": ["interview.status_changed"]})
    assert response.status == 201
    store.transition(new_interview(store, sample_template), "in_progress")

    for _ in range(250):
        if receiver.received:
            break
        await asyncio.sleep(0.02)
    [got] = receiver.received
    assert got.verified and got.event["data"]["to"] == "in_progress"
    tasks = [t for t in asyncio.all_tasks() if t.get_name() == "deliver-webhooks"]
    assert len(tasks) == 1
    await client.close()
    assert tasks[0].cancelled()


# -- API -------------------------------------------------------------------------------------------
async def test_create_returns_secret_once_and_never_again(api, receiver) -> None:
    response = await api.post(PREFIX, json={"url": receiver.url("/hook/a"), "events": ["interview.completed"],
                                            "description": "  ATS sync  "})
    assert response.status == 201
    created = await response.json()
    assert created["secret"].startswith("whsec_") and len(created["secret"]) >= 40
    assert (created["url"], created["events"], created["active"], created["description"]) == (
        receiver.url("/hook/a"), ["interview.completed"], True, "ATS sync")

    chosen = await (await api.post(PREFIX, json={"url": "https://hooks.example.com/p?token=abc", "secret": SECRET,
                                                 "events": ["interview.scored", "interview.scored"]})).json()
    assert chosen["secret"] == SECRET and chosen["events"] == ["interview.scored"]

    for path in (f"{PREFIX}/{created['id']}", PREFIX):
        response = await api.get(path)
        text = await response.text()
        assert response.status == 200
        assert created["secret"] not in text and SECRET not in text and '"secret"' not in text
    listing = await (await api.get(PREFIX, params={"pageSize": "1"})).json()
    assert (listing["total"], listing["pageSize"], len(listing["items"])) == (2, 1, 1)


@pytest.mark.parametrize("body, field", [
    ({"url": "ftp://example.com/x", "events": ["interview.completed"]}, "url"),
    ({"url": "example.com/hook", "events": ["interview.completed"]}, "url"),
    ({"url": "http://", "events": ["interview.completed"]}, "url"),
    ({"url": "http://exa mple.com/", "events": ["interview.completed"]}, "url"),
    ({"url": "http://example.com:99999/", "events": ["interview.completed"]}, "url"),
    ({"url": "javascript:alert(1)", "events": ["interview.completed"]}, "url"),
    ({"url": "https://example.com/" + "x" * 2000, "events": ["interview.completed"]}, "url"),
    ({"url": 5, "events": ["interview.completed"]}, "url"),
    ({"url": None, "events": ["interview.completed"]}, "url"),
    ({"events": ["interview.completed"]}, "url"),
    ({"url": "https://example.com/h", "events": []}, "events"),
    ({"url": "https://example.com/h", "events": ["interview.bogus"]}, "events"),
    ({"url": "https://example.com/h", "events": "interview.completed"}, "events"),
    ({"url": "https://example.com/h", "events": [1]}, "events"),
    ({"url": "https://example.com/h"}, "events"),
    ({"url": "https://example.com/h", "events": ["interview.completed"], "secret": "short"}, "secret"),
    ({"url": "https://example.com/h", "events": ["interview.completed"], "secret": " " * 20}, "secret"),
    ({"url": "https://example.com/h", "events": ["interview.completed"], "secret": 12345678901234567}, "secret"),
    ({"url": "https://example.com/h", "events": ["interview.completed"], "description": "d" * 501}, "description"),
    ({"url": "https://example.com/h", "events": ["interview.completed"], "description": {"a": 1}}, "description"),
    ({"url": "https://example.com/h", "events": ["interview.completed"], "active": False}, "active"),
])
async def test_create_rejects_bad_input_naming_the_field(api, body, field) -> None:
    response = await api.post(PREFIX, json=body)
    assert response.status == 400
    assert (await response.json())["error"]["field"] == field
    assert (await (await api.get(PREFIX)).json())["total"] == 0


async def test_create_rejects_a_body_that_is_not_an_object(api) -> None:
    for raw in ("[]", "not json", ""):
        response = await api.post(PREFIX, data=raw, headers={"Content-Type": "application/json"})
        assert response.status == 400 and (await response.json())["error"]["code"] in ("invalid_body", "invalid_json")


async def test_update_and_delete(api) -> None:
    created = await (await api.post(PREFIX, json={"url": "https://example.com/a", "description": "old",
                                                  "events": ["interview.completed"]})).json()
    path = f"{PREFIX}/{created['id']}"
    response = await api.patch(path, json={"url": "https://example.com/b", "active": False, "description": None,
                                           "events": ["interview.scored", "interview.status_changed"]})
    assert response.status == 200
    updated = await response.json()
    assert (updated["url"], updated["active"], updated["description"], updated["events"]) == (
        "https://example.com/b", False, None, ["interview.scored", "interview.status_changed"])
    assert "secret" not in updated
    assert (await (await api.get(path)).json()) == updated

    for body, field in (({"active": "yes"}, "active"), ({"active": None}, "active"), ({"url": "nope"}, "url"),
                        ({"events": []}, "events"), ({"secret": SECRET}, "secret")):
        response = await api.patch(path, json=body)
        assert response.status == 400 and (await response.json())["error"]["field"] == field
    assert (await (await api.patch(f"{PREFIX}/whk_missing", json={"active": True})).json())["error"]["code"] \
        == "not_found"

    assert (await api.delete(path)).status == 204
    assert (await api.get(path)).status == 404
    assert (await api.delete(path)).status == 404
    assert (await api.get(f"{path}/deliveries")).status == 404


async def test_deliveries_endpoint_shows_queue_and_outcome(api, store, sample_template, receiver) -> None:
    receiver.clock = utcnow
    created = await (await api.post(PREFIX, json={"url": receiver.url("/hook/a"), "secret": SECRET,
                                                  "events": ["interview.status_changed"]})).json()
    iid = new_interview(store, sample_template)
    store.transition(iid, "in_progress")
    path = f"{PREFIX}/{created['id']}/deliveries"

    [pending] = (await (await api.get(path)).json())["items"]
    assert (pending["status"], pending["attempts"], pending["eventType"], pending["webhookId"]) == (
        "pending", 0, "interview.status_changed", created["id"])
    assert pending["payload"]["data"]["interviewId"] == iid and pending["deliveredAt"] is None

    async with client_session() as session:
        assert await WebhookDispatcher(store, FAST, session).run_once() == 1
    page = await (await api.get(path, params={"page": "1", "pageSize": "5"})).json()
    [delivered] = page["items"]
    assert (page["total"], page["page"], page["pageSize"]) == (1, 1, 5)
    assert (delivered["status"], delivered["attempts"], delivered["lastStatusCode"], delivered["lastError"],
            delivered["nextAttemptAt"]) == ("delivered", 1, 204, None, None)
    assert delivered["deliveredAt"] and delivered["payload"] == pending["payload"]
    assert (await api.get(path, params={"pageSize": "0"})).status == 400


async def test_ping_sends_one_signed_event_now_and_queues_nothing(api, receiver) -> None:
    receiver.clock = utcnow
    created = await (await api.post(PREFIX, json={"url": receiver.url("/hook/a"), "secret": SECRET,
                                                  "events": ["interview.completed"]})).json()
    response = await api.post(f"{PREFIX}/{created['id']}/test")
    assert response.status == 200
    assert await response.json() == {"ok": True, "statusCode": 204, "error": None}
    [got] = receiver.received
    assert got.verified and got.headers[EVENT_HEADER] == "ping"
    assert got.event["type"] == "ping" and got.event["data"] == {"webhookId": created["id"]}
    assert (await (await api.get(f"{PREFIX}/{created['id']}/deliveries")).json())["total"] == 0

    down = await (await api.post(PREFIX, json={"url": closed_port_url(), "events": ["interview.completed"]})).json()
    result = await (await api.post(f"{PREFIX}/{down['id']}/test")).json()
    assert result["ok"] is False and result["statusCode"] is None and "ClientConnectorError" in result["error"]
    assert (await api.post(f"{PREFIX}/whk_missing/test")).status == 404


async def test_routes_require_webhook_scopes(api, make_key) -> None:
    created = await (await api.post(PREFIX, json={"url": "https://example.com/a",
                                                  "events": ["interview.completed"]})).json()
    async with aiohttp.ClientSession() as anonymous:
        response = await anonymous.get(api.make_url(PREFIX))
        assert response.status == 401 and (await response.json())["error"]["code"] == "unauthorized"
    assert (await api.get(PREFIX, headers={"Authorization": "Bearer psk_wrong"})).status == 401

    reader = make_key(["webhooks:read"])
    assert (await api.get(PREFIX, headers=reader)).status == 200
    assert (await api.get(f"{PREFIX}/{created['id']}/deliveries", headers=reader)).status == 200
    for method, path in (("POST", PREFIX), ("PATCH", f"{PREFIX}/{created['id']}"),
                         ("DELETE", f"{PREFIX}/{created['id']}"), ("POST", f"{PREFIX}/{created['id']}/test")):
        response = await api.request(method, path, headers=reader, json={"active": False})
        assert response.status == 403 and (await response.json())["error"]["code"] == "forbidden"
    assert (await api.get(PREFIX, headers=make_key(["interviews:read"]))).status == 403
    assert (await (await api.get(f"{PREFIX}/{created['id']}")).json())["active"] is True  # nothing changed


async def test_openapi_documents_every_webhook_operation(api) -> None:
    document = await (await api.get("/api/v1/openapi.json")).json()
    operations = {(method, path): op for path, item in document["paths"].items() if path.startswith(PREFIX)
                  for method, op in item.items()}
    assert {(m, p) for m, p in operations} == {
        ("get", PREFIX), ("post", PREFIX), ("get", f"{PREFIX}/{{id}}"), ("patch", f"{PREFIX}/{{id}}"),
        ("delete", f"{PREFIX}/{{id}}"), ("get", f"{PREFIX}/{{id}}/deliveries"), ("post", f"{PREFIX}/{{id}}/test")}
    create = operations[("post", PREFIX)]["requestBody"]["content"]["application/json"]["schema"]
    assert create["additionalProperties"] is False and create["required"] == ["url", "events"]
    assert create["properties"]["events"]["items"]["enum"] == [
        "interview.status_changed", "interview.completed", "interview.scored"]
    assert operations[("delete", f"{PREFIX}/{{id}}")]["x-scope"] == "webhooks:write"
    assert "secret" not in document["components"]["schemas"]["Webhook"]["properties"]


async def test_private_targets_are_refused_unless_allowed(aiohttp_client, settings, store, make_key, sample_template,
                                                          receiver, session) -> None:
    """By default a webhooks:write key cannot point the server at its own network (SSRF)."""
    strict = dataclasses.replace(settings, webhooks=WebhookSettings())
    client = await aiohttp_client(make_app(strict, store, background_jobs=False), headers=make_key())
    for url in ("http://127.0.0.1:9/hook", "http://localhost/hook", "http://10.1.2.3/hook",
                "http://169.254.169.254/latest/meta-data"):
        response = await client.post(PREFIX, json={"url": url, "events": ["interview.status_changed"]})
        assert response.status == 400, url
        assert (await response.json())["error"]["field"] == "url"
    # A delivery already queued for a loopback receiver is refused at send time too, and nothing arrives.
    endpoint = store.create_webhook(url=receiver.url("/hook/strict"), events=["interview.status_changed"],
                                    secret=SECRET)
    position = store.create_position(sample_template)
    candidate, _ = store.upsert_candidate({"name": "Ana", "phone": "+14155550100", "timezone": "UTC"})
    interview, _ = store.create_interview(candidate_id=candidate.id, position_id=position.id, channel="sip",
                                          expires_at=store.clock() + timedelta(days=1))
    store.transition(interview.id, "dialing")
    await WebhookDispatcher(store, dataclasses.replace(FAST, allow_private_targets=False), session).run_once()
    delivery = store.list_deliveries(endpoint.id)[0][0]
    assert delivery.status == "pending" and "not a public address" in delivery.last_error
    assert receiver.received == []
