"""Real third-party SIP peers for the SIP channel's tests: SIPp (Debian `sip-tester`) running the
scenarios in tests/sipp/, and baresip as an auto-answering softphone. Both only ever use 127.0.0.1.

Each peer runs as a subprocess in its own work directory (the scenario's audio files are found there by
relative name), on free ports, with bounded waits; it is stopped at the end of its `with` block. The
candidate's side of a call is built here from Piper speech placed on a timeline (`candidate_track`),
written as SIPp wants it: raw mu-law for `rtp_stream`, a pcap of RTP packets (speech and RFC 4733 key
presses) for `play_pcap_audio`, or a WAV for baresip's `aufile` source.
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import re
import shutil
import socket
import struct
import subprocess
import time
from pathlib import Path
from typing import Iterator

import numpy as np

from dialer.simulator import candidate_audio
from ivr.g711 import ulaw_encode
from requirements import require
from sip_harness import free_port_block

SIPP = shutil.which("sipp")
BARESIP = shutil.which("baresip")
SCENARIOS = Path(__file__).resolve().parent / "sipp"
BARESIP_MODULES = Path("/usr/lib/baresip/modules")
RATE = 8000
PACKET_SAMPLES = 160  # 20 ms of G.711 per RTP packet
# pjsua offers telephone-event with this payload type; the DTMF scenario checks the offer says so and
# answers with the same number, so the RFC 4733 packets in the pcap carry it.
TELEPHONE_EVENT_PT = 120
START_TIMEOUT_S = 15.0


def require_binary(binary: str | None, package: str) -> str:
    """The peer's executable; a missing one skips the test locally and fails it under CI."""
    require(binary, f"the {package} executable", f"./run installs the Debian package {package}")
    return binary


# -- the candidate's audio ----------------------------------------------------------------------------------
def candidate_track(lines: list[tuple[float, str]], total_s: float) -> np.ndarray:
    """Piper speech (through G.711) of each (start second, text), silence elsewhere, `total_s` long."""
    pcm = np.zeros(int(total_s * RATE), dtype=np.int16)
    for start_s, text in lines:
        speech = candidate_audio(text, RATE)
        at = int(start_s * RATE)
        if at + len(speech) > len(pcm):
            raise ValueError(f"{text[:30]!r} at {start_s} s runs past the track's {total_s} s")
        pcm[at:at + len(speech)] = speech
    return pcm


def write_ulaw(path: Path, pcm: np.ndarray) -> Path:
    """Raw mu-law bytes: what SIPp's `rtp_stream="file,loops,0"` sends, 160 bytes per packet."""
    path.write_bytes(ulaw_encode(pcm))
    return path


def rtp_packets(pcm: np.ndarray, keys: list[tuple[float, str]], *, ssrc: int = 0x5EED1E55,
                event_ms: int = 200) -> list[tuple[float, bytes]]:
    """(send time, RTP packet) every 20 ms: PCMU speech, except where a key is pressed (start second,
    digit): RFC 4733 telephone-event packets for `event_ms`, the end packet sent three times."""
    packet_count = len(pcm) // PACKET_SAMPLES
    presses = {int(at * 1000) // 20: digit for at, digit in keys}
    event_packets = event_ms // 20
    packets: list[tuple[float, bytes]] = []
    seq, index = 0, 0
    while index < packet_count:
        timestamp = index * PACKET_SAMPLES
        if index in presses:
            event = "0123456789*#".index(presses[index])
            for n in range(event_packets):
                end = n == event_packets - 1
                payload = struct.pack("!BBH", event, (0x80 if end else 0) | 10, (n + 1) * PACKET_SAMPLES)
                for _ in range(3 if end else 1):
                    packets.append(((index + n) * 0.02, _rtp(TELEPHONE_EVENT_PT, seq, timestamp, ssrc, payload,
                                                             marker=n == 0)))
                    seq += 1
            index += event_packets
            continue
        chunk = pcm[index * PACKET_SAMPLES:(index + 1) * PACKET_SAMPLES]
        packets.append((index * 0.02, _rtp(0, seq, timestamp, ssrc, ulaw_encode(chunk))))
        seq, index = seq + 1, index + 1
    return packets


def _rtp(payload_type: int, seq: int, timestamp: int, ssrc: int, payload: bytes, *, marker: bool = False) -> bytes:
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | payload_type, seq & 0xFFFF,
                       timestamp & 0xFFFFFFFF, ssrc) + payload


def write_pcap(path: Path, packets: list[tuple[float, bytes]], *, dst_port: int = 6000) -> Path:
    """A libpcap file of Ethernet/IPv4/UDP datagrams on 127.0.0.1, as SIPp's `play_pcap_audio` replays
    them (it keeps the payloads and the timing, and puts in the call's own ports)."""
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))  # DLT_EN10MB
    loopback = socket.inet_aton("127.0.0.1")
    for ident, (at_s, payload) in enumerate(packets):
        udp = struct.pack("!HHHH", dst_port, dst_port, 8 + len(payload), 0) + payload
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), ident & 0xFFFF, 0, 64, 17, 0, loopback, loopback)
        ip = ip[:10] + struct.pack("!H", _ip_checksum(ip)) + ip[12:]
        frame = b"\x00" * 12 + b"\x08\x00" + ip + udp
        seconds, micros = int(at_s), round((at_s - int(at_s)) * 1e6)
        out += struct.pack("<IIII", seconds, micros, len(frame), len(frame)) + frame
    path.write_bytes(bytes(out))
    return path


def _ip_checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


# -- processes ---------------------------------------------------------------------------------------------
def _wait_until_bound(process: subprocess.Popen, port: int, what: str, log: Path,
                      kind: int = socket.SOCK_DGRAM) -> None:
    """Until the peer holds its SIP port (binding it ourselves fails), or it exits, or time is up."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode} while starting:\n{_tail(log)}")
        with socket.socket(socket.AF_INET, kind) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not bind 127.0.0.1:{port} within {START_TIMEOUT_S} s:\n{_tail(log)}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


@dataclasses.dataclass
class SippResult:
    exit_code: int  # 0: every call succeeded, 1: at least one failed, 97/99: stopped otherwise
    successful: int
    failed: int
    errors: str  # SIPp's log of unexpected messages

    @property
    def passed(self) -> bool:
        return self.exit_code == 0 and self.successful >= 1 and self.failed == 0


@dataclasses.dataclass
class SippPeer:
    process: subprocess.Popen
    port: int
    media_port: int
    workdir: Path
    scenario: str

    def uri(self, user: str = "candidate") -> str:
        return f"sip:{user}@127.0.0.1:{self.port}"

    def result(self, timeout_s: float = 30.0) -> SippResult:
        """Wait for SIPp to finish its one call (-m 1) and read its exit code and statistics."""
        try:
            code = self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"SIPp ({self.scenario}) still running after {timeout_s} s:\n"
                               f"{_tail(self.workdir / 'screen.log')}") from None
        stats = self.statistics()
        return SippResult(code, int(stats.get("SuccessfulCall(C)", 0)), int(stats.get("FailedCall(C)", 0)),
                          _tail(self.workdir / "errors.log", 5000))

    def statistics(self) -> dict[str, str]:
        """The last row of SIPp's statistics CSV (-trace_stat), by column name."""
        path = self.workdir / "stats.csv"
        if not path.exists():
            return {}
        rows = list(csv.reader(path.read_text().splitlines(), delimiter=";"))
        return dict(zip(rows[0], rows[-1])) if len(rows) > 1 else {}


@contextlib.contextmanager
def sipp(tmp_path: Path, scenario: str, *, name: str | None = None, files: dict[str, Path] | None = None,
         remote: str | None = None, pause_ms: int | None = None, variables: dict[str, object] | None = None,
         rtp_echo: bool = False, timeout_s: float = 80.0) -> Iterator[SippPeer]:
    """SIPp running tests/sipp/<scenario>.xml for one call (-m 1) on 127.0.0.1, in tmp_path/<name>/.
    `files` are copied into its work directory (the scenario names them); `remote` makes it a UAC sending to
    that host:port; `pause_ms` is the length of the scenario's plain <pause/>; `variables` are -set as the
    scenario's <Global> variables; `rtp_echo` echoes the RTP it receives on its media port."""
    binary = require_binary(SIPP, "sip-tester")
    workdir = tmp_path / (name or scenario)
    workdir.mkdir(parents=True)
    for target, source in (files or {}).items():
        shutil.copy(source, workdir / target)
    port, media_port, control_port = free_port_block(1), free_port_block(4), free_port_block(1)
    args = [binary, "-sf", str(SCENARIOS / f"{scenario}.xml"), "-i", "127.0.0.1", "-mi", "127.0.0.1",
            "-p", str(port), "-mp", str(media_port), "-ci", "127.0.0.1", "-cp", str(control_port),
            "-m", "1", "-timeout", f"{int(timeout_s)}s", "-timeout_error", "-nostdin",
            "-trace_err", "-error_file", "errors.log", "-trace_msg", "-message_file", "messages.log",
            "-trace_stat", "-stf", "stats.csv", "-fd", "1", "-trace_screen", "-screen_file", "screen.log"]
    if remote:
        args.insert(1, remote)
    if pause_ms is not None:
        args += ["-d", str(pause_ms)]
    if rtp_echo:
        args.append("-rtp_echo")
    for key, value in (variables or {}).items():
        args += ["-set", key, str(value)]
    with open(workdir / "stdout.log", "wb") as stdout:
        process = subprocess.Popen(args, cwd=workdir, stdin=subprocess.DEVNULL, stdout=stdout,
                                   stderr=subprocess.STDOUT)
    peer = SippPeer(process, port, media_port, workdir, scenario)
    try:
        if not remote:  # a UAS must be listening before we dial it
            _wait_until_bound(process, port, f"SIPp ({scenario})", workdir / "stdout.log")
        yield peer
    finally:
        _stop(process)


@dataclasses.dataclass
class BaresipPhone:
    process: subprocess.Popen
    port: int
    workdir: Path
    tls: bool = False  # baresip listens for TLS on port + 1

    def uri(self, user: str = "bot") -> str:
        if self.tls:
            return f"sip:{user}@127.0.0.1:{self.port + 1};transport=tls"
        return f"sip:{user}@127.0.0.1:{self.port}"

    def sip_messages(self) -> list[tuple[str, str]]:
        """With `sip_trace`: every SIP message baresip sent or received, as ("TLS a -> b", message text)."""
        text = (self.workdir / "stdout.log").read_text(errors="replace")
        parts = re.split(r"^((?:UDP|TCP|TLS) \S+ -> \S+)$", text, flags=re.MULTILINE)
        return [(parts[i], parts[i + 1].strip()) for i in range(1, len(parts) - 1, 2)]

    def recording(self, direction: str = "dec") -> Path:
        """sndfile's dump of the call: "dec" is what baresip heard, "enc" what it sent."""
        [path] = sorted((self.workdir / "recordings").glob(f"dump-*-{direction}.wav"))
        return path

    def log(self) -> str:
        return _tail(self.workdir / "stdout.log", 20000)


@contextlib.contextmanager
def baresip(tmp_path: Path, source_wav: Path, *, name: str = "baresip", certificate: Path | None = None,
            mediaenc: str = "", sip_trace: bool = False) -> Iterator[BaresipPhone]:
    """baresip on 127.0.0.1 auto-answering sip:bot@, sending `source_wav` (8 kHz mono PCM16; it hangs up
    when the file ends) and recording both directions with the sndfile module. No sound card: the player
    is ALSA's null device. `certificate` (certificate and key in one PEM) makes it answer over TLS too,
    `mediaenc` ("srtp-mand", "srtp") sets its media encryption, `sip_trace` logs every SIP message."""
    binary = require_binary(BARESIP, "baresip-core")
    workdir = tmp_path / name
    (workdir / "recordings").mkdir(parents=True)
    port, rtp_ports = free_port_block(2), free_port_block(10)  # port + 1: its TLS listener
    config = {
        "poll_method": "epoll",
        "sip_listen": f"127.0.0.1:{port}",
        "net_interface": "127.0.0.1",
        "rtp_ports": f"{rtp_ports}-{rtp_ports + 9}",
        "audio_player": "alsa,null",
        "audio_alert": "alsa,null",
        "audio_source": f"aufile,{source_wav}",
        "ausrc_srate": RATE, "auplay_srate": RATE, "ausrc_channels": 1, "auplay_channels": 1,
        "module_path": BARESIP_MODULES,
        "snd_path": workdir / "recordings",
    }
    if certificate:
        config["sip_certificate"] = certificate
    modules = ["g711.so", "aufile.so", "sndfile.so", "alsa.so"] + (["srtp.so"] if mediaenc else [])
    lines = [f"{key}\t{value}" for key, value in config.items()]
    lines += [f"module\t{module}" for module in modules]
    lines.append("module_app\taccount.so")
    (workdir / "config").write_text("\n".join(lines) + "\n")
    aor = "<sip:bot@127.0.0.1;transport=tls>" if certificate else "<sip:bot@127.0.0.1>"
    extra = f";mediaenc={mediaenc}" if mediaenc else ""
    (workdir / "accounts").write_text(f"{aor};regint=0;answermode=auto;audio_codecs=PCMU/8000/1{extra}\n")
    with open(workdir / "stdout.log", "wb") as stdout:
        # -n: without it baresip takes the first non-loopback interface's address for SIP and SDP.
        process = subprocess.Popen([binary, "-f", str(workdir), "-n", "127.0.0.1"] + (["-s"] if sip_trace else []),
                                   cwd=workdir, stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.STDOUT)
    phone = BaresipPhone(process, port, workdir, tls=certificate is not None)
    try:
        _wait_until_bound(process, port, "baresip", workdir / "stdout.log")
        if certificate:
            _wait_until_bound(process, port + 1, "baresip (TLS)", workdir / "stdout.log", socket.SOCK_STREAM)
        yield phone
    finally:
        _stop(process)
