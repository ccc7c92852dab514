"""One pjsua2 endpoint per process: UDP on a fixed address, no sound device, G.711 only.

pjsip's own SIP events are polled from the asyncio thread (threadCnt=0, `poll_forever`), so every call
callback runs on the event loop; only the media clock runs on a pjsip thread (see media.py).
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from dataclasses import dataclass
from typing import Iterator

import pjsua2 as pj

from config.settings import SipSettings

MAX_CALLS_PER_PROCESS = 4  # the pjsua2-python wheel's PJSUA_MAX_CALLS; a 5th call fails with PJ_ETOOMANY
CODEC_IDS = {"PCMU": "PCMU/8000/1", "PCMA": "PCMA/8000/1"}


@dataclass(frozen=True)
class EndpointPlan:
    """Where one process's endpoint listens (media worker N of the pool, or a test phone)."""
    address: str
    sip_port: int
    rtp_port: int
    rtp_port_range: int
    max_calls: int = MAX_CALLS_PER_PROCESS

    @classmethod
    def for_worker(cls, sip: SipSettings, index: int) -> "EndpointPlan":
        return cls(sip.bind_address, sip.port + index, sip.rtp_port_start + index * sip.rtp_ports_per_worker,
                   sip.rtp_ports_per_worker, sip.calls_per_worker)


def start_endpoint(plan: EndpointPlan, codecs: str = "PCMU,PCMA", log_level: int = 1) -> pj.Endpoint:
    """Create, configure and start the process's endpoint. The calling thread becomes pjsip's thread."""
    ep = pj.Endpoint()
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
    ep.libInit(cfg)
    transport = pj.TransportConfig()
    transport.port = plan.sip_port
    transport.boundAddress = plan.address
    transport.publicAddress = plan.address
    ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, transport)
    ep.libStart()
    ep.audDevManager().setNullDev()  # no sound card: the conference bridge runs on a software clock
    set_codecs(ep, codecs)
    return ep


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
    """Our identity, optional registration with digest credentials, outbound proxy, and RTP on the bound
    address (without the media transport config, pjsua would send RTP from the default interface)."""
    cfg = pj.AccountConfig()
    cfg.idUri = (sip.from_uri if sip and sip.from_uri else f"sip:{user}@{plan.address}:{plan.sip_port}")
    cfg.regConfig.registrarUri = sip.registrar if sip else ""
    cfg.regConfig.registerOnAdd = bool(sip and sip.registrar)
    if sip and sip.username:
        cred = pj.AuthCredInfo("digest", sip.realm or "*", sip.username, 0, sip.password)
        cfg.sipConfig.authCreds.append(cred)
    if sip and sip.outbound_proxy:
        cfg.sipConfig.proxies.append(sip.outbound_proxy)
    media = cfg.mediaConfig.transportConfig
    media.boundAddress = plan.address
    media.publicAddress = plan.address
    media.port = plan.rtp_port
    media.portRange = plan.rtp_port_range
    cfg.mediaConfig.lockCodecEnabled = False
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
