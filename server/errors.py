"""Every error leaves the API as JSON {"error": {"code", "message", "field"}}; bad input is never a 500."""
from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from config.templates import TemplateError
from models.lifecycle import IllegalTransition
from models.store import Conflict, NotFound
from models.validation import RuleViolation, ValidationError
from server.http import ApiError, error_body

log = logging.getLogger("phonescreen.api")
AIOHTTP_SERVER_LOG = "aiohttp.server"

_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 409: "conflict", 410: "gone", 413: "payload_too_large", 415: "unsupported_media_type",
               422: "invalid_field"}


def _json_error(status: int, code: str, message: str, field: str | None = None,
                headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(error_body(code, message, field), status=status, headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return _json_error(exc.status, exc.code, exc.message, exc.field)
    except RuleViolation as exc:  # the schema cannot state this rule: 422, documented per operation
        return _json_error(422, "invalid_field", exc.message, exc.field)
    except (ValidationError, TemplateError) as exc:
        return _json_error(400, "invalid_field", exc.message, exc.field)
    except NotFound as exc:
        return _json_error(404, "not_found", str(exc))
    except IllegalTransition as exc:
        return _json_error(409, "illegal_transition", str(exc), "status")
    except Conflict as exc:
        return _json_error(409, "conflict", str(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        message = exc.reason if exc.status != 413 else "the request body is too large"
        return _json_error(exc.status, _HTTP_CODES.get(exc.status, "error"), message, headers=headers)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _json_error(500, "internal_error", "an internal error occurred; it has been logged")


class MalformedRequestFilter(logging.Filter):
    """aiohttp logs a request it cannot parse (a NUL byte in a header, a broken request line) as an error
    with a traceback, though the client already got its 400: that is the client's mistake, not ours, so it
    becomes one info line without the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            first_line = (exc.message or "").strip().splitlines()[:1]
            record.msg, record.args = "malformed HTTP request refused (400): %s", (" ".join(first_line),)
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.exc_info, record.exc_text = None, None
        return True


MALFORMED_REQUEST_FILTER = MalformedRequestFilter()


def quiet_malformed_requests() -> None:
    logging.getLogger(AIOHTTP_SERVER_LOG).addFilter(MALFORMED_REQUEST_FILTER)  # idempotent: one instance
