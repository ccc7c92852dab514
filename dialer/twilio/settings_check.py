"""Start-up checks of the Twilio settings: a misconfigured account fails `phonescreen serve` with a
message naming the key, never at the first call. Secrets are never echoed."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

from config.settings import Settings, SettingsError
from models.validation import ValidationError, normalize_phone

ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


def check_twilio_settings(settings: Settings) -> None:
    """Raise SettingsError listing every problem when the Twilio channel is enabled but unusable."""
    problems = twilio_problems(settings)
    if problems:
        raise SettingsError(f"{settings.source}: the Twilio channel is enabled but misconfigured:\n  "
                            + "\n  ".join(problems))


def twilio_problems(settings: Settings) -> list[str]:
    """Each problem of an enabled Twilio channel's settings, naming its key; [] when disabled or usable."""
    twilio = settings.twilio
    if not twilio.enabled:
        return []
    problems = []
    if not ACCOUNT_SID.fullmatch(twilio.account_sid):
        problems.append("twilio.account_sid: must be the Account SID from Twilio's console: 'AC' and 32 hex digits")
    if not twilio.auth_token.strip():
        problems.append("twilio.auth_token: is required (the account's auth token)")
    try:
        if normalize_phone(twilio.from_number, "twilio.from_number") != twilio.from_number:
            raise ValidationError("", "twilio.from_number")
    except ValidationError:
        problems.append("twilio.from_number: must be one of the account's numbers in E.164 form, e.g. +14155550100")
    if not settings.server.public_url:
        problems.append("server.public_url: is required with Twilio enabled: the https address Twilio reaches")
    elif not _reachable_url(settings.server.public_url):
        problems.append(f"server.public_url: Twilio reaches the server over https (or http://127.0.0.1 for a "
                        f"local test double); got {settings.server.public_url!r}")
    if twilio.api_base_url and not _reachable_url(twilio.api_base_url):
        problems.append(f"twilio.api_base_url: must be an https URL (or http on 127.0.0.1); got "
                        f"{twilio.api_base_url!r}")
    return problems


def _reachable_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return False
    if not host or parts.query or parts.fragment:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and host in LOOPBACK_HOSTS)
