"""The embedded LLM must not crash the process on any of our CPUs (llama-cpp-python built from source
segfaulted on AVX-512/AMX Xeons). Generate the way the interviewer does: from a worker thread, and in a
freshly spawned process like a SIP media worker, where a SIGSEGV shows as a negative exit code."""
from __future__ import annotations

import asyncio
import multiprocessing
import threading
from multiprocessing.connection import Connection

from config.settings import LlmSettings
from config.templates import load_template_file, sample_template_path
from ivr.llm.embedded import EmbeddedChat
from ivr.phrasing import FollowUpPhraser

VAGUE = "I'd just explain it to them, it depends on the bill."


def _phrase_once() -> tuple[str | None, str]:
    """One follow-up phrased on a new event loop, as a media worker's loop does, plus the raw model text."""
    factor = load_template_file(sample_template_path()).factors[0]
    model = EmbeddedChat(LlmSettings(threads=1))
    phraser = FollowUpPhraser(model, deadline_s=60)

    async def run() -> tuple[str | None, str]:
        raw = await model.complete(phraser.messages(factor, factor.questions[0], VAGUE), max_tokens=24)
        return await phraser.follow_up(factor, factor.questions[0], VAGUE), raw
    return asyncio.run(run())


def _child(conn: Connection) -> None:
    conn.send(_phrase_once())
    conn.close()


def test_embedded_llm_generates_from_a_worker_thread() -> None:
    results: list[tuple[str | None, str]] = []
    worker = threading.Thread(target=lambda: results.append(_phrase_once()), name="interviewer-turn")
    worker.start()
    worker.join(timeout=120)
    assert not worker.is_alive() and results, "generation in a worker thread did not finish"
    assert results[0][1].strip()  # the model said something; whether the guard took it is another test


def test_embedded_llm_generates_in_a_spawned_media_worker_process() -> None:
    context = multiprocessing.get_context("spawn")  # as dialer.sip.pool starts media workers
    parent, child = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(child,), name="llm-crash-guard")
    process.start()
    child.close()
    got = parent.recv() if parent.poll(180) else None
    process.join(timeout=60)
    assert process.exitcode == 0, f"the process generating with the embedded LLM died: exit code {process.exitcode}"
    assert got is not None and got[1].strip()
