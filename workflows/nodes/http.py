"""http: one HTTP request through the egress guard; stores status, body, headers, url and parsed json."""

import json

from .. import httpguard
from .base import NodeError, NodeType, check_template, fail

HTTP_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"}


class HttpNode(NodeType):
    name = "http"

    def validate(self, node_id, data):
        if str(data.get("method", "GET")).upper() not in HTTP_METHODS:
            fail(node_id, f"'method' must be one of {sorted(HTTP_METHODS)}.")
        check_template(node_id, data, "url")
        if not data.get("url"):
            fail(node_id, "an HTTP node needs a 'url'.")
        headers = data.get("headers", {})
        if not isinstance(headers, dict):
            fail(node_id, "'headers' must be an object.")
        for key in headers:
            check_template(node_id, headers, key)
        if "body" in data:
            check_template(node_id, data, "body")

    def execute(self, ctx, node, data):
        url = ctx.render(data["url"])
        headers = {k: ctx.render(v) for k, v in (data.get("headers") or {}).items()}
        body = ctx.render(data["body"]) if data.get("body") else None
        try:
            resp = httpguard.request(method=data.get("method", "GET"), url=url, headers=headers, body=body)
        except httpguard.HttpBlocked as exc:
            raise NodeError(exc.message) from None
        value = {"status": resp.status, "body": resp.body, "headers": resp.headers, "url": resp.url}
        try:
            value["json"] = json.loads(resp.body)
        except ValueError:
            value["json"] = None
        ctx.store(node, value)
        return ctx.successors(node["id"])
