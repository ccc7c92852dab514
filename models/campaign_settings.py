"""A campaign's dialing settings. One validator for the API (when a campaign is written) and the dialer
(when it reads one), so both agree on what each setting means and on its default. Unknown keys are
errors: a typo such as `max_concurent_calls` must not silently fall back to the default."""
from __future__ import annotations

import re
from typing import Any

from models.validation import RuleViolation, ValidationError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# partial: the line dropped (or the dialer died) mid-interview; its retry resumes the same interview.
RETRY_OUTCOMES = ("no_answer", "busy", "failed", "voicemail", "partial")
# (min, max, default)
MAX_CONCURRENT_CALLS = (1, 64, 4)
ATTEMPTS_PER_SECOND = (0.1, 10.0, 1.0)
INVITE_EXPIRY_DAYS = (1, 60, 7)
RETRY_MAX_ATTEMPTS = (1, 10, 3)
# (min, max); the default depends on the outcome: a busy line frees up sooner than an absent candidate.
RETRY_DELAY_S = (60, 7 * 24 * 3600)
RETRY_DEFAULT_DELAY_S = {"no_answer": 3600, "busy": 900, "failed": 1800, "voicemail": 3600, "partial": 120}
# Resuming a dropped interview: how many times, and up to how long after it first started.
RESUME_MAX_RESUMES = (0, 5, 2)
RESUME_MAX_AGE_S = (600, 7 * 24 * 3600, 24 * 3600)
DEFAULT_WINDOW = {"start": "09:00", "end": "20:00", "weekdays": WEEKDAYS[:5]}
HHMM = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
# Answering machines (SIP: dialer/sip/amd.py; Twilio: its own detection). Off by default: detection waits
# for the callee's first words (or their silence) before the interviewer may speak.
VOICEMAIL_ACTIONS = ("hang_up", "leave_message")
MAX_VOICEMAIL_MESSAGE_CHARS = 300
DEFAULT_VOICEMAIL = {"detect": False, "action": "hang_up", "message": ""}

_TOP_FIELDS = ("window", "max_concurrent_calls", "attempts_per_second", "retry", "invite_expiry_days", "voicemail",
               "resume")
_RESUME_FIELDS = ("max_resumes", "max_age_s")
_WINDOW_FIELDS = ("start", "end", "weekdays")
_RETRY_FIELDS = ("delay_s", "max_attempts")
_VOICEMAIL_FIELDS = ("detect", "action", "message")


def clean_campaign_settings(data: dict | None) -> dict[str, Any]:
    """Validate campaign settings and return them complete (defaults filled in), snake_case.
    A ValidationError's field is the dotted path inside the settings, e.g. `retry.busy.delay_s`."""
    data = _object({} if data is None else data, _TOP_FIELDS, "")
    return {
        "window": _window(data.get("window", {})),
        "max_concurrent_calls": _integer(data, "max_concurrent_calls", "", MAX_CONCURRENT_CALLS),
        "attempts_per_second": _number(data, "attempts_per_second", "", ATTEMPTS_PER_SECOND),
        "retry": _retry(data.get("retry", {})),
        "invite_expiry_days": _integer(data, "invite_expiry_days", "", INVITE_EXPIRY_DAYS),
        "voicemail": _voicemail(data.get("voicemail", {})),
        "resume": resume_settings(data.get("resume", {})),
    }


def resume_settings(value: Any) -> dict[str, int]:
    """`resume`, defaults filled in (also for campaigns stored before it existed)."""
    resume = _object(value, _RESUME_FIELDS, "resume")
    return {"max_resumes": _integer(resume, "max_resumes", "resume", RESUME_MAX_RESUMES),
            "max_age_s": _integer(resume, "max_age_s", "resume", RESUME_MAX_AGE_S)}


def _path(parent: str, key: str) -> str:
    return f"{parent}.{key}" if parent else key


def _object(value: Any, allowed: tuple[str, ...], path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValidationError("must be an object", path or None)
    for key in value:
        if key not in allowed:
            raise ValidationError(f"unknown field; known: {', '.join(allowed)}", _path(path, str(key)))
    return value


def _integer(data: dict[str, Any], key: str, path: str, limits: tuple[int, int, int]) -> int:
    low, high, default = limits
    value = data.get(key, default)
    # bool is a subclass of int, but `true` is never a meaningful count.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError("must be an integer", _path(path, key))
    if not low <= value <= high:
        raise ValidationError(f"must be between {low} and {high}", _path(path, key))
    return value


def _number(data: dict[str, Any], key: str, path: str, limits: tuple[float, float, float]) -> float:
    low, high, default = limits
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError("must be a number", _path(path, key))
    if not low <= value <= high:  # also false for NaN, which Python's JSON parser accepts
        raise ValidationError(f"must be between {low} and {high}", _path(path, key))
    return float(value)


def _window(value: Any) -> dict[str, Any]:
    window = _object(value, _WINDOW_FIELDS, "window")
    times = {}
    for key in ("start", "end"):
        text = window.get(key, DEFAULT_WINDOW[key])
        if not isinstance(text, str) or not HHMM.fullmatch(text):
            raise ValidationError("must be a time of day as HH:MM (00:00 to 23:59)", f"window.{key}")
        times[key] = text
    if times["start"] >= times["end"]:  # zero-padded HH:MM compares as text in time order
        raise RuleViolation("must be later than window.start", "window.end")
    days = window.get("weekdays", list(DEFAULT_WINDOW["weekdays"]))
    if not isinstance(days, list) or not days or any(day not in WEEKDAYS for day in days):
        raise ValidationError(f"must be a non-empty list of days among {', '.join(WEEKDAYS)}", "window.weekdays")
    if len(set(days)) != len(days):
        raise ValidationError("must not name a day twice", "window.weekdays")
    return {**times, "weekdays": sorted(days, key=WEEKDAYS.index)}


def _retry(value: Any) -> dict[str, dict[str, int]]:
    retry = _object(value, RETRY_OUTCOMES, "retry")
    policies = {}
    for outcome in RETRY_OUTCOMES:
        path = f"retry.{outcome}"
        policy = _object(retry.get(outcome, {}), _RETRY_FIELDS, path)
        policies[outcome] = {
            "delay_s": _integer(policy, "delay_s", path, (*RETRY_DELAY_S, RETRY_DEFAULT_DELAY_S[outcome])),
            "max_attempts": _integer(policy, "max_attempts", path, RETRY_MAX_ATTEMPTS),
        }
    return policies


def _voicemail(value: Any) -> dict[str, Any]:
    voicemail = _object(value, _VOICEMAIL_FIELDS, "voicemail")
    detect = voicemail.get("detect", DEFAULT_VOICEMAIL["detect"])
    if not isinstance(detect, bool):
        raise ValidationError("must be true or false", "voicemail.detect")
    action = voicemail.get("action", DEFAULT_VOICEMAIL["action"])
    if action not in VOICEMAIL_ACTIONS:
        raise ValidationError(f"must be one of {', '.join(VOICEMAIL_ACTIONS)}", "voicemail.action")
    message = voicemail.get("message", DEFAULT_VOICEMAIL["message"])
    if not isinstance(message, str) or len(message) > MAX_VOICEMAIL_MESSAGE_CHARS:
        raise ValidationError(f"must be text of at most {MAX_VOICEMAIL_MESSAGE_CHARS} characters", "voicemail.message")
    message = message.strip()
    if action == "leave_message" and not message:
        raise ValidationError("is required when voicemail.action is leave_message", "voicemail.message")
    return {"detect": detect, "action": action, "message": message}
