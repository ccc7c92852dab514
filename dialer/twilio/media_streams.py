"""Twilio Media Streams' websocket messages, parsed and built: the wire format only, no state.

From Twilio: `connected`, `start` (stream and call SIDs, media format, the TwiML <Parameter>s), `media`
(base64 mu-law, 8 kHz mono), `dtmf`, `mark` (an echo of ours once the audio before it has played, or
was cleared) and `stop`. To Twilio: `media`, `mark` and `clear` (drop the audio buffered so far).
Anything malformed raises StreamMessageError with a reason fit for a log line (never the payload).
"""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

MAX_MESSAGE_CHARS = 16_384  # a 20 ms media message is ~350 characters; nothing Twilio sends comes near
MAX_PAYLOAD_BYTES = 8_000  # one second of mu-law per message at most
MAX_SID_CHARS = 64
MAX_MARK_CHARS = 256
MAX_PARAMETERS = 32
DTMF_DIGITS = frozenset("0123456789*#ABCD")
MULAW_8K = ("audio/x-mulaw", 8000, 1)


class StreamMessageError(ValueError):
    pass


@dataclass(frozen=True)
class Connected:
    protocol: str
    version: str


@dataclass(frozen=True)
class Start:
    stream_sid: str
    call_sid: str
    account_sid: str
    tracks: tuple[str, ...]
    media_format: tuple[str, int, int]  # encoding, sample rate, channels
    custom_parameters: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Media:
    stream_sid: str
    track: str
    payload: bytes  # mu-law bytes, decoded from base64


@dataclass(frozen=True)
class Dtmf:
    stream_sid: str
    digit: str


@dataclass(frozen=True)
class Mark:
    stream_sid: str
    name: str


@dataclass(frozen=True)
class Stop:
    stream_sid: str
    call_sid: str


InboundMessage = Connected | Start | Media | Dtmf | Mark | Stop


def parse_message(text: str) -> InboundMessage:
    """One text frame from Twilio."""
    if len(text) > MAX_MESSAGE_CHARS:
        raise StreamMessageError(f"message of {len(text)} characters is over the {MAX_MESSAGE_CHARS} limit")
    try:
        message = json.loads(text)
    except ValueError:
        raise StreamMessageError("not JSON") from None
    if not isinstance(message, dict):
        raise StreamMessageError("not a JSON object")
    event = message.get("event")
    parser = _PARSERS.get(event) if isinstance(event, str) else None
    if parser is None:
        raise StreamMessageError(f"unknown event {str(event)[:32]!r}")
    return parser(message)


def _connected(message: dict[str, Any]) -> Connected:
    return Connected(_text(message, "protocol", required=False), _text(message, "version", required=False))


def _start(message: dict[str, Any]) -> Start:
    body = _object(message, "start")
    stream_sid = _sid(message, "streamSid")
    if body.get("streamSid", stream_sid) != stream_sid:
        raise StreamMessageError("start.streamSid differs from streamSid")
    fmt = body.get("mediaFormat")
    if not isinstance(fmt, dict):
        raise StreamMessageError("start.mediaFormat is missing")
    media_format = (fmt.get("encoding"), fmt.get("sampleRate"), fmt.get("channels"))
    tracks = body.get("tracks", ["inbound"])
    if not isinstance(tracks, list) or not all(isinstance(t, str) for t in tracks):
        raise StreamMessageError("start.tracks must be a list of strings")
    params = body.get("customParameters", {})
    if not isinstance(params, dict) or len(params) > MAX_PARAMETERS or \
            not all(isinstance(k, str) and isinstance(v, str) and len(v) <= 512 for k, v in params.items()):
        raise StreamMessageError("start.customParameters must be a small object of strings")
    return Start(stream_sid, _sid(body, "callSid"), _sid(body, "accountSid"), tuple(tracks), media_format,
                 dict(params))


def _media(message: dict[str, Any]) -> Media:
    body = _object(message, "media")
    encoded = _text(body, "payload", limit=MAX_PAYLOAD_BYTES * 4 // 3 + 4)
    try:
        payload = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise StreamMessageError("media.payload is not base64") from None
    return Media(_sid(message, "streamSid"), _text(body, "track", required=False) or "inbound", payload)


def _dtmf(message: dict[str, Any]) -> Dtmf:
    digit = _text(_object(message, "dtmf"), "digit")
    if digit not in DTMF_DIGITS:
        raise StreamMessageError("dtmf.digit is not a keypad digit")
    return Dtmf(_sid(message, "streamSid"), digit)


def _mark(message: dict[str, Any]) -> Mark:
    return Mark(_sid(message, "streamSid"), _text(_object(message, "mark"), "name", limit=MAX_MARK_CHARS))


def _stop(message: dict[str, Any]) -> Stop:
    body = message.get("stop")
    call_sid = _text(body, "callSid", required=False) if isinstance(body, dict) else ""
    return Stop(_sid(message, "streamSid"), call_sid)


_PARSERS = {"connected": _connected, "start": _start, "media": _media, "dtmf": _dtmf, "mark": _mark,
            "stop": _stop}


def _object(message: dict[str, Any], key: str) -> dict[str, Any]:
    value = message.get(key)
    if not isinstance(value, dict):
        raise StreamMessageError(f"{key} must be an object")
    return value


def _text(message: dict[str, Any], key: str, *, required: bool = True, limit: int = 256) -> str:
    value = message.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise StreamMessageError(f"{key} must be a non-empty string")
    if len(value) > limit:
        raise StreamMessageError(f"{key} is over {limit} characters")
    return value


def _sid(message: dict[str, Any], key: str) -> str:
    return _text(message, key, limit=MAX_SID_CHARS)


# -- to Twilio ----------------------------------------------------------------------------------------
def media_message(stream_sid: str, mulaw: bytes) -> str:
    return json.dumps({"event": "media", "streamSid": stream_sid,
                       "media": {"payload": base64.b64encode(mulaw).decode("ascii")}})


def mark_message(stream_sid: str, name: str) -> str:
    return json.dumps({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}})


def clear_message(stream_sid: str) -> str:
    return json.dumps({"event": "clear", "streamSid": stream_sid})
