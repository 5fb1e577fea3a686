"""Numbered vector-schema migrations, applied by `manage.py migrate_vectors` to every collection.

Each migration is (version, description, apply(client, name)). The applied version is recorded in the
collection's properties (`layra.schema_version`). Version 1 is the schema collection_ensure creates.
"""

from collections.abc import Callable

from pymilvus import MilvusClient


def _v2_scalar_indexes(client: MilvusClient, name: str) -> None:
    """Make sure file_id and image_id have scalar indexes (collections made before they existed)."""
    existing = set(client.list_indexes(collection_name=name))
    wanted = [f for f in ("file_id", "image_id") if not any(f in idx for idx in existing)]
    if not wanted:
        return
    params = client.prepare_index_params()
    for field in wanted:
        params.add_index(field_name=field, index_type="INVERTED")
    client.release_collection(collection_name=name)
    client.create_index(collection_name=name, index_params=params)
    client.load_collection(collection_name=name)


MIGRATIONS: list[tuple[int, str, Callable[[MilvusClient, str], None]]] = [
    (2, "scalar indexes on file_id and image_id", _v2_scalar_indexes),
]
LATEST_VERSION = max([1] + [m[0] for m in MIGRATIONS])
