"""One SIPp UAS answering many campaign calls (tests/sipp/campaign_uas.xml: the called number picks answer,
486 or ring-until-CANCEL), on 127.0.0.1, with its own statistics: how many calls it held at once (sampled
every second by SIPp) and each INVITE it received (number, Call-ID)."""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import re
import subprocess
from pathlib import Path
from typing import Iterator

from sip_harness import free_port_block
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
