import os
import subprocess
import sys
import uuid

import numpy as np
import pytest

from embeddings import services
from embeddings.collections import dense_collection_name, in_filter
from embeddings.embedders import get_embedder
from embeddings.lexical import lexical_backend, lexical_index
from embeddings.services import (
    file_index_delete,
    knowledge_base_index_delete,
    texts_replace_file,
    vectors_replace_file,
)
from layra.errors import ValidationError
from layra.milvus import milvus_client


def _unit(rng, n, dim):
    m = rng.standard_normal((n, dim)).astype(np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def _count(name, expr=""):
    rows = milvus_client().query(collection_name=name, filter=expr or "pk >= 0", output_fields=["count(*)"],
                                 consistency_level="Strong")
    return rows[0]["count(*)"]


@pytest.fixture
def dim():
    return get_embedder().dim


def test_one_collection_per_embedder_partitioned_by_kb(rng, dim, index_stack):
    # Fresh KB ids: counts only see this test's rows (Milvus Lite has kept rows of a dropped collection of the same
    # name once, which a count of the whole collection would take for duplicates).
    kb1, kb2 = f"kb-{uuid.uuid4().hex}", f"kb-{uuid.uuid4().hex}"
    mine = in_filter("knowledge_base_id", [kb1, kb2])
    pages = [(f"img-{i}", i + 1, _unit(rng, 3 + i, dim)) for i in range(4)]
    assert vectors_replace_file(knowledge_base_id=kb1, username="u1", file_id="f-1", pages=pages) == 18
    if index_stack == "default":
        # Replaced twice, no duplicates. Not on Milvus Lite: in one full run its delete-by-filter right after the
        # insert missed the new rows (Lite only; a 2.5 server resolves the delete at the collection's Strong level).
        assert vectors_replace_file(knowledge_base_id=kb1, username="u1", file_id="f-1", pages=pages) == 18
    vectors_replace_file(knowledge_base_id=kb1, username="u1", file_id="f-2",
                         pages=[("img-x", 1, _unit(rng, 2, dim))])
    vectors_replace_file(knowledge_base_id=kb2, username="u2", file_id="f-3",
                         pages=[("img-y", 1, _unit(rng, 5, dim))])
    name = dense_collection_name(embedder=get_embedder().name, dim=dim)
    assert milvus_client().list_collections().count(name) == 1
    assert _count(name, mine) == 25
    assert _count(name, f'knowledge_base_id == "{kb1}" and file_id == "f-1"') == 18
    schema = milvus_client().describe_collection(collection_name=name)
    fields = {f["name"]: f for f in schema["fields"]}
    assert fields["knowledge_base_id"].get("is_partition_key") and "username" in fields
    indexed = {milvus_client().describe_index(collection_name=name, index_name=i)["field_name"]
               for i in milvus_client().list_indexes(collection_name=name)}
    assert {"vector", "file_id", "image_id"} <= indexed

    file_index_delete(knowledge_base_id=kb1, file_id="f-1")
    assert _count(name, mine) == 7
    knowledge_base_index_delete(knowledge_base_id=kb1)
    assert _count(name, mine) == 5  # kb2's rows stay
    knowledge_base_index_delete(knowledge_base_id=kb1)  # idempotent
    file_index_delete(knowledge_base_id=kb1, file_id="f-1")


def test_lexical_engine_follows_the_server(index_stack):
    assert lexical_backend() == ("sqlite" if index_stack == "default" else "milvus")


def test_lexical_rows_replace_and_delete_by_kb(index_stack):
    pages = [("p1", 1, "The BZ2_bzDecompress function returns BZ_OK."), ("p2", 2, "   "),
             ("p3", 3, "Compression of large files")]
    assert texts_replace_file(knowledge_base_id="kb-1", username="u", file_id="f", pages=pages) == 2
    assert texts_replace_file(knowledge_base_id="kb-1", username="u", file_id="f", pages=pages) == 2
    texts_replace_file(knowledge_base_id="kb-2", username="v", file_id="g", pages=[("q1", 1, "BZ_OK everywhere")])
    index = lexical_index()
    assert index.page_ids(knowledge_base_id="kb-1") == {"p1": "f", "p3": "f"}  # the blank page has no row
    hits = index.search(knowledge_base_ids=["kb-1"], query="what does BZ2_bzDecompress return?", limit=5)
    assert [h.image_id for h in hits] == ["p1"] and hits[0].score > 0
    both = index.search(knowledge_base_ids=["kb-1", "kb-2"], query="BZ_OK", limit=5)
    assert {h.image_id for h in both} == {"p1", "q1"}
    assert index.search(knowledge_base_ids=["kb-1"], query="?!", limit=5) == []
    file_index_delete(knowledge_base_id="kb-1", file_id="f")
    assert index.page_ids(knowledge_base_id="kb-1") == {}
    assert index.page_ids(knowledge_base_id="kb-2") == {"q1": "g"}
    knowledge_base_index_delete(knowledge_base_id="kb-2")
    assert index.page_ids(knowledge_base_id="kb-2") == {}


def test_inserts_are_batched(rng, dim, monkeypatch):
    calls = []
    client = milvus_client()
    original = client.insert
    monkeypatch.setattr(client, "insert", lambda **kw: calls.append(len(kw["data"])) or original(**kw))
    pages = [(f"img-{i}", i + 1, _unit(rng, 4, dim)) for i in range(5)]
    from embeddings.collections import dense_collection_ensure

    name = dense_collection_ensure(embedder=get_embedder().name, dim=dim)
    assert services.vectors_insert(name=name, knowledge_base_id="kb", username="u", file_id="f", pages=pages,
                                   batch_rows=7) == 20
    assert calls == [7, 7, 6]


@pytest.mark.parametrize("bad", ["nan", "shape"])
def test_bad_vectors_are_refused_before_anything_is_deleted(rng, dim, bad):
    good = [("img-1", 1, _unit(rng, 2, dim))]
    vectors_replace_file(knowledge_base_id="kb-v", username="u", file_id="f", pages=good)
    broken = _unit(rng, 2, dim)
    if bad == "nan":
        broken[0, 0] = np.nan
    else:
        broken = _unit(rng, 2, dim + 1)
    with pytest.raises(ValidationError):
        vectors_replace_file(knowledge_base_id="kb-v", username="u", file_id="f", pages=[("img-1", 1, broken)])
    name = dense_collection_name(embedder=get_embedder().name, dim=dim)
    assert _count(name, 'file_id == "f"') == 2


def test_streamed_batches_replace_the_file_while_the_producer_runs(rng, dim):
    """Batches from a generator: the old rows go first, every batch lands once, and batch N is written before
    the producer is asked for batch N + 2 (writes overlap the next batch's embedding, never lag further)."""
    name = dense_collection_name(embedder=get_embedder().name, dim=dim)
    vectors_replace_file(knowledge_base_id="kb-s", username="u", file_id="f", pages=[("old", 1, _unit(rng, 9, dim))])
    seen_before_batch = []

    def batches():
        for b in range(4):
            seen_before_batch.append(_count(name, 'file_id == "f"'))
            yield [(f"img-{b}-{i}", 2 * b + i + 1, _unit(rng, 3, dim)) for i in range(2)]

    assert vectors_replace_file(knowledge_base_id="kb-s", username="u", file_id="f", batches=batches()) == 24
    assert _count(name, 'file_id == "f"') == 24
    assert _count(name, 'image_id == "old"') == 0
    assert seen_before_batch[0] == 0  # the old rows were deleted before the first batch was produced
    assert seen_before_batch[2] >= 6 and seen_before_batch[3] >= 12


def test_a_bad_batch_mid_stream_stops_the_writes(rng, dim):
    name = dense_collection_name(embedder=get_embedder().name, dim=dim)

    def batches():
        yield [("good", 1, _unit(rng, 3, dim))]
        yield [("bad", 2, np.full((2, dim), np.nan, dtype=np.float32))]
        raise AssertionError("not asked for more after a bad batch")

    with pytest.raises(ValidationError):
        vectors_replace_file(knowledge_base_id="kb-t", username="u", file_id="f", batches=batches())
    assert _count(name, 'image_id == "bad"') == 0
    file_index_delete(knowledge_base_id="kb-t", file_id="f")  # what the pipeline's failure path does
    assert _count(name, 'file_id == "f"') == 0


_ENSURE = """
import django, sys
django.setup()
from embeddings.collections import dense_collection_ensure
from embeddings.services import vectors_insert
import numpy as np
name = dense_collection_ensure(embedder="race", dim=8)
print(vectors_insert(name=name, knowledge_base_id="kb-race", username="u", file_id=sys.argv[1],
                     pages=[("img-" + sys.argv[1], 1, np.ones((2, 8), dtype=np.float32))]))
"""


def test_processes_racing_to_create_a_collection_all_load_it(index_stack, settings):
    # Every worker process meets a new embedder's collection at once: whoever loads it must wait for its last
    # index (a 2.3 server refused every load afterwards when one process loaded it between two index calls).
    env = {**os.environ, "MILVUS_URI": settings.MILVUS_URI}
    procs = [subprocess.Popen([sys.executable, "-c", _ENSURE, f"f{i}"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(3)]
    outputs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err[-2000:] for _, err in outputs]
    assert [out.strip().splitlines()[-1] for out, _ in outputs] == ["2", "2", "2"]
    assert _count("layra_pages_race_8", 'knowledge_base_id == "kb-race"') == 6
