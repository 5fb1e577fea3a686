import numpy as np
import pytest


class FakeDimEmbedder:
    """Not used for stores; vectors in store tests come from the configured embedder's dim."""


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def unit_rows(rng, n: int, dim: int) -> np.ndarray:
    m = rng.standard_normal((n, dim)).astype(np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


@pytest.fixture(scope="session")
def tiny_colqwen_path(tmp_path_factory):
    """A tiny random ColQwen2.5 built offline once per session (same from_pretrained path as the real one)."""
    from embeddings.management.commands.build_tiny_colqwen import build_tiny_colqwen

    return str(build_tiny_colqwen(tmp_path_factory.mktemp("tiny-colqwen")))


@pytest.fixture(scope="session")
def tiny_colqwen(tiny_colqwen_path):
    from embeddings.embedders.colqwen import ColQwenEmbedder

    return ColQwenEmbedder(model_path=tiny_colqwen_path, batch_size=2, max_num_visual_tokens=64)
