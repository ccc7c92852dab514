"""Field validation shared by the API, the CSV importer and the store."""
from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

E164 = re.compile(r"^\+[1-9]\d{6,14}$", re.ASCII)  # no non-ASCII digits
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_METADATA_KEYS = 50
MAX_TAGS = 20


class ValidationError(ValueError):
    """A bad value in client input; `field` names it for the API's error body."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(f"{field}: {message}" if field else message)
        self.message, self.field = message, field


class RuleViolation(ValidationError):
    """A well-formed value that breaks a rule a JSON Schema cannot state: relative to now, across fields
    or items, or about a file's content. The API answers 422 (400 is for what its schema refuses)."""


def normalize_phone(value: object, field: str = "phone") -> str:
    """Accept '+1 (415) 555-0100' style input, return E.164 '+14155550100' or raise."""
    if not isinstance(value, str):
        raise ValidationError("must be a string in E.164 format, e.g. +14155550100", field)
    compact = re.sub(r"[\s().-]", "", value)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    if not E164.match(compact):
        raise ValidationError("must be an E.164 number: '+', country code, up to 15 digits", field)
    return compact


def check_email(value: object, field: str = "email") -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 254 or not EMAIL.match(value):
        raise ValidationError("must be an email address", field)
    return value


_ZONES: frozenset[str] | None = None


def check_timezone(value: object, field: str = "timezone") -> str:
    global _ZONES
    if _ZONES is None:
        _ZONES = frozenset(available_timezones())
    if not isinstance(value, str) or value not in _ZONES:
        raise ValidationError("must be an IANA time zone name such as America/Chicago", field)
    try:
        ZoneInfo(value)
    except ZoneInfoNotFoundError:
        raise ValidationError("unknown time zone", field) from None
    return value


def check_text(value: object, field: str, *, required: bool = True, max_len: int = 200) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ValidationError("is required", field)
        return None
    if not isinstance(value, str):
        raise ValidationError("must be a string", field)
    if len(value) > max_len:
        raise ValidationError(f"must be at most {max_len} characters", field)
    return value.strip()


def check_metadata(value: object, field: str = "metadata") -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationError("must be an object of string keys to string values", field)
    if len(value) > MAX_METADATA_KEYS:
        raise ValidationError(f"may hold at most {MAX_METADATA_KEYS} keys", field)
    out: dict[str, str] = {}
    for key, val in value.items():
        if not isinstance(key, str):
            raise ValidationError("keys must be non-empty strings of at most 64 characters", field)
        if not key or len(key) > 64:  # OpenAPI 3.0 states no rule on key names: the API answers 422
            raise RuleViolation("keys must be non-empty strings of at most 64 characters", field)
        if isinstance(val, bool) or not isinstance(val, (str, int, float)) or len(str(val)) > 500:
            raise ValidationError(f"value of {key!r} must be a string or number (at most 500 characters)", field)
        out[key] = str(val)
    return out


def check_tags(value: object, field: str = "tags") -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(t, str) and 0 < len(t.strip()) <= 64 for t in value):
        raise ValidationError("must be a list of non-empty strings (at most 64 characters each)", field)
    tags = list(dict.fromkeys(t.strip() for t in value))
    if len(tags) > MAX_TAGS:
        raise ValidationError(f"may hold at most {MAX_TAGS} tags", field)
    return tags



CANDIDATE_FIELDS = ("name", "phone", "email", "timezone", "external_id", "metadata", "tags")


def clean_candidate(data: dict, *, partial: bool = False, default_timezone: str = "UTC") -> dict:
    """Validate a candidate's snake_case fields (an API body or a CSV row) and return them cleaned.

    partial=True (PATCH) returns only the fields given. Otherwise every field is returned, absent ones
    empty and the time zone defaulted, so the result can replace a stored candidate whole."""
    unknown = sorted(str(key) for key in set(data) - set(CANDIDATE_FIELDS))
    if unknown:
        raise ValidationError("unknown field", unknown[0])
    fields = data if partial else {name: data.get(name) for name in CANDIDATE_FIELDS}
    return {name: _clean_candidate_field(name, value, default_timezone) for name, value in fields.items()}


def _clean_candidate_field(name: str, value: object, default_timezone: str) -> object:
    empty = value is None or value == ""
    match name:
        case "name":
            return check_text(value, "name", max_len=200)
        case "phone":
            return None if empty else normalize_phone(value)
        case "email":
            return check_email(value)
        case "timezone":
            return default_timezone if empty else check_timezone(value)
        case "external_id":
            return check_text(value, "external_id", required=False, max_len=100)
        case "metadata":
            return check_metadata(value)
        case _:  # tags
            # Counted before check_tags drops duplicates, so the limit is the API schema's maxItems.
            if isinstance(value, list) and len(value) > MAX_TAGS:
                raise ValidationError(f"may hold at most {MAX_TAGS} tags", "tags")
            return check_tags(value)
