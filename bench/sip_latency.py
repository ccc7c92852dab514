# SPDX-License-Identifier: GPL-2.0-or-later
"""Speed of real SIP interviews, measured from the candidate's phone, at 1, 4 and 8 concurrent calls.

Run: .venv/bin/python bench/sip_latency.py [--concurrency 1 4 8] [--llm embedded|none]

For each level N: a MediaWorkerPool of ceil(N / 4) media worker processes (pjsua2 takes at most 4 calls
per process; the pool gives each dial to the worker with the fewest calls) places N concurrent calls on
127.0.0.1 to the simulated candidates' SIP phones (dialer.sim_phone: ceil(N / 4) more pjsua2 processes).
The calls cycle through three candidates: `pauser` (this file: pauses of 1.2-1.5 s mid-answer), `concrete`
and `vague` (earns follow-ups). --save DIR keeps the raw phone reports and worker timings (DIR/level-N.json).
Every figure below is taken from the phone's report of what it heard over RTP, on
the candidate's media clock, except where it says "engine":

- greeting's first word: first AI speech onset after the phone sent 200 OK (the phone maps that moment
  onto its media clock, which starts with the first RTP frame).
- first AI sound: after each answer's last word, the first AI onset (an acknowledgement or the reply).
- reply's own first word: the first onset after the last word, or, when the engine acknowledged that turn,
  the first onset after the acknowledgement's stretch of speech. The phone splits AI speech into segments
  at >= 200 ms of quiet; every acknowledgement (ivr/tts/phrase_cache.py ACKNOWLEDGEMENTS) is one short
  segment (< 750 ms of sound) and its own Piper audio ends in >= 180 ms of quiet, plus the reply's leading
  quiet, so an acknowledgement and the reply after it are always two segments, even with no underrun
  between. Which turns were acknowledged comes from the worker's TurnTiming (`acknowledged`, `ack_text`),
  matched to the phone's answers by call (each call dials its own SIP user, `callN`) and turn index. When a
  call's counts differ (the engine split a paused answer into two turns, or heard something else as a turn)
  the bench warns with the counts and, for that call, detects acknowledgements from the audio instead: a
  first segment shorter than ACK_MAX_MS followed by more AI speech before the next answer. It also prints
  how often the two methods agree on the calls where both apply.
- acknowledgements: share of turns acknowledged, two turns in a row acknowledged, the same words on two
  acknowledgements in a row (worker timings).
- silent gaps inside one AI utterance, engine: ivr/playback.py counts underruns (silence pulled while an
  utterance that has begun is still going, not paused or interrupted, with nothing queued) and each
  utterance's longest run; the greeting is utterance 1. An acknowledgement and its reply are one
  utterance, so the wait between them counts too ("of which: ack -> reply join" shows that share).
- silent gaps inside AI speech, at the phone (for reference): quiet between two AI segments with no
  candidate speech between, shorter than the candidate's "the AI has finished" wait (900 ms); this
  includes Piper's own pauses between sentences (~250-350 ms), so it is not the target's figure.
- talking over a pausing candidate: an AI onset from the start of a mid-answer pause to the answer's last
  word, i.e. the AI began speaking into the pause or over the words after it.
- call setup (INVITE -> answered), CPU of the worker processes per concurrent call (sum of their
  utime + stime over the wall time the calls ran, / N) and, separately, the phones' CPU: they run their own
  pjsip and RTP (the Piper audio of the answers is made before the calls), on the same 2 cores.

Exit code 0 unless the bench itself failed (a call not answered at the phone, or ended failed / partial):
1 with the statuses. An interviewer's outcome other than completed (e.g. no_response once a script has run
out of answers) is a whole call and counts.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from latency import percentile, row  # noqa: E402  (bench/latency.py: the same p50/p95 rows)

from config.settings import LlmSettings, LogSettings, Settings, SipSettings, StoreSettings  # noqa: E402
from config.templates import load_template_file, sample_template_path  # noqa: E402
from dialer.simulator import PAUSE_MARK  # noqa: E402
from dialer.sip.pool import MediaWorkerPool  # noqa: E402
from ivr.vad import trails_off  # noqa: E402
from models.store import SessionStore  # noqa: E402

BENCH_FAILURES = {"failed", "partial", "busy", "no_answer", "declined", "cancelled", "expired"}  # not a whole call
CALLS_PER_WORKER = 4  # pjsua2-python's limit per process
ACK_MAX_MS = 750  # no acknowledgement's sound lasts this long (Piper, 8 kHz: 260-480 ms)
AI_DONE_MS = 900  # the simulated candidate's "the AI has finished" quiet: longer quiet is not inside speech
SCRIPTS = ("pauser", "concrete", "vague")  # the pauser first: every level, even 1 call, has its pauses
# Pauses after a trailing word ("and", "um") and after a complete clause; with Piper's own quiet around the
# words the phone sends 1.2-1.5 s of quiet (each printed). Spare answers at the end, for follow-ups.
PAUSER = {"name": "pauser", "answers": [
    "Yes, that's fine, go ahead.",
    "I'd go through the bill with them line by line, and <1000> last month they had a ten dollar credit, so "
    "this month it's twenty dollars more. Then I'd ask if that matches what they see.",
    "Last March a customer called about a double charge. <700> He was really upset, so I let him finish, "
    "refunded the forty dollars on the call and emailed him the next day.",
    "First I'd confirm the address and, um, <1300> check the delivery photo with the customer. If it went to "
    "the wrong door I'd open a claim with the carrier.",
    "I can work evenings and weekends. <800> Rotating shifts are fine too, and at my last job I didn't miss "
    "a single shift in two years.",
    "Yes, I can work Saturdays and Sundays, and I have a car, so I have never been late to a shift.",
    "Mostly evenings, and weekends too.",
]}


@dataclass(frozen=True)
class Target:
    label: str  # as printed
    stat: str  # p50 | p95 | max | count
    limit: float

    def check(self, values: list[float]) -> str:
        if not values and self.stat != "count":
            return f"target {self.label}: n/a"
        got = {"p50": lambda: percentile(values, 50), "p95": lambda: percentile(values, 95),
               "max": lambda: max(values), "count": lambda: len(values)}[self.stat]()
        return f"target {self.label}: {'PASS' if got <= self.limit else 'MISS'}"


REPLY_P50, REPLY_P95 = Target("p50 <= 900", "p50", 900), Target("p95 <= 1300", "p95", 1300)
FIRST_SOUND_P50 = Target("p50 <= 500", "p50", 500)
GREETING_MAX = Target("every call <= 400", "max", 400)
UNDERRUN_MAX = Target("none > 250", "max", 250)


@dataclass
class Level:
    calls: int
    workers: int
    statuses: list[str]
    reports: list[dict]  # the phone's, one per call
    timings: dict[str, list[dict]]  # phone user -> the worker's TurnTiming dicts, in turn order
    underruns: list[dict]  # engine: per utterance, longest underrun (ivr/playback.py)
    setup_ms: list[float]
    worker_cpu_share: float  # per concurrent call, of one core
    phone_cpu_share: float  # the phone processes, of one core
    warnings: list[str] = field(default_factory=list)


# -- running one level --------------------------------------------------------------------------------------
def free_udp_port(span: int = 1) -> int:
    """A UDP port on 127.0.0.1 free together with the `span - 1` after it (worker N listens on port + N)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if all(udp_port_free(port + i) for i in range(1, span)):
            return port


def udp_port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def user_of(index: int) -> str:
    return f"call{index}"  # each call its own SIP user: the phone's report names it


async def start_phone(tmp: Path, calls: int) -> tuple[asyncio.subprocess.Process, int]:
    scripts = tmp / "scripts.json"
    scripts.write_text(json.dumps([PAUSER]))
    assign = [arg for i in range(calls) for arg in ("--assign", f"{user_of(i)}={SCRIPTS[i % len(SCRIPTS)]}")]
    port = free_udp_port()
    phone = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dialer.sim_phone", "--port", str(port), "--rtp-port", str(free_udp_port(10)),
        "--scripts", str(scripts), *assign, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=REPO)
    if (await asyncio.wait_for(phone.stdout.readline(), 300)).strip() != b"ready":
        raise RuntimeError("the simulated phone did not start")
    return phone, port


async def stop_phone(phone: asyncio.subprocess.Process) -> str:
    """Close its stdin (it hangs up and exits); what it printed."""
    phone.stdin.close()
    out, _ = await asyncio.wait_for(phone.communicate(), 60)
    return out.decode()


def bench_interviews(store: SessionStore, calls: int) -> list[str]:
    position = store.create_position(load_template_file(sample_template_path()))
    ids = []
    for i in range(calls):
        candidate, _ = store.upsert_candidate({"name": "Bench Candidate", "phone": f"+1415555{2000 + i:04d}",
                                               "timezone": "UTC"})
        interview, _ = store.create_interview(candidate_id=candidate.id, position_id=position.id, channel="sip",
                                              expires_at=store.clock() + timedelta(days=1))
        ids.append(interview.id)
    return ids


async def run_level(calls: int, llm: str, tmp: Path) -> Level:
    workers = math.ceil(calls / CALLS_PER_WORKER)
    settings = Settings(store=StoreSettings(path=str(tmp / f"bench-{calls}.db"), recordings_dir=str(tmp / "rec")),
                        sip=SipSettings(port=free_udp_port(workers), rtp_port_start=47000, workers=workers,
                                        calls_per_worker=CALLS_PER_WORKER),
                        llm=LlmSettings(backend="embedded"), log=LogSettings(level="warning"))
    store = SessionStore(settings.store.target)
    ids = bench_interviews(store, calls)
    users = {iid: user_of(i) for i, iid in enumerate(ids)}
    # The phone is a pjsua2 process too: at most 4 calls each, so call i rings phone i % len(phones).
    phones = await asyncio.gather(*(start_phone(tmp, calls) for _ in range(workers)))
    target = {iid: f"sip:{users[iid]}@127.0.0.1:{phones[i % workers][1]}" for i, iid in enumerate(ids)}
    setup_ms: list[float] = []
    dialed: dict[str, float] = {}

    def on_state(interview_id: str, status: str) -> None:
        if status == "dialing":
            dialed[interview_id] = time.monotonic()
        elif status == "in_progress" and interview_id in dialed:
            setup_ms.append((time.monotonic() - dialed[interview_id]) * 1000)

    timings: dict[str, list[dict]] = {}
    underruns: list[dict] = []

    def on_done(result, call_timings: list[dict]) -> None:
        timings[users[result.interview_id]] = call_timings
        underruns.extend(result.underruns)

    try:
        async with MediaWorkerPool(settings, store, with_llm=llm == "embedded", on_state=on_state,
                                   on_done=on_done) as pool:
            pids = [worker.process.pid for worker in pool.workers]
            phone_pids = [phone.pid for phone, _ in phones]
            cpu_before, phone_before = sum(map(cpu_seconds, pids)), sum(map(cpu_seconds, phone_pids))
            started = time.monotonic()
            results = await asyncio.gather(*(pool.dial(iid, target[iid]) for iid in ids))
            wall = time.monotonic() - started
            cpu, phone_cpu = sum(map(cpu_seconds, pids)) - cpu_before, sum(map(cpu_seconds, phone_pids)) - phone_before
    finally:
        outs = await asyncio.gather(*(stop_phone(phone) for phone, _ in phones))
        store.close()
    reports = [json.loads(line) for out in outs for line in out.splitlines() if line.startswith("{")]
    return Level(calls, workers, [r.status for r in results], reports, timings, underruns, setup_ms,
                 cpu / wall / calls, phone_cpu / wall)


# -- what the phone heard ---------------------------------------------------------------------------------
def greeting_first_word(report: dict) -> float | None:
    """ms from 200 OK to the first AI onset."""
    onsets = report.get("ai_onsets_ms", [])
    return onsets[0] - report["answered_ms"] if onsets and "answered_ms" in report else None


def after_answer(report: dict, index: int) -> list[list[int]]:
    """The AI segments that began after answer `index`'s last word and before the next answer began."""
    said = report["said"]
    start = said[index]["last_word_ms"]
    end = said[index + 1]["start_ms"] if index + 1 < len(said) else math.inf
    return [seg for seg in report.get("ai_segments_ms", []) if start < seg[0] < end]


def heard_as_ack(segments: list[list[int]]) -> bool:
    """From the audio alone: a first stretch as short as an acknowledgement, more AI speech after it."""
    return len(segments) >= 2 and segments[0][1] - segments[0][0] + 20 <= ACK_MAX_MS


def ack_flags(report: dict, timings: list[dict] | None, warnings: list[str]) -> tuple[list[bool], bool]:
    """Per answer, whether the engine acknowledged it; True when taken from the worker's timings."""
    said = report["said"]
    if timings is not None and len(timings) == len(said):
        return [bool(t["acknowledged"]) for t in timings], True
    warnings.append(f"{report['user']} ({report.get('script')}): the worker reported "
                    f"{'no' if timings is None else len(timings)} turn timings for {len(said)} answers at the "
                    f"phone; acknowledgements detected from the audio for this call")
    return [heard_as_ack(after_answer(report, i)) for i in range(len(said))], False


@dataclass
class Heard:
    greeting: list[float] = field(default_factory=list)
    first_sound: list[float] = field(default_factory=list)
    reply_word: list[float] = field(default_factory=list)
    reply_word_acked: list[float] = field(default_factory=list)  # the same, acknowledged turns only
    ack_onset: list[float] = field(default_factory=list)
    phone_gaps: list[float] = field(default_factory=list)
    paused: int = 0  # mid-answer pauses
    pause_ms: list[float] = field(default_factory=list)  # their quiet, as sent
    talked_over: list[str] = field(default_factory=list)  # "call3 answer 2 (after 'and')"
    trailing_pauses: tuple[int, int] = (0, 0)  # (talked over, pauses) after a trailing word
    no_reply: int = 0  # acknowledged turns with no further AI speech before the next answer
    agree: tuple[int, int] = (0, 0)  # worker flags vs audio detection: (agree, compared)


def read_reports(level: Level) -> Heard:
    heard = Heard()
    for report in level.reports:
        if (g := greeting_first_word(report)) is not None:
            heard.greeting.append(g)
        if "said" in report:
            read_turns(report, level.timings.get(report["user"]), heard, level.warnings)
            heard.phone_gaps += gaps_in_speech(report)
            read_pauses(report, heard)
    return heard


def read_turns(report: dict, timings: list[dict] | None, heard: Heard, warnings: list[str]) -> None:
    flags, from_worker = ack_flags(report, timings, warnings)
    for index, answer in enumerate(report["said"]):
        segments = after_answer(report, index)
        if not segments:
            continue  # the call ended (or the AI stayed silent) after this answer
        heard.first_sound.append(segments[0][0] - answer["last_word_ms"])
        if from_worker:
            agree, compared = heard.agree
            heard.agree = (agree + (heard_as_ack(segments) == flags[index]), compared + 1)
        if not flags[index]:
            heard.reply_word.append(segments[0][0] - answer["last_word_ms"])
        elif len(segments) >= 2:
            heard.ack_onset.append(segments[0][0] - answer["last_word_ms"])
            heard.reply_word.append(segments[1][0] - answer["last_word_ms"])
            heard.reply_word_acked.append(segments[1][0] - answer["last_word_ms"])
        else:
            heard.no_reply += 1


def gaps_in_speech(report: dict) -> list[float]:
    """Quiet between two AI segments, shorter than AI_DONE_MS, with no answer begun between them."""
    starts = [answer["start_ms"] for answer in report["said"]]
    segments = report.get("ai_segments_ms", [])
    return [b[0] - a[1] - 20 for a, b in zip(segments, segments[1:])
            if b[0] - a[1] - 20 < AI_DONE_MS and not any(a[1] < s < b[0] for s in starts)]


def read_pauses(report: dict, heard: Heard) -> None:
    """Each mid-answer pause: did an AI onset fall between its start and the answer's last word?"""
    for index, answer in enumerate(report["said"]):
        before = PAUSE_MARK.split(answer["text"])[::2]  # the words before each pause, and after the last
        for number, (start, end) in enumerate(answer.get("pauses_ms", [])):
            heard.paused += 1
            heard.pause_ms.append(end - start)
            trailing = number < len(before) - 1 and trails_off(before[number])
            over = any(start < onset <= answer["last_word_ms"] for onset in report.get("ai_onsets_ms", []))
            if over:
                heard.talked_over.append(f"{report['user']} answer {index + 1}")
            talked, pauses = heard.trailing_pauses
            heard.trailing_pauses = (talked + (over and trailing), pauses + trailing)


# -- what the worker reported -----------------------------------------------------------------------------
@dataclass
class Acks:
    turns: int = 0
    acked: int = 0
    in_a_row: int = 0  # two turns in a row acknowledged
    repeated: int = 0  # the same words on two acknowledgements in a row
    wordings: set[str] = field(default_factory=set)


def read_acks(timings: dict[str, list[dict]]) -> Acks:
    acks = Acks()
    for call in timings.values():
        flags = [bool(t["acknowledged"]) for t in call]
        texts = [t.get("ack_text") for t in call if t["acknowledged"]]
        acks.turns += len(call)
        acks.acked += sum(flags)
        acks.in_a_row += sum(a and b for a, b in zip(flags, flags[1:]))
        acks.repeated += sum(a == b for a, b in zip(texts, texts[1:]))
        acks.wordings.update(t for t in texts if t)
    return acks


# -- printing ---------------------------------------------------------------------------------------------
def checked(name: str, values: list[float], *targets: Target) -> str:
    line = row(name, values)
    if values and any(t.stat == "max" for t in targets):
        line += f"   max {max(values):.0f} ms"
    return "  ".join([line, *(t.check(values) for t in targets)])


def print_level(level: Level) -> dict:
    """The level's rows; returns its summary for the final table."""
    heard, acks = read_reports(level), read_acks(level.timings)
    longest = [float(u["longest_ms"]) for u in level.underruns]
    joins = [float(u["join_ms"]) for u in level.underruns if u["join_ms"]]
    over_250 = sum(v > 250 for v in longest)
    print(f"\n== {level.calls} concurrent call(s), {level.workers} media worker process(es): "
          f"{', '.join(level.statuses)}")
    for warning in level.warnings:
        print(f"   warning: {warning}")
    print(checked("greeting's first word after 200 OK", heard.greeting, GREETING_MAX))
    print(checked("reply's own first word after the last word", heard.reply_word, REPLY_P50, REPLY_P95))
    print(row("  ... on acknowledged turns only", heard.reply_word_acked))
    print(checked("first AI sound after the last word", heard.first_sound, FIRST_SOUND_P50))
    print(row("acknowledgement onset after the last word", heard.ack_onset))
    in_a_row = "PASS" if acks.in_a_row == 0 else "MISS"
    varied = "PASS" if acks.repeated == 0 else "MISS"
    print(f"{'acknowledged turns (engine timings)':<46} {acks.acked}/{acks.turns}   two in a row: {acks.in_a_row}"
          f" ({in_a_row})   same words twice running: {acks.repeated} ({varied})   wordings: {len(acks.wordings)}")
    agree, compared = heard.agree
    if compared:
        print(f"{'  ack flags vs the audio (short first segment)':<46} agree on {agree} of {compared} turns")
    if heard.no_reply:
        print(f"   warning: {heard.no_reply} acknowledged turn(s) had no further AI speech before the next answer")
    print(checked("engine: longest underrun per AI utterance", longest, UNDERRUN_MAX) +
          f"   > 250 ms: {over_250}")
    print(row("  of which: ack -> reply join (when > 0)", joins))
    print(row("  greeting (utterance 1) longest underrun", [float(u["longest_ms"]) for u in level.underruns
                                                          if u["utterance"] == 1]))
    gaps = heard.phone_gaps
    print(f"{'gaps inside AI speech at the phone (reference)':<46} "
          + (f"p95 {percentile(gaps, 95):7.0f} ms   max {max(gaps):5.0f} ms   n={len(gaps)}   (incl. Piper's "
             "pauses between sentences)" if gaps else "n/a"))
    trailing_over, trailing = heard.trailing_pauses
    talked = len(heard.talked_over)
    print(f"{'AI talked over a mid-answer pause (1.0-1.5 s)':<46} {talked} of {heard.paused} "
          f"({'PASS' if talked == 0 else 'MISS'}; after a trailing word: {trailing_over} of {trailing}, after a "
          f"complete clause: {talked - trailing_over} of {heard.paused - trailing})"
          + (f"  [{', '.join(heard.talked_over)}]" if heard.talked_over else ""))
    print(row("  the pauses' quiet, as the phone sent it", heard.pause_ms) +
          (f"   max {max(heard.pause_ms):.0f} ms" if heard.pause_ms else ""))
    print(row("call setup (INVITE -> answered)", level.setup_ms))
    all_timings = [t for call in level.timings.values() for t in call]
    for stage in ("endpoint_delay_ms", "stt_final_ms", "decide_ms", "tts_first_audio_ms", "reply_audio_ms"):
        values = [t[stage] for t in all_timings if t.get(stage) is not None]
        print(row(f"engine: {stage.removesuffix('_ms').replace('_', ' ')}", values))
    print(f"{'CPU per concurrent call (media workers)':<46} {level.worker_cpu_share * 100:5.1f} % of one core "
          f"({level.worker_cpu_share * level.calls * 100:.0f} % in all, of 200 %)")
    print(f"{'CPU of the candidate phone (same 2 cores)':<46} {level.phone_cpu_share * 100:5.1f} % of one core "
          "(RTP and the simulated candidates: load the engine does not have in production)")
    clock_lag = [float(r["clock_lag_ms"]) for r in level.reports if "clock_lag_ms" in r]
    if clock_lag and max(clock_lag) > 200:
        print(f"   warning: the phone's media clock fell up to {max(clock_lag):.0f} ms behind the wall clock")
    return {"calls": level.calls, "reply": heard.reply_word, "first": heard.first_sound, "greeting": heard.greeting,
            "acks": acks, "longest": longest, "over_250": over_250, "talked": talked, "paused": heard.paused,
            "cpu": level.worker_cpu_share, "phone_cpu": level.phone_cpu_share}


def p(values: list[float], q: float) -> str:
    return f"{percentile(values, q):.0f}" if values else "n/a"


def print_summary(levels: list[dict]) -> None:
    """One table, levels x targets, to paste into the README."""
    print("\n| concurrent calls | reply's first word p50 / p95 (<= 900 / 1,300 ms) | first AI sound p50 (<= 500 ms) "
          "| greeting's first word p50 / max (<= 400 ms) | acknowledged turns; two in a row (0) "
          "| longest underrun p95 / max; > 250 ms (0) | talked over a pause (0) | CPU per call |")
    print("|---:|---|---|---|---|---|---|---:|")
    for s in levels:
        acks = s["acks"]
        print(f"| {s['calls']} | {p(s['reply'], 50)} / {p(s['reply'], 95)} (n={len(s['reply'])}) "
              f"| {p(s['first'], 50)} (n={len(s['first'])}) "
              f"| {p(s['greeting'], 50)} / {max(s['greeting'], default=float('nan')):.0f} (n={len(s['greeting'])}) "
              f"| {acks.acked}/{acks.turns}; {acks.in_a_row} "
              f"| {p(s['longest'], 95)} / {max(s['longest'], default=float('nan')):.0f}; {s['over_250']} "
              f"(n={len(s['longest'])}) | {s['talked']} of {s['paused']} | {s['cpu'] * 100:.0f} % |")
    print("(CPU per call: the media workers' CPU over the calls' wall time / calls, % of one core; the candidate "
          "phone's own CPU is printed per level above.)")


def bench_problem(level: Level) -> str | None:
    """Why the level's figures cannot be trusted: a call the phone never answered or that did not run to the
    interviewer's own end (an interviewer's outcome such as no_response, when a script ran out of answers,
    still measured the whole call)."""
    answered = sum(r.get("answered") == 200 for r in level.reports)
    broken = [s for s in level.statuses if s in BENCH_FAILURES]
    if answered < level.calls or broken:
        return f"{answered} of {level.calls} answered at the phone; statuses {', '.join(level.statuses)}"
    return None


def save_level(level: Level, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    raw = {"statuses": level.statuses, "reports": level.reports, "timings": level.timings,
           "underruns": level.underruns, "setup_ms": level.setup_ms}
    (directory / f"level-{level.calls}.json").write_text(json.dumps(raw, indent=1))


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8], help="calls at once")
    parser.add_argument("--llm", choices=("embedded", "none"), default="embedded")
    parser.add_argument("--save", type=Path, help="write each level's phone reports and worker timings here")
    args = parser.parse_args()
    summaries, failed = [], []
    with tempfile.TemporaryDirectory(prefix="phonescreen-bench-") as tmp:
        for calls in args.concurrency:
            level = await run_level(calls, args.llm, Path(tmp))
            if args.save:
                save_level(level, args.save)
            summaries.append(print_level(level))
            if problem := bench_problem(level):
                failed.append(f"{calls} calls: {problem}")
    print_summary(summaries)
    if failed:
        print(f"\nbench failed: a call did not run whole ({'; '.join(failed)})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
