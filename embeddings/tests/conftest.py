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
