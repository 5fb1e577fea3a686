import numpy as np
import pypdfium2 as pdfium
from PIL import Image

from embeddings.embedders import Embedder, get_embedder
from embeddings.embedders.base import clean_rows
from embeddings.embedders.minilm import NO_TEXT_MARKER
from knowledge.samples import make_pdf


def _pdf_texts(data: bytes) -> list[str]:
    pdf = pdfium.PdfDocument(data)
    return [pdf[i].get_textpage().get_text_range() for i in range(len(pdf))]


def test_interface_and_registry(settings):
    embedder = get_embedder()
    assert isinstance(embedder, Embedder)
    assert embedder is get_embedder()  # one per process
    assert (embedder.name, embedder.dim) == ("minilm", 384)


def test_cpu_backend_on_a_real_pdf_text_layer():
    texts = _pdf_texts(make_pdf(["Quarterly revenue grew by twelve percent.", "", "Photosynthesis in plants."]))
    assert "revenue" in texts[0] and texts[1].strip() == ""
    blank = Image.new("RGB", (32, 32))
    embedder = get_embedder()
    pages = embedder.embed_images([blank] * 3, texts=texts)
    assert len(pages) == 3
    for matrix in pages:
        assert matrix.dtype == np.float32 and matrix.ndim == 2 and matrix.shape[1] == 384
        assert matrix.shape[0] > 0  # a page without a text layer is still indexed
        assert np.isfinite(matrix).all()
        np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)
    marker = embedder.embed_images([blank], texts=[NO_TEXT_MARKER])[0]
    np.testing.assert_allclose(pages[1], marker, atol=1e-5)  # says it has no text layer
    (query,) = embedder.embed_queries(["revenue growth"])
    score = [float((p @ query.T).max(axis=0).sum()) for p in pages]
    assert score[0] > score[2] and score[0] > score[1]
    again = embedder.embed_images([blank], texts=[texts[0]])[0]
    np.testing.assert_allclose(again, pages[0], atol=1e-5)


def test_clean_rows_drops_padding_and_nan():
    m = np.array([[1.0, 0.0], [0.0, 0.0], [np.nan, 1.0], [3.0, 4.0]], dtype=np.float32)
    out = clean_rows(m)
    assert out.shape == (2, 2)
    np.testing.assert_allclose(out[1], [0.6, 0.8], atol=1e-6)


def test_bfloat16_weights_where_the_cpu_has_them_agree_with_float32(tmp_path):
    from embeddings.embedders.minilm import MiniLMEmbedder, cpu_has_native_bf16, resolve_dtype

    with_bf16, without = tmp_path / "a", tmp_path / "b"
    with_bf16.write_text("flags\t: fpu avx2 avx512f avx512_bf16\n")
    without.write_text("flags\t: fpu avx2\n")
    assert cpu_has_native_bf16(with_bf16) and not cpu_has_native_bf16(without)
    assert not cpu_has_native_bf16(tmp_path / "missing")
    assert resolve_dtype("float32") == "float32" and resolve_dtype("bfloat16") == "bfloat16"
    try:
        resolve_dtype("int8")
    except ValueError as exc:
        assert "MINILM_DTYPE" in str(exc)
    else:
        raise AssertionError("int8 was accepted")

    texts = ["Quarterly revenue grew by twelve percent in the northern region.", "Mitochondria make ATP."]
    full = MiniLMEmbedder(dtype="float32").embed_images([None, None], texts=texts)
    half = MiniLMEmbedder(dtype="bfloat16").embed_images([None, None], texts=texts)
    for a, b in zip(full, half, strict=True):
        assert a.dtype == b.dtype == np.float32 and a.shape == b.shape
        assert float((a * b).sum(axis=1).min()) > 0.999  # row-wise cosine (rows are unit length)
