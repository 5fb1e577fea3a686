"""Upload validation: the type is decided by content (magic bytes, zip/OLE inspection, text decoding)."""

import io
import re
import unicodedata
import zipfile
from dataclasses import dataclass

from django.conf import settings
from PIL import Image

from layra.errors import PayloadTooLarge, UnsupportedMediaType, ValidationError

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ODF_TYPES = {
    "application/vnd.oasis.opendocument.text": ("odt", "application/vnd.oasis.opendocument.text"),
    "application/vnd.oasis.opendocument.presentation": ("odp", "application/vnd.oasis.opendocument.presentation"),
    "application/vnd.oasis.opendocument.spreadsheet": ("ods", "application/vnd.oasis.opendocument.spreadsheet"),
}
OOXML_TYPES = (
    ("word/document.xml", "docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ("ppt/presentation.xml", "pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
    ("xl/workbook.xml", "xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
)
OLE_TYPES = (
    ("WordDocument", "doc", "application/msword"),
    ("PowerPoint Document", "ppt", "application/vnd.ms-powerpoint"),
    ("Workbook", "xls", "application/vnd.ms-excel"),
)
IMAGE_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "TIFF": "image/tiff"}


@dataclass(frozen=True)
class Detected:
    kind: str  # pdf, office, image, text
    ext: str  # pdf, docx, png, txt, ...
    content_type: str
    pages: int | None = None  # known now for PDFs and images


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def sanitize_filename(name: str) -> str:
    """Keep the display name, drop any path, control characters and leading dots; refuse an empty result."""
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _CONTROL.sub("", name).strip().lstrip(".").strip()
    if not name:
        raise ValidationError("The file name is empty or invalid.", code="invalid_filename")
    if len(name) > 200:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 200 - len(ext) - 1] + dot + ext) if dot and len(ext) <= 10 else name[:200]
    return name


def _image_limits() -> None:
    Image.MAX_IMAGE_PIXELS = settings.KNOWLEDGE_MAX_IMAGE_PIXELS


def open_image(data: bytes) -> Image.Image:
    """Open an image under the configured pixel limit (PIL's decompression-bomb check), loaded."""
    _image_limits()
    try:
        img = Image.open(io.BytesIO(data))
        if img.width * img.height > settings.KNOWLEDGE_MAX_IMAGE_PIXELS:
            raise Image.DecompressionBombError("too many pixels")
        img.load()
    except Image.DecompressionBombError as exc:
        raise ValidationError(
            f"The image is too large (over {settings.KNOWLEDGE_MAX_IMAGE_PIXELS} pixels).",
            code="decompression_bomb",
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ValidationError("The image is truncated or unreadable.", code="unreadable_file") from exc
    return img


def pdf_page_count(data: bytes) -> int:
    import pypdfium2 as pdfium

    if b"%%EOF" not in data[-2048:]:
        raise ValidationError("The PDF is truncated (no end-of-file marker).", code="unreadable_file")
    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise ValidationError("The PDF is encrypted; upload it without a password.", code="encrypted_pdf") from exc
        raise ValidationError(f"The PDF cannot be read ({exc}).", code="unreadable_file") from exc
    try:
        count = len(pdf)
    finally:
        pdf.close()
    if count < 1:
        raise ValidationError("The PDF has no pages.", code="unreadable_file")
    return count


def _zip_type(data: bytes) -> Detected:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
            if sum(i.file_size for i in infos) > settings.KNOWLEDGE_MAX_UNZIPPED_BYTES:
                raise ValidationError("The archive expands to too much data.", code="decompression_bomb")
            names = {i.filename for i in infos}
            if "mimetype" in names:
                mimetype = zf.read("mimetype")[:100].decode("ascii", "replace").strip()
                if mimetype in ODF_TYPES:
                    ext, content_type = ODF_TYPES[mimetype]
                    return Detected("office", ext, content_type)
            for marker, ext, content_type in OOXML_TYPES:
                if marker in names:
                    return Detected("office", ext, content_type)
    except zipfile.BadZipFile as exc:
        raise ValidationError("The archive is truncated or unreadable.", code="unreadable_file") from exc
    raise UnsupportedMediaType("A zip archive that is not an office document is not supported.",
                               code="unsupported_type")


def _ole_type(data: bytes) -> Detected:
    for stream, ext, content_type in OLE_TYPES:
        if stream.encode("utf-16-le") in data:
            return Detected("office", ext, content_type)
    raise UnsupportedMediaType("This OLE document type is not supported.", code="unsupported_type")


def _text_type(data: bytes) -> Detected | None:
    if b"\x00" in data[:8192]:
        return None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return Detected("text", "txt", "text/plain")


def detect(data: bytes, *, name: str) -> Detected:
    """Validate one upload's bytes; raise a domain error (4xx) for anything we will not ingest."""
    if not data:
        raise ValidationError(f"'{name}' is empty.", code="empty_file")
    if len(data) > settings.KNOWLEDGE_MAX_UPLOAD_BYTES:
        raise PayloadTooLarge(f"'{name}' is larger than {settings.KNOWLEDGE_MAX_UPLOAD_BYTES} bytes.",
                              code="file_too_large")
    head = data[:16]
    if data[:1024].lstrip().startswith(b"%PDF-") or head.startswith(b"%PDF-"):
        pages = pdf_page_count(data)
        _check_pages(pages, name)
        return Detected("pdf", "pdf", "application/pdf", pages)
    if head.startswith(b"PK\x03\x04"):
        return _zip_type(data)
    if head.startswith(OLE_MAGIC):
        return _ole_type(data)
    if (head.startswith(b"\x89PNG\r\n\x1a\n") or head.startswith(b"\xff\xd8\xff")
            or (head[:4] == b"RIFF" and head[8:12] == b"WEBP") or head[:4] in (b"II*\x00", b"MM\x00*")):
        img = open_image(data)
        if img.format not in IMAGE_FORMATS:
            raise UnsupportedMediaType(f"Image format {img.format} is not supported.", code="unsupported_type")
        return Detected("image", img.format.lower().replace("jpeg", "jpg"), IMAGE_FORMATS[img.format], 1)
    text = _text_type(data)
    if text is not None:
        return text
    raise UnsupportedMediaType(f"The type of '{name}' is not supported.", code="unsupported_type")


def _check_pages(pages: int, name: str) -> None:
    if pages > settings.KNOWLEDGE_MAX_PAGES:
        raise PayloadTooLarge(f"'{name}' has {pages} pages; the limit is {settings.KNOWLEDGE_MAX_PAGES}.",
                              code="too_many_pages")
