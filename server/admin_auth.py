"""The admin login: one password (server.admin_password), a signed session cookie, a login rate limit.

The cookie is `v1.<expiry>.<nonce>.<hmac>`, signed with a key made at start-up (a restart logs admins
out, and no signing secret needs storing). It is httpOnly, SameSite=Strict (so no other site can make a
logged-in request: that is the CSRF protection) and scoped to /admin. Logging out revokes its nonce.
"""
from __future__ import annotations

import hashlib
import hmac
import html
import secrets
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Awaitable, Callable
from urllib.parse import quote

from aiohttp import web

from server.api_interviews import settings_of
from server.http import error_body
from server.web_channel import PAGE_HEADERS, STATIC_DIR

COOKIE = "phonescreen_admin"
COOKIE_PATH = "/admin"
MAX_FAILURES = 5  # wrong passwords per client address ...
FAILURE_WINDOW_S = 300.0  # ... within this window, then logins from it wait until the oldest ages out
MAX_TRACKED_CLIENTS = 10_000
MAX_REVOKED = 10_000  # logged-out sessions remembered until they expire
MAX_PASSWORD_CHARS = 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class AdminState:
    key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    failures: "OrderedDict[str, deque[float]]" = field(default_factory=OrderedDict)
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
def _client(request: web.Request) -> str:
    return request.remote or "unknown"


def _recent_failures(state: AdminState, client: str, now: float) -> deque[float]:
    times = state.failures.get(client, deque())
    while times and times[0] <= now - FAILURE_WINDOW_S:
        times.popleft()
    return times


def wait_before_login(state: AdminState, client: str, now: float) -> int:
    """Seconds this client must wait before trying again (0: it may try now)."""
    times = _recent_failures(state, client, now)
    if len(times) < MAX_FAILURES:
        return 0
    return max(1, int(times[0] + FAILURE_WINDOW_S - now) + 1)


def note_failure(state: AdminState, client: str, now: float) -> None:
    times = _recent_failures(state, client, now)
    times.append(now)
    state.failures[client] = times
    state.failures.move_to_end(client)
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
    client, now = _client(request), time.monotonic()
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
