"""Python client for the LAYRA API (`Client`), and the `layra` command-line tool (layra_client.cli)."""

from layra_client.client import Client
from layra_client.errors import ApiError, LayraError, NotLoggedIn
from layra_client.sse import Event

__all__ = ["ApiError", "Client", "Event", "LayraError", "NotLoggedIn"]
__version__ = "0.1.0"
