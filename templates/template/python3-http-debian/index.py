"""faas-criu python3-http template: serves function.handler.handle over HTTP
on :8080 with the standard library only, no watchdog.

Every request except the health checks (/_/health, /_/ready) becomes an
Event passed to handle(event, context). handle returns a string (or bytes),
or a dict {"statusCode": int, "body": str | bytes | dict | list,
"headers": {name: value}}; a dict or list body is sent as JSON.
"""

import json
import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from function import handler

MAX_BODY = 16 << 20


class Event:
    """One request, as handle(event, context) sees it."""

    def __init__(self, method, path, query, headers, body):
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body


class Context:
    """What the function may want to know about where it runs."""

    def __init__(self):
        self.hostname = socket.gethostname()


CONTEXT = Context()


def encode(body):
    """Returns the body as bytes and the content type it implies."""
    if body is None:
        return b"", None
    if isinstance(body, (bytes, bytearray)):
        return bytes(body), None
    if isinstance(body, (dict, list)):
        return json.dumps(body).encode(), "application/json"
    return str(body).encode(), None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "faas-criu-python3-http"

    def handle_any(self):
        started = time.monotonic()
        url = urlsplit(self.path)
        if url.path in ("/_/health", "/_/ready"):
            self.reply(200, b"OK\n", {"Content-Type": "text/plain"}, log=False)
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self.reply(400 if length < 0 else 413, b"bad request body\n", {}, started=started)
            return
        body = self.rfile.read(length) if length else b""
        event = Event(
            method=self.command,
            path=url.path,
            query=dict(parse_qsl(url.query, keep_blank_values=True)),
            headers=dict(self.headers.items()),
            body=body,
        )
        try:
            result = handler.handle(event, CONTEXT)
        except Exception as e:  # the function's failure is a 500, not a crash
            print("handler error: %r" % (e,), file=sys.stderr, flush=True)
            self.reply(500, ("%s\n" % e).encode(), {"Content-Type": "text/plain"}, started=started)
            return
        status, headers = 200, {}
        if isinstance(result, dict):
            status = int(result.get("statusCode", 200))
            headers = dict(result.get("headers") or {})
            result = result.get("body")
        data, ctype = encode(result)
        if ctype and not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = ctype
        self.reply(status, data, headers, started=started)

    def reply(self, status, data, headers, log=True, started=None):
        self.send_response_only(status)
        self.send_header("Date", self.date_time_string())
        for k, v in headers.items():
            self.send_header(k, str(v))
        if not any(k.lower() == "content-type" for k in headers):
            self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        if log:
            ms = (time.monotonic() - started) * 1000 if started else 0
            print("%s %s %d %dB %.1fms" % (self.command, self.path, status, len(data), ms), flush=True)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = handle_any

    def log_message(self, format, *args):
        # Requests are logged by reply(); this is left for the server's own
        # errors (bad request lines), which go to stderr.
        sys.stderr.write("%s\n" % (format % args))


def main():
    port = int(os.environ.get("port", "8080"))
    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    server.daemon_threads = True

    def stop(signum, frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("listening on :%d" % port, flush=True)
    server.serve_forever()
    server.server_close()


if __name__ == "__main__":
    main()
