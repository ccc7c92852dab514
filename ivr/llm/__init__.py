"""Chat models for phrasing follow-up questions: the embedded SmolLM2 (llama.cpp) or an Ollama server."""
from __future__ import annotations

from config.settings import LlmSettings
from ivr.llm.base import ChatModel


def make_chat_model(settings: LlmSettings) -> ChatModel | None:
    """The backend `settings.backend` names (None for "none": the template's own wording, nothing
    loaded). The embedded model loads here (once per process)."""
    if settings.backend == "none":
        return None
    if settings.backend == "ollama":
        from ivr.llm.ollama_llm import OllamaChat  # imported on demand: each backend pulls in its own library
        return OllamaChat(settings)
    if settings.backend == "embedded":
        from ivr.llm.embedded import EmbeddedChat
        return EmbeddedChat(settings)
    raise ValueError(f"unknown llm.backend {settings.backend!r}; expected embedded, ollama or none")
