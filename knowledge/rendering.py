"""A source file as page images: office documents converted to PDF, PDFs rendered, texts typeset, images fitted.

Every page is at most MAX_PAGE_PIXELS pixels, whatever the document claims its size is.
"""

import io
import math
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from django.conf import settings
from PIL import Image, ImageDraw, ImageFont

from knowledge.detect import detect, open_image, pdf_page_count, text_page_count, text_pages
from knowledge.documents import FileKind

Page = tuple[Image.Image, str]  # the page image and its text layer ("" when it has none)


class IngestError(Exception):
    """A readable reason the file cannot be ingested (the file is marked failed with it)."""


def convert_office(data: bytes, ext: str) -> bytes:
    """LibreOffice headless -> PDF bytes, with a private profile dir and a timeout."""
    with tempfile.TemporaryDirectory(prefix="layra-soffice-") as tmp:
        src = Path(tmp) / f"input.{ext}"
        src.write_bytes(data)
        profile = Path(tmp) / "profile"
        cmd = [settings.KNOWLEDGE_SOFFICE, f"-env:UserInstallation={profile.as_uri()}", "--headless",
               "--norestore", "--nolockcheck", "--convert-to", "pdf", "--outdir", tmp, str(src)]
        try:
            result = subprocess.run(cmd, capture_output=True, timeout=settings.KNOWLEDGE_SOFFICE_TIMEOUT,
                                    check=False, start_new_session=True)
        except FileNotFoundError as exc:
            raise IngestError("Office conversion is not available (LibreOffice is not installed).") from exc
        except subprocess.TimeoutExpired as exc:
            raise IngestError("Office conversion timed out.") from exc
        out = Path(tmp) / "input.pdf"
        if result.returncode != 0 or not out.exists():
            raise IngestError("The office document could not be converted to PDF.")
        return out.read_bytes()


def encode_page(img: Image.Image) -> bytes:
    """The page image as stored: a JPEG at KNOWLEDGE_PAGE_JPEG_QUALITY."""
    if img.mode not in ("RGB", "L"):
        img = img.convert("RGB")
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=settings.KNOWLEDGE_PAGE_JPEG_QUALITY)
    return buf.getvalue()


def render_scale(width_pt: float, height_pt: float) -> float:
    """The configured DPI's scale, lowered for this page size so the image has at most MAX_PAGE_PIXELS pixels
    (a page with a 7,200 pt MediaBox would otherwise be a 100-megapixel image)."""
    scale = settings.KNOWLEDGE_RENDER_DPI / 72
    cap = settings.MAX_PAGE_PIXELS
    area = max(width_pt, 1e-3) * max(height_pt, 1e-3)
    scale = min(scale, math.sqrt(cap / area))
    while math.ceil(width_pt * scale) * math.ceil(height_pt * scale) > cap and scale > 1e-6:
        scale *= 0.995  # the renderer rounds each side up
    return scale


def _fit_pixels(img: Image.Image) -> Image.Image:
    """An uploaded image as a page: scaled down (aspect kept) to at most MAX_PAGE_PIXELS."""
    cap = settings.MAX_PAGE_PIXELS
    if img.width * img.height <= cap:
        return img
    factor = math.sqrt(cap / (img.width * img.height))
    size = (max(1, math.floor(img.width * factor)), max(1, math.floor(img.height * factor)))
    return img.resize(size, Image.Resampling.LANCZOS)


def _pdf_pages(data: bytes) -> Iterator[Page]:
    """Yield (PIL image, text) per page, rendered at the configured DPI."""
    import pypdfium2 as pdfium  # the PDF engine loads only in processes that render

    pdf = pdfium.PdfDocument(data)
    try:
        for index in range(len(pdf)):
            page = pdf[index]
            try:
                image = page.render(scale=render_scale(*page.get_size())).to_pil()
                textpage = page.get_textpage()
                text = textpage.get_text_bounded().replace("\r\n", "\n").strip()
                textpage.close()
            finally:
                page.close()
            yield image, text
    finally:
        pdf.close()


_TEXT_SIZE = 15  # pagination (TEXT_COLS x TEXT_ROWS) is knowledge.detect's: the upload check counts the same pages


def _text_images(text: str) -> Iterator[Page]:
    font = ImageFont.load_default(size=_TEXT_SIZE)
    for page_text in text_pages(text):
        img = Image.new("L", (850, 1100), 255)
        ImageDraw.Draw(img).multiline_text((40, 40), page_text, fill=0, font=font, spacing=4)
        yield img, page_text


def source_pages(data: bytes, *, filename: str, on_convert: Callable[[], None]) -> tuple[int, Iterator[Page]]:
    """(page count, pages rendered one at a time) for any supported kind; `on_convert` is called before an
    office document is converted (the slow part)."""
    detected = detect(data, name=filename)
    if detected.kind == FileKind.OFFICE:
        on_convert()
        data = convert_office(data, detected.ext)
        detected = detect(data, name=filename)
    limit = settings.KNOWLEDGE_MAX_PAGES
    if detected.kind == FileKind.PDF:
        count = pdf_page_count(data)
        if count > limit:
            raise IngestError(f"The document has {count} pages; the limit is {limit}.")
        return count, _pdf_pages(data)
    if detected.kind == FileKind.IMAGE:
        return 1, iter([(_fit_pixels(open_image(data)), "")])
    text = data.decode("utf-8")
    count = text_page_count(text, stop_after=limit)
    if count > limit:
        raise IngestError(f"The text has more than {limit} pages; the limit is {limit}.")
    return count, _text_images(text)
