"""BM25 in Milvus (2.5+): an analyzer and a BM25 function turn each page's text into a sparse vector.

One shared collection for every KB (`knowledge_base_id` is its partition key), one row per page with text.
This is the lexical engine of distributed deployments: every web and worker process sees the same index.
"""

import threading

from pymilvus import DataType, Function, FunctionType, MilvusClient

from embeddings.collections import (
    collection_ready,
    filter_quote,
    in_filter,
    loaded_call,
    not_in_filter,
    rows_matching,
)
from embeddings.lexical.base import LexicalHit, LexicalIndex, LexicalPage, query_terms, text_clip
from layra.milvus import milvus_client

TEXT_COLLECTION = "layra_page_text"
TEXT_SCALAR_INDEXED = ("file_id", "image_id")
# Stemming where the server has it (Milvus 2.5); Milvus Lite accepts the parameters and tokenises only.
ANALYZER = {"tokenizer": "standard", "filter": ["lowercase", {"type": "stemmer", "language": "english"}]}
INSERT_BATCH = 500


class MilvusLexicalIndex(LexicalIndex):
    name = "milvus"

    def __init__(self, *, client: MilvusClient | None = None):
        self._client = client
        self._ready = False
        self._lock = threading.Lock()

    @property
    def client(self) -> MilvusClient:
        return self._client or milvus_client()

    def _collection(self) -> str:
        if not self._ready:
            with self._lock:
                if not self._ready:
                    collection_ready(self.client, TEXT_COLLECTION, indexed={"sparse", *TEXT_SCALAR_INDEXED},
                                     create=self._create)
                    self._ready = True
        return TEXT_COLLECTION

    def _create(self) -> None:
        schema = MilvusClient.create_schema(auto_id=True, enable_dynamic_field=False)
        schema.add_field("pk", DataType.INT64, is_primary=True)
        schema.add_field("knowledge_base_id", DataType.VARCHAR, max_length=64, is_partition_key=True)
        schema.add_field("username", DataType.VARCHAR, max_length=150)
        schema.add_field("file_id", DataType.VARCHAR, max_length=64)
        schema.add_field("image_id", DataType.VARCHAR, max_length=64)
        schema.add_field("page_number", DataType.INT64)
        schema.add_field("text", DataType.VARCHAR, max_length=65535, enable_analyzer=True, analyzer_params=ANALYZER)
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(Function(name="text_bm25", function_type=FunctionType.BM25,
                                     input_field_names=["text"], output_field_names=["sparse"]))
        index_params = self.client.prepare_index_params()
        index_params.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        for field in TEXT_SCALAR_INDEXED:
            index_params.add_index(field_name=field, index_type="INVERTED")
        self.client.create_collection(collection_name=TEXT_COLLECTION, schema=schema, index_params=index_params,
                                      consistency_level="Strong")  # see embeddings/collections.py

    def forget(self) -> None:
        self._ready = False

    def replace_file(self, *, knowledge_base_id: str, username: str, file_id: str,
                     pages: list[LexicalPage]) -> int:
        name = self._collection()
        self.delete_file(knowledge_base_id=knowledge_base_id, file_id=file_id)
        rows = [{"knowledge_base_id": knowledge_base_id, "username": username, "file_id": file_id,
                 "image_id": p.image_id, "page_number": int(p.page_number), "text": text_clip(p.text)}
                for p in pages if (p.text or "").strip()]
        for start in range(0, len(rows), INSERT_BATCH):
            self.client.insert(collection_name=name, data=rows[start:start + INSERT_BATCH])
        return len(rows)

    def delete_file(self, *, knowledge_base_id: str, file_id: str) -> None:
        self.client.delete(collection_name=self._collection(),
                           filter=f"knowledge_base_id == {filter_quote(knowledge_base_id)} "
                                  f"and file_id == {filter_quote(file_id)}")

    def delete_knowledge_base(self, *, knowledge_base_id: str) -> None:
        self.client.delete(collection_name=self._collection(),
                           filter=f"knowledge_base_id == {filter_quote(knowledge_base_id)}")

    def delete_user(self, *, username: str) -> None:
        self.client.delete(collection_name=self._collection(), filter=f"username == {filter_quote(username)}")

    def user_row_count(self, *, username: str) -> int:
        return len(rows_matching(self.client, self._collection(), fields=["image_id"],
                                 expr=f"username == {filter_quote(username)}"))

    def search(self, *, knowledge_base_ids: list[str], query: str, limit: int, consistency: str = "Bounded",
               file_ids: list[str] | None = None, exclude_file_ids: list[str] | None = None) -> list[LexicalHit]:
        if not query_terms(query) or not knowledge_base_ids or file_ids == []:
            return []
        name = self._collection()
        expr = in_filter("knowledge_base_id", knowledge_base_ids)
        if file_ids:
            expr += " and " + in_filter("file_id", file_ids)
        if exclude_file_ids:
            expr += " and " + not_in_filter("file_id", exclude_file_ids)
        hits = loaded_call(self.client, name, lambda: self.client.search(
            collection_name=name, data=[query], anns_field="sparse", limit=int(limit),
            filter=expr, search_params={"metric_type": "BM25"},
            output_fields=["knowledge_base_id", "file_id", "image_id", "page_number"], consistency_level=consistency,
        ))
        # Best first as returned; Milvus Lite reports the BM25 score negated, a server positive.
        return [LexicalHit(knowledge_base_id=h["entity"]["knowledge_base_id"], file_id=h["entity"]["file_id"],
                           image_id=h["entity"]["image_id"], page_number=int(h["entity"]["page_number"]),
                           score=abs(float(h["distance"]))) for h in (hits[0] if hits else [])]

    def page_ids(self, *, knowledge_base_id: str) -> dict[str, str]:
        rows = rows_matching(self.client, self._collection(), fields=["image_id", "file_id"],
                             expr=f"knowledge_base_id == {filter_quote(knowledge_base_id)}")
        return {r["image_id"]: r["file_id"] for r in rows}
