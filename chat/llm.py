"""The one client for OpenAI-compatible chat endpoints (chat answers and workflow LLM nodes)."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import openai
from openai.types.chat import ChatCompletion, ChatCompletionChunk

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
    """A provider failure, with a message safe to show the user (no key, no traceback)."""

    def __init__(self, message: str, *, status: int | None = None):
        self.message = message
        self.status = status
        super().__init__(message)


# One pooled HTTP client per process (building one loads the CA bundle: ~10 ms each time).
_http = ProcessLocal(openai.DefaultHttpxClient)


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
    if isinstance(exc, openai.AuthenticationError):
        return LLMError("The model endpoint rejected the API key (401).", status=401)
    if isinstance(exc, openai.APIStatusError):
        return LLMError(f"The model endpoint answered {exc.status_code}: {str(exc.message)[:300]}",
                        status=exc.status_code)
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
