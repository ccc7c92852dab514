"""What every API module shares: the Route record, JSON in and out, paging, and the camelCase boundary.
Records are snake_case inside the program; the REST API speaks camelCase."""
from __future__ import annotations

import contextlib
import dataclasses
import json
import re
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterator

from aiohttp import web

from config.settings import Settings
from config.templates import InterviewTemplate

from config.templates import TemplateError
from models.store import SessionStore
from models.validation import RuleViolation, ValidationError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
STORE = web.AppKey("store", SessionStore)
SETTINGS = web.AppKey("settings", Settings)
API_ROUTE_TABLE: web.AppKey[list["Route"]] = web.AppKey("api_routes")  # what the app serves: the OpenAPI document
MAX_PAGE_SIZE = 100
JSON_TYPE = "application/json"
MAX_JSON_DEPTH = 32  # our deepest body (a template) nests 4 levels
# Values under these keys belong to the client (candidate metadata): their keys are never rewritten.
OPAQUE_KEYS = frozenset({"metadata", "job_facts"})  # user-chosen keys: never renamed


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    scope: str | None  # API key scope required; None = public
    doc: dict[str, Any] = field(default_factory=dict)  # the OpenAPI operation object


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": field}}


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def camel_path(path: str | None) -> str | None:
    """'factors[1].max_follow_ups' -> 'factors[1].maxFollowUps': a field path as the client spells it."""
    return ".".join(camel(segment) for segment in path.split(".")) if path else path


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def camelize(value: Any) -> Any:
    """Records and dicts to API JSON (camelCase keys). A record with its own JSON form (to_dict, e.g. a
    template) is shown in that form."""
    if isinstance(value, InterviewTemplate):
        value = value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {camel(k): (v if k in OPAQUE_KEYS else camelize(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [camelize(v) for v in value]
    return value


def snakeify(value: Any) -> Any:
    """API JSON to internal dicts (snake_case keys)."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            key = _snake(k) if isinstance(k, str) else k
            out[key] = v if key in OPAQUE_KEYS else snakeify(v)
        return out
    if isinstance(value, list):
        return [snakeify(v) for v in value]
    return value


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.json_response(camelize(data), status=status)


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request body as a snake_case dict; 415 for a body not sent as application/json, 400 for anything
    that is not a JSON object."""
    raw = await request.read()
    if raw and request.content_type != JSON_TYPE:  # a form or text/plain POST must not pass as JSON
        raise ApiError(415, "unsupported_media_type", f"send the body as JSON with Content-Type {JSON_TYPE}")
    try:
        body = json.loads(raw.decode("utf-8")) if raw else None
        # JSON may carry lone surrogates ("\ud800") that no UTF-8 store can hold: refuse them here.
        json.dumps(body, ensure_ascii=False).encode("utf-8")
        # Deep nesting: json (and our recursive snakeify) would exhaust the stack; refuse it here.
        if _depth_exceeds(body, MAX_JSON_DEPTH):
            raise ApiError(400, "invalid_json", f"the request body nests deeper than {MAX_JSON_DEPTH} levels")
    except RecursionError:
        raise ApiError(400, "invalid_json", f"the request body nests deeper than {MAX_JSON_DEPTH} levels") from None
    except (UnicodeDecodeError, UnicodeEncodeError, ValueError):
        raise ApiError(400, "invalid_json", "the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "the request body must be a JSON object")
    return snakeify(body)


def _depth_exceeds(value: Any, limit: int) -> bool:
    """True if containers nest deeper than `limit` (iterative: a deep value must not overflow the stack)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


FILE_REFUSED = "The file itself is unusable (not UTF-8 text, a missing or repeated column, invalid TOML, a bad value...)."


@contextlib.contextmanager
def file_content_rules(field: str | None) -> Iterator[None]:
    """Inside an uploaded file (CSV, TOML) nothing is a JSON Schema's to state: what is wrong there is a
    RuleViolation (422), named `field` unless the error names its own."""
    try:
        yield
    except RuleViolation:
        raise
    except (ValidationError, TemplateError) as exc:
        raise RuleViolation(exc.message, exc.field or field) from None


def reject_unknown(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ApiError(400, "unknown_field", f"unknown field {camel(unknown[0])!r}", camel(unknown[0]))


def query_int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "invalid_parameter", f"{name} must be an integer", name) from None
    if not low <= value <= high:
        raise ApiError(400, "invalid_parameter", f"{name} must be between {low} and {high}", name)
    return value


def paging(request: web.Request) -> tuple[int, int]:
    return (query_int(request, "page", 1, 1, 1_000_000),
            query_int(request, "pageSize", 20, 1, MAX_PAGE_SIZE))


def page_response(items: list[Any], total: int, page: int, page_size: int) -> web.Response:
    return json_response({"items": items, "total": total, "page": page, "page_size": page_size})


def store_of(request: web.Request) -> SessionStore:
    return request.app[STORE]


def settings_of(request: web.Request) -> Settings:
    return request.app[SETTINGS]
