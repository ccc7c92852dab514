"""The aiohttp application: middlewares, the API routes of each module, background jobs."""
from __future__ import annotations

from aiohttp import web

from config.settings import Settings
from ivr.engines import VoiceEngines
from models.store import SessionStore
from server import api_campaigns, api_candidates, api_interviews, api_positions, api_webhooks, openapi
from server import admin, twilio_endpoints, web_channel
from server.auth import ROUTE_SCOPES, auth_middleware
from server.errors import error_middleware
from server.http import STORE, Route
from server.voice import VOICE, VoiceRuntime

SETTINGS = web.AppKey("settings", Settings)
API_ROUTES: list[Route] = [*api_positions.ROUTES, *api_candidates.ROUTES, *api_interviews.ROUTES,
                           *api_campaigns.ROUTES, *api_webhooks.ROUTES]


def make_app(settings: Settings, store: SessionStore, *, background_jobs: bool = True,
             engines: VoiceEngines | None = None) -> web.Application:
    """`engines`: voice engines already loaded (tests, the demo); else the first in-process call loads them."""
    app = web.Application(client_max_size=settings.server.max_body_bytes,
                          middlewares=[error_middleware, auth_middleware])
    app[SETTINGS] = settings
    app[STORE] = store
    app[VOICE] = VoiceRuntime(engines)
    scopes = {}
    for route in [*API_ROUTES, *openapi.ROUTES]:
        scopes[app.router.add_route(route.method, route.path, route.handler)] = route.scope
    app[ROUTE_SCOPES] = scopes
    web_channel.add_routes(app)  # /join, /ws/join, /static: no API key (the join token / admin login guard them)
    admin.add_routes(app)  # /admin: the dashboard, behind the admin login
    twilio_endpoints.add_routes(app)  # /twilio/status, /twilio/stream: Twilio's signature and stream token guard them
    if background_jobs:
        from server.jobs import start_background_jobs
        app.cleanup_ctx.append(start_background_jobs)
    return app
