"""Upload validation: the type is decided by content (magic bytes, zip/OLE inspection, text decoding)."""

import io
import re
import textwrap
import unicodedata
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings
from PIL import Image

from knowledge.documents import FileKind
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
    kind: FileKind
    ext: str  # pdf, docx, png, txt, ...
    content_type: str
    pages: int | None = None  # known now for PDFs and images


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class _MapFile(io.RawIOBase):
    """A read-only file over a memory map (an upload spooled to disk), for readers that want a file."""

    def __init__(self, view):
        super().__init__()
        self._view, self._pos = view, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._view)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer) -> int:
        chunk = self._view[self._pos:self._pos + len(buffer)]
        buffer[:len(chunk)] = chunk
        self._pos += len(chunk)
        return len(chunk)


def _as_file(data):
    """A file over the upload's bytes, copying nothing: `data` is bytes or a memory map of the spooled file."""
    return io.BytesIO(data) if isinstance(data, bytes) else _MapFile(data)


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
        img = Image.open(_as_file(data))
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
    import pypdfium2 as pdfium  # the PDF engine loads on the first PDF, not with every process

    if b"%%EOF" not in data[-2048:]:
        raise ValidationError("The PDF is truncated (no end-of-file marker).", code="unreadable_file")
    try:
        pdf = pdfium.PdfDocument(data if isinstance(data, bytes) else _MapFile(data))
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
        with zipfile.ZipFile(_as_file(data)) as zf:
            infos = zf.infolist()
            if sum(i.file_size for i in infos) > settings.KNOWLEDGE_MAX_UNZIPPED_BYTES:
                raise ValidationError("The archive expands to too much data.", code="decompression_bomb")
            names = {i.filename for i in infos}
            if "mimetype" in names:
                mimetype = zf.read("mimetype")[:100].decode("ascii", "replace").strip()
                if mimetype in ODF_TYPES:
                    ext, content_type = ODF_TYPES[mimetype]
                    return Detected(FileKind.OFFICE, ext, content_type)
            for marker, ext, content_type in OOXML_TYPES:
                if marker in names:
                    return Detected(FileKind.OFFICE, ext, content_type)
    except zipfile.BadZipFile as exc:
        raise ValidationError("The archive is truncated or unreadable.", code="unreadable_file") from exc
    raise UnsupportedMediaType("A zip archive that is not an office document is not supported.")


def _ole_type(data: bytes) -> Detected:
    for stream, ext, content_type in OLE_TYPES:
        if data.find(stream.encode("utf-16-le")) != -1:
            return Detected(FileKind.OFFICE, ext, content_type)
    raise UnsupportedMediaType("This OLE document type is not supported.")


# --- text pagination: a text file becomes pages of TEXT_ROWS rows of at most TEXT_COLS characters ---------

TEXT_COLS, TEXT_ROWS = 90, 55


def _lines(text: str) -> Iterator[str]:
    """`text.split("\n")` one line at a time (a text of millions of short lines is never held as a list)."""
    text = text.replace("\r\n", "\n")
    for line in io.StringIO(text, newline="\n"):
        yield line[:-1] if line.endswith("\n") else line
    if not text or text.endswith("\n"):
        yield ""


def _rows(raw: str) -> list[str]:
    line = raw.expandtabs(4)
    if len(line) <= TEXT_COLS and line.isprintable():  # only spaces as whitespace: what textwrap makes of it
        return [line.rstrip(" ")]
    return textwrap.wrap(line, TEXT_COLS) or [""]


def iter_text_pages(text: str) -> Iterator[str]:
    """The text's pages in order; pages with nothing but whitespace are left out."""
    rows: list[str] = []
    for raw in _lines(text):
        for row in _rows(raw):
            rows.append(row)
            if len(rows) == TEXT_ROWS:
                if any(r.strip() for r in rows):
                    yield "\n".join(rows)
                rows = []
    if any(r.strip() for r in rows):
        yield "\n".join(rows)


def text_pages(text: str) -> list[str]:
    return list(iter_text_pages(text)) or [""]


# The lines to look at: those with content, and long ones holding whitespace textwrap takes for a word
# (U+3000...), which may wrap into several blank rows. Every other line is one blank row.
_CONTENT_LINE = re.compile(r"^(?:[^\n]*?\S|(?=[^\n]{23})[^\n]*?[^\S \t\r\x0b\x0c\n])[^\n]*", re.MULTILINE)


def _row_blanks(line: str) -> list[bool]:
    line = line.expandtabs(4)
    if len(line) <= TEXT_COLS:  # one row, blank exactly when the line is
        return [not line.strip()]
    return [not row.strip() for row in textwrap.wrap(line, TEXT_COLS)] or [True]


def text_page_count(text: str, *, stop_after: int | None = None) -> int:
    """len(text_pages(text)), without rendering a row of it: runs of blank lines are counted in C, only lines
    with content are looked at, and counting stops once past `stop_after` (enough to refuse the file)."""
    text = text.replace("\r\n", "\n")
    row, line_start, pages, last_page = 0, 0, 0, -1
    for match in _CONTENT_LINE.finditer(text):
        row += text.count("\n", line_start, match.start())  # the blank lines in between: one row each
        for blank in _row_blanks(match.group()):
            if not blank and row // TEXT_ROWS != last_page:
                last_page, pages = row // TEXT_ROWS, pages + 1
                if stop_after is not None and pages > stop_after:
                    return pages
            row += 1
        line_start = match.end() + 1
    return max(pages, 1)


def _text_type(data: bytes, name: str) -> Detected | None:
    if b"\x00" in data[:8192]:
        return None
    if len(data) > settings.KNOWLEDGE_MAX_TEXT_BYTES:
        # Checked before decoding: a text this long holds more than the page limit (or is mostly blank).
        if _is_utf8_head(data):
            raise PayloadTooLarge(f"'{name}' is a text of {len(data)} bytes; the limit for text is "
                                  f"{settings.KNOWLEDGE_MAX_TEXT_BYTES} bytes.", code="file_too_large")
        return None
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        return None
    pages = text_page_count(text, stop_after=settings.KNOWLEDGE_MAX_PAGES)
    _check_pages(pages, name, at_least=True)
    return Detected(FileKind.TEXT, "txt", "text/plain", pages)


def _is_utf8_head(data) -> bool:
    try:
        bytes(data[:65536]).decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start > 65536 - 4  # only a character cut at the end of the sample
    return True


def detect(data: bytes, *, name: str) -> Detected:
    """Validate one upload's bytes; raise a domain error (4xx) for anything we will not ingest.

    `data` may also be a read-only memory map of an upload spooled to disk: nothing here copies it whole
    (only a text, within KNOWLEDGE_MAX_TEXT_BYTES, is decoded in memory)."""
    if not data:
        raise ValidationError(f"'{name}' is empty.", code="empty_file")
    if len(data) > settings.KNOWLEDGE_MAX_UPLOAD_BYTES:
        raise PayloadTooLarge(f"'{name}' is larger than {settings.KNOWLEDGE_MAX_UPLOAD_BYTES} bytes.",
                              code="file_too_large")
    head = data[:16]
    if data[:1024].lstrip().startswith(b"%PDF-") or head.startswith(b"%PDF-"):
        pages = pdf_page_count(data)
        _check_pages(pages, name)
        return Detected(FileKind.PDF, "pdf", "application/pdf", pages)
    if head.startswith(b"PK\x03\x04"):
        return _zip_type(data)
    if head.startswith(OLE_MAGIC):
        return _ole_type(data)
    if (head.startswith(b"\x89PNG\r\n\x1a\n") or head.startswith(b"\xff\xd8\xff")
            or (head[:4] == b"RIFF" and head[8:12] == b"WEBP") or head[:4] in (b"II*\x00", b"MM\x00*")):
        img = open_image(data)
        if img.format not in IMAGE_FORMATS:
            raise UnsupportedMediaType(f"Image format {img.format} is not supported.")
        return Detected(FileKind.IMAGE, img.format.lower().replace("jpeg", "jpg"), IMAGE_FORMATS[img.format], 1)
    text = _text_type(data, name)
    if text is not None:
        return text
    raise UnsupportedMediaType(f"The type of '{name}' is not supported.")


def _check_pages(pages: int, name: str, *, at_least: bool = False) -> None:
    if pages > settings.KNOWLEDGE_MAX_PAGES:
        count = f"more than {settings.KNOWLEDGE_MAX_PAGES}" if at_least else str(pages)
        raise PayloadTooLarge(f"'{name}' has {count} pages; the limit is {settings.KNOWLEDGE_MAX_PAGES}.",
                              code="too_many_pages", details={"max_pages": settings.KNOWLEDGE_MAX_PAGES})
