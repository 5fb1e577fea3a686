"""ColQwen2.5 backend (colpali-engine): one 128-d vector per image patch / query token.

bf16 on CUDA, float32 with eager attention on CPU; batched; padding rows (attention mask 0) are removed
and any non-finite row dropped, so no NaN or padding vector reaches the store. The image processor is the
PIL one (torchvision is not installed; see compat.py).
"""

import threading

import numpy as np
from PIL import Image

from embeddings.embedders.base import Embedder, clean_rows
from embeddings.embedders.compat import ensure_colpali_importable


def _processor_class(base):
    """The ColQwen2.5 processor without a video processor (the Qwen2-VL one needs torchvision)."""

    class ImageOnlyColQwen2_5Processor(base):  # noqa: N801
        def check_argument_for_proper_class(self, argument_name, argument):
            if argument is None and argument_name == "video_processor":
                return None
            return super().check_argument_for_proper_class(argument_name, argument)

    return ImageOnlyColQwen2_5Processor


class ColQwenEmbedder(Embedder):
    name = "colqwen"
    dim = 128

    def __init__(self, *, model_path: str, batch_size: int = 4, max_num_visual_tokens: int = 768,
                 device: str | None = None):
        ensure_colpali_importable()
        import torch
        from colpali_engine.models import ColQwen2_5, ColQwen2_5_Processor
        from transformers import AutoTokenizer
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

        self._torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        on_cuda = self.device.startswith("cuda")
        self.dtype = torch.bfloat16 if on_cuda else torch.float32
        self.batch_size = max(1, batch_size)
        kwargs = {"dtype": self.dtype, "device_map": self.device}
        if not on_cuda:
            kwargs["attn_implementation"] = "eager"
        self.model = ColQwen2_5.from_pretrained(model_path, **kwargs).eval()
        image_processor = Qwen2VLImageProcessorPil.from_pretrained(model_path)
        max_pixels = max_num_visual_tokens * 28 * 28
        image_processor.max_pixels = max_pixels
        image_processor.size["longest_edge"] = max_pixels
        tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.processor = _processor_class(ColQwen2_5_Processor)(
            image_processor=image_processor, tokenizer=tokenizer, video_processor=None,
        )
        self.dim = int(self.model.dim)
        self._lock = threading.Lock()

    def _run(self, batch) -> list[np.ndarray]:
        torch = self._torch
        batch = batch.to(self.device)
        with self._lock, torch.inference_mode():
            out = self.model(**batch)
        mask = batch["attention_mask"].bool()
        return [clean_rows(out[i][mask[i]].float().cpu().numpy()) for i in range(out.shape[0])]

    def embed_images(self, images: list[Image.Image], texts: list[str] | None = None) -> list[np.ndarray]:
        result: list[np.ndarray] = []
        for start in range(0, len(images), self.batch_size):
            chunk = [image.convert("RGB") for image in images[start:start + self.batch_size]]
            result.extend(self._run(self.processor.process_images(chunk)))
        return result

    def embed_queries(self, texts: list[str]) -> list[np.ndarray]:
        result: list[np.ndarray] = []
        for start in range(0, len(texts), self.batch_size):
            result.extend(self._run(self.processor.process_queries(texts[start:start + self.batch_size])))
        return result
