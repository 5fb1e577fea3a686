"""The embedder interface: multi-vector (late-interaction) embeddings for pages and queries."""

from abc import ABC, abstractmethod

import numpy as np
from PIL import Image


class Embedder(ABC):
    """One float32 (n_i, dim) matrix per page or query; rows L2-normalised, no padding rows."""

    name: str
    dim: int
    # False for backends that read only the page's text layer: callers need not load the page images.
    uses_images: bool = True

    @abstractmethod
    def embed_images(self, images: list[Image.Image], texts: list[str] | None = None) -> list[np.ndarray]:
        """Patch (or token) vectors per page. texts[i] is the page's text layer where the backend uses it."""

    @abstractmethod
    def embed_queries(self, texts: list[str]) -> list[np.ndarray]:
        """Token vectors per query."""


def l2_normalise(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)


def clean_rows(matrix: np.ndarray) -> np.ndarray:
    """Drop non-finite and all-zero rows, then L2-normalise (no NaN or padding vector may reach the store)."""
    matrix = np.asarray(matrix, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[0] == 0:
        return matrix.reshape(0, matrix.shape[-1] if matrix.ndim == 2 else 0).astype(np.float32)
    keep = np.isfinite(matrix).all(axis=1) & (np.abs(matrix).sum(axis=1) > 0)
    return l2_normalise(matrix[keep])
