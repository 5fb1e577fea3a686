import uuid


def new_id() -> str:
    """Public ids are uuid4 strings (never a Mongo ObjectId or SQL primary key)."""
    return str(uuid.uuid4())
