"""The one client for OpenAI-compatible chat endpoints (chat answers and workflow LLM nodes)."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx2
import openai
from django.conf import settings
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from layra import netguard
from layra.process_local import ProcessLocal


@dataclass
class ResolvedModel:
    """A model config with its API key decrypted; never serialised back to a client."""

    model_name: str
    model_url: str
    api_key: str = ""
    system_prompt: str = ""
    temperature: float | None = None
    max_length: int | None = None
    top_P: float | None = None
    extra: dict = field(default_factory=dict)


class LLMError(Exception):
    """A provider failure, with a message safe to show the user (no key, no traceback, no upstream body).

    `code` is "model_endpoint_refused" when the guard refused the endpoint (nothing was sent)."""

    def __init__(self, message: str, *, status: int | None = None, code: str = "model_error"):
        self.message = message
        self.status = status
        self.code = code
        super().__init__(message)


REFUSED = "model_endpoint_refused"


def model_endpoint_policy() -> netguard.Policy:
    """Model endpoints reach public addresses only, plus what the operator lists in MODEL_ENDPOINT_ALLOWLIST
    (a local Ollama or vLLM); no redirects at all."""
    urls, networks = netguard.parse_allowlist(settings.MODEL_ENDPOINT_ALLOWLIST)
    return netguard.Policy(subject="The model endpoint", setting="MODEL_ENDPOINT_ALLOWLIST", urls=urls,
                           networks=networks, redirects=False)


def model_url_check(*, url: str, resolve_host: bool = True) -> None:
    """Refuse (netguard.Refused) a model URL that is not http(s) or whose host is (or, with `resolve_host`,
    resolves to) an address the policy refuses.

    For saving a config and before a request; the guard checks again at every connection (DNS may change)."""
    netguard.check_url(url=url, policy=model_endpoint_policy(), resolve_host=resolve_host)


# One pooled HTTP client per process (building one loads the CA bundle: ~10 ms each time), through the guard.
_http = ProcessLocal(lambda: netguard.client(
    policy=model_endpoint_policy, timeout=httpx2.Timeout(timeout=600, connect=5.0),
    limits=httpx2.Limits(max_connections=1000, max_keepalive_connections=100)))


def _client(model: ResolvedModel, timeout: float) -> openai.OpenAI:
    return openai.OpenAI(base_url=model.model_url, api_key=model.api_key or "not-needed", timeout=timeout,
                         max_retries=0, http_client=_http.get())


def _post_completion(model: ResolvedModel, timeout: float, *, messages: list[dict], stream: bool):
    """POST /chat/completions through the SDK's documented raw-request path (`client.post`).

    `chat.completions.create` first walks every message through its typed transforms, page images included:
    that was 40 % of an answer's CPU on the web tier. The body here is already plain JSON; errors, retries and
    the stream decoding are the SDK's own."""
    body = {"model": model.model_name, "messages": messages, **_params(model)}
    client = _client(model, timeout)
    if stream:
        body.update(stream=True, stream_options={"include_usage": True})
        return client.post("/chat/completions", body=body, cast_to=ChatCompletion, stream=True,
                           stream_cls=openai.Stream[ChatCompletionChunk])
    return client.post("/chat/completions", body={**body, "stream": False}, cast_to=ChatCompletion)


def _params(model: ResolvedModel) -> dict:
    params = {}
    if model.temperature is not None:
        params["temperature"] = model.temperature
    if model.top_P is not None:
        params["top_p"] = model.top_P
    if model.max_length:
        params["max_tokens"] = model.max_length
    return params


def _translate(exc: Exception) -> LLMError:
    """A message that names what failed; never the upstream's body (it may be an internal service's page)."""
    refused = netguard.refusal_in(exc)
    if refused is not None:
        by_policy = not isinstance(refused, netguard.NotResolved | netguard.RedirectRefused)
        return LLMError(refused.message, code=REFUSED if by_policy else "model_error")
    if isinstance(exc, openai.AuthenticationError):
        return LLMError("The model endpoint rejected the API key (401).", status=401)
    if isinstance(exc, openai.APIStatusError):
        return LLMError(f"The model endpoint answered with HTTP status {exc.status_code}.", status=exc.status_code)
    if isinstance(exc, openai.APITimeoutError):
        return LLMError("The model endpoint timed out.")
    if isinstance(exc, openai.APIConnectionError):
        return LLMError("Could not connect to the model endpoint.")
    return LLMError(f"The model endpoint returned an invalid response ({type(exc).__name__}).")


def _usage(reported=None) -> dict:
    """Token counts from a provider's usage object; zeros for what it leaves out (or when it sends none)."""
    return {k: getattr(reported, k, 0) or 0 for k in ("prompt_tokens", "completion_tokens", "total_tokens")}


@contextmanager
def _provider_errors():
    """Anything from a bad endpoint (bad URL, refused, garbage, an HTTP error) leaves as an LLMError."""
    try:
        yield
    except LLMError:
        raise
    except Exception as exc:  # noqa: BLE001 - every provider failure is translated, none leaks as a 500
        raise _translate(exc) from None


def stream_chat(*, model: ResolvedModel, messages: list[dict], timeout: float = 120) -> Iterator[dict]:
    """Yield {"type": "token", "text"} events, then {"type": "done", "usage": {...}}; raise LLMError.

    Closing the generator (the client went away) closes the HTTP stream to the provider.
    """
    usage = _usage()
    stream = None
    try:
        with _provider_errors():
            stream = _post_completion(model, timeout, messages=messages, stream=True)
            chunks = 0
            for chunk in stream:
                chunks += 1
                if getattr(chunk, "usage", None):
                    usage = _usage(chunk.usage)
                for choice in getattr(chunk, "choices", None) or []:
                    text = getattr(choice.delta, "content", None)
                    if text:
                        yield {"type": "token", "text": text}
            if not chunks:
                raise LLMError("The model endpoint returned an invalid response (no completion chunks).")
    finally:
        if stream is not None:
            try:
                stream.close()
            except Exception:  # noqa: BLE001, S110 - closing a broken stream
                pass
    yield {"type": "done", "usage": usage}


def complete_chat(*, model: ResolvedModel, messages: list[dict], timeout: float = 120) -> tuple[str, dict]:
    """One non-streaming request: (full text, usage); raise LLMError.

    For callers that wait for the whole answer anyway: the provider sends one JSON body instead of a chunk per
    token, each of which the SDK parses into objects (that parsing was a seventh of the web tier's Python time
    in bench_api's non-streaming chat turns)."""
    with _provider_errors():
        completion = _post_completion(model, timeout, messages=messages, stream=False)
        if not completion.choices:
            raise LLMError("The model endpoint returned an invalid response (no choices).")
        return completion.choices[0].message.content or "", _usage(completion.usage)
