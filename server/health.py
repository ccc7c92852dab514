"""`GET /healthz` (the process is alive and serving) and `GET /readyz` (it can take calls: the store is
writable, the voice models load, the media workers are up, the Twilio settings are valid when enabled).
No API key: they say nothing private. /readyz answers 503 with what is not ready."""
from __future__ import annotations

from typing import Any

from aiohttp import web

from config.settings import SettingsError
from dialer.twilio.settings_check import check_twilio_settings
from models.db import database_errors
from server.http import SETTINGS, store_of
from server.shutdown import OPS
from server.voice import VOICE


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"}, headers={"Cache-Control": "no-store"})


def _store(request: web.Request) -> tuple[bool, str]:
    try:
        store_of(request).check_writable()
    except database_errors() as exc:
        return False, f"the store cannot be written: {exc}"
    return True, "writable"


def _media_workers(request: web.Request) -> tuple[bool, str]:
    pool = request.app[OPS].media_pool()
    if pool is None:
        return True, "not started (they start with the first SIP call)"
    failed = [w.index for w in pool.workers if w.ready.done() and (w.ready.exception() or not w.process.is_alive())]
    starting = [w.index for w in pool.workers if not w.ready.done()]
    if failed:
        return False, f"media workers {failed} are down"
    if starting:
        return False, f"media workers {starting} are starting (loading models)"
    return True, f"{len(pool.workers)} up, {pool.active_calls} calls"


def _models(request: web.Request, workers_ok: bool) -> tuple[bool, str]:
    engines = request.app[VOICE].engines
    if engines is not None:
        return True, "loaded in the server"
    if request.app[OPS].media_pool() is not None:
        return workers_ok, "loaded in the media workers" if workers_ok else "media workers are not ready"
    return True, "loaded on the first call"


def _twilio(request: web.Request) -> tuple[bool, str]:
    settings = request.app[SETTINGS]
    if not settings.twilio.enabled:
        return True, "disabled"
    try:
        check_twilio_settings(settings)  # its messages never echo a secret
    except SettingsError as exc:
        return False, str(exc)
    return True, "valid"


async def readyz(request: web.Request) -> web.Response:
    workers = _media_workers(request)
    checks = {"store": _store(request), "mediaWorkers": workers, "models": _models(request, workers[0]),
              "twilio": _twilio(request)}
    if request.app[OPS].stopping:
        checks["server"] = (False, "shutting down")
    body: dict[str, Any] = {"checks": {name: {"ok": ok, "detail": detail} for name, (ok, detail) in checks.items()}}
    body["notReady"] = [name for name, (ok, _) in checks.items() if not ok]
    body["status"] = "not_ready" if body["notReady"] else "ready"
    return web.json_response(body, status=503 if body["notReady"] else 200, headers={"Cache-Control": "no-store"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
