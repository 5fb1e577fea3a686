"""Chat tests talk to the shared fake OpenAI-compatible server (the only fake: an external LLM endpoint)."""

import pytest

from tests.fake_llm import FakeLLM
from tests.fake_llm import refused_url as _refused_url


@pytest.fixture
def fake_llm():
    server = FakeLLM()
    yield server
    server.close()


@pytest.fixture
def refused_url() -> str:
    """A loopback URL nobody listens on."""
    return _refused_url()
