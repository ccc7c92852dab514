"""The chat backends: Ollama against a stand-in server speaking its wire format on 127.0.0.1, and the
embedded SmolLM2 run for real by llama.cpp."""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import threading
from pathlib import Path

import aiohttp
import ollama
import pytest

from config.settings import LlmSettings
from ivr.llm import make_chat_model
from ivr.llm.base import ChatMessage, LlmUnavailable
from ivr.llm.embedded import EmbeddedChat, bundled_model_path, load_model
from ivr.llm.ollama_llm import OllamaChat
from ollama_double import VERSION, OllamaDouble

MESSAGES = [ChatMessage("system", "You are a polite phone interviewer for a call-center job. "
                                  "Ask exactly one short follow-up question."),
            ChatMessage("user", "The candidate said: I handled billing complaints at a bank for two years.")]


@pytest.fixture
async def double():
    server = await OllamaDouble(models=("llama3.2:3b", "smollm2:latest")).start()
    yield server
    await server.close()


@pytest.fixture
async def make_ollama():
    """make_ollama(settings) -> an OllamaChat from the factory, closed after the test."""
    made: list[OllamaChat] = []

    def make(settings: LlmSettings) -> OllamaChat:
        model = make_chat_model(settings)
        assert isinstance(model, OllamaChat)
        made.append(model)
        return model
    yield make
    for model in made:
        await model.close()


def settings_for(double: OllamaDouble, **overrides) -> LlmSettings:
    return dataclasses.replace(LlmSettings(backend="ollama", ollama_host=double.url, ollama_model="llama3.2:3b"),
                               **overrides)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


async def test_ollama_streams_pieces_in_order_with_the_requested_options(double, make_ollama) -> None:
    model = make_ollama(settings_for(double))
    assert model.name == "ollama:llama3.2:3b"
    pieces = [piece async for piece in model.stream_chat(MESSAGES, max_tokens=24, temperature=0.3, seed=7,
                                                          stop=["\n"])]
    assert pieces == double.pieces
    [request] = double.requests
    assert request["model"] == "llama3.2:3b" and request["stream"] is True
    assert request["messages"] == [{"role": m.role, "content": m.content} for m in MESSAGES]
    assert request["options"] == {"temperature": 0.3, "seed": 7, "num_predict": 24, "stop": ["\n"]}
    assert await model.complete(MESSAGES) == "What did you do next?"


async def test_ollama_missing_model_names_model_and_host(double, make_ollama) -> None:
    model = make_ollama(settings_for(double, ollama_model="qwen2.5:0.5b"))
    with pytest.raises(LlmUnavailable, match=r"qwen2\.5:0\.5b") as raised:
        await model.complete(MESSAGES)
    assert double.url in str(raised.value) and "ollama pull qwen2.5:0.5b" in str(raised.value)
    with pytest.raises(LlmUnavailable, match=r"no model 'qwen2\.5:0\.5b'.*installed: llama3\.2:3b, smollm2:latest"):
        await model.check()


async def test_ollama_host_down_names_the_host(make_ollama) -> None:
    host = closed_port_url()
    model = make_ollama(LlmSettings(backend="ollama", ollama_host=host, timeout_s=2.0))
    with pytest.raises(LlmUnavailable, match="cannot connect") as raised:
        await model.complete(MESSAGES)
    assert host in str(raised.value)
    with pytest.raises(LlmUnavailable, match=host):
        await model.check()


async def test_ollama_slow_server_times_out_as_unavailable(double, make_ollama) -> None:
    double.piece_delay_s = 1.0
    model = make_ollama(settings_for(double, timeout_s=0.2))
    with pytest.raises(LlmUnavailable, match=r"did not answer within 0\.2 s") as raised:
        await asyncio.wait_for(model.complete(MESSAGES), timeout=30)
    assert double.url in str(raised.value)


async def test_ollama_check_reports_the_model_ready(double, make_ollama) -> None:
    status = await make_ollama(settings_for(double)).check()
    assert status == f"Ollama at {double.url}: model llama3.2:3b ready (2 installed)"
    # A name without a tag means ":latest", as in Ollama itself.
    assert "model smollm2 ready" in await make_ollama(settings_for(double, ollama_model="smollm2")).check()


async def test_double_answers_in_the_client_wire_format_without_streaming(double) -> None:
    async with ollama.AsyncClient(host=double.url) as client:
        answer = await client.chat("llama3.2:3b", [{"role": "user", "content": "hi"}])
    assert answer.message.content == "What did you do next?" and answer.done and answer.done_reason == "stop"
    assert answer.eval_count == len(double.pieces) and answer.total_duration > 0
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{double.url}/api/version") as response:
            assert await response.json() == {"version": VERSION}


def test_factory_refuses_an_unknown_backend() -> None:
    with pytest.raises(ValueError, match="unknown llm.backend 'gpt'"):
        make_chat_model(LlmSettings(backend="gpt"))


# --- embedded SmolLM2, run for real ---

@pytest.fixture(scope="module")
def embedded() -> EmbeddedChat:
    # One thread: llama.cpp's threads spin-wait on each other, which on a busy 2-core machine (the tests
    # run beside others) makes 2 threads several times slower than 1.
    model = make_chat_model(LlmSettings(backend="embedded", threads=1))
    assert isinstance(model, EmbeddedChat)
    return model


def generation_stopped() -> bool:
    """The model's lock is free (no generation holds it) and the worker threads end."""
    lock = load_model(bundled_model_path(), threads=1).lock
    if lock.locked():
        return False
    workers = [thread for thread in threading.enumerate() if thread.name == "llm-embedded"]
    for worker in workers:
        worker.join(timeout=10)  # only its last few lines remain; 1500 more tokens would take far longer
    return not any(worker.is_alive() for worker in workers)


async def test_embedded_streams_text(embedded) -> None:
    assert embedded.name == "embedded:smollm2-135m"
    pieces = [piece async for piece in embedded.stream_chat(MESSAGES, max_tokens=24)]
    assert len(pieces) > 1 and all(pieces)
    assert "".join(pieces).strip()


async def test_embedded_is_deterministic_for_a_seed_at_temperature_zero(embedded) -> None:
    first = await embedded.complete(MESSAGES, max_tokens=24, temperature=0.0, seed=3)
    other = [MESSAGES[0], ChatMessage("user", "The candidate said: I like helping people.")]
    await embedded.complete(other, max_tokens=8)  # moves the cached prefix in between
    assert await embedded.complete(MESSAGES, max_tokens=24, temperature=0.0, seed=3) == first
    assert first.strip()


async def test_embedded_stops_generating_when_the_consumer_is_cancelled(embedded) -> None:
    first_piece = asyncio.Event()
    pieces: list[str] = []

    async def consume() -> None:
        async for piece in embedded.stream_chat(MESSAGES, max_tokens=1500, temperature=1.0, seed=1):
            pieces.append(piece)
            first_piece.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first_piece.wait(), timeout=60)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=60)
    assert generation_stopped()  # not just abandoned, still generating
    assert len(pieces) < 1500
    # The model is free again straight away.
    assert await asyncio.wait_for(embedded.complete(MESSAGES, max_tokens=4), timeout=60)


async def test_embedded_stops_generating_when_the_consumer_stops_reading(embedded) -> None:
    async with contextlib.aclosing(embedded.stream_chat(MESSAGES, max_tokens=1500, temperature=1.0)) as stream:
        async for _ in stream:
            break
    assert generation_stopped()


async def test_embedded_generation_leaves_the_event_loop_free(embedded) -> None:
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        text = await embedded.complete(MESSAGES, max_tokens=48, temperature=0.0)
    finally:
        ticker.cancel()
    assert text.strip()
    assert ticks >= 5  # a blocked loop would not have ticked at all while the model ran


def test_embedded_missing_model_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "model.gguf"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        EmbeddedChat(LlmSettings(embedded_model_path=str(missing)))
