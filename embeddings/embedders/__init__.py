"""Embedder registry: one process-wide embedder chosen by settings.EMBEDDER, loaded lazily."""

import threading

from django.conf import settings

from embeddings.embedders.base import Embedder
from layra.errors import ValidationError

_embedder: Embedder | None = None
_lock = threading.Lock()


def embedder_build(*, name: str) -> Embedder:
    """A new embedder of this backend (no caching): "minilm" (CPU, text layer) or "colqwen"."""
    if name == "minilm":
        from embeddings.embedders.minilm import MiniLMEmbedder

        return MiniLMEmbedder(dtype=settings.MINILM_DTYPE)
    if name == "colqwen":
        from embeddings.embedders.colqwen import ColQwenEmbedder

        return ColQwenEmbedder(
            model_path=settings.COLQWEN_MODEL,
            batch_size=settings.COLQWEN_BATCH_SIZE,
            max_num_visual_tokens=settings.COLQWEN_MAX_NUM_VISUAL_TOKENS,
        )
    raise ValidationError(f"Unknown embedder {name!r}.", details={"embedder": name})


def get_embedder() -> Embedder:
    """The process-wide embedder named by settings.EMBEDDER (loaded on first use)."""
    global _embedder
    if _embedder is None or _embedder.name != settings.EMBEDDER:
        with _lock:
            if _embedder is None or _embedder.name != settings.EMBEDDER:
                _embedder = embedder_build(name=settings.EMBEDDER)
    return _embedder


def reset() -> None:
    global _embedder
    _embedder = None


__all__ = ["Embedder", "embedder_build", "get_embedder", "reset"]
