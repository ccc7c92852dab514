"""SIP test harness: a short interview template, media worker pools on free ports, simulated candidate
phones (dialer.sim_phone) as real processes, and stored interviews to dial. Everything on 127.0.0.1."""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

from config.settings import Settings, SipSettings
from config.templates import InterviewTemplate, load_template_text
from dialer.simulator import scheduled_interview
from models.store import SessionStore

REPO = Path(__file__).resolve().parent.parent

SHORT_TEMPLATE = '''
title = "Customer Support Agent"
language = "en-US"
company = "Acme Support"
greeting = "Hi {candidate_name}, this is the automated interviewer from {company}."
consent = "This call is recorded and run by an AI interviewer. Do you agree to continue? Say yes or press 1."
# "Goodbye." alone, after a pause, ends a long call where Whisper tiny drops it (0 of 10 placings); joined
# to the sentence before it, 10 of 10 are heard.
closing = "That's all my questions. Thank you for your time, and goodbye."
max_duration_s = 300
inactivity_timeout_s = 60
silence_reprompt_s = 15  # SIPp/baresip play fixed timelines: leave them slack

[[factors]]
name = "Customer empathy"
weight = 1
description = "Acknowledges the customer's feelings, stays calm and takes ownership of the problem."
max_follow_ups = 0
questions = ["Tell me about a time you calmed down an upset customer. What did you do?"]

[factors.anchors]
weak = "Blames the customer or gives no example."
adequate = "Gives an example with some acknowledgement."
strong = "A specific example: acknowledged feelings, took ownership, followed up."
'''

# Answers of a candidate for SHORT_TEMPLATE: the consent, then the one question.
SHORT_ANSWERS = ("Yes, I agree.",
                 "Last spring a customer called because she was charged twice. I said I was sorry, fixed the "
                 "bill during the call, and sent her an email the next morning.")


def short_template() -> InterviewTemplate:
    return load_template_text(SHORT_TEMPLATE, "tests/sip_harness.py")


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def free_port_block(size: int, kind: int = socket.SOCK_DGRAM, tries: int = 50) -> int:
    """The first of `size` consecutive free UDP ports (SIP ports of several workers, RTP ranges)."""
    for _ in range(tries):
        start = free_port(kind)
        if start + size >= 65000:
            continue
        sockets = []
        try:
            for port in range(start, start + size):
                s = socket.socket(socket.AF_INET, kind)
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return start
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError(f"no block of {size} free ports")


def sip_settings(settings: Settings, *, workers: int = 1, **overrides) -> Settings:
    """The test settings with a SIP section on free ports; RTP ranges of 40 ports per worker."""
    sip = SipSettings(enabled=True, port=free_port_block(workers), rtp_port_start=free_port_block(40 * workers),
                      rtp_ports_per_worker=40, workers=workers, ring_timeout_s=overrides.pop("ring_timeout_s", 6.0),
                      rtp_timeout_s=overrides.pop("rtp_timeout_s", 4.0), **overrides)
    return dataclasses.replace(settings, sip=sip)


def new_interview(store: SessionStore, template: InterviewTemplate, *, name: str = "Ana Ruiz",
                  phone: str = "+14155550100") -> str:
    """A scheduled SIP interview, ready to dial."""
    return scheduled_interview(store, template, channel="sip", name=name, phone=phone)


@dataclasses.dataclass
class PhoneProcess:
    process: subprocess.Popen
    port: int
    record_dir: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def uri(self, user: str) -> str:
        return f"sip:{user}@{self.address}"

    def reports(self) -> list[dict]:
        """One JSON report per finished call (after the phone stopped)."""
        out = self.process.stdout.read() if self.process.stdout else ""
        return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


@contextlib.contextmanager
def sim_phone(tmp_path: Path, scripts: list[dict] | None = None, name: str = "phone",
              assign: dict[str, str] | None = None) -> Iterator[PhoneProcess]:
    """A simulated candidate SIP phone in its own process. `scripts`: extra CandidateScript dicts;
    `assign`: called user (e.g. a phone number) -> script name."""
    port = free_port_block(1)
    record_dir = tmp_path / f"{name}-heard"
    args = [sys.executable, "-m", "dialer.sim_phone", "--port", str(port), "--rtp-port", str(free_port_block(20)),
            "--record-dir", str(record_dir)]
    if scripts:
        scripts_file = tmp_path / f"{name}-scripts.json"
        scripts_file.write_text(json.dumps(scripts))
        args += ["--scripts", str(scripts_file)]
    for user, script in (assign or {}).items():
        args += ["--assign", f"{user}={script}"]
    process = subprocess.Popen(args, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    phone = PhoneProcess(process, port, record_dir)
    try:
        deadline = time.monotonic() + 120
        line = ""
        while time.monotonic() < deadline and line.strip() != "ready":
            line = process.stdout.readline()
            if not line and process.poll() is not None:
                raise RuntimeError(f"the simulated phone exited with {process.returncode}")
        yield phone
    finally:
        if process.poll() is None:
            process.stdin.close()  # the phone stops when stdin closes
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
