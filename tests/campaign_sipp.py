"""One SIPp UAS answering many campaign calls (tests/sipp/campaign_uas.xml: the called number picks answer,
486 or ring-until-CANCEL), on 127.0.0.1, with its own statistics: how many calls it held at once (sampled
every second by SIPp) and each INVITE it received (number, Call-ID)."""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import re
import subprocess
import sys
from pathlib import Path
from typing import Iterator

from sip_harness import REPO, free_port_block
from sipp import SCENARIOS, SIPP, _stop, _wait_until_bound, require_binary

ANSWERS, BUSY, RINGS = "+12025551", "+12025552", "+12025553"  # number prefixes the scenario branches on
_INVITE = re.compile(r"^INVITE sip:(\+\d+)@", re.M)
_CALL_ID = re.compile(r"^Call-ID:\s*(\S+)", re.M | re.I)


@dataclasses.dataclass
class CampaignUas:
    process: subprocess.Popen
    port: int
    workdir: Path

    @property
    def domain(self) -> str:
        return f"127.0.0.1:{self.port}"

    def peak_concurrent_calls(self) -> int:
        """The most calls SIPp held at once, over its per-second statistics rows."""
        path = self.workdir / "stats.csv"
        rows = list(csv.DictReader(path.read_text().splitlines(), delimiter=";")) if path.exists() else []
        return max((int(row["CurrentCall"]) for row in rows if row.get("CurrentCall", "").isdigit()), default=0)

    def new_calls_per_second(self) -> list[int]:
        """SIPp's count of new incoming calls in each 1 s statistics period (the pacing as SIPp saw it)."""
        path = self.workdir / "stats.csv"
        rows = list(csv.DictReader(path.read_text().splitlines(), delimiter=";")) if path.exists() else []
        return [int(row["IncomingCall(P)"]) for row in rows if row.get("IncomingCall(P)", "").isdigit()]

    def invites(self) -> dict[str, set[str]]:
        """Number -> the Call-IDs of the INVITEs it received (retransmissions count once)."""
        calls: dict[str, set[str]] = {}
        text = (self.workdir / "messages.log").read_text(errors="replace")
        for block in re.split(r"^-{20,}.*$", text, flags=re.M):
            if "message received" not in block and not _INVITE.search(block):
                continue
            invite, call_id = _INVITE.search(block), _CALL_ID.search(block)
            if invite and call_id:
                calls.setdefault(invite.group(1), set()).add(call_id.group(1))
        return calls

    def errors(self) -> str:
        path = self.workdir / "errors.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


def dialer_node(env: dict[str, str], log: Path, campaign_id: str, *, lease_s: float = 5.0) -> subprocess.Popen:
    """A dialer node: `phonescreen campaign run --campaign ID` in its own process, with its own SIP port and
    RTP ports, on the store `env` names (PHONESCREEN_STORE_URL)."""
    node_env = {**env, "PHONESCREEN_SIP_PORT": str(free_port_block(1)),
                "PHONESCREEN_SIP_RTP_PORT_START": str(free_port_block(40)),
                "PHONESCREEN_SIP_RTP_PORTS_PER_WORKER": "40"}
    command = [sys.executable, "-m", "server.cli", "--log-format", "text", "campaign", "run", "--campaign", campaign_id,
               "--no-llm", "--quiet", "--lease-s", str(lease_s)]
    with open(log, "ab") as out:
        return subprocess.Popen(command, cwd=REPO, env=node_env, stdout=out, stderr=subprocess.STDOUT)


def paced(per_second: list[int], rate: float) -> bool:
    """No window of k one-second periods saw more new calls than a token bucket of `rate` (burst max(1,
    rate)) allows: burst + rate * (k + 1), one period more because SIPp's periods and ours are not aligned."""
    burst = max(1.0, rate)
    return all(sum(per_second[start:start + k]) <= burst + rate * (k + 1)
               for k in range(1, 11) for start in range(len(per_second) - k + 1))


@contextlib.contextmanager
def campaign_uas(tmp_path: Path, *, hang_up_after_ms: int = 1500) -> Iterator[CampaignUas]:
    binary = require_binary(SIPP, "sip-tester")
    workdir = tmp_path / "campaign-uas"
    workdir.mkdir(parents=True)
    port, media_port, control_port = free_port_block(1), free_port_block(4), free_port_block(1)
    args = [binary, "-sf", str(SCENARIOS / "campaign_uas.xml"), "-i", "127.0.0.1", "-mi", "127.0.0.1",
            "-p", str(port), "-mp", str(media_port), "-ci", "127.0.0.1", "-cp", str(control_port),
            "-d", str(hang_up_after_ms), "-nostdin", "-timeout", "900s",
            "-trace_err", "-error_file", "errors.log", "-trace_msg", "-message_file", "messages.log",
            "-trace_stat", "-stf", "stats.csv", "-fd", "1"]
    with open(workdir / "stdout.log", "wb") as stdout:
        process = subprocess.Popen(args, cwd=workdir, stdin=subprocess.DEVNULL, stdout=stdout,
                                   stderr=subprocess.STDOUT)
    try:
        _wait_until_bound(process, port, "SIPp (campaign_uas)", workdir / "stdout.log")
        yield CampaignUas(process, port, workdir)
    finally:
        _stop(process)
