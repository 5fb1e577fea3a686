"""Embedder registry: one process-wide embedder chosen by settings.EMBEDDER, loaded lazily."""

import threading
from dataclasses import dataclass

from django.conf import settings

from embeddings.embedders.base import Embedder
from layra.errors import ValidationError

_embedder: Embedder | None = None
_lock = threading.Lock()


def embedder_build(*, name: str) -> Embedder:
    """A new embedder of this backend (no caching): "minilm" (CPU, text layer) or "colqwen"."""
    # Imported on demand: each backend imports torch and transformers (seconds, hundreds of MB), which a web
    # process that embeds queries on a GPU worker never needs.
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


@dataclass(frozen=True)
class EmbedderSpec:
    name: str
    dim: int


EMBEDDER_DIMS = {"minilm": 384, "colqwen": 128}  # ColQwen2.5 projects every token to 128-d, tiny or real


def embedder_spec() -> EmbedderSpec:
    """The configured embedder's name and dim, without loading it (web processes never load a GPU model)."""
    if _embedder is not None and _embedder.name == settings.EMBEDDER:
        return EmbedderSpec(name=_embedder.name, dim=_embedder.dim)
    if settings.EMBEDDER not in EMBEDDER_DIMS:
        raise ValidationError(f"Unknown embedder {settings.EMBEDDER!r}.", details={"embedder": settings.EMBEDDER})
    return EmbedderSpec(name=settings.EMBEDDER, dim=EMBEDDER_DIMS[settings.EMBEDDER])


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


__all__ = ["Embedder", "EmbedderSpec", "embedder_build", "embedder_spec", "get_embedder", "reset"]
