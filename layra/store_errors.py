"""Which exceptions mean "a store we depend on is unreachable" (a 503 the client may retry), by type and cause.

Anything else (a bad Milvus filter, a MySQL deadlock or syntax error, a bug) is ours: a 500 with its traceback
logged. Each store's client wraps its transport errors differently, so the whole cause chain is looked at.
"""

import grpc
import redis.exceptions
from botocore import exceptions as botocore_errors
from django.db import OperationalError as DjangoOperationalError
from kombu.exceptions import OperationalError as BrokerUnavailable
from pymilvus.exceptions import ConnectError, MilvusException, MilvusUnavailableException
from pymongo.errors import ConnectionFailure

# MySQL client codes of a connection that could not be made or was lost (2002 socket, 2003 TCP, 2005 host,
# 2006 gone away, 2013 lost during query, 2055 lost at handshake). 1213 (deadlock) and the rest are not outages.
MYSQL_CONNECTION_CODES = frozenset({2002, 2003, 2005, 2006, 2013, 2055})
GRPC_UNAVAILABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
MILVUS_CONNECT_FAILED = 2  # pymilvus Status.CONNECT_FAILED: "Fail connecting to server"

_UNAVAILABLE_TYPES = (
    ConnectionError, TimeoutError,  # the OS' socket errors (refused, reset, timed out)
    redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
    ConnectionFailure,  # pymongo: AutoReconnect, NetworkTimeout, ServerSelectionTimeoutError
    botocore_errors.ConnectionError, botocore_errors.ReadTimeoutError, botocore_errors.ConnectTimeoutError,
    BrokerUnavailable,  # kombu: the broker refused or dropped the connection while enqueueing
    ConnectError, MilvusUnavailableException,
)


def _one_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, _UNAVAILABLE_TYPES):
        return True
    if isinstance(exc, DjangoOperationalError) or type(exc).__name__ == "OperationalError":
        return bool(exc.args) and exc.args[0] in MYSQL_CONNECTION_CODES
    if isinstance(exc, grpc.RpcError) and hasattr(exc, "code"):
        return exc.code() in GRPC_UNAVAILABLE
    if isinstance(exc, MilvusException):
        return exc.code == MILVUS_CONNECT_FAILED or exc.code in GRPC_UNAVAILABLE
    return False


def causes(exc: BaseException, *, limit: int = 6):
    """exc, then what it was raised from (or during), a few levels deep."""
    for _ in range(limit):
        yield exc
        exc = exc.__cause__ or exc.__context__
        if exc is None:
            return


def store_unavailable(exc: BaseException) -> bool:
    return any(_one_unavailable(e) for e in causes(exc))
