"""The admin login: one password (server.admin_password), a signed session cookie, a login rate limit.

The cookie is `v1.<expiry>.<nonce>.<hmac>`, signed with a key made at start-up (a restart logs admins
out, and no signing secret needs storing). It is httpOnly, SameSite=Strict (so no other site can make a
logged-in request: that is the CSRF protection) and scoped to /admin. Logging out revokes its nonce.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import html
import ipaddress
import math
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Awaitable, Callable
from urllib.parse import quote

from aiohttp import web

from server.http import error_body, settings_of
from server.channels.web_channel import PAGE_HEADERS, STATIC_DIR

COOKIE = "phonescreen_admin"
COOKIE_PATH = "/admin"
MAX_FAILURES = 5  # wrong passwords per account and client before any wait ...
BACKOFF_BASE_S = 2.0  # ... then each further one doubles the wait from here ...
BACKOFF_MAX_S = 300.0  # ... up to this
FAILURE_MEMORY_S = 900.0  # failures are forgotten after this long without one
MAX_TRACKED_CLIENTS = 10_000
MAX_REVOKED = 10_000  # logged-out sessions remembered until they expire
MAX_PASSWORD_CHARS = 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Failures:
    count: int = 0
    last: float = 0.0  # time.monotonic() of the latest


@dataclass
class AdminState:
    key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    failures: "OrderedDict[str, Failures]" = field(default_factory=OrderedDict)  # login_key -> failures
    revoked: dict[str, int] = field(default_factory=dict)  # nonce -> expiry of logged-out sessions


ADMIN = web.AppKey("admin", AdminState)


# -- session cookies -----------------------------------------------------------------------------------
def _sign(key: bytes, body: str) -> str:
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


def make_session(state: AdminState, lifetime_s: int, now: float | None = None) -> str:
    expiry = int((time.time() if now is None else now) + lifetime_s)
    body = f"v1.{expiry}.{secrets.token_hex(16)}"
    return f"{body}.{_sign(state.key, body)}"


def session_nonce(state: AdminState, cookie: str | None, now: float | None = None) -> str | None:
    """The session's nonce if the cookie is ours, unexpired and not logged out; else None."""
    if not cookie or len(cookie) > 200:
        return None
    parts = cookie.split(".")
    if len(parts) != 4 or parts[0] != "v1":
        return None
    body, signature = ".".join(parts[:3]), parts[3]
    if not signature.isascii() or not hmac.compare_digest(_sign(state.key, body), signature):
        return None
    try:
        expiry = int(parts[1])
    except ValueError:
        return None
    if expiry <= (time.time() if now is None else now) or parts[2] in state.revoked:
        return None
    return parts[2]


def is_admin(request: web.Request) -> bool:
    return bool(settings_of(request).server.admin_password) and \
        session_nonce(request.app[ADMIN], request.cookies.get(COOKIE)) is not None


def see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def admin_page(handler: Handler) -> Handler:
    """An HTML page: without a session, off to the login page (and back here after it)."""
    async def guarded(request: web.Request) -> web.StreamResponse:
        if not is_admin(request):
            return see_other(f"/admin/login?next={quote(request.path)}")
        return await handler(request)
    return guarded


def admin_data(handler: Handler) -> Handler:
    """JSON, event streams, recordings: 401 without a session."""
    async def guarded(request: web.Request) -> web.StreamResponse:
        if not is_admin(request):
            return web.json_response(error_body("unauthorized", "log in at /admin/login"), status=401)
        return await handler(request)
    return guarded


# -- the rate limit ----------------------------------------------------------------------------------
# Keyed on the account and the real client: behind a proxy, one attacker's wrong passwords slow down that
# attacker, not every admin. Past MAX_FAILURES free tries each wrong one doubles the wait (a backoff, not a
# wall); a quiet FAILURE_MEMORY_S forgets them.
ACCOUNT = "admin"  # the dashboard has one account (server.admin_password)


def client_address(request: web.Request) -> str:
    """The real client: the peer, or, when the peer is a configured trusted proxy, the last address in
    X-Forwarded-For that is not itself a trusted proxy (earlier entries are the client's own claims)."""
    peer = request.remote or "unknown"
    proxies = _trusted(settings_of(request).server.trusted_proxies)
    if not proxies or not _is_in(peer, proxies):
        return peer
    hops = [hop.strip() for hop in ",".join(request.headers.getall("X-Forwarded-For", [])).split(",")]
    for hop in reversed([hop for hop in hops if hop]):
        if not _is_in(hop, proxies):
            return hop if _is_address(hop) else peer
    return peer


@functools.lru_cache(maxsize=8)
def _trusted(setting: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in setting.split(",") if part.strip())


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _is_in(address: str, networks: tuple) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def login_key(request: web.Request) -> str:
    return f"{ACCOUNT}|{client_address(request)}"


def wait_before_login(state: AdminState, key: str, now: float) -> int:
    """Seconds this account and client must wait before trying again (0: it may try now)."""
    failure = state.failures.get(key)
    if failure is None or now - failure.last >= FAILURE_MEMORY_S or failure.count < MAX_FAILURES:
        return 0
    delay = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** (failure.count - MAX_FAILURES))
    return max(0, math.ceil(failure.last + delay - now))


def note_failure(state: AdminState, key: str, now: float) -> None:
    failure = state.failures.pop(key, None)
    if failure is None or now - failure.last >= FAILURE_MEMORY_S:
        failure = Failures()
    failure.count, failure.last = failure.count + 1, now
    state.failures[key] = failure  # re-inserted: the most recent last, the oldest evicted first
    while len(state.failures) > MAX_TRACKED_CLIENTS:
        state.failures.popitem(last=False)


# -- login and logout ----------------------------------------------------------------------------------
def _login_page(message: str = "", status: int = 200, next_path: str = "/admin") -> web.Response:
    page = (STATIC_DIR / "login.html").read_text(encoding="utf-8")
    page = page.replace("{{message}}", html.escape(message)).replace("{{next}}", html.escape(next_path))
    return web.Response(text=page, status=status, content_type="text/html", headers=PAGE_HEADERS)


def _safe_next(value: object) -> str:
    """Only a path inside the dashboard: never an open redirect to another site."""
    if isinstance(value, str) and value.startswith("/admin") and "//" not in value and "\\" not in value \
            and len(value) <= 200 and not value.startswith("/admin/login"):
        return value
    return "/admin"


async def login_form(request: web.Request) -> web.StreamResponse:
    next_path = _safe_next(request.query.get("next"))
    if not settings_of(request).server.admin_password:
        return _login_page("The dashboard is off: set server.admin_password (PHONESCREEN_SERVER_ADMIN_PASSWORD).",
                           503, next_path)
    if is_admin(request):
        return see_other(next_path)
    return _login_page(next_path=next_path)


async def login(request: web.Request) -> web.StreamResponse:
    settings, state = settings_of(request), request.app[ADMIN]
    form = await request.post()
    next_path = _safe_next(form.get("next"))
    expected = settings.server.admin_password
    if not expected:
        return _login_page("The dashboard is off: set server.admin_password (PHONESCREEN_SERVER_ADMIN_PASSWORD).",
                           503, next_path)
    client, now = login_key(request), time.monotonic()
    wait = wait_before_login(state, client, now)
    if wait:
        return _login_page(f"Too many wrong passwords. Try again in {wait} seconds.", 429, next_path)
    password = form.get("password")
    given = password.encode() if isinstance(password, str) and len(password) <= MAX_PASSWORD_CHARS else b""
    if not hmac.compare_digest(given, expected.encode()):
        note_failure(state, client, now)
        return _login_page("Wrong password.", 401, next_path)
    state.failures.pop(client, None)
    lifetime = settings.server.admin_session_hours * 3600
    response = see_other(next_path)
    response.set_cookie(COOKIE, make_session(state, lifetime), max_age=lifetime, path=COOKIE_PATH, httponly=True,
                        samesite="Strict", secure=settings.public_url.startswith("https://"))
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    state = request.app[ADMIN]
    cookie = request.cookies.get(COOKIE)
    nonce = session_nonce(state, cookie)
    if nonce is not None:
        now = int(time.time())
        for old, expiry in list(state.revoked.items()):  # forget revocations of sessions expired anyway
            if expiry <= now:
                del state.revoked[old]
        if len(state.revoked) < MAX_REVOKED:
            state.revoked[nonce] = int(cookie.split(".")[1])
    response = see_other("/admin/login")
    response.del_cookie(COOKIE, path=COOKIE_PATH)
    return response
