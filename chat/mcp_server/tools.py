"""The MCP server's tools and resources (the official `mcp` SDK's MCPServer). Every one runs as the calling user
(the API key's owner, set by the HTTP bridge, bridge.py) through the same selectors and services as the REST API,
so ownership is checked exactly as there: another user's knowledge base or file is "not found".

The SDK runs on an event loop; the product's code is synchronous (Django ORM, mongoengine): each tool hands its
work to `sync_to_async`, which runs it on the request's own thread (the gunicorn thread that is waiting for the
answer), with that thread's database connections."""

import json
from contextvars import ContextVar
from datetime import datetime
from typing import Annotated, Literal

from asgiref.sync import sync_to_async
from django.http import HttpRequest
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.server.mcpserver.utilities.types import Image
from pydantic import BaseModel, Field

from accounts.ratelimit import rate_limit
from chat.completion import completion_collect, completion_start
from chat.prompt import image_mime
from knowledge import selectors as knowledge_selectors
from knowledge.search import search as knowledge_search
from knowledge.search_filters import SearchFilters, search_filters_parse
from layra.errors import DomainError

# The Django request being answered (its user is the API key's owner); set by bridge.py for each HTTP request.
current_request: ContextVar[HttpRequest] = ContextVar("mcp_current_request")

server = MCPServer(
    name="layra", title="LAYRA", version="1",
    instructions="Search and ask questions over the user's knowledge bases (visual RAG over document pages). "
                 "list_knowledge_bases gives the ids; search returns pages with filename, page number, snippet "
                 "and a page image URL; ask answers with citations; get_page_image returns a page's image.",
)

SEARCH_MAX_TOP_K = 50


def _request() -> HttpRequest:
    return current_request.get()


def _absolute(url: str) -> str:
    return _request().build_absolute_uri(url) if url else url


def _hit(hit: dict) -> dict:
    """The shared hit fields (DECISIONS), with the image URLs absolute: an MCP client is not on our origin."""
    return {"knowledge_base_id": hit["knowledge_base_id"], "file_id": hit["file_id"], "filename": hit["filename"],
            "page_number": hit["page_number"], "score": round(float(hit["score"]), 4), "snippet": hit["snippet"],
            "image_url": _absolute(hit["image_url"]), "thumbnail_url": _absolute(hit["thumbnail_url"])}


async def _run(fn, **kwargs):
    """Run product code on the request's thread; a domain error (not found, invalid, rate limited) becomes the
    tool's error message, as the REST API would have said it."""
    try:
        return await sync_to_async(fn)(**kwargs)
    except DomainError as exc:
        raise ToolError(exc.message) from None


def _knowledge_bases() -> list[dict]:
    user = _request().user
    return [{"knowledge_base_id": kb["knowledge_base_id"], "name": kb["knowledge_base_name"],
             "file_count": kb["file_count"], "page_count": kb["page_count"], "created_at": kb["created_at"]}
            for kb in knowledge_selectors.knowledge_base_list(user=user)]


@server.tool(description="The caller's knowledge bases: id, name, file and page counts.")
async def list_knowledge_bases() -> dict:
    return {"knowledge_bases": await _run(_knowledge_bases)}


class SearchFiltersInput(BaseModel):
    file_ids: list[str] | None = Field(default=None, description="Only pages of these files")
    filename: str | None = Field(default=None, description="Only files whose name contains this (any case)")
    uploaded_after: datetime | None = Field(default=None, description="Only files uploaded at or after (ISO 8601)")
    uploaded_before: datetime | None = Field(default=None, description="Only files uploaded before (ISO 8601)")


def _search(*, query: str, knowledge_base_ids: list[str] | None, top_k: int,
            filters: SearchFiltersInput | None) -> list:
    request = _request()
    rate_limit(request=request, scope="search")
    if knowledge_base_ids is None:
        knowledge_base_ids = [kb["knowledge_base_id"] for kb in _knowledge_bases()]
    # The same filters as `POST search/`: resolved to file ids and applied inside the searches, before top-k.
    hits = knowledge_search(user=request.user, knowledge_base_ids=knowledge_base_ids, query=query, top_k=top_k,
                            filters=search_filters_parse(filters.model_dump(mode="json", exclude_none=True))
                            if filters else SearchFilters())
    return [_hit(hit) for hit in hits]


@server.tool(description="Best pages of the caller's knowledge bases for a query (hybrid: lexical + visual). "
                         "Each result has knowledge_base_id, file_id, filename, page_number, score, snippet, "
                         "image_url and thumbnail_url (signed, valid for minutes).")
async def search(query: Annotated[str, Field(description="What to look for", min_length=1, max_length=4000)],
                 knowledge_base_ids: Annotated[list[str] | None, Field(
                     description="Knowledge bases to search (default: all of the caller's)")] = None,
                 top_k: Annotated[int, Field(ge=1, le=SEARCH_MAX_TOP_K)] = 5,
                 filters: SearchFiltersInput | None = None) -> dict:
    return {"results": await _run(_search, query=query, knowledge_base_ids=knowledge_base_ids, top_k=top_k,
                                  filters=filters)}


def _ask(*, question: str, knowledge_base_ids: list[str] | None, model: str | None) -> dict:
    request = _request()
    rate_limit(request=request, scope="chat")
    completion = completion_start(user=request.user, messages=[{"role": "user", "content": question}],
                                  model=model, knowledge_base_ids=knowledge_base_ids, stream=False, source="mcp")
    result = completion_collect(completion=completion)
    return {"answer": result["answer"], "citations": [{"index": c["index"], **_hit(c)} for c in result["citations"]],
            "usage": result["usage"], "usage_estimated": result["usage_estimated"]}


@server.tool(description="Answer a question from the caller's documents with the caller's model; the answer "
                         "cites pages as [n], listed in `citations`.")
async def ask(question: Annotated[str, Field(min_length=1, max_length=100_000)],
              knowledge_base_ids: Annotated[list[str] | None, Field(
                  description="Knowledge bases to search (default: the model config's)")] = None,
              model: Annotated[str | None, Field(description="A model config id or unique model name "
                                                             "(default: the selected model)")] = None) -> dict:
    return await _run(_ask, question=question, knowledge_base_ids=knowledge_base_ids, model=model)


def _page_image(*, file_id: str, page_number: int, size: str) -> tuple[str, bytes]:
    user = _request().user
    file, page = knowledge_selectors.file_page(user=user, file_id=file_id, page_number=page_number)
    data = (knowledge_selectors.page_thumbnail_data(page) if size == "thumb"
            else knowledge_selectors.page_image_data(page))
    url = knowledge_selectors.page_image_url(user=user, file_id=file_id, page_number=page_number, size=size)
    return f"{file.filename}, page {page_number}: {_absolute(url)}", data


@server.tool(description="The image of one page of one of the caller's files (size full or thumb).")
async def get_page_image(file_id: str, page_number: Annotated[int, Field(ge=1)],
                         size: Literal["full", "thumb"] = "full") -> list:
    caption, data = await _run(_page_image, file_id=file_id, page_number=page_number, size=size)
    return [caption, Image(data=data, format=image_mime(data).removeprefix("image/"))]


# --- resources: the caller's knowledge bases and files, as JSON -------------------------------------------------

FILES_IN_RESOURCE = 500  # a knowledge base's resource lists its newest files, up to this many

async def _resource(fn, **kwargs) -> str:
    try:
        return json.dumps(await sync_to_async(fn)(**kwargs), default=str)
    except DomainError as exc:
        raise ResourceError(exc.message) from None


def _knowledge_base(*, knowledge_base_id: str) -> dict:
    user = _request().user
    kb = knowledge_selectors.knowledge_base_detail(user=user, knowledge_base_id=knowledge_base_id)
    files = knowledge_selectors.file_list(user=user, knowledge_base_id=knowledge_base_id)
    return {"knowledge_base_id": kb["knowledge_base_id"], "name": kb["knowledge_base_name"],
            "file_count": kb["file_count"], "page_count": kb["page_count"],
            "files": [{"file_id": f.file_id, "filename": f.filename, "status": f.status, "page_count": f.page_count,
                       "uri": f"layra://files/{f.file_id}"} for f in files[:FILES_IN_RESOURCE]]}



def _file(*, file_id: str) -> dict:
    file = knowledge_selectors.file_get(user=_request().user, file_id=file_id)
    return {"file_id": file.file_id, "knowledge_base_id": file.knowledge_db_id, "filename": file.filename,
            "content_type": file.content_type, "size": file.size, "status": file.status,
            "page_count": file.page_count, "created_at": file.created_at}


@server.resource("layra://knowledge-bases", name="knowledge-bases", mime_type="application/json",
                 description="The caller's knowledge bases")
async def knowledge_bases_resource() -> str:
    return await _resource(_knowledge_bases)


@server.resource("layra://knowledge-bases/{knowledge_base_id}", name="knowledge-base",
                 mime_type="application/json", description="One knowledge base and its files")
async def knowledge_base_resource(knowledge_base_id: str) -> str:
    return await _resource(_knowledge_base, knowledge_base_id=knowledge_base_id)


@server.resource("layra://files/{file_id}", name="file", mime_type="application/json",
                 description="One file: name, status, page count")
async def file_resource(file_id: str) -> str:
    return await _resource(_file, file_id=file_id)
