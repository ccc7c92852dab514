"""Latency and CPU of real SIP interviews, measured from the candidate's phone.

Run: .venv/bin/python bench/sip_latency.py [--concurrency 1 4] [--llm embedded|none]

For each concurrency level N: one media worker process (pjsua2 + the voice engine) places N concurrent
calls on 127.0.0.1 to the simulated candidates' SIP phone (dialer.sim_phone, another process). The phone
notes when each scripted answer's last word left it and when the first AI audio after it arrived over
RTP: that gap is "candidate stops speaking -> first AI audio packet they hear". Also printed: the
engine's own breakdown when the worker reports its turn timings, call setup time (INVITE -> answered),
and the worker's CPU per concurrent call (share of one core while the calls run).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from latency import row  # noqa: E402  (bench/latency.py: the same p50/p95 rows)

from config.settings import LlmSettings, LogSettings, Settings, SipSettings, StoreSettings  # noqa: E402
from config.templates import load_template_file, sample_template_path  # noqa: E402
from dialer.sip.pool import MediaWorkerPool  # noqa: E402
from models.store import SessionStore  # noqa: E402

SCRIPTS = ("concrete", "vague")  # both answer every question


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def start_phone(tmp: Path) -> tuple[asyncio.subprocess.Process, int]:
    port = free_udp_port()
    phone = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dialer.sim_phone", "--port", str(port), "--rtp-port", str(free_udp_port()),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=REPO)
    if (await asyncio.wait_for(phone.stdout.readline(), 300)).strip() != b"ready":
        raise RuntimeError("the simulated phone did not start")
    return phone, port


async def run_level(calls: int, llm: str, tmp: Path) -> dict:
    settings = Settings(store=StoreSettings(path=str(tmp / f"bench-{calls}.db"), recordings_dir=str(tmp / "rec")),
                        sip=SipSettings(port=free_udp_port(), rtp_port_start=47000, workers=1),
                        llm=LlmSettings(backend="embedded"), log=LogSettings(level="warning"))
    store = SessionStore(settings.store.target)
    template = load_template_file(sample_template_path())
    position = store.create_position(template)
    ids = []
    for i in range(calls):
        candidate, _ = store.upsert_candidate({"name": "Bench Candidate", "phone": f"+1415555{2000 + i:04d}",
                                               "timezone": "UTC"})
        interview, _ = store.create_interview(candidate_id=candidate.id, position_id=position.id, channel="sip",
                                              expires_at=store.clock() + timedelta(days=1))
        ids.append(interview.id)
    phone, port = await start_phone(tmp)
    setup_ms: list[float] = []
    dialed: dict[str, float] = {}

    def on_state(interview_id: str, status: str) -> None:
        if status == "dialing":
            dialed[interview_id] = time.monotonic()
        elif status == "in_progress" and interview_id in dialed:
            setup_ms.append((time.monotonic() - dialed[interview_id]) * 1000)

    timings: list[dict] = []
    try:
        async with MediaWorkerPool(settings, store, with_llm=llm == "embedded", on_state=on_state,
                                   on_done=lambda _result, call_timings: timings.extend(call_timings)) as pool:
            pid = pool.workers[0].process.pid
            cpu_before, started = cpu_seconds(pid), time.monotonic()
            results = await asyncio.gather(*(pool.dial(iid, f"sip:{SCRIPTS[i % 2]}@127.0.0.1:{port}")
                                             for i, iid in enumerate(ids)))
            cpu = cpu_seconds(pid) - cpu_before
            wall = time.monotonic() - started
    finally:
        phone.stdin.close()
        out, _ = await asyncio.wait_for(phone.communicate(), 60)
    reports = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
    ear = []
    for report in reports:
        onsets = report.get("ai_onsets_ms", [])
        for answer in report.get("said", []):
            first = next((t for t in onsets if t > answer["last_word_ms"]), None)
            if first is not None:
                ear.append(first - answer["last_word_ms"])
    store.close()
    return {"calls": calls, "statuses": [r.status for r in results], "ear": ear, "setup": setup_ms,
            "timings": timings, "cpu_share_per_call": cpu / wall / calls}


def print_level(level: dict) -> None:
    print(f"\n{level['calls']} concurrent call(s): {', '.join(level['statuses'])}")
    print(row("candidate stops -> first AI audio at the phone", level["ear"]))
    print(row("call setup (INVITE -> answered)", level["setup"]))
    timings = level["timings"]  # the worker's TurnTiming per reply, as dicts (dialer/sip/pool.py on_done)
    for stage in ("endpoint_delay_ms", "stt_final_ms", "decide_ms", "tts_first_audio_ms", "total_ms"):
        values = [t[stage] for t in timings if t.get(stage) is not None]
        if values:
            print(row(f"engine: {stage.removesuffix('_ms').replace('_', ' ')}", values))
    print(f"{'worker CPU per concurrent call':<46} {level['cpu_share_per_call'] * 100:5.1f} % of one core")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4], help="calls at once (max 4)")
    parser.add_argument("--llm", choices=("embedded", "none"), default="embedded")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="phonescreen-bench-") as tmp:
        for calls in args.concurrency:
            print_level(await run_level(min(calls, 4), args.llm, Path(tmp)))


if __name__ == "__main__":
    asyncio.run(main())
