"""The OpenAPI document describes every route and nothing else (tests/test_fuzz.py fuzzes the live server
against it)."""
from __future__ import annotations

from aiohttp import web

from config.settings import Settings
from models.store import SessionStore
from server.app import API_ROUTES, make_app
from server.api.auth import SCOPES
from server.api.openapi import build_document
from server.api.openapi import ROUTES as DOC_ROUTES


def _served_operations(app: web.Application) -> set[tuple[str, str]]:
    return {(route.method.lower(), route.resource.canonical) for route in app.router.routes()
            # "*": the catch-all that answers 405 on every API path (server/app.py)
            if route.method not in ("HEAD", "*") and route.resource.canonical.startswith("/api/v1/")}


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
