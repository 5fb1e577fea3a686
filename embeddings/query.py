"""Query embedding (placeholder until the GPU-queue path lands): in-process with the configured embedder."""

import numpy as np

from embeddings.embedders import get_embedder


def query_vectors_embed(*, text: str) -> np.ndarray:
    return get_embedder().embed_queries([text])[0]
