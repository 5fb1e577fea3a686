import numpy as np
import pytest

from embeddings import services
from embeddings.embedders import get_embedder
from embeddings.services import collection_drop, collection_name, vectors_delete_file, vectors_replace_file
from layra.errors import ValidationError
from layra.milvus import milvus_client


def _unit(rng, n, dim):
    m = rng.standard_normal((n, dim)).astype(np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def _count(name, expr=""):
    rows = milvus_client().query(collection_name=name, filter=expr or "pk >= 0", output_fields=["count(*)"])
    return rows[0]["count(*)"]


@pytest.fixture
def dim():
    return get_embedder().dim


def test_replace_twice_no_duplicates_delete_and_drop(rng, dim):
    pages = [(f"img-{i}", i + 1, _unit(rng, 3 + i, dim)) for i in range(4)]
    assert vectors_replace_file(knowledge_base_id="kb-1", file_id="f-1", pages=pages) == 3 + 4 + 5 + 6
    assert vectors_replace_file(knowledge_base_id="kb-1", file_id="f-1", pages=pages) == 18
    vectors_replace_file(knowledge_base_id="kb-1", file_id="f-2", pages=[("img-x", 1, _unit(rng, 2, dim))])
    name = collection_name(knowledge_base_id="kb-1")
    assert name == "colqwenkb_1"
    assert _count(name) == 20
    assert _count(name, 'file_id == "f-1"') == 18
    info = services.collection_info(name=name)
    assert info["embedder"] == get_embedder().name and info["dim"] == dim
    indexes = milvus_client().list_indexes(collection_name=name)
    assert {"vector", "file_id", "image_id"} <= {milvus_client().describe_index(
        collection_name=name, index_name=i)["field_name"] for i in indexes}

    vectors_delete_file(knowledge_base_id="kb-1", file_id="f-1")
    assert _count(name) == 2
    collection_drop(knowledge_base_id="kb-1")
    assert not milvus_client().has_collection(collection_name=name)
    collection_drop(knowledge_base_id="kb-1")  # idempotent
    vectors_delete_file(knowledge_base_id="kb-1", file_id="f-1")


def test_inserts_are_batched(rng, dim, monkeypatch):
    calls = []
    client = milvus_client()
    original = client.insert
    monkeypatch.setattr(client, "insert", lambda **kw: calls.append(len(kw["data"])) or original(**kw))
    monkeypatch.setattr(services, "INSERT_BATCH_ROWS", 7)
    pages = [(f"img-{i}", i + 1, _unit(rng, 4, dim)) for i in range(5)]
    name = services.collection_ensure(knowledge_base_id="kb-b", embedder=get_embedder().name, dim=dim)
    assert services.vectors_insert(name=name, file_id="f", pages=pages, batch_rows=7) == 20
    assert calls == [7, 7, 6]


def test_embedder_mismatch_is_refused(rng, dim):
    services.collection_ensure(knowledge_base_id="kb-m", embedder="colqwen", dim=128)
    with pytest.raises(ValidationError) as err:
        vectors_replace_file(knowledge_base_id="kb-m", file_id="f", pages=[("i", 1, _unit(rng, 2, dim))])
    assert err.value.code == "embedder_mismatch"
    assert "colqwen" in err.value.message


def test_bad_vectors_refused(dim):
    bad = np.full((2, dim), np.nan, dtype=np.float32)
    with pytest.raises(ValidationError):
        vectors_replace_file(knowledge_base_id="kb-n", file_id="f", pages=[("i", 1, bad)])


def test_streamed_batches_replace_the_file_while_the_producer_runs(rng, dim):
    """Batches from a generator: the old rows go first, every batch lands once, and batch N is written before
    the producer is asked for batch N + 2 (writes overlap the next batch's embedding, never lag further)."""
    name = collection_name(knowledge_base_id="kb-s")
    vectors_replace_file(knowledge_base_id="kb-s", file_id="f", pages=[("old", 1, _unit(rng, 9, dim))])
    seen_before_batch = []

    def batches():
        for b in range(4):
            seen_before_batch.append(_count(name, 'file_id == "f"'))
            yield [(f"img-{b}-{i}", 2 * b + i + 1, _unit(rng, 3, dim)) for i in range(2)]

    assert vectors_replace_file(knowledge_base_id="kb-s", file_id="f", batches=batches()) == 4 * 2 * 3
    assert _count(name, 'file_id == "f"') == 24
    assert _count(name, 'image_id == "old"') == 0
    assert seen_before_batch[0] == 0  # the old rows were deleted before the first batch was produced
    assert seen_before_batch[2] >= 6 and seen_before_batch[3] >= 12


def test_a_bad_batch_mid_stream_stops_the_writes(rng, dim):
    name = collection_name(knowledge_base_id="kb-t")

    def batches():
        yield [("good", 1, _unit(rng, 3, dim))]
        yield [("bad", 2, np.full((2, dim), np.nan, dtype=np.float32))]
        raise AssertionError("not asked for more after a bad batch")

    with pytest.raises(ValidationError):
        vectors_replace_file(knowledge_base_id="kb-t", file_id="f", batches=batches())
    assert _count(name, 'image_id == "bad"') == 0
    vectors_delete_file(knowledge_base_id="kb-t", file_id="f")  # what the pipeline's failure path does
    assert _count(name, 'file_id == "f"') == 0
