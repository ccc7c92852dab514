"""Checks of the [sip] section that span several keys or read files: TLS certificate, key and CAs (loaded
with Python's ssl, because pjsip reads them only at the first handshake, when a bad file would fail a
call instead of the start-up), SRTP only over TLS, and RTP ranges that fit in the port space.

Stdlib only (config/ depends on nothing else). Each problem is (key, message): the caller names the key
where its value came from (file, environment) and stops."""
from __future__ import annotations

import ipaddress
import os
import re
import ssl
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from config.settings import SipSettings

TRANSPORTS = ("udp", "tls")
SRTP_MODES = ("off", "optional", "mandatory")
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")


def public_address_ok(value: str) -> bool:
    """Empty, or an address a peer can send to: an IP that is not a wildcard, or a host name."""
    if not value:
        return True
    try:
        return not ipaddress.ip_address(value).is_unspecified
    except ValueError:
        return bool(_HOSTNAME.match(value)) and not value.replace(".", "").isdigit()


def trusted_ca_file(sip: "SipSettings") -> str:
    """The CA bundle a TLS peer's certificate is checked against: sip.tls_ca_file, else the system's.
    pjsip does not fall back to the system store itself: with no file it trusts nobody."""
    return sip.tls_ca_file or ssl.get_default_verify_paths().cafile or ""


def sip_problems(sip: "SipSettings") -> list[tuple[str, str]]:
    """What is wrong with `sip` as a whole, as (key, message); [] when it can be used."""
    problems: list[tuple[str, str]] = []
    last_rtp = sip.rtp_port_start + sip.workers * sip.rtp_ports_per_worker - 1
    if last_rtp > 65535:
        problems.append(("rtp_ports_per_worker", f"RTP ports of {sip.workers} worker(s) would end at {last_rtp}, "
                                                 "past 65535 (lower sip.rtp_port_start or the range)"))
    if sip.port + sip.workers - 1 > 65535:
        problems.append(("port", f"SIP ports of {sip.workers} worker(s) would end past 65535"))
    if sip.srtp != "off" and sip.transport != "tls":
        # SDES sends the SRTP keys in the SDP: over plain UDP anyone on the path could read them.
        problems.append(("srtp", f"sip.srtp = {sip.srtp!r} needs sip.transport = 'tls' (the keys travel in the SIP "
                                 "messages)"))
    if sip.transport == "tls":
        problems += _tls_problems(sip)
    return problems


def _tls_problems(sip: "SipSettings") -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    if bool(sip.tls_cert_file) != bool(sip.tls_key_file):
        missing = "tls_key_file" if sip.tls_cert_file else "tls_cert_file"
        return [(missing, "sip.tls_cert_file and sip.tls_key_file go together: set both or neither")]
    for key in ("tls_cert_file", "tls_key_file", "tls_ca_file"):
        path = getattr(sip, key)
        if path and not os.access(path, os.R_OK):
            problems.append((key, f"cannot read {path!r}"))
    if problems:
        return problems
    if sip.tls_cert_file:
        try:
            # A callable, not the string: with an encrypted key and no password OpenSSL would prompt on the tty.
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(
                sip.tls_cert_file, sip.tls_key_file, password=lambda: sip.tls_key_password.encode())
        except (ssl.SSLError, OSError) as exc:
            problems.append(("tls_key_file", f"the certificate {sip.tls_cert_file!r} and key {sip.tls_key_file!r} "
                                             f"do not load as a pair (wrong key, not PEM, or tls_key_password): {exc}"))
    ca = trusted_ca_file(sip)
    if sip.tls_verify_peer and not ca:
        problems.append(("tls_ca_file", "no CA bundle to verify peers with: set sip.tls_ca_file "
                                        "(or sip.tls_verify_peer = false, which trusts anyone)"))
    elif ca:
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=ca)
        except (ssl.SSLError, OSError) as exc:
            problems.append(("tls_ca_file", f"{ca!r} holds no usable CA certificate: {exc}"))
    return problems
