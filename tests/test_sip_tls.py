"""SIP over TLS with SRTP, on 127.0.0.1 against baresip, with certificates this module makes (openssl):
a test CA signs the worker's certificate (its key encrypted, so tls_key_password is used) and the phone's;
a second CA, trusted by nobody, signs a rogue phone's. Also the settings that configure it, and what the
worker's TLS port answers to requests nobody expected (OPTIONS 200, INVITE 403)."""
from __future__ import annotations

import asyncio
import dataclasses
import re
import secrets
import socket
import ssl
from pathlib import Path

import numpy as np
import pjsua2 as pj
import pytest

from config.settings import SettingsError, SipSettings, load_settings
from dialer.sip.endpoint import EndpointPlan, account_config
from dialer.sip.outcomes import TLS_VERIFY_FAILED
from dialer.sip.pool import MediaWorkerPool
from dialer.sip.targets import with_transport
from dialer.sip.worker import worker_log_path
from models.lifecycle import Status
from browser import write_wav
from sip_harness import new_interview, short_template, sip_settings
from sipp import baresip
from test_sip_calls import candidate_text
from test_sip_peers import ANSWERS, interview_track
from tls_certs import Issued, issue, make_ca
from voice import transcribe_wav, word_error_rate

KEY_PASSWORD = "correct horse battery staple"
PROBE_TIMEOUT_S = 10.0


@dataclasses.dataclass(frozen=True)
class Pki:
    ca: Path
    worker: Issued  # signed by ca, key encrypted with KEY_PASSWORD
    phone: Path  # baresip's certificate + key, signed by ca
    rogue: Path  # baresip's certificate + key, signed by a CA nobody trusts


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca, other = make_ca(directory, "phonescreen"), make_ca(directory, "rogue")
    worker = issue(directory, ca, "worker", password=KEY_PASSWORD)
    phone = issue(directory, ca, "phone").combined(directory / "phone-combined.pem")
    rogue = issue(directory, other, "rogue").combined(directory / "rogue-combined.pem")
    return Pki(ca[0], worker, phone, rogue)


def tls_settings(settings, pki: Pki, **overrides):
    return sip_settings(settings, transport="tls", tls_cert_file=str(pki.worker.cert),
                        tls_key_file=str(pki.worker.key), tls_key_password=KEY_PASSWORD,
                        tls_ca_file=str(pki.ca), **overrides)


def silence_wav(path: Path, seconds: float) -> Path:
    """A phone that answers and hangs up when this ends (baresip's aufile source)."""
    return write_wav(path, np.zeros(int(seconds * 8000), dtype=np.int16), 8000)


# -- real calls ----------------------------------------------------------------------------------------------
async def test_a_tls_call_with_mandatory_srtp_to_baresip_completes_the_interview(settings, store, engines, pki,
                                                                                tmp_path) -> None:
    settings = tls_settings(settings, pki, srtp="mandatory")
    interview_id = new_interview(store, short_template())
    source = write_wav(tmp_path / "answers.wav", interview_track(), 8000)
    with baresip(tmp_path, source, certificate=pki.phone, mediaenc="srtp-mand", sip_trace=True) as phone:
        async with MediaWorkerPool(settings, store, with_llm=False) as pool:
            # No transport in the URI: sip.transport = tls adds it.
            result = await pool.dial(interview_id, f"sip:bot@127.0.0.1:{phone.port + 1}")
    assert result.status == Status.COMPLETED and result.sip_code == 200, phone.log()
    # What baresip saw: every SIP message over TLS, and its answer chose SRTP (SAVP, with a key).
    messages = phone.sip_messages()
    assert messages and all(way.startswith("TLS ") for way, _ in messages), [way for way, _ in messages]
    [answer] = [text for _, text in messages if text.startswith("SIP/2.0 200") and re.search(r"CSeq: \d+ INVITE", text)]
    assert "RTP/SAVP" in answer and "a=crypto:" in answer, answer
    assert "SRTP is Enabled" in (phone.workdir / "stdout.log").read_text()  # baresip's media side agrees
    # Both directions were decrypted: our Whisper heard baresip's answers, baresip's recording holds our voice.
    assert word_error_rate(ANSWERS, candidate_text(store, interview_id)) <= 0.15
    heard = transcribe_wav(engines.stt, phone.recording("dec")).lower()
    assert "automated interviewer" in heard and "thank you for your time" in heard, heard


async def test_an_untrusted_peer_certificate_fails_the_call_with_its_reason(settings, store, pki, tmp_path) -> None:
    settings = tls_settings(settings, pki, srtp="mandatory")
    interview_id = new_interview(store, short_template())
    with baresip(tmp_path, silence_wav(tmp_path / "quiet.wav", 10), certificate=pki.rogue, mediaenc="srtp-mand",
                 sip_trace=True) as phone:
        async with MediaWorkerPool(settings, store, with_llm=False) as pool:
            result = await pool.dial(interview_id, phone.uri())
            # The worker's own TLS port still works: OPTIONS is answered, a call nobody asked for refused.
            options = await asyncio.to_thread(tls_request, settings.sip.port, pki.ca, "OPTIONS")
            invite = await asyncio.to_thread(tls_request, settings.sip.port, pki.ca, "INVITE")
    # Failed at the handshake (not a no_answer after the ring timeout), with the reason stored and logged.
    assert result.status == Status.FAILED and result.sip_code == 503
    assert store.get_interview(interview_id).outcome_code == TLS_VERIFY_FAILED
    log = worker_log_path(settings, 0).read_text()
    assert "TLS peer 127.0.0.1:" in log and "failed certificate verification" in log, log[-3000:]
    assert KEY_PASSWORD not in log
    assert not [text for _, text in phone.sip_messages() if text.startswith("INVITE")]  # nothing reached it
    assert options[-1] == 200 and invite[-1] == 403, (options, invite)


async def test_unverified_tls_takes_any_certificate_but_srtp_stays_mandatory(settings, store, pki, tmp_path) -> None:
    settings = tls_settings(settings, pki, srtp="mandatory", tls_verify_peer=False)
    template = short_template()
    ids = {"rogue": new_interview(store, template), "plain": new_interview(store, template, phone="+14155550101")}
    quiet = silence_wav(tmp_path / "quiet.wav", 4)
    with baresip(tmp_path, quiet, name="rogue", certificate=pki.rogue, mediaenc="srtp-mand") as rogue, \
            baresip(tmp_path, quiet, name="plain", certificate=pki.phone) as plain:
        async with MediaWorkerPool(settings, store, with_llm=False) as pool:
            answered, refused = await asyncio.gather(pool.dial(ids["rogue"], rogue.uri()),
                                                     pool.dial(ids["plain"], plain.uri()))
    # The rogue certificate was accepted (verification off); the phone hung up when its file ended.
    assert answered.sip_code == 200 and answered.status == Status.PARTIAL, rogue.log()
    # A phone without SRTP refuses our SAVP offer: never a call in the clear.
    assert refused.status == Status.FAILED and refused.sip_code == 488, plain.log()
    assert store.get_interview(ids["plain"]).outcome_code == "488"


def tls_request(port: int, ca: Path, method: str) -> list[int]:
    """One out-of-dialog request over TLS to a worker (its certificate checked against `ca`); the status
    codes received up to the final one (a final non-2xx to an INVITE is ACKed)."""
    context = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection(("127.0.0.1", port), timeout=PROBE_TIMEOUT_S) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        local = tls.getsockname()[1]
        target = f"sip:interviewer@127.0.0.1:{port};transport=tls"
        common = (f"Via: SIP/2.0/TLS 127.0.0.1:{local};branch=z9hG4bK{secrets.token_hex(8)};rport\r\n"
                  f"Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag={secrets.token_hex(4)}\r\n"
                  f"Call-ID: {secrets.token_hex(8)}@127.0.0.1\r\n")
        tls.sendall((f"{method} {target} SIP/2.0\r\n{common}To: <{target}>\r\nCSeq: 1 {method}\r\n"
                     f"Contact: <sip:probe@127.0.0.1:{local};transport=tls>\r\nContent-Length: 0\r\n\r\n").encode())
        codes: list[int] = []
        reader = _Responses(tls)
        for _ in range(5):  # 100 Trying, perhaps a 180, then the final response
            head = reader.next()
            codes.append(int(head.split(" ", 2)[1]))
            if codes[-1] >= 200:
                if method == "INVITE":
                    to = re.search(r"^To:.*$", head, re.MULTILINE | re.IGNORECASE).group(0)
                    tls.sendall(f"ACK {target} SIP/2.0\r\n{common}{to}\r\nCSeq: 1 ACK\r\n"
                                f"Content-Length: 0\r\n\r\n".encode())
                break
        return codes


class _Responses:
    """SIP responses off a stream, one at a time (header block; the body is skipped by Content-Length)."""

    def __init__(self, stream: ssl.SSLSocket) -> None:
        self.stream, self.buffer = stream, b""

    def next(self) -> str:
        while b"\r\n\r\n" not in self.buffer:
            self._read()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        text = head.decode(errors="replace")
        length = re.search(r"^(?:Content-Length|l):\s*(\d+)", text, re.MULTILINE | re.IGNORECASE)
        body = int(length.group(1)) if length else 0
        while len(self.buffer) < body:
            self._read()
        self.buffer = self.buffer[body:]
        return text

    def _read(self) -> None:
        chunk = self.stream.recv(4096)
        if not chunk:
            raise ConnectionError(f"the worker closed the connection; so far: {self.buffer[-500:]!r}")
        self.buffer += chunk


# -- settings ------------------------------------------------------------------------------------------------
def test_tls_and_srtp_are_off_by_default() -> None:
    sip = load_settings(None, env={}).sip
    assert (sip.transport, sip.srtp, sip.public_address, sip.tls_verify_peer, sip.keep_alive_s) == \
        ("udp", "off", "", True, 15)


def test_valid_tls_settings_load_from_a_file(pki, tmp_path) -> None:
    path = tmp_path / "phonescreen.toml"
    path.write_text(f'[sip]\ntransport = "tls"\nsrtp = "mandatory"\npublic_address = "203.0.113.7"\n'
                    f'tls_cert_file = "{pki.worker.cert}"\ntls_key_file = "{pki.worker.key}"\n'
                    f'tls_ca_file = "{pki.ca}"\n')
    sip = load_settings(path, env={"PHONESCREEN_SIP_TLS_KEY_PASSWORD": KEY_PASSWORD}).sip
    assert (sip.transport, sip.srtp, sip.public_address) == ("tls", "mandatory", "203.0.113.7")


WRONG_PASSWORD = "hunter2-not-it"


def _bad_cases(pki: Pki) -> dict[str, tuple[str, dict[str, str], list[str]]]:
    """name -> ([sip] TOML, environment, words the error must contain)."""
    tls = f'transport = "tls"\ntls_ca_file = "{pki.ca}"\n'
    pair = f'tls_cert_file = "{pki.worker.cert}"\ntls_key_file = "{pki.worker.key}"\n'
    return {
        "srtp_value": ('srtp = "sometimes"\n', {}, ["sip.srtp", "'sometimes'"]),
        "transport_value": ('transport = "tcp"\n', {}, ["sip.transport", "'tcp'"]),
        "srtp_over_udp": ('srtp = "mandatory"\n', {}, ["sip.srtp", "'tls'"]),
        "srtp_over_udp_env": ("", {"PHONESCREEN_SIP_SRTP": "optional"}, ["PHONESCREEN_SIP_SRTP", "'tls'"]),
        "cert_without_key": (tls + f'tls_cert_file = "{pki.worker.cert}"\n', {}, ["sip.tls_key_file", "both"]),
        "missing_key": (tls + f'tls_cert_file = "{pki.worker.cert}"\ntls_key_file = "/nonexistent/key.pem"\n', {},
                        ["sip.tls_key_file", "/nonexistent/key.pem"]),
        "wrong_password": (tls + pair, {"PHONESCREEN_SIP_TLS_KEY_PASSWORD": WRONG_PASSWORD},
                           ["sip.tls_key_file", "do not load"]),
        "key_of_another": (tls + f'tls_cert_file = "{pki.worker.cert}"\ntls_key_file = "{pki.phone}"\n', {},
                           ["sip.tls_key_file", "do not load"]),
        "ca_not_a_certificate": (f'transport = "tls"\ntls_ca_file = "{pki.worker.key}"\n', {},
                                 ["sip.tls_ca_file", "no usable CA"]),
        "public_wildcard": ('public_address = "0.0.0.0"\n', {}, ["sip.public_address"]),
        "public_garbage": ('public_address = "not an address"\n', {}, ["sip.public_address"]),
        "rtp_past_65535": ("rtp_port_start = 60000\nrtp_ports_per_worker = 6000\n", {},
                           ["sip.rtp_ports_per_worker", "65535"]),
        "keep_alive_negative": ("keep_alive_s = -1\n", {}, ["sip.keep_alive_s"]),
    }


BAD_CASES = ["srtp_value", "transport_value", "srtp_over_udp", "srtp_over_udp_env", "cert_without_key", "missing_key",
             "wrong_password", "key_of_another", "ca_not_a_certificate", "public_wildcard", "public_garbage",
             "rtp_past_65535", "keep_alive_negative"]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_tls_settings_stop_start_up_naming_the_key(pki, tmp_path, case: str) -> None:
    toml, env, words = _bad_cases(pki)[case]
    path = tmp_path / "phonescreen.toml"
    path.write_text("[sip]\n" + toml)
    with pytest.raises(SettingsError) as caught:
        load_settings(path, env=env)
    for word in words:
        assert word in str(caught.value), caught.value
    assert KEY_PASSWORD not in str(caught.value) and WRONG_PASSWORD not in str(caught.value)


async def test_a_pool_refuses_tls_settings_built_in_code_that_do_not_load(settings, store, pki) -> None:
    settings = sip_settings(settings, transport="tls", tls_cert_file=str(pki.worker.cert),
                            tls_key_file=str(pki.worker.key), tls_ca_file=str(pki.ca))  # no password
    with pytest.raises(SettingsError, match="sip.tls_key_file"):
        await MediaWorkerPool(settings, store, with_llm=False).start()


# -- how settings reach pjsua --------------------------------------------------------------------------------
def test_the_plan_and_account_carry_tls_srtp_nat_and_keep_alive(pki) -> None:
    sip = SipSettings(transport="tls", srtp="mandatory", public_address="203.0.113.7", keep_alive_s=25,
                      tls_cert_file=str(pki.worker.cert), tls_key_file=str(pki.worker.key),
                      tls_key_password=KEY_PASSWORD, tls_ca_file=str(pki.ca), bind_address="0.0.0.0",
                      outbound_proxy="sip:proxy.example.com;lr")
    plan = EndpointPlan.for_worker(sip, 1)
    assert plan.tls is not None and plan.tls.ca_file == str(pki.ca) and plan.tls.verify_peer
    assert plan.sip_port == sip.port + 1 and plan.advertised == "203.0.113.7"
    assert KEY_PASSWORD not in repr(plan)  # a plan may be logged; the key's password never is
    cfg = account_config(plan, sip)
    assert cfg.idUri == f"sip:interviewer@203.0.113.7:{sip.port + 1}"
    assert cfg.mediaConfig.transportConfig.publicAddress == "203.0.113.7"
    assert cfg.mediaConfig.transportConfig.boundAddress == "0.0.0.0"
    assert cfg.mediaConfig.srtpUse == pj.PJMEDIA_SRTP_MANDATORY and cfg.mediaConfig.srtpSecureSignaling == 1
    assert cfg.natConfig.udpKaIntervalSec == 25
    assert list(cfg.sipConfig.proxies) == ["sip:proxy.example.com;lr;transport=tls"]
    optional = account_config(plan, dataclasses.replace(sip, srtp="optional"))
    assert optional.mediaConfig.srtpUse == pj.PJMEDIA_SRTP_OPTIONAL
    plain = account_config(EndpointPlan.for_worker(SipSettings(bind_address="0.0.0.0"), 0), SipSettings())
    assert plain.mediaConfig.srtpUse == pj.PJMEDIA_SRTP_DISABLED
    assert plain.mediaConfig.transportConfig.publicAddress == ""  # pjsip writes the interface, never 0.0.0.0
    assert EndpointPlan.for_worker(SipSettings(), 0).tls is None


def test_tls_targets_get_the_transport_unless_they_name_one() -> None:
    tls, udp = SipSettings(transport="tls"), SipSettings()
    assert with_transport("sip:bot@127.0.0.1:5061", tls) == "sip:bot@127.0.0.1:5061;transport=tls"
    assert with_transport("sip:+14155550100@trunk.example.com?X-Id=1", tls) == \
        "sip:+14155550100@trunk.example.com;transport=tls?X-Id=1"
    assert with_transport("sip:bot@host;transport=TCP", tls) == "sip:bot@host;transport=TCP"
    assert with_transport("sips:bot@host", tls) == "sips:bot@host"
    assert with_transport("sip:bot@host", udp) == "sip:bot@host"
    assert with_transport("", tls) == ""
