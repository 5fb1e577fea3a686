"""The client's parts that need no server: the configuration file, the event-stream reader, the multipart body
and its progress, and how errors read."""

import email.parser
import json
import stat

import httpx
import pytest
from layra_client import config
from layra_client.errors import ApiError, LayraError, NotLoggedIn
from layra_client.multipart import MultipartFiles
from layra_client.sse import parse_events
from layra_client.transport import api_root


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    monkeypatch.delenv("LAYRA_URL", raising=False)
    monkeypatch.delenv("LAYRA_API_KEY", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("LAYRA_CONFIG", raising=False)
    return tmp_path / "xdg" / "layra" / "config.json"


def test_config_is_written_for_its_owner_only_and_environment_overrides_it(config_file, monkeypatch):
    assert config.config_path() == config_file
    with pytest.raises(NotLoggedIn, match="layra login"):
        config.settings()
    config.save({"url": "http://layra.test", "access_token": "a1", "refresh_token": "r1"})
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(config_file.parent.stat().st_mode) == 0o700
    found = config.settings()
    assert (found.url, found.access_token, found.refresh_token, found.api_key) == ("http://layra.test", "a1", "r1",
                                                                                   None)
    config.tokens_store("a2", "r2")
    assert json.loads(config_file.read_text()) == {"url": "http://layra.test", "access_token": "a2",
                                                   "refresh_token": "r2"}
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600

    monkeypatch.setenv("LAYRA_API_KEY", "lyr_env")
    found = config.settings()
    assert (found.api_key, found.access_token, found.stored) == ("lyr_env", None, False)
    monkeypatch.delenv("LAYRA_API_KEY")
    monkeypatch.setenv("LAYRA_URL", "http://layra.test/api/v1/")  # the same server, written another way
    assert config.settings().access_token == "a2"
    monkeypatch.setenv("LAYRA_URL", "http://elsewhere.test")  # another server never gets the stored tokens
    with pytest.raises(NotLoggedIn, match="stored login is for http://layra.test"):
        config.settings()


def test_api_root_accepts_the_server_or_its_api_url():
    assert api_root("http://h:8000") == api_root("http://h:8000/") == api_root("http://h:8000/api/v1/")
    assert api_root("https://h/prefix") == "https://h/prefix/api/v1/"
    with pytest.raises(LayraError, match="http:// or https://"):
        api_root("h:8000")


def test_event_stream_reader_skips_comments_and_keeps_ids():
    lines = [": stream open", "", "id: 3", "event: token", 'data: {"text": "Hi"}', "", ": keepalive", "",
             "event: done", 'data: {"status":', 'data:  "completed"}', ""]
    events = list(parse_events(lines))
    assert [(e.name, e.data, e.id) for e in events] == [("token", {"text": "Hi"}, "3"),
                                                         ("done", {"status": "completed"}, None)]


def test_multipart_body_is_what_a_form_parser_reads_and_reports_progress(tmp_path):
    first, second = tmp_path / "a report.pdf", tmp_path / 'odd"name.txt'
    first.write_bytes(b"%PDF-" + bytes(range(256)) * 3000)
    second.write_bytes(b"plain text\r\n--not a boundary\r\n")
    calls = []
    body = MultipartFiles([first, second], progress=lambda sent, total: calls.append((sent, total)))
    data = b"".join(body)
    assert len(data) == body.length
    total = first.stat().st_size + second.stat().st_size
    assert calls[0] == (0, total) and calls[-1] == (total, total)
    assert [sent for sent, _ in calls] == sorted(sent for sent, _ in calls)
    message = email.parser.BytesParser().parsebytes(f"Content-Type: {body.content_type}\r\n\r\n".encode() + data)
    parts = message.get_payload()
    assert [p.get_filename() for p in parts] == ["a report.pdf", "odd%22name.txt"]
    assert [p.get_content_type() for p in parts] == ["application/pdf", "text/plain"]
    assert parts[0].get_payload(decode=True) == first.read_bytes()
    assert parts[1].get_payload(decode=True) == second.read_bytes()


def test_errors_read_as_words():
    request = httpx.Request("POST", "http://h/api/v1/knowledge-bases/")
    error = ApiError.from_response(httpx.Response(400, request=request, json={"error": {
        "code": "validation_error", "message": "Invalid input.",
        "details": {"knowledge_base_name": ["This field may not be blank."]}}}))
    assert str(error) == ("Invalid input. (knowledge_base_name: This field may not be blank.) "
                          "[HTTP 400, validation_error]")
    streamed = ApiError.from_response(httpx.Response(
        400, request=request, headers={"Content-Type": "text/event-stream; charset=utf-8"},
        content=b'event: error\ndata: {"error": {"code": "no_model_selected", "message": "No model.", "details": {}}}'
                b"\n\n"))
    assert (streamed.status, streamed.code, streamed.message) == (400, "no_model_selected", "No model.")
    proxy = ApiError.from_response(httpx.Response(502, request=request, text="<html>Bad gateway</html>"))
    assert proxy.status == 502 and "not a LAYRA API error" in str(proxy)
