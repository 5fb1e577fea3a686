"""Thin tasks of the embeddings layer."""

from celery import shared_task

from embeddings.query import query_embed_reply


# Early ack (acks_late=False, against the project default): a query is read-only and answered within seconds or
# not at all. Redelivered after a worker crash it would arrive after its caller's timeout (and be dropped as
# expired); the caller has already answered 503 and the user can search again. time_limit leaves room for the
# first query of a fresh worker, which loads the model.
@shared_task(name="embeddings.embed_query", acks_late=False, ignore_result=True, time_limit=300,
             soft_time_limit=280)
def embed_query(*, text: str, reply_key: str) -> None:
    query_embed_reply(text=text, reply_key=reply_key)
