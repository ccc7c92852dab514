"""Logging for every phonescreen process: JSON lines for machines or plain text for humans, with secrets
and phone numbers masked before a record reaches any output."""
from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any, TextIO


def mask_phone(phone: str | None) -> str:
    """Logs (and pages that need no more) show only the last 4 digits of a phone number."""
    if not phone:
        return ""
    return "***" + phone[-4:]


def mask_email(address: str | None) -> str:
    """Logs show an e-mail address as its first letter and domain: a***@example.com."""
    if not address:
        return ""
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}***@{domain}" if local else "***"


REDACTED = "[redacted]"
_SECRET = re.compile(r"\b(?:psk|whsec)_[A-Za-z0-9_\-]+")
_E164 = re.compile(r"(?<![\w+])\+[1-9]\d{6,14}\b")
_HANDLER_NAME = "phonescreen"
# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def redact(text: str, token: str | None = None) -> str:
    if token:
        text = text.replace(token, REDACTED)
    text = _SECRET.sub(REDACTED, text)
    return _E164.sub(lambda m: mask_phone(m.group()), text)


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS and not k.startswith("_")}


class RedactingFilter(logging.Filter):
    """Masks defensively, so a careless log call cannot leak an API key, a webhook secret, a join token
    or a full phone number. The message is rendered here, once, and its arguments dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        token = getattr(record, "token", None)
        token = token if isinstance(token, str) and token != REDACTED else None
        record.msg, record.args = redact(record.getMessage(), token), ()
        for key, value in _extras(record).items():
            if isinstance(value, str):
                setattr(record, key, redact(value, token))
        if token:
            record.token = REDACTED
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, token)
        return True


class JsonFormatter(logging.Formatter):
    converter = time.gmtime  # ts in UTC, like every timestamp the store keeps

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {"ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
                                 "level": record.levelname.lower(), "logger": record.name,
                                 "msg": record.getMessage(), **_extras(record)}
        if record.exc_text:
            entry["exc"] = record.exc_text
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{k}={v}" for k, v in _extras(record).items())
        line = super().format(record)
        return f"{line} [{extras}]" if extras else line


def configure_logging(fmt: str = "json", level: str = "info", stream: TextIO | None = None,
                      copy_to: TextIO | None = None) -> None:
    """Route all logging to `stream` (stderr by default) and, if given, a copy to `copy_to` (a media
    worker's own log file); calling again replaces both."""
    if fmt not in ("json", "text"):
        raise ValueError(f"unknown log format {fmt!r}; use json or text")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.name == _HANDLER_NAME]:
        root.removeHandler(old)
    for target in (stream or sys.stderr, copy_to):
        if target is None:
            continue
        handler = logging.StreamHandler(target)
        handler.name = _HANDLER_NAME
        handler.addFilter(RedactingFilter())
        handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
        root.addHandler(handler)
    root.setLevel(level.upper())
