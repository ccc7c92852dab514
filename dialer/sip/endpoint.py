"""One pjsua2 endpoint per process: UDP or TLS on a fixed address, no sound device, G.711 only.

pjsip's own SIP events are polled from the asyncio thread (threadCnt=0, `poll_forever`), so every call
callback runs on the event loop; only the media clock runs on a pjsip thread (see media.py).
"""
from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import socket
import sys
from dataclasses import dataclass, field
from typing import Iterator

import pjsua2 as pj

from config.settings import SipSettings
from config.sip_checks import trusted_ca_file
from dialer.sip.targets import with_transport

log = logging.getLogger("phonescreen.sip")
MAX_CALLS_PER_PROCESS = 4  # the pjsua2-python wheel's PJSUA_MAX_CALLS; a 5th call fails with PJ_ETOOMANY
JITTER_BUFFER_START_MS = 40  # initial prefetch (pjsua's default: 150)
JITTER_BUFFER_MIN_MS = 20
CODEC_IDS = {"PCMU": "PCMU/8000/1", "PCMA": "PCMA/8000/1"}
SRTP_USE = {"off": pj.PJMEDIA_SRTP_DISABLED, "optional": pj.PJMEDIA_SRTP_OPTIONAL,
            "mandatory": pj.PJMEDIA_SRTP_MANDATORY}
TLS_HANDSHAKE_TIMEOUT_MS = 10_000  # pjsip waits forever by default: a peer that never finishes must fail the call
SRTP_REQUIRES_TLS = 1  # pjsua's srtpSecureSignaling: SDES keys only over a TLS hop


@dataclass(frozen=True)
class TlsPlan:
    """The TLS side of an endpoint (see SipSettings.tls_*)."""
    cert_file: str
    key_file: str
    ca_file: str
    verify_peer: bool
    key_password: str = field(default="", repr=False)  # a secret: never in a repr, so never in a log line

    @classmethod
    def from_settings(cls, sip: SipSettings) -> "TlsPlan":
        return cls(sip.tls_cert_file, sip.tls_key_file, trusted_ca_file(sip), sip.tls_verify_peer,
                   sip.tls_key_password)


@dataclass(frozen=True)
class EndpointPlan:
    """Where one process's endpoint listens (media worker N of the pool, or a test phone)."""
    address: str
    sip_port: int
    rtp_port: int
    rtp_port_range: int
    max_calls: int = MAX_CALLS_PER_PROCESS
    public_address: str = ""  # behind NAT: the address peers reach us at
    tls: TlsPlan | None = None  # None: SIP over UDP; else over TLS only, on TCP sip_port

    @classmethod
    def for_worker(cls, sip: SipSettings, index: int) -> "EndpointPlan":
        return cls(sip.bind_address, sip.port + index, sip.rtp_port_start + index * sip.rtp_ports_per_worker,
                   sip.rtp_ports_per_worker, sip.calls_per_worker, sip.public_address,
                   TlsPlan.from_settings(sip) if sip.transport == "tls" else None)

    @property
    def advertised(self) -> str:
        """The address written in Contact, Via and the SDP: the public one, else the bound one; "" for a
        wildcard bind, so pjsip writes the default interface's address rather than 0.0.0.0."""
        if self.public_address:
            return self.public_address
        with contextlib.suppress(ValueError):
            if ipaddress.ip_address(self.address).is_unspecified:
                return ""
        return self.address


class _Endpoint(pj.Endpoint):
    def onTransportState(self, prm: pj.OnTransportStateParam) -> None:
        """Say why a TLS connection was dropped at its handshake: the call it carried only sees a 503."""
        info = prm.tlsInfo  # pjsip reports the refused certificate as a "connected" state with an error
        if prm.lastError and not info.isEmpty() and info.verifyStatus:
            log.warning("TLS peer %s failed certificate verification (%s): trust its CA with sip.tls_ca_file, "
                        "or give it a certificate for that address", info.remoteAddr,
                        "; ".join(info.verifyMsgs) or f"status {info.verifyStatus}")


def start_endpoint(plan: EndpointPlan, codecs: str = "PCMU,PCMA", log_level: int = 1) -> pj.Endpoint:
    """Create, configure and start the process's endpoint. The calling thread becomes pjsip's thread."""
    ep = _Endpoint()
    with _stdout_silenced():  # libCreate logs at pjlib's default level, before libInit can lower it
        ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.maxCalls = min(plan.max_calls, MAX_CALLS_PER_PROCESS)
    cfg.uaConfig.threadCnt = 0  # SIP events are handled by poll_forever on the event loop
    cfg.uaConfig.mainThreadOnly = False
    cfg.uaConfig.userAgent = "phonescreen"
    cfg.logConfig.level = log_level
    cfg.logConfig.consoleLevel = log_level
    cfg.medConfig.clockRate = 8000
    cfg.medConfig.sndClockRate = 8000
    cfg.medConfig.noVad = True  # keep sending RTP in silence: the far end's RTP timeout must not fire
    cfg.medConfig.ecTailLen = 0  # no echo canceller: there is no loudspeaker
    # pjsua starts every jitter buffer at 150 ms and shrinks it slowly: the candidate waited that much longer
    # for every reply. Start small; the adaptive buffer still grows on a jittery trunk (up to its 500 ms).
    cfg.medConfig.jbInit = JITTER_BUFFER_START_MS
    cfg.medConfig.jbMinPre = JITTER_BUFFER_MIN_MS
    ep.libInit(cfg)
    transport = pj.TransportConfig()
    transport.port = plan.sip_port
    transport.boundAddress = plan.address
    transport.publicAddress = plan.advertised
    if plan.tls is None:
        ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, transport)
    else:
        configure_tls(transport.tlsConfig, plan.tls)
        ep.transportCreate(pj.PJSIP_TRANSPORT_TLS, transport)
    ep.libStart()
    ep.audDevManager().setNullDev()  # no sound card: the conference bridge runs on a software clock
    set_codecs(ep, codecs)
    return ep


def configure_tls(tls: pj.TlsConfig, plan: TlsPlan) -> None:
    tls.certFile, tls.privKeyFile, tls.password = plan.cert_file, plan.key_file, plan.key_password
    tls.CaListFile = plan.ca_file
    tls.verifyServer = plan.verify_peer  # the peers we call: chain to a trusted CA and name their address
    # Connections to us carry OPTIONS and in-dialog requests; trunks rarely hold client certificates.
    tls.verifyClient = tls.requireClientCert = False
    tls.proto = pj.PJ_SSL_SOCK_PROTO_TLS1_2 | pj.PJ_SSL_SOCK_PROTO_TLS1_3
    tls.msecTimeout = TLS_HANDSHAKE_TIMEOUT_MS


def set_codecs(ep: pj.Endpoint, codecs: str) -> None:
    wanted = [name.strip().upper() for name in codecs.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in CODEC_IDS]
    if unknown or not wanted:
        raise ValueError(f"sip.codecs: only PCMU and PCMA are supported, got {codecs!r}")
    for codec in ep.codecEnum2():
        ep.codecSetPriority(codec.codecId, 0)
    for rank, name in enumerate(wanted):
        ep.codecSetPriority(CODEC_IDS[name], 254 - rank)


def account_config(plan: EndpointPlan, sip: SipSettings | None = None, user: str = "interviewer") -> pj.AccountConfig:
    """Our identity, optional registration with digest credentials, outbound proxy, RTP on the bound
    address (without the media transport config, pjsua would send RTP from the default interface), SRTP
    and the registrar keep-alive."""
    cfg = pj.AccountConfig()
    host = plan.advertised or plan.address
    cfg.idUri = (sip.from_uri if sip and sip.from_uri else f"sip:{user}@{host}:{plan.sip_port}")
    cfg.regConfig.registrarUri = with_transport(sip.registrar, sip) if sip else ""
    cfg.regConfig.registerOnAdd = bool(sip and sip.registrar)
    if sip and sip.username:
        cred = pj.AuthCredInfo("digest", sip.realm or "*", sip.username, 0, sip.password)
        cfg.sipConfig.authCreds.append(cred)
    if sip and sip.outbound_proxy:
        cfg.sipConfig.proxies.append(with_transport(sip.outbound_proxy, sip))
    media = cfg.mediaConfig.transportConfig
    media.boundAddress = plan.address
    media.publicAddress = plan.advertised
    media.port = plan.rtp_port
    media.portRange = plan.rtp_port_range
    cfg.mediaConfig.lockCodecEnabled = False
    if sip is not None:
        cfg.natConfig.udpKaIntervalSec = sip.keep_alive_s
        if sip.srtp != "off":
            cfg.mediaConfig.srtpUse = SRTP_USE[sip.srtp]
            cfg.mediaConfig.srtpSecureSignaling = SRTP_REQUIRES_TLS
    return cfg


def udp_port_free(address: str, port: int) -> bool:
    """Whether a SIP endpoint could bind `address:port` now (pjsua listens on UDP only)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((address, port))
        except OSError:
            return False
    return True


def free_udp_port(address: str) -> int:
    """A UDP port the system has free on `address` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((address, 0))
        return probe.getsockname()[1]


async def poll_forever(ep: pj.Endpoint, interval_s: float = 0.005) -> None:
    """Run pjsip's timers and SIP transactions on this loop (threadCnt=0). Never blocks the loop."""
    while True:
        for _ in range(64):  # each call handles at most a few events; drain a burst, boundedly
            if ep.libHandleEvents(0) <= 0:
                break
        await asyncio.sleep(interval_s)


@contextlib.contextmanager
def _stdout_silenced() -> Iterator[None]:
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)
