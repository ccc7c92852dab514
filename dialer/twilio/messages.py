"""SMS through Twilio's Messages API (the `twilio` REST client, pointed at `twilio.api_base_url` when set).
Twilio reports what became of each message to a status callback: sent, delivered, undelivered (the
carrier refused it: a bounce) or failed; server/channels/twilio_messages.py receives those."""
from __future__ import annotations

from config.settings import Settings, TwilioSettings
from dialer.twilio.calls import TwilioCallError, rest, rest_client

MESSAGE_STATUS_PATH = "/twilio/message-status"
INVITATION_PARAM = "invitationId"
# Twilio's error codes for a number that can never receive this message: a bounce, not worth a retry.
UNREACHABLE_CODES = frozenset({"21211", "21214", "21408", "21610", "21612", "21614", "30003", "30005", "30006"})


def message_status_url(settings: Settings, invitation_id: str) -> str:
    return f"{settings.public_url}{MESSAGE_STATUS_PATH}?{INVITATION_PARAM}={invitation_id}"


async def send_sms(settings: TwilioSettings, *, to: str, body: str, status_callback: str) -> str:
    """Create the message; returns its SID. Raises TwilioCallError (with Twilio's code) when refused."""
    message = await rest("send the message", rest_client(settings).messages.create_async(
        to=to, from_=settings.from_number, body=body, status_callback=status_callback))
    return message.sid


__all__ = ["MESSAGE_STATUS_PATH", "INVITATION_PARAM", "UNREACHABLE_CODES", "TwilioCallError", "message_status_url",
           "send_sms"]
