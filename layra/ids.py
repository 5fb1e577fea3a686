"""Identifiers and timestamps every app stamps its records with."""

import uuid
from datetime import UTC, datetime


def new_id() -> str:
    """Public ids are uuid4 strings (never a Mongo ObjectId or SQL primary key)."""
    return str(uuid.uuid4())


def utcnow() -> datetime:
    """An aware UTC timestamp (Mongo documents store these)."""
    return datetime.now(UTC)
