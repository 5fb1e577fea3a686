"""The answer's prompt: the pages retrieved for a question and the messages sent to the model."""

import base64

from django.conf import settings

from accounts.models import User
from chat.documents import Turn
from chat.llm import ResolvedModel
from knowledge import selectors as knowledge_selectors
from knowledge.search import search as knowledge_search
from knowledge.search_filters import SearchFilters


def image_mime(data: bytes) -> str:
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


def _data_uri(data: bytes) -> str:
    return f"data:{image_mime(data)};base64,{base64.b64encode(data).decode()}"


def _cited_page_parts(*, user: User, citations: list[dict]) -> list[dict]:
    """Content parts showing an earlier turn's cited pages again, read back from storage (deleted ones skipped)."""
    found = knowledge_selectors.pages_get(user=user, image_ids=[c.get("image_id", "") for c in citations])
    parts = []
    for citation in citations:
        if citation.get("image_id") not in found:
            continue
        _file, page = found[citation["image_id"]]
        data = knowledge_selectors.page_image_data(page)
        parts.append({"type": "text", "text": f"[{citation.get('index')}] {citation.get('filename')}, "
                                              f"page {citation.get('page_number')}"})
        parts.append({"type": "image_url", "image_url": {"url": _data_uri(data)}})
    return parts


def pages_retrieve(*, user: User, model: ResolvedModel, knowledge_base_ids: list[str], question: str,
                   filters: SearchFilters | None = None) -> list[dict]:
    """Top pages for the question (of the files the filters let through): citations with the page image (data
    URI) and text layer attached."""
    if not knowledge_base_ids:
        return []
    # A KB saved in the model config but deleted since is left out, not an error.
    hits = knowledge_search(user=user, knowledge_base_ids=knowledge_base_ids, query=question,
                            top_k=model.extra.get("top_K") or 3,
                            score_threshold=model.extra.get("score_threshold"), skip_missing=True,
                            filters=filters)
    found = knowledge_selectors.pages_get(user=user, image_ids=[hit["image_id"] for hit in hits])
    pages = []
    for index, hit in enumerate(hits, start=1):
        if hit["image_id"] not in found:
            continue  # deleted between search and now
        file, page = found[hit["image_id"]]
        data = knowledge_selectors.page_image_data(page)
        pages.append({
            "index": index,
            "knowledge_base_id": hit["knowledge_base_id"],
            "file_id": hit["file_id"],
            "filename": file.filename,
            "image_id": hit["image_id"],
            "page_number": hit["page_number"],
            "score": round(float(hit["score"]), 4),
            "snippet": hit["snippet"],
            "image_url": hit["image_url"],
            "thumbnail_url": hit["thumbnail_url"],
            "_text": (page.text or "")[: settings.CHAT_PAGE_TEXT_CHARS],
            "_data_uri": _data_uri(data),
        })
    return pages


def messages_build(*, model: ResolvedModel, history: list[Turn], question: str, pages: list[dict],
              user: User | None = None) -> list[dict]:
    """The request to the model. With `user`, the last CHAT_HISTORY_IMAGE_TURNS answered turns carry their cited
    page images again, so a follow-up question ("and the table on that page?") can be answered from them."""
    messages = []
    system = model.system_prompt or settings.CHAT_DEFAULT_SYSTEM_PROMPT
    if system:
        messages.append({"role": "system", "content": system})
    answered = [t for t in history if t.ai_message][-settings.CHAT_HISTORY_TURNS:]
    first_with_images = max(0, len(answered) - settings.CHAT_HISTORY_IMAGE_TURNS) if user else len(answered)
    for position, turn in enumerate(answered):
        show = position >= first_with_images and turn.file_used
        parts = _cited_page_parts(user=user, citations=turn.file_used) if show else []
        content = [{"type": "text", "text": turn.user_message}, *parts] if parts else turn.user_message
        messages.append({"role": "user", "content": content})
        messages.append({"role": "assistant", "content": turn.ai_message})
    messages.append({"role": "user", "content": question_content(question=question, pages=pages)})
    return messages


def question_content(*, question: str, pages: list[dict]) -> str | list[dict]:
    """The last user message: the question alone, or the retrieved pages (label, text layer, image) before it."""
    if not pages:
        return question
    intro = "Pages retrieved from the user's documents, numbered for citation:"
    content: list[dict] = [{"type": "text", "text": intro}]
    for page in pages:
        label = f"[{page['index']}] {page['filename']}, page {page['page_number']}"
        if page["_text"]:
            label += f"\nText layer of the page:\n{page['_text']}"
        content.append({"type": "text", "text": label})
        content.append({"type": "image_url", "image_url": {"url": page["_data_uri"]}})
    content.append({"type": "text", "text": f"Question: {question}"})
    return content
