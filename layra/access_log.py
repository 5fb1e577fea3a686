"""Gunicorn's logs as JSON lines, like the product's (layra.logging): one entry per request with its request id.

Gunicorn loads this class by name (gunicorn.conf.py `logger_class`); Django and Celery processes never import it.
"""

import os

from gunicorn import glogging

from layra.logging import JsonFormatter


def _header(headers, name: str) -> str:
    return next((value for key, value in headers if key.lower() == name), "")


class JsonGunicornLogger(glogging.Logger):
    def setup(self, cfg):
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(JsonFormatter())

    def access(self, resp, req, environ, request_time):
        if not self.access_log_enabled:
            return
        # The id RequestIdMiddleware echoed (the client's X-Request-ID or a new one); "-" for a request Django
        # never answered (gunicorn's own errors).
        request_id = _header(resp.headers, "x-request-id") or "-"
        fields = {
            "method": req.method, "path": req.path, "query": req.query, "status": resp.status_code,
            "bytes": getattr(resp, "sent", None), "duration_ms": round(request_time.total_seconds() * 1000, 1),
            "remote_addr": environ.get("REMOTE_ADDR", "-"), "user_agent": environ.get("HTTP_USER_AGENT", ""),
            "worker_pid": os.getpid(),
        }
        try:
            self.access_log.info("%s %s %s", req.method, req.path, resp.status_code,
                                 extra={"request_id": request_id, "extra_fields": fields})
        except Exception:  # noqa: BLE001 - as gunicorn's own: a log line never fails a request
            self.exception("access log entry failed")
