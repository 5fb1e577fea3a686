"""HTTP node: private/metadata addresses refused after DNS and on every redirect."""

from tests.workflows_helpers import chain, node
from workflows.tests.test_engine import run_graph


def _http(url, **extra):
    return chain(node("start", "start"), node("h", "http", url=url, **extra), node("end", "end"))


def test_loopback_and_metadata_are_refused(user, site):
    for url in (f"http://127.0.0.1:{site.server_port}/x", f"http://localhost:{site.server_port}/x",
                "http://169.254.169.254/latest/meta-data/", "http://[::1]/", "http://10.0.0.1/",
                "http://[fd00:ec2::254]/"):
        run = run_graph(user, *_http(url))
        assert run.status == "failed" and run.error["node_id"] == "h", url
        assert "not allowed" in run.error["message"], run.error


def test_allowed_host_works_with_templates_and_redirect_to_private_is_refused(user, site, settings):
    settings.WORKFLOW_HTTP_ALLOWED_HOSTS = ["127.0.0.1"]
    base = f"http://127.0.0.1:{site.server_port}"
    run = run_graph(user, *_http(base + "/item/{{ id }}", headers={"X-Token": "{{ token }}"}),
                    inputs={"id": 7, "token": "t0k"})
    assert run.status == "succeeded", run.error
    assert run.variables["h"]["json"] == {"path": "/item/7", "host": f"127.0.0.1:{site.server_port}",
                                          "token": "t0k"}

    run = run_graph(user, *_http(base + "/redirect?to=" + base + "/ok"))
    assert run.status == "succeeded" and run.variables["h"]["json"]["path"] == "/ok"

    for target in ("http://169.254.169.254/latest/", f"http://localhost:{site.server_port}/ok", "http://10.1.2.3/"):
        run = run_graph(user, *_http(base + "/redirect?to=" + target))
        assert run.status == "failed" and run.error["node_id"] == "h", target
        assert "not allowed" in run.error["message"]


def test_response_size_limit_and_scheme(user, site, settings):
    settings.WORKFLOW_HTTP_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.WORKFLOW_HTTP_MAX_RESPONSE_BYTES = 10_000
    run = run_graph(user, *_http(f"http://127.0.0.1:{site.server_port}/big"))
    assert run.status == "failed" and "larger than" in run.error["message"]
    run = run_graph(user, *_http("file:///etc/passwd"))
    assert run.status == "failed" and "http and https" in run.error["message"]


def test_a_redirect_to_another_host_is_refused_even_an_allowed_one(user, site, settings):
    settings.WORKFLOW_HTTP_ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
    base = f"http://127.0.0.1:{site.server_port}"
    run = run_graph(user, *_http(f"http://localhost:{site.server_port}/ok"))
    assert run.status == "succeeded", run.error  # allowed by itself
    run = run_graph(user, *_http(base + "/redirect?to=" + f"http://localhost:{site.server_port}/ok"))
    assert run.status == "failed" and "redirect to another host (localhost) is not allowed" in run.error["message"]


def test_allow_private_never_allows_metadata_and_messages_name_the_kind(user, site, settings):
    settings.WORKFLOW_HTTP_ALLOW_PRIVATE = True
    run = run_graph(user, *_http(f"http://127.0.0.1:{site.server_port}/ok"))
    assert run.status == "succeeded", run.error
    run = run_graph(user, *_http("http://169.254.169.254/latest/meta-data/"))
    assert run.status == "failed" and "resolves to a metadata address" in run.error["message"]
    settings.WORKFLOW_HTTP_ALLOW_PRIVATE = False
    run = run_graph(user, *_http(f"http://localhost:{site.server_port}/ok"))
    assert run.status == "failed" and "resolves to a loopback address" in run.error["message"]
    assert "127.0.0.1" not in run.error["message"]  # what a name resolves to inside is not told


def test_no_proxy_is_taken_from_the_environment(user, site, settings, monkeypatch):
    from workflows import httpguard

    settings.WORKFLOW_HTTP_ALLOWED_HOSTS = ["127.0.0.1"]
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens: a proxied request would fail
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    httpguard._client.reset()
    try:
        run = run_graph(user, *_http(f"http://127.0.0.1:{site.server_port}/ok"))
    finally:
        httpguard._client.reset()
    assert run.status == "succeeded", run.error
