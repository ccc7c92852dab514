"""Webhook signing and delivery.

Signature scheme (for integrators)
----------------------------------
Every request is a POST of a JSON event with these headers:

    X-Phonescreen-Signature: t=<timestamp>,v1=<hex>
    X-Phonescreen-Timestamp: <timestamp>       (Unix seconds, the same value as t)
    X-Phonescreen-Event:     <event type>      (interview.status_changed, ..., or ping)
    X-Phonescreen-Delivery:  <delivery id>     (stable across retries: use it to drop duplicates)

where <hex> = hex(HMAC-SHA256(key=the endpoint secret, msg=f"{timestamp}.".encode() + raw body)).
To verify: recompute the HMAC over the raw body bytes exactly as received, compare in constant time,
and reject timestamps more than a few minutes from your clock (replay protection). `verify` does this.

Delivery: the store queues a delivery per subscribed endpoint in the same transaction as the event
(models.store.SessionStore._emit), so nothing is lost across restarts; the dispatcher sends what is due.
A 2xx answer is delivered; anything else is retried with exponential backoff until max_attempts.
"""
from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import ipaddress
import logging
import random
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable

import aiohttp
import yarl
from aiohttp.abc import AbstractResolver, ResolveResult

from config.settings import WebhookSettings
from models.db import Clock
from models.records import WebhookDelivery, WebhookEndpoint
from models.store import NotFound, SessionStore

log = logging.getLogger("phonescreen.webhooks")

SIGNATURE_HEADER = "X-Phonescreen-Signature"
TIMESTAMP_HEADER = "X-Phonescreen-Timestamp"
EVENT_HEADER = "X-Phonescreen-Event"
DELIVERY_HEADER = "X-Phonescreen-Delivery"
USER_AGENT = "phonescreen-webhooks/1"
MAX_RESPONSE_BYTES = 64 * 1024
MAX_ERROR_CHARS = 300
CONCURRENCY = 8
BATCH_SIZE = 50
JITTER = 0.1


def sign(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def verify(secret: str, header: str, body: bytes, now: float, tolerance_s: float = 300) -> bool:
    """True if `header` (X-Phonescreen-Signature) signs `body` with `secret` and its timestamp is within
    `tolerance_s` of `now` (Unix seconds). Any `v1` entry may match, so a receiver can rotate secrets."""
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isascii() and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or abs(now - timestamp) > tolerance_s:
        return False
    expected = sign(secret, timestamp, body)
    # Check every candidate without stopping early, so timing says nothing about which one matched.
    matches = [hmac.compare_digest(expected.encode(), c.encode("ascii", "replace")) for c in candidates]
    return any(matches)


def signed_headers(secret: str, timestamp: int, body: bytes, event_type: str, delivery_id: str) -> dict[str, str]:
    return {SIGNATURE_HEADER: f"t={timestamp},v1={sign(secret, timestamp, body)}",
            TIMESTAMP_HEADER: str(timestamp), EVENT_HEADER: event_type, DELIVERY_HEADER: delivery_id,
            "Content-Type": "application/json", "User-Agent": USER_AGENT}


@dataclass(frozen=True)
class AttemptResult:
    ok: bool
    status_code: int | None
    error: str | None


# Name lookups of webhook hosts run on their own threads: a receiver whose name takes seconds to fail must
# not occupy the loop's default executor, which serves static files (the candidate's /join page) and more.
DNS_THREADS = 4
_DNS_POOL = ThreadPoolExecutor(max_workers=DNS_THREADS, thread_name_prefix="webhook-dns")
_AI_ADDRCONFIG = socket.AI_ADDRCONFIG


async def resolve_host(host: str, port: int, family: int = socket.AF_UNSPEC) -> list[tuple]:
    """getaddrinfo on the webhook lookup threads (never the default executor)."""
    lookup = functools.partial(socket.getaddrinfo, host, port, family, socket.SOCK_STREAM, 0, _AI_ADDRCONFIG)
    return await asyncio.get_running_loop().run_in_executor(_DNS_POOL, lookup)


class WebhookResolver(AbstractResolver):
    """aiohttp's connector resolves through `resolve_host`, like the private-target check."""

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[ResolveResult]:
        results: list[ResolveResult] = []
        for info_family, _, proto, _, address in await resolve_host(host, port, family):
            if info_family == socket.AF_INET6 and (len(address) < 3 or address[3]):
                continue  # no IPv6 in this Python, or link-local (never a public receiver)
            results.append(ResolveResult(hostname=host, host=address[0], port=address[1], family=info_family,
                                         proto=proto, flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV))
        return results

    async def close(self) -> None:
        pass


def client_session() -> aiohttp.ClientSession:
    # No cookie jar: one receiver's cookies must never be sent to another.
    return aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(),
                                 connector=aiohttp.TCPConnector(resolver=WebhookResolver()))


def is_private_host(host: str) -> bool:
    """Loopback, private, link-local and other non-public addresses, and localhost names."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return not ipaddress.ip_address(host).is_global
    except ValueError:
        return False  # a name: judged by what it resolves to, at send time


async def _private_target(url: str) -> str | None:
    """Why this URL must not be called when private targets are not allowed, else None. A key with
    webhooks:write must not make the server probe its own network (SSRF)."""
    parsed = yarl.URL(url)
    host = parsed.host or ""
    if is_private_host(host):
        return f"{host} is not a public address"
    infos = await resolve_host(host, parsed.port or 443)
    for *_, sockaddr in infos:
        if is_private_host(sockaddr[0]):
            return f"{host} resolves to a non-public address"
    return None


async def post_event(session: aiohttp.ClientSession, url: str, headers: dict[str, str], body: bytes,
                     timeout_s: float, allow_private: bool = False) -> AttemptResult:
    """One POST. Every way it can go wrong (bad URL, refused, timeout, non-2xx, redirect, a non-public
    target) is a result, never an exception, so the caller can schedule a retry."""
    try:
        if not allow_private and (refusal := await _private_target(url)):
            return AttemptResult(False, None, f"refused: {refusal} (webhooks.allow_private_targets is off)")
        async with session.post(url, data=body, headers=headers, allow_redirects=False,
                                timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:
            head = await response.content.read(MAX_RESPONSE_BYTES)  # bounded: a receiver can't flood us
            if 200 <= response.status < 300:
                return AttemptResult(True, response.status, None)
            detail = " ".join(head.decode("utf-8", "replace").split())  # one line in logs and lastError
            error = f"HTTP {response.status}" + (" (redirects are not followed)" if 300 <= response.status < 400
                                                 else f": {detail}" if detail else "")
            return AttemptResult(False, response.status, error[:MAX_ERROR_CHARS])
    except asyncio.TimeoutError:
        return AttemptResult(False, None, f"timed out after {timeout_s:g} s")
    except (aiohttp.ClientError, OSError, ValueError) as exc:  # ValueError: URLs aiohttp cannot use
        return AttemptResult(False, None, f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS])


def backoff_delay(attempts: int, settings: WebhookSettings) -> float:
    """Seconds to wait after the `attempts`-th failed attempt (before jitter)."""
    return min(settings.backoff_max_s, settings.backoff_base_s * 2 ** (attempts - 1))


class WebhookDispatcher:
    def __init__(self, store: SessionStore, settings: WebhookSettings, session: aiohttp.ClientSession,
                 clock: Clock | None = None, on_result: Callable[[AttemptResult], None] | None = None):
        self.store, self.settings, self.session = store, settings, session
        self.clock = clock or store.clock
        self.on_result = on_result  # every attempt's result (the server's metrics)
        self._slots = asyncio.Semaphore(CONCURRENCY)

    async def run_forever(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:  # a locked database or a bug must not stop deliveries for good
                log.exception("webhook dispatch failed; retrying")
            await asyncio.sleep(self.settings.poll_interval_s)

    async def run_once(self) -> int:
        """Send every delivery that is due; returns how many were attempted."""
        seen: set[str] = set()
        while True:
            # `seen` guards against a tiny backoff making a delivery due again within this run.
            due = [d for d in self.store.claim_due_deliveries(BATCH_SIZE, self._lease_s()) if d.id not in seen]
            if not due:
                return len(seen)
            seen.update(d.id for d in due)
            endpoints = self._endpoints({d.endpoint_id for d in due})
            await asyncio.gather(*(self._attempt(d, endpoints.get(d.endpoint_id)) for d in due))

    def _lease_s(self) -> float:
        """Long enough for a whole batch to be sent (CONCURRENCY at a time, each within the timeout)."""
        return self.settings.timeout_s * (BATCH_SIZE // CONCURRENCY + 1) + 30.0

    def _endpoints(self, ids: set[str]) -> dict[str, WebhookEndpoint]:
        found = {}
        for wid in ids:
            try:
                found[wid] = self.store.get_webhook(wid)
            except NotFound:  # deleted since: its deliveries went with it
                pass
        return found

    async def _attempt(self, delivery: WebhookDelivery, endpoint: WebhookEndpoint | None) -> None:
        if endpoint is None:
            return
        if not endpoint.active:
            # A deactivated endpoint gets no more traffic, not even retries queued before.
            self._record(delivery, AttemptResult(False, None, "the webhook is inactive"), final=True)
            return
        async with self._slots:
            timestamp = int(self.clock().timestamp())
            body = delivery.payload.encode()
            headers = signed_headers(endpoint.secret, timestamp, body, delivery.event_type, delivery.id)
            result = await post_event(self.session, endpoint.url, headers, body, self.settings.timeout_s,
                                        self.settings.allow_private_targets)
        self._record(delivery, result, final=delivery.attempts + 1 >= self.settings.max_attempts)

    def _record(self, delivery: WebhookDelivery, result: AttemptResult, final: bool) -> None:
        if self.on_result is not None:
            self.on_result(result)
        attempts = delivery.attempts + 1
        retry_at = None
        if not result.ok and not final:
            delay = backoff_delay(attempts, self.settings) * random.uniform(1 - JITTER, 1 + JITTER)
            retry_at = self.clock() + timedelta(seconds=delay)
        try:
            self.store.record_delivery_attempt(delivery.id, ok=result.ok, status_code=result.status_code,
                                               error=result.error, retry_at=retry_at)
        except NotFound:  # the endpoint was deleted while we were sending
            return
        if result.ok:
            log.info("webhook %s delivered to %s (%s, attempt %d)", delivery.id, delivery.endpoint_id,
                     delivery.event_type, attempts)
        else:
            log.warning("webhook %s to %s failed (%s, attempt %d/%d, %s): %s", delivery.id, delivery.endpoint_id,
                        delivery.event_type, attempts, self.settings.max_attempts,
                        "will retry" if retry_at else "giving up", result.error)
