import importlib.util

import numpy as np
from PIL import Image, ImageDraw


def _page(text: str, size=(210, 297)) -> Image.Image:
    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).text((10, 10), text, fill="black")
    return image


def test_torchvision_is_not_needed():
    assert importlib.util.find_spec("torchvision") is None


def test_image_and_query_paths(tiny_colqwen):
    embedder = tiny_colqwen
    assert (embedder.name, embedder.dim) == ("colqwen", 128)
    # Three pages of different sizes in batches of 2: the padded batch must not leak padding rows.
    images = [_page("Revenue 2023"), _page("x", size=(120, 90)), _page("Invoice", size=(60, 60))]
    pages = embedder.embed_images(images)
    assert len(pages) == 3
    for matrix in pages:
        assert matrix.dtype == np.float32 and matrix.shape[1] == 128 and matrix.shape[0] > 0
        assert np.isfinite(matrix).all()
        np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-4)
    # Bigger pages have more patches (<= max_num_visual_tokens image tokens + the prompt).
    assert pages[0].shape[0] > pages[2].shape[0]
    # Alone or in a padded batch, a page gets the same vectors (padding masked, nothing shifted).
    alone = embedder.embed_images([images[1]])[0]
    np.testing.assert_allclose(alone, pages[1], atol=1e-4)
    # Determinism.
    np.testing.assert_allclose(embedder.embed_images([images[0]])[0], pages[0], atol=1e-5)

    queries = embedder.embed_queries(["what was the revenue in 2023", "invoice"])
    assert [q.shape[1] for q in queries] == [128, 128]
    assert queries[0].shape[0] > queries[1].shape[0]
    np.testing.assert_allclose(embedder.embed_queries(["invoice"])[0], queries[1], atol=1e-4)
    assert all(np.isfinite(q).all() for q in queries)


def test_registry_builds_colqwen_from_settings(settings, tiny_colqwen_path):
    from embeddings.embedders import embedder_build

    settings.COLQWEN_MODEL = tiny_colqwen_path
    settings.COLQWEN_MAX_NUM_VISUAL_TOKENS = 32
    embedder = embedder_build(name="colqwen")
    assert embedder.dim == 128
    assert embedder.processor.image_processor.size["longest_edge"] == 32 * 28 * 28
