"""A file's ingestion outputs in the stores: its page images (read back for an embedder) and its vectors."""

import io
from concurrent.futures import ThreadPoolExecutor

from PIL import Image

from embeddings.services import file_index_delete
from knowledge.documents import File, PageImage
from knowledge.keys import pages_prefix_of
from layra.storage import object_get, objects_delete_prefix

# Stands in for the page image with backends that read only the text layer (Embedder.uses_images False).
_PLACEHOLDER = Image.new("L", (1, 1), 255)


def _load_image(key: str) -> Image.Image:
    img = Image.open(io.BytesIO(object_get(key=key)))
    img.load()
    return img


def page_images(pages: list[PageImage], *, embedder, pool: ThreadPoolExecutor | None = None) -> list[Image.Image]:
    """What the embedder reads for these stored pages: their images, or placeholders for text-only backends."""
    if not embedder.uses_images:
        return [_PLACEHOLDER] * len(pages)
    keys = [p.minio_filename for p in pages]
    return list(pool.map(_load_image, keys)) if pool else [_load_image(key) for key in keys]


def file_outputs_remove(file: File) -> None:
    """Remove a file's page images and vectors (failure, cancel, delete). Safe to repeat."""
    file_index_delete(knowledge_base_id=file.knowledge_db_id, file_id=file.file_id)
    objects_delete_prefix(prefix=pages_prefix_of(file))
