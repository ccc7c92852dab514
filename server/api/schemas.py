"""JSON Schemas of the API's bodies, shared by the OpenAPI document (server/api/openapi.py)."""
from __future__ import annotations

from typing import Any


# Whitespace as Python's str.strip() and re's \s see it (they add \x1c-\x1f and \x85 to the usual set), so a
# pattern means the same to the validators on our side and to the client's JSON Schema engine.
SPACE = r"\s\x1c-\x1f\x85"
VISIBLE = rf"[^{SPACE}]"  # "not only whitespace": a pattern with one such character
_SEPARATOR = rf"[{SPACE}().-]*"
# models.validation.normalize_phone: separators are dropped, a leading 00 becomes '+', then E.164.
PHONE_PATTERN = rf"{_SEPARATOR}(?:\+|0{_SEPARATOR}0){_SEPARATOR}[1-9](?:{_SEPARATOR}\d){{6,14}}{_SEPARATOR}"


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def page_of(name: str) -> dict[str, Any]:
    return {"type": "object", "required": ["items", "total", "page", "pageSize"],
            "properties": {"items": {"type": "array", "items": ref(name)}, "total": {"type": "integer"},
                           "page": {"type": "integer"}, "pageSize": {"type": "integer"}}}


PAGE_PARAMETERS = [
    {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1_000_000, "default": 1}},
    {"name": "pageSize", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}},
]


def path_id(name: str = "id") -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def json_body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def json_ok(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERROR_REF = {"$ref": "#/components/responses/Error"}

# Each API module adds its own schemas here at import (COMPONENTS["schemas"][Name] = {...}).
COMPONENTS: dict[str, Any] = {"schemas": {
    "Error": {"type": "object", "required": ["error"],
              "properties": {"error": {"type": "object", "required": ["code", "message"],
                                       "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                                                      "field": {"type": "string", "nullable": True}}}}},
}}
