"""A chat model served by Ollama (any size the operator likes), streamed over its HTTP API."""
from __future__ import annotations

from typing import AsyncIterator, Sequence

import httpx
import ollama

from config.settings import LlmSettings
from ivr.llm.base import ChatMessage, ChatModel, LlmUnavailable


# What the client raises when the server cannot serve: HTTP errors (connection, timeout, protocol),
# ConnectionError (its own wrapper for refused connections) and ResponseError (an error answer).
_CLIENT_ERRORS = (httpx.HTTPError, ConnectionError, ollama.ResponseError)


class OllamaChat(ChatModel):
    def __init__(self, settings: LlmSettings):
        self._host = settings.ollama_host
        self._model = settings.ollama_model
        self._timeout_s = settings.timeout_s
        # The timeout bounds each network wait (connect, every read), not the whole answer.
        self._client = ollama.AsyncClient(host=settings.ollama_host, timeout=settings.timeout_s)
        self.name = f"ollama:{self._model}"

    async def stream_chat(self, messages: Sequence[ChatMessage], *, max_tokens: int = 80, temperature: float = 0.0,
                          seed: int = 0, stop: Sequence[str] = ()) -> AsyncIterator[str]:
        options = {"temperature": temperature, "seed": seed, "num_predict": max_tokens, "stop": list(stop)}
        wire_messages = [{"role": message.role, "content": message.content} for message in messages]
        try:
            # The stream's request is only sent on the first iteration, so errors arrive inside the loop.
            async for part in await self._client.chat(self._model, wire_messages, stream=True, options=options):
                if part.message.content:
                    yield part.message.content
        except _CLIENT_ERRORS as exc:
            raise self._unavailable(exc) from exc

    async def check(self) -> str:
        """A one-line status of the server and the configured model; LlmUnavailable when unusable."""
        try:
            listing = await self._client.list()
        except _CLIENT_ERRORS as exc:
            raise self._unavailable(exc) from exc
        installed = [model.model for model in listing.models if model.model]
        if _with_tag(self._model) not in {_with_tag(name) for name in installed}:
            raise LlmUnavailable(f"Ollama at {self._host} has no model {self._model!r} "
                                 f"(installed: {', '.join(installed) or 'none'}); run `ollama pull {self._model}`")
        return f"Ollama at {self._host}: model {self._model} ready ({len(installed)} installed)"

    async def close(self) -> None:
        await self._client.close()

    def _unavailable(self, exc: Exception) -> LlmUnavailable:
        """The library's error, translated into one that says which server and model failed and why."""
        if isinstance(exc, ollama.ResponseError):
            if exc.status_code == 404:
                return LlmUnavailable(f"Ollama at {self._host} has no model {self._model!r}: {exc.error}; "
                                      f"run `ollama pull {self._model}`")
            return LlmUnavailable(f"Ollama at {self._host} refused the request for {self._model!r}: {exc}")
        if isinstance(exc, httpx.TimeoutException):
            return LlmUnavailable(f"Ollama at {self._host} did not answer within {self._timeout_s:g} s")
        if isinstance(exc, (httpx.ConnectError, ConnectionError)):
            return LlmUnavailable(f"cannot connect to Ollama at {self._host}: is `ollama serve` running?")
        return LlmUnavailable(f"Ollama at {self._host} failed: {type(exc).__name__}: {exc}")


def _with_tag(model: str) -> str:
    """Ollama names without a tag mean ':latest'."""
    return model if ":" in model else f"{model}:latest"
