"""Create missing indexes: every registered Mongo document's, every page-vector collection's in Milvus."""

from embeddings.collections import HNSW_PARAMS, has_index, scalar_index_type
from layra.milvus import milvus_client
from operations.mongo_admin.registry import documents
from operations.stores import kb_collections


def mongo_indexes() -> list[str]:
    done = []
    for doc_cls in documents():
        doc_cls.ensure_indexes()
        done.append(doc_cls._get_collection_name())
    return done


def milvus_indexes() -> dict[str, list[str]]:

    client = milvus_client()
    created: dict[str, list[str]] = {}
    for name in kb_collections():
        existing = {field for field in ("vector", "file_id", "image_id") if has_index(client, name, field)}
        params = client.prepare_index_params()
        wanted = []
        if "vector" not in existing:
            params.add_index(field_name="vector", index_type="HNSW", metric_type="IP", params=dict(HNSW_PARAMS))
            wanted.append("vector")
        for field in ("file_id", "image_id"):
            if field not in existing:
                params.add_index(field_name=field, index_type=scalar_index_type(client))
                wanted.append(field)
        if wanted:
            client.release_collection(collection_name=name)
            client.create_index(collection_name=name, index_params=params)
        client.load_collection(collection_name=name)
        created[name] = wanted
    return created


def ensure_indexes() -> dict:
    return {"mongo": mongo_indexes(), "milvus": milvus_indexes()}
