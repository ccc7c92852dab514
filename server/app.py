"""The aiohttp application: middlewares, the API routes of each module, background jobs."""
from __future__ import annotations

from aiohttp import web

from config.settings import Settings
from ivr.engines import VoiceEngines
from models.store import SessionStore
from server.api import campaigns as api_campaigns, candidates as api_candidates, interviews as api_interviews
from server.api import positions as api_positions, webhooks as api_webhooks, openapi, recording_urls
from server.api import dnc as api_dnc, invitations as api_invitations, turns as api_turns
from server.admin import dashboard as admin, recruiter_call
from server.channels import campaign_link, twilio_endpoints, twilio_inbound, twilio_messages, web_channel
from server import health, metrics
from server.api.auth import ROUTE_SCOPES, auth_middleware
from server.errors import error_middleware, quiet_malformed_requests
from server.jobs import ROLE, start_background_jobs
from server.http import API_ROUTE_TABLE, SETTINGS, STORE, Handler, Route
from server.shutdown import OPS, Operations, wind_down
from server.voice import VOICE, VoiceRuntime, load_at_start

API_ROUTES: list[Route] = [*api_positions.ROUTES, *api_candidates.ROUTES, *api_interviews.ROUTES,
                           *api_campaigns.ROUTES, *api_webhooks.ROUTES, *recording_urls.ROUTES,
                           *api_dnc.ROUTES, *api_turns.ROUTES, *api_invitations.ROUTES]


def _add_api_routes(app: web.Application, routes: list[Route]) -> dict[web.AbstractRoute, str | None]:
    """One resource per path, in the order paths first appear, each closed by a catch-all that answers 405.
    aiohttp tries resources in order and skips one whose methods do not match, so without the catch-all
    `GET /candidates/import` would fall through to `GET /candidates/{id}`."""
    by_path: dict[str, list[Route]] = {}
    for route in routes:
        by_path.setdefault(route.path, []).append(route)
    scopes: dict[web.AbstractRoute, str | None] = {}
    for path, group in by_path.items():
        resource = app.router.add_resource(path)
        for route in group:
            scopes[resource.add_route(route.method, route.handler)] = route.scope
        resource.add_route("*", _method_not_allowed(sorted(route.method for route in group)))
    return scopes


def _method_not_allowed(allowed: list[str]) -> Handler:
    async def refuse(request: web.Request) -> web.StreamResponse:
        raise web.HTTPMethodNotAllowed(request.method, allowed)
    return refuse


async def _no_sniff(request: web.Request, response: web.StreamResponse) -> None:
    # Browsers must take a JSON error or a CSV as what it says it is, never sniff it into HTML.
    response.headers.setdefault("X-Content-Type-Options", "nosniff")


def make_app(settings: Settings, store: SessionStore, *, background_jobs: bool = True,
             engines: VoiceEngines | None = None, role: str = "all", load_voice: bool = False) -> web.Application:
    """`engines`: voice engines already loaded (tests, the demo); else `load_voice` loads and warms them
    before the server listens (`serve` with Twilio enabled), or the first in-process call loads them.
    `role`: which background jobs this node runs (server.jobs: all, api or dialer)."""
    app = web.Application(client_max_size=settings.server.max_body_bytes,
                          middlewares=[error_middleware, auth_middleware])
    app[SETTINGS] = settings
    app[STORE] = store
    app[VOICE] = VoiceRuntime(engines)
    app[API_ROUTE_TABLE] = [*API_ROUTES, *openapi.ROUTES]
    app[ROUTE_SCOPES] = _add_api_routes(app, app[API_ROUTE_TABLE])
    app.on_response_prepare.append(_no_sniff)
    if load_voice:
        app.on_startup.append(load_at_start)
    quiet_malformed_requests()
    web_channel.add_routes(app)  # /join, /ws/join, /static: no API key (the join token / admin login guard them)
    campaign_link.add_routes(app)  # /apply: a campaign's shared link (its token in the body guards it)
    admin.add_routes(app)  # /admin: the dashboard, behind the admin login
    recruiter_call.add_routes(app)  # /admin/recruiter: recruiter-led calls with the copilot, same login
    twilio_endpoints.add_routes(app)  # /twilio/status, /twilio/stream: Twilio's signature and stream token guard them
    twilio_inbound.add_routes(app)  # /twilio/voice: the number's voice webhook (inbound calls), signed too
    twilio_messages.add_routes(app)  # /twilio/message-status: delivery reports of invitation SMS, signed too
    app[OPS] = Operations()
    health.add_routes(app)  # /healthz, /readyz: no API key
    metrics.add_routes(app, store, app[OPS].pool_restarts)  # /metrics: no API key (scrape it from inside)
    recording_urls.add_routes(app, settings)  # /recordings/{id}: the signed URL is the permission
    if background_jobs:
        app[ROLE] = role
        app.cleanup_ctx.append(start_background_jobs)
        app.on_shutdown.append(wind_down)  # SIGTERM: let calls finish, then end them politely (server/shutdown.py)
    return app
