"""Where a SIP call goes: a SIP URI as given, or an E.164 number through the configured trunk domain."""
from __future__ import annotations

import re

from config.settings import SipSettings
from config.logging_setup import mask_phone

_SIP_URI = re.compile(r"^sips?:[^@\s]+@[^\s]+$")


class NoRoute(ValueError):
    pass


def sip_target(destination: str, sip: SipSettings) -> str:
    """`sip:user@host[:port]` is dialed as is; `+14155550100` becomes `sip:+14155550100@<sip.domain>`
    (the outbound proxy, if set, carries it to the trunk)."""
    destination = destination.strip()
    if destination.startswith(("sip:", "sips:")):
        if not _SIP_URI.match(destination):
            raise NoRoute(f"not a SIP URI: {destination!r}")
        return destination
    if not re.fullmatch(r"\+[1-9]\d{6,14}", destination):
        raise NoRoute(f"not an E.164 number or SIP URI: {mask_phone(destination)}")
    if not sip.domain:
        raise NoRoute("sip.domain is not set, so phone numbers cannot be dialed (set PHONESCREEN_SIP_DOMAIN)")
    return f"sip:{destination}@{sip.domain}"


def with_transport(uri: str, sip: SipSettings) -> str:
    """The URI to send to over the configured transport. With sip.transport = tls a sip: URI without a
    transport of its own gets ;transport=tls: pjsip would look for UDP, which a TLS-only endpoint lacks.
    sips: URIs mean TLS already; an explicit transport is the operator's choice and kept."""
    if sip.transport != "tls" or not uri.startswith("sip:") or ";transport=" in uri.lower():
        return uri
    head, question, headers = uri.partition("?")
    return f"{head};transport=tls{question}{headers}"
