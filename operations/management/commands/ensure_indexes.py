from django.core.management.base import BaseCommand

from operations.indexes import ensure_indexes


class Command(BaseCommand):
    help = "Create missing Mongo indexes (every registered document) and Milvus indexes (every KB collection)."

    def handle(self, *args, **opts):
        result = ensure_indexes()
        created = sum(len(v) for v in result["milvus"].values())
        self.stdout.write(f"Mongo: {len(result['mongo'])} collections ensured; "
                          f"Milvus: {len(result['milvus'])} collections, {created} indexes created")
