"""Sending one e-mail over SMTP (the standard library's smtplib, on a worker thread), with every way it can
end told apart: sent, bounced (the server refused the recipient for good: 5xx at RCPT), a permanent
failure (5xx elsewhere: our sender, login, the message) or a transient one worth retrying (4xx, no answer)."""
from __future__ import annotations

import asyncio
import smtplib
import socket
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from config.settings import EmailSettings

MAX_REASON_CHARS = 300


@dataclass(frozen=True)
class SendResult:
    ok: bool
    provider_id: str | None = None  # the message's Message-ID, or Twilio's SID
    reason: str | None = None
    retry: bool = False  # worth another attempt later
    bounced: bool = False  # the address itself was refused


def build_message(settings: EmailSettings, to: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    domain = settings.sender.rpartition("@")[2].strip(" >") or None
    message["Message-ID"] = make_msgid(domain=domain)
    message.set_content(body)
    return message


def _reason(code: int, text: bytes | str) -> str:
    words = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{code} {' '.join(words.split())}"[:MAX_REASON_CHARS]


def send_message_blocking(settings: EmailSettings, message: EmailMessage) -> SendResult:
    """One delivery attempt to the configured server; never raises for a network or SMTP problem."""
    message_id = message["Message-ID"]
    try:
        # The server's certificate must chain to ca_file (or the system's CAs) and name the host.
        context = ssl.create_default_context(cafile=settings.ca_file or None)
        if settings.ssl:
            client: smtplib.SMTP = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout_s,
                                                    context=context)
        else:
            client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_s)
        with client:
            if settings.starttls and not settings.ssl:
                client.starttls(context=context)
            if settings.username:
                client.login(settings.username, settings.password)
            client.send_message(message)
        return SendResult(True, message_id)
    except smtplib.SMTPRecipientsRefused as exc:
        code, text = next(iter(exc.recipients.values()))
        return SendResult(False, message_id, _reason(code, text), retry=400 <= code < 500, bounced=code >= 500)
    except smtplib.SMTPResponseException as exc:  # sender refused, login failed, data refused, ...
        return SendResult(False, message_id, _reason(exc.smtp_code, exc.smtp_error), retry=exc.smtp_code < 500)
    except (smtplib.SMTPException, OSError, socket.timeout, ssl.SSLError) as exc:
        return SendResult(False, message_id, f"{type(exc).__name__}: {exc}"[:MAX_REASON_CHARS], retry=True)


async def send_email(settings: EmailSettings, to: str, subject: str, body: str) -> SendResult:
    message = build_message(settings, to, subject, body)
    return await asyncio.to_thread(send_message_blocking, settings, message)
