"""The OpenAPI 3 document, assembled from the routes' own descriptions so it cannot drift from them."""
from __future__ import annotations

from typing import Any

from aiohttp import web

from server.http import API_ROUTE_TABLE, Route
from server.api.schemas import COMPONENTS

API_PREFIX = "/api/v1"


def build_document(routes: list[Route]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        operation = dict(route.doc)
        operation.setdefault("responses", {"200": {"description": "OK"}})
        responses = operation["responses"]
        responses.setdefault("400", {"$ref": "#/components/responses/Error"})
        if "application/json" in operation.get("requestBody", {}).get("content", {}):
            responses.setdefault("415", {"$ref": "#/components/responses/Error"})  # server.http.read_json
        if route.scope:
            operation["security"] = [{"apiKey": [route.scope]}]
            operation.setdefault("x-scope", route.scope)
            responses.setdefault("401", {"$ref": "#/components/responses/Error"})
            responses.setdefault("403", {"$ref": "#/components/responses/Error"})
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.0.3",
        "info": {"title": "phonescreen API", "version": "1.0.0",
                 "description": "Phone and web screening interviews for call-center hiring."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            **COMPONENTS,
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer",
                                           "description": "An API key made with `phonescreen keys create`."}},
            "responses": {"Error": {"description": "Error",
                                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
        },
    }


async def serve_document(request: web.Request) -> web.Response:
    return web.json_response(build_document(request.app[API_ROUTE_TABLE]))  # the routes actually served


ROUTES: list[Route] = [Route("GET", f"{API_PREFIX}/openapi.json", serve_document, None,
                             {"summary": "This OpenAPI document", "operationId": "getOpenApi",
                              "responses": {"200": {"description": "The OpenAPI 3 document"}}})]
